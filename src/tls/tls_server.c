/* TLS server contexts, and the server holder that swaps them on a hot reload. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "tls/tls_ctx.h"
#include "tls/tls_hsm.h"
#include "tls/tls_managed.h"
#include "tls/tls_server.h"
#include "tls/tls_ticket.h"
#include "util/error.h"
#include "util/util.h"

/* ---- ALPN: the server picks ------------------------------------------------------------------
 * The wire list lives in the context's ex_data, so it is freed with the context: a context that
 * outlives its server (kept by connections after a reload) keeps its list. */
typedef struct alpn_list {
    uint8_t *wire;
    size_t len;
} alpn_list;

static int alpn_index = -1;
static pthread_once_t alpn_once = PTHREAD_ONCE_INIT;

static void alpn_list_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    alpn_list *l = ptr;
    if (l != NULL) {
        free(l->wire);
        free(l);
    }
}

static void alpn_index_init(void)
{
    alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_list_free);
}

/* RFC 7301 3.2: the server's first protocol that the client offers; none in common is a fatal
 * no_application_protocol alert. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const alpn_list *l = arg;
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, l->wire, (unsigned)l->len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static int set_alpn(SSL_CTX *ctx, const char *list)
{
    pthread_once(&alpn_once, alpn_index_init);
    KMS_ENSURE(alpn_index >= 0, KMS_ERR_INTERNAL, "no ex_data index for ALPN");
    alpn_list *l = calloc(1, sizeof *l);
    KMS_ENSURE(l != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (kms_tls_alpn_encode(list, &l->wire, &l->len) != 0) {
        free(l);
        return -1;
    }
    if (SSL_CTX_set_ex_data(ctx, alpn_index, l) != 1) {
        alpn_list_free(NULL, l, NULL, 0, 0, NULL);
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "keeping the ALPN list");
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, l);
    return 0;
}

/* ---- Mutual TLS ------------------------------------------------------------------------------*/
static int set_client_auth(SSL_CTX *ctx, const kms_tls_options *o)
{
    if (o->ca_arn != NULL) {
        KMS_GUARD(kms_tls_manager_ca_install(o->client, o->ca_arn, ctx, true));
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER | (o->client_auth == KMS_TLS_CLIENT_AUTH_REQUIRE
                                                  ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                  : 0),
                           NULL);
        return 0;
    }
    /* The CA names sent in the CertificateRequest, so a client can pick its certificate. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
    if (names == NULL) {
        return kms_tls_raise_ssl(KMS_ERR_VALIDATION, "reading the client CA file");
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_VALIDATION, "reading the client CA file");
    }
    if (o->crl_file != NULL) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (lookup == NULL || X509_load_crl_file(lookup, o->crl_file, X509_FILETYPE_PEM) <= 0) {
            return kms_tls_raise_ssl(KMS_ERR_VALIDATION, "reading the CRL file");
        }
        /* Every certificate of the client's chain, the CAs above the leaf too, must have its
         * CRL there and not be listed in it (RFC 5280 6.3). */
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    int mode = SSL_VERIFY_PEER;
    if (o->client_auth == KMS_TLS_CLIENT_AUTH_REQUIRE) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    return 0;
}

/* ---- Certificates and keys from memory -------------------------------------------------------*/
/* What a server context is made of besides its options: the chain and key from memory (pkey not
 * NULL), else the options' files. */
typedef struct server_material {
    const char *chain_pem;
    size_t chain_pem_len;
    EVP_PKEY *pkey;
} server_material;

