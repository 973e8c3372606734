/* libkms TLS helper: OpenSSL contexts that are secure by default, for applications (and soon our
 * own server). The library builds the SSL_CTX; the application drives OpenSSL itself (accept,
 * SSL_read, SSL_write) and may take the SSL_CTX * to do so.
 *
 * Defaults are Mozilla's "intermediate" profile, version 6.0
 * (https://ssl-config.mozilla.org/guidelines/6.0.json):
 *   - TLS 1.2 and 1.3 only;
 *   - TLS 1.2 suites: ECDHE-ECDSA/RSA with AES128-GCM-SHA256, AES256-GCM-SHA384, CHACHA20-POLY1305
 *     (no RSA key exchange, no CBC, no DHE); TLS 1.3: the three standard AEAD suites;
 *   - groups X25519MLKEM768 (only when the OpenSSL in use has it: 3.5 and later), X25519,
 *     prime256v1, secp384r1;
 *   - no compression, no renegotiation, OpenSSL security level 2 (RSA keys of 2048 bits at least);
 *   - the server's cipher order is preferred (Mozilla 6.0 leaves the order to the client; every
 *     suite offered here is an AEAD with forward secrecy, so the choice is only one of speed).
 * KMS_TLS_MODERN is TLS 1.3 only.
 *
 * Session tickets are on unless disabled. Their keys come one of two ways:
 *   - from a CMK (client and ticket_key_id: an HMAC_256 key, GENERATE_VERIFY_MAC):
 *     rotated every ticket_key_rotation_seconds, 12 hours by default. The keys of each period
 *     are derived from GenerateMac(CMK, "kms-tls-ticket-keys/v1/" || period number), so every
 *     server process of the home naming the same CMK issues and accepts the same tickets, and
 *     a restart keeps resumption. New tickets use the current period's keys; a ticket of the
 *     previous period still resumes (and is replaced by a new one); older ones get a full
 *     handshake. So a ticket lives one to two periods (clients are told one period), and a
 *     stolen ticket key opens at most two periods of resumed sessions. Each process calls
 *     GenerateMac once per period (audited, needing kms:GenerateMac on the CMK), never per
 *     handshake; if the KMS cannot answer, handshakes go on without resumption. The derived
 *     keys live in locked memory and are wiped when the last context using them is freed.
 *     Periods are counted from the epoch, so every process switches keys at the same moment.
 *     Why 12 hours: the configurations Mozilla's generator writes keep sessions a day (nginx
 *     ssl_session_timeout 1d), and RFC 8446 4.6.1 caps tickets at 7 days; with two live periods
 *     a ticket resumes for 12 to 24 hours, at the cost of one GenerateMac per process every 12
 *     hours.
 *   - otherwise OpenSSL's own: random, made when the context is made, kept only in memory and
 *     never rotated (a restart makes new ones, which ends resumption of older sessions).
 * A server's hot reload (kms_tls_server_reload) keeps the ticket keys, so a reload does not cost
 * every client a full handshake; not under mutual TLS, where the reload may bring a new CRL that
 * a resumed session would not be checked against (with a CMK, each context of a mutual TLS
 * server then accepts only its own tickets). A CRL file is checked for every certificate of the
 * client's chain (each CA's CRL must be in it).
 *
 * Conventions are those of kms.h: 0 / -1 with a thread-local error (kms_last_error), constructors
 * return NULL; bad options and unreadable files are ValidationException. */
#ifndef KMS_TLS_H
#define KMS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "kms/kms.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kms_tls_profile {
    KMS_TLS_INTERMEDIATE = 0, /* the default: TLS 1.2 and 1.3 */
    KMS_TLS_MODERN,           /* TLS 1.3 only */
} kms_tls_profile;

/* Mutual TLS on a server: whether it asks the client for a certificate. */
typedef enum kms_tls_client_auth {
    KMS_TLS_CLIENT_AUTH_NONE = 0, /* the default: no client certificate asked for */
    KMS_TLS_CLIENT_AUTH_REQUEST,  /* asked for; a client without one is let in, one with a
                                     certificate that does not verify is refused */
    KMS_TLS_CLIENT_AUTH_REQUIRE,  /* a client without a verified certificate is refused */
} kms_tls_client_auth;

/* Zero-initialise, then set what you need ({0} is a client of the system trust store). Paths
 * name PEM files; the structure and its strings are only read during the call. */
