/* See vectors.h. */
#include "testutil.h"
#include "vectors.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *kms_test_vectors_dir(void)
{
    const char *env = getenv("KMS_VECTORS_DIR");
    if (env != NULL && env[0] != '\0') {
        /* An explicit choice is not second-guessed: a wrong path skips, it does not fall back. */
        return is_dir(env) ? strdup(env) : NULL;
    }
    const char *src = getenv("KMS_SOURCE_DIR");
    if (src != NULL && src[0] != '\0') {
        size_t n = strlen(src) + sizeof "/../shared/vectors";
        char *p = malloc(n);
        assert_non_null(p);
        snprintf(p, n, "%s/../shared/vectors", src);
        if (is_dir(p)) {
            return p;
        }
        free(p);
    }
    return is_dir("/work/shared/vectors") ? strdup("/work/shared/vectors") : NULL;
}

json_t *kms_test_vectors_json(const char *rel)
{
    char *dir = kms_test_vectors_dir();
    if (dir == NULL) {
        print_message("no vectors directory (set KMS_VECTORS_DIR): %s skipped\n", rel);
        skip();
    }
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/%s", dir, rel);
    free(dir);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL) {
        fail_msg("%s: %s (line %d)", path, err.text, err.line);
    }
    free(path);
    return root;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

uint8_t *kms_test_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0) {
        fail_msg("odd-length hex string: %s", hex);
    }
    uint8_t *p = malloc(n / 2 + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(hex[2 * i]);
        int lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fail_msg("not a hex string: %s", hex);
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return p;
}

const char *kms_test_json_str(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL) {
        fail_msg("vector field \"%s\" is missing or not a string", name);
    }
    return s;
}
