/* Session tickets whose keys come from a CMK (kms_tls_options.client/_id): a ticket
 * one server context issued resumes on another made with the same CMK (another process of the
 * home, or a restart), not on one made with another CMK, and not two periods later; one
 * GenerateMac per period, not per handshake; a KMS that cannot derive keys costs resumption,
 * not the handshake. Against a fresh KMS home; handshakes in memory over a BIO pair; the clock
 * of the periods is the server's test hook. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "kms/kms.h"
#include "kms/tls.h"
#include "testutil.h"
#include "tls/tls_server.h"
#include "tls/tls_ticket.h"
#include "util/util.h"

#define PERIOD 3600

static char *tmp;
static kms_client *client;
static char *cmk1, *cmk2, *aes_key;
static char *crt, *key, *ca;
static int64_t fake_now = 1700000000;

static int64_t test_clock(void)
{
    return fake_now;
}

static char *create_key(const char *spec, const char *usage)
{
    char req[128];
    char *resp = NULL;
    snprintf(req, sizeof req, "{\"KeySpec\":\"%s\",\"KeyUsage\":\"%s\"}", spec, usage);
    if (kms_call(client, "CreateKey", req, &resp) != 0) {
        fail_msg("CreateKey: %s", kms_last_error_message());
    }
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    char *id =
        strdup(json_string_value(json_object_get(json_object_get(j, "KeyMetadata"), "KeyId")));
    json_decref(j);
    kms_string_free(resp);
    return id;
}

/* A self-signed P-256 certificate for server.test, its key, and the same certificate as CA. */
static void make_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    assert_non_null(k);
    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"server.test", -1,
                               -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, k);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:server.test");
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(cert, k, EVP_sha256()) > 0);
    crt = kms_path_join(tmp, "server.crt");
    key = kms_path_join(tmp, "server.key");
    ca = crt;
    FILE *f = fopen(crt, "w");
    assert_int_equal(PEM_write_X509(f, cert), 1);
    fclose(f);
    f = fopen(key, "w");
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    X509_free(cert);
    EVP_PKEY_free(k);
}

static int group_setup(void **state)
{
    tmp = kms_test_tmpdir();
    char *home = kms_path_join(tmp, "home");
    if (kms_home_init(home, NULL) != 0) {
        fail_msg("init: %s", kms_last_error_message());
    }
    kms_client_options o = {.home = home};
    client = kms_client_open(&o);
    free(home);
    if (client == NULL) {
        fail_msg("open: %s", kms_last_error_message());
    }
    cmk1 = create_key("HMAC_256", "GENERATE_VERIFY_MAC");
    cmk2 = create_key("HMAC_256", "GENERATE_VERIFY_MAC");
    aes_key = create_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    make_cert();
    return 0;
}

static int group_teardown(void **state)
{
    kms_client_free(client);
    kms_test_rmrf(tmp);
    free(tmp);
    free(cmk1);
    free(cmk2);
    free(aes_key);
    free(crt);
    free(key);
    return 0;
}

static kms_tls_server *server(const char *cmk)
{
    kms_tls_options o = {.cert_chain_file = crt,
                         .key_file = key,
                         .client = cmk != NULL ? client : NULL,
                         .ticket_key_id = cmk,
                         .ticket_key_rotation_seconds = PERIOD};
    kms_tls_server *s = kms_tls_server_new(&o);
    if (s == NULL) {
        fail_msg("server: %s", kms_last_error_message());
    }
    kms_tls_server_ticket_clock_set(s, test_clock);
    return s;
}

static SSL_CTX *client_ctx(int version)
{
    kms_tls_options o = {.ca_file = ca};
    SSL_CTX *ctx = kms_tls_client_ctx_new(&o);
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, version), 1);
    return ctx;
}

/* A handshake with srv, resuming `resume` if given: 1 resumed, 0 full; *ticket (if not NULL)
 * receives the session with the newest ticket the server sent. */
