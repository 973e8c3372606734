/* Servers of managed certificates: the certificate, its chain and its key come from the
 * certificate manager by ARN (kms_acm_service_material, authorised and audited as
 * acm:UseCertificate). A key held in the HSM signs there through the kms-hsm provider; a sealed
 * or imported key is decoded into this process's memory only.
 *
 * Hot reload on renewal: a renewal or a reimport raises the certificate's generation. Before a
 * new connection is made, the server compares that generation with the one it serves, at most
 * once a second (one indexed read of the metadata database, not audited: it reveals nothing
 * the server was not already allowed to see), and when it moved, fetches the new material
 * (audited) and reloads (kms_tls_server_reload_with_key): new handshakes get the new
 * certificate and key, connections already open keep theirs. A failed refresh keeps the
 * current certificate and is tried again a second later.
 *
 * While the server lives, the certificate's InUseBy names it, so DeleteCertificate refuses. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pki/acm.h"
#include "policy/policy.h"
#include "service/acm_service.h"
#include "tls/tls_hsm.h"
#include "tls/tls_managed.h"
#include "tls/tls_server.h"
#include "util/error.h"

/* At most one look at the generation per this many milliseconds. */
#define REFRESH_INTERVAL_MS 1000

struct kms_tls_managed {
    kms_client *client;
    char *arn; /* the certificate served, NULL if it comes from files */
    char *in_use_by;
    int64_t generation;
    char *crl_path; /* the CRL of the clients' CA (ca_arn), NULL if none */
    struct timespec crl_mtime;
    int64_t checked_ms; /* CLOCK_MONOTONIC */
    pthread_mutex_t lock;
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The public key of the chain's first certificate, as DER SubjectPublicKeyInfo (malloc'd). */
static int leaf_spki(const char *chain_pem, uint8_t **spki, size_t *spki_len)
{
    BIO *bio = BIO_new_mem_buf(chain_pem, -1);
    X509 *leaf = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int n = leaf != NULL ? i2d_PUBKEY(X509_get0_pubkey(leaf), &der) : -1;
    X509_free(leaf);
    BIO_free(bio);
    *spki = NULL;
    *spki_len = 0;
    KMS_ENSURE(n > 0, KMS_ERR_INTERNAL, "the managed certificate's PEM does not parse");
    *spki = malloc((size_t)n);
    if (*spki == NULL) {
        OPENSSL_free(der);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    memcpy(*spki, der, (size_t)n);
    *spki_len = (size_t)n;
    OPENSSL_free(der);
    return 0;
}

/* The server's key for the material: the HSM pair through kms-hsm, or the PKCS#8 decoded. */
static EVP_PKEY *material_pkey(kms_client *client, const kms_acm_material *m)
{
    if (!m->hsm) {
        return kms_tls_pkey_from_pkcs8(m->pkcs8, m->pkcs8_len);
    }
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    if (leaf_spki(m->chain_pem, &spki, &spki_len) != 0) {
        return NULL;
    }
    EVP_PKEY *pkey =
        kms_tls_hsm_pkey_new(&client->keystore, m->key_name, m->key_spec, spki, spki_len);
    free(spki);
    return pkey;
}

/* The certificate's generation, read from the metadata database (not audited, see above). */
static int current_generation(const kms_tls_managed *mg, int64_t *generation)
{
    char account[13];
    char cert_id[37];
    kms_keystore view;
    kms_acm_cert cert;
    *generation = 0;
    KMS_ENSURE(kms_policy_arn_account(mg->arn, account) == 0, KMS_ERR_INVALID_ARN,
               "%s is not a certificate ARN", mg->arn);
    kms_pki_keystore_as(&mg->client->keystore, account, &view);
    KMS_GUARD(kms_acm_arn_parse(&view, mg->arn, cert_id));
    KMS_GUARD(kms_acm_get(&view, cert_id, &cert));
    *generation = cert.generation;
    kms_acm_cert_clean_up(&cert);
    return 0;
}

static void managed_free(kms_tls_managed *mg)
{
    if (mg == NULL) {
        return;
    }
    free(mg->arn);
    free(mg->in_use_by);
    free(mg->crl_path);
    pthread_mutex_destroy(&mg->lock);
    free(mg);
}

/* When the CRL file last changed ({0} when it cannot be read: a new file reloads too). */
static struct timespec mtime_of(const char *path)
{
    struct stat st;
    struct timespec none = {0};
    return stat(path, &st) == 0 ? st.st_mtim : none;
}

static kms_tls_managed *managed_new(const kms_tls_options *opts)
{
    kms_tls_managed *mg = calloc(1, sizeof *mg);
    if (mg == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&mg->lock, NULL);
    mg->client = opts->client;
    mg->checked_ms = monotonic_ms();
    if (opts->ca_arn != NULL && opts->client_auth != KMS_TLS_CLIENT_AUTH_NONE) {
        if (kms_tls_manager_crl_path(opts->client, opts->ca_arn, &mg->crl_path) != 0) {
            managed_free(mg);
            return NULL;
        }
        if (mg->crl_path != NULL) {
            mg->crl_mtime = mtime_of(mg->crl_path);
        }
    }
    return mg;
}

kms_tls_managed *kms_tls_managed_crl_watch_new(const kms_tls_options *opts)
{
    return managed_new(opts);
}

kms_tls_server *kms_tls_managed_server_new(const kms_tls_options *opts)
{
    kms_acm_material m;
    kms_tls_server *server = NULL;
    EVP_PKEY *pkey = NULL;
    kms_tls_options o = *opts;
    char pid_name[48];
    memset(&m, 0, sizeof m);
    if (opts->client == NULL || opts->cert_chain_file != NULL || opts->key_file != NULL) {
        kms_raise(KMS_ERR_VALIDATION, "a server of a managed certificate needs the client of its "
                                      "KMS home, and no certificate or key file");
        return NULL;
    }
    kms_tls_managed *mg = managed_new(opts);
    if (mg == NULL) {
        return NULL;
    }
    snprintf(pid_name, sizeof pid_name, "kms-tls-server:%ld", (long)getpid());
    mg->arn = strdup(opts->certificate_arn);
    mg->in_use_by = strdup(opts->in_use_by != NULL ? opts->in_use_by : pid_name);
    if (mg->arn == NULL || mg->in_use_by == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_acm_service_material(opts->client, opts->certificate_arn, &m) != 0) {
        goto out;
    }
    if ((pkey = material_pkey(opts->client, &m)) == NULL) {
        goto out;
    }
    o.certificate_arn = NULL;
    o.in_use_by = NULL;
    server = kms_tls_server_new_with_key(&o, m.chain_pem, strlen(m.chain_pem), pkey);
    if (server == NULL) {
        goto out;
    }
    if (kms_acm_service_in_use(opts->client, mg->arn, mg->in_use_by, true) != 0) {
        kms_tls_server_free(server);
        server = NULL;
        goto out;
    }
    mg->generation = m.generation;
    kms_tls_server_managed_attach(server, mg);
    mg = NULL;
out:
    EVP_PKEY_free(pkey);
    kms_acm_material_clean_up(&m);
    managed_free(mg);
    return server;
}

void kms_tls_managed_refresh(kms_tls_server *server, kms_tls_managed *mg)
{
    kms_acm_material m;
    EVP_PKEY *pkey = NULL;
    int64_t generation = 0;
    if (mg == NULL || pthread_mutex_trylock(&mg->lock) != 0) {
        return; /* another thread is looking */
    }
    int64_t now = monotonic_ms();
    memset(&m, 0, sizeof m);
    if (now - mg->checked_ms < REFRESH_INTERVAL_MS) {
        goto out;
    }
    mg->checked_ms = now;
    if (mg->crl_path != NULL) {
        struct timespec t = mtime_of(mg->crl_path);
        /* A reissued CRL: a new context reads it (the certificate stays). */
        if ((t.tv_sec != mg->crl_mtime.tv_sec || t.tv_nsec != mg->crl_mtime.tv_nsec) &&
            kms_tls_server_reload(server, NULL, NULL) == 0) {
            mg->crl_mtime = t;
        }
    }
    if (mg->arn == NULL || current_generation(mg, &generation) != 0 ||
        generation == mg->generation) {
        goto out;
    }
    if (kms_acm_service_material(mg->client, mg->arn, &m) != 0 ||
        (pkey = material_pkey(mg->client, &m)) == NULL ||
        kms_tls_server_reload_with_key(server, m.chain_pem, strlen(m.chain_pem), pkey) != 0) {
        goto out;
    }
    mg->generation = m.generation;
out:
    EVP_PKEY_free(pkey);
    kms_acm_material_clean_up(&m);
    pthread_mutex_unlock(&mg->lock);
    kms_error_clear(); /* the connection goes on with the current certificate */
}

int64_t kms_tls_managed_generation(const kms_tls_managed *mg)
{
    return mg != NULL ? mg->generation : 0;
}

void kms_tls_managed_free(kms_tls_managed *mg)
{
    if (mg == NULL) {
        return;
    }
    /* Best effort: a home that cannot be written now keeps the entry until the next server of
     * the same name (InUseBy is a set) removes it. */
    if (mg->arn != NULL && kms_acm_service_in_use(mg->client, mg->arn, mg->in_use_by, false) != 0) {
        kms_error_clear();
    }
    managed_free(mg);
}
