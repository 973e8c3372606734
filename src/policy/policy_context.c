/* The request context: condition keys and their values (policy.h). Keys are kept lower-cased,
 * since they compare case-insensitively (IAM User Guide, "IAM JSON policy elements: Condition":
 * "Condition key names are not case-sensitive"); values are kept as given. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

kms_policy_ctx *kms_policy_ctx_new(void)
{
    kms_policy_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return ctx;
}

static void entry_clear(ctx_entry *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->values[i]);
    }
    free(e->values);
    free(e->parsed);
    e->values = NULL;
    e->parsed = NULL;
    e->n = 0;
}

void kms_policy_ctx_free(kms_policy_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    for (size_t i = 0; i < ctx->n; i++) {
        entry_clear(&ctx->e[i]);
        free(ctx->e[i].key);
    }
    free(ctx->e);
    free(ctx);
}

/* Lower-cases key into buf when it fits, which is every real key; the longest tag keys are
 * 128 characters. */
static bool lower_key(const char *key, char *buf, size_t cap)
{
    size_t i = 0;
    for (; key[i] != '\0'; i++) {
        if (i + 1 >= cap) {
            return false;
        }
        char c = key[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    buf[i] = '\0';
    return true;
}

uint32_t kms_policy_key_hash(const char *lower_key_)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)lower_key_; *p != '\0'; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h;
}

const ctx_entry *kms_policy_ctx_find(const kms_policy_ctx *ctx, const char *lower_key_,
                                     uint32_t hash)
{
    for (size_t i = 0; i < ctx->n; i++) {
        if (ctx->e[i].hash == hash && strcmp(ctx->e[i].key, lower_key_) == 0) {
            return &ctx->e[i];
        }
    }
    return NULL;
}

/* The entry of key, created empty when absent. */
static int entry_get(kms_policy_ctx *ctx, const char *key, ctx_entry **out)
{
    char buf[1024];
    KMS_ENSURE(key != NULL && key[0] != '\0', KMS_ERR_VALIDATION, "a context key is empty");
    KMS_ENSURE(lower_key(key, buf, sizeof buf), KMS_ERR_VALIDATION,
               "context key '%.64s...' is longer than %zu characters", key, sizeof buf - 1);
    uint32_t hash = kms_policy_key_hash(buf);
    ctx_entry *e = (ctx_entry *)kms_policy_ctx_find(ctx, buf, hash);
    if (e == NULL) {
        ctx_entry *grown = realloc(ctx->e, (ctx->n + 1) * sizeof *ctx->e);
        KMS_ENSURE(grown != NULL, KMS_ERR_INTERNAL, "out of memory");
        ctx->e = grown;
        e = &ctx->e[ctx->n];
        *e = (ctx_entry){strdup(buf), hash, NULL, NULL, 0};
        KMS_ENSURE(e->key != NULL, KMS_ERR_INTERNAL, "out of memory");
        ctx->n++;
    }
    *out = e;
    return 0;
}

static ctx_parsed parse_value(const char *v)
{
    ctx_parsed p;
    memset(&p, 0, sizeof p);
    p.num_ok = kms_policy_parse_number(v, &p.num);
    p.date_ok = kms_policy_parse_date(v, &p.ms);
    p.ip_ok = kms_policy_parse_ip(v, false, &p.ip);
    return p;
}

int kms_policy_ctx_add(kms_policy_ctx *ctx, const char *key, const char *value)
{
    KMS_ENSURE(ctx != NULL && value != NULL, KMS_ERR_VALIDATION, "no context or no value");
    ctx_entry *e = NULL;
    KMS_GUARD(entry_get(ctx, key, &e));
    char *v = strdup(value);
    char **grown = v != NULL ? realloc(e->values, (e->n + 1) * sizeof *e->values) : NULL;
    if (grown == NULL) {
        free(v);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    e->values = grown;
    ctx_parsed *pgrown = realloc(e->parsed, (e->n + 1) * sizeof *e->parsed);
    if (pgrown == NULL) {
        free(v);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    e->parsed = pgrown;
    e->parsed[e->n] = parse_value(v);
    e->values[e->n++] = v;
    return 0;
}

int kms_policy_ctx_set(kms_policy_ctx *ctx, const char *key, const char *value)
{
    KMS_ENSURE(ctx != NULL && value != NULL, KMS_ERR_VALIDATION, "no context or no value");
    ctx_entry *e = NULL;
    KMS_GUARD(entry_get(ctx, key, &e));
    char *v = strdup(value);
    char **one = v != NULL ? malloc(sizeof *one) : NULL;
    ctx_parsed *parsed = one != NULL ? malloc(sizeof *parsed) : NULL;
    if (parsed == NULL) {
        free(v);
        free(one);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    entry_clear(e);
    one[0] = v;
    parsed[0] = parse_value(v);
    e->values = one;
    e->parsed = parsed;
    e->n = 1;
    return 0;
}

const char *kms_policy_ctx_get(const kms_policy_ctx *ctx, const char *key)
{
    char buf[1024];
    if (ctx == NULL || key == NULL || !lower_key(key, buf, sizeof buf)) {
        return NULL;
    }
    const ctx_entry *e = kms_policy_ctx_find(ctx, buf, kms_policy_key_hash(buf));
    return (e != NULL && e->n > 0) ? e->values[0] : NULL;
}
