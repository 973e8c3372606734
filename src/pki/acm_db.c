/* The rows of managed certificates (acm.h) in the metadata database (acm_certificates, acm_tags,
 * acm_expiry_warnings: store_schema.c version 7), through the store's one typed layer. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "pki/acm_internal.h"
#include "store/store_internal.h"
#include "util/util.h"

#define ACM_COLUMNS                                                                                \
    "cert_id, account_id, domain_name, sans, key_algorithm, key_storage, key_name, sealed_key,"    \
    " certificate, chain, serial, not_before, not_after, status, cert_type, ca_arn,"               \
    " renewal_eligibility, renewal_status, renewal_reason, renewal_updated_at, in_use_by,"         \
    " generation, created_at, issued_at, imported_at, prev_key_name"

static const char sql_insert[] =
    "INSERT INTO acm_certificates (" ACM_COLUMNS ", idempotency_token) VALUES (?1, ?2, ?3, ?4,"
    " ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,"
    " ?24, ?25, ?26, ?27)";
static const char sql_token_find[] =
    "SELECT cert_id FROM acm_certificates WHERE account_id = ?1 AND idempotency_token = ?2"
    " AND created_at >= ?3 ORDER BY created_at DESC LIMIT 1";
/* The revocation of a certificate's current serial by its CA (acm-pca RevokeCertificate, read
 * only from the CA's table): a revoked certificate is REVOKED. */
#define ACM_REVOCATION(what)                                                                       \
    "(SELECT p." what " FROM acm_serials s JOIN pca_certificates p ON p.ca_id = s.ca_id AND"       \
    " p.serial = s.serial WHERE s.cert_id = a.cert_id AND s.serial = a.serial)"
#define ACM_SELECT                                                                                 \
    "SELECT " ACM_COLUMNS ", " ACM_REVOCATION("revoked_at") ", " ACM_REVOCATION(                   \
        "revocation_reason") " FROM acm_certificates a"
static const char sql_get[] = ACM_SELECT " WHERE cert_id = ?1 AND account_id = ?2";
static const char sql_list[] =
    ACM_SELECT " WHERE account_id = ?1 AND cert_id > ?2 ORDER BY cert_id";
static const char sql_list_all[] = ACM_SELECT " ORDER BY account_id, cert_id";
static const char sql_replace[] =
    "UPDATE acm_certificates SET key_name = ?3, sealed_key = ?4, certificate = ?5, chain = ?6,"
    " serial = ?7, not_before = ?8, not_after = ?9, status = ?10, renewal_status = ?11,"
    " renewal_reason = '', renewal_updated_at = ?12, generation = ?13, issued_at = ?14,"
    " imported_at = ?15, domain_name = ?16, sans = ?17, key_algorithm = ?18, prev_key_name = ?19"
    " WHERE cert_id = ?1 AND account_id = ?2 AND generation = ?13 - 1";
static const char sql_serial_insert[] =
    "INSERT OR IGNORE INTO acm_serials (ca_id, serial, cert_id) VALUES (?1, ?2, ?3)";
static const char sql_delete_keys[] =
    "SELECT key_storage, key_name, prev_key_name FROM acm_certificates WHERE cert_id = ?1 AND"
    " account_id = ?2";
static const char sql_delete_tags[] = "DELETE FROM acm_tags WHERE cert_id = ?1";
static const char sql_delete[] =
    "DELETE FROM acm_certificates WHERE cert_id = ?1 AND account_id = ?2 AND in_use_by = '[]'";
static const char sql_in_use_get[] =
    "SELECT in_use_by FROM acm_certificates WHERE cert_id = ?1 AND account_id = ?2";
static const char sql_in_use_set[] =
    "UPDATE acm_certificates SET in_use_by = ?3 WHERE cert_id = ?1 AND account_id = ?2";
static const char sql_renewal_failed[] =
    "UPDATE acm_certificates SET renewal_status = 'FAILED', renewal_reason = ?3,"
    " renewal_updated_at = ?4 WHERE cert_id = ?1 AND account_id = ?2";
static const char sql_tag_count[] = "SELECT count(*) FROM acm_tags WHERE cert_id = ?1";
static const char sql_tag_put[] =
    "INSERT INTO acm_tags (cert_id, tag_key, tag_value) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (cert_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value";
