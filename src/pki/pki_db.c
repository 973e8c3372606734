/* The rows of src/pki in the metadata database (tables pca_authorities and pca_certificates,
 * store_schema.c version 6), through the store's one typed layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_internal.h"
#include "store/store_internal.h"
#include "util/util.h"

#define PKI_SQL_WHAT "certificate authority metadata"

static const char sql_ca_insert[] =
    "INSERT INTO pca_authorities (ca_id, account_id, ca_type, status, key_algorithm,"
    " signing_algorithm, usage_mode, configuration, certificate, serial, not_before, not_after,"
    " created_at, last_state_change_at, public_key, revocation_configuration) VALUES (?1, ?2, ?3,"
    " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
#define CA_COLUMNS                                                                                 \
    "ca_id, account_id, ca_type, status, key_algorithm, signing_algorithm, usage_mode,"            \
    " configuration, certificate, serial, not_before, not_after, created_at,"                      \
    " last_state_change_at, public_key, chain, restorable_until, revocation_configuration"
/* A purged CA (PURGING, PURGED: kms_pki_ca_purge) is no CA of anyone's any more. */
static const char sql_ca_get[] =
    "SELECT " CA_COLUMNS " FROM pca_authorities WHERE ca_id = ?1 AND account_id = ?2"
    " AND status NOT IN ('PURGING', 'PURGED')";
static const char sql_ca_list[] =
    "SELECT " CA_COLUMNS " FROM pca_authorities"
    " WHERE account_id = ?3 AND ca_id > ?1"
    " AND status NOT IN ('PURGING', 'PURGED') ORDER BY ca_id LIMIT ?2";
static const char sql_cert_insert[] =
    "INSERT INTO pca_certificates (ca_id, serial, template, certificate, not_before, not_after,"
    " issued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_cert_get[] =
    "SELECT certificate FROM pca_certificates WHERE ca_id = ?1 AND serial = ?2";

void kms_pki_ca_clean_up(kms_pki_ca *ca)
{
    free(ca->configuration);
    free(ca->certificate);
    free(ca->chain);
    free(ca->public_key);
    free(ca->revocation);
    memset(ca, 0, sizeof *ca);
}

int kms_pki_db_ca_insert(const kms_keystore *ks, const kms_pki_ca *ca)
{
    return kms_db_run(
        kms_store_db(ks->store), sql_ca_insert,
        KMS_DB_PARAMS(kms_db_text(ca->ca_id), kms_db_text(ca->account_id), kms_db_text(ca->type),
                      kms_db_text(ca->status), kms_db_text(ca->key_algorithm),
                      kms_db_text(ca->signing_algorithm), kms_db_text(ca->usage_mode),
                      kms_db_text(ca->configuration),
                      ca->certificate != NULL ? kms_db_blob(ca->certificate, ca->certificate_len)
                                              : kms_db_null(),
                      kms_db_text(ca->serial), kms_db_int64(ca->not_before),
                      kms_db_int64(ca->not_after), kms_db_int64(ca->created_at),
                      kms_db_int64(ca->last_state_change_at),
                      kms_db_blob(ca->public_key, ca->public_key_len),
                      kms_db_text(ca->revocation != NULL ? ca->revocation : "")),
        "cannot record the certificate authority", NULL);
}

