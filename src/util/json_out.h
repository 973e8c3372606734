/* JSON text written straight into a buffer, for records built on a hot path without a jansson
 * tree per call (the audit record of every request). The text is byte for byte what jansson's
 * json_dumps(JSON_COMPACT) writes for the same values in the same order: no spaces, strings
 * that must be UTF-8 (jansson's rules: no overlong forms, no surrogates, nothing above
 * U+10FFFF), escaped as jansson escapes them ('"', '\\', \b \f \n \r \t, other control
 * characters as \u00XX in upper case; '/' and non-ASCII as they are).
 *
 * The buffer starts in caller storage (a stack array) and moves to the heap only when the text
 * outgrows it. Failures are sticky: after one (out of memory, a NULL or non-UTF-8 string where
 * a string must be) every call does nothing, and kms_json_out_finish reports it, so that a
 * builder writes its members one after the other and checks once, and a record is whole or not
 * written at all. Commas are the writer's: a value written after a value at the same level is
 * preceded by one. */
#ifndef KMS_UTIL_JSON_OUT_H
#define KMS_UTIL_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kms_json_out {
    char *p;         /* the text so far (not NUL-terminated until finished) */
    size_t len;      /* bytes written */
    size_t cap;      /* bytes p holds */
    char *storage;   /* the caller's storage p starts in */
    bool failed;     /* sticky */
    bool comma;      /* a value was written at this level: the next one needs a comma */
    const char *why; /* the first failure, for the caller's error */
} kms_json_out;

/* _init/_clean_up: o writes into storage (cap bytes, at least 1) until it needs more. */
void kms_json_out_init(kms_json_out *o, char *storage, size_t cap);
/* Frees the heap copy, if the text moved there. */
void kms_json_out_clean_up(kms_json_out *o);
/* Starts the text again (keeps the memory; a failure stays). */
void kms_json_out_reset(kms_json_out *o);

void kms_json_out_begin_object(kms_json_out *o);
void kms_json_out_end_object(kms_json_out *o);
void kms_json_out_begin_array(kms_json_out *o);
void kms_json_out_end_array(kms_json_out *o);
/* A member's name (UTF-8; the value follows). */
void kms_json_out_key(kms_json_out *o, const char *key);
/* A member's name from outside, made UTF-8 as kms_json_out_text makes a value. */
void kms_json_out_key_text(kms_json_out *o, const char *key);
/* A string value that must be UTF-8 (as json_string: NULL or not UTF-8 fails). */
void kms_json_out_string(kms_json_out *o, const char *s);
/* Text from outside (as src/audit's kms_audit_json_text): when it is not UTF-8, every byte
 * above 0x7f is written as '?'. NULL fails. */
void kms_json_out_text(kms_json_out *o, const char *s);
void kms_json_out_bool(kms_json_out *o, bool v);
void kms_json_out_null(kms_json_out *o);
/* A value already in JSON text (n bytes), e.g. from json_dumps: written as it is. */
void kms_json_out_raw(kms_json_out *o, const char *json, size_t n);
/* Marks o failed (why: a static text) unless it already is. */
void kms_json_out_fail(kms_json_out *o, const char *why);

/* Whether s is UTF-8 as jansson takes it. */
bool kms_json_out_utf8_valid(const char *s, size_t n);

/* The text, NUL-terminated (*text borrowed from o, valid until kms_json_out_clean_up): 0, or -1
 * when any call failed (nothing raised: o->why says what went wrong). */
int kms_json_out_finish(kms_json_out *o, const char **text, size_t *len)
    __attribute__((warn_unused_result));

#endif