static const char sql_tag_remove[] =
    "DELETE FROM acm_tags WHERE cert_id = ?1 AND tag_key = ?2 AND (?3 IS NULL OR tag_value = ?3)";
static const char sql_tag_list[] =
    "SELECT tag_key, tag_value FROM acm_tags WHERE cert_id = ?1 ORDER BY tag_key";
static const char sql_expiring_acm[] =
    "SELECT cert_id, not_after, account_id FROM acm_certificates a WHERE status = 'ISSUED' AND "
    "not_after > ?1 AND not_after <= ?2 AND coalesce(" ACM_REVOCATION(
        "revoked_at") ", 0) = 0"
                      " ORDER BY not_after";
/* Read only: the certificates the CAs of every account issued (pki_db.c owns the table). */
static const char sql_expiring_pca[] =
    "SELECT c.ca_id, c.serial, c.not_after, a.account_id FROM pca_certificates c JOIN"
    " pca_authorities a ON a.ca_id = c.ca_id WHERE c.revoked_at = 0 AND c.not_after > ?1"
    " AND c.not_after <= ?2 AND NOT EXISTS (SELECT 1 FROM acm_serials s"
    " WHERE s.ca_id = c.ca_id AND s.serial = c.serial) ORDER BY c.not_after";
static const char sql_warning_claim[] =
    "INSERT INTO acm_expiry_warnings (arn, last_day) VALUES (?1, ?2) ON CONFLICT (arn)"
    " DO UPDATE SET last_day = excluded.last_day WHERE last_day < excluded.last_day";

void kms_acm_cert_clean_up(kms_acm_cert *c)
{
    free(c->sans);
    if (c->sealed_key != NULL) {
        sodium_memzero(c->sealed_key, c->sealed_key_len);
    }
    free(c->sealed_key);
    free(c->certificate);
    free(c->chain);
    free(c->renewal_reason);
    free(c->in_use_by);
    memset(c, 0, sizeof *c);
}

void kms_acm_arn(const kms_keystore *ks, const char *cert_id, char out[KMS_ARN_MAX])
{
    snprintf(out, KMS_ARN_MAX, "arn:aws:acm:%s:%s:certificate/%s", ks->region, ks->account_id,
             cert_id);
}

int kms_acm_arn_parse(const kms_keystore *ks, const char *arn, char cert_id[37])
{
    char prefix[KMS_ARN_MAX];
    static const char kind[] = ":certificate/";
    cert_id[0] = '\0';
    /* Any account's, as kms_pki_arn_parse: a certificate of another account is then one the
     * caller's account does not have (ResourceNotFoundException), not a malformed ARN. */
    snprintf(prefix, sizeof prefix, "arn:aws:acm:%s:", ks->region);
    size_t n = strlen(prefix);
    KMS_ENSURE(arn != NULL && strncmp(arn, prefix, n) == 0 && strspn(arn + n, "0123456789") == 12 &&
                   strncmp(arn + n + 12, kind, sizeof kind - 1) == 0 &&
                   kms_uuid_valid(arn + n + 12 + sizeof kind - 1),
               KMS_ERR_INVALID_ARN,
               "String '%s' is not a valid certificate ARN of this home: expected "
               "%sACCOUNT%sUUID",
               arn != NULL ? arn : "", prefix, kind);
    snprintf(cert_id, 37, "%s", arn + n + 12 + sizeof kind - 1);
    return 0;
}

const char *kms_acm_status(const kms_acm_cert *c, int64_t now)
{
    return strcmp(c->status, "ISSUED") == 0 && now > c->not_after ? "EXPIRED" : c->status;
}

int64_t kms_acm_renew_at(const kms_acm_cert *c)
{
    int64_t before = c->not_after - KMS_ACM_RENEW_BEFORE_SECONDS;
    int64_t two_thirds = c->not_before + (c->not_after - c->not_before) * 2 / 3;
    return before > two_thirds ? before : two_thirds;
}

