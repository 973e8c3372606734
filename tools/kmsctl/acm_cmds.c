/* kmsctl's AWS Certificate Manager commands, grouped under their service as in the aws CLI:
 * `kmsctl acm request-certificate ...`. Each maps its options to the members of the request of
 * the operation "acm:NAME" that kms_call runs through the gate. */
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "kmsctl.h"

/* clang-format off */
#define O_END {NULL, 0, 0, NULL}
#define O_CERT_ARN                                                                                 \
    {"certificate-arn", OPT_STRING, OPT_REQUIRED,                                                  \
     "the certificate: arn:aws:acm:REGION:ACCOUNT:certificate/ID"}
#define CERT_ARN "arn:aws:acm:us-east-1:111122223333:certificate/" \
    "12345678-1234-1234-1234-123456789012"
#define CA_ARN "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/" \
    "11223344-1234-1122-2233-112233445566"
#define O_TAGS(flags, text) {"tags", OPT_STRUCTS, flags, text}

static const struct opt_spec request_opts[] = {
    {"domain-name", OPT_STRING, OPT_REQUIRED,
     "the certificate's name (its CN and first subjectAltName); a '*.' wildcard allowed"},
    {"subject-alternative-names", OPT_LIST, 0, "more DNS names (at most 10 names in all)"},
    {"certificate-authority-arn", OPT_STRING, OPT_REQUIRED,
     "the private CA of this home that issues it (ACTIVE)"},
    {"key-algorithm", OPT_STRING, 0,
     "RSA_2048 (default), RSA_3072, RSA_4096, EC_prime256v1 or EC_secp384r1"},
    {"options", OPT_MAP, 0,
     "Export=ENABLED: an exportable key, sealed under alias/aws/acm (export-certificate); "
     "default: the key is made in the HSM and never leaves it (KeyStorage=HSM)"},
    {"idempotency-token", OPT_STRING, 0, "accepted, as aws does"},
    O_TAGS(0, "Key=K,Value=V Key=K2,Value=V2 (or JSON [{\"Key\": K, \"Value\": V}])"),
    O_END,
};
static const struct opt_spec cert_opts[] = {O_CERT_ARN, O_END};
static const struct opt_spec list_opts[] = {
    {"certificate-statuses", OPT_LIST, 0, "only these: ISSUED, EXPIRED, REVOKED, FAILED"},
    {"includes", OPT_JSON, 0,
     "{\"keyTypes\": [\"EC_prime256v1\", ...]}: only these key algorithms (default: all)"},
    {"expiring-within-days", OPT_INTEGER, 0,
     "only ISSUED certificates that expire within N days (not in aws)"},
    {"max-items", OPT_INTEGER, 0, "at most this many (1-1000, default 1000)"},
    {"next-token", OPT_STRING, 0, "NextToken of the previous response"},
    O_END,
};
static const struct opt_spec export_opts[] = {
    O_CERT_ARN,
    {"passphrase", OPT_BLOB, OPT_REQUIRED,
     "4 to 128 bytes that encrypt the exported key: fileb://PATH"},
    O_END,
};
static const struct opt_spec import_opts[] = {
    {"certificate-arn", OPT_STRING, 0, "reimport: the imported certificate to replace (same ARN)"},
    {"certificate", OPT_BLOB, OPT_REQUIRED, "the certificate, PEM or DER: fileb://PATH"},
    {"private-key", OPT_BLOB, OPT_REQUIRED,
     "its unencrypted private key, PEM or DER: fileb://PATH"},
    {"certificate-chain", OPT_BLOB, 0, "the certificates above it, PEM: fileb://PATH"},
    O_TAGS(0, "Key=K,Value=V Key=K2,Value=V2 (not on a reimport)"),
    O_END,
};
static const struct opt_spec tags_opts[] = {
    O_CERT_ARN,
    O_TAGS(OPT_REQUIRED, "Key=K,Value=V Key=K2,Value=V2 (or JSON [{\"Key\": K, \"Value\": V}])"),
    O_END,
};