static int connect_once(kms_tls_server *srv, SSL_CTX *cctx, SSL_SESSION *resume,
                        SSL_SESSION **ticket)
{
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = kms_tls_server_ssl_new(srv);
    assert_non_null(c);
    assert_non_null(s);
    if (resume != NULL) {
        assert_int_equal(SSL_set_session(c, resume), 1);
    }
    assert_int_equal(kms_test_tls_handshake(c, s, NULL), 0);
    /* One message each way: a TLS 1.3 client reads its tickets with the server's data. */
    char buf[8];
    assert_int_equal(SSL_write(c, "ping", 4), 4);
    assert_int_equal(SSL_read(s, buf, sizeof buf), 4);
    assert_int_equal(SSL_write(s, "pong", 4), 4);
    assert_int_equal(SSL_read(c, buf, sizeof buf), 4);
    int reused = SSL_session_reused(c);
    if (ticket != NULL) {
        *ticket = SSL_get1_session(c);
        assert_true(SSL_SESSION_is_resumable(*ticket));
    }
    /* A connection freed without close_notify marks its session unresumable (OpenSSL's
     * ssl_clear_bad_session). */
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    return reused;
}

/* ---- Tests -----------------------------------------------------------------------------------*/
static void shared_by_contexts_of_one_cmk(int version)
{
    kms_tls_server *a = server(cmk1);
    kms_tls_server *b = server(cmk1);
    kms_tls_server *other = server(cmk2);
    kms_tls_server *random_keys = server(NULL);
    SSL_CTX *cctx = client_ctx(version);
    SSL_SESSION *t = NULL;
    uint64_t before = kms_tls_ticket_derivations();
    assert_int_equal(connect_once(a, cctx, NULL, &t), 0);
    assert_int_equal(kms_tls_ticket_derivations() - before, 1);
    /* Another context (another process, a restart) of the same CMK resumes it. */
    assert_int_equal(connect_once(b, cctx, t, NULL), 1);
    assert_int_equal(connect_once(a, cctx, t, NULL), 1);
    /* Another CMK's, or OpenSSL's random keys: a full handshake. */
    assert_int_equal(connect_once(other, cctx, t, NULL), 0);
    assert_int_equal(connect_once(random_keys, cctx, t, NULL), 0);
    /* One derivation per server and period, however many handshakes. */
    before = kms_tls_ticket_derivations();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(connect_once(b, cctx, t, NULL), 1);
        assert_int_equal(connect_once(other, cctx, NULL, NULL), 0);
    }
    assert_int_equal(kms_tls_ticket_derivations(), before);
    SSL_SESSION_free(t);
    SSL_CTX_free(cctx);
    kms_tls_server_free(a);
    kms_tls_server_free(b);
    kms_tls_server_free(other);
    kms_tls_server_free(random_keys);
}

static void tls13_tickets_shared_by_cmk(void **state)
{
    shared_by_contexts_of_one_cmk(TLS1_3_VERSION);
}

static void tls12_tickets_shared_by_cmk(void **state)
{
    shared_by_contexts_of_one_cmk(TLS1_2_VERSION);
}

/* A ticket of the previous period still resumes (and is renewed); two periods on, it does not. */
static void tickets_rotate(void **state)
{
    fake_now = 1700000000 - 1700000000 % PERIOD + 10;
    kms_tls_server *srv = server(cmk1);
    SSL_CTX *cctx = client_ctx(TLS1_3_VERSION);
    SSL_SESSION *t = NULL;
    SSL_SESSION *renewed = NULL;
    assert_int_equal(connect_once(srv, cctx, NULL, &t), 0);
    fake_now += PERIOD - 20; /* the end of the same period */
    assert_int_equal(connect_once(srv, cctx, t, NULL), 1);
    fake_now += PERIOD; /* the next period */
    assert_int_equal(connect_once(srv, cctx, t, &renewed), 1);
    fake_now += PERIOD; /* two periods after it was issued */
    assert_int_equal(connect_once(srv, cctx, t, NULL), 0);
    /* The renewed ticket (issued in the previous period) still resumes. */
    assert_int_equal(connect_once(srv, cctx, renewed, NULL), 1);
    /* A restart in the same period resumes too. */
    kms_tls_server *restarted = server(cmk1);
    assert_int_equal(connect_once(restarted, cctx, renewed, NULL), 1);
    SSL_SESSION_free(t);
    SSL_SESSION_free(renewed);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
    kms_tls_server_free(restarted);
    fake_now = 1700000000;
}