static int use_chain_pem(SSL_CTX *ctx, const server_material *m)
{
    int r = -1;
    X509 *cert = NULL;
    BIO *bio = NULL;
    if (m->chain_pem_len > INT32_MAX ||
        (bio = BIO_new_mem_buf(m->chain_pem, (int)m->chain_pem_len)) == NULL) {
        r = kms_raise(KMS_ERR_VALIDATION, "the certificate chain cannot be read");
        goto out;
    }
    for (int i = 0;; i++) {
        cert = X509_new_ex(kms_tls_hsm_libctx(), NULL);
        if (cert == NULL || PEM_read_bio_X509(bio, &cert, NULL, NULL) == NULL) {
            break;
        }
        int ok = i == 0 ? SSL_CTX_use_certificate(ctx, cert) : SSL_CTX_add0_chain_cert(ctx, cert);
        if (i == 0 || ok != 1) {
            X509_free(cert);
        }
        cert = NULL;
        if (ok != 1) {
            r = kms_tls_raise_ssl(KMS_ERR_VALIDATION, "using the certificate chain");
            goto out;
        }
        r = 0;
    }
    /* The loop ends at the end of the PEM text, or at a block that cannot be read: as
     * SSL_CTX_use_certificate_chain_file, only the former (no further BEGIN line) is the end. */
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        r = kms_tls_raise_ssl(KMS_ERR_VALIDATION, "the certificate chain holds a block that "
                                                  "cannot be read");
        goto out;
    }
    if (r != 0) {
        r = kms_tls_raise_ssl(KMS_ERR_VALIDATION, "the certificate chain holds no PEM "
                                                  "certificate");
        goto out;
    }
    ERR_clear_error();
    if (SSL_CTX_use_PrivateKey(ctx, m->pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        r = kms_tls_raise_ssl(KMS_ERR_VALIDATION, "the key does not match the certificate");
        goto out;
    }
out:
    X509_free(cert);
    BIO_free(bio);
    return r;
}

EVP_PKEY *kms_tls_pkey_from_pkcs8(const uint8_t *der, size_t der_len)
{
    OSSL_LIB_CTX *libctx = kms_tls_hsm_libctx();
    const unsigned char *p = der;
    EVP_PKEY *pkey = NULL;
    kms_error_clear();
    if (libctx == NULL) {
        return NULL;
    }
    if (der == NULL || der_len == 0 || der_len > INT32_MAX ||
        (pkey = d2i_AutoPrivateKey_ex(NULL, &p, (long)der_len, libctx, NULL)) == NULL ||
        p != der + der_len) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        kms_raise(KMS_ERR_VALIDATION, "the private key is not PKCS#8 DER");
        return NULL;
    }
    return pkey;
}

/* ---- Server contexts -------------------------------------------------------------------------*/
static int check_server_options(const kms_tls_options *o, const server_material *m)
{
    KMS_ENSURE(m->pkey != NULL || (o->cert_chain_file != NULL && o->key_file != NULL),
               KMS_ERR_VALIDATION, "a TLS server needs its certificate chain and key files");
    KMS_ENSURE(m->pkey == NULL || (o->cert_chain_file == NULL && o->key_file == NULL &&
                                   m->chain_pem != NULL && m->chain_pem_len > 0),
               KMS_ERR_VALIDATION,
               "a TLS server's certificate and key come from files or from memory, not both");
    KMS_ENSURE(o->client_auth >= KMS_TLS_CLIENT_AUTH_NONE &&
                   o->client_auth <= KMS_TLS_CLIENT_AUTH_REQUIRE,
               KMS_ERR_VALIDATION, "unknown client_auth %d", (int)o->client_auth);
    KMS_ENSURE(o->client_auth == KMS_TLS_CLIENT_AUTH_NONE ||
                   (o->ca_file != NULL) != (o->ca_arn != NULL),
               KMS_ERR_VALIDATION, "mutual TLS needs the CA that signs clients: a file or an ARN");
    KMS_ENSURE(o->ca_arn == NULL || (o->client != NULL && o->crl_file == NULL &&
                                     o->client_auth != KMS_TLS_CLIENT_AUTH_NONE),
               KMS_ERR_VALIDATION,
               "ca_arn is for checking client certificates (client_auth), needs the client of its "
               "KMS home, and brings its own CRL (no crl_file)");
    KMS_ENSURE(o->crl_file == NULL || o->client_auth != KMS_TLS_CLIENT_AUTH_NONE,
               KMS_ERR_VALIDATION, "a CRL file is for checking client certificates (client_auth)");
    KMS_ENSURE(o->ticket_key_id == NULL || o->client != NULL, KMS_ERR_VALIDATION,
               "ticket keys from a CMK need the client of its KMS home");
    KMS_ENSURE(o->client == NULL || !o->disable_session_tickets, KMS_ERR_VALIDATION,
               "ticket keys are given for session tickets, which are disabled");
    KMS_ENSURE(o->ticket_key_rotation_seconds == 0 || o->ticket_key_rotation_seconds >= 60,
               KMS_ERR_VALIDATION, "ticket keys rotate at most every minute");
    return 0;
}