/* A PRIVATE certificate's serial under its CA (acm_serials); nothing for an imported one. */
static int serial_record(kms_db_conn *conn, const kms_acm_cert *c)
{
    const char *slash = strrchr(c->ca_arn, '/');
    if (strcmp(c->type, "PRIVATE") != 0 || slash == NULL) {
        return 0;
    }
    return kms_db_conn_run(
        conn, sql_serial_insert,
        KMS_DB_PARAMS(kms_db_text(slash + 1), kms_db_text(c->serial), kms_db_text(c->cert_id)),
        "cannot record the certificate's serial", NULL);
}

typedef struct insert_args {
    const kms_acm_cert *c;
    const char *token;
} insert_args;

static int insert_locked(kms_db_conn *conn, void *arg)
{
    const insert_args *a = arg;
    const kms_acm_cert *c = a->c;
    KMS_GUARD(kms_db_conn_run(
        conn, sql_insert,
        KMS_DB_PARAMS(
            kms_db_text(c->cert_id), kms_db_text(c->account_id), kms_db_text(c->domain_name),
            kms_db_text(c->sans), kms_db_text(c->key_algorithm), kms_db_text(c->key_storage),
            kms_db_text(c->key_name),
            c->sealed_key != NULL ? kms_db_blob(c->sealed_key, c->sealed_key_len) : kms_db_null(),
            kms_db_blob(c->certificate, c->certificate_len),
            c->chain != NULL ? kms_db_blob(c->chain, c->chain_len) : kms_db_null(),
            kms_db_text(c->serial), kms_db_int64(c->not_before), kms_db_int64(c->not_after),
            kms_db_text(c->status), kms_db_text(c->type), kms_db_text(c->ca_arn),
            kms_db_text(c->renewal_eligibility), kms_db_text(c->renewal_status),
            kms_db_text(c->renewal_reason != NULL ? c->renewal_reason : ""),
            kms_db_int64(c->renewal_updated_at),
            kms_db_text(c->in_use_by != NULL ? c->in_use_by : "[]"), kms_db_int64(c->generation),
            kms_db_int64(c->created_at), kms_db_int64(c->issued_at), kms_db_int64(c->imported_at),
            kms_db_text(c->prev_key_name), kms_db_text(a->token != NULL ? a->token : "")),
        "cannot record the certificate", NULL));
    return serial_record(conn, c);
}

int kms_acm_db_insert(const kms_keystore *ks, const kms_acm_cert *c, const char *token)
{
    insert_args a = {c, token};
    return kms_db_write(kms_store_db(ks->store), insert_locked, &a,
                        "cannot record the certificate");
}

static int token_row(kms_db_stmt *st, void *arg)
{
    snprintf(arg, 37, "%s", kms_db_column_text(st, 0));
    return 1;
}

int kms_acm_db_token_find(const kms_keystore *ks, const char *token, int64_t since,
                          char cert_id[37])
{
    size_t rows = 0;
    cert_id[0] = '\0';
    KMS_GUARD(kms_db_query(
        kms_store_db(ks->store), sql_token_find,
        KMS_DB_PARAMS(kms_db_text(ks->account_id), kms_db_text(token), kms_db_int64(since)),
        token_row, cert_id, "cannot read the certificates", &rows));
    return rows > 0 ? 1 : 0;
}