const struct command kmsctl_acm_commands[] = {
    {"acm request-certificate", "acm:RequestCertificate", kmsctl_run_operation, request_opts,
     "Request a private certificate from a CA of this home",
     "Makes the key (in the HSM, non-extractable, unless --options Export=ENABLED), has the CA\n"
     "issue a certificate for it (valid 365 days, serverAuth and clientAuth) and keeps both.\n"
     "The scheduler renews it 60 days before it expires. Prints the CertificateArn.",
     "kmsctl acm request-certificate --domain-name app.internal \\\n"
     "    --subject-alternative-names api.app.internal --key-algorithm EC_prime256v1 \\\n"
     "    --certificate-authority-arn " CA_ARN},
    {"acm describe-certificate", "acm:DescribeCertificate", kmsctl_run_operation, cert_opts,
     "Show a managed certificate",
     "Prints the Certificate: status, names, serial, NotBefore/NotAfter, KeyAlgorithm,\n"
     "RenewalEligibility, RenewalSummary, InUseBy, the CA.",
     "kmsctl acm describe-certificate --certificate-arn " CERT_ARN},
    {"acm list-certificates", "acm:ListCertificates", kmsctl_run_operation, list_opts,
     "List managed certificates",
     "Prints the CertificateSummaryList, and NextToken when more follow.",
     "kmsctl acm list-certificates --expiring-within-days 45 --certificate-statuses ISSUED"},
    {"acm get-certificate", "acm:GetCertificate", kmsctl_run_operation, cert_opts,
     "Get a managed certificate and its chain (PEM)",
     "Prints the Certificate and the CertificateChain (the issuing CA first, up to the root).",
     "kmsctl acm get-certificate --certificate-arn " CERT_ARN
     " \\\n    --query Certificate --output text > cert.pem"},
    {"acm export-certificate", "acm:ExportCertificate", kmsctl_run_operation, export_opts,
     "Export a certificate with its key (encrypted PKCS#8 PEM)",
     "Prints the Certificate, the CertificateChain and the PrivateKey as encrypted PKCS#8 PEM\n"
     "(PBES2, AES-256-CBC) under the passphrase. Only keys requested with Export=ENABLED leave;\n"
     "an HSM-held key is refused (ValidationException).",
     "printf 'correct horse' > pass\n"
     "kmsctl acm export-certificate --certificate-arn " CERT_ARN
     " \\\n    --passphrase fileb://pass --query PrivateKey --output text > key.pem\n"
     "openssl pkey -in key.pem -passin file:pass -noout"},
    {"acm renew-certificate", "acm:RenewCertificate", kmsctl_run_operation, cert_opts,
     "Renew a private certificate now",
     "A new key and a new certificate from the same CA, under the same ARN. Prints nothing.",
     "kmsctl acm renew-certificate --certificate-arn " CERT_ARN},
    {"acm import-certificate", "acm:ImportCertificate", kmsctl_run_operation, import_opts,
     "Import (or reimport) a certificate with its key",
     "The key must be the certificate's; it is sealed under alias/aws/acm. With\n"
     "--certificate-arn, replaces an imported certificate under the same ARN. Prints the\n"
     "CertificateArn.",
     "kmsctl acm import-certificate --certificate fileb://cert.pem \\\n"
     "    --private-key fileb://key.pem --certificate-chain fileb://chain.pem"},
    {"acm delete-certificate", "acm:DeleteCertificate", kmsctl_run_operation, cert_opts,
     "Delete a managed certificate and its key",
     "Refused (ResourceInUseException) while InUseBy names a user. Prints nothing.",
     "kmsctl acm delete-certificate --certificate-arn " CERT_ARN},
    {"acm add-tags-to-certificate", "acm:AddTagsToCertificate", kmsctl_run_operation, tags_opts,
     "Tag a managed certificate", "Adds or replaces tags. Prints nothing.",
     "kmsctl acm add-tags-to-certificate --certificate-arn " CERT_ARN
     " \\\n    --tags '[{\"Key\": \"team\", \"Value\": \"web\"}]'"},
    {"acm remove-tags-from-certificate", "acm:RemoveTagsFromCertificate", kmsctl_run_operation,
     tags_opts, "Remove tags from a managed certificate",
     "Removes the tags of those keys (a Value given must match). Prints nothing.",
     "kmsctl acm remove-tags-from-certificate --certificate-arn " CERT_ARN
     " \\\n    --tags '[{\"Key\": \"team\"}]'"},
    {"acm list-tags-for-certificate", "acm:ListTagsForCertificate", kmsctl_run_operation,
     cert_opts, "List a managed certificate's tags", "Prints the Tags.",
     "kmsctl acm list-tags-for-certificate --certificate-arn " CERT_ARN},

    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */
