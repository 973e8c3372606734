/* Helpers shared by the unit tests. */
#ifndef KMS_TESTUTIL_H
#define KMS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh empty directory under $TMPDIR (malloc'd path). */
char *kms_test_tmpdir(void);
/* rm -rf path. */
void kms_test_rmrf(const char *path);
/* Path of a file of the source tree (malloc'd): $KMS_SOURCE_DIR/rel. */
char *kms_test_source_path(const char *rel);
/* Creates a SoftHSM2 token directory and config in dir (hsm/create-token.sh), points
 * SOFTHSM2_CONF at it and initialises a token `label` with user PIN `pin`. One per process:
 * SoftHSM reads its config once. Returns 0 or fails the test. */
int kms_test_token(const char *dir, const char *label, const char *pin);
/* A fresh home in dir/home (kms_home_init) and a client of it; NULL, with the reason on stderr,
 * if either fails. */
struct kms_client;
struct json_t;
struct kms_client *kms_test_home_open(const char *dir);
/* kms_call of op with the request fmt formats (at most 4 KiB) that must succeed: the parsed
 * response (json_decref it); a failure fails the test with the error's message. */
struct json_t *kms_test_call(struct kms_client *c, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A ROOT CA (EC_prime256v1, SHA256WITHECDSA) with the common name cn, its ARN in arn, and
 * with CRLs (ExpirationInDays 7) when crls is true. */
void kms_test_root_ca(struct kms_client *c, const char *cn, int crls, char *arn, size_t arn_size);

/* TLS in memory: a handshake between a client and a server SSL over a BIO pair (0, or -1 if
 * either side failed, with *reason, if not NULL, the reason code of the first OpenSSL error:
 * the server's when it refused the client's hello), and one message each way (so that TLS 1.3
 * tickets, and a server's verdict on the client's certificate, reach the client). */
struct ssl_st;
int kms_test_tls_handshake(struct ssl_st *client, struct ssl_st *server, int *reason);
void kms_test_tls_exchange(struct ssl_st *client, struct ssl_st *server);
/* Asserts that the last kms call failed with `code`. */
#define assert_kms_error(rc, code)                                                                 \
    do {                                                                                           \
        assert_int_equal((rc), -1);                                                                \
        assert_string_equal(kms_error_name(kms_last_error()), kms_error_name(code));               \
    } while (0)

#endif