/* Resumption: who may resume, with which ticket keys. */
static int set_sessions(SSL_CTX *ctx, const kms_tls_options *o, kms_tls_ticket_keys *tickets)
{
    /* Resumed sessions (and client certificates in them) belong to this application only. Under
     * mutual TLS with CMK ticket keys, to this context only: its CRL may be newer than the one a
     * ticket's client was checked against (see tls.h). */
    unsigned char sid_ctx[SSL_MAX_SID_CTX_LENGTH] = "kms-tls";
    size_t sid_len = 7;
    if (tickets != NULL && o->client_auth != KMS_TLS_CLIENT_AUTH_NONE) {
        randombytes_buf(sid_ctx + sid_len, sizeof sid_ctx - sid_len);
        sid_len = sizeof sid_ctx;
    }
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, (unsigned)sid_len) != 1) {
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "setting the session id context");
    }
    if (o->disable_session_tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (tickets != NULL) {
        return kms_tls_ticket_keys_install(ctx, tickets);
    }
    return 0;
}

static SSL_CTX *server_ctx_new(const kms_tls_options *o, const server_material *m,
                               kms_tls_ticket_keys *tickets)
{
    OSSL_LIB_CTX *libctx = NULL;
    if (check_server_options(o, m) != 0) {
        return NULL;
    }
    if (m->pkey != NULL && (libctx = kms_tls_hsm_libctx()) == NULL) {
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());
    if (ctx == NULL) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "SSL_CTX_new");
        return NULL;
    }
    int r = -1;
    if ((r = kms_tls_ctx_apply_profile(ctx, o->profile)) != 0) {
        goto out;
    }
    if (m->pkey != NULL) {
        r = use_chain_pem(ctx, m);
    } else {
        r = kms_tls_ctx_use_certificate(ctx, o->cert_chain_file, o->key_file);
    }
    if (r != 0) {
        goto out;
    }
    if (o->client_auth != KMS_TLS_CLIENT_AUTH_NONE && (r = set_client_auth(ctx, o)) != 0) {
        goto out;
    }
    if (o->alpn != NULL && (r = set_alpn(ctx, o->alpn)) != 0) {
        goto out;
    }
    if ((r = set_sessions(ctx, o, tickets)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- The server holder -----------------------------------------------------------------------*/
struct kms_tls_server {
    pthread_mutex_t lock;        /* guards ctx */
    pthread_mutex_t reload_lock; /* one reload at a time; guards opts and the paths */
    SSL_CTX *ctx;
    kms_tls_options opts; /* its strings point at the copies below */
    char *cert_chain_file, *key_file, *ca_file, *crl_file, *alpn, *ticket_key_id, *ca_arn;
    kms_tls_ticket_keys *tickets; /* NULL: OpenSSL's ticket keys */
    server_material material;     /* from memory: its own copy of the PEM, a reference to the key */
    kms_tls_managed *managed;     /* a managed certificate's server, else NULL */
};

static void material_clean_up(server_material *m)
{
    free((char *)m->chain_pem);
    EVP_PKEY_free(m->pkey);
    memset(m, 0, sizeof *m);
}

/* A copy of the chain and a reference to the key; *out cleared first. */
static int material_copy(const char *chain_pem, size_t len, EVP_PKEY *pkey, server_material *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(chain_pem != NULL && len > 0 && pkey != NULL, KMS_ERR_VALIDATION,
               "a TLS server from memory needs its certificate chain and key");
    char *copy = malloc(len);
    KMS_ENSURE(copy != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (EVP_PKEY_up_ref(pkey) != 1) {
        free(copy);
        return kms_tls_raise_ssl(KMS_ERR_INTERNAL, "EVP_PKEY_up_ref");
    }
    memcpy(copy, chain_pem, len);
    out->chain_pem = copy;
    out->chain_pem_len = len;
    out->pkey = pkey;
    return 0;
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    if (d == NULL) {
        *failed = true;
    }
    return d;
}

static kms_tls_server *server_new(const kms_tls_options *opts, server_material *m)
{
    if (opts == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "a TLS server needs its options");
        material_clean_up(m);
        return NULL;
    }
    kms_tls_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        material_clean_up(m);
        return NULL;
    }
    s->material = *m; /* the server owns it now */
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->reload_lock, NULL);
    bool failed = false;
    s->cert_chain_file = dup_or_null(opts->cert_chain_file, &failed);
    s->key_file = dup_or_null(opts->key_file, &failed);
    s->ca_file = dup_or_null(opts->ca_file, &failed);
    s->crl_file = dup_or_null(opts->crl_file, &failed);
    s->alpn = dup_or_null(opts->alpn, &failed);
    s->ticket_key_id = dup_or_null(opts->ticket_key_id, &failed);
    s->ca_arn = dup_or_null(opts->ca_arn, &failed);
    s->opts = *opts;
    s->opts.ca_arn = s->ca_arn;
    s->opts.certificate_arn = NULL; /* tls_managed.c keeps its own copies */
    s->opts.in_use_by = NULL;
    s->opts.ticket_key_id = s->ticket_key_id;
    s->opts.cert_chain_file = s->cert_chain_file;
    s->opts.key_file = s->key_file;
    s->opts.ca_file = s->ca_file;
    s->opts.crl_file = s->crl_file;
    s->opts.alpn = s->alpn;
    if (failed) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    } else if (opts->client == NULL || opts->ticket_key_id == NULL ||
               (s->tickets = kms_tls_ticket_keys_new(opts->client, opts->ticket_key_id,
                                                     opts->ticket_key_rotation_seconds)) != NULL) {
        s->ctx = server_ctx_new(&s->opts, &s->material, s->tickets);
    }
    if (s->ctx == NULL) {
        kms_tls_server_free(s);
        return NULL;
    }
    return s;
}

