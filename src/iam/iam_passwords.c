/* Passwords: the account password policy and login profiles (passwords as Argon2id hashes,
 * libsodium crypto_pwhash_str). */
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_internal.h"
#include "util/secmem.h"
#include "util/util.h"

#define PASSWORD_HISTORY_MAX 24

/* The hash that a sign-in checks when there is no real one to check (an unknown user, or one
 * without a login profile), so that the work, and the time it takes, is the same as for a
 * wrong password. Made once, offline, by crypto_pwhash_str with the parameters of every stored
 * password (crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE: test_iam
 * checks that they still match) from a random password nobody kept; a match would be refused
 * all the same. A constant rather than a hash made at the first use: each kmsctl process signs
 * in once, and making the hash there would double the work for unknown users only. */
static const char dummy_hash[crypto_pwhash_STRBYTES] =
    "$argon2id$v=19$m=65536,t=2,p=1$HIuWkYA0oAFGH92eOMkksg$"
    "03Ewk9RzSWBsl3ddgWgvDkmtW6IqTJ5PFYk4klMWMaM";

/* Every Argon2 verification goes through here (counted, for the tests of equal work). */
static bool argon2_verify(kms_iam *iam, const char *hash, const char *pw)
{
    atomic_fetch_add(&iam->argon2_verifications, 1);
    return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}

uint64_t kms_iam_argon2_count(kms_iam *iam)
{
    return atomic_load(&iam->argon2_verifications);
}

const char *kms_iam_argon2_dummy(void)
{
    return dummy_hash;
}

/* ---- Password policy ---------------------------------------------------------------------- */

static const char sql_pp_get[] =
    "SELECT min_length, require_symbols, require_numbers, require_uppercase, require_lowercase, "
    "allow_change, max_age, reuse_prevention, hard_expiry FROM iam_password_policies "
    "WHERE account_id = ?1";
static const char sql_pp_put[] =
    "INSERT OR REPLACE INTO iam_password_policies (account_id, min_length, require_symbols, "
    "require_numbers, require_uppercase, require_lowercase, allow_change, max_age, "
    "reuse_prevention, hard_expiry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char sql_pp_delete[] = "DELETE FROM iam_password_policies WHERE account_id = ?1";