/* A reload keeps resumption (the keys come from the CMK again); under mutual TLS each context
 * accepts only its own tickets, as a reload may bring a newer CRL. */
static void reload_and_mutual_tls(void **state)
{
    kms_tls_server *srv = server(cmk1);
    SSL_CTX *cctx = client_ctx(TLS1_3_VERSION);
    SSL_SESSION *t = NULL;
    assert_int_equal(connect_once(srv, cctx, NULL, &t), 0);
    assert_int_equal(kms_tls_server_reload(srv, NULL, NULL), 0);
    assert_int_equal(connect_once(srv, cctx, t, NULL), 1);
    SSL_SESSION_free(t);
    kms_tls_options o = {.cert_chain_file = crt,
                         .key_file = key,
                         .ca_file = ca,
                         .client_auth = KMS_TLS_CLIENT_AUTH_REQUIRE,
                         .client = client,
                         .ticket_key_id = cmk1};
    kms_tls_server *mtls = kms_tls_server_new(&o);
    assert_non_null(mtls);
    kms_tls_options co = {.ca_file = ca, .cert_chain_file = crt, .key_file = key};
    SSL_CTX *mc = kms_tls_client_ctx_new(&co);
    assert_non_null(mc);
    assert_int_equal(connect_once(mtls, mc, NULL, &t), 0);
    assert_int_equal(connect_once(mtls, mc, t, NULL), 1);
    assert_int_equal(kms_tls_server_reload(mtls, NULL, NULL), 0);
    assert_int_equal(connect_once(mtls, mc, t, NULL), 0);
    SSL_SESSION_free(t);
    SSL_CTX_free(mc);
    SSL_CTX_free(cctx);
    kms_tls_server_free(mtls);
    kms_tls_server_free(srv);
}

/* A key that cannot GenerateMac: handshakes succeed, without tickets that resume. */
static void kms_failure_costs_resumption_only(void **state)
{
    kms_tls_server *srv = server(aes_key);
    SSL_CTX *cctx = client_ctx(TLS1_2_VERSION);
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = kms_tls_server_ssl_new(srv);
    assert_int_equal(kms_test_tls_handshake(c, s, NULL), 0);
    SSL_SESSION *sess = SSL_get1_session(c);
    SSL_shutdown(c);
    SSL_free(c);
    SSL_free(s);
    assert_int_equal(connect_once(srv, cctx, sess, NULL), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
}

/* A CMK that cannot derive keys (here: disabled) is asked once per period and minute, not on
 * every ticket; once it works again, tickets resume after the retry time. */
static void kms_failure_retried_after_a_minute(void **state)
{
    char *cmk = create_key("HMAC_256", "GENERATE_VERIFY_MAC");
    char req[160];
    char *resp = NULL;
    snprintf(req, sizeof req, "{\"KeyId\":\"%s\"}", cmk);
    assert_int_equal(kms_call(client, "DisableKey", req, &resp), 0);
    kms_string_free(resp);
    fake_now = 1700000000 - 1700000000 % PERIOD + 10;
    kms_tls_server *srv = server(cmk);
    SSL_CTX *cctx = client_ctx(TLS1_3_VERSION);
    SSL_SESSION *t = NULL;
    uint64_t before = kms_tls_ticket_derivations();
    for (int i = 0; i < 10; i++) {
        assert_int_equal(connect_once(srv, cctx, NULL, NULL), 0);
    }
    /* The current period's keys, asked once (the previous period's are not needed). */
    assert_int_equal(kms_tls_ticket_derivations() - before, 1);
    resp = NULL;
    assert_int_equal(kms_call(client, "EnableKey", req, &resp), 0);
    kms_string_free(resp);
    fake_now += 30; /* within the retry time: still no keys, no call */
    before = kms_tls_ticket_derivations();
    assert_int_equal(connect_once(srv, cctx, NULL, NULL), 0);
    assert_int_equal(kms_tls_ticket_derivations(), before);
    fake_now += 31; /* after it: derived again, and tickets resume */
    assert_int_equal(connect_once(srv, cctx, NULL, &t), 0);
    assert_int_equal(kms_tls_ticket_derivations() - before, 1);
    assert_int_equal(connect_once(srv, cctx, t, NULL), 1);
    SSL_SESSION_free(t);
    SSL_CTX_free(cctx);
    kms_tls_server_free(srv);
    free(cmk);
    fake_now = 1700000000;
}

/* A clock before the epoch: no period, so no tickets (the keys of a period that was never
 * derived are not used). */
static void no_tickets_before_epoch(void **state)
{
    static const int64_t clocks[] = {-50000, -1, -PERIOD - 1};
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        fake_now = clocks[i];
        kms_tls_server *srv = server(cmk1);
        SSL_CTX *cctx = client_ctx(TLS1_2_VERSION);
        SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
        SSL *s = kms_tls_server_ssl_new(srv);
        assert_int_equal(kms_test_tls_handshake(c, s, NULL), 0);
        SSL_SESSION *sess = SSL_get1_session(c);
        assert_non_null(sess);
        assert_false(SSL_SESSION_has_ticket(sess));
        SSL_SESSION_free(sess);
        SSL_shutdown(c);
        SSL_free(c);
        SSL_free(s);
        SSL_CTX_free(cctx);
        kms_tls_server_free(srv);
    }
    fake_now = 1700000000;
}