/* Reads one row of CA_COLUMNS into a zeroed *ca (cleaned up on failure). */
static int ca_read(kms_db_stmt *st, kms_pki_ca *ca)
{
    const char *subject = kms_db_column_text(st, 0);
    if (kms_db_column_copy(st, 0, ca->ca_id, sizeof ca->ca_id, subject) != 0 ||
        kms_db_column_copy(st, 1, ca->account_id, sizeof ca->account_id, subject) != 0 ||
        kms_db_column_copy(st, 2, ca->type, sizeof ca->type, subject) != 0 ||
        kms_db_column_copy(st, 3, ca->status, sizeof ca->status, subject) != 0 ||
        kms_db_column_copy(st, 4, ca->key_algorithm, sizeof ca->key_algorithm, subject) != 0 ||
        kms_db_column_copy(st, 5, ca->signing_algorithm, sizeof ca->signing_algorithm, subject) !=
            0 ||
        kms_db_column_copy(st, 6, ca->usage_mode, sizeof ca->usage_mode, subject) != 0 ||
        kms_db_column_dup(st, 7, &ca->configuration) != 0 ||
        kms_db_column_blob_dup(st, 8, &ca->certificate, &ca->certificate_len) != 0 ||
        kms_db_column_blob_dup(st, 14, &ca->public_key, &ca->public_key_len) != 0 ||
        kms_db_column_blob_dup(st, 15, &ca->chain, &ca->chain_len) != 0 ||
        kms_db_column_dup(st, 17, &ca->revocation) != 0) {
        kms_pki_ca_clean_up(ca);
        return -1;
    }
    snprintf(ca->serial, sizeof ca->serial, "%s", kms_db_column_text(st, 9));
    ca->not_before = kms_db_column_int64(st, 10);
    ca->not_after = kms_db_column_int64(st, 11);
    ca->created_at = kms_db_column_int64(st, 12);
    ca->last_state_change_at = kms_db_column_int64(st, 13);
    ca->restorable_until = kms_db_column_int64(st, 16);
    return 0;
}

static int ca_row(kms_db_stmt *st, void *arg)
{
    KMS_GUARD(ca_read(st, arg));
    return 1;
}

int kms_pki_db_ca_get(const kms_keystore *ks, const char *ca_id, kms_pki_ca *out)
{
    size_t rows = 0;
    memset(out, 0, sizeof *out);
    KMS_GUARD(kms_db_query(kms_store_db(ks->store), sql_ca_get,
                           KMS_DB_PARAMS(kms_db_text(ca_id), kms_db_text(ks->account_id)), ca_row,
                           out, "cannot read the certificate authority", &rows));
    if (rows == 0) {
        char arn[KMS_ARN_MAX];
        kms_pki_ca_arn(ks, ca_id, arn);
        return kms_raise(KMS_ERR_RESOURCE_NOT_FOUND, "Could not find certificate authority %s",
                         arn);
    }
    return 0;
}

int kms_pki_ca_get(const kms_keystore *ks, const char *ca_id, kms_pki_ca *out)
{
    return kms_pki_db_ca_get(ks, ca_id, out);
}

/* A page of CAs read into memory, visited after the connection went back. */
typedef struct ca_page {
    kms_pki_ca *items;
    size_t count;
    size_t cap;
} ca_page;

static int page_row(kms_db_stmt *st, void *arg)
{
    ca_page *pg = arg;
    KMS_GUARD(kms_array_reserve((void **)&pg->items, &pg->cap, pg->count, sizeof *pg->items));
    memset(&pg->items[pg->count], 0, sizeof pg->items[0]);
    KMS_GUARD(ca_read(st, &pg->items[pg->count]));
    pg->count++;
    return 0;
}

