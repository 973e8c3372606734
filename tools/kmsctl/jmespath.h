/* JMESPath (https://jmespath.org/specification.html), as the aws CLI applies --query: the whole
 * grammar (identifiers, quoted identifiers, sub-expressions, indexes and slices, list, object,
 * flatten and filter projections, comparators, ||, &&, !, literals, raw strings, pipes,
 * multi-select lists and hashes, @, functions with & expression references) and the 26 built-in
 * functions. Where the specification and the aws CLI's library (Python jmespath 1.0) differ, this
 * does as the CLI does: < <= > >= also order strings, and `text` that is not JSON is a string.
 *
 * Compiling checks more than the CLI does before it runs: an unknown function, a wrong number of
 * arguments and a slice step of 0 are refused with the expression, not when evaluated. Limits: an
 * expression of at most KMSCTL_JMESPATH_MAX_LEN bytes, nested at most KMSCTL_JMESPATH_MAX_DEPTH
 * deep; an evaluation of at most KMSCTL_JMESPATH_MAX_STEPS steps (values visited). */
#ifndef KMSCTL_JMESPATH_H
#define KMSCTL_JMESPATH_H

#include <stddef.h>

#include <jansson.h>

#define KMSCTL_JMESPATH_MAX_LEN 16384
#define KMSCTL_JMESPATH_MAX_DEPTH 128
#define KMSCTL_JMESPATH_MAX_STEPS 20000000UL

/* A compiled expression; opaque. */
struct kmsctl_jmespath;

/* What went wrong: the message, and for a syntax error the 0-based byte offset in the expression.
 */
struct kmsctl_jmespath_error {
    size_t at;
    char message[200];
};

/* Compiles expr. Returns the compiled expression (free it with kmsctl_jmespath_free), or NULL with
 * *err filled in. */
struct kmsctl_jmespath *kmsctl_jmespath_compile(const char *expr,
                                                struct kmsctl_jmespath_error *err);

/* Evaluates jp against data (borrowed). 0: *out is a new reference (json_null() for null); -1:
 * *out is NULL and err->message says why (invalid-type, invalid-value, too much work). */
int kmsctl_jmespath_search(const struct kmsctl_jmespath *jp, json_t *data, json_t **out,
                           struct kmsctl_jmespath_error *err);

void kmsctl_jmespath_free(struct kmsctl_jmespath *jp);

#endif
