/* Unit tests of kms_call_network's cache of derived SigV4 signing keys
 * (src/service/network_keys.h): a hit gives the key and a copy of the identity; another date,
 * region, service, access key or session token misses; a change of IAM's generation and a
 * session's expiry make an entry stale (and remove it); the number of entries stays bounded
 * with the most recently used kept; threads share it. The end-to-end case (a key made Inactive
 * is refused on the very next request, the cached key notwithstanding) is test_network's
 * test_callers_apart. */
#include "testutil.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "service/network_keys.h"

#define GEN 7
#define NOW 1700000000

static const kms_signing_scope base = {
    .access_key_id = "AKIAEXAMPLE00000001",
    .session_token = NULL,
    .date = "20231114",
    .region = "us-east-1",
    .service = "kms",
};

static void key_of(uint8_t key[32], unsigned seed)
{
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(seed * 31u + (unsigned)i);
    }
}

static void identity_of(kms_identity *id, const char *akid, int64_t expiry)
{
    memset(id, 0, sizeof *id);
    snprintf(id->type, sizeof id->type, "%s", expiry != 0 ? "AssumedRole" : "IAMUser");
    snprintf(id->arn, sizeof id->arn, "arn:aws:iam::111122223333:user/alice");
    snprintf(id->account_id, sizeof id->account_id, "111122223333");
    snprintf(id->access_key_id, sizeof id->access_key_id, "%s", akid);
    id->session_expiry = expiry;
}

/* 1 when scope is found under gen at now with the key of seed. */
static int found(kms_signing_cache *c, const kms_signing_scope *s, uint64_t gen, int64_t now,
                 unsigned seed)
{
    uint8_t key[32], want[32];
    kms_identity id;
    int r = kms_signing_cache_find(c, s, gen, now, key, &id);
    assert_true(r == 0 || r == 1);
    if (r == 1) {
        key_of(want, seed);
        assert_memory_equal(key, want, 32);
        assert_string_equal(id.access_key_id, s->access_key_id);
    } else {
        uint8_t zero[32] = {0};
        assert_memory_equal(key, zero, 32); /* cleared on a miss */
        assert_string_equal(id.access_key_id, "");
    }
    kms_iam_identity_clean_up(&id);
    return r;
}

static void put(kms_signing_cache *c, const kms_signing_scope *s, uint64_t gen, unsigned seed,
                int64_t expiry)
{
    uint8_t key[32];
    kms_identity id;
    key_of(key, seed);
    identity_of(&id, s->access_key_id, expiry);
    assert_int_equal(kms_signing_cache_put(c, s, gen, key, &id), 0);
}

static void test_hit_and_misses(void **state)
{
    (void)state;
    kms_signing_cache *c = kms_signing_cache_new();
    assert_non_null(c);
    assert_int_equal(found(c, &base, GEN, NOW, 1), 0);
    put(c, &base, GEN, 1, 0);
    assert_int_equal(found(c, &base, GEN, NOW, 1), 1);
    assert_int_equal(found(c, &base, GEN, NOW + 86400 * 365, 1), 1); /* no expiry of its own */
    kms_signing_scope s = base;
    s.date = "20231115";
    assert_int_equal(found(c, &s, GEN, NOW, 1), 0);
    s = base;
    s.region = "eu-west-1";
    assert_int_equal(found(c, &s, GEN, NOW, 1), 0);
    s = base;
    s.service = "acm-pca";
    assert_int_equal(found(c, &s, GEN, NOW, 1), 0);
    s = base;
    s.access_key_id = "AKIAEXAMPLE00000002";
    assert_int_equal(found(c, &s, GEN, NOW, 1), 0);
    s = base;
    s.session_token = "a-token";
    assert_int_equal(found(c, &s, GEN, NOW, 1), 0);
    /* Parts run together differently are another scope. */
    s = base;
    s.region = "us-east-1kms";
    s.service = "";
    assert_int_equal(found(c, &s, GEN, NOW, 1), 0);
    /* "" and no token are the same (a long-term key). */
    s = base;
    s.session_token = "";
    assert_int_equal(found(c, &s, GEN, NOW, 1), 1);
    /* The same scope put again replaces its entry. */
    put(c, &base, GEN, 2, 0);
    assert_int_equal(found(c, &base, GEN, NOW, 2), 1);
    assert_int_equal(kms_signing_cache_count(c), 1);
    kms_signing_cache_free(c);
    kms_signing_cache_free(NULL);
}

static void test_sessions(void **state)
{
    (void)state;
    kms_signing_cache *c = kms_signing_cache_new();
    assert_non_null(c);
    kms_signing_scope s = base;
    s.access_key_id = "ASIAEXAMPLE00000001";
    s.session_token = "the-session-token";
    put(c, &s, GEN, 3, NOW + 3600);
    assert_int_equal(found(c, &s, GEN, NOW, 3), 1);
    kms_signing_scope other = s;
    other.session_token = "the-session-tokeN";
    assert_int_equal(found(c, &other, GEN, NOW, 3), 0);
    other.session_token = NULL;
    assert_int_equal(found(c, &other, GEN, NOW, 3), 0);
    assert_int_equal(found(c, &s, GEN, NOW + 3599, 3), 1);
    /* Expired at its expiry (IAM: valid while expiry > now), and gone. */
    assert_int_equal(found(c, &s, GEN, NOW + 3600, 3), 0);
    assert_int_equal(kms_signing_cache_count(c), 0);
    assert_int_equal(found(c, &s, GEN, NOW, 3), 0);
    kms_signing_cache_free(c);
}

