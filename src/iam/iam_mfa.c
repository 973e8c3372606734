/* Virtual MFA devices: TOTP (RFC 6238) over HOTP (RFC 4226) with HMAC-SHA1, 30-second steps,
 * 6 digits, one step of clock skew either way. Seeds are stored only sealed; the last accepted
 * step is kept so that a code is accepted once (RFC 6238 section 5.2). */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iam/iam_internal.h"
#include "util/secmem.h"
#include "util/util.h"

#define TOTP_STEP 30
#define TOTP_DIGITS 6
#define SEED_LEN 20 /* RFC 4226 section 4: 160 bits, the HMAC-SHA1 output size */
#define MFA_PER_USER_MAX 8

/* ---- TOTP --------------------------------------------------------------------------------- */

int kms_iam_totp_code(const uint8_t *key, size_t key_len, uint64_t step, int digits, char *out)
{
    KMS_ENSURE(digits >= 6 && digits <= 8, KMS_ERR_INTERNAL, "TOTP codes have 6 to 8 digits");
    /* RFC 4226 section 5.2: HMAC over the 8-byte big-endian counter. */
    uint8_t msg[8];
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)(step & 0xff);
        step >>= 8;
    }
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    KMS_ENSURE(HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof msg, mac, &mac_len) != NULL &&
                   mac_len == 20,
               KMS_ERR_INTERNAL, "HMAC-SHA1 failed");
    /* RFC 4226 section 5.3: dynamic truncation. */
    unsigned off = mac[19] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    uint32_t mod = 1;
    for (int i = 0; i < digits; i++) {
        mod *= 10;
    }
    uint32_t v = bin % mod;
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    out[digits] = '\0';
    sodium_memzero(mac, sizeof mac);
    return 0;
}

int kms_iam_base32_encode(const uint8_t *p, size_t n, char **out)
{
    static const char alphabet[] = IAM_B32;
    size_t len = (n * 8 + 4) / 5;
    char *s = kms_secure_alloc(len + 1);
    KMS_GUARD(s == NULL ? -1 : 0);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            s[o++] = alphabet[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) {
        s[o++] = alphabet[(acc << (5 - bits)) & 31];
    }
    s[o] = '\0';
    acc = 0;
    *out = s;
    return 0;
}

static int code_check(const char *code)
{
    bool ok = code != NULL && strlen(code) == TOTP_DIGITS;
    for (size_t i = 0; ok && i < TOTP_DIGITS; i++) {
        ok = code[i] >= '0' && code[i] <= '9';
    }
    KMS_ENSURE(ok, KMS_ERR_VALIDATION,
               "1 validation error detected: Value at 'authenticationCode' failed to satisfy "
               "constraint: Member must satisfy regular expression pattern: [\\d]+ and have "
               "length 6");
    return 0;
}

/* Does code match the seed at step? Constant time in the code. */
static int code_at(const char *seed, size_t seed_len, uint64_t step, const char *code, bool *match)
{
    char expect[TOTP_DIGITS + 1];
    KMS_GUARD(kms_iam_totp_code((const uint8_t *)seed, seed_len, step, TOTP_DIGITS, expect));
    *match = sodium_memcmp(expect, code, TOTP_DIGITS) == 0;
    sodium_memzero(expect, sizeof expect);
    return 0;
}

static void purpose_of(const char *serial, char *out, size_t size)
{
    /* Serial numbers are validated ARNs far shorter than size; a longer one (never stored)
     * would only be cut, never overflow. */
    if (snprintf(out, size, "iam:mfa:%s", serial) >= (int)size) {
        out[size - 1] = '\0';
    }
}

/* ---- Devices ------------------------------------------------------------------------------ */

static const char sql_mfa_get[] =
    "SELECT serial_number, seed_sealed, user_id, last_step FROM iam_mfa_devices "
    "WHERE serial_number = ?1 AND account_id = ?2";
static const char sql_mfa_insert[] =
    "INSERT INTO iam_mfa_devices (serial_number, account_id, seed_sealed, creation_date) "
    "VALUES (?1, ?2, ?3, ?4)";