static int replace_locked(kms_db_conn *conn, void *arg)
{
    const kms_acm_cert *c = arg;
    int64_t changes = 0;
    KMS_GUARD(kms_db_conn_run(
        conn, sql_replace,
        KMS_DB_PARAMS(
            kms_db_text(c->cert_id), kms_db_text(c->account_id), kms_db_text(c->key_name),
            c->sealed_key != NULL ? kms_db_blob(c->sealed_key, c->sealed_key_len) : kms_db_null(),
            kms_db_blob(c->certificate, c->certificate_len),
            c->chain != NULL ? kms_db_blob(c->chain, c->chain_len) : kms_db_null(),
            kms_db_text(c->serial), kms_db_int64(c->not_before), kms_db_int64(c->not_after),
            kms_db_text(c->status), kms_db_text(c->renewal_status),
            kms_db_int64(c->renewal_updated_at), kms_db_int64(c->generation),
            kms_db_int64(c->issued_at), kms_db_int64(c->imported_at), kms_db_text(c->domain_name),
            kms_db_text(c->sans), kms_db_text(c->key_algorithm), kms_db_text(c->prev_key_name)),
        "cannot record the renewed certificate", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_REQUEST_IN_PROGRESS,
               "certificate %s was renewed or reimported meanwhile: try again", c->cert_id);
    return serial_record(conn, c);
}

int kms_acm_db_replace(const kms_keystore *ks, const kms_acm_cert *c)
{
    return kms_db_write(kms_store_db(ks->store), replace_locked, (void *)c,
                        "cannot record the renewed certificate");
}

/* Reads one row of ACM_COLUMNS into a zeroed *c (cleaned up on failure). */
static int cert_read(kms_db_stmt *st, kms_acm_cert *c)
{
    const char *subject = kms_db_column_text(st, 0);
    if (kms_db_column_copy(st, 0, c->cert_id, sizeof c->cert_id, subject) != 0 ||
        kms_db_column_copy(st, 1, c->account_id, sizeof c->account_id, subject) != 0 ||
        kms_db_column_copy(st, 2, c->domain_name, sizeof c->domain_name, subject) != 0 ||
        kms_db_column_dup(st, 3, &c->sans) != 0 ||
        kms_db_column_copy(st, 4, c->key_algorithm, sizeof c->key_algorithm, subject) != 0 ||
        kms_db_column_copy(st, 5, c->key_storage, sizeof c->key_storage, subject) != 0 ||
        kms_db_column_copy(st, 6, c->key_name, sizeof c->key_name, subject) != 0 ||
        kms_db_column_blob_dup(st, 7, &c->sealed_key, &c->sealed_key_len) != 0 ||
        kms_db_column_blob_dup(st, 8, &c->certificate, &c->certificate_len) != 0 ||
        kms_db_column_blob_dup(st, 9, &c->chain, &c->chain_len) != 0 ||
        kms_db_column_copy(st, 10, c->serial, sizeof c->serial, subject) != 0 ||
        kms_db_column_copy(st, 13, c->status, sizeof c->status, subject) != 0 ||
        kms_db_column_copy(st, 14, c->type, sizeof c->type, subject) != 0 ||
        kms_db_column_copy(st, 15, c->ca_arn, sizeof c->ca_arn, subject) != 0 ||
        kms_db_column_copy(st, 16, c->renewal_eligibility, sizeof c->renewal_eligibility,
                           subject) != 0 ||
        kms_db_column_copy(st, 17, c->renewal_status, sizeof c->renewal_status, subject) != 0 ||
        kms_db_column_dup(st, 18, &c->renewal_reason) != 0 ||
        kms_db_column_dup(st, 20, &c->in_use_by) != 0 ||
        kms_db_column_copy(st, 25, c->prev_key_name, sizeof c->prev_key_name, subject) != 0) {
        kms_acm_cert_clean_up(c);
        return -1;
    }
    c->not_before = kms_db_column_int64(st, 11);
    c->not_after = kms_db_column_int64(st, 12);
    c->renewal_updated_at = kms_db_column_int64(st, 19);
    c->generation = kms_db_column_int64(st, 21);
    c->created_at = kms_db_column_int64(st, 22);
    c->issued_at = kms_db_column_int64(st, 23);
    c->imported_at = kms_db_column_int64(st, 24);
    c->revoked_at = kms_db_column_int64(st, 26);
    snprintf(c->revocation_reason, sizeof c->revocation_reason, "%s", kms_db_column_text(st, 27));
    if (c->revoked_at != 0) {
        snprintf(c->status, sizeof c->status, "REVOKED");
    }
    return 0;
}

static int get_row(kms_db_stmt *st, void *arg)
{
    KMS_GUARD(cert_read(st, arg));
    return 1;
}

int kms_acm_get(const kms_keystore *ks, const char *cert_id, kms_acm_cert *out)
{
    size_t rows = 0;
    memset(out, 0, sizeof *out);
    KMS_GUARD(kms_db_query(kms_store_db(ks->store), sql_get,
                           KMS_DB_PARAMS(kms_db_text(cert_id), kms_db_text(ks->account_id)),
                           get_row, out, "cannot read the certificate", &rows));
    if (rows == 0) {
        char arn[KMS_ARN_MAX];
        kms_acm_arn(ks, cert_id, arn);
        return kms_raise(KMS_ERR_RESOURCE_NOT_FOUND, "Could not find certificate %s.", arn);
    }
    return 0;
}

/* The rows read into memory first, visited after the connection went back. */
typedef struct cert_page {
    kms_acm_cert *items;
    size_t count;
    size_t cap;
} cert_page;

static int page_row(kms_db_stmt *st, void *arg)
{
    cert_page *pg = arg;
    KMS_GUARD(kms_array_reserve((void **)&pg->items, &pg->cap, pg->count, sizeof *pg->items));
    memset(&pg->items[pg->count], 0, sizeof pg->items[0]);
    KMS_GUARD(cert_read(st, &pg->items[pg->count]));
    pg->count++;
    return 0;
}

static int list_visit(const kms_keystore *ks, const char *sql, kms_db_params params,
                      kms_acm_cert_cb cb, void *arg)
{
    int r = -1;
    cert_page pg = {NULL, 0, 0};
    if (kms_db_query(kms_store_db(ks->store), sql, params, page_row, &pg,
                     "cannot list the certificates", NULL) != 0) {
        goto out;
    }
    for (size_t i = 0; i < pg.count; i++) {
        int s = cb(arg, &pg.items[i]);
        if (s < 0) {
            goto out;
        }
        if (s > 0) {
            break;
        }
    }
    r = 0;
out:
    for (size_t i = 0; i < pg.count; i++) {
        kms_acm_cert_clean_up(&pg.items[i]);
    }
    free(pg.items);
    return r;
}

int kms_acm_list(const kms_keystore *ks, const char *after, kms_acm_cert_cb cb, void *arg)
{
    return list_visit(ks, sql_list,
                      KMS_DB_PARAMS(kms_db_text(ks->account_id), kms_db_text(after ? after : "")),
                      cb, arg);
}

int kms_acm_scheduler_list(const kms_keystore *ks, kms_acm_cert_cb cb, void *arg)
{
    return list_visit(ks, sql_list_all, KMS_DB_NO_PARAMS, cb, arg);
}

/* An HSM key of the certificate ("" is none); one already gone is fine. */
static int destroy_key(const kms_keystore *ks, const char *name)
{
    if (name[0] == '\0') {
        return 0;
    }
    if (kms_keystore_cert_key_destroy(ks, name) != 0 && kms_last_error() != KMS_ERR_NOT_FOUND) {
        return -1;
    }
    kms_error_clear();
    return 0;
}

typedef struct delete_args {
    const kms_keystore *ks;
    const kms_acm_cert *c;
    /* The row's HSM keys as they are when it goes (not as c, a copy read before, has them: a
     * renewal in between made a new key and destroyed the one two generations back). */
    bool hsm;
    char key_name[64];
    char prev_key_name[64];
} delete_args;

static int delete_locked(kms_db_conn *conn, void *arg)
{
    delete_args *a = arg;
    kms_db_stmt *st = NULL;
    int64_t changes = 0;
    int s = kms_db_first(conn, sql_delete_keys,
                         KMS_DB_PARAMS(kms_db_text(a->c->cert_id), kms_db_text(a->ks->account_id)),
                         &st, "cannot read the certificate");
    if (s < 0) {
        return -1;
    }
    KMS_ENSURE(s == 1, KMS_ERR_RESOURCE_NOT_FOUND, "Could not find certificate %s.", a->c->cert_id);
    a->hsm = strcmp(kms_db_column_text(st, 0), "HSM") == 0;
    snprintf(a->key_name, sizeof a->key_name, "%s", kms_db_column_text(st, 1));
    snprintf(a->prev_key_name, sizeof a->prev_key_name, "%s", kms_db_column_text(st, 2));
    kms_db_reset(st);
    KMS_GUARD(kms_db_conn_run(conn, sql_delete_tags, KMS_DB_PARAMS(kms_db_text(a->c->cert_id)),
                              "cannot delete the certificate's tags", NULL));
    KMS_GUARD(kms_db_conn_run(
        conn, sql_delete, KMS_DB_PARAMS(kms_db_text(a->c->cert_id), kms_db_text(a->ks->account_id)),
        "cannot delete the certificate", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_RESOURCE_IN_USE,
               "Certificate %s is in use: it cannot be deleted until nothing uses it",
               a->c->cert_id);
    return 0;
}

int kms_acm_delete(const kms_keystore *ks, const kms_acm_cert *c)
{
    char arn[KMS_ARN_MAX];
    kms_acm_arn(ks, c->cert_id, arn);
    KMS_ENSURE(c->in_use_by == NULL || strcmp(c->in_use_by, "[]") == 0, KMS_ERR_RESOURCE_IN_USE,
               "Certificate %s is in use by %s: it cannot be deleted until nothing uses it", arn,
               c->in_use_by);
    delete_args a;
    memset(&a, 0, sizeof a);
    a.ks = ks;
    a.c = c;
    KMS_GUARD(
        kms_db_write(kms_store_db(ks->store), delete_locked, &a, "cannot delete the certificate"));
    /* The row is gone: its HSM keys (this generation and the one before) follow. */
    if (a.hsm) {
        KMS_GUARD(destroy_key(ks, a.key_name));
        KMS_GUARD(destroy_key(ks, a.prev_key_name));
    }
    return 0;
}

typedef struct in_use_args {
    const kms_keystore *ks;
    const char *cert_id;
    const char *user;
    bool add;
} in_use_args;

static int in_use_locked(kms_db_conn *conn, void *arg)
{
    const in_use_args *a = arg;
    kms_db_stmt *st = NULL;
    json_t *list = NULL;
    char *text = NULL;
    int r = -1;
    int s = kms_db_first(conn, sql_in_use_get,
                         KMS_DB_PARAMS(kms_db_text(a->cert_id), kms_db_text(a->ks->account_id)),
                         &st, "cannot read the certificate");
    if (s <= 0) {
        if (s == 0) {
            kms_raise(KMS_ERR_RESOURCE_NOT_FOUND, "Could not find certificate %s.", a->cert_id);
        }
        return -1;
    }
    list = json_loads(kms_db_column_text(st, 0), 0, NULL);
    kms_db_reset(st);
    if (!json_is_array(list)) {
        kms_raise(KMS_ERR_INTERNAL, "certificate %s has an invalid in_use_by", a->cert_id);
        goto out;
    }
    size_t i;
    json_t *v;
    bool found = false;
    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(v) ? json_string_value(v) : "", a->user) == 0) {
            found = true;
            break;
        }
    }
    if (found && !a->add && json_array_remove(list, i) != 0) {
        goto oom;
    }
    if (!found && a->add && json_array_append_new(list, json_string(a->user)) != 0) {
        goto oom;
    }
    text = json_dumps(list, JSON_COMPACT);
    if (text == NULL) {
        goto oom;
    }
    r = kms_db_conn_run(
        conn, sql_in_use_set,
        KMS_DB_PARAMS(kms_db_text(a->cert_id), kms_db_text(a->ks->account_id), kms_db_text(text)),
        "cannot record the certificate's use", NULL);
    goto out;
