/* Managed certificates for the service itself (acm_service.h): the AWS managed key alias/aws/acm
 * and the TLS helper's calls, each through the gate. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pki/acm.h"
#include "service/acm_service.h"
#include "service/audit_trail.h"
#include "service/authz.h"
#include "service/gate.h"
#include "util/secmem.h"
#include "util/util.h"

/* ---- alias/aws/acm ----------------------------------------------------------------------------
 */

int kms_acm_service_seal_key(kms_client *client, const char *account_id, kms_key_record *out)
{
    kms_keystore *ks = &client->keystore;
    memset(out, 0, sizeof *out);
    /* The managed key is one of the certificate's own account; the key store holds the keys of
     * the home's account only (CreateKey refuses other accounts), so another account has none
     * and its keys are never sealed under a key of the home's account. */
    KMS_ENSURE(account_id != NULL && strcmp(account_id, client->cfg.account_id) == 0,
               KMS_ERR_UNSUPPORTED_OPERATION,
               "this KMS home keeps the keys of account %s only: certificates of account %s "
               "cannot have an exportable or imported private key (alias/aws/acm of that "
               "account), only an HSM-held one",
               client->cfg.account_id, account_id != NULL ? account_id : "");
    if (kms_keystore_resolve(ks, KMS_ACM_SEAL_ALIAS, true, out) == 0) {
        return 0;
    }
    if (kms_last_error() != KMS_ERR_NOT_FOUND) {
        return -1;
    }
    kms_error_clear();
    const kms_key_spec_info *spec = kms_key_spec_find("SYMMETRIC_DEFAULT");
    char *policy = kms_authz_default_key_policy(client->cfg.account_id);
    KMS_ENSURE(spec != NULL && policy != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_keystore_create(ks, spec, "ENCRYPT_DECRYPT",
                                "Default key that protects my ACM private keys when no other key "
                                "is defined",
                                policy, out);
    free(policy);
    KMS_GUARD(r);
    if (kms_keystore_alias_create(ks, KMS_ACM_SEAL_ALIAS, out->key_id, kms_now()) == 0) {
        return 0;
    }
    /* Another process made it meanwhile: theirs is the one (this key stays unused). */
    kms_key_record_clean_up(out);
    if (kms_last_error() != KMS_ERR_ALREADY_EXISTS) {
        return -1;
    }
    kms_error_clear();
    return kms_keystore_resolve(ks, KMS_ACM_SEAL_ALIAS, true, out);
}

/* ---- The TLS helper's calls ------------------------------------------------------------------ */

/* The key store's spec of an HSM-held key of ACM's KeyAlgorithm. */
static const char *key_spec_of(const char *key_algorithm)
{
    static const char *const map[][2] = {
        {"EC_prime256v1", "ECC_NIST_P256"}, {"EC_secp384r1", "ECC_NIST_P384"},
        {"RSA_2048", "RSA_2048"},           {"RSA_3072", "RSA_3072"},
        {"RSA_4096", "RSA_4096"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(map[i][0], key_algorithm) == 0) {
            return map[i][1];
        }
    }
    return NULL;
}

void kms_acm_material_clean_up(kms_acm_material *m)
{
    free(m->chain_pem);
    kms_secure_free(m->pkcs8); /* wipes before freeing */
    memset(m, 0, sizeof *m);
}

/* Begins the request `operation` on arn with {"CertificateArn": arn, ...} as its parameters,
 * authorises each action of `actions` (NULL-ended) on it and reads the certificate. */
static int begin(kms_request *rq, kms_client *client, const char *operation, const char *arn,
                 const char *const *actions, json_t *params, kms_acm_cert *c)
{
    char id[37];
    kms_keystore view;
    memset(c, 0, sizeof *c);
    KMS_GUARD(kms_gate_begin(rq, client, operation));
    rq->req = params;
    /* As ops_acm.c: the ARN as given is authorised, the certificate is the caller's account's. */
    kms_pki_keystore_as(&client->keystore, rq->who->id.account_id, &view);
    KMS_GUARD(kms_acm_arn_parse(&view, arn, id));
    kms_audit_trail_resource(rq, arn);
    for (size_t i = 0; actions[i] != NULL; i++) {
        KMS_GUARD(kms_gate_authorize(rq, actions[i], arn));
    }
    return kms_acm_get(&view, id, c);
}

static int material_fill(kms_client *client, const kms_acm_cert *c, kms_acm_material *out)
{
    char *leaf = NULL;
    kms_buf der;
    KMS_GUARD(kms_pki_pem(c->certificate, c->certificate_len, &leaf));
    out->chain_pem =
        kms_strdup_printf("%s%.*s", leaf, (int)c->chain_len, c->chain ? (char *)c->chain : "");
    free(leaf);
    KMS_ENSURE(out->chain_pem != NULL, KMS_ERR_INTERNAL, "out of memory");
    out->generation = c->generation;
    if (strcmp(c->key_storage, "HSM") == 0) {
        const char *spec = key_spec_of(c->key_algorithm);
        KMS_ENSURE(spec != NULL, KMS_ERR_INTERNAL, "certificate %s has an unknown key algorithm",
                   c->cert_id);
        out->hsm = true;
        snprintf(out->key_name, sizeof out->key_name, "%s", c->key_name);
        snprintf(out->key_spec, sizeof out->key_spec, "%s", spec);
        return 0;
    }
    kms_buf_init(&der, true);
    int r = kms_acm_key_open(&client->keystore, c, &der);
    if (r == 0) {
        out->pkcs8 = kms_secure_alloc(der.len);
        r = out->pkcs8 != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    if (r == 0) {
        memcpy(out->pkcs8, der.data, der.len);
        out->pkcs8_len = der.len;
    }
    kms_buf_clean_up(&der);
    return r;
}

int kms_acm_service_material(kms_client *client, const char *arn, kms_acm_material *out)
{
    static const char *const actions[] = {"acm:GetCertificate", "acm:UseCertificate", NULL};
    kms_request rq;
    kms_acm_cert c;
    memset(out, 0, sizeof *out);
    json_t *params = json_pack("{s:s}", "CertificateArn", arn != NULL ? arn : "");
    int r = params != NULL ? 0 : kms_raise(KMS_ERR_INTERNAL, "out of memory");
    if (r == 0) {
        r = begin(&rq, client, "acm:UseCertificate", arn, actions, params, &c);
        if (r == 0) {
            r = material_fill(client, &c, out);
        }
        kms_acm_cert_clean_up(&c);
        r = kms_gate_end(&rq, r);
    }
    json_decref(params);
    if (r != 0) {
        kms_acm_material_clean_up(out);
    }
    return r;
}

int kms_acm_service_generation(kms_client *client, const char *arn, int64_t *generation)
{
    static const char *const actions[] = {"acm:DescribeCertificate", NULL};
    kms_request rq;
    kms_acm_cert c;
    *generation = 0;
    json_t *params = json_pack("{s:s}", "CertificateArn", arn != NULL ? arn : "");
    KMS_ENSURE(params != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = begin(&rq, client, "acm:DescribeCertificate", arn, actions, params, &c);
    if (r == 0) {
        *generation = c.generation;
    }
    kms_acm_cert_clean_up(&c);
    r = kms_gate_end(&rq, r);
    json_decref(params);
    return r;
}

int kms_acm_service_in_use(kms_client *client, const char *arn, const char *user, bool in_use)
{
    static const char *const actions[] = {"acm:UseCertificate", NULL};
    kms_request rq;
    kms_acm_cert c;
    json_t *params = json_pack("{s:s, s:s}", "CertificateArn", arn != NULL ? arn : "", "InUseBy",
                               user != NULL ? user : "");
    KMS_ENSURE(params != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = begin(&rq, client, in_use ? "acm:MarkCertificateInUse" : "acm:UnmarkCertificateInUse",
                  arn, actions, params, &c);
    if (r == 0 && (user == NULL || user[0] == '\0' || strlen(user) > 256)) {
        r = kms_raise(KMS_ERR_VALIDATION, "the user of a certificate is a name of 1 to 256 "
                                          "characters");
    }
    if (r == 0) {
        kms_keystore view;
        kms_pki_keystore_as(&client->keystore, c.account_id, &view);
        r = kms_acm_in_use(&view, c.cert_id, user, in_use);
    }
    kms_acm_cert_clean_up(&c);
    r = kms_gate_end(&rq, r);
    json_decref(params);
    return r;
}