static void test_generation(void **state)
{
    (void)state;
    kms_signing_cache *c = kms_signing_cache_new();
    assert_non_null(c);
    put(c, &base, GEN, 4, 0);
    kms_signing_scope s = base;
    s.service = "acm-pca";
    put(c, &s, GEN, 5, 0);
    assert_int_equal(kms_signing_cache_count(c), 2);
    /* IAM changed (an UpdateAccessKey, a DeleteUser, ...): stale, and removed. */
    assert_int_equal(found(c, &base, GEN + 1, NOW, 4), 0);
    assert_int_equal(kms_signing_cache_count(c), 1);
    assert_int_equal(found(c, &base, GEN, NOW, 4), 0);
    /* An entry made under an older generation than the current one is stale too. */
    assert_int_equal(found(c, &s, GEN - 1, NOW, 5), 0);
    assert_int_equal(kms_signing_cache_count(c), 0);
    put(c, &base, GEN + 1, 4, 0);
    assert_int_equal(found(c, &base, GEN + 1, NOW, 4), 1);
    kms_signing_cache_free(c);
}

/* The identity is a deep copy, both ways: the caller's goes, the cached one stays. */
static void test_identity_copied(void **state)
{
    (void)state;
    kms_signing_cache *c = kms_signing_cache_new();
    assert_non_null(c);
    uint8_t key[32];
    kms_identity id;
    key_of(key, 6);
    identity_of(&id, base.access_key_id, 0);
    id.session_policy = strdup("{\"Version\": \"2012-10-17\"}");
    id.tag_count = 2;
    id.tag_keys = calloc(2, sizeof *id.tag_keys);
    id.tag_values = calloc(2, sizeof *id.tag_values);
    assert_non_null(id.tag_keys);
    assert_non_null(id.tag_values);
    id.tag_keys[0] = strdup("team");
    id.tag_values[0] = strdup("red");
    id.tag_keys[1] = strdup("cost");
    id.tag_values[1] = strdup("42");
    assert_int_equal(kms_signing_cache_put(c, &base, GEN, key, &id), 0);
    kms_iam_identity_clean_up(&id);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(kms_signing_cache_find(c, &base, GEN, NOW, key, &id), 1);
        assert_string_equal(id.session_policy, "{\"Version\": \"2012-10-17\"}");
        assert_int_equal(id.tag_count, 2);
        assert_string_equal(id.tag_keys[1], "cost");
        assert_string_equal(id.tag_values[0], "red");
        kms_iam_identity_clean_up(&id);
    }
    kms_signing_cache_free(c);
}

static void test_bounded(void **state)
{
    (void)state;
    kms_signing_cache *c = kms_signing_cache_new();
    assert_non_null(c);
    const size_t bound = KMS_SIGNING_CACHE_SETS * KMS_SIGNING_CACHE_WAYS;
    char akid[32];
    kms_signing_scope s = base;
    s.access_key_id = akid;
    put(c, &base, GEN, 9, 0);
    for (unsigned i = 0; i < 8 * bound; i++) {
        snprintf(akid, sizeof akid, "AKIA%016u", i);
        put(c, &s, GEN, i, 0);
        assert_true(kms_signing_cache_count(c) <= bound);
        /* Used all along, base stays: the least recently used entry of its set goes. */
        assert_int_equal(found(c, &base, GEN, NOW, 9), 1);
    }
    size_t n = kms_signing_cache_count(c);
    print_message("entries: %zu of at most %zu\n", n, bound);
    assert_true(n > bound * 9 / 10);
    /* The most recent ones are there, the first ones went. */
    size_t recent = 0, old = 0;
    for (unsigned i = 0; i < 64; i++) {
        snprintf(akid, sizeof akid, "AKIA%016u", 8 * (unsigned)bound - 1 - i);
        recent += (size_t)found(c, &s, GEN, NOW, 8 * (unsigned)bound - 1 - i);
        snprintf(akid, sizeof akid, "AKIA%016u", i);
        old += (size_t)found(c, &s, GEN, NOW, i);
    }
    assert_int_equal(recent, 64);
    assert_int_equal(old, 0);
    kms_signing_cache_free(c);
}

typedef struct worker {
    kms_signing_cache *c;
    unsigned id;
    long failures;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    char akid[32];
    kms_signing_scope s = base;
    s.access_key_id = akid;
    for (unsigned i = 0; i < 3000; i++) {
        unsigned k = (w->id * 7919u + i) % 2000u;
        uint8_t key[32], want[32];
        kms_identity id;
        snprintf(akid, sizeof akid, "AKIA%016u", k);
        int r = kms_signing_cache_find(w->c, &s, GEN, NOW, key, &id);
        if (r == 1) {
            key_of(want, k);
            w->failures += memcmp(key, want, 32) != 0 || strcmp(id.access_key_id, akid) != 0;
            kms_iam_identity_clean_up(&id);
        } else if (r == 0) {
            key_of(key, k);
            identity_of(&id, akid, 0);
            w->failures += kms_signing_cache_put(w->c, &s, GEN, key, &id) != 0;
        } else {
            w->failures++;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    kms_signing_cache *c = kms_signing_cache_new();
    assert_non_null(c);
    pthread_t t[8];
    worker w[8];
    for (unsigned i = 0; i < 8; i++) {
        w[i] = (worker){.c = c, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (unsigned i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    assert_true(kms_signing_cache_count(c) <= KMS_SIGNING_CACHE_SETS * KMS_SIGNING_CACHE_WAYS);
    kms_signing_cache_free(c);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_misses), cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_generation),     cmocka_unit_test(test_identity_copied),
        cmocka_unit_test(test_bounded),        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