int kms_pki_ca_list(const kms_keystore *ks, const char *after, size_t limit, kms_pki_ca_cb cb,
                    void *arg, bool *truncated)
{
    int r = -1;
    ca_page pg = {NULL, 0, 0};
    *truncated = false;
    if (kms_db_query(kms_store_db(ks->store), sql_ca_list,
                     KMS_DB_PARAMS(kms_db_text(after ? after : ""),
                                   kms_db_int64((int64_t)limit + 1), kms_db_text(ks->account_id)),
                     page_row, &pg, "cannot list the certificate authorities", NULL) != 0) {
        goto out;
    }
    *truncated = pg.count > limit;
    for (size_t i = 0; i < pg.count && i < limit; i++) {
        if (cb(arg, &pg.items[i]) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    for (size_t i = 0; i < pg.count; i++) {
        kms_pki_ca_clean_up(&pg.items[i]);
    }
    free(pg.items);
    return r;
}

int kms_pki_db_cert_insert(const kms_keystore *ks, const char *ca_id, const char *serial,
                           const char *template_name, const uint8_t *der, size_t der_len,
                           int64_t not_before, int64_t not_after, int64_t issued_at)
{
    return kms_db_run(kms_store_db(ks->store), sql_cert_insert,
                      KMS_DB_PARAMS(kms_db_text(ca_id), kms_db_text(serial),
                                    kms_db_text(template_name), kms_db_blob(der, der_len),
                                    kms_db_int64(not_before), kms_db_int64(not_after),
                                    kms_db_int64(issued_at)),
                      "cannot record the issued certificate", NULL);
}

typedef struct blob_out {
    uint8_t **der;
    size_t *len;
} blob_out;

static int cert_row(kms_db_stmt *st, void *arg)
{
    blob_out *o = arg;
    KMS_GUARD(kms_db_column_blob_dup(st, 0, o->der, o->len));
    return 1;
}

int kms_pki_cert_get(const kms_keystore *ks, const char *ca_id, const char *serial, uint8_t **der,
                     size_t *der_len)
{
    size_t rows = 0;
    blob_out o = {der, der_len};
    *der = NULL;
    *der_len = 0;
    KMS_GUARD(kms_db_query(kms_store_db(ks->store), sql_cert_get,
                           KMS_DB_PARAMS(kms_db_text(ca_id), kms_db_text(serial)), cert_row, &o,
                           "cannot read the certificate", &rows));
    if (rows == 0 || *der == NULL) {
        char arn[KMS_ARN_MAX];
        free(*der);
        *der = NULL;
        *der_len = 0;
        kms_pki_cert_arn(ks, ca_id, serial, arn);
        return kms_raise(KMS_ERR_RESOURCE_NOT_FOUND, "Could not find certificate %s", arn);
    }
    return 0;
}

/* ---- Revocation
 * ---------------------------------------------------------------------------------- */

static const char sql_cert_revoked_at[] =
    "SELECT revoked_at FROM pca_certificates WHERE ca_id = ?1 AND serial = ?2";
static const char sql_cert_revoke[] = "UPDATE pca_certificates SET revoked_at = ?3,"
                                      " revocation_reason = ?4 WHERE ca_id = ?1 AND serial = ?2";
static const char sql_crl_number_bump[] =
    "UPDATE pca_authorities SET crl_number = crl_number + 1 WHERE ca_id = ?1";
static const char sql_crl_number_get[] = "SELECT crl_number FROM pca_authorities WHERE ca_id = ?1";
static const char sql_revoked_list[] =
    "SELECT serial, revoked_at, revocation_reason FROM pca_certificates"
    " WHERE ca_id = ?1 AND revoked_at > 0 ORDER BY serial";

typedef struct revoke_args {
    const kms_keystore *ks;
    const char *ca_id;
    const char *serial;
    const char *reason;
    int64_t now;
} revoke_args;

static int revoke_locked(kms_db_conn *c, void *arg)
{
    const revoke_args *a = arg;
    int64_t revoked_at = 0;
    char arn[KMS_ARN_MAX];
    int found = kms_db_int(c, sql_cert_revoked_at,
                           KMS_DB_PARAMS(kms_db_text(a->ca_id), kms_db_text(a->serial)),
                           &revoked_at, "cannot read the certificate");
    if (found < 0) {
        return -1;
    }
    kms_pki_cert_arn(a->ks, a->ca_id, a->serial, arn);
    KMS_ENSURE(found == 1, KMS_ERR_RESOURCE_NOT_FOUND, "Could not find certificate %s", arn);
    KMS_ENSURE(revoked_at == 0, KMS_ERR_ALREADY_PROCESSED, "The certificate %s is already revoked",
               arn);
    return kms_db_exec_sql(c, sql_cert_revoke,
                           KMS_DB_PARAMS(kms_db_text(a->ca_id), kms_db_text(a->serial),
                                         kms_db_int64(a->now), kms_db_text(a->reason)),
                           "cannot record the revocation");
}

int kms_pki_db_cert_revoke(const kms_keystore *ks, const char *ca_id, const char *serial,
                           const char *reason, int64_t now)
{
    revoke_args a = {ks, ca_id, serial, reason, now};
    return kms_db_write(kms_store_db(ks->store), revoke_locked, &a,
                        "cannot revoke the certificate");
}

typedef struct crl_number_args {
    const char *ca_id;
    int64_t *number;
} crl_number_args;

static int crl_number_locked(kms_db_conn *c, void *arg)
{
    const crl_number_args *a = arg;
    KMS_GUARD(kms_db_exec_sql(c, sql_crl_number_bump, KMS_DB_PARAMS(kms_db_text(a->ca_id)),
                              "cannot count the CRL"));
    int found = kms_db_int(c, sql_crl_number_get, KMS_DB_PARAMS(kms_db_text(a->ca_id)), a->number,
                           "cannot count the CRL");
    if (found < 0) {
        return -1;
    }
    KMS_ENSURE(found == 1, KMS_ERR_RESOURCE_NOT_FOUND, "no certificate authority %s", a->ca_id);
    return 0;
}

int kms_pki_db_crl_number_next(const kms_keystore *ks, const char *ca_id, int64_t *number)
{
    crl_number_args a = {ca_id, number};
    *number = 0;
    return kms_db_write(kms_store_db(ks->store), crl_number_locked, &a, "cannot count the CRL");
}

/* Revoked entries read into memory, visited after the connection went back. */
typedef struct revoked_row {
    char serial[KMS_PKI_SERIAL_MAX];
    int64_t at;
    char reason[40];
} revoked_row;

typedef struct revoked_page {
    revoked_row *rows;
    size_t count;
    size_t cap;
} revoked_page;

static int revoked_read(kms_db_stmt *st, void *arg)
{
    revoked_page *pg = arg;
    KMS_GUARD(kms_array_reserve((void **)&pg->rows, &pg->cap, pg->count, sizeof *pg->rows));
    revoked_row *r = &pg->rows[pg->count];
    snprintf(r->serial, sizeof r->serial, "%s", kms_db_column_text(st, 0));
    r->at = kms_db_column_int64(st, 1);
    snprintf(r->reason, sizeof r->reason, "%s", kms_db_column_text(st, 2));
    pg->count++;
    return 0;
}

int kms_pki_db_revoked_list(const kms_keystore *ks, const char *ca_id, kms_pki_revoked_cb cb,
                            void *arg)
{
    int r = -1;
    revoked_page pg = {NULL, 0, 0};
    if (kms_db_query(kms_store_db(ks->store), sql_revoked_list, KMS_DB_PARAMS(kms_db_text(ca_id)),
                     revoked_read, &pg, "cannot list the revoked certificates", NULL) != 0) {
        goto out;
    }
    for (size_t i = 0; i < pg.count; i++) {
        if (cb(arg, pg.rows[i].serial, pg.rows[i].at, pg.rows[i].reason) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(pg.rows);
    return r;
}

/* ---- Installing a subordinate CA's certificate
 * ---------------------------------------------------- */

static const char sql_ca_install[] =
    "UPDATE pca_authorities SET status = 'ACTIVE', certificate = ?2, chain = ?3, serial = ?4,"
    " not_before = ?5, not_after = ?6, last_state_change_at = ?7"
    " WHERE ca_id = ?1 AND status = 'PENDING_CERTIFICATE'";

int kms_pki_db_ca_install(const kms_keystore *ks, const kms_pki_ca *ca)
{
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(
        kms_store_db(ks->store), sql_ca_install,
        KMS_DB_PARAMS(kms_db_text(ca->ca_id), kms_db_blob(ca->certificate, ca->certificate_len),
                      kms_db_blob(ca->chain, ca->chain_len), kms_db_text(ca->serial),
                      kms_db_int64(ca->not_before), kms_db_int64(ca->not_after),
                      kms_db_int64(ca->last_state_change_at)),
        "cannot install the CA certificate", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s is not in the PENDING_CERTIFICATE state", ca->ca_id);
    return 0;
}

/* ---- Status -------------------------------------------------------------------------------------
 */

static const char sql_ca_status[] =
    "UPDATE pca_authorities SET status = ?3, last_state_change_at = ?4"
    " WHERE ca_id = ?1 AND account_id = ?2 AND status IN ('ACTIVE', 'DISABLED')";

int kms_pki_ca_set_status(const kms_keystore *ks, const kms_pki_ca *ca, const char *status,
                          int64_t now)
{
    int64_t changes = 0;
    KMS_ENSURE(status != NULL && (strcmp(status, "ACTIVE") == 0 || strcmp(status, "DISABLED") == 0),
               KMS_ERR_INVALID_ARGS, "Status must be ACTIVE or DISABLED, not '%s'",
               status ? status : "");
    if (strcmp(ca->status, status) == 0) {
        return 0;
    }
    KMS_GUARD(kms_db_run(kms_store_db(ks->store), sql_ca_status,
                         KMS_DB_PARAMS(kms_db_text(ca->ca_id), kms_db_text(ks->account_id),
                                       kms_db_text(status), kms_db_int64(now)),
                         "cannot change the certificate authority's status", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s is in the %s state: only an ACTIVE or DISABLED CA "
               "changes status",
               ca->ca_id, ca->status);
    return 0;
}

/* ---- Deletion and restoration -------------------------------------------------------------------
 */

static const char sql_ca_delete[] =
    "UPDATE pca_authorities SET status = 'DELETED', restorable_until = ?3,"
    " last_state_change_at = ?4 WHERE ca_id = ?1 AND account_id = ?2 AND status = ?5";
static const char sql_ca_restore[] =
    "UPDATE pca_authorities SET status = CASE WHEN certificate IS NULL THEN"
    " 'PENDING_CERTIFICATE' ELSE 'DISABLED' END, restorable_until = 0,"
    " last_state_change_at = ?3 WHERE ca_id = ?1 AND account_id = ?2 AND status = 'DELETED'"
    " AND restorable_until > ?3";

int kms_pki_ca_delete(const kms_keystore *ks, const kms_pki_ca *ca, int days, int64_t now)
{
    int64_t changes = 0;
    KMS_ENSURE(days >= 7 && days <= 30, KMS_ERR_INVALID_ARGS,
               "PermanentDeletionTimeInDays must be 7 to 30, not %d", days);
    KMS_ENSURE(strcmp(ca->status, "ACTIVE") != 0 && strcmp(ca->status, "DELETED") != 0,
               KMS_ERR_PCA_INVALID_STATE, "The certificate authority %s is %s: %s", ca->ca_id,
               ca->status,
               strcmp(ca->status, "ACTIVE") == 0
                   ? "disable it first (update-certificate-authority --status DISABLED)"
                   : "it is deleted already");
    KMS_GUARD(kms_db_run(kms_store_db(ks->store), sql_ca_delete,
                         KMS_DB_PARAMS(kms_db_text(ca->ca_id), kms_db_text(ks->account_id),
                                       kms_db_int64(now + (int64_t)days * 86400), kms_db_int64(now),
                                       kms_db_text(ca->status)),
                         "cannot delete the certificate authority", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s changed state meanwhile", ca->ca_id);
    return 0;
}

int kms_pki_ca_restore(const kms_keystore *ks, const kms_pki_ca *ca, int64_t now)
{
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(
        kms_store_db(ks->store), sql_ca_restore,
        KMS_DB_PARAMS(kms_db_text(ca->ca_id), kms_db_text(ks->account_id), kms_db_int64(now)),
        "cannot restore the certificate authority", &changes));
    KMS_ENSURE(changes == 1, KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s is %s: only a DELETED CA within its restore window "
               "is restored",
               ca->ca_id, ca->status);
    return 0;
}

/* ---- The revocation configuration ---------------------------------------------------------------
 */

static const char sql_ca_revocation[] =
    "UPDATE pca_authorities SET revocation_configuration = ?3, last_state_change_at = ?4"
    " WHERE ca_id = ?1 AND account_id = ?2 AND status IN ('ACTIVE', 'DISABLED',"
    " 'PENDING_CERTIFICATE')";

int kms_pki_ca_set_revocation(const kms_keystore *ks, const kms_pki_ca *ca, json_t *revocation,
                              int64_t now)
{
    int64_t changes = 0;
    KMS_GUARD(kms_pki_revocation_check(revocation));
    char *text = json_dumps(revocation, JSON_COMPACT | JSON_SORT_KEYS);
    KMS_ENSURE(text != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_db_run(kms_store_db(ks->store), sql_ca_revocation,
                       KMS_DB_PARAMS(kms_db_text(ca->ca_id), kms_db_text(ks->account_id),
                                     kms_db_text(text), kms_db_int64(now)),
                       "cannot change the revocation configuration", &changes);
    free(text);
    KMS_GUARD(r);
    KMS_ENSURE(changes == 1, KMS_ERR_PCA_INVALID_STATE,
               "The certificate authority %s is %s: its revocation configuration cannot change",
               ca->ca_id, ca->status);
    return 0;
}

/* ---- The scheduler's work -----------------------------------------------------------------------
 */

static const char sql_ca_scheduler[] =
    "SELECT " CA_COLUMNS " FROM pca_authorities WHERE status IN ('ACTIVE', 'DISABLED', 'PURGING')"
    " OR (status = 'DELETED' AND restorable_until <= ?1) ORDER BY ca_id";
static const char sql_ca_purge_claim[] =
    "UPDATE pca_authorities SET status = 'PURGING', last_state_change_at = ?2"
    " WHERE ca_id = ?1 AND (status = 'PURGING' OR (status = 'DELETED' AND restorable_until <= ?2))";
static const char sql_ca_purged[] = "UPDATE pca_authorities SET status = 'PURGED',"
                                    " last_state_change_at = ?2 WHERE ca_id = ?1 AND status = "
                                    "'PURGING'";

int kms_pki_scheduler_list(const kms_keystore *ks, int64_t now, kms_pki_ca_cb cb, void *arg)
{
    int r = -1;
    ca_page pg = {NULL, 0, 0};
    if (kms_db_query(kms_store_db(ks->store), sql_ca_scheduler, KMS_DB_PARAMS(kms_db_int64(now)),
                     page_row, &pg, "cannot list the certificate authorities", NULL) != 0) {
        goto out;
    }
    for (size_t i = 0; i < pg.count; i++) {
        if (cb(arg, &pg.items[i]) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    for (size_t i = 0; i < pg.count; i++) {
        kms_pki_ca_clean_up(&pg.items[i]);
    }
    free(pg.items);
    return r;
}

int kms_pki_ca_purge(const kms_keystore *ks, const char *ca_id, int64_t now)
{
    int64_t changes = 0;
    KMS_GUARD(kms_db_run(kms_store_db(ks->store), sql_ca_purge_claim,
                         KMS_DB_PARAMS(kms_db_text(ca_id), kms_db_int64(now)),
                         "cannot delete the certificate authority", &changes));
    if (changes == 0) {
        return 1; /* restored meanwhile, or purged by another scheduler */
    }
    /* Claimed: no restore from here. A key gone already (an earlier run that stopped before the
     * last step) is fine. */
    if (kms_keystore_ca_key_destroy(ks, ca_id) != 0) {
        if (kms_last_error() != KMS_ERR_NOT_FOUND) {
            return -1;
        }
        kms_error_clear();
    }
    KMS_GUARD(kms_db_run(kms_store_db(ks->store), sql_ca_purged,
                         KMS_DB_PARAMS(kms_db_text(ca_id), kms_db_int64(now)),
                         "cannot delete the certificate authority", &changes));
    return changes == 1 ? 0 : 1;
}

/* ---- Issued certificates, for the audit report ---------------------------------------------
 */

static const char sql_cert_list[] =
    "SELECT serial, template, certificate, not_before, not_after, issued_at, revoked_at,"
    " revocation_reason FROM pca_certificates WHERE ca_id = ?1 ORDER BY issued_at, serial";

typedef struct cert_list_ctx {
    kms_pki_cert_cb cb;
    void *arg;
} cert_list_ctx;

static int cert_list_row(kms_db_stmt *st, void *arg)
{
    cert_list_ctx *c = arg;
    kms_pki_cert_row row = {
        .serial = kms_db_column_text(st, 0),
        .template_name = kms_db_column_text(st, 1),
        .not_before = kms_db_column_int64(st, 3),
        .not_after = kms_db_column_int64(st, 4),
        .issued_at = kms_db_column_int64(st, 5),
        .revoked_at = kms_db_column_int64(st, 6),
        .reason = kms_db_column_text(st, 7),
    };
    const void *der = NULL;
    kms_db_column_blob(st, 2, &der, &row.der_len);
    row.der = der;
    /* The callback raised its own error. */
    return c->cb(c->arg, &row) != 0 ? -1 : 0;
}

int kms_pki_db_cert_list(const kms_keystore *ks, const char *ca_id, kms_pki_cert_cb cb, void *arg)
{
    cert_list_ctx c = {cb, arg};
    return kms_db_query(kms_store_db(ks->store), sql_cert_list, KMS_DB_PARAMS(kms_db_text(ca_id)),
                        cert_list_row, &c, "cannot list the issued certificates", NULL);
}
