/* Ids, names, ARNs, json and sealing for src/iam, and its transactions over the store's typed
 * layer. */
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam/iam_internal.h"
#include "util/secmem.h"
#include "util/util.h"

/* ---- Queries ------------------------------------------------------------------------------ */

static const char sql_generation_bump[] =
    "UPDATE meta SET value = value + 1 WHERE name = 'iam_generation'";

int kms_iam_begin(kms_iam *iam, iam_q *q, bool write)
{
    q->iam = iam;
    q->c = NULL;
    q->write = write;
    KMS_GUARD(kms_db_borrow(kms_store_db(iam->store), &q->c));
    if (write && kms_db_begin(q->c, "cannot begin an IAM transaction") != 0) {
        kms_db_return(q->c);
        q->c = NULL;
        return -1;
    }
    return 0;
}

int kms_iam_commit(iam_q *q)
{
    /* Same transaction as the change: a reader never sees new data with an old generation. */
    KMS_GUARD(kms_db_exec_sql(q->c, sql_generation_bump, KMS_DB_NO_PARAMS, IAM_SQL_WHAT));
    return kms_db_commit(q->c, "cannot commit an IAM transaction");
}

int kms_iam_commit_data(iam_q *q)
{
    return kms_db_commit(q->c, "cannot commit an IAM transaction");
}

void kms_iam_end(iam_q *q)
{
    kms_db_return(q->c);
    q->c = NULL;
}

void kms_iam_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- Ids, names, ARNs --------------------------------------------------------------------- */

void kms_iam_random_id(char *out, size_t size, const char *prefix, size_t n, const char *alphabet)
{
    size_t p = strlen(prefix);
    size_t a = strlen(alphabet);
    if (p + n + 1 > size) {
        out[0] = '\0';
        return;
    }
    memcpy(out, prefix, p);
    for (size_t i = 0; i < n; i++) {
        out[p + i] = alphabet[randombytes_uniform((uint32_t)a)];
    }
    out[p + n] = '\0';
}

/* AWS: names are `[\w+=,.@-]+` (ASCII word characters). */
int kms_iam_name_check(const char *name, size_t max, const char *what)
{
    KMS_ENSURE(name != NULL && name[0] != '\0', KMS_ERR_VALIDATION, "%s must not be empty", what);
    size_t n = strlen(name);
    KMS_ENSURE(n <= max, KMS_ERR_VALIDATION,
               "1 validation error detected: Value at '%s' failed to satisfy constraint: Member "
               "must have length less than or equal to %zu",
               what, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        KMS_ENSURE(isalnum(ch) || strchr("_+=,.@-", ch) != NULL, KMS_ERR_VALIDATION,
                   "1 validation error detected: Value '%s' at '%s' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+",
                   name, what);
    }
    return 0;
}

int kms_iam_path_check(const char *path, const char *what)
{
    size_t n = strlen(path);
    bool ok = n >= 1 && n <= 512 && path[0] == '/' && path[n - 1] == '/';
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)path[i];
        ok = ch >= 0x21 && ch <= 0x7e;
        ok = ok && !(ch == '/' && i + 1 < n && path[i + 1] == '/');
    }
    KMS_ENSURE(ok, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
               "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-"
               "\\u007E]+\\u002F)",
               path, what);
    return 0;
}

int kms_iam_account_check(const char *account_id)
{
    bool ok = account_id != NULL && strlen(account_id) == 12;
    for (size_t i = 0; ok && i < 12; i++) {
        ok = account_id[i] >= '0' && account_id[i] <= '9';
    }
    KMS_ENSURE(ok, KMS_ERR_VALIDATION, "invalid account id %s (12 digits)",
               account_id ? account_id : "(null)");
    return 0;
}

const char *kms_iam_kind_name(kms_iam_kind kind)
{
    return kind == KMS_IAM_USER ? "user" : kind == KMS_IAM_GROUP ? "group" : "role";
}

