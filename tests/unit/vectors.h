/* Where the unit tests find the shared known-answer vectors (Wycheproof, ESDK). They are read at
 * run time and never copied into the repository (vectors/README.md); a test that needs them and
 * does not find them reports itself as skipped, never as passed. */
#ifndef KMS_TEST_VECTORS_H
#define KMS_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The vectors directory (malloc'd), or NULL when there is none: $KMS_VECTORS_DIR when set,
 * else $KMS_SOURCE_DIR/../shared/vectors, else /work/shared/vectors. */
char *kms_test_vectors_dir(void);

/* Loads rel (e.g. "wycheproof/aes_gcm_test.json") from the vectors directory. Skips the running
 * test when there is no vectors directory; fails it when the directory exists but the file is
 * missing or not JSON (a broken checkout must not look like a pass). Free with json_decref. */
json_t *kms_test_vectors_json(const char *rel);

/* Decodes a hex string (malloc'd, never NULL, one byte more than *len); fails the test on a
 * string that is not hex. */
uint8_t *kms_test_hex(const char *hex, size_t *len);

/* The string member name of obj, failing the test when it is missing or not a string (field
 * names are the vector files', so a typo fails loudly instead of running nothing). */
const char *kms_test_json_str(const json_t *obj, const char *name);

/* The whole of file name in dir (malloc'd, NUL-terminated), or NULL when it cannot be opened. */
char *kms_test_read_file(const char *dir, const char *name);

/* AWS's SigV4 suite: the case directories under sigv4/ of the vectors directory that hold a
 * header-signed-request.txt, sorted by name, in *cases (malloc'd paths in a malloc'd array; free
 * each and the array); returns their number. Skips the running test when there is no vectors
 * directory; fails it when there is no sigv4 directory in it. */
size_t kms_test_sigv4_cases(char ***cases);

#define KMS_TEST_HTTP_MAX_HEADERS 32

/* A request of AWS's SigV4 suite (header-signed-request.txt) parsed: every header as it stands,
 * Authorization included, in file order. */
typedef struct kms_test_http {
    char method[16];
    char *path;  /* the target before any '?' */
    char *query; /* after the '?', "" when none */
    char *names[KMS_TEST_HTTP_MAX_HEADERS];
    char *values[KMS_TEST_HTTP_MAX_HEADERS];
    size_t n;
    char *body;
    size_t body_len;
} kms_test_http;

/* Parses text: "METHOD TARGET HTTP/1.1", "Name:value" lines (a line that starts with whitespace
 * continues the previous value, after a newline), a blank line, a body. Fails the test on a
 * malformed request. Free with kms_test_http_free. */
void kms_test_http_parse(kms_test_http *r, const char *text);

void kms_test_http_free(kms_test_http *r);

#endif
