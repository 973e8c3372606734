/* Creating certificate authorities: the key in the HSM, then (ROOT) the CA's own self-signed
 * certificate, signed there, then its row. */
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki_internal.h"
#include "util/util.h"

/* The configuration's members, checked. */
static int read_configuration(json_t *conf, const kms_pki_key_alg **key,
                              const kms_pki_sig_alg **alg, json_t **subject)
{
    const char *member;
    json_t *v;
    KMS_ENSURE(json_is_object(conf), KMS_ERR_INVALID_ARGS,
               "CertificateAuthorityConfiguration must be an object {KeyAlgorithm, "
               "SigningAlgorithm, Subject}");
    json_object_foreach(conf, member, v)
    {
        KMS_ENSURE(strcmp(member, "KeyAlgorithm") == 0 || strcmp(member, "SigningAlgorithm") == 0 ||
                       strcmp(member, "Subject") == 0 || strcmp(member, "AllowedNamePatterns") == 0,
                   KMS_ERR_INVALID_ARGS,
                   "CertificateAuthorityConfiguration does not take the member '%s' (CsrExtensions "
                   "is not supported yet)",
                   member);
    }
    KMS_GUARD(kms_pki_key_alg_find(json_string_value(json_object_get(conf, "KeyAlgorithm")), key));
    KMS_GUARD(
        kms_pki_sig_alg_find(json_string_value(json_object_get(conf, "SigningAlgorithm")), alg));
    KMS_ENSURE((*alg)->ec == (*key)->ec, KMS_ERR_INVALID_ARGS,
               "SigningAlgorithm %s does not fit KeyAlgorithm %s", (*alg)->name, (*key)->name);
    *subject = json_object_get(conf, "Subject");
    /* Beyond AWS (pki_names.c): the names the CA may issue for. */
    return kms_pki_name_patterns_check(json_object_get(conf, "AllowedNamePatterns"));
}

/* RFC 5280 4.2.1.9, 4.2.1.3: a CA certificate says CA:TRUE and may sign certificates and
 * CRLs (both critical). */
static int root_extensions(X509 *x)
{
    KMS_GUARD(kms_pki_ext_add(x, NID_basic_constraints, "critical,CA:TRUE"));
    KMS_GUARD(kms_pki_ext_add(x, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign"));
    return kms_pki_key_ids(x, NULL);
}

/* The ROOT CA's self-signed certificate (DER in ca->certificate). */
static int root_certificate(const kms_keystore *ks, kms_pki_ca *ca, const kms_pki_key_alg *key,
                            const kms_pki_sig_alg *alg, json_t *subject, const uint8_t *spki,
                            size_t spki_len)
{
    int r = -1;
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    const uint8_t *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
    unsigned char *der = NULL;
    int der_len = 0;
    if (x == NULL || pub == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_set_pubkey(x, pub) != 1) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the CA certificate");
        goto out;
    }
    if (kms_pki_subject_name(subject, &name) != 0) {
        goto out;
    }
    ca->not_before = ca->created_at - KMS_PKI_BACKDATE_SECONDS;
    ca->not_after = ca->created_at + (int64_t)KMS_PKI_ROOT_VALIDITY_DAYS * 86400;
    if (X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){ca->not_before}) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &(time_t){ca->not_after}) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "cannot build the CA certificate");
        goto out;
    }
    if (kms_pki_serial_new(ks, x, ca->serial) != 0 || root_extensions(x) != 0 ||
        kms_pki_sign(ks, ca->ca_id, key, alg, NULL, x) != 0) {
        goto out;
    }
    der_len = i2d_X509(x, &der);
    if (der_len <= 0) {
        kms_raise(KMS_ERR_INTERNAL, "cannot encode the CA certificate");
        goto out;
    }
    ca->certificate = malloc((size_t)der_len);
    if (ca->certificate == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(ca->certificate, der, (size_t)der_len);
    ca->certificate_len = (size_t)der_len;
    r = 0;
out:
    OPENSSL_free(der);
    X509_NAME_free(name);
    EVP_PKEY_free(pub);
    X509_free(x);
    return r;
}

