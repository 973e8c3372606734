/* Publishing a CA's CRL under the home (HOME/crl/CA_ID.crl, DER, written atomically), and when
 * the next one is due: once half of the current CRL's validity has passed, so that relying
 * parties that fetch it late still find one that has not expired (RFC 5280 5.1.2.5 leaves the
 * schedule to the CA; AWS Private CA likewise reissues well before nextUpdate). */
#include <errno.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki/pki_internal.h"
#include "util/util.h"

/* The largest CRL read back: a CRL of every certificate a CA may revoke stays far below. */
#define CRL_FILE_MAX (64u << 20)

/* HOME/crl (made if missing) and HOME/crl/CA_ID.crl, malloc'd. */
static int crl_paths(const char *home, const char *ca_id, char **dir, char **path)
{
    *dir = kms_path_join(home, "crl");
    *path = *dir != NULL ? kms_strdup_printf("%s/%s.crl", *dir, ca_id) : NULL;
    if (*path == NULL) {
        free(*dir);
        *dir = NULL;
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return 0;
}

/* The cRLNumber of the CRL in `path`; -1 when there is none, or none that reads and parses
 * (such a file is replaced). */
static int64_t crl_number_of(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    int64_t number = -1;
    if (!kms_path_exists(path)) {
        return -1;
    }
    if (kms_file_read(path, CRL_FILE_MAX, &data, &len) != 0) {
        kms_error_clear();
        return -1;
    }
    const unsigned char *p = (const unsigned char *)data;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    ASN1_INTEGER *n = crl != NULL ? X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL) : NULL;
    if (n != NULL && ASN1_INTEGER_get_int64(&number, n) != 1) {
        number = -1;
    }
    ASN1_INTEGER_free(n);
    X509_CRL_free(crl);
    free(data);
    return number;
}

/* Whether the CRL der (len bytes) has a higher cRLNumber than the one in `path`. */
static bool crl_newer(const char *path, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    int64_t number = -1;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    ASN1_INTEGER *n = crl != NULL ? X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL) : NULL;
    if (n == NULL || ASN1_INTEGER_get_int64(&number, n) != 1) {
        number = -1;
    }
    ASN1_INTEGER_free(n);
    X509_CRL_free(crl);
    return number > crl_number_of(path);
}

int kms_pki_crl_publish(const kms_keystore *ks, const kms_pki_ca *ca, const char *home, int64_t now)
{
    int r = -1;
    int lock = -1;
    uint8_t *der = NULL;
    size_t len = 0;
    char *dir = NULL, *path = NULL, *lock_path = NULL;
    if (crl_paths(home, ca->ca_id, &dir, &path) != 0) {
        goto out;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        kms_raise(KMS_ERR_HOME, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    /* One publisher of the CA's CRL at a time, across processes: from its number to the rename,
     * so that a CRL written later always has the higher number and every revocation before it. */
    if ((lock_path = kms_strdup_printf("%s/%s.lock", dir, ca->ca_id)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_file_lock(lock_path, true, &lock) != 0) {
        goto out;
    }
    if (kms_pki_crl(ks, ca, now, &der, &len) != 0) {
        goto out;
    }
    /* Never a newer CRL replaced by an older one (a writer that did not take the lock). */
    if (!crl_newer(path, der, len)) {
        r = 0;
        goto out;
    }
    if (kms_file_write_atomic(path, der, len, 0644) != 0) {
        goto out;
    }
    r = 0;
out:
    if (lock >= 0) {
        close(lock);
    }
    free(der);
    free(lock_path);
    free(path);
    free(dir);
    return r;
}

/* thisUpdate and nextUpdate of the published CRL; 0 when there is none that parses. */
static int crl_times(const char *path, int64_t *this_update, int64_t *next_update)
{
    char *data = NULL;
    size_t len = 0;
    *this_update = 0;
    *next_update = 0;
    if (!kms_path_exists(path)) {
        return 0;
    }
    KMS_GUARD(kms_file_read(path, CRL_FILE_MAX, &data, &len));
    const unsigned char *p = (const unsigned char *)data;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    const ASN1_TIME *t0 = crl != NULL ? X509_CRL_get0_lastUpdate(crl) : NULL;
    const ASN1_TIME *t1 = crl != NULL ? X509_CRL_get0_nextUpdate(crl) : NULL;
    struct tm tm0, tm1;
    if (t0 != NULL && t1 != NULL && ASN1_TIME_to_tm(t0, &tm0) == 1 &&
        ASN1_TIME_to_tm(t1, &tm1) == 1) {
        *this_update = (int64_t)timegm(&tm0);
        *next_update = (int64_t)timegm(&tm1);
    }
    X509_CRL_free(crl);
    free(data);
    return 0;
}

int kms_pki_crl_due(const kms_pki_ca *ca, const char *home, int64_t now, bool *due,
                    int64_t *next_update)
{
    char *dir = NULL, *path = NULL;
    int64_t t0 = 0, t1 = 0;
    *due = false;
    *next_update = 0;
    if (!kms_pki_crl_enabled(ca) || ca->certificate == NULL || now >= ca->not_after ||
        (strcmp(ca->status, "ACTIVE") != 0 && strcmp(ca->status, "DISABLED") != 0)) {
        return 0;
    }
    KMS_GUARD(crl_paths(home, ca->ca_id, &dir, &path));
    int r = crl_times(path, &t0, &t1);
    free(path);
    free(dir);
    KMS_GUARD(r);
    *next_update = t1;
    /* None (or unreadable), or half of its validity passed. */
    *due = t1 <= t0 || now >= t0 + (t1 - t0) / 2;
    return 0;
}

int kms_pki_crl_read(const char *home, const char *ca_id, uint8_t **der, size_t *der_len)
{
    char *dir = NULL, *path = NULL, *data = NULL;
    size_t len = 0;
    *der = NULL;
    *der_len = 0;
    KMS_GUARD(crl_paths(home, ca_id, &dir, &path));
    int r = kms_path_exists(path)
                ? kms_file_read(path, CRL_FILE_MAX, &data, &len)
                : kms_raise(KMS_ERR_NOT_FOUND, "no CRL published for CA %s", ca_id);
    free(path);
    free(dir);
    KMS_GUARD(r);
    *der = (uint8_t *)data;
    *der_len = len;
    return 0;
}
