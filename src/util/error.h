/* The thread-local error of the library: kms_raise() sets it, the public kms_last_error*()
 * read it. KMS_GUARD and KMS_ENSURE are the only macros that hide control flow (style.md). */
#ifndef KMS_UTIL_ERROR_H
#define KMS_UTIL_ERROR_H

#include "kms/kms.h"

/* Sets the thread-local error and returns -1, so that `return kms_raise(...)` reads well. */
int kms_raise(kms_error code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the thread-local error (start of every public call). */
void kms_error_clear(void);

/* Names the operation whose failure the last error is (kms_call, after it failed): its
 * service names the error in kms_last_error_code. The next kms_raise forgets it. */
void kms_error_set_operation(const char *operation);

/* The code whose AWS name (kms_error_name) is `name`, as a server sends it in __type or
 * x-amzn-ErrorType: a "namespace#" prefix and a ":..." suffix are ignored, and the query
 * protocol's names without "Exception" ("NoSuchEntity", "AccessDenied") and the other codes
 * of kms_error_name_for ("InvalidClientTokenId", "ReportExpired") match too.
 * KMS_ERR__COUNT for a name of no code (and for NULL or ""). */
kms_error kms_error_from_name(const char *name);

/* The error of a failure kept across clean-up that may raise errors of its own:
 *     kms_saved_error e; kms_error_save(&e); ...clean up...; return kms_error_restore(&e); */
typedef struct kms_saved_error {
    kms_error code;
    char message[512];
} kms_saved_error;
void kms_error_save(kms_saved_error *e);
/* Raises the saved error again; returns -1. */
int kms_error_restore(const kms_saved_error *e);

/* Propagate a failure whose error is already raised. */
#define KMS_GUARD(expr)                                                                            \
    do {                                                                                           \
        if ((expr) != 0) {                                                                         \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* Fail with (code, message) unless cond holds. */
#define KMS_ENSURE(cond, code, ...)                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            return kms_raise((code), __VA_ARGS__);                                                 \
        }                                                                                          \
    } while (0)

#endif