static const char sql_mfa_assign[] =
    "UPDATE iam_mfa_devices SET user_id = ?2, enable_date = ?3, last_step = ?4 "
    "WHERE serial_number = ?1";
static const char sql_mfa_unassign[] =
    "UPDATE iam_mfa_devices SET user_id = NULL, enable_date = 0, last_step = 0 "
    "WHERE serial_number = ?1 AND user_id = ?2";
static const char sql_mfa_delete[] = "DELETE FROM iam_mfa_devices WHERE serial_number = ?1";
static const char sql_mfa_count_user[] = "SELECT count(*) FROM iam_mfa_devices WHERE user_id = ?1";
static const char sql_mfa_of_user[] =
    "SELECT serial_number, seed_sealed, last_step, enable_date FROM iam_mfa_devices "
    "WHERE user_id = ?1 ORDER BY serial_number";
static const char sql_mfa_set_step[] =
    "UPDATE iam_mfa_devices SET last_step = ?2 WHERE serial_number = ?1";
static const char sql_mfa_list_virtual[] =
    "SELECT d.serial_number, d.enable_date, u.user_id, u.name, u.path, u.creation_date, "
    "u.is_root FROM iam_mfa_devices d LEFT JOIN iam_users u ON u.user_id = d.user_id "
    "WHERE d.account_id = ?1 AND (?2 = 'Any' OR (?2 = 'Assigned' AND d.user_id IS NOT NULL) OR "
    "(?2 = 'Unassigned' AND d.user_id IS NULL)) ORDER BY d.serial_number";