const char *kms_iam_kind_title(kms_iam_kind kind)
{
    return kind == KMS_IAM_USER ? "User" : kind == KMS_IAM_GROUP ? "Group" : "Role";
}

void kms_iam_entity_arn(iam_entity *e)
{
    if (e->is_root) {
        snprintf(e->arn, sizeof e->arn, "arn:aws:iam::%s:root", e->account_id);
    } else {
        snprintf(e->arn, sizeof e->arn, "arn:aws:iam::%s:%s%s%s", e->account_id,
                 kms_iam_kind_name(e->kind), e->path, e->name);
    }
}

/* ---- json --------------------------------------------------------------------------------- */

int kms_iam_json_set(json_t *obj, const char *key, json_t *value)
{
    KMS_ENSURE(value != NULL && json_object_set_new(obj, key, value) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

int kms_iam_list_response(json_t *items, const char *member, bool truncated, const char *marker,
                          json_t **out)
{
    *out = NULL;
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(items);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (kms_iam_json_set(o, member, items) != 0) {
        json_decref(o);
        return -1;
    }
    if (kms_iam_json_set(o, "IsTruncated", json_boolean(truncated)) != 0 ||
        (truncated && marker != NULL && kms_iam_json_set(o, "Marker", json_string(marker)) != 0)) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

int kms_iam_rows_append(kms_db_stmt *st, iam_row_json_fn row, const void *arg, json_t *items)
{
    int s;
    while ((s = kms_db_step(st, IAM_SQL_WHAT)) == 1) {
        json_t *j = row(st, arg);
        if (j == NULL) {
            s = -1;
            break;
        }
        if (json_array_append_new(items, j) != 0) {
            s = kms_raise(KMS_ERR_INTERNAL, "out of memory");
            break;
        }
    }
    kms_db_reset(st);
    return s < 0 ? -1 : 0;
}

size_t kms_iam_max_items(size_t max_items)
{
    if (max_items == 0) {
        return IAM_MAX_ITEMS_DEFAULT;
    }
    return max_items > IAM_MAX_ITEMS_LIMIT ? IAM_MAX_ITEMS_LIMIT : max_items;
}

/* ---- Secrets ------------------------------------------------------------------------------ */

int kms_iam_seal(kms_iam *iam, const char *purpose, const void *pt, size_t n, uint8_t **ct,
                 size_t *ct_len)
{
    KMS_ENSURE(iam->sealer.seal != NULL, KMS_ERR_INTERNAL, "IAM has no sealer for secrets");
    return iam->sealer.seal(iam->sealer.arg, purpose, pt, n, ct, ct_len);
}

int kms_iam_unseal(kms_iam *iam, const char *purpose, const void *ct, size_t n, char **pt,
                   size_t *pt_len)
{
    KMS_ENSURE(iam->sealer.open != NULL, KMS_ERR_INTERNAL, "IAM has no sealer for secrets");
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    KMS_GUARD(iam->sealer.open(iam->sealer.arg, purpose, ct, n, &raw, &raw_len));
    int r = -1;
    char *copy = kms_secure_alloc(raw_len + 1);
    if (copy == NULL) {
        goto out;
    }
    memcpy(copy, raw, raw_len);
    copy[raw_len] = '\0';
    *pt = copy;
    *pt_len = raw_len;
    r = 0;
out:
    sodium_memzero(raw, raw_len);
    kms_secure_free(raw);
    return r;
}

int kms_iam_new_secret(char **out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = kms_secure_alloc(IAM_SECRET_LEN + 1);
    KMS_GUARD(s == NULL ? -1 : 0);
    kms_iam_random_id(s, IAM_SECRET_LEN + 1, "", IAM_SECRET_LEN, alphabet);
    *out = s;
    return 0;
}

void kms_iam_new_access_key_id(char out[32], bool session)
{
    kms_iam_random_id(out, 32, session ? "ASIA" : "AKIA", 16, IAM_B32);
}

void kms_iam_secret_free(char *secret)
{
    if (secret != NULL) {
        sodium_memzero(secret, strlen(secret));
        kms_secure_free(secret);
    }
}