void kms_tls_server_ticket_clock_set(kms_tls_server *server, int64_t (*now)(void))
{
    if (server->tickets != NULL) {
        kms_tls_ticket_keys_set_clock(server->tickets, now);
    }
}

kms_tls_server *kms_tls_server_new(const kms_tls_options *opts)
{
    server_material none = {0};
    kms_error_clear();
    if (opts != NULL && opts->certificate_arn != NULL) {
        return kms_tls_managed_server_new(opts);
    }
    kms_tls_managed *watch = NULL;
    /* The watch looks at the CRL file before the context loads it (tls_managed.c). */
    if (opts != NULL && opts->ca_arn != NULL &&
        (watch = kms_tls_managed_crl_watch_new(opts)) == NULL) {
        return NULL;
    }
    kms_tls_server *server = server_new(opts, &none);
    if (server == NULL) {
        kms_tls_managed_free(watch);
        return NULL;
    }
    server->managed = watch;
    return server;
}

void kms_tls_server_managed_attach(kms_tls_server *server, kms_tls_managed *mg)
{
    server->managed = mg;
}

kms_tls_managed *kms_tls_server_managed(const kms_tls_server *server)
{
    return server->managed;
}

kms_tls_server *kms_tls_server_new_with_key(const kms_tls_options *opts, const char *chain_pem,
                                            size_t chain_pem_len, EVP_PKEY *pkey)
{
    server_material m;
    kms_error_clear();
    if (material_copy(chain_pem, chain_pem_len, pkey, &m) != 0) {
        return NULL;
    }
    return server_new(opts, &m);
}

void kms_tls_server_free(kms_tls_server *server)
{
    if (server == NULL) {
        return;
    }
    kms_tls_managed_free(server->managed);
    SSL_CTX_free(server->ctx); /* a reference: connections still open keep theirs */
    free(server->cert_chain_file);
    free(server->key_file);
    free(server->ca_file);
    free(server->crl_file);
    free(server->alpn);
    free(server->ticket_key_id);
    free(server->ca_arn);
    kms_tls_ticket_keys_free(server->tickets);
    material_clean_up(&server->material);
    pthread_mutex_destroy(&server->lock);
    pthread_mutex_destroy(&server->reload_lock);
    free(server);
}

/* Session tickets issued before the reload stay good after it: the new context takes the old
 * one's ticket keys (name, HMAC and AES keys: 80 bytes in OpenSSL 3). */
static void carry_ticket_keys(SSL_CTX *from, SSL_CTX *to)
{
    unsigned char keys[80];
    if (SSL_CTX_get_tlsext_ticket_keys(from, keys, sizeof keys) == 1) {
        (void)SSL_CTX_set_tlsext_ticket_keys(to, keys, sizeof keys);
    }
    sodium_memzero(keys, sizeof keys);
    ERR_clear_error();
}

/* Makes a context from the server's options with these files (both NULL: the current ones) or
 * this material (pkey NULL: none, or the current one when the files are NULL too), swaps it in,
 * and keeps the new files or material. new_cert, new_key and *m are the caller's until they are
 * kept; m is cleared when it is. */
