/* Shared by the fuzz targets: a check that aborts with a message libFuzzer records as a crash. */
#ifndef KMS_FUZZ_COMMON_H
#define KMS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test does not hold: report where and abort (a libFuzzer crash,
 * with the input saved as crash-<sha1>). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The input as a NUL-terminated string (malloc'd; NULL when out of memory): for parsers of text. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text != NULL) {
        for (size_t i = 0; i < size; i++) {
            text[i] = (char)data[i];
        }
        text[size] = '\0';
    }
    return text;
}

#endif
