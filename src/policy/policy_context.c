/* The request context: condition keys and their values (policy.h). Keys are kept lower-cased,
 * since they compare case-insensitively (IAM User Guide, "IAM JSON policy elements: Condition":
 * "Condition key names are not case-sensitive"); values are kept as given. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

_Static_assert(sizeof(struct kms_policy_ctx) <= KMS_POLICY_CTX_STORAGE,
               "KMS_POLICY_CTX_STORAGE is too small for a context");

static kms_policy_ctx *ctx_init(kms_policy_ctx *ctx, bool heap)
{
    ctx->e = ctx->inline_e;
    ctx->n = 0;
    ctx->cap = KMS_POLICY_CTX_ENTRIES;
    ctx->blocks = NULL;
    ctx->used = 0;
    ctx->heap = heap;
    memset(ctx->slot, 0, sizeof ctx->slot);
    return ctx;
}

kms_policy_ctx *kms_policy_ctx_new(void)
{
    kms_policy_ctx *ctx = malloc(sizeof *ctx);
    if (ctx == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return ctx_init(ctx, true);
}

kms_policy_ctx *kms_policy_ctx_init(kms_policy_ctx_storage *storage)
{
    return ctx_init((kms_policy_ctx *)(void *)storage->bytes, false);
}

void kms_policy_ctx_free(kms_policy_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    for (ctx_block *b = ctx->blocks, *next = NULL; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    if (ctx->e != ctx->inline_e) {
        free(ctx->e);
    }
    if (ctx->heap) {
        free(ctx);
    }
}

/* n bytes of the context's arena, aligned for any type; NULL (raised) when out of memory. */
static void *arena_alloc(kms_policy_ctx *ctx, size_t n)
{
    const size_t align = _Alignof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n <= sizeof ctx->first - ctx->used) {
        void *p = ctx->first + ctx->used;
        ctx->used += n;
        return p;
    }
    ctx_block *b = ctx->blocks;
    if (b == NULL || n > b->cap - b->used) {
        size_t cap = n > 4096 ? n : 4096;
        b = malloc(sizeof *b + cap);
        if (b == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = ctx->blocks;
        ctx->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

/* A copy of s (n bytes before its NUL) in the arena. */
static char *arena_strndup(kms_policy_ctx *ctx, const char *s, size_t len)
{
    size_t n = len + 1;
    char *p = arena_alloc(ctx, n);
    if (p != NULL) {
        memcpy(p, s, n);
    }
    return p;
}

/* Lower-cases key into buf when it fits, which is every real key; the longest tag keys are
 * 128 characters. */
static bool lower_key(const char *key, char *buf, size_t cap, size_t *len, uint32_t *hash)
{
    uint32_t h = 2166136261u; /* kms_policy_key_hash, in the same pass */
    size_t i = 0;
    for (; key[i] != '\0'; i++) {
        if (i + 1 >= cap) {
            return false;
        }
        char c = key[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
        h = (h ^ (unsigned char)buf[i]) * 16777619u;
    }
    buf[i] = '\0';
    *len = i;
    *hash = h;
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
    if (ctx->n <= KMS_POLICY_CTX_INDEXED) {
        /* The index: open addressing on the hash, an empty slot ends the search. */
        for (size_t i = hash % KMS_POLICY_CTX_SLOTS;; i = (i + 1) % KMS_POLICY_CTX_SLOTS) {
            uint8_t s = ctx->slot[i];
            if (s == 0) {
                return NULL;
            }
            const ctx_entry *e = &ctx->e[s - 1];
            if (e->hash == hash && strcmp(e->key, lower_key_) == 0) {
                return e;
            }
        }
    }
    for (size_t i = 0; i < ctx->n; i++) {
        if (ctx->e[i].hash == hash && strcmp(ctx->e[i].key, lower_key_) == 0) {
            return &ctx->e[i];
        }
    }
    return NULL;
}

/* Enters the newest entry in the index, while the context is small enough to have one. */
static void index_newest(kms_policy_ctx *ctx)
{
    if (ctx->n > KMS_POLICY_CTX_INDEXED) {
        return;
    }
    size_t i = ctx->e[ctx->n - 1].hash % KMS_POLICY_CTX_SLOTS;
    while (ctx->slot[i] != 0) {
        i = (i + 1) % KMS_POLICY_CTX_SLOTS;
    }
    ctx->slot[i] = (uint8_t)ctx->n;
}

/* The entry of key, created empty when absent. */
static int entry_get(kms_policy_ctx *ctx, const char *key, ctx_entry **out)
{
    char buf[1024];
    size_t len = 0;
    uint32_t hash = 0;
    KMS_ENSURE(key != NULL && key[0] != '\0', KMS_ERR_VALIDATION, "a context key is empty");
    KMS_ENSURE(lower_key(key, buf, sizeof buf, &len, &hash), KMS_ERR_VALIDATION,
               "context key '%.64s...' is longer than %zu characters", key, sizeof buf - 1);
    ctx_entry *e = (ctx_entry *)kms_policy_ctx_find(ctx, buf, hash);
    if (e == NULL) {
        if (ctx->n == ctx->cap) {
            size_t cap = ctx->cap * 2;
            ctx_entry *grown = ctx->e == ctx->inline_e ? malloc(cap * sizeof *grown)
                                                       : realloc(ctx->e, cap * sizeof *grown);
            KMS_ENSURE(grown != NULL, KMS_ERR_INTERNAL, "out of memory");
            if (ctx->e == ctx->inline_e) {
                memcpy(grown, ctx->inline_e, ctx->n * sizeof *grown);
            }
            ctx->e = grown;
            ctx->cap = cap;
        }
        char *k = arena_strndup(ctx, buf, len);
        if (k == NULL) {
            return -1;
        }
        e = &ctx->e[ctx->n++];
        *e = (ctx_entry){k, hash, NULL, NULL, 0};
        index_newest(ctx);
    }
    *out = e;
    return 0;
}

/* Sets the values of e to its first `keep` values and then value (copied). The value list is
 * copied whole into the arena when it grows: entries with more than one value are few. Adds
 * come before evaluations, so the parsed forms are copied as they are. */
static int entry_put(kms_policy_ctx *ctx, ctx_entry *e, size_t keep, const char *value)
{
    char *v = arena_strndup(ctx, value, strlen(value));
    char **values = v != NULL ? arena_alloc(ctx, (keep + 1) * sizeof *values) : NULL;
    ctx_parsed *parsed = values != NULL ? arena_alloc(ctx, (keep + 1) * sizeof *parsed) : NULL;
    if (parsed == NULL) {
        return -1;
    }
    if (keep > 0) {
        memcpy(values, e->values, keep * sizeof *values);
        memcpy(parsed, e->parsed, keep * sizeof *parsed);
    }
    values[keep] = v;
    memset(&parsed[keep], 0, sizeof parsed[keep]);
    atomic_init(&parsed[keep].state, CTX_UNPARSED);
    e->values = values;
    e->parsed = parsed;
    e->n = keep + 1;
    return 0;
}

void kms_policy_ctx_parsed(const ctx_entry *e, size_t vi, ctx_parsed *out)
{
    ctx_parsed *memo = &e->parsed[vi];
    if (atomic_load_explicit(&memo->state, memory_order_acquire) == CTX_PARSED) {
        out->num_ok = memo->num_ok;
        out->date_ok = memo->date_ok;
        out->ip_ok = memo->ip_ok;
        out->num = memo->num;
        out->ms = memo->ms;
        out->ip = memo->ip;
        return;
    }
    const char *v = e->values[vi];
    memset(out, 0, sizeof *out);
    out->num_ok = kms_policy_parse_number(v, &out->num);
    out->date_ok = kms_policy_parse_date(v, &out->ms);
    out->ip_ok = kms_policy_parse_ip(v, false, &out->ip);
    uint8_t unparsed = CTX_UNPARSED;
    if (atomic_compare_exchange_strong(&memo->state, &unparsed, CTX_CLAIMED)) {
        memo->num_ok = out->num_ok;
        memo->date_ok = out->date_ok;
        memo->ip_ok = out->ip_ok;
        memo->num = out->num;
        memo->ms = out->ms;
        memo->ip = out->ip;
        atomic_store_explicit(&memo->state, CTX_PARSED, memory_order_release);
    }
}

int kms_policy_ctx_add(kms_policy_ctx *ctx, const char *key, const char *value)
{
    KMS_ENSURE(ctx != NULL && value != NULL, KMS_ERR_VALIDATION, "no context or no value");
    ctx_entry *e = NULL;
    KMS_GUARD(entry_get(ctx, key, &e));
    return entry_put(ctx, e, e->n, value);
}

int kms_policy_ctx_set(kms_policy_ctx *ctx, const char *key, const char *value)
{
    KMS_ENSURE(ctx != NULL && value != NULL, KMS_ERR_VALIDATION, "no context or no value");
    ctx_entry *e = NULL;
    KMS_GUARD(entry_get(ctx, key, &e));
    return entry_put(ctx, e, 0, value);
}

const char *kms_policy_ctx_get(const kms_policy_ctx *ctx, const char *key)
{
    char buf[1024];
    size_t len = 0;
    uint32_t hash = 0;
    if (ctx == NULL || key == NULL || !lower_key(key, buf, sizeof buf, &len, &hash)) {
        return NULL;
    }
    const ctx_entry *e = kms_policy_ctx_find(ctx, buf, hash);
    return (e != NULL && e->n > 0) ? e->values[0] : NULL;
}