static int fill_record(const kms_keystore *ks, const kms_pki_ca_params *p,
                       const kms_pki_key_alg *key, const kms_pki_sig_alg *alg, kms_pki_ca *out)
{
    const char *mode = p->usage_mode ? p->usage_mode : "GENERAL_PURPOSE";
    KMS_ENSURE(strcmp(mode, "GENERAL_PURPOSE") == 0 || strcmp(mode, "SHORT_LIVED_CERTIFICATE") == 0,
               KMS_ERR_INVALID_ARGS,
               "UsageMode must be GENERAL_PURPOSE or SHORT_LIVED_CERTIFICATE, not '%s'", mode);
    bool root = p->type != NULL && strcmp(p->type, "ROOT") == 0;
    KMS_ENSURE(
        root || (p->type != NULL && strcmp(p->type, "SUBORDINATE") == 0), KMS_ERR_INVALID_ARGS,
        "CertificateAuthorityType must be ROOT or SUBORDINATE, not '%s'", p->type ? p->type : "");
    KMS_GUARD(kms_uuid_new(out->ca_id));
    snprintf(out->account_id, sizeof out->account_id, "%s", ks->account_id);
    snprintf(out->type, sizeof out->type, "%s", p->type);
    snprintf(out->status, sizeof out->status, "%s", root ? "ACTIVE" : "PENDING_CERTIFICATE");
    snprintf(out->key_algorithm, sizeof out->key_algorithm, "%s", key->name);
    snprintf(out->signing_algorithm, sizeof out->signing_algorithm, "%s", alg->name);
    snprintf(out->usage_mode, sizeof out->usage_mode, "%s", mode);
    KMS_GUARD(kms_pki_revocation_check(p->revocation));
    out->configuration = json_dumps(p->configuration, JSON_COMPACT | JSON_SORT_KEYS);
    out->revocation = p->revocation != NULL && !json_is_null(p->revocation)
                          ? json_dumps(p->revocation, JSON_COMPACT | JSON_SORT_KEYS)
                          : strdup("");
    KMS_ENSURE(out->configuration != NULL && out->revocation != NULL, KMS_ERR_INTERNAL,
               "out of memory");
    out->created_at = p->now;
    out->last_state_change_at = p->now;
    return 0;
}

int kms_pki_ca_create(const kms_keystore *ks, const kms_pki_ca_params *p, kms_pki_ca *out)
{
    int r = -1;
    const kms_pki_key_alg *key = NULL;
    const kms_pki_sig_alg *alg = NULL;
    json_t *subject = NULL;
    X509_NAME *name = NULL;
    bool generated = false;
    memset(out, 0, sizeof *out);
    /* Everything the request says is checked before the HSM makes a key. */
    if (read_configuration(p->configuration, &key, &alg, &subject) != 0 ||
        kms_pki_subject_name(subject, &name) != 0 || fill_record(ks, p, key, alg, out) != 0) {
        goto out;
    }
    if (kms_keystore_ca_key_create(ks, out->ca_id, key->key_spec, &out->public_key,
                                   &out->public_key_len) != 0) {
        goto out;
    }
    generated = true;
    /* A SUBORDINATE CA gets its certificate later (pki_sub.c). */
    if ((strcmp(out->type, "ROOT") == 0 &&
         root_certificate(ks, out, key, alg, subject, out->public_key, out->public_key_len) != 0) ||
        kms_pki_db_ca_insert(ks, out) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        if (generated) {
            /* Keep the first error: the destroy is clean-up. */
            kms_saved_error e;
            kms_error_save(&e);
            if (kms_keystore_ca_key_destroy(ks, out->ca_id) != 0) {
                /* A key with no CA row is unusable; report the first error. */
            }
            kms_error_restore(&e);
        }
        kms_pki_ca_clean_up(out);
    }
    X509_NAME_free(name);
    return r;
}
