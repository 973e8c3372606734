/* Unit tests of src/iam: identities, credentials, policies as documents, MFA, passwords, STS
 * sessions and Organizations, on a real SQLite store with an in-memory sealer. */
#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam.h"
#include "iam/iam_internal.h"
#include "kms/kms.h"
#include "store/store.h"
#include "util/secmem.h"
#include "util/util.h"

#define ACCT "111122223333"
#define NOW ((int64_t)1700000000)
#define ALLOW_ALL                                                                                  \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","           \
    "\"Resource\":\"*\"}]}"
#define ALLOW_KMS                                                                                  \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:*\","       \
    "\"Resource\":\"*\"}]}"
#define TRUST_ACCT                                                                                 \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"     \
    "\"arn:aws:iam::111122223333:root\"},\"Action\":\"sts:AssumeRole\"}]}"

/* ---- The fake sealer: XChaCha20-Poly1305 under a random key, the purpose as AAD ------------- */

typedef struct fake_sealer {
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    int opens;
} fake_sealer;

static int fake_seal(void *arg, const char *purpose, const uint8_t *pt, size_t n, uint8_t **ct,
                     size_t *ct_len)
{
    fake_sealer *f = arg;
    size_t len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + n +
                 crypto_aead_xchacha20poly1305_ietf_ABYTES;
    uint8_t *out = malloc(len);
    assert_non_null(out);
    randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                               &clen, pt, n, (const uint8_t *)purpose,
                                               strlen(purpose), NULL, out, f->key);
    *ct = out;
    *ct_len = len;
    return 0;
}

static int fake_open(void *arg, const char *purpose, const uint8_t *ct, size_t n, uint8_t **pt,
                     size_t *pt_len)
{
    fake_sealer *f = arg;
    f->opens++;
    size_t hdr = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    if (n < hdr + crypto_aead_xchacha20poly1305_ietf_ABYTES) {
        return kms_raise(KMS_ERR_INVALID_CIPHERTEXT, "short");
    }
    uint8_t *out = sodium_malloc(n);
    assert_non_null(out);
    unsigned long long len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &len, NULL, ct + hdr, n - hdr,
                                                   (const uint8_t *)purpose, strlen(purpose), ct,
                                                   f->key) != 0) {
        sodium_free(out);
        return kms_raise(KMS_ERR_INVALID_CIPHERTEXT, "sealed secret does not authenticate");
    }
    *pt = out;
    *pt_len = (size_t)len;
    return 0;
}

typedef struct fixture {
    char *dir;
    char *path;
    kms_store *store;
    kms_iam *iam;
    fake_sealer sealer;
} fixture;

static void open_all(fixture *f, bool create)
{
    f->store = kms_store_open(f->path, create);
    if (f->store == NULL) {
        fail_msg("store: %s", kms_last_error_message());
    }
    kms_iam_sealer s = {fake_seal, fake_open, &f->sealer};
    f->iam = kms_iam_new(f->store, &s, "eu-west-1");
    assert_non_null(f->iam);
}

static void close_all(fixture *f)
{
    kms_iam_free(f->iam);
    kms_store_close(f->store);
    f->iam = NULL;
    f->store = NULL;
}

static int setup(void **state)
{
    assert_int_equal(sodium_init() >= 0, 1);
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    randombytes_buf(f->sealer.key, sizeof f->sealer.key);
    f->dir = kms_test_tmpdir();
    f->path = malloc(strlen(f->dir) + 16);
    assert_non_null(f->path);
    sprintf(f->path, "%s/kms.db", f->dir);
    open_all(f, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close_all(f);
    kms_test_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if ((expr) != 0) {                                                                         \
            fail_msg("%s: %s", #expr, kms_last_error_message());                                   \
        }                                                                                          \
    } while (0)

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v ? json_string_value(v) : NULL;
}

static void bootstrap(fixture *f, char key_id[32], char **secret)
{
    OK(kms_iam_bootstrap(f->iam, ACCT, NOW, key_id, secret));
}

static void user(fixture *f, const char *name)
{
    json_t *u = NULL;
    OK(kms_iam_user_create(f->iam, ACCT, NULL, name, NULL, NULL, 0, NOW, &u));
    json_decref(u);
}

static bool file_contains(const char *path, const void *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        return false;
    }
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    rewind(fp);
    uint8_t *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    bool found = memmem(p, (size_t)len, needle, n) != NULL;
    free(p);
    return found;
}

/* The database and its WAL: a secret must be in neither. */
static bool db_contains(fixture *f, const void *needle, size_t n)
{
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    return file_contains(f->path, needle, n) || file_contains(wal, needle, n);
}