oom:
    kms_raise(KMS_ERR_INTERNAL, "out of memory");
out:
    free(text);
    json_decref(list);
    return r;
}

int kms_acm_in_use(const kms_keystore *ks, const char *cert_id, const char *user, bool add)
{
    in_use_args a = {ks, cert_id, user, add};
    return kms_db_write(kms_store_db(ks->store), in_use_locked, &a,
                        "cannot record the certificate's use");
}

int kms_acm_renewal_failed(const kms_keystore *ks, const char *cert_id, const char *reason,
                           int64_t now)
{
    return kms_db_run(kms_store_db(ks->store), sql_renewal_failed,
                      KMS_DB_PARAMS(kms_db_text(cert_id), kms_db_text(ks->account_id),
                                    kms_db_text(reason), kms_db_int64(now)),
                      "cannot record the failed renewal", NULL);
}

/* ---- Tags ---------------------------------------------------------------------------------- */

/* ACM's Tag: Key 1-128, Value 0-256, no "aws:" prefix. */
static int tag_check(json_t *t, const char **key, const char **value)
{
    *key = json_string_value(json_object_get(t, "Key"));
    json_t *v = json_object_get(t, "Value");
    *value = json_string_value(v);
    KMS_ENSURE(json_is_object(t) && *key != NULL && (v == NULL || *value != NULL),
               KMS_ERR_VALIDATION, "each tag must be {\"Key\": STRING, \"Value\": STRING}");
    KMS_ENSURE(strlen(*key) >= 1 && strlen(*key) <= 128 &&
                   (*value == NULL || strlen(*value) <= 256),
               KMS_ERR_VALIDATION, "a tag's Key is 1 to 128 characters, its Value at most 256");
    KMS_ENSURE(strncasecmp(*key, "aws:", 4) != 0, KMS_ERR_INVALID_TAG,
               "Tag keys beginning with aws: are reserved");
    return 0;
}

