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
#include <stdatomic.h>
#include <stdbool.h>
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

/* At most one look at the generation and the CRL per this many milliseconds; after a failed
 * reload the wait doubles, up to the maximum, so that a certificate or CRL that cannot be
 * loaded costs one audited attempt every five minutes, not every second. */
#define REFRESH_INTERVAL_MS 1000
#define REFRESH_BACKOFF_MAX_MS (300 * 1000)

/* What tells a new CRL file from the one loaded: a copy keeping the time (cp -p, rsync -t, a
 * restore) changes the inode or the change time, a rewrite in place the size or mtime. */
typedef struct file_id {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id;

struct kms_tls_managed {
    kms_client *client;
    char *arn; /* the certificate served, NULL if it comes from files */
    char *in_use_by;
    int64_t generation;
    char *ca_arn;       /* the clients' CA (mutual TLS with ca_arn), else NULL */
    char *crl_path;     /* its CRL, NULL while the CA publishes none */
    file_id crl_id;     /* the CRL file loaded */
    int64_t checked_ms; /* CLOCK_MONOTONIC */
    int64_t interval_ms;
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
    free(mg->ca_arn);
    pthread_mutex_destroy(&mg->lock);
    free(mg);
}

static file_id file_id_of(const char *path)
{
    struct stat st;
    file_id id;
    memset(&id, 0, sizeof id);
    if (path != NULL && stat(path, &st) == 0) {
        id.exists = true;
        id.dev = st.st_dev;
        id.ino = st.st_ino;
        id.size = st.st_size;
        id.mtime = st.st_mtim;
        id.ctime = st.st_ctim;
    }
    return id;
}

static bool file_id_equal(const file_id *a, const file_id *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static bool same_path(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
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
    mg->interval_ms = REFRESH_INTERVAL_MS;
    /* The CRL file is looked at before the context loads it: one published in between is
     * newer than what was looked at, and reloads at the first refresh. */
    if (opts->ca_arn != NULL && opts->client_auth != KMS_TLS_CLIENT_AUTH_NONE) {
        if ((mg->ca_arn = strdup(opts->ca_arn)) == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            managed_free(mg);
            return NULL;
        }
        if (kms_tls_manager_crl_path(opts->client, opts->ca_arn, &mg->crl_path) != 0) {
            managed_free(mg);
            return NULL;
        }
        mg->crl_id = file_id_of(mg->crl_path);
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
    char pid_name[KMS_ACM_IN_USE_NAME_MAX];
    static atomic_uint servers;
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
    kms_acm_tls_server_name(getpid(), atomic_fetch_add(&servers, 1) + 1, pid_name);
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

/* The clients' CA: its CRL reloaded when the CA starts or stops publishing one (UpdateCertificate-
 * Authority) or publishes a new one. 0, or -1 when a reload failed. */
static int refresh_crl(kms_tls_server *server, kms_tls_managed *mg)
{
    char *path = NULL;
    if (kms_tls_manager_crl_path(mg->client, mg->ca_arn, &path) != 0) {
        return -1;
    }
    file_id id = file_id_of(path);
    if (same_path(path, mg->crl_path) && file_id_equal(&id, &mg->crl_id)) {
        free(path);
        return 0;
    }
    if (kms_tls_server_reload(server, NULL, NULL) != 0) {
        free(path);
        return -1;
    }
    free(mg->crl_path);
    mg->crl_path = path;
    mg->crl_id = id;
    return 0;
}

/* A renewed or reimported certificate: its new material. 0, or -1 when a reload failed. */
static int refresh_certificate(kms_tls_server *server, kms_tls_managed *mg)
{
    kms_acm_material m;
    EVP_PKEY *pkey = NULL;
    int64_t generation = 0;
    int r = -1;
    memset(&m, 0, sizeof m);
    if (current_generation(mg, &generation) != 0) {
        return 0; /* not audited, cheap: looked at again a second later */
    }
    if (generation == mg->generation) {
        return 0;
    }
    if (kms_acm_service_material(mg->client, mg->arn, &m) != 0 ||
        (pkey = material_pkey(mg->client, &m)) == NULL ||
        kms_tls_server_reload_with_key(server, m.chain_pem, strlen(m.chain_pem), pkey) != 0) {
        goto out;
    }
    mg->generation = m.generation;
    r = 0;
out:
    EVP_PKEY_free(pkey);
    kms_acm_material_clean_up(&m);
    return r;
}

void kms_tls_managed_refresh(kms_tls_server *server, kms_tls_managed *mg)
{
    if (mg == NULL || pthread_mutex_trylock(&mg->lock) != 0) {
        return; /* another thread is looking */
    }
    int64_t now = monotonic_ms();
    if (now - mg->checked_ms >= mg->interval_ms) {
        mg->checked_ms = now;
        int r = 0;
        if (mg->ca_arn != NULL) {
            r = refresh_crl(server, mg);
        }
        if (r == 0 && mg->arn != NULL) {
            r = refresh_certificate(server, mg);
        }
        mg->interval_ms =
            r == 0 ? REFRESH_INTERVAL_MS
                   : (mg->interval_ms * 2 > REFRESH_BACKOFF_MAX_MS ? REFRESH_BACKOFF_MAX_MS
                                                                   : mg->interval_ms * 2);
    }
    pthread_mutex_unlock(&mg->lock);
    kms_error_clear(); /* the connection goes on with the current certificate */
}

int64_t kms_tls_managed_interval_ms(const kms_tls_managed *mg)
{
    return mg != NULL ? mg->interval_ms : 0;
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
