/* Authentication of access keys and STS sessions (AssumeRole, GetSessionToken).
 *
 * Session tokens are stored only as SHA-256: the token is 64 random bytes, so a plain hash is
 * enough (nothing to brute-force), and a stolen database yields no usable token. Secrets of
 * sessions are sealed like those of long-term keys. */
#include <inttypes.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/secmem.h"
#include "util/util.h"

#define SESSION_MIN 900
#define SESSION_TOKEN_DEFAULT 43200
#define SESSION_TOKEN_MAX 43200
#define SESSION_ROOT_MAX 3600
#define ROLE_CHAIN_MAX 3600
#define LAST_USED_GRANULARITY 60
#define TOKEN_RANDOM_BYTES 64

static const char invalid_token[] = "The security token included in the request is invalid.";
static const char expired_token[] = "The security token included in the request is expired";
static const char bad_signature[] = "The request signature we calculated does not match the "
                                    "signature you provided. Check your AWS Secret Access Key "
                                    "and signing method.";

/* ---- Identities --------------------------------------------------------------------------- */

void kms_iam_identity_clean_up(kms_identity *id)
{
    if (id == NULL) {
        return;
    }
    free(id->session_policy);
    for (size_t i = 0; i < id->tag_count; i++) {
        free(id->tag_keys[i]);
        free(id->tag_values[i]);
    }
    free(id->tag_keys);
    free(id->tag_values);
    memset(id, 0, sizeof *id);
}

static const char sql_tags_of[] =
    "SELECT key, value FROM iam_tags WHERE entity_id = ?1 ORDER BY key";

static int identity_tags(iam_q *q, const char *entity_id, kms_identity *out)
{
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(q->c, sql_tags_of, KMS_DB_PARAMS(kms_db_text(entity_id)), &st));
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        size_t n = out->tag_count;
        char **k = realloc(out->tag_keys, (n + 1) * sizeof *k);
        if (k != NULL) {
            out->tag_keys = k;
        }
        char **v = realloc(out->tag_values, (n + 1) * sizeof *v);
        if (v != NULL) {
            out->tag_values = v;
        }
        if (k == NULL || v == NULL) {
            s = kms_raise(KMS_ERR_INTERNAL, "out of memory");
            break;
        }
        k[n] = NULL;
        v[n] = NULL;
        if (kms_db_column_dup(st, 0, &k[n]) != 0 || kms_db_column_dup(st, 1, &v[n]) != 0) {
            free(k[n]);
            free(v[n]);
            s = -1;
            break;
        }
        out->tag_count++;
    }
    kms_db_reset(st);
    return s < 0 ? -1 : 0;
}

/* Fills the identity of a user or root (long-term or GetSessionToken session). */
static int identity_of_user(iam_q *q, const iam_entity *u, kms_identity *out)
{
    snprintf(out->type, sizeof out->type, "%s", u->is_root ? "Root" : "IAMUser");
    kms_iam_copy(out->arn, sizeof out->arn, u->arn);
    snprintf(out->account_id, sizeof out->account_id, "%s", u->account_id);
    snprintf(out->principal_id, sizeof out->principal_id, "%s", u->is_root ? u->account_id : u->id);
    if (!u->is_root) {
        kms_iam_copy(out->user_name, sizeof out->user_name, u->name);
        return identity_tags(q, u->id, out);
    }
    return 0;
}

static int identity_of_role(iam_q *q, const iam_entity *role, const char *session_name,
                            kms_identity *out)
{
    snprintf(out->type, sizeof out->type, "AssumedRole");
    snprintf(out->arn, sizeof out->arn, "arn:aws:sts::%s:assumed-role/%s/%s", role->account_id,
             role->name, session_name);
    snprintf(out->account_id, sizeof out->account_id, "%s", role->account_id);
    /* Session names are at most 64 characters (validated when the session was made), so the
     * copies below never truncate; kms_iam_copy says so to the compiler too. */
    char pid[512];
    snprintf(pid, sizeof pid, "%s:%s", role->id, session_name);
    kms_iam_copy(out->principal_id, sizeof out->principal_id, pid);
    kms_iam_copy(out->role_arn, sizeof out->role_arn, role->arn);
    kms_iam_copy(out->role_name, sizeof out->role_name, role->name);
    kms_iam_copy(out->session_name, sizeof out->session_name, session_name);
    return identity_tags(q, role->id, out);
}