/* A ticket a plain OpenSSL server issued under 80 ticket-key bytes all `fill` (constants an
 * empty slot might hold), offered to a CMK server in period 0. 1 if it resumed. */
static int forged_resumes(unsigned char fill)
{
    SSL_CTX *b = SSL_CTX_new(TLS_server_method());
    assert_non_null(b);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(b, crt), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(b, key, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_set_session_id_context(b, (const unsigned char *)"kms-tls", 7), 1);
    unsigned char keys[80];
    memset(keys, fill, sizeof keys);
    assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(b, keys, sizeof keys), 1);
    SSL_CTX *cctx = client_ctx(TLS1_2_VERSION);
    SSL *c = kms_tls_client_ssl_new(cctx, "server.test");
    SSL *s = SSL_new(b);
    assert_int_equal(kms_test_tls_handshake(c, s, NULL), 0);
    SSL_SESSION *forged = SSL_get1_session(c);
    assert_true(SSL_SESSION_has_ticket(forged));
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    /* The harness: it resumes on the server that made it. */
    c = kms_tls_client_ssl_new(cctx, "server.test");
    s = SSL_new(b);
    assert_int_equal(SSL_set_session(c, forged), 1);
    assert_int_equal(kms_test_tls_handshake(c, s, NULL), 0);
    assert_true(SSL_session_reused(s));
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    fake_now = 5; /* period 0: its previous period, -1, has no keys */
    kms_tls_server *a = server(cmk1);
    int reused = connect_once(a, cctx, forged, NULL);
    kms_tls_server_free(a);
    fake_now = 1700000000;
    SSL_SESSION_free(forged);
    SSL_CTX_free(cctx);
    SSL_CTX_free(b);
    return reused;
}

static void forged_ticket_refused_in_period_zero(void **state)
{
    assert_int_equal(forged_resumes(0x00), 0);
    assert_int_equal(forged_resumes(0xdb), 0);
}

static void options_checked(void **state)
{
    kms_tls_options o = {.cert_chain_file = crt, .key_file = key, .ticket_key_id = cmk1};
    assert_null(kms_tls_server_new(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    o.client = client;
    o.disable_session_tickets = true;
    assert_null(kms_tls_server_new(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    o.disable_session_tickets = false;
    o.ticket_key_rotation_seconds = 30;
    assert_null(kms_tls_server_new(&o));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
    kms_tls_options c = {.client = client, .ticket_key_id = cmk1};
    assert_null(kms_tls_client_ctx_new(&c));
    assert_int_equal(kms_last_error(), KMS_ERR_VALIDATION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls13_tickets_shared_by_cmk),
        cmocka_unit_test(tls12_tickets_shared_by_cmk),
        cmocka_unit_test(tickets_rotate),
        cmocka_unit_test(reload_and_mutual_tls),
        cmocka_unit_test(kms_failure_costs_resumption_only),
        cmocka_unit_test(kms_failure_retried_after_a_minute),
        cmocka_unit_test(no_tickets_before_epoch),
        cmocka_unit_test(forged_ticket_refused_in_period_zero),
        cmocka_unit_test(options_checked),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