int kms_iam_mfa_create(kms_iam *iam, const char *account_id, const char *path,
                       const char *device_name, int64_t now, char **serial_number,
                       char **base32_seed)
{
    *serial_number = NULL;
    *base32_seed = NULL;
    KMS_GUARD(kms_iam_account_check(account_id));
    KMS_GUARD(kms_iam_name_check(device_name, 226, "virtualMFADeviceName"));
    path = path ? path : "/";
    KMS_GUARD(kms_iam_path_check(path, "path"));
    char *serial = kms_strdup_printf("arn:aws:iam::%s:mfa%s%s", account_id, path, device_name);
    KMS_GUARD(serial == NULL ? -1 : 0);
    char purpose[700];
    purpose_of(serial, purpose, sizeof purpose);

    iam_q q;
    uint8_t *seed = kms_secure_alloc(SEED_LEN);
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    char *b32 = NULL;
    kms_db_stmt *st = NULL;
    int r = -1;
    if (seed == NULL || kms_iam_begin(iam, &q, true) != 0) {
        q.c = NULL;
        goto out;
    }
    int f =
        kms_db_first(q.c, sql_mfa_get, KMS_DB_PARAMS(kms_db_text(serial), kms_db_text(account_id)),
                     &st, IAM_SQL_WHAT);
    if (f != 0) {
        if (f == 1) {
            kms_raise(KMS_ERR_ENTITY_EXISTS, "MFADevice entity at the same path and name already "
                                             "exists.");
        }
        goto out;
    }
    randombytes_buf(seed, SEED_LEN);
    if (kms_iam_seal(iam, purpose, seed, SEED_LEN, &ct, &ct_len) != 0 ||
        kms_iam_base32_encode(seed, SEED_LEN, &b32) != 0 ||
        kms_db_exec_sql(q.c, sql_mfa_insert,
                        KMS_DB_PARAMS(kms_db_text(serial), kms_db_text(account_id),
                                      kms_db_blob(ct, ct_len), kms_db_int64(now)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    *serial_number = serial;
    serial = NULL;
    *base32_seed = b32;
    b32 = NULL;
    r = 0;
out:
    if (q.c != NULL) {
        kms_iam_end(&q);
    }
    kms_secure_free(seed);
    kms_iam_secret_free(b32);
    free(ct);
    free(serial);
    return r;
}

/* The device's seed, unsealed (kms_iam_secret_free... via kms_secure_free after wiping). */
static int seed_open(kms_iam *iam, const char *serial, const void *ct, size_t n, char **seed,
                     size_t *seed_len)
{
    char purpose[700];
    purpose_of(serial, purpose, sizeof purpose);
    return kms_iam_unseal(iam, purpose, ct, n, seed, seed_len);
}

static void seed_free(char *seed, size_t n)
{
    if (seed != NULL) {
        sodium_memzero(seed, n);
        kms_secure_free(seed);
    }
}

int kms_iam_mfa_enable(kms_iam *iam, const char *account_id, const char *user_name,
                       const char *serial_number, const char *code1, const char *code2, int64_t now)
{
    KMS_ENSURE(serial_number != NULL, KMS_ERR_VALIDATION, "SerialNumber must not be empty");
    KMS_GUARD(code_check(code1));
    KMS_GUARD(code_check(code2));
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    kms_db_stmt *st = NULL;
    char *seed = NULL;
    size_t seed_len = 0;
    int64_t count = 0;
    char serial[600];
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0) {
        goto out;
    }
    int f = kms_db_first(q.c, sql_mfa_get,
                         KMS_DB_PARAMS(kms_db_text(serial_number), kms_db_text(account_id)), &st,
                         IAM_SQL_WHAT);
    if (f <= 0) {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY,
                      "VirtualMFADevice with serial number %s doesn't "
                      "exist.",
                      serial_number);
        }
        goto out;
    }
    if (!kms_db_column_is_null(st, 2)) {
        kms_raise(KMS_ERR_ENTITY_EXISTS, "MFA Device is already in use.");
        goto out;
    }
    const void *seed_ct = NULL;
    size_t seed_ct_len = 0;
    kms_db_column_blob(st, 1, &seed_ct, &seed_ct_len);
    if (kms_db_column_copy(st, 0, serial, sizeof serial, IAM_SQL_SUBJECT) != 0 ||
        seed_open(iam, serial, seed_ct, seed_ct_len, &seed, &seed_len) != 0 ||
        kms_db_int(q.c, sql_mfa_count_user, KMS_DB_PARAMS(kms_db_text(u.id)), &count,
                   IAM_SQL_WHAT) < 0) {
        goto out;
    }
    if (count >= MFA_PER_USER_MAX) {
        kms_raise(KMS_ERR_LIMIT_EXCEEDED, "Cannot exceed quota for MFADevicesPerUser: %d",
                  MFA_PER_USER_MAX);
        goto out;
    }
    /* Two consecutive codes, the later one at most one step ahead of the clock: the user read
     * them off the device one after the other, just now. */
    uint64_t t = (uint64_t)now / TOTP_STEP;
    int64_t matched = -1;
    for (uint64_t s = t >= 3 ? t - 3 : 0; s <= t && matched < 0; s++) {
        bool m1 = false, m2 = false;
        if (code_at(seed, seed_len, s, code1, &m1) != 0 ||
            code_at(seed, seed_len, s + 1, code2, &m2) != 0) {
            goto out;
        }
        if (m1 && m2) {
            matched = (int64_t)s + 1;
        }
    }
    if (matched < 0) {
        kms_raise(KMS_ERR_INVALID_AUTH_CODE, "Authentication code for device is not valid.");
        goto out;
    }
    if (kms_db_exec_sql(q.c, sql_mfa_assign,
                        KMS_DB_PARAMS(kms_db_text(serial), kms_db_text(u.id), kms_db_int64(now),
                                      kms_db_int64(matched)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    seed_free(seed, seed_len);
    kms_iam_end(&q);
    return r;
}

int kms_iam_mfa_deactivate(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *serial_number)
{
    KMS_ENSURE(serial_number != NULL, KMS_ERR_VALIDATION, "SerialNumber must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        kms_db_exec_sql(q.c, sql_mfa_unassign,
                        KMS_DB_PARAMS(kms_db_text(serial_number), kms_db_text(u.id)),
                        IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (kms_db_changes(q.c) == 0) {
        kms_raise(KMS_ERR_NO_SUCH_ENTITY, "MFA Device with serial number %s cannot be found.",
                  serial_number);
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

/* A row of ListMFADevices (kms_iam_user_rows_list adds UserName). */
static json_t *device_json(kms_db_stmt *st, const void *arg)
{
    (void)arg;
    json_t *o = json_pack("{s:s, s:I}", "SerialNumber", kms_db_column_text(st, 0), "EnableDate",
                          (json_int_t)kms_db_column_int64(st, 3));
    if (o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return o;
}

int kms_iam_mfa_list(kms_iam *iam, const char *account_id, const char *user_name, json_t **out)
{
    return kms_iam_user_rows_list(iam, account_id, user_name, sql_mfa_of_user, device_json,
                                  "MFADevices", out);
}

int kms_iam_mfa_list_virtual(kms_iam *iam, const char *account_id, const char *status, json_t **out)
{
    status = status ? status : "Any";
    KMS_ENSURE(strcmp(status, "Any") == 0 || strcmp(status, "Assigned") == 0 ||
                   strcmp(status, "Unassigned") == 0,
               KMS_ERR_VALIDATION, "AssignmentStatus must be one of Assigned, Unassigned, Any");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, false));
    json_t *items = json_array();
    kms_db_stmt *st = NULL;
    int r = -1;
    if (items == NULL ||
        kms_db_open(q.c, sql_mfa_list_virtual,
                    KMS_DB_PARAMS(kms_db_text(account_id), kms_db_text(status)), &st) != 0) {
        goto out;
    }
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        json_t *o = json_pack("{s:s}", "SerialNumber", kms_db_column_text(st, 0));
        if (o == NULL || json_array_append_new(items, o) != 0) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
        if (!kms_db_column_is_null(st, 2)) {
            iam_entity e = {.kind = KMS_IAM_USER, .is_root = kms_db_column_int64(st, 6) != 0};
            snprintf(e.account_id, sizeof e.account_id, "%s", account_id);
            if (kms_db_column_copy(st, 3, e.name, sizeof e.name, IAM_SQL_SUBJECT) != 0 ||
                kms_db_column_copy(st, 4, e.path, sizeof e.path, IAM_SQL_SUBJECT) != 0) {
                goto out;
            }
            kms_iam_entity_arn(&e);
            json_t *user =
                json_pack("{s:s, s:s, s:I}", "Arn", e.arn, "UserId", kms_db_column_text(st, 2),
                          "CreateDate", (json_int_t)kms_db_column_int64(st, 5));
            if (user == NULL ||
                (!e.is_root && (kms_iam_json_set(user, "UserName", json_string(e.name)) != 0 ||
                                kms_iam_json_set(user, "Path", json_string(e.path)) != 0)) ||
                kms_iam_json_set(o, "User", user) != 0 ||
                kms_iam_json_set(o, "EnableDate", json_integer(kms_db_column_int64(st, 1))) != 0) {
                kms_raise(KMS_ERR_INTERNAL, "out of memory");
                goto out;
            }
        }
    }
    if (s < 0) {
        goto out;
    }
    r = kms_iam_list_response(items, "VirtualMFADevices", false, NULL, out);
    items = NULL;
out:
    json_decref(items);
    kms_iam_end(&q);
    return r;
}

int kms_iam_mfa_delete(kms_iam *iam, const char *account_id, const char *serial_number)
{
    KMS_ENSURE(serial_number != NULL, KMS_ERR_VALIDATION, "SerialNumber must not be empty");
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    kms_db_stmt *st = NULL;
    int r = -1;
    int f = kms_db_first(q.c, sql_mfa_get,
                         KMS_DB_PARAMS(kms_db_text(serial_number), kms_db_text(account_id)), &st,
                         IAM_SQL_WHAT);
    if (f <= 0) {
        if (f == 0) {
            kms_raise(KMS_ERR_NO_SUCH_ENTITY,
                      "VirtualMFADevice with serial number %s doesn't "
                      "exist.",
                      serial_number);
        }
        goto out;
    }
    if (!kms_db_column_is_null(st, 2)) {
        kms_raise(KMS_ERR_DELETE_CONFLICT, "MFA VirtualDevice in use. Must deactivate first.");
        goto out;
    }
    kms_db_reset(st);
    if (kms_db_exec_sql(q.c, sql_mfa_delete, KMS_DB_PARAMS(kms_db_text(serial_number)),
                        IAM_SQL_WHAT) != 0 ||
        kms_iam_commit(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

/* ---- Verification ------------------------------------------------------------------------- */

typedef struct device_row {
    char serial[600];
    uint8_t *ct;
    size_t ct_len;
    int64_t last_step;
} device_row;

int kms_iam_mfa_verify(iam_q *q, const char *user_id, const char *serial_number, const char *code,
                       int64_t now)
{
    static const char invalid[] = "MultiFactorAuthentication failed with invalid MFA one time "
                                  "pass code.";
    KMS_ENSURE(code != NULL && strlen(code) == TOTP_DIGITS, KMS_ERR_INVALID_AUTH_CODE, "%s",
               invalid);
    /* Rows first: unsealing may be slow and must not hold a statement open. */
    device_row rows[MFA_PER_USER_MAX];
    size_t n = 0;
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_open(q->c, sql_mfa_of_user, KMS_DB_PARAMS(kms_db_text(user_id)), &st));
    int s = 0;
    int r = -1;
    while (n < MFA_PER_USER_MAX && (s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        if (serial_number != NULL && strcasecmp(kms_db_column_text(st, 0), serial_number) != 0) {
            continue;
        }
        device_row *d = &rows[n];
        const void *ct = NULL;
        size_t len = 0;
        kms_db_column_blob(st, 1, &ct, &len);
        d->ct = malloc(len ? len : 1);
        if (d->ct == NULL ||
            kms_db_column_copy(st, 0, d->serial, sizeof d->serial, IAM_SQL_SUBJECT) != 0) {
            free(d->ct);
            s = d->ct ? -1 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
            break;
        }
        if (len > 0) {
            memcpy(d->ct, ct, len);
        }
        d->ct_len = len;
        d->last_step = kms_db_column_int64(st, 2);
        n++;
    }
    kms_db_reset(st);
    if (s < 0) {
        goto out;
    }
    /* RFC 6238 section 5.2: one step of delay either way; a code at or before the last accepted
     * step is a replay. */
    uint64_t t = (uint64_t)now / TOTP_STEP;
    bool replay = false;
    for (size_t i = 0; i < n; i++) {
        char *seed = NULL;
        size_t seed_len = 0;
        if (seed_open(q->iam, rows[i].serial, rows[i].ct, rows[i].ct_len, &seed, &seed_len) != 0) {
            goto out;
        }
        int64_t matched = -1;
        for (uint64_t step = t > 0 ? t - 1 : 0; step <= t + 1 && matched < 0; step++) {
            bool m = false;
            if (code_at(seed, seed_len, step, code, &m) != 0) {
                seed_free(seed, seed_len);
                goto out;
            }
            if (m && (int64_t)step > rows[i].last_step) {
                matched = (int64_t)step;
            } else if (m) {
                replay = true;
            }
        }
        seed_free(seed, seed_len);
        if (matched >= 0) {
            r = kms_db_exec_sql(q->c, sql_mfa_set_step,
                                KMS_DB_PARAMS(kms_db_text(rows[i].serial), kms_db_int64(matched)),
                                IAM_SQL_WHAT);
            goto out;
        }
    }
    kms_raise(KMS_ERR_INVALID_AUTH_CODE, "%s",
              replay ? "MultiFactorAuthentication failed: the "
                       "one time pass code was already used."
                     : invalid);
out:
    for (size_t i = 0; i < n; i++) {
        free(rows[i].ct);
    }
    return r;
}

int kms_iam_mfa_check(kms_iam *iam, const char *account_id, const char *user_name,
                      const char *serial_number, const char *code, int64_t now)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    iam_entity u;
    int r = -1;
    if (kms_iam_user_or_root(&q, account_id, user_name, &u) != 0 ||
        kms_iam_mfa_verify(&q, u.id, serial_number, code, now) != 0 ||
        kms_iam_commit_data(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}