typedef struct tags_args {
    const char *cert_id;
    json_t *tags;
    bool add;
} tags_args;

static int tags_locked(kms_db_conn *conn, void *arg)
{
    const tags_args *a = arg;
    size_t i;
    json_t *t;
    json_array_foreach(a->tags, i, t)
    {
        const char *key = NULL, *value = NULL;
        KMS_GUARD(tag_check(t, &key, &value));
        KMS_GUARD(kms_db_conn_run(
            conn, a->add ? sql_tag_put : sql_tag_remove,
            KMS_DB_PARAMS(kms_db_text(a->cert_id), kms_db_text(key),
                          a->add ? kms_db_text(value ? value : "") : kms_db_text(value)),
            "cannot record the certificate's tags", NULL));
    }
    int64_t n = 0;
    if (kms_db_int(conn, sql_tag_count, KMS_DB_PARAMS(kms_db_text(a->cert_id)), &n,
                   "cannot count the certificate's tags") < 0) {
        return -1;
    }
    KMS_ENSURE(n <= KMS_ACM_TAGS_MAX, KMS_ERR_LIMIT_EXCEEDED,
               "a certificate has at most %d tags (TooManyTagsException)", KMS_ACM_TAGS_MAX);
    return 0;
}

int kms_acm_tags_check(json_t *tags)
{
    size_t i;
    json_t *t;
    KMS_ENSURE(json_is_array(tags) && json_array_size(tags) >= 1 &&
                   json_array_size(tags) <= KMS_ACM_TAGS_MAX,
               KMS_ERR_VALIDATION, "Tags must be a list of 1 to %d {Key, Value}", KMS_ACM_TAGS_MAX);
    json_array_foreach(tags, i, t)
    {
        const char *key = NULL, *value = NULL;
        KMS_GUARD(tag_check(t, &key, &value));
    }
    return 0;
}