int kms_iam_root_identity(kms_iam *iam, const char *account_id, kms_identity *out)
{
    memset(out, 0, sizeof *out);
    KMS_GUARD(kms_iam_account_check(account_id));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity u;
    int r = kms_iam_user_or_root(&q, account_id, NULL, &u);
    if (r == 0) {
        r = identity_of_user(&q, &u, out);
    }
    kms_iam_end(&q);
    if (r != 0) {
        kms_iam_identity_clean_up(out);
    }
    return r;
}

int kms_iam_user_identity(kms_iam *iam, const char *account_id, const char *user_name,
                          kms_identity *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(user_name != NULL, KMS_ERR_VALIDATION, "UserName must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity u;
    int r = kms_iam_user_or_root(&q, account_id, user_name, &u);
    if (r == 0) {
        r = identity_of_user(&q, &u, out);
    }
    kms_iam_end(&q);
    if (r != 0) {
        kms_iam_identity_clean_up(out);
    }
    return r;
}

/* ---- The verified-secret cache ------------------------------------------------------------ */

static void secret_mac(const kms_iam *iam, const char *secret, uint8_t mac[32])
{
    crypto_generichash(mac, 32, (const uint8_t *)secret, strlen(secret), iam->cache_key, 32);
}

/* 1: cached and equal, 0: not cached, -1: cached and different. */
static int cache_check(kms_iam *iam, const char *id, const char *secret)
{
    uint8_t mac[32];
    secret_mac(iam, secret, mac);
    int r = 0;
    pthread_mutex_lock(&iam->lock);
    for (size_t i = 0; i < IAM_SECRET_CACHE; i++) {
        if (strcmp(iam->cache[i].access_key_id, id) == 0) {
            r = sodium_memcmp(iam->cache[i].mac, mac, sizeof mac) == 0 ? 1 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&iam->lock);
    sodium_memzero(mac, sizeof mac);
    return r;
}

static void cache_put(kms_iam *iam, const char *id, const char *secret)
{
    uint8_t mac[32];
    secret_mac(iam, secret, mac);
    pthread_mutex_lock(&iam->lock);
    secret_cache_entry *e = &iam->cache[iam->cache_next];
    iam->cache_next = (iam->cache_next + 1) % IAM_SECRET_CACHE;
    snprintf(e->access_key_id, sizeof e->access_key_id, "%s", id);
    memcpy(e->mac, mac, sizeof mac);
    pthread_mutex_unlock(&iam->lock);
    sodium_memzero(mac, sizeof mac);
}

/* ---- Authentication ----------------------------------------------------------------------- */

static const char sql_key_auth[] =
    "SELECT k.status, k.secret_sealed, k.last_used_date, u.user_id, u.account_id, u.name, "
    "u.path, u.is_root, u.creation_date FROM iam_access_keys k JOIN iam_users u ON "
    "u.user_id = k.user_id WHERE k.access_key_id = ?1";
static const char sql_session_auth[] =
    "SELECT account_id, principal_id, session_name, secret_sealed, token_hash, policy, "
    "mfa_time, issued, expiry FROM iam_sessions WHERE access_key_id = ?1";
static const char sql_user_by_id[] =
    "SELECT user_id, name, path, creation_date, is_root FROM iam_users WHERE user_id = ?1";
static const char sql_role_by_id[] =
    "SELECT role_id, name, path, creation_date, 0 FROM iam_roles WHERE role_id = ?1";
static const char sql_key_used[] =
    "UPDATE iam_access_keys SET last_used_date = ?2, last_used_service = ?3, "
    "last_used_region = ?4 WHERE access_key_id = ?1";

static bool key_id_shape(const char *id, const char *prefix)
{
    if (id == NULL || strlen(id) != 20 || strncmp(id, prefix, 4) != 0) {
        return false;
    }
    for (size_t i = 4; i < 20; i++) {
        if (strchr(IAM_B32, id[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static int entity_by_id(iam_q *q, const char *sql, kms_iam_kind kind, const char *account_id,
                        const char *id, iam_entity *out)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql, KMS_DB_PARAMS(kms_db_text(id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    /* The principal is gone (deleted user or role): its sessions are revoked. */
    KMS_ENSURE(f == 1, KMS_ERR_EXPIRED_TOKEN, "%s", expired_token);
    memset(out, 0, sizeof *out);
    out->kind = kind;
    snprintf(out->account_id, sizeof out->account_id, "%s", account_id);
    int r = -1;
    if (kms_db_column_copy(st, 0, out->id, sizeof out->id, IAM_SQL_SUBJECT) == 0 &&
        kms_db_column_copy(st, 1, out->name, sizeof out->name, IAM_SQL_SUBJECT) == 0 &&
        kms_db_column_copy(st, 2, out->path, sizeof out->path, IAM_SQL_SUBJECT) == 0) {
        out->creation_date = kms_db_column_int64(st, 3);
        out->is_root = kms_db_column_int64(st, 4) != 0;
        kms_iam_entity_arn(out);
        r = 0;
    }
    kms_db_reset(st);
    return r;
}

/* secret_check: compare it (BAD_SIGNATURE); secret_out: hand the secret out instead. */
static int secret_verify(kms_iam *iam, const char *id, const void *ct, size_t ct_len,
                         const char *secret_check, char **secret_out)
{
    if (secret_check != NULL) {
        int cached = cache_check(iam, id, secret_check);
        KMS_ENSURE(cached >= 0, KMS_ERR_BAD_SIGNATURE, "%s", bad_signature);
        if (cached == 1) {
            return 0;
        }
    }
    char purpose[64];
    snprintf(purpose, sizeof purpose, "iam:access-key:%s", id);
    char *secret = NULL;
    size_t n = 0;
    KMS_GUARD(kms_iam_unseal(iam, purpose, ct, ct_len, &secret, &n));
    if (secret_out != NULL) {
        *secret_out = secret;
        return 0;
    }
    bool ok = strlen(secret_check) == n && sodium_memcmp(secret, secret_check, n) == 0;
    if (ok) {
        cache_put(iam, id, secret);
    }
    kms_iam_secret_free(secret);
    KMS_ENSURE(ok, KMS_ERR_BAD_SIGNATURE, "%s", bad_signature);
    return 0;
}

static int record_use(kms_iam *iam, iam_q *q, const char *id, const char *service, int64_t now)
{
    return kms_db_exec_sql(q->c, sql_key_used,
                           KMS_DB_PARAMS(kms_db_text(id), kms_db_int64(now),
                                         kms_db_text(service ? service : "kms"),
                                         kms_db_text(iam->region)),
                           IAM_SQL_WHAT);
}

static int auth_long_term(kms_iam *iam, iam_q *q, const char *id, const char *secret_check,
                          char **secret_out, int64_t now, kms_identity *out)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_key_auth, KMS_DB_PARAMS(kms_db_text(id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    KMS_ENSURE(f == 1 && strcmp(kms_db_column_text(st, 0), "Active") == 0,
               KMS_ERR_UNRECOGNIZED_CLIENT, "%s", invalid_token);
    int64_t last_used = kms_db_column_int64(st, 2);
    iam_entity u = {.kind = KMS_IAM_USER, .is_root = kms_db_column_int64(st, 7) != 0};
    const void *blob = NULL;
    size_t ct_len = 0;
    kms_db_column_blob(st, 1, &blob, &ct_len);
    uint8_t *ct = malloc(ct_len ? ct_len : 1);
    KMS_ENSURE(ct != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (ct_len > 0) {
        memcpy(ct, blob, ct_len);
    }
    int r = -1;
    if (kms_db_column_copy(st, 3, u.id, sizeof u.id, IAM_SQL_SUBJECT) != 0 ||
        kms_db_column_copy(st, 4, u.account_id, sizeof u.account_id, IAM_SQL_SUBJECT) != 0 ||
        kms_db_column_copy(st, 5, u.name, sizeof u.name, IAM_SQL_SUBJECT) != 0 ||
        kms_db_column_copy(st, 6, u.path, sizeof u.path, IAM_SQL_SUBJECT) != 0) {
        goto out;
    }
    u.creation_date = kms_db_column_int64(st, 8);
    kms_db_reset(st);
    kms_iam_entity_arn(&u);
    if (secret_verify(iam, id, ct, ct_len, secret_check, secret_out) != 0 ||
        identity_of_user(q, &u, out) != 0) {
        goto out;
    }
    snprintf(out->access_key_id, sizeof out->access_key_id, "%s", id);
    /* Last-used is a date for humans: one write per key and minute keeps the hot path read-only. */
    if (secret_out == NULL && now - last_used >= LAST_USED_GRANULARITY &&
        record_use(iam, q, id, "kms", now) != 0) {
        goto out;
    }
    r = 0;
out:
    free(ct);
    return r;
}

static int auth_session(kms_iam *iam, iam_q *q, const char *id, const char *token,
                        const char *secret_check, char **secret_out, int64_t now, kms_identity *out)
{
    kms_db_stmt *st = NULL;
    /* A session's key without any token is a caller's mistake, not an expiry: say what is
     * missing (kmsd answers AWS's words alone, network.c). */
    KMS_ENSURE(token != NULL && token[0] != '\0', KMS_ERR_UNRECOGNIZED_CLIENT,
               "%s The access key %s is a temporary one (ASIA...), and its session token is "
               "missing: give the session token it came with (KMS_SESSION_TOKEN, or "
               "aws_session_token in the profile)",
               invalid_token, id);
    int f = kms_db_first(q->c, sql_session_auth, KMS_DB_PARAMS(kms_db_text(id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    /* Sessions disappear when revoked (their role or user deleted) or purged after expiry. */
    KMS_ENSURE(f == 1, KMS_ERR_EXPIRED_TOKEN, "%s", expired_token);
    uint8_t hash[32];
    bool token_ok = false;
    const void *token_hash = NULL;
    size_t token_hash_len = 0;
    kms_db_column_blob(st, 4, &token_hash, &token_hash_len);
    if (token != NULL && token_hash_len == sizeof hash) {
        SHA256((const uint8_t *)token, strlen(token), hash);
        token_ok = sodium_memcmp(hash, token_hash, sizeof hash) == 0;
    }
    KMS_ENSURE(token_ok, KMS_ERR_EXPIRED_TOKEN, "%s", invalid_token);
    KMS_ENSURE(kms_db_column_int64(st, 8) > now, KMS_ERR_EXPIRED_TOKEN, "%s", expired_token);

    char account[13], principal[32], session_name[130];
    KMS_GUARD(kms_db_column_copy(st, 0, account, sizeof account, IAM_SQL_SUBJECT));
    KMS_GUARD(kms_db_column_copy(st, 1, principal, sizeof principal, IAM_SQL_SUBJECT));
    KMS_GUARD(kms_db_column_copy(st, 2, session_name, sizeof session_name, IAM_SQL_SUBJECT));
    int64_t mfa_time = kms_db_column_int64(st, 6);
    int64_t issued = kms_db_column_int64(st, 7);
    int64_t expiry = kms_db_column_int64(st, 8);
    char *policy = NULL;
    const void *blob = NULL;
    size_t ct_len = 0;
    kms_db_column_blob(st, 3, &blob, &ct_len);
    uint8_t *ct = malloc(ct_len ? ct_len : 1);
    int r = -1;
    if (ct == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (!kms_db_column_is_null(st, 5) && kms_db_column_dup(st, 5, &policy) != 0) {
        goto out;
    }
    if (ct_len > 0) {
        memcpy(ct, blob, ct_len);
    }
    kms_db_reset(st);
    if (secret_verify(iam, id, ct, ct_len, secret_check, secret_out) != 0) {
        goto out;
    }
    iam_entity e;
    if (strncmp(principal, "AROA", 4) == 0) {
        if (entity_by_id(q, sql_role_by_id, KMS_IAM_ROLE, account, principal, &e) != 0 ||
            identity_of_role(q, &e, session_name, out) != 0) {
            goto out;
        }
    } else if (entity_by_id(q, sql_user_by_id, KMS_IAM_USER, account, principal, &e) != 0 ||
               identity_of_user(q, &e, out) != 0) {
        goto out;
    }
    snprintf(out->access_key_id, sizeof out->access_key_id, "%s", id);
    out->mfa_authenticated = mfa_time > 0;
    out->mfa_auth_time = mfa_time;
    out->session_expiry = expiry;
    out->session_issued = issued;
    out->console_session = strncmp(principal, "AROA", 4) != 0 &&
                           strcmp(session_name, KMS_IAM_SIGNIN_SESSION_NAME) == 0;
    out->session_policy = policy;
    policy = NULL;
    r = 0;
out:
    if (r != 0 && secret_out != NULL && *secret_out != NULL) {
        kms_iam_secret_free(*secret_out);
        *secret_out = NULL;
    }
    free(policy);
    free(ct);
    return r;
}

static int resolve(kms_iam *iam, const char *access_key_id, const char *session_token,
                   const char *secret_check, char **secret_out, int64_t now, kms_identity *out)
{
    memset(out, 0, sizeof *out);
    bool session = key_id_shape(access_key_id, "ASIA");
    KMS_ENSURE(session || key_id_shape(access_key_id, "AKIA"), KMS_ERR_UNRECOGNIZED_CLIENT, "%s",
               invalid_token);
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    int r = session ? auth_session(iam, &q, access_key_id, session_token, secret_check, secret_out,
                                   now, out)
                    : auth_long_term(iam, &q, access_key_id, secret_check, secret_out, now, out);
    kms_iam_end(&q);
    if (r != 0) {
        kms_iam_identity_clean_up(out);
    }
    return r;
}

int kms_iam_authenticate(kms_iam *iam, const char *access_key_id, const char *secret,
                         const char *session_token, int64_t now, kms_identity *out)
{
    KMS_ENSURE(secret != NULL, KMS_ERR_BAD_SIGNATURE, "%s", bad_signature);
    return resolve(iam, access_key_id, session_token, secret, NULL, now, out);
}

int kms_iam_credentials_lookup(kms_iam *iam, const char *access_key_id, const char *session_token,
                               int64_t now, kms_identity *out, char **secret)
{
    *secret = NULL;
    return resolve(iam, access_key_id, session_token, NULL, secret, now, out);
}

int kms_iam_access_key_used(kms_iam *iam, const char *access_key_id, const char *service,
                            int64_t now)
{
    if (!key_id_shape(access_key_id, "AKIA")) {
        return 0; /* sessions keep no last-used record */
    }
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    int r = record_use(iam, &q, access_key_id, service, now);
    kms_iam_end(&q);
    return r;
}

/* ---- Sessions ----------------------------------------------------------------------------- */

static const char sql_session_insert[] =
    "INSERT INTO iam_sessions (access_key_id, account_id, principal_id, session_name, "
    "secret_sealed, token_hash, policy, mfa_time, issued, expiry) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

void kms_iam_credentials_clean_up(kms_iam_credentials *c)
{
    if (c == NULL) {
        return;
    }
    kms_iam_secret_free(c->secret_access_key);
    kms_iam_secret_free(c->session_token);
    memset(c, 0, sizeof *c);
}

/* Creates the session row and fills the credentials. principal_id: user id, account id (root) or
 * role id. */
static int session_insert(iam_q *q, const char *account_id, const char *principal_id,
                          const char *session_name, const char *policy, int64_t mfa_time,
                          int64_t now, int64_t duration, kms_iam_credentials *out)
{
    kms_iam_new_access_key_id(out->access_key_id, true);
    out->expiration = now + duration;
    KMS_GUARD(kms_iam_new_secret(&out->secret_access_key));

    uint8_t *raw = kms_secure_alloc(TOKEN_RANDOM_BYTES);
    KMS_GUARD(raw == NULL ? -1 : 0);
    randombytes_buf(raw, TOKEN_RANDOM_BYTES);
    char *b64 = kms_base64_encode(raw, TOKEN_RANDOM_BYTES);
    kms_secure_free(raw);
    KMS_ENSURE(b64 != NULL, KMS_ERR_INTERNAL, "out of memory");
    size_t n = strlen(b64);
    out->session_token = kms_secure_alloc(n + 1);
    if (out->session_token != NULL) {
        memcpy(out->session_token, b64, n + 1);
    }
    sodium_memzero(b64, n);
    free(b64);
    KMS_GUARD(out->session_token == NULL ? -1 : 0);

    uint8_t hash[32];
    SHA256((const uint8_t *)out->session_token, n, hash);
    char purpose[64];
    snprintf(purpose, sizeof purpose, "iam:access-key:%s", out->access_key_id);
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    KMS_GUARD(kms_iam_seal(q->iam, purpose, out->secret_access_key, strlen(out->secret_access_key),
                           &ct, &ct_len));
    int r = kms_db_exec_sql(q->c, sql_session_insert,
                            KMS_DB_PARAMS(kms_db_text(out->access_key_id), kms_db_text(account_id),
                                          kms_db_text(principal_id), kms_db_text(session_name),
                                          kms_db_blob(ct, ct_len), kms_db_blob(hash, sizeof hash),
                                          kms_db_text(policy), kms_db_int64(mfa_time),
                                          kms_db_int64(now), kms_db_int64(out->expiration)),
                            IAM_SQL_WHAT);
    free(ct);
    return r;
}

/* The MFA step of AssumeRole / GetSessionToken: both or neither, the code for a device of the
 * calling user. *mfa_time = now when verified. */
static int session_mfa(iam_q *q, const kms_identity *caller, const char *serial_number,
                       const char *token_code, int64_t now, int64_t *mfa_time)
{
    *mfa_time = 0;
    if (serial_number == NULL && token_code == NULL) {
        return 0;
    }
    KMS_ENSURE(serial_number != NULL && token_code != NULL, KMS_ERR_VALIDATION,
               "SerialNumber and TokenCode go together");
    /* Only users (and root) own MFA devices; an assumed role has none. */
    KMS_ENSURE(strcmp(caller->type, "AssumedRole") != 0, KMS_ERR_INVALID_AUTH_CODE,
               "MultiFactorAuthentication failed: the caller has no MFA device.");
    iam_entity u;
    KMS_GUARD(kms_iam_user_or_root(
        q, caller->account_id, strcmp(caller->type, "Root") == 0 ? NULL : caller->user_name, &u));
    KMS_GUARD(kms_iam_mfa_verify(q, u.id, serial_number, token_code, now));
    *mfa_time = now;
    return 0;
}

static int session_name_check(const char *name)
{
    KMS_ENSURE(name != NULL && strlen(name) >= 2, KMS_ERR_VALIDATION,
               "1 validation error detected: Value at 'roleSessionName' failed to satisfy "
               "constraint: Member must have length greater than or equal to 2");
    return kms_iam_name_check(name, 64, "roleSessionName");
}

int kms_iam_assume_role(kms_iam *iam, const kms_identity *caller, const char *role_arn,
                        const char *session_name, int64_t duration, const char *session_policy,
                        const char *serial_number, const char *token_code, int64_t now,
                        kms_iam_credentials *out)
{
    memset(out, 0, sizeof *out);
    KMS_GUARD(session_name_check(session_name));
    kms_iam_role_info role;
    KMS_GUARD(kms_iam_role_lookup(iam, role_arn, &role));
    int r = -1;
    iam_q q = {0};
    int64_t max = role.max_session_duration;
    if (strcmp(caller->type, "AssumedRole") == 0 && max > ROLE_CHAIN_MAX) {
        max = ROLE_CHAIN_MAX; /* role chaining: at most one hour, as AWS */
    }
    if (duration == 0) {
        duration = max < 3600 ? max : 3600;
    }
    if (duration < SESSION_MIN || duration > max) {
        kms_raise(KMS_ERR_VALIDATION,
                  "The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                  "role (%" PRId64 " seconds; at least %d).",
                  max, SESSION_MIN);
        goto out;
    }
    int64_t mfa_time = 0;
    if (kms_iam_begin(iam, &q, true) != 0 ||
        session_mfa(&q, caller, serial_number, token_code, now, &mfa_time) != 0 ||
        session_insert(&q, role.account_id, role.role_id, session_name, session_policy, mfa_time,
                       now, duration, out) != 0 ||
        kms_iam_commit_data(&q) != 0) {
        goto out;
    }
    snprintf(out->assumed_role_id, sizeof out->assumed_role_id, "%s:%s", role.role_id,
             session_name);
    snprintf(out->assumed_role_arn, sizeof out->assumed_role_arn,
             "arn:aws:sts::%s:assumed-role/%s/%s", role.account_id, role.role_name, session_name);
    r = 0;
out:
    if (q.c != NULL) {
        kms_iam_end(&q);
    }
    kms_iam_role_info_clean_up(&role);
    if (r != 0) {
        kms_iam_credentials_clean_up(out);
    }
    return r;
}

int kms_iam_session_token(kms_iam *iam, const kms_identity *caller, int64_t duration,
                          const char *serial_number, const char *token_code, int64_t now,
                          kms_iam_credentials *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(caller->session_expiry == 0 && strcmp(caller->type, "AssumedRole") != 0,
               KMS_ERR_ACCESS_DENIED, "Cannot call GetSessionToken with session credentials");
    bool root = strcmp(caller->type, "Root") == 0;
    int64_t max = root ? SESSION_ROOT_MAX : SESSION_TOKEN_MAX;
    if (duration == 0) {
        duration = root ? SESSION_ROOT_MAX : SESSION_TOKEN_DEFAULT;
    }
    KMS_ENSURE(duration >= SESSION_MIN && duration <= max, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%" PRId64 "' at 'durationSeconds' failed "
               "to satisfy constraint: Member must have value between %d and %" PRId64,
               duration, SESSION_MIN, max);
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    int64_t mfa_time = 0;
    int r = -1;
    if (kms_iam_user_or_root(&q, caller->account_id, root ? NULL : caller->user_name, &u) != 0 ||
        session_mfa(&q, caller, serial_number, token_code, now, &mfa_time) != 0 ||
        session_insert(&q, caller->account_id, u.id, "", NULL, mfa_time, now, duration, out) != 0 ||
        kms_iam_commit_data(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    if (r != 0) {
        kms_iam_credentials_clean_up(out);
    }
    return r;
}

static const char sql_sessions_purge[] = "DELETE FROM iam_sessions WHERE expiry <= ?1";

int kms_iam_sessions_purge(kms_iam *iam, int64_t now)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    int r =
        kms_db_exec_sql(q.c, sql_sessions_purge, KMS_DB_PARAMS(kms_db_int64(now)), IAM_SQL_WHAT);
    kms_iam_end(&q);
    return r;
}
