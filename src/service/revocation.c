/* Revocation for relying parties (include/kms/server.h): a CA's published CRL and the OCSP
 * responder, both unauthenticated and not audited, as fetching a CRL or asking an OCSP responder
 * is neither in AWS. Nothing here passes the gate: what they give away is public by design (a
 * CRL is published; an OCSP answer says of a certificate only what its CA's CRL says), and
 * they read the records of every account's CAs, as a relying party names an issuer, not an
 * account. src/pki/pki_ocsp.h says what the responder answers, and the URLs kmsd serves. */
#include <stdbool.h>
#include <string.h>

#include "kms/server.h"
#include "pki/pki.h"
#include "pki/pki_ocsp.h"
#include "service/client.h"
#include "util/util.h"

/* A CA id as CreateCertificateAuthority makes it: a UUID in lower case, nothing else (it names
 * a file under the home). */
static bool ca_id_ok(const char *ca_id)
{
    return ca_id != NULL && strlen(ca_id) == 36 && strspn(ca_id, "0123456789abcdef-") == 36 &&
           kms_uuid_valid(ca_id);
}

int kms_crl_get(kms_client *client, const char *ca_id, uint8_t **der, size_t *der_len)
{
    *der = NULL;
    *der_len = 0;
    KMS_ENSURE(client != NULL, KMS_ERR_VALIDATION, "no client");
    KMS_ENSURE(ca_id_ok(ca_id), KMS_ERR_NOT_FOUND, "no CRL published for CA '%.64s'",
               ca_id != NULL ? ca_id : "");
    return kms_pki_crl_read(client->home, ca_id, der, der_len);
}

int kms_ocsp_respond(kms_client *client, const uint8_t *request_der, size_t request_len,
                     uint8_t **response_der, size_t *response_len)
{
    *response_der = NULL;
    *response_len = 0;
    KMS_ENSURE(client != NULL, KMS_ERR_VALIDATION, "no client");
    return kms_pki_ocsp_respond(&client->keystore, client->home, request_der, request_len,
                                kms_now(), response_der, response_len);
}