/* *found false: the account has none (AWS then applies its default). */
static int policy_load(iam_q *q, const char *account_id, kms_iam_password_policy *p, bool *found)
{
    memset(p, 0, sizeof *p);
    kms_db_stmt *st = NULL;
    int f =
        kms_db_first(q->c, sql_pp_get, KMS_DB_PARAMS(kms_db_text(account_id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    *found = f == 1;
    if (f == 1) {
        p->minimum_password_length = kms_db_column_int64(st, 0);
        p->require_symbols = kms_db_column_int64(st, 1) != 0;
        p->require_numbers = kms_db_column_int64(st, 2) != 0;
        p->require_uppercase_characters = kms_db_column_int64(st, 3) != 0;
        p->require_lowercase_characters = kms_db_column_int64(st, 4) != 0;
        p->allow_users_to_change_password = kms_db_column_int64(st, 5) != 0;
        p->max_password_age = kms_db_column_int64(st, 6);
        p->password_reuse_prevention = kms_db_column_int64(st, 7);
        p->hard_expiry = kms_db_column_int64(st, 8) != 0;
        kms_db_reset(st);
    } else {
        /* The IAM default: at least 8 characters, users may change their password. */
        p->minimum_password_length = 8;
        p->allow_users_to_change_password = true;
    }
    return 0;
}

int kms_iam_password_policy_insert(iam_q *q, const char *account_id,
                                   const kms_iam_password_policy *p)
{
    KMS_ENSURE(p->minimum_password_length >= 6 && p->minimum_password_length <= 128,
               KMS_ERR_VALIDATION, "MinimumPasswordLength must be between 6 and 128");
    KMS_ENSURE(p->max_password_age >= 0 && p->max_password_age <= 1095, KMS_ERR_VALIDATION,
               "MaxPasswordAge must be between 1 and 1095");
    KMS_ENSURE(p->password_reuse_prevention >= 0 && p->password_reuse_prevention <= 24,
               KMS_ERR_VALIDATION, "PasswordReusePrevention must be between 1 and 24");
    return kms_db_exec_sql(
        q->c, sql_pp_put,
        KMS_DB_PARAMS(kms_db_text(account_id), kms_db_int64(p->minimum_password_length),
                      kms_db_int64((int64_t)p->require_symbols),
                      kms_db_int64((int64_t)p->require_numbers),
                      kms_db_int64((int64_t)p->require_uppercase_characters),
                      kms_db_int64((int64_t)p->require_lowercase_characters),
                      kms_db_int64((int64_t)p->allow_users_to_change_password),
                      kms_db_int64(p->max_password_age), kms_db_int64(p->password_reuse_prevention),
                      kms_db_int64((int64_t)p->hard_expiry)),
        IAM_SQL_WHAT);
}

int kms_iam_password_policy_put(kms_iam *iam, const char *account_id,
                                const kms_iam_password_policy *policy)
{
    KMS_GUARD(kms_iam_account_check(account_id));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    int r = -1;
    if (kms_iam_password_policy_insert(&q, account_id, policy) != 0 || kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_password_policy_get(kms_iam *iam, const char *account_id, kms_iam_password_policy *out)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    bool found = false;
    int r = policy_load(&q, account_id, out, &found);
    if (r == 0 && !found) {
        r = kms_raise(KMS_ERR_NO_SUCH_ENTITY,
                      "The Password Policy with domain name %s cannot be found.", account_id);
    }
    kms_iam_end(&q);
    return r;
}

int kms_iam_password_policy_delete(kms_iam *iam, const char *account_id)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    int r = -1;
    if (kms_db_exec_sql(q.c, sql_pp_delete, KMS_DB_PARAMS(kms_db_text(account_id)), IAM_SQL_WHAT) !=
        0) {
        goto out;
    }
    if (kms_db_changes(q.c) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY,
                  "The Password Policy with domain name %s cannot be found.", account_id);
        goto out;
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

/* ---- Passwords ---------------------------------------------------------------------------- */

/* IAM: symbols are the printable ASCII characters that are neither letters nor digits. */
static int password_conforms(const kms_iam_password_policy *p, const char *pw)
{
    size_t n = strlen(pw);
    bool upper = false, lower = false, digit = false, symbol = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)pw[i];
        upper |= ch >= 'A' && ch <= 'Z';
        lower |= ch >= 'a' && ch <= 'z';
        digit |= ch >= '0' && ch <= '9';
        symbol |= ch >= 0x21 && ch <= 0x7e && !isalnum(ch);
    }
    const char *why = NULL;
    if (n < (size_t)p->minimum_password_length) {
        why = "it is too short";
    } else if (n > 128) {
        why = "it is longer than 128 characters";
    } else if (p->require_uppercase_characters && !upper) {
        why = "it has no uppercase letter";
    } else if (p->require_lowercase_characters && !lower) {
        why = "it has no lowercase letter";
    } else if (p->require_numbers && !digit) {
        why = "it has no number";
    } else if (p->require_symbols && !symbol) {
        why = "it has no symbol";
    }
    KMS_ENSURE(why == NULL, KMS_ERR_PASSWORD_POLICY,
               "Password does not conform to the account password policy: %s.", why);
    return 0;
}

static const char sql_history_recent[] =
    "SELECT password_hash FROM iam_password_history WHERE user_id = ?1 "
    "ORDER BY password_date DESC, rowid DESC LIMIT ?2";
static const char sql_history_insert[] =
    "INSERT INTO iam_password_history (user_id, password_hash, password_date) VALUES (?1, ?2, ?3)";
static const char sql_history_trim[] =
    "DELETE FROM iam_password_history WHERE user_id = ?1 AND rowid NOT IN (SELECT rowid FROM "
    "iam_password_history WHERE user_id = ?1 ORDER BY password_date DESC, rowid DESC LIMIT ?2)";

/* PasswordPolicyViolation if pw is one of the user's last `reuse` passwords. */
static int password_not_reused(iam_q *q, const char *user_id, const char *pw, int64_t reuse)
{
    if (reuse <= 0) {
        return 0;
    }
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(q->c, sql_history_recent,
                          KMS_DB_PARAMS(kms_db_text(user_id), kms_db_int64(reuse)), &st));
    int s;
    bool reused = false;
    while (!reused && (s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        reused = argon2_verify(q->iam, kms_db_column_text(st, 0), pw);
    }
    kms_db_reset(st);
    KMS_GUARD(!reused && s < 0 ? -1 : 0);
    KMS_ENSURE(!reused, KMS_ERR_PASSWORD_POLICY,
               "Password does not conform to the account password policy: it was used "
               "recently.");
    return 0;
}

/* Checks pw against the policy and history and hashes it; records it in the history. */
static int password_accept(iam_q *q, const iam_entity *u, const char *pw, int64_t now,
                           char hash[crypto_pwhash_STRBYTES])
{
    KMS_ENSURE(pw != NULL, KMS_ERR_VALIDATION, "Password must not be empty");
    kms_iam_password_policy p;
    bool found = false;
    KMS_GUARD(policy_load(q, u->account_id, &p, &found));
    KMS_GUARD(password_conforms(&p, pw));
    KMS_GUARD(password_not_reused(q, u->id, pw, p.password_reuse_prevention));
    KMS_ENSURE(crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0,
               KMS_ERR_INTERNAL, "cannot hash the password (out of memory)");
    KMS_GUARD(kms_db_exec_sql(
        q->c, sql_history_insert,
        KMS_DB_PARAMS(kms_db_text(u->id), kms_db_text(hash), kms_db_int64(now)), IAM_SQL_WHAT));
    return kms_db_exec_sql(
        q->c, sql_history_trim,
        KMS_DB_PARAMS(kms_db_text(u->id), kms_db_int64((int64_t)PASSWORD_HISTORY_MAX)),
        IAM_SQL_WHAT);
}

static const char sql_login_get[] =
    "SELECT password_hash, creation_date, password_date, reset_required FROM iam_login_profiles "
    "WHERE user_id = ?1";
static const char sql_login_insert[] =
    "INSERT INTO iam_login_profiles (user_id, password_hash, creation_date, password_date, "
    "reset_required) VALUES (?1, ?2, ?3, ?3, ?4)";
static const char sql_login_set_password[] =
    "UPDATE iam_login_profiles SET password_hash = ?2, password_date = ?3 WHERE user_id = ?1";
static const char sql_login_set_reset[] =
    "UPDATE iam_login_profiles SET reset_required = ?2 WHERE user_id = ?1";
static const char sql_login_delete[] = "DELETE FROM iam_login_profiles WHERE user_id = ?1";
static const char sql_password_used[] =
    "UPDATE iam_users SET password_last_used = ?2 WHERE user_id = ?1";
static const char sql_mfa_count[] = "SELECT count(*) FROM iam_mfa_devices WHERE user_id = ?1";

static const char *display_name(const iam_entity *u)
{
    return u->is_root ? "root" : u->name;
}

static int login_profile_exists(iam_q *q, const iam_entity *u, bool *exists)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_login_get, KMS_DB_PARAMS(kms_db_text(u->id)), &st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    *exists = f == 1;
    kms_db_reset(st);
    return 0;
}

static json_t *login_json(const iam_entity *u, int64_t created, bool reset)
{
    json_t *o =
        json_pack("{s:I, s:b}", "CreateDate", (json_int_t)created, "PasswordResetRequired", reset);
    if (o != NULL && !u->is_root && json_object_set_new(o, "UserName", json_string(u->name)) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return o;
}

int kms_iam_login_profile_create(kms_iam *iam, const char *account_id, const char *user_name,
                                 const char *password, bool reset_required, int64_t now,
                                 json_t **profile)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    char hash[crypto_pwhash_STRBYTES];
    bool exists = false;
    json_t *o = NULL;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        login_profile_exists(&q, &u, &exists) != 0) {
        goto out;
    }
    if (exists) {
        kms_raise(KMS_ERR_ENTITY_EXISTS, "Login Profile for user %s already exists.",
                  display_name(&u));
        goto out;
    }
    if (password_accept(&q, &u, password, now, hash) != 0 ||
        kms_db_exec_sql(q.c, sql_login_insert,
                        KMS_DB_PARAMS(kms_db_text(u.id), kms_db_text(hash), kms_db_int64(now),
                                      kms_db_int64((int64_t)reset_required)),
                        IAM_SQL_WHAT) != 0 ||
        (profile != NULL && (o = login_json(&u, now, reset_required)) == NULL) ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    if (profile != NULL) {
        *profile = o;
        o = NULL;
    }
    r = 0;
out:
    json_decref(o);
    sodium_memzero(hash, sizeof hash);
    kms_iam_end(&q);
    return r;
}

int kms_iam_login_profile_get(kms_iam *iam, const char *account_id, const char *user_name,
                              json_t **profile)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    iam_entity u;
    kms_db_stmt *st = NULL;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0) {
        goto out;
    }
    int f = kms_db_first(q.c, sql_login_get, KMS_DB_PARAMS(kms_db_text(u.id)), &st, IAM_SQL_WHAT);
    if (f <= 0) {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY, "Login Profile for User %s cannot be found.",
                      display_name(&u));
        }
        goto out;
    }
    if ((*profile = login_json(&u, kms_db_column_int64(st, 1), kms_db_column_int64(st, 3) != 0)) ==
        NULL) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_login_profile_update(kms_iam *iam, const char *account_id, const char *user_name,
                                 const char *password, int reset_required, int64_t now)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    char hash[crypto_pwhash_STRBYTES];
    bool exists = false;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        login_profile_exists(&q, &u, &exists) != 0) {
        goto out;
    }
    if (!exists) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "Login Profile for User %s cannot be found.",
                  display_name(&u));
        goto out;
    }
    if (password != NULL &&
        (password_accept(&q, &u, password, now, hash) != 0 ||
         kms_db_exec_sql(q.c, sql_login_set_password,
                         KMS_DB_PARAMS(kms_db_text(u.id), kms_db_text(hash), kms_db_int64(now)),
                         IAM_SQL_WHAT) != 0)) {
        goto out;
    }
    if (reset_required >= 0 &&
        kms_db_exec_sql(
            q.c, sql_login_set_reset,
            KMS_DB_PARAMS(kms_db_text(u.id), kms_db_int64((int64_t)(reset_required != 0))),
            IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    sodium_memzero(hash, sizeof hash);
    kms_iam_end(&q);
    return r;
}

int kms_iam_login_profile_delete(kms_iam *iam, const char *account_id, const char *user_name)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        kms_db_exec_sql(q.c, sql_login_delete, KMS_DB_PARAMS(kms_db_text(u.id)), IAM_SQL_WHAT) !=
            0) {
        goto out;
    }
    if (kms_db_changes(q.c) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "Login Profile for User %s cannot be found.",
                  display_name(&u));
        goto out;
    }
    if (kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

/* Verifies pw against the user's login profile: AccessDenied with one message for every
 * failure, and one Argon2 verification for every failure too (against dummy_hash when the user
 * or its login profile does not exist), so that a caller learns nothing about which users
 * exist, neither from the answer nor from the time it takes. */
static int password_verify(iam_q *q, const char *account_id, const char *user_name, const char *pw,
                           iam_entity *u, int64_t *password_date, bool *reset)
{
    static const char denied[] = "Your authentication information is incorrect.";
    KMS_ENSURE(pw != NULL, KMS_ERR_ACCESS_DENIED, "%s", denied);
    kms_db_stmt *st = NULL;
    int f = 0;
    if (kms_iam_user_or_root(q, account_id, user_name, u) != 0) {
        KMS_GUARD(kms_last_error() == KMS_ERR_NO_SUCH_ENTITY ? 0 : -1);
    } else {
        f = kms_db_first(q->c, sql_login_get, KMS_DB_PARAMS(kms_db_text(u->id)), &st, IAM_SQL_WHAT);
        KMS_GUARD(f < 0 ? -1 : 0);
    }
    if (f == 0) {
        (void)argon2_verify(q->iam, dummy_hash, pw);
        return kms_raise(KMS_ERR_ACCESS_DENIED, "%s", denied);
    }
    bool ok = argon2_verify(q->iam, kms_db_column_text(st, 0), pw);
    *password_date = kms_db_column_int64(st, 2);
    *reset = kms_db_column_int64(st, 3) != 0;
    kms_db_reset(st);
    KMS_ENSURE(ok, KMS_ERR_ACCESS_DENIED, "%s", denied);
    return 0;
}

int kms_iam_password_change(kms_iam *iam, const char *account_id, const char *user_name,
                            const char *old_password, const char *new_password, int64_t now)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    int64_t date = 0;
    bool reset = false, found = false;
    kms_iam_password_policy p;
    char hash[crypto_pwhash_STRBYTES];
    int r = -1;
    if (password_verify(&q, account_id, user_name, old_password, &u, &date, &reset) != 0) {
        if (kms_last_error() == KMS_ERR_ACCESS_DENIED) {
            kms_raise(KMS_ERR_ACCESS_DENIED, "The old password is incorrect.");
        }
        goto out;
    }
    if (policy_load(&q, account_id, &p, &found) != 0) {
        goto out;
    }
    if (!u.is_root && !p.allow_users_to_change_password) {
        kms_raise(KMS_ERR_ACCESS_DENIED,
                  "The account password policy does not allow users to change their password.");
        goto out;
    }
    if (password_accept(&q, &u, new_password, now, hash) != 0 ||
        kms_db_exec_sql(q.c, sql_login_set_password,
                        KMS_DB_PARAMS(kms_db_text(u.id), kms_db_text(hash), kms_db_int64(now)),
                        IAM_SQL_WHAT) != 0 ||
        kms_db_exec_sql(q.c, sql_login_set_reset, KMS_DB_PARAMS(kms_db_text(u.id), kms_db_int64(0)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    sodium_memzero(hash, sizeof hash);
    kms_iam_end(&q);
    return r;
}

int kms_iam_password_check(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *password, int64_t now, bool *must_change, bool *mfa_required)
{
    *must_change = false;
    *mfa_required = false;
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    int64_t date = 0, devices = 0;
    bool reset = false, found = false;
    kms_iam_password_policy p;
    int r = -1;
    if (password_verify(&q, account_id, user_name, password, &u, &date, &reset) != 0 ||
        policy_load(&q, account_id, &p, &found) != 0 ||
        kms_db_int(q.c, sql_mfa_count, KMS_DB_PARAMS(kms_db_text(u.id)), &devices, IAM_SQL_WHAT) <
            0 ||
        kms_db_exec_sql(q.c, sql_password_used, KMS_DB_PARAMS(kms_db_text(u.id), kms_db_int64(now)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_commit_data(&q) != 0) {
        goto out;
    }
    bool expired = p.max_password_age > 0 && now - date > p.max_password_age * 86400;
    *must_change = reset || expired;
    *mfa_required = devices > 0;
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}