static int b32_decode(const char *s, uint8_t *out, size_t cap)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        const char *p = strchr(alphabet, *s);
        assert_non_null(p);
        acc = (acc << 5) | (uint32_t)(p - alphabet);
        bits += 5;
        if (bits >= 8) {
            assert_true(n < cap);
            out[n++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    return (int)n;
}

static void code_at(const uint8_t *seed, size_t n, int64_t t, char out[7])
{
    OK(kms_iam_totp_code(seed, n, (uint64_t)t / 30, 6, out));
}

/* ---- Bootstrap ---------------------------------------------------------------------------- */

static void test_bootstrap(void **state)
{
    fixture *f = *state;
    char key_id[32];
    char *secret = NULL;
    bootstrap(f, key_id, &secret);
    assert_int_equal(strncmp(key_id, "AKIA", 4), 0);
    assert_int_equal(strlen(key_id), 20);
    assert_int_equal(strlen(secret), 40);

    kms_identity id;
    OK(kms_iam_authenticate(f->iam, key_id, secret, NULL, NOW, &id));
    assert_string_equal(id.type, "IAMUser");
    assert_string_equal(id.arn, "arn:aws:iam::" ACCT ":user/admin");
    assert_string_equal(id.user_name, "admin");
    assert_int_equal(strncmp(id.principal_id, "AIDA", 4), 0);
    assert_int_equal(strlen(id.principal_id), 21);

    kms_iam_docs docs;
    OK(kms_iam_load_docs(f->iam, &id, &docs));
    assert_int_equal(docs.identity_count, 1);
    assert_string_equal(docs.identity[0].id, "arn:aws:iam::aws:policy/AdministratorAccess");
    assert_non_null(strstr(docs.identity[0].document, "\"Action\":\"*\""));
    assert_null(docs.boundary);
    assert_int_equal(docs.scp_levels, 0); /* the management account */
    assert_int_equal(strncmp(docs.org_id, "o-", 2), 0);
    assert_int_equal(strlen(docs.org_id), 12);
    kms_iam_docs_clean_up(&docs);
    kms_iam_identity_clean_up(&id);

    kms_iam_password_policy p;
    OK(kms_iam_password_policy_get(f->iam, ACCT, &p));
    assert_int_equal(p.minimum_password_length, 14);
    assert_true(p.require_symbols && p.require_numbers && p.require_uppercase_characters &&
                p.require_lowercase_characters);
    assert_int_equal(p.max_password_age, 90);
    assert_int_equal(p.password_reuse_prevention, 24);

    OK(kms_iam_root_identity(f->iam, ACCT, &id));
    assert_string_equal(id.type, "Root");
    assert_string_equal(id.arn, "arn:aws:iam::" ACCT ":root");
    assert_string_equal(id.principal_id, ACCT);
    OK(kms_iam_load_docs(f->iam, &id, &docs));
    assert_int_equal(docs.identity_count, 0);
    kms_iam_docs_clean_up(&docs);
    kms_iam_identity_clean_up(&id);

    /* The root user has no access keys. */
    json_t *keys = NULL;
    OK(kms_iam_access_key_list(f->iam, ACCT, NULL, &keys));
    assert_int_equal(json_array_size(json_object_get(keys, "AccessKeyMetadata")), 0);
    json_decref(keys);

    json_t *org = NULL;
    OK(kms_iam_org_describe(f->iam, ACCT, &org));
    assert_string_equal(jstr(org, "MasterAccountId"), ACCT);
    json_decref(org);

    char key2[32];
    char *secret2 = NULL;
    assert_kms_error(kms_iam_bootstrap(f->iam, ACCT, NOW, key2, &secret2), KMS_ERR_ENTITY_EXISTS);
    assert_null(secret2);
    assert_kms_error(kms_iam_bootstrap(f->iam, "12345", NOW, key2, &secret2), KMS_ERR_VALIDATION);
    kms_iam_secret_free(secret);
}

/* ---- Users and groups --------------------------------------------------------------------- */

static void test_users_and_groups(void **state)
{
    fixture *f = *state;
    json_t *o = NULL;
    kms_iam_tag tags[] = {{"team", "blue"}};
    OK(kms_iam_user_create(f->iam, ACCT, "/eng/", "Alice", NULL, tags, 1, NOW, &o));
    assert_string_equal(jstr(o, "UserName"), "Alice");
    assert_string_equal(jstr(o, "Path"), "/eng/");
    assert_string_equal(jstr(o, "Arn"), "arn:aws:iam::" ACCT ":user/eng/Alice");
    assert_int_equal(json_integer_value(json_object_get(o, "CreateDate")), NOW);
    assert_int_equal(json_array_size(json_object_get(o, "Tags")), 1);
    json_decref(o);

    assert_kms_error(kms_iam_user_create(f->iam, ACCT, NULL, "alice", NULL, NULL, 0, NOW, NULL),
                     KMS_ERR_ENTITY_EXISTS);
    assert_kms_error(kms_iam_user_create(f->iam, ACCT, NULL, "bad name", NULL, NULL, 0, NOW, NULL),
                     KMS_ERR_VALIDATION);
    assert_kms_error(kms_iam_user_create(f->iam, ACCT, "nopath", "bob", NULL, NULL, 0, NOW, NULL),
                     KMS_ERR_VALIDATION);
    char long_name[70];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_kms_error(kms_iam_user_create(f->iam, ACCT, NULL, long_name, NULL, NULL, 0, NOW, NULL),
                     KMS_ERR_VALIDATION);
    assert_kms_error(kms_iam_user_get(f->iam, ACCT, "nobody", &o), KMS_ERR_NO_SUCH_ENTITY);
    assert_non_null(strstr(kms_last_error_message(), "The user with name nobody cannot be found."));
    /* Another account does not see Alice. */
    assert_kms_error(kms_iam_user_get(f->iam, "999988887777", "Alice", &o), KMS_ERR_NO_SUCH_ENTITY);

    OK(kms_iam_user_get(f->iam, ACCT, "ALICE", &o)); /* case-insensitive, as AWS */
    assert_string_equal(jstr(o, "UserName"), "Alice");
    json_decref(o);

    user(f, "bob");
    user(f, "carol");
    OK(kms_iam_user_list(f->iam, ACCT, NULL, NULL, 2, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Users")), 2);
    assert_true(json_is_true(json_object_get(o, "IsTruncated")));
    char marker[64];
    snprintf(marker, sizeof marker, "%s", jstr(o, "Marker"));
    json_decref(o);
    OK(kms_iam_user_list(f->iam, ACCT, NULL, marker, 2, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Users")), 1);
    assert_false(json_is_true(json_object_get(o, "IsTruncated")));
    json_decref(o);
    OK(kms_iam_user_list(f->iam, ACCT, "/eng/", NULL, 0, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Users")), 1);
    json_decref(o);

    OK(kms_iam_group_create(f->iam, ACCT, NULL, "devs", NOW, &o));
    assert_string_equal(jstr(o, "Arn"), "arn:aws:iam::" ACCT ":group/devs");
    json_decref(o);
    assert_kms_error(kms_iam_group_create(f->iam, ACCT, NULL, "DEVS", NOW, NULL),
                     KMS_ERR_ENTITY_EXISTS);
    OK(kms_iam_group_add_user(f->iam, ACCT, "devs", "bob"));
    OK(kms_iam_group_add_user(f->iam, ACCT, "devs", "bob")); /* idempotent */
    OK(kms_iam_group_add_user(f->iam, ACCT, "devs", "carol"));
    assert_kms_error(kms_iam_group_add_user(f->iam, ACCT, "devs", "nobody"),
                     KMS_ERR_NO_SUCH_ENTITY);
    assert_kms_error(kms_iam_group_add_user(f->iam, ACCT, "nogroup", "bob"),
                     KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_group_get(f->iam, ACCT, "devs", NULL, 0, &o));
    assert_string_equal(jstr(json_object_get(o, "Group"), "GroupName"), "devs");
    assert_int_equal(json_array_size(json_object_get(o, "Users")), 2);
    json_decref(o);
    OK(kms_iam_groups_for_user(f->iam, ACCT, "bob", NULL, 0, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Groups")), 1);
    json_decref(o);

    assert_kms_error(kms_iam_user_delete(f->iam, ACCT, "bob"), KMS_ERR_DELETE_CONFLICT);
    assert_kms_error(kms_iam_group_delete(f->iam, ACCT, "devs"), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_group_remove_user(f->iam, ACCT, "devs", "bob"));
    assert_kms_error(kms_iam_group_remove_user(f->iam, ACCT, "devs", "bob"),
                     KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_user_delete(f->iam, ACCT, "bob"));
    assert_kms_error(kms_iam_user_delete(f->iam, ACCT, "bob"), KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_group_remove_user(f->iam, ACCT, "devs", "carol"));
    OK(kms_iam_inline_put(f->iam, ACCT, KMS_IAM_GROUP, "devs", "p", ALLOW_KMS));
    assert_kms_error(kms_iam_group_delete(f->iam, ACCT, "devs"), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_inline_delete(f->iam, ACCT, KMS_IAM_GROUP, "devs", "p"));
    OK(kms_iam_group_delete(f->iam, ACCT, "devs"));

    /* Rename. */
    OK(kms_iam_user_update(f->iam, ACCT, "carol", NULL, "caroline"));
    OK(kms_iam_user_get(f->iam, ACCT, "caroline", &o));
    json_decref(o);
    assert_kms_error(kms_iam_user_update(f->iam, ACCT, "caroline", NULL, "alice"),
                     KMS_ERR_ENTITY_EXISTS);

    OK(kms_iam_tags_add(f->iam, ACCT, KMS_IAM_USER, "Alice", (kms_iam_tag[]){{"team", "red"}}, 1));
    OK(kms_iam_tags_list(f->iam, ACCT, KMS_IAM_USER, "Alice", &o));
    json_t *tl = json_object_get(o, "Tags");
    assert_int_equal(json_array_size(tl), 1);
    assert_string_equal(jstr(json_array_get(tl, 0), "Value"), "red");
    json_decref(o);
    const char *keys[] = {"team"};
    OK(kms_iam_tags_remove(f->iam, ACCT, KMS_IAM_USER, "Alice", keys, 1));
    OK(kms_iam_tags_list(f->iam, ACCT, KMS_IAM_USER, "Alice", &o));
    assert_int_equal(json_array_size(json_object_get(o, "Tags")), 0);
    json_decref(o);
}

/* ---- Roles and policies ------------------------------------------------------------------- */

static void test_roles_and_policies(void **state)
{
    fixture *f = *state;
    json_t *o = NULL;
    OK(kms_iam_role_create(f->iam, ACCT, NULL, "deployer", TRUST_ACCT, "deploys", 0, NULL, NULL, 0,
                           NOW, &o));
    assert_string_equal(jstr(o, "Arn"), "arn:aws:iam::" ACCT ":role/deployer");
    assert_string_equal(jstr(o, "AssumeRolePolicyDocument"), TRUST_ACCT);
    assert_int_equal(json_integer_value(json_object_get(o, "MaxSessionDuration")), 3600);
    assert_int_equal(strncmp(jstr(o, "RoleId"), "AROA", 4), 0);
    json_decref(o);
    assert_kms_error(kms_iam_role_create(f->iam, ACCT, NULL, "Deployer", TRUST_ACCT, NULL, 0, NULL,
                                         NULL, 0, NOW, NULL),
                     KMS_ERR_ENTITY_EXISTS);
    assert_kms_error(kms_iam_role_create(f->iam, ACCT, NULL, "short", TRUST_ACCT, NULL, 100, NULL,
                                         NULL, 0, NOW, NULL),
                     KMS_ERR_VALIDATION);
    assert_kms_error(kms_iam_role_get(f->iam, ACCT, "none", &o), KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_role_update_trust(f->iam, ACCT, "deployer", ALLOW_ALL));
    OK(kms_iam_role_update(f->iam, ACCT, "deployer", NULL, 7200));
    kms_iam_role_info info;
    OK(kms_iam_role_lookup(f->iam, "arn:aws:iam::" ACCT ":role/deployer", &info));
    assert_string_equal(info.trust_policy, ALLOW_ALL);
    assert_int_equal(info.max_session_duration, 7200);
    assert_string_equal(info.role_name, "deployer");
    kms_iam_role_info_clean_up(&info);
    assert_kms_error(kms_iam_role_lookup(f->iam, "arn:aws:iam::" ACCT ":role/nope", &info),
                     KMS_ERR_NO_SUCH_ENTITY);
    assert_kms_error(kms_iam_role_lookup(f->iam, "arn:aws:iam::123:role/x", &info),
                     KMS_ERR_VALIDATION);

    /* Managed policies and versions. */
    OK(kms_iam_policy_create(f->iam, ACCT, NULL, "KmsUse", "use keys", ALLOW_KMS, NOW, &o));
    const char *arn = "arn:aws:iam::" ACCT ":policy/KmsUse";
    assert_string_equal(jstr(o, "Arn"), arn);
    assert_string_equal(jstr(o, "DefaultVersionId"), "v1");
    assert_int_equal(json_integer_value(json_object_get(o, "AttachmentCount")), 0);
    json_decref(o);
    assert_kms_error(
        kms_iam_policy_create(f->iam, ACCT, NULL, "kmsuse", NULL, ALLOW_KMS, NOW, NULL),
        KMS_ERR_ENTITY_EXISTS);
    OK(kms_iam_policy_version_create(f->iam, ACCT, arn, ALLOW_ALL, true, NOW + 1, &o));
    assert_string_equal(jstr(o, "VersionId"), "v2");
    json_decref(o);
    OK(kms_iam_policy_version_get(f->iam, ACCT, arn, "v2", &o));
    assert_string_equal(jstr(o, "Document"), ALLOW_ALL);
    assert_true(json_is_true(json_object_get(o, "IsDefaultVersion")));
    json_decref(o);
    assert_kms_error(kms_iam_policy_version_delete(f->iam, ACCT, arn, "v2"),
                     KMS_ERR_DELETE_CONFLICT);
    for (int i = 0; i < 3; i++) {
        OK(kms_iam_policy_version_create(f->iam, ACCT, arn, ALLOW_KMS, false, NOW, NULL));
    }
    assert_kms_error(kms_iam_policy_version_create(f->iam, ACCT, arn, ALLOW_KMS, false, NOW, NULL),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_kms_error(kms_iam_policy_version_get(f->iam, ACCT, arn, "v9", &o),
                     KMS_ERR_NO_SUCH_ENTITY);

    user(f, "dave");
    OK(kms_iam_policy_attach(f->iam, ACCT, KMS_IAM_USER, "dave", arn));
    OK(kms_iam_policy_attach(f->iam, ACCT, KMS_IAM_ROLE, "deployer", arn));
    OK(kms_iam_policy_get(f->iam, ACCT, arn, &o));
    assert_int_equal(json_integer_value(json_object_get(o, "AttachmentCount")), 2);
    json_decref(o);
    OK(kms_iam_policy_list_attached(f->iam, ACCT, KMS_IAM_USER, "dave", NULL, NULL, 0, &o));
    json_t *ap = json_object_get(o, "AttachedPolicies");
    assert_int_equal(json_array_size(ap), 1);
    assert_string_equal(jstr(json_array_get(ap, 0), "PolicyArn"), arn);
    json_decref(o);
    OK(kms_iam_policy_list(f->iam, ACCT, "Local", false, NULL, NULL, 0, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Policies")), 1);
    json_decref(o);
    OK(kms_iam_policy_list(f->iam, ACCT, "AWS", false, NULL, NULL, 0, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Policies")), 1); /* AdministratorAccess */
    json_decref(o);
    assert_kms_error(kms_iam_policy_attach(f->iam, ACCT, KMS_IAM_USER, "dave",
                                           "arn:aws:iam::" ACCT ":policy/Nope"),
                     KMS_ERR_NO_SUCH_ENTITY);
    assert_kms_error(kms_iam_policy_detach(f->iam, ACCT, KMS_IAM_USER, "dave",
                                           "arn:aws:iam::aws:policy/AdministratorAccess"),
                     KMS_ERR_NO_SUCH_ENTITY);
    assert_kms_error(kms_iam_policy_delete(f->iam, ACCT, arn), KMS_ERR_DELETE_CONFLICT);
    assert_kms_error(
        kms_iam_policy_delete(f->iam, ACCT, "arn:aws:iam::aws:policy/AdministratorAccess"),
        KMS_ERR_INVALID_INPUT);
    assert_kms_error(kms_iam_user_delete(f->iam, ACCT, "dave"), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_policy_detach(f->iam, ACCT, KMS_IAM_USER, "dave", arn));
    OK(kms_iam_policy_detach(f->iam, ACCT, KMS_IAM_ROLE, "deployer", arn));
    /* Non-default versions first, as AWS. */
    assert_kms_error(kms_iam_policy_delete(f->iam, ACCT, arn), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_policy_version_list(f->iam, ACCT, arn, &o));
    json_t *versions = json_object_get(o, "Versions");
    assert_int_equal(json_array_size(versions), 5);
    for (size_t i = 0; i < json_array_size(versions); i++) {
        json_t *v = json_array_get(versions, i);
        if (!json_is_true(json_object_get(v, "IsDefaultVersion"))) {
            OK(kms_iam_policy_version_delete(f->iam, ACCT, arn, jstr(v, "VersionId")));
        }
    }
    json_decref(o);
    OK(kms_iam_policy_delete(f->iam, ACCT, arn));
    assert_kms_error(kms_iam_policy_get(f->iam, ACCT, arn, &o), KMS_ERR_NO_SUCH_ENTITY);

    /* Inline policies. */
    OK(kms_iam_inline_put(f->iam, ACCT, KMS_IAM_ROLE, "deployer", "inline1", ALLOW_KMS));
    OK(kms_iam_inline_put(f->iam, ACCT, KMS_IAM_ROLE, "deployer", "inline1", ALLOW_ALL));
    OK(kms_iam_inline_get(f->iam, ACCT, KMS_IAM_ROLE, "deployer", "inline1", &o));
    assert_string_equal(jstr(o, "RoleName"), "deployer");
    assert_string_equal(jstr(o, "PolicyDocument"), ALLOW_ALL);
    json_decref(o);
    OK(kms_iam_inline_list(f->iam, ACCT, KMS_IAM_ROLE, "deployer", NULL, 0, &o));
    assert_int_equal(json_array_size(json_object_get(o, "PolicyNames")), 1);
    json_decref(o);
    assert_kms_error(kms_iam_inline_get(f->iam, ACCT, KMS_IAM_ROLE, "deployer", "nope", &o),
                     KMS_ERR_NO_SUCH_ENTITY);
    assert_kms_error(kms_iam_role_delete(f->iam, ACCT, "deployer"), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_inline_delete(f->iam, ACCT, KMS_IAM_ROLE, "deployer", "inline1"));
    assert_kms_error(kms_iam_inline_delete(f->iam, ACCT, KMS_IAM_ROLE, "deployer", "inline1"),
                     KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_role_delete(f->iam, ACCT, "deployer"));
    OK(kms_iam_user_delete(f->iam, ACCT, "dave"));
}

/* ---- Documents for the gate ---------------------------------------------------------------- */

static void test_load_docs_user(void **state)
{
    fixture *f = *state;
    json_t *o = NULL;
    OK(kms_iam_policy_create(f->iam, ACCT, "/b/", "Boundary", NULL, ALLOW_KMS, NOW, &o));
    char boundary_arn[200];
    snprintf(boundary_arn, sizeof boundary_arn, "%s", jstr(o, "Arn"));
    json_decref(o);
    OK(kms_iam_policy_create(f->iam, ACCT, NULL, "Managed", NULL, ALLOW_ALL, NOW, NULL));
    OK(kms_iam_user_create(f->iam, ACCT, NULL, "erin", boundary_arn,
                           (kms_iam_tag[]){{"dept", "ops"}}, 1, NOW, &o));
    assert_string_equal(jstr(json_object_get(o, "PermissionsBoundary"), "PermissionsBoundaryArn"),
                        boundary_arn);
    json_decref(o);
    OK(kms_iam_inline_put(f->iam, ACCT, KMS_IAM_USER, "erin", "own", ALLOW_KMS));
    OK(kms_iam_policy_attach(f->iam, ACCT, KMS_IAM_USER, "erin",
                             "arn:aws:iam::" ACCT ":policy/Managed"));
    OK(kms_iam_group_create(f->iam, ACCT, NULL, "g1", NOW, NULL));
    OK(kms_iam_group_add_user(f->iam, ACCT, "g1", "erin"));
    OK(kms_iam_inline_put(f->iam, ACCT, KMS_IAM_GROUP, "g1", "gi", ALLOW_KMS));
    OK(kms_iam_policy_attach(f->iam, ACCT, KMS_IAM_GROUP, "g1",
                             "arn:aws:iam::aws:policy/AdministratorAccess"));

    kms_identity id;
    OK(kms_iam_user_identity(f->iam, ACCT, "erin", &id));
    assert_int_equal(id.tag_count, 1);
    assert_string_equal(id.tag_keys[0], "dept");
    assert_string_equal(id.tag_values[0], "ops");
    kms_iam_docs d;
    OK(kms_iam_load_docs(f->iam, &id, &d));
    assert_int_equal(d.identity_count, 4);
    assert_string_equal(d.identity[0].id, "user/erin/inline/own");
    assert_string_equal(d.identity[1].id, "arn:aws:iam::" ACCT ":policy/Managed");
    assert_string_equal(d.identity[1].document, ALLOW_ALL);
    assert_string_equal(d.identity[2].id, "group/g1/inline/gi");
    assert_string_equal(d.identity[3].id, "arn:aws:iam::aws:policy/AdministratorAccess");
    assert_non_null(d.boundary);
    assert_string_equal(d.boundary, ALLOW_KMS);
    assert_int_equal(d.scp_levels, 0);
    assert_string_equal(d.org_id, "");
    kms_iam_docs_clean_up(&d);

    /* A new default version is what the gate sees. */
    OK(kms_iam_policy_version_create(f->iam, ACCT, "arn:aws:iam::" ACCT ":policy/Managed",
                                     ALLOW_KMS, true, NOW, NULL));
    OK(kms_iam_load_docs(f->iam, &id, &d));
    assert_string_equal(d.identity[1].document, ALLOW_KMS);
    kms_iam_docs_clean_up(&d);

    OK(kms_iam_boundary_delete(f->iam, ACCT, KMS_IAM_USER, "erin"));
    OK(kms_iam_load_docs(f->iam, &id, &d));
    assert_null(d.boundary);
    kms_iam_docs_clean_up(&d);
    kms_iam_identity_clean_up(&id);
}

static void test_generation(void **state)
{
    fixture *f = *state;
    uint64_t g0 = 0, g1 = 0, g2 = 0;
    OK(kms_iam_generation(f->iam, &g0));
    user(f, "frank");
    OK(kms_iam_generation(f->iam, &g1));
    assert_true(g1 > g0);
    json_t *o = NULL;
    OK(kms_iam_user_get(f->iam, ACCT, "frank", &o));
    json_decref(o);
    OK(kms_iam_generation(f->iam, &g2));
    assert_true(g2 == g1);
    /* A failed write leaves it alone. */
    assert_kms_error(kms_iam_user_create(f->iam, ACCT, NULL, "frank", NULL, NULL, 0, NOW, NULL),
                     KMS_ERR_ENTITY_EXISTS);
    OK(kms_iam_generation(f->iam, &g2));
    assert_true(g2 == g1);
    OK(kms_iam_inline_put(f->iam, ACCT, KMS_IAM_USER, "frank", "p", ALLOW_KMS));
    OK(kms_iam_generation(f->iam, &g2));
    assert_true(g2 > g1);
    kms_identity id;
    kms_iam_docs d;
    OK(kms_iam_user_identity(f->iam, ACCT, "frank", &id));
    OK(kms_iam_load_docs(f->iam, &id, &d));
    assert_true(d.generation == g2);
    assert_int_equal(d.identity_count, 1);
    kms_iam_docs_clean_up(&d);
    kms_iam_identity_clean_up(&id);
}

/* ---- Organizations ------------------------------------------------------------------------ */

static void test_organizations(void **state)
{
    fixture *f = *state;
    char key_id[32];
    char *secret = NULL;
    bootstrap(f, key_id, &secret);
    kms_iam_secret_free(secret);

    json_t *o = NULL;
    OK(kms_iam_org_list_roots(f->iam, ACCT, &o));
    char root[16];
    snprintf(root, sizeof root, "%s", jstr(json_array_get(json_object_get(o, "Roots"), 0), "Id"));
    json_decref(o);
    assert_int_equal(strncmp(root, "r-", 2), 0);

    OK(kms_iam_org_account_create(f->iam, ACCT, "dev@example.com", "dev", NULL, NOW, &o));
    assert_string_equal(jstr(o, "State"), "SUCCEEDED");
    char member[13];
    snprintf(member, sizeof member, "%s", jstr(o, "AccountId"));
    json_decref(o);
    assert_int_equal(strlen(member), 12);
    assert_kms_error(kms_iam_org_create(f->iam, member, NOW, NULL), KMS_ERR_ENTITY_EXISTS);

    /* The member's OrganizationAccountAccessRole trusts the management account. */
    char role_arn[100];
    snprintf(role_arn, sizeof role_arn, "arn:aws:iam::%s:role/OrganizationAccountAccessRole",
             member);
    kms_iam_role_info info;
    OK(kms_iam_role_lookup(f->iam, role_arn, &info));
    assert_non_null(strstr(info.trust_policy, "arn:aws:iam::" ACCT ":root"));
    kms_iam_role_info_clean_up(&info);

    kms_identity id;
    OK(kms_iam_root_identity(f->iam, member, &id));
    kms_iam_docs d;
    OK(kms_iam_load_docs(f->iam, &id, &d));
    assert_int_equal(d.scp_levels, 2); /* root, account */
    assert_int_equal(d.scp_counts[0], 1);
    assert_string_equal(d.scps[0][0].id,
                        "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess");
    assert_int_equal(d.scp_counts[1], 1);
    assert_int_equal(strncmp(d.org_id, "o-", 2), 0);
    kms_iam_docs_clean_up(&d);

    OK(kms_iam_org_ou_create(f->iam, ACCT, root, "Workloads", NOW, &o));
    char ou[40];
    snprintf(ou, sizeof ou, "%s", jstr(o, "Id"));
    json_decref(o);
    assert_int_equal(strncmp(ou, "ou-", 3), 0);
    assert_kms_error(kms_iam_org_ou_create(f->iam, ACCT, root, "Workloads", NOW, NULL),
                     KMS_ERR_ENTITY_EXISTS);
    assert_kms_error(kms_iam_org_ou_create(f->iam, ACCT, "ou-zzzz-zzzzzzzz", "x", NOW, NULL),
                     KMS_ERR_NO_SUCH_ENTITY);
    assert_kms_error(kms_iam_org_ou_create(f->iam, member, root, "x", NOW, NULL),
                     KMS_ERR_ACCESS_DENIED);
    assert_kms_error(kms_iam_org_ou_create(f->iam, "999988887777", root, "x", NOW, NULL),
                     KMS_ERR_NO_SUCH_ENTITY);

    OK(kms_iam_org_policy_create(f->iam, ACCT, "DenyDelete", "no deletes", NULL,
                                 "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\","
                                 "\"Action\":\"kms:ScheduleKeyDeletion\",\"Resource\":\"*\"}]}",
                                 &o));
    char scp[16];
    snprintf(scp, sizeof scp, "%s", jstr(json_object_get(o, "PolicySummary"), "Id"));
    json_decref(o);
    OK(kms_iam_org_policy_attach(f->iam, ACCT, scp, ou));
    assert_kms_error(kms_iam_org_policy_attach(f->iam, ACCT, scp, ou), KMS_ERR_ENTITY_EXISTS);
    assert_kms_error(kms_iam_org_policy_attach(f->iam, ACCT, scp, "ou-nope-nopenope"),
                     KMS_ERR_NO_SUCH_ENTITY);

    assert_kms_error(kms_iam_org_account_move(f->iam, ACCT, member, ou, root),
                     KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_org_account_move(f->iam, ACCT, member, root, ou));
    OK(kms_iam_org_list_parents(f->iam, ACCT, member, &o));
    assert_string_equal(jstr(json_array_get(json_object_get(o, "Parents"), 0), "Id"), ou);
    json_decref(o);
    OK(kms_iam_load_docs(f->iam, &id, &d));
    assert_int_equal(d.scp_levels, 3); /* root, OU, account */
    assert_int_equal(d.scp_counts[0], 1);
    assert_int_equal(d.scp_counts[1], 2);
    assert_int_equal(d.scp_counts[2], 1);
    bool deny_seen = false;
    for (size_t i = 0; i < d.scp_counts[1]; i++) {
        deny_seen |= strstr(d.scps[1][i].document, "ScheduleKeyDeletion") != NULL;
    }
    assert_true(deny_seen);
    kms_iam_docs_clean_up(&d);
    kms_iam_identity_clean_up(&id);

    OK(kms_iam_org_policy_list_for_target(f->iam, ACCT, ou, NULL, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Policies")), 2);
    json_decref(o);
    OK(kms_iam_org_policy_list_targets(f->iam, ACCT, scp, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Targets")), 1);
    json_decref(o);
    OK(kms_iam_org_account_list(f->iam, ACCT, NULL, &o));
    assert_int_equal(json_array_size(json_object_get(o, "Accounts")), 2);
    json_decref(o);
    OK(kms_iam_org_ou_list(f->iam, ACCT, root, &o));
    assert_int_equal(json_array_size(json_object_get(o, "OrganizationalUnits")), 1);
    json_decref(o);

    assert_kms_error(kms_iam_org_policy_delete(f->iam, ACCT, scp), KMS_ERR_DELETE_CONFLICT);
    assert_kms_error(kms_iam_org_policy_delete(f->iam, ACCT, "p-FullAWSAccess"),
                     KMS_ERR_ACCESS_DENIED);
    assert_kms_error(kms_iam_org_policy_detach(f->iam, ACCT, "p-FullAWSAccess", member),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_kms_error(kms_iam_org_ou_delete(f->iam, ACCT, ou), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_org_policy_detach(f->iam, ACCT, scp, ou));
    assert_kms_error(kms_iam_org_policy_detach(f->iam, ACCT, scp, ou), KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_org_policy_delete(f->iam, ACCT, scp));
    OK(kms_iam_org_account_move(f->iam, ACCT, member, ou, root));
    OK(kms_iam_org_ou_delete(f->iam, ACCT, ou));
    assert_kms_error(kms_iam_org_delete(f->iam, ACCT), KMS_ERR_DELETE_CONFLICT);
}

/* ---- Access keys -------------------------------------------------------------------------- */

static void test_access_keys(void **state)
{
    fixture *f = *state;
    user(f, "gina");
    char k1[32], k2[32], k3[32];
    char *s1 = NULL, *s2 = NULL, *s3 = NULL;
    json_t *o = NULL;
    OK(kms_iam_access_key_create(f->iam, ACCT, "gina", NOW, k1, &s1, &o));
    assert_string_equal(jstr(o, "AccessKeyId"), k1);
    assert_string_equal(jstr(o, "Status"), "Active");
    assert_null(json_object_get(o, "SecretAccessKey"));
    json_decref(o);
    OK(kms_iam_access_key_create(f->iam, ACCT, "gina", NOW, k2, &s2, NULL));
    assert_kms_error(kms_iam_access_key_create(f->iam, ACCT, "gina", NOW, k3, &s3, NULL),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_null(s3);
    assert_kms_error(kms_iam_access_key_create(f->iam, ACCT, "nobody", NOW, k3, &s3, NULL),
                     KMS_ERR_NO_SUCH_ENTITY);

    kms_identity id;
    assert_kms_error(kms_iam_authenticate(f->iam, k1, s2, NULL, NOW, &id), KMS_ERR_BAD_SIGNATURE);
    f->sealer.opens = 0;
    OK(kms_iam_authenticate(f->iam, k1, s1, NULL, NOW, &id));
    assert_string_equal(id.access_key_id, k1);
    assert_string_equal(id.user_name, "gina");
    assert_int_equal(id.session_expiry, 0);
    kms_iam_identity_clean_up(&id);
    /* Verified once: later requests do not unseal again, and a wrong secret still fails. */
    OK(kms_iam_authenticate(f->iam, k1, s1, NULL, NOW + 5, &id));
    kms_iam_identity_clean_up(&id);
    assert_int_equal(f->sealer.opens, 1);
    assert_kms_error(kms_iam_authenticate(f->iam, k1, s2, NULL, NOW, &id), KMS_ERR_BAD_SIGNATURE);
    assert_kms_error(kms_iam_authenticate(f->iam, k1, "", NULL, NOW, &id), KMS_ERR_BAD_SIGNATURE);
    assert_kms_error(kms_iam_authenticate(f->iam, "AKIAAAAAAAAAAAAAAAAA", s1, NULL, NOW, &id),
                     KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_kms_error(kms_iam_authenticate(f->iam, "garbage", s1, NULL, NOW, &id),
                     KMS_ERR_UNRECOGNIZED_CLIENT);

    OK(kms_iam_access_key_last_used(f->iam, ACCT, k1, &o));
    json_t *lu = json_object_get(o, "AccessKeyLastUsed");
    assert_int_equal(json_integer_value(json_object_get(lu, "LastUsedDate")), NOW);
    assert_string_equal(jstr(lu, "ServiceName"), "kms");
    assert_string_equal(jstr(lu, "Region"), "eu-west-1");
    assert_string_equal(jstr(o, "UserName"), "gina");
    json_decref(o);
    OK(kms_iam_access_key_last_used(f->iam, ACCT, k2, &o));
    assert_string_equal(jstr(json_object_get(o, "AccessKeyLastUsed"), "ServiceName"), "N/A");
    json_decref(o);

    OK(kms_iam_access_key_update(f->iam, ACCT, "gina", k1, "Inactive"));
    assert_kms_error(kms_iam_authenticate(f->iam, k1, s1, NULL, NOW, &id),
                     KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_kms_error(kms_iam_access_key_update(f->iam, ACCT, "gina", k1, "Sleeping"),
                     KMS_ERR_VALIDATION);
    OK(kms_iam_access_key_update(f->iam, ACCT, "gina", k1, "Active"));
    OK(kms_iam_authenticate(f->iam, k1, s1, NULL, NOW, &id));
    kms_iam_identity_clean_up(&id);

    OK(kms_iam_access_key_list(f->iam, ACCT, "gina", &o));
    assert_int_equal(json_array_size(json_object_get(o, "AccessKeyMetadata")), 2);
    json_decref(o);

    char *looked = NULL;
    OK(kms_iam_credentials_lookup(f->iam, k2, NULL, NOW, &id, &looked));
    assert_string_equal(looked, s2);
    kms_iam_secret_free(looked);
    kms_iam_identity_clean_up(&id);

    assert_kms_error(kms_iam_user_delete(f->iam, ACCT, "gina"), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_access_key_delete(f->iam, ACCT, "gina", k1));
    assert_kms_error(kms_iam_access_key_delete(f->iam, ACCT, "gina", k1), KMS_ERR_NO_SUCH_ENTITY);
    assert_kms_error(kms_iam_authenticate(f->iam, k1, s1, NULL, NOW, &id),
                     KMS_ERR_UNRECOGNIZED_CLIENT);
    OK(kms_iam_access_key_delete(f->iam, ACCT, "gina", k2));
    OK(kms_iam_user_delete(f->iam, ACCT, "gina"));
    kms_iam_secret_free(s1);
    kms_iam_secret_free(s2);
}

/* ---- Sessions ------------------------------------------------------------------------------ */

static void test_assume_role(void **state)
{
    fixture *f = *state;
    char key_id[32];
    char *secret = NULL;
    bootstrap(f, key_id, &secret);
    kms_identity caller;
    OK(kms_iam_authenticate(f->iam, key_id, secret, NULL, NOW, &caller));

    OK(kms_iam_role_create(f->iam, ACCT, "/app/", "reader", TRUST_ACCT, NULL, 7200, NULL,
                           (kms_iam_tag[]){{"env", "prod"}}, 1, NOW, NULL));
    OK(kms_iam_inline_put(f->iam, ACCT, KMS_IAM_ROLE, "reader", "read", ALLOW_KMS));
    const char *role_arn = "arn:aws:iam::" ACCT ":role/app/reader";

    kms_iam_credentials c;
    assert_kms_error(
        kms_iam_assume_role(f->iam, &caller, role_arn, "s", 0, NULL, NULL, NULL, NOW, &c),
        KMS_ERR_VALIDATION);
    assert_kms_error(
        kms_iam_assume_role(f->iam, &caller, role_arn, "sess", 7201, NULL, NULL, NULL, NOW, &c),
        KMS_ERR_VALIDATION);
    assert_kms_error(
        kms_iam_assume_role(f->iam, &caller, role_arn, "sess", 899, NULL, NULL, NULL, NOW, &c),
        KMS_ERR_VALIDATION);
    assert_kms_error(kms_iam_assume_role(f->iam, &caller, "arn:aws:iam::" ACCT ":role/none", "sess",
                                         0, NULL, NULL, NULL, NOW, &c),
                     KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_assume_role(f->iam, &caller, role_arn, "sess", 0, ALLOW_KMS, NULL, NULL, NOW, &c));
    assert_int_equal(strncmp(c.access_key_id, "ASIA", 4), 0);
    assert_int_equal(c.expiration, NOW + 3600);
    assert_string_equal(c.assumed_role_arn, "arn:aws:sts::" ACCT ":assumed-role/reader/sess");
    assert_int_equal(strncmp(c.assumed_role_id, "AROA", 4), 0);
    assert_non_null(strstr(c.assumed_role_id, ":sess"));

    kms_identity s;
    OK(kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key, c.session_token, NOW + 10,
                            &s));
    assert_string_equal(s.type, "AssumedRole");
    assert_string_equal(s.arn, "arn:aws:sts::" ACCT ":assumed-role/reader/sess");
    assert_string_equal(s.role_arn, role_arn);
    assert_string_equal(s.role_name, "reader");
    assert_string_equal(s.session_name, "sess");
    assert_string_equal(s.principal_id, c.assumed_role_id);
    assert_string_equal(s.session_policy, ALLOW_KMS);
    assert_int_equal(s.session_expiry, NOW + 3600);
    assert_false(s.mfa_authenticated);
    assert_int_equal(s.tag_count, 1);
    assert_string_equal(s.tag_keys[0], "env");
    kms_iam_docs d;
    OK(kms_iam_load_docs(f->iam, &s, &d));
    assert_int_equal(d.identity_count, 1);
    assert_string_equal(d.identity[0].id, "role/reader/inline/read");
    kms_iam_docs_clean_up(&d);

    /* Role chaining caps the session at one hour. */
    kms_iam_credentials c2;
    assert_kms_error(
        kms_iam_assume_role(f->iam, &s, role_arn, "chain", 7200, NULL, NULL, NULL, NOW, &c2),
        KMS_ERR_VALIDATION);
    assert_kms_error(kms_iam_session_token(f->iam, &s, 0, NULL, NULL, NOW, &c2),
                     KMS_ERR_ACCESS_DENIED);
    kms_iam_identity_clean_up(&s);

    /* No token at all: what is missing, not an expiry. */
    assert_kms_error(
        kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key, NULL, NOW, &s),
        KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_non_null(strstr(kms_last_error_message(), "its session token is missing"));
    assert_kms_error(
        kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key, "", NOW, &s),
        KMS_ERR_UNRECOGNIZED_CLIENT);
    assert_kms_error(
        kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key, "wrong", NOW, &s),
        KMS_ERR_EXPIRED_TOKEN);
    assert_kms_error(
        kms_iam_authenticate(f->iam, c.access_key_id, secret, c.session_token, NOW, &s),
        KMS_ERR_BAD_SIGNATURE);
    assert_kms_error(kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key,
                                          c.session_token, NOW + 3600, &s),
                     KMS_ERR_EXPIRED_TOKEN);
    assert_kms_error(kms_iam_authenticate(f->iam, "ASIAAAAAAAAAAAAAAAAA", c.secret_access_key,
                                          c.session_token, NOW, &s),
                     KMS_ERR_EXPIRED_TOKEN);

    /* Deleting the role revokes its sessions. */
    OK(kms_iam_inline_delete(f->iam, ACCT, KMS_IAM_ROLE, "reader", "read"));
    OK(kms_iam_role_delete(f->iam, ACCT, "reader"));
    assert_kms_error(kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key,
                                          c.session_token, NOW + 10, &s),
                     KMS_ERR_EXPIRED_TOKEN);
    kms_iam_credentials_clean_up(&c);
    kms_iam_identity_clean_up(&caller);
    kms_iam_secret_free(secret);
}

static void test_session_token_mfa(void **state)
{
    fixture *f = *state;
    user(f, "hank");
    char k[32];
    char *sk = NULL;
    OK(kms_iam_access_key_create(f->iam, ACCT, "hank", NOW, k, &sk, NULL));
    kms_identity caller;
    OK(kms_iam_authenticate(f->iam, k, sk, NULL, NOW, &caller));

    char *serial = NULL, *seed32 = NULL;
    OK(kms_iam_mfa_create(f->iam, ACCT, NULL, "hank-phone", NOW, &serial, &seed32));
    assert_string_equal(serial, "arn:aws:iam::" ACCT ":mfa/hank-phone");
    uint8_t seed[32];
    int n = b32_decode(seed32, seed, sizeof seed);
    assert_int_equal(n, 20);
    char c1[7], c2[7], c3[7];
    code_at(seed, 20, NOW - 30, c1);
    code_at(seed, 20, NOW, c2);
    OK(kms_iam_mfa_enable(f->iam, ACCT, "hank", serial, c1, c2, NOW));

    kms_iam_credentials c;
    code_at(seed, 20, NOW + 30, c3);
    if (strcmp(c3, "000000") != 0) {
        assert_kms_error(kms_iam_session_token(f->iam, &caller, 0, serial, "000000", NOW + 30, &c),
                         KMS_ERR_INVALID_AUTH_CODE);
    }
    assert_kms_error(kms_iam_session_token(f->iam, &caller, 100, NULL, NULL, NOW, &c),
                     KMS_ERR_VALIDATION);
    assert_kms_error(kms_iam_session_token(f->iam, &caller, 0, serial, NULL, NOW, &c),
                     KMS_ERR_VALIDATION);
    OK(kms_iam_session_token(f->iam, &caller, 0, serial, c3, NOW + 30, &c));
    assert_int_equal(c.expiration, NOW + 30 + 43200);
    /* The same code again is a replay. */
    kms_iam_credentials again;
    assert_kms_error(kms_iam_session_token(f->iam, &caller, 0, serial, c3, NOW + 35, &again),
                     KMS_ERR_INVALID_AUTH_CODE);

    kms_identity s;
    OK(kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key, c.session_token, NOW + 60,
                            &s));
    assert_string_equal(s.type, "IAMUser");
    assert_string_equal(s.user_name, "hank");
    assert_true(s.mfa_authenticated);
    assert_int_equal(s.mfa_auth_time, NOW + 30);
    assert_int_equal(s.session_expiry, NOW + 30 + 43200);
    kms_iam_identity_clean_up(&s);
    assert_kms_error(kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key,
                                          c.session_token, NOW + 30 + 43200, &s),
                     KMS_ERR_EXPIRED_TOKEN);
    OK(kms_iam_sessions_purge(f->iam, NOW + 30 + 43200));
    kms_iam_credentials_clean_up(&c);

    /* Without MFA the session is not MFA-authenticated. */
    OK(kms_iam_session_token(f->iam, &caller, 900, NULL, NULL, NOW, &c));
    OK(kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key, c.session_token, NOW,
                            &s));
    assert_false(s.mfa_authenticated);
    kms_iam_identity_clean_up(&s);
    kms_iam_credentials_clean_up(&c);

    kms_iam_identity_clean_up(&caller);
    kms_iam_secret_free(sk);
    free(serial);
    kms_iam_secret_free(seed32);
}

/* ---- TOTP and MFA devices ----------------------------------------------------------------- */

/* RFC 6238 Appendix B, the SHA-1 rows (seed "12345678901234567890", 8 digits). */
static void test_totp_rfc6238_vectors(void **state)
{
    (void)state;
    static const struct {
        uint64_t t;
        const char *code;
    } v[] = {
        {59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
        {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000ULL, "65353130"},
    };
    const uint8_t *seed = (const uint8_t *)"12345678901234567890";
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[9];
        OK(kms_iam_totp_code(seed, 20, v[i].t / 30, 8, out));
        assert_string_equal(out, v[i].code);
    }
    /* RFC 4226 Appendix D: HOTP counter 0 and 1, 6 digits. */
    char out[7];
    OK(kms_iam_totp_code(seed, 20, 0, 6, out));
    assert_string_equal(out, "755224");
    OK(kms_iam_totp_code(seed, 20, 1, 6, out));
    assert_string_equal(out, "287082");
    char *b32 = NULL;
    OK(kms_iam_base32_encode((const uint8_t *)"foobar", 6, &b32));
    assert_string_equal(b32, "MZXW6YTBOI"); /* RFC 4648 section 10, without padding */
    kms_iam_secret_free(b32);
}

static void test_mfa_devices(void **state)
{
    fixture *f = *state;
    char key_id[32];
    char *secret = NULL;
    bootstrap(f, key_id, &secret);
    kms_iam_secret_free(secret);

    char *serial = NULL, *seed32 = NULL;
    OK(kms_iam_mfa_create(f->iam, ACCT, NULL, "root-mfa", NOW, &serial, &seed32));
    assert_int_equal(strlen(seed32), 32);
    char *serial2 = NULL, *seed2 = NULL;
    assert_kms_error(kms_iam_mfa_create(f->iam, ACCT, NULL, "root-mfa", NOW, &serial2, &seed2),
                     KMS_ERR_ENTITY_EXISTS);
    uint8_t seed[32];
    assert_int_equal(b32_decode(seed32, seed, sizeof seed), 20);
    char c0[7], c1[7], c2[7];
    code_at(seed, 20, NOW - 30, c0);
    code_at(seed, 20, NOW, c1);
    code_at(seed, 20, NOW + 30, c2);
    /* Not consecutive. */
    assert_kms_error(kms_iam_mfa_enable(f->iam, ACCT, NULL, serial, c1, c0, NOW),
                     KMS_ERR_INVALID_AUTH_CODE);
    assert_kms_error(kms_iam_mfa_enable(f->iam, ACCT, NULL, serial, "12345", c0, NOW),
                     KMS_ERR_VALIDATION);
    OK(kms_iam_mfa_enable(f->iam, ACCT, NULL, serial, c0, c1, NOW));
    assert_kms_error(kms_iam_mfa_enable(f->iam, ACCT, "admin", serial, c0, c1, NOW),
                     KMS_ERR_ENTITY_EXISTS);
    json_t *o = NULL;
    OK(kms_iam_mfa_list(f->iam, ACCT, NULL, &o));
    json_t *devs = json_object_get(o, "MFADevices");
    assert_int_equal(json_array_size(devs), 1);
    assert_string_equal(jstr(json_array_get(devs, 0), "SerialNumber"), serial);
    json_decref(o);
    OK(kms_iam_mfa_list_virtual(f->iam, ACCT, "Assigned", &o));
    assert_int_equal(json_array_size(json_object_get(o, "VirtualMFADevices")), 1);
    json_decref(o);

    /* c1 was consumed by the enable: a replay. c2 (the next step) is fine, once. */
    assert_kms_error(kms_iam_mfa_check(f->iam, ACCT, NULL, NULL, c1, NOW),
                     KMS_ERR_INVALID_AUTH_CODE);
    OK(kms_iam_mfa_check(f->iam, ACCT, NULL, NULL, c2, NOW + 30));
    assert_kms_error(kms_iam_mfa_check(f->iam, ACCT, NULL, NULL, c2, NOW + 31),
                     KMS_ERR_INVALID_AUTH_CODE);
    char far[7];
    code_at(seed, 20, NOW + 300, far);
    if (strcmp(far, c2) != 0) {
        assert_kms_error(kms_iam_mfa_check(f->iam, ACCT, NULL, NULL, far, NOW + 31),
                         KMS_ERR_INVALID_AUTH_CODE);
    }
    /* admin has no device. */
    assert_kms_error(kms_iam_mfa_check(f->iam, ACCT, "admin", NULL, c2, NOW + 30),
                     KMS_ERR_INVALID_AUTH_CODE);

    assert_kms_error(kms_iam_mfa_delete(f->iam, ACCT, serial), KMS_ERR_DELETE_CONFLICT);
    assert_kms_error(kms_iam_mfa_deactivate(f->iam, ACCT, "admin", serial), KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_mfa_deactivate(f->iam, ACCT, NULL, serial));
    OK(kms_iam_mfa_delete(f->iam, ACCT, serial));
    assert_kms_error(kms_iam_mfa_delete(f->iam, ACCT, serial), KMS_ERR_NO_SUCH_ENTITY);
    free(serial);
    kms_iam_secret_free(seed32);
}

/* ---- Passwords ---------------------------------------------------------------------------- */

static void test_passwords(void **state)
{
    fixture *f = *state;
    kms_iam_password_policy p = {
        .minimum_password_length = 10,
        .require_symbols = true,
        .require_numbers = true,
        .require_uppercase_characters = true,
        .require_lowercase_characters = true,
        .allow_users_to_change_password = true,
        .max_password_age = 30,
        .password_reuse_prevention = 2,
    };
    assert_kms_error(kms_iam_password_policy_get(f->iam, ACCT, &p), KMS_ERR_NO_SUCH_ENTITY);
    p.minimum_password_length = 10; /* get failed, the struct was cleared */
    p.require_symbols = p.require_numbers = p.require_uppercase_characters = true;
    p.require_lowercase_characters = p.allow_users_to_change_password = true;
    p.max_password_age = 30;
    p.password_reuse_prevention = 2;
    kms_iam_password_policy bad = p;
    bad.minimum_password_length = 3;
    assert_kms_error(kms_iam_password_policy_put(f->iam, ACCT, &bad), KMS_ERR_VALIDATION);
    OK(kms_iam_password_policy_put(f->iam, ACCT, &p));
    user(f, "ivy");

    static const char first[] = "Correct-Horse-7";
    assert_kms_error(kms_iam_login_profile_create(f->iam, ACCT, "ivy", "Sh0rt!", false, NOW, NULL),
                     KMS_ERR_PASSWORD_POLICY);
    assert_kms_error(
        kms_iam_login_profile_create(f->iam, ACCT, "ivy", "NoSymbols123", false, NOW, NULL),
        KMS_ERR_PASSWORD_POLICY);
    assert_kms_error(
        kms_iam_login_profile_create(f->iam, ACCT, "ivy", "nouppercase-12", false, NOW, NULL),
        KMS_ERR_PASSWORD_POLICY);
    json_t *o = NULL;
    OK(kms_iam_login_profile_create(f->iam, ACCT, "ivy", first, true, NOW, &o));
    assert_string_equal(jstr(o, "UserName"), "ivy");
    assert_true(json_is_true(json_object_get(o, "PasswordResetRequired")));
    json_decref(o);
    assert_kms_error(kms_iam_login_profile_create(f->iam, ACCT, "ivy", first, false, NOW, NULL),
                     KMS_ERR_ENTITY_EXISTS);

    bool must_change = false, mfa = true;
    OK(kms_iam_password_check(f->iam, ACCT, "ivy", first, NOW + 1, &must_change, &mfa));
    assert_true(must_change); /* reset required */
    assert_false(mfa);
    assert_kms_error(
        kms_iam_password_check(f->iam, ACCT, "ivy", "Wrong-Horse-7", NOW, &must_change, &mfa),
        KMS_ERR_ACCESS_DENIED);
    assert_kms_error(kms_iam_password_check(f->iam, ACCT, "nobody", first, NOW, &must_change, &mfa),
                     KMS_ERR_ACCESS_DENIED);

    /* ChangePassword: old must verify, the new one not reused. */
    static const char second[] = "Battery-Staple-8";
    assert_kms_error(kms_iam_password_change(f->iam, ACCT, "ivy", "Wrong-Horse-7", second, NOW),
                     KMS_ERR_ACCESS_DENIED);
    assert_kms_error(kms_iam_password_change(f->iam, ACCT, "ivy", first, first, NOW),
                     KMS_ERR_PASSWORD_POLICY);
    OK(kms_iam_password_change(f->iam, ACCT, "ivy", first, second, NOW + 100));
    OK(kms_iam_password_check(f->iam, ACCT, "ivy", second, NOW + 200, &must_change, &mfa));
    assert_false(must_change);
    /* Reuse prevention 2: the first password is still remembered. */
    assert_kms_error(kms_iam_password_change(f->iam, ACCT, "ivy", second, first, NOW + 300),
                     KMS_ERR_PASSWORD_POLICY);
    /* Older than MaxPasswordAge (30 days): expired, must change. */
    OK(kms_iam_password_check(f->iam, ACCT, "ivy", second, NOW + 100 + 31 * 86400, &must_change,
                              &mfa));
    assert_true(must_change);

    OK(kms_iam_login_profile_update(f->iam, ACCT, "ivy", NULL, 1, NOW));
    OK(kms_iam_login_profile_get(f->iam, ACCT, "ivy", &o));
    assert_true(json_is_true(json_object_get(o, "PasswordResetRequired")));
    json_decref(o);

    /* Stored as Argon2id, never in the clear. */
    close_all(f);
    assert_false(db_contains(f, first, strlen(first)));
    assert_false(db_contains(f, second, strlen(second)));
    assert_true(db_contains(f, "$argon2id$", 10));
    open_all(f, false);

    assert_kms_error(kms_iam_user_delete(f->iam, ACCT, "ivy"), KMS_ERR_DELETE_CONFLICT);
    OK(kms_iam_login_profile_delete(f->iam, ACCT, "ivy"));
    assert_kms_error(kms_iam_login_profile_delete(f->iam, ACCT, "ivy"), KMS_ERR_NO_SUCH_ENTITY);
    OK(kms_iam_user_delete(f->iam, ACCT, "ivy"));
    OK(kms_iam_password_policy_delete(f->iam, ACCT));
}

/* ---- Secrets at rest ---------------------------------------------------------------------- */

/* ---- Sign-in: equal work, throttling ------------------------------------------------------ */

static void login_profile(fixture *f, const char *name, const char *password)
{
    user(f, name);
    OK(kms_iam_login_profile_create(f->iam, ACCT, name, password, false, NOW, NULL));
}

/* One failed password check; asserts AccessDenied and that it ran exactly one Argon2
 * verification. */
static void denied_with_one_argon2(fixture *f, const char *user_name, const char *password)
{
    bool must_change = false, mfa = false;
    uint64_t before = kms_iam_argon2_count(f->iam);
    assert_kms_error(
        kms_iam_password_check(f->iam, ACCT, user_name, password, NOW, &must_change, &mfa),
        KMS_ERR_ACCESS_DENIED);
    assert_string_equal(kms_last_error_message(), "Your authentication information is incorrect.");
    assert_int_equal(kms_iam_argon2_count(f->iam) - before, 1);
}

/* An unknown user, a user without a login profile and the root user without one cost the same
 * Argon2 verification as a wrong password, against a dummy hash made with the same parameters
 * as every stored password: the time of the answer does not tell users apart. */
static void test_signin_equal_work(void **state)
{
    fixture *f = *state;
    assert_int_equal(crypto_pwhash_str_needs_rehash(kms_iam_argon2_dummy(),
                                                    crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                    crypto_pwhash_MEMLIMIT_INTERACTIVE),
                     0);
    assert_int_equal(strncmp(kms_iam_argon2_dummy(), "$argon2id$", 10), 0);
    login_profile(f, "ivy", "Correct-Horse-7");
    user(f, "nolo"); /* no login profile */
    denied_with_one_argon2(f, "ivy", "Wrong-Horse-7");
    denied_with_one_argon2(f, "nobody", "Wrong-Horse-7");
    denied_with_one_argon2(f, "nolo", "Wrong-Horse-7");
    denied_with_one_argon2(f, NULL, "Wrong-Horse-7");
    bool must_change = true, mfa = true;
    uint64_t before = kms_iam_argon2_count(f->iam);
    OK(kms_iam_password_check(f->iam, ACCT, "ivy", "Correct-Horse-7", NOW, &must_change, &mfa));
    assert_int_equal(kms_iam_argon2_count(f->iam) - before, 1);
}

/* begin, then a wrong password: one failed sign-in. */
static void failed_sign_in(fixture *f, const char *user_name, const char *source, int64_t now)
{
    bool must_change = false, mfa = false;
    OK(kms_iam_signin_begin(f->iam, ACCT, user_name, source, now));
    assert_kms_error(
        kms_iam_password_check(f->iam, ACCT, user_name, "Wrong-Horse-7", now, &must_change, &mfa),
        KMS_ERR_ACCESS_DENIED);
}

/* begin refused with LimitExceeded and `message`, without any Argon2 verification. */
static void refused(fixture *f, const char *user_name, const char *source, int64_t now,
                    const char *message)
{
    uint64_t before = kms_iam_argon2_count(f->iam);
    assert_kms_error(kms_iam_signin_begin(f->iam, ACCT, user_name, source, now),
                     KMS_ERR_LIMIT_EXCEEDED);
    assert_string_equal(kms_last_error_message(), message);
    assert_int_equal(kms_iam_argon2_count(f->iam), before);
}

static void test_signin_lockout(void **state)
{
    fixture *f = *state;
    login_profile(f, "ivy", "Correct-Horse-7");
    bool must_change = false, mfa = false;
    /* 2023-11-14T22:13:20Z + 15 minutes */
    static const char ivy_locked[] = "Too many failed sign-in attempts for user ivy: sign-in is "
                                     "refused until 2023-11-14T22:28:20Z. Try again after that "
                                     "time.";
    for (int i = 0; i < KMS_IAM_SIGNIN_USER_FAILURES; i++) {
        failed_sign_in(f, "ivy", "192.0.2.1", NOW + i);
    }
    refused(f, "ivy", "192.0.2.1", NOW + 10, ivy_locked);
    /* From another source, in another case of the name, with the right password: the user's
     * counter refuses all of them. */
    refused(f, "IVY", "192.0.2.2", NOW + 899,
            "Too many failed sign-in attempts for user IVY: sign-in is refused until "
            "2023-11-14T22:28:20Z. Try again after that time.");
    refused(f, "ivy", NULL, NOW + 899, ivy_locked);
    /* The window passed: the password is checked again. */
    OK(kms_iam_signin_begin(f->iam, ACCT, "ivy", "192.0.2.1", NOW + 900));
    OK(kms_iam_password_check(f->iam, ACCT, "ivy", "Correct-Horse-7", NOW + 900, &must_change,
                              &mfa));
    OK(kms_iam_signin_succeed(f->iam, ACCT, "ivy", "192.0.2.1"));

    /* A success resets the user's counter: 4 failures, a success, 4 more are allowed. */
    int64_t t = NOW + 1000;
    for (int i = 0; i < KMS_IAM_SIGNIN_USER_FAILURES - 1; i++) {
        failed_sign_in(f, "ivy", "192.0.2.1", t);
    }
    OK(kms_iam_signin_begin(f->iam, ACCT, "ivy", "192.0.2.1", t));
    OK(kms_iam_password_check(f->iam, ACCT, "ivy", "Correct-Horse-7", t, &must_change, &mfa));
    OK(kms_iam_signin_succeed(f->iam, ACCT, "ivy", "192.0.2.1"));
    for (int i = 0; i < KMS_IAM_SIGNIN_USER_FAILURES; i++) {
        failed_sign_in(f, "ivy", "192.0.2.1", t + 1);
    }
    refused(f, "ivy", "192.0.2.1", t + 2,
            "Too many failed sign-in attempts for user ivy: sign-in is refused until "
            "2023-11-14T22:45:01Z. Try again after that time.");

    /* An unknown user is locked out exactly as a known one; so is the root user. */
    for (int i = 0; i < KMS_IAM_SIGNIN_USER_FAILURES; i++) {
        failed_sign_in(f, "nobody", "192.0.2.3", NOW);
        failed_sign_in(f, NULL, "192.0.2.3", NOW);
    }
    refused(f, "nobody", "192.0.2.3", NOW,
            "Too many failed sign-in attempts for user nobody: sign-in is refused until "
            "2023-11-14T22:28:20Z. Try again after that time.");
    refused(f, NULL, "192.0.2.3", NOW,
            "Too many failed sign-in attempts for the root user: sign-in is refused until "
            "2023-11-14T22:28:20Z. Try again after that time.");
}

/* One source guessing across many user names is stopped by its own counter. */
static void test_signin_source_lockout(void **state)
{
    fixture *f = *state;
    login_profile(f, "ivy", "Correct-Horse-7");
    char name[16];
    for (int i = 0; i < KMS_IAM_SIGNIN_SOURCE_FAILURES; i++) {
        snprintf(name, sizeof name, "guess%d", i);
        failed_sign_in(f, name, "198.51.100.7", NOW + 60);
    }
    refused(f, "ivy", "198.51.100.7", NOW + 60,
            "Too many failed sign-in attempts from 198.51.100.7: sign-in is refused until "
            "2023-11-14T22:29:20Z. Try again after that time.");
    /* Another source signs ivy in; after the window the source may try again. */
    bool must_change = false, mfa = false;
    OK(kms_iam_signin_begin(f->iam, ACCT, "ivy", "198.51.100.8", NOW + 60));
    OK(kms_iam_password_check(f->iam, ACCT, "ivy", "Correct-Horse-7", NOW + 60, &must_change,
                              &mfa));
    OK(kms_iam_signin_succeed(f->iam, ACCT, "ivy", "198.51.100.8"));
    OK(kms_iam_signin_begin(f->iam, ACCT, "ivy", "198.51.100.7", NOW + 60 + 900));
}

/* A wrong MFA code after the right password is a failed sign-in too (sign-in never calls
 * kms_iam_signin_succeed for it): five lock the user out. */
static void test_signin_totp_failures(void **state)
{
    fixture *f = *state;
    login_profile(f, "hank", "Correct-Horse-7");
    char *serial = NULL, *seed32 = NULL;
    OK(kms_iam_mfa_create(f->iam, ACCT, NULL, "hank-phone", NOW, &serial, &seed32));
    uint8_t seed[32];
    assert_int_equal(b32_decode(seed32, seed, sizeof seed), 20);
    char c1[7], c2[7], good[7];
    code_at(seed, 20, NOW - 30, c1);
    code_at(seed, 20, NOW, c2);
    OK(kms_iam_mfa_enable(f->iam, ACCT, "hank", serial, c1, c2, NOW));
    int64_t t = NOW + 3600;
    code_at(seed, 20, t, good);
    /* A code of none of the steps accepted at t (one either side). */
    char before[7], after[7], bad[12];
    code_at(seed, 20, t - 30, before);
    code_at(seed, 20, t + 30, after);
    int guess = 0;
    do {
        snprintf(bad, sizeof bad, "%06d", guess++);
    } while (strcmp(bad, good) == 0 || strcmp(bad, before) == 0 || strcmp(bad, after) == 0);
    for (int i = 0; i < KMS_IAM_SIGNIN_USER_FAILURES; i++) {
        bool must_change = false, mfa = false;
        OK(kms_iam_signin_begin(f->iam, ACCT, "hank", "127.0.0.1", t));
        OK(kms_iam_password_check(f->iam, ACCT, "hank", "Correct-Horse-7", t, &must_change, &mfa));
        assert_true(mfa);
        assert_kms_error(kms_iam_mfa_check(f->iam, ACCT, "hank", serial, bad, t),
                         KMS_ERR_INVALID_AUTH_CODE);
    }
    refused(f, "hank", "127.0.0.1", t,
            "Too many failed sign-in attempts for user hank: sign-in is refused until "
            "2023-11-14T23:28:20Z. Try again after that time.");
    free(serial);
    kms_iam_secret_free(seed32);
}

/* The counters are in the database: another handle (another process) sees them. */
static void test_signin_counters_shared(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < KMS_IAM_SIGNIN_USER_FAILURES; i++) {
        failed_sign_in(f, "ivy", "127.0.0.1", NOW);
        close_all(f);
        open_all(f, false);
    }
    assert_kms_error(kms_iam_signin_begin(f->iam, ACCT, "ivy", "127.0.0.1", NOW),
                     KMS_ERR_LIMIT_EXCEEDED);
}

static void test_secrets_not_in_db(void **state)
{
    fixture *f = *state;
    char key_id[32];
    char *secret = NULL;
    bootstrap(f, key_id, &secret);
    kms_identity caller;
    OK(kms_iam_authenticate(f->iam, key_id, secret, NULL, NOW, &caller));
    kms_iam_credentials c;
    OK(kms_iam_session_token(f->iam, &caller, 0, NULL, NULL, NOW, &c));
    char *serial = NULL, *seed32 = NULL;
    OK(kms_iam_mfa_create(f->iam, ACCT, NULL, "dev", NOW, &serial, &seed32));
    uint8_t seed[32];
    assert_int_equal(b32_decode(seed32, seed, sizeof seed), 20);

    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0: live (WAL); pass 1: after close (checkpointed into the main file). */
        if (pass == 1) {
            close_all(f);
        }
        assert_true(db_contains(f, key_id, strlen(key_id))); /* ids are not secret */
        assert_false(db_contains(f, secret, strlen(secret)));
        assert_false(db_contains(f, c.secret_access_key, strlen(c.secret_access_key)));
        assert_false(db_contains(f, c.session_token, strlen(c.session_token)));
        assert_false(db_contains(f, seed32, strlen(seed32)));
        assert_false(db_contains(f, seed, 20));
    }
    open_all(f, false);
    /* Everything still works from the sealed copies. */
    kms_identity s;
    OK(kms_iam_authenticate(f->iam, c.access_key_id, c.secret_access_key, c.session_token, NOW,
                            &s));
    kms_iam_identity_clean_up(&s);
    kms_iam_credentials_clean_up(&c);
    kms_iam_identity_clean_up(&caller);
    kms_iam_secret_free(secret);
    kms_iam_secret_free(seed32);
    free(serial);
}

/* ---- The credential report ------------------------------------------------------------------ */

#define REPORT_HEADER                                                                              \
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"       \
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"             \
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"    \
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"                   \
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"                  \
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n"

/* The CSV of GetCredentialReport at `now` (malloc'd, NUL-terminated). */
static char *report_csv(fixture *f, int64_t now, int64_t generated)
{
    json_t *o = NULL;
    OK(kms_iam_credential_report_get(f->iam, ACCT, now, &o));
    assert_string_equal(jstr(o, "ReportFormat"), "text/csv");
    assert_int_equal(json_integer_value(json_object_get(o, "GeneratedTime")), generated);
    uint8_t *csv = NULL;
    size_t n = 0;
    OK(kms_base64_decode(jstr(o, "Content"), "Content", false, &csv, &n));
    json_decref(o);
    char *text = malloc(n + 1);
    assert_non_null(text);
    memcpy(text, csv, n);
    text[n] = '\0';
    free(csv);
    return text;
}

/* Root first, then each user; a user with a password, MFA and two keys (one used, one
 * inactive) fills every column as the IAM User Guide describes them. */
static void test_credential_report(void **state)
{
    fixture *f = *state;
    char key_id[32];
    char *secret = NULL;
    bootstrap(f, key_id, &secret); /* root and admin at NOW; admin's key at NOW */
    kms_iam_secret_free(secret);
    json_t *o = NULL;
    assert_kms_error(kms_iam_credential_report_get(f->iam, ACCT, NOW, &o),
                     KMS_ERR_REPORT_NOT_PRESENT);
    assert_null(o);

    OK(kms_iam_user_create(f->iam, ACCT, NULL, "dora", NULL, NULL, 0, NOW + 10, &o));
    json_decref(o);
    OK(kms_iam_login_profile_create(f->iam, ACCT, "dora", "Correct-Horse-7-Battery", false,
                                    NOW + 100, NULL));
    char *serial = NULL, *seed32 = NULL;
    OK(kms_iam_mfa_create(f->iam, ACCT, NULL, "dora", NOW + 200, &serial, &seed32));
    uint8_t seed[32];
    assert_int_equal(b32_decode(seed32, seed, sizeof seed), 20);
    char c1[7], c2[7];
    code_at(seed, 20, NOW + 200, c1);
    code_at(seed, 20, NOW + 230, c2);
    OK(kms_iam_mfa_enable(f->iam, ACCT, "dora", serial, c1, c2, NOW + 230));
    char k1[32], k2[32];
    char *s1 = NULL, *s2 = NULL;
    OK(kms_iam_access_key_create(f->iam, ACCT, "dora", NOW + 300, k1, &s1, NULL));
    OK(kms_iam_access_key_create(f->iam, ACCT, "dora", NOW + 400, k2, &s2, NULL));
    OK(kms_iam_access_key_update(f->iam, ACCT, "dora", k2, "Inactive"));
    OK(kms_iam_access_key_used(f->iam, k1, "kms", NOW + 500));
    bool must_change = false, mfa = false;
    OK(kms_iam_password_check(f->iam, ACCT, "dora", "Correct-Horse-7-Battery", NOW + 600,
                              &must_change, &mfa));

    OK(kms_iam_credential_report_generate(f->iam, ACCT, NOW + 1000, &o));
    assert_string_equal(jstr(o, "State"), "COMPLETE");
    assert_non_null(jstr(o, "Description"));
    json_decref(o);
    /* Another handle (another process) reads what this one generated. */
    close_all(f);
    open_all(f, false);
    char *csv = report_csv(f, NOW + 1000, NOW + 1000);
    assert_string_equal(
        csv, REPORT_HEADER
        "<root_account>,arn:aws:iam::111122223333:root,2023-11-14T22:13:20+00:00,not_supported,"
        "no_information,not_supported,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,"
        "N/A,N/A,false,N/A,false,N/A\n"
        "admin,arn:aws:iam::111122223333:user/admin,2023-11-14T22:13:20+00:00,false,N/A,N/A,N/A,"
        "false,true,2023-11-14T22:13:20+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,"
        "N/A\n"
        /* The default password policy (bootstrap) has a maximum age of 90 days. */
        "dora,arn:aws:iam::111122223333:user/dora,2023-11-14T22:13:30+00:00,true,"
        "2023-11-14T22:23:20+00:00,2023-11-14T22:15:00+00:00,2024-02-12T22:15:00+00:00,true,"
        "true,2023-11-14T22:18:20+00:00,2023-11-14T22:21:40+00:00,eu-west-1,kms,"
        "false,2023-11-14T22:20:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A\n");
    free(csv);
    kms_iam_secret_free(s1);
    kms_iam_secret_free(s2);
    kms_iam_secret_free(seed32);
    free(serial);
}

/* A user name with a comma is quoted (RFC 4180); a report older than 4 hours is expired until
 * the next generation. */
static void test_credential_report_expiry(void **state)
{
    fixture *f = *state;
    char key_id[32];
    char *secret = NULL;
    bootstrap(f, key_id, &secret);
    kms_iam_secret_free(secret);
    user(f, "x,y");
    json_t *o = NULL;
    OK(kms_iam_credential_report_generate(f->iam, ACCT, NOW, &o));
    json_decref(o);
    char *csv = report_csv(f, NOW + 4 * 3600, NOW);
    assert_non_null(strstr(csv, "\n\"x,y\",\"arn:aws:iam::111122223333:user/x,y\",2023"));
    free(csv);
    o = NULL;
    assert_kms_error(kms_iam_credential_report_get(f->iam, ACCT, NOW + 4 * 3600 + 1, &o),
                     KMS_ERR_REPORT_EXPIRED);
    assert_null(o);
    /* Another account has no report of its own. */
    assert_kms_error(kms_iam_credential_report_get(f->iam, "444455556666", NOW, &o),
                     KMS_ERR_REPORT_NOT_PRESENT);
    OK(kms_iam_credential_report_generate(f->iam, ACCT, NOW + 5 * 3600, &o));
    json_decref(o);
    csv = report_csv(f, NOW + 5 * 3600, NOW + 5 * 3600);
    free(csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bootstrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_and_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles_and_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_docs_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_organizations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_token_mfa, setup, teardown),
        cmocka_unit_test(test_totp_rfc6238_vectors),
        cmocka_unit_test_setup_teardown(test_mfa_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passwords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signin_equal_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signin_lockout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signin_source_lockout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signin_totp_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signin_counters_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_not_in_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_report_expiry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