static int tags_change(const kms_keystore *ks, const char *cert_id, json_t *tags, bool add)
{
    KMS_GUARD(kms_acm_tags_check(tags));
    kms_acm_cert c;
    KMS_GUARD(kms_acm_get(ks, cert_id, &c));
    kms_acm_cert_clean_up(&c);
    tags_args a = {cert_id, tags, add};
    return kms_db_write(kms_store_db(ks->store), tags_locked, &a,
                        "cannot record the certificate's tags");
}

int kms_acm_tags_add(const kms_keystore *ks, const char *cert_id, json_t *tags)
{
    return tags_change(ks, cert_id, tags, true);
}

int kms_acm_tags_remove(const kms_keystore *ks, const char *cert_id, json_t *tags)
{
    return tags_change(ks, cert_id, tags, false);
}

static int tag_row(kms_db_stmt *st, void *arg)
{
    json_t *t = json_pack("{s:s, s:s}", "Key", kms_db_column_text(st, 0), "Value",
                          kms_db_column_text(st, 1));
    KMS_ENSURE(t != NULL && json_array_append_new(arg, t) == 0, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_acm_tags_list(const kms_keystore *ks, const char *cert_id, json_t **tags)
{
    kms_acm_cert c;
    *tags = NULL;
    KMS_GUARD(kms_acm_get(ks, cert_id, &c));
    kms_acm_cert_clean_up(&c);
    json_t *list = json_array();
    KMS_ENSURE(list != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_db_query(kms_store_db(ks->store), sql_tag_list, KMS_DB_PARAMS(kms_db_text(cert_id)),
                     tag_row, list, "cannot list the certificate's tags", NULL) != 0) {
        json_decref(list);
        return -1;
    }
    *tags = list;
    return 0;
}

/* ---- Expiry ---------------------------------------------------------------------------------- */

typedef struct expiring_item {
    char arn[KMS_ARN_MAX];
    int64_t not_after;
    const char *source;
} expiring_item;

typedef struct expiring_list {
    const kms_keystore *ks;
    expiring_item *items;
    size_t count, cap;
} expiring_list;

static int expiring_push(expiring_list *l, const char *arn, int64_t not_after, const char *source)
{
    KMS_GUARD(kms_array_reserve((void **)&l->items, &l->cap, l->count, sizeof *l->items));
    expiring_item *it = &l->items[l->count++];
    snprintf(it->arn, sizeof it->arn, "%s", arn);
    it->not_after = not_after;
    it->source = source;
    return 0;
}

static int expiring_acm_row(kms_db_stmt *st, void *arg)
{
    expiring_list *l = arg;
    char arn[KMS_ARN_MAX];
    kms_keystore view;
    kms_pki_keystore_as(l->ks, kms_db_column_text(st, 2), &view);
    kms_acm_arn(&view, kms_db_column_text(st, 0), arn);
    return expiring_push(l, arn, kms_db_column_int64(st, 1), "acm");
}

static int expiring_pca_row(kms_db_stmt *st, void *arg)
{
    expiring_list *l = arg;
    char arn[KMS_ARN_MAX];
    kms_keystore view;
    kms_pki_keystore_as(l->ks, kms_db_column_text(st, 3), &view);
    kms_pki_cert_arn(&view, kms_db_column_text(st, 0), kms_db_column_text(st, 1), arn);
    return expiring_push(l, arn, kms_db_column_int64(st, 2), "acm-pca");
}

int kms_acm_expiring(const kms_keystore *ks, int64_t now, int64_t before, kms_acm_expiring_cb cb,
                     void *arg)
{
    int r = -1;
    expiring_list l = {ks, NULL, 0, 0};
    kms_db *db = kms_store_db(ks->store);
    kms_db_params p = KMS_DB_PARAMS(kms_db_int64(now), kms_db_int64(before));
    if (kms_db_query(db, sql_expiring_acm, p, expiring_acm_row, &l,
                     "cannot list expiring certificates", NULL) != 0 ||
        kms_db_query(db, sql_expiring_pca, p, expiring_pca_row, &l,
                     "cannot list expiring certificates", NULL) != 0) {
        goto out;
    }
    for (size_t i = 0; i < l.count; i++) {
        if (cb(arg, l.items[i].arn, l.items[i].not_after, l.items[i].source) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(l.items);
    return r;
}

int kms_acm_warning_claim(const kms_keystore *ks, const char *arn, int64_t day)
{
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(ks->store), sql_warning_claim,
                         KMS_DB_PARAMS(kms_db_text(arn), kms_db_int64(day)),
                         "cannot record the expiry warning", &changes));
    return changes > 0 ? 1 : 0;
}

/* ---- Servers of the TLS helper in InUseBy ------------------------------------------------------
 */
#define TLS_SERVER_PREFIX "kms-tls-server:"

static void host_name(char out[256])
{
    if (gethostname(out, 256) != 0) {
        snprintf(out, 256, "localhost");
    }
    out[255] = '\0';
}

void kms_acm_tls_server_name(long pid, unsigned n, char out[KMS_ACM_IN_USE_NAME_MAX])
{
    char host[256];
    host_name(host);
    snprintf(out, KMS_ACM_IN_USE_NAME_MAX, TLS_SERVER_PREFIX "%s:%ld:%u", host, pid, n);
}

bool kms_acm_tls_server_gone(const char *name)
{
    char host[256];
    size_t plen = strlen(TLS_SERVER_PREFIX);
    host_name(host);
    size_t hlen = strlen(host);
    if (strncmp(name, TLS_SERVER_PREFIX, plen) != 0 || strncmp(name + plen, host, hlen) != 0 ||
        name[plen + hlen] != ':') {
        return false;
    }
    char *end = NULL;
    long pid = strtol(name + plen + hlen + 1, &end, 10);
    if (end == NULL || *end != ':' || pid <= 0) {
        return false;
    }
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}