static int reload(kms_tls_server *server, char **new_cert, char **new_key, server_material *m)
{
    SSL_CTX *ctx = NULL;
    int r = -1;
    pthread_mutex_lock(&server->reload_lock);
    kms_tls_options o = server->opts;
    const server_material *use = &server->material;
    if (*new_cert != NULL || m->pkey != NULL) {
        o.cert_chain_file = *new_cert;
        o.key_file = *new_key;
        use = m;
    }
    if ((ctx = server_ctx_new(&o, use, server->tickets)) == NULL) {
        goto out; /* the current context stays */
    }
    pthread_mutex_lock(&server->lock);
    SSL_CTX *old = server->ctx;
    /* Tickets resume across a reload, except under mutual TLS: a reload may bring a new CRL,
     * and a resumed session is not checked against it again (a revoked client would be let back
     * in by its ticket). */
    if (!o.disable_session_tickets && o.client_auth == KMS_TLS_CLIENT_AUTH_NONE &&
        server->tickets == NULL) {
        carry_ticket_keys(old, ctx);
    }
    server->ctx = ctx;
    pthread_mutex_unlock(&server->lock);
    SSL_CTX_free(old);
    if (use != &server->material) {
        free(server->cert_chain_file);
        free(server->key_file);
        server->cert_chain_file = *new_cert;
        server->key_file = *new_key;
        server->opts.cert_chain_file = *new_cert;
        server->opts.key_file = *new_key;
        *new_cert = NULL;
        *new_key = NULL;
        material_clean_up(&server->material);
        server->material = *m;
        memset(m, 0, sizeof *m);
    }
    r = 0;
out:
    pthread_mutex_unlock(&server->reload_lock);
    return r;
}

int kms_tls_server_reload(kms_tls_server *server, const char *cert_chain_file, const char *key_file)
{
    kms_error_clear();
    KMS_ENSURE(server != NULL, KMS_ERR_VALIDATION, "no TLS server to reload");
    KMS_ENSURE((cert_chain_file == NULL) == (key_file == NULL), KMS_ERR_VALIDATION,
               "a reload replaces the certificate chain and the key together");
    char *new_cert = NULL;
    char *new_key = NULL;
    server_material none = {0};
    int r = -1;
    if (cert_chain_file != NULL) {
        new_cert = strdup(cert_chain_file);
        new_key = strdup(key_file);
        if (new_cert == NULL || new_key == NULL) {
            r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    r = reload(server, &new_cert, &new_key, &none);
out:
    free(new_cert);
    free(new_key);
    return r;
}

int kms_tls_server_reload_with_key(kms_tls_server *server, const char *chain_pem,
                                   size_t chain_pem_len, EVP_PKEY *pkey)
{
    char *no_cert = NULL;
    char *no_key = NULL;
    server_material m;
    int r = -1;
    kms_error_clear();
    KMS_ENSURE(server != NULL, KMS_ERR_VALIDATION, "no TLS server to reload");
    KMS_GUARD(material_copy(chain_pem, chain_pem_len, pkey, &m));
    r = reload(server, &no_cert, &no_key, &m);
    material_clean_up(&m);
    return r;
}

SSL_CTX *kms_tls_server_ctx_get(kms_tls_server *server)
{
    kms_error_clear();
    if (server == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "no TLS server");
        return NULL;
    }
    kms_tls_managed_refresh(server, server->managed);
    pthread_mutex_lock(&server->lock);
    SSL_CTX *ctx = server->ctx;
    int ok = SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&server->lock);
    if (ok != 1) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "SSL_CTX_up_ref");
        return NULL;
    }
    return ctx;
}

SSL *kms_tls_server_ssl_new(kms_tls_server *server)
{
    kms_error_clear();
    if (server == NULL) {
        kms_raise(KMS_ERR_VALIDATION, "no TLS server");
        return NULL;
    }
    kms_tls_managed_refresh(server, server->managed);
    /* SSL_new takes its own reference to the context: the connection keeps it across reloads. */
    pthread_mutex_lock(&server->lock);
    SSL *ssl = SSL_new(server->ctx);
    pthread_mutex_unlock(&server->lock);
    if (ssl == NULL) {
        kms_tls_raise_ssl(KMS_ERR_INTERNAL, "SSL_new");
    }
    return ssl;
}