typedef struct kms_tls_options {
    kms_tls_profile profile;
    /* Server: its certificate followed by the chain to send (leaf first), and its private key;
     * both required. Client: an optional certificate and key for mutual TLS. */
    const char *cert_chain_file;
    const char *key_file;
    /* Client: the CAs that may sign the server's certificate; NULL: the system trust store.
     * Server with client_auth: the CAs that may sign clients' certificates (required). */
    const char *ca_file;
    /* Server with client_auth: an optional CRL file (PEM, one or more CRLs). When given, every
     * client certificate is checked against it (X509_V_FLAG_CRL_CHECK), and a client whose CA
     * has no CRL in the file is refused, and so is every client once the CRL is past its
     * nextUpdate: reload (kms_tls_server_reload(server, NULL, NULL)) when the CA reissues it. */
    const char *crl_file;
    /* ALPN protocols, comma-separated in order of preference ("h2,http/1.1"); NULL: no ALPN.
     * A client offers them; a server picks the first of its list that the client offers, and
     * refuses a client that offers ALPN but none of them (RFC 7301 no_application_protocol). */
    const char *alpn;
    bool disable_session_tickets;    /* server: no tickets, no session cache: no resumption;
                                        client: asks for no ticket */
    kms_tls_client_auth client_auth; /* server only: a client given client_auth or crl_file is
                                        refused (ValidationException) */
    /* The KMS home that ticket_key_id, certificate_arn and ca_arn name things of (a client
     * context takes it only with ca_arn). Borrowed: keep it open as long as the server (or
     * client context) and every connection made from it. */
    kms_client *client;
    /* Server only: session ticket keys from an HMAC_256 CMK (see above); the key id (id, ARN or
     * alias) is copied. NULL: OpenSSL's random ticket keys. */
    const char *ticket_key_id;
    unsigned ticket_key_rotation_seconds; /* 0: 12 hours; at least 60 */
    /* Server only, instead of cert_chain_file and key_file: a managed certificate of client's
     * certificate manager (arn:aws:acm:REGION:ACCOUNT:certificate/ID, from RequestCertificate
     * or ImportCertificate), authorised as acm:GetCertificate and acm:UseCertificate for the
     * client's caller. Its key stays in the HSM when the certificate keeps it there (every
     * handshake signature is made there), or is unsealed into this process's memory. Hot
     * reload on renewal: when the manager renews or reimports the certificate (in any process,
     * the scheduler's included), the next connection made at least a second after it gets the
     * new certificate and key; connections already open keep theirs. While the server lives,
     * the certificate's InUseBy lists in_use_by (NULL:
     * "kms-tls-server:HOST:PID:N", the process's N-th server), and DeleteCertificate refuses
     * (it drops the name of such a server whose process is gone). A renewal that cannot be
     * loaded is tried again after 2, 4, ... seconds, up to five minutes. */
    const char *certificate_arn;
    const char *in_use_by;
    /* Instead of ca_file: a CA of client's certificate manager
     * (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID), fetched as the client's caller
     * (acm-pca:GetCertificateAuthorityCertificate). Its certificate is the only one trusted, and
     * it anchors the chain by itself (a subordinate CA too: what its parent's other CAs issue
     * does not verify). Client: the CA that must have issued the server's certificate. Server
     * with client_auth: the CA that must have issued clients' certificates; when the CA
     * publishes CRLs, every client certificate is checked against its CRL (HOME/crl/ID.crl), and
     * a CRL the CA reissues (a revocation, the scheduler) is taken up within a second, by a
     * reload, with no restart. The server does not start when the CA publishes CRLs and its CRL
     * cannot be read. */
    const char *ca_arn;
} kms_tls_options;

/* ---- Clients ---------------------------------------------------------------------------------
 * The server's certificate is always verified, and so is its name: kms_tls_client_ssl_new sets
 * the name, and a connection made from this context whose name was never set fails its
 * handshake (X509_V_ERR_HOSTNAME_MISMATCH). Free with SSL_CTX_free. */
KMS_API KMS_MUST_CHECK SSL_CTX *kms_tls_client_ctx_new(const kms_tls_options *opts);

/* A connection to `host` (a DNS name, or an IPv4/IPv6 address matched against the certificate's
 * IP SANs): sets SNI (for a name) and the name the certificate must carry. Attach a socket
 * (SSL_set_fd) and SSL_connect. Free with SSL_free. */
KMS_API KMS_MUST_CHECK SSL *kms_tls_client_ssl_new(SSL_CTX *ctx, const char *host);

/* ---- Servers, with hot reload ----------------------------------------------------------------
 * A server holds its current SSL_CTX. kms_tls_server_reload makes a new one from new (or
 * rewritten) files and swaps it in atomically: handshakes that start afterwards use the new
 * certificate at once, while connections already made keep the context (and certificate) they
 * started with, because each SSL holds a reference to its context. Thread-safe: any thread may
 * reload while others make connections. */
typedef struct kms_tls_server kms_tls_server;

/* Validates opts and loads the files (the key must match the certificate). The paths are copied,
 * so a reload can read them again. */
KMS_API KMS_MUST_CHECK kms_tls_server *kms_tls_server_new(const kms_tls_options *opts);
/* Frees the server; connections still open keep their context until SSL_free. */
KMS_API void kms_tls_server_free(kms_tls_server *server);

/* Replaces the certificate chain and key (NULL, NULL: read the same files again, with the CA and
 * CRL files). On failure the current context stays in use, unchanged. */
KMS_API KMS_MUST_CHECK int kms_tls_server_reload(kms_tls_server *server,
                                                 const char *cert_chain_file, const char *key_file);

/* A new server-side connection on the current context: attach a socket and SSL_accept. */
KMS_API KMS_MUST_CHECK SSL *kms_tls_server_ssl_new(kms_tls_server *server);
/* The current context, with a reference the caller releases with SSL_CTX_free (for applications
 * that make their SSLs themselves; take it again after a reload). */
KMS_API KMS_MUST_CHECK SSL_CTX *kms_tls_server_ctx_get(kms_tls_server *server);

/* ---- The verified peer ----------------------------------------------------------------------*/
typedef struct kms_tls_peer {
    char *subject; /* RFC 2253 ("CN=app.internal,O=Example") */
    char **sans;   /* subjectAltName entries: "DNS:name", "IP:10.0.0.1", "URI:...", "email:..." */
    size_t n_sans;
} kms_tls_peer;

/* The peer's certificate, once the handshake is done and only if it verified (chain, and on a
 * client the host name); NotFoundException when the peer sent none (a server with
 * KMS_TLS_CLIENT_AUTH_REQUEST), AccessDeniedException when it did not verify. *peer is cleared
 * on entry; release it with kms_tls_peer_clean_up. */
KMS_API KMS_MUST_CHECK int kms_tls_peer_get(const SSL *ssl, kms_tls_peer *peer);
KMS_API void kms_tls_peer_clean_up(kms_tls_peer *peer);

#ifdef __cplusplus
}
#endif

#endif
