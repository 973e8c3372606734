/* kmsctl's AWS Private CA commands, grouped under their service as in the aws CLI:
 * `kmsctl acm-pca create-certificate-authority ...`. Each maps its options to the members of
 * the request of the operation "acm-pca:NAME" that kms_call runs through the gate. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "kmsctl.h"

/* --validity: aws's shorthand Value=90,Type=DAYS or JSON {"Value": 90, "Type": "DAYS"}. */
static json_t *parse_validity(const struct command *cmd, const char *text)
{
    json_t *v = NULL;
    if (text[0] == '{') {
        v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    } else {
        char *copy = strdup(text);
        char *rest = copy;
        char *item = NULL;
        v = json_object();
        while (copy != NULL && v != NULL && (item = strsep(&rest, ",")) != NULL) {
            char *eq = strchr(item, '=');
            char *end = NULL;
            if (eq == NULL) {
                json_decref(v);
                v = NULL;
                break;
            }
            *eq = '\0';
            errno = 0;
            long long n = strcmp(item, "Value") == 0 ? strtoll(eq + 1, &end, 10) : 0;
            if (strcmp(item, "Value") == 0 && (errno != 0 || end == eq + 1 || *end != '\0')) {
                json_decref(v);
                v = NULL;
                break;
            }
            json_object_set_new(v, item,
                                strcmp(item, "Value") == 0 ? json_integer(n) : json_string(eq + 1));
        }
        free(copy);
    }
    if (!json_is_integer(json_object_get(v, "Value")) ||
        !json_is_string(json_object_get(v, "Type")) || json_object_size(v) != 2) {
        json_decref(v);
        kmsctl_usage_error(cmd,
                           "argument --validity: expected Value=N,Type=DAYS|MONTHS|YEARS|"
                           "END_DATE|ABSOLUTE or {\"Value\": N, \"Type\": TYPE}, got '%s'",
                           text);
        return NULL;
    }
    return v;
}

static int run_pca(const struct command *cmd, const struct globals *g, json_t *request)
{
    const char *validity = json_string_value(json_object_get(request, "Validity"));
    if (validity != NULL) {
        json_t *v = parse_validity(cmd, validity);
        if (v == NULL) {
            return KMSCTL_EXIT_USAGE;
        }
        json_object_set_new(request, "Validity", v);
    }
    return kmsctl_run_operation(cmd, g, request);
}

/* clang-format off */
#define O_END {NULL, 0, 0, NULL}
#define O_CA_ARN                                                                                   \
    {"certificate-authority-arn", OPT_STRING, OPT_REQUIRED,                                        \
     "the CA: arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID"}
#define CA_ARN "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/" \
    "11223344-1234-1122-2233-112233445566"

static const struct opt_spec create_ca_opts[] = {
    {"certificate-authority-configuration", OPT_JSON, OPT_REQUIRED,
     "{KeyAlgorithm, SigningAlgorithm, Subject{CommonName, Organization, Country, ...}}: "
     "JSON or file://PATH"},
    {"certificate-authority-type", OPT_STRING, OPT_REQUIRED,
     "ROOT (self-signed, ACTIVE at once) or SUBORDINATE (PENDING_CERTIFICATE)"},
    {"usage-mode", OPT_STRING, 0, "GENERAL_PURPOSE (default) or SHORT_LIVED_CERTIFICATE"},
    {"revocation-configuration", OPT_JSON, 0,
     "{\"CrlConfiguration\": {\"Enabled\": true, \"ExpirationInDays\": 7, \"CustomCname\": HOST}}: "
     "CRLs in HOME/crl/CA_ID.crl, http://HOST/crl/CA_ID.crl in issued certificates"},
    {"idempotency-token", OPT_STRING, 0, "accepted, as aws does"},
    {"key-storage-security-standard", OPT_STRING, 0, "accepted: the key is always in the HSM"},
    O_END,
};
static const struct opt_spec ca_opts[] = {O_CA_ARN, O_END};
static const struct opt_spec list_opts[] = {
    {"max-results", OPT_INTEGER, 0, "at most this many CAs (1-1000, default 100)"},
    {"next-token", OPT_STRING, 0, "NextToken of the previous response"},
    {"resource-owner", OPT_STRING, 0, "SELF"},
    O_END,
};
static const struct opt_spec issue_opts[] = {
    O_CA_ARN,
    {"csr", OPT_BLOB, OPT_REQUIRED, "the PKCS#10 request, PEM or DER: fileb://PATH"},
    {"signing-algorithm", OPT_STRING, OPT_REQUIRED,
     "SHA256WITHECDSA, SHA384WITHECDSA, SHA512WITHECDSA, SHA256WITHRSA, SHA384WITHRSA or "
     "SHA512WITHRSA (of the CA key's family)"},
    {"validity", OPT_STRING, 0,
     "Value=N,Type=DAYS|MONTHS|YEARS|END_DATE|ABSOLUTE (default 90 days for end entities)"},
    {"template-arn", OPT_STRING, 0,
     "arn:aws:acm-pca:::template/NAME/V1: EndEntityCertificate (default), "
     "EndEntityServerAuthCertificate, EndEntityClientAuthCertificate, CodeSigningCertificate, "
     "SubordinateCACertificate_PathLen0, each also as NAME_APIPassthrough"},
    {"api-passthrough", OPT_JSON, 0,
     "{\"Extensions\": {\"CustomExtensions\": [{\"ObjectIdentifier\", \"Value\" (base64 DER), "
     "\"Critical\"}], \"SubjectAlternativeNames\", \"ExtendedKeyUsage\", \"KeyUsage\", "
     "\"CertificatePolicies\"}, \"Subject\": {...}}: *_APIPassthrough templates only"},
    {"idempotency-token", OPT_STRING, 0, "accepted, as aws does"},
    O_END,
};
static const struct opt_spec get_cert_opts[] = {
    O_CA_ARN,
    {"certificate-arn", OPT_STRING, OPT_REQUIRED, "the certificate's ARN (IssueCertificate's)"},
    O_END,
};
static const struct opt_spec update_opts[] = {
    O_CA_ARN,
    {"status", OPT_STRING, 0, "ACTIVE or DISABLED (a DISABLED CA issues nothing)"},
    {"revocation-configuration", OPT_JSON, 0,
     "{\"CrlConfiguration\": {\"Enabled\": true, \"ExpirationInDays\": 7, \"CustomCname\": HOST}}: "
     "CRLs in HOME/crl/CA_ID.crl, http://HOST/crl/CA_ID.crl in issued certificates"},
    O_END,
};
static const struct opt_spec delete_opts[] = {
    O_CA_ARN,
    {"permanent-deletion-time-in-days", OPT_INTEGER, 0,
     "the restore window, 7 to 30 days (default 30)"},
    O_END,
};
static const struct opt_spec import_opts[] = {
    O_CA_ARN,
    {"certificate", OPT_BLOB, OPT_REQUIRED, "the CA's certificate, PEM or DER: fileb://PATH"},
    {"certificate-chain", OPT_BLOB, OPT_REQUIRED,
     "the certificates above it, PEM, its issuer first and a root last: fileb://PATH"},
    O_END,
};
static const struct opt_spec revoke_opts[] = {
    O_CA_ARN,
    {"certificate-serial", OPT_STRING, OPT_REQUIRED,
     "the serial in hex, as openssl x509 -serial prints it (colons allowed)"},
    {"revocation-reason", OPT_STRING, OPT_REQUIRED,
     "UNSPECIFIED, KEY_COMPROMISE, CERTIFICATE_AUTHORITY_COMPROMISE, AFFILIATION_CHANGED, "
     "SUPERSEDED, CESSATION_OF_OPERATION, PRIVILEGE_WITHDRAWN or A_A_COMPROMISE"},
    O_END,
};
static const struct opt_spec report_opts[] = {
    O_CA_ARN,
    {"audit-report-response-format", OPT_STRING, OPT_REQUIRED, "JSON or CSV"},
    {"s3-bucket-name", OPT_STRING, 0,
     "accepted and recorded, as aws requires it: the report is written under the home"},
    O_END,
};
static const struct opt_spec report_describe_opts[] = {
    O_CA_ARN,
    {"audit-report-id", OPT_STRING, OPT_REQUIRED,
     "the AuditReportId of create-certificate-authority-audit-report"},
    O_END,
};

const struct command kmsctl_pki_commands[] = {
    {"acm-pca create-certificate-authority", "acm-pca:CreateCertificateAuthority", run_pca,
     create_ca_opts, "Create a private certificate authority (its key in the HSM)",
     "Creates a CA whose private key is generated in the HSM, sensitive and never extractable.\n"
     "A ROOT CA installs its own self-signed certificate (10 years), signed in the HSM, and is\n"
     "ACTIVE at once. Prints the CertificateAuthorityArn.",
     "cat > ca.json <<'EOF'\n"
     "{\"KeyAlgorithm\": \"EC_prime256v1\", \"SigningAlgorithm\": \"SHA256WITHECDSA\",\n"
     " \"Subject\": {\"CommonName\": \"Example Root CA\", \"Organization\": \"Example\"}}\n"
     "EOF\n"
     "kmsctl acm-pca create-certificate-authority \\\n"
     "    --certificate-authority-configuration file://ca.json --certificate-authority-type ROOT"},
    {"acm-pca describe-certificate-authority", "acm-pca:DescribeCertificateAuthority", run_pca,
     ca_opts, "Show a certificate authority",
     "Prints the CertificateAuthority: status, type, serial, validity and configuration.",
     "kmsctl acm-pca describe-certificate-authority --certificate-authority-arn " CA_ARN},
    {"acm-pca update-certificate-authority", "acm-pca:UpdateCertificateAuthority", run_pca,
     update_opts, "Enable or disable a certificate authority",
     "Sets the Status of an ACTIVE or DISABLED CA. A DISABLED CA issues nothing (\n"
     "InvalidStateException) but still revokes. Prints nothing.",
     "kmsctl acm-pca update-certificate-authority --certificate-authority-arn " CA_ARN
     " \\\n    --status DISABLED"},
    {"acm-pca delete-certificate-authority", "acm-pca:DeleteCertificateAuthority", run_pca,
     delete_opts, "Delete a certificate authority (restorable for 7 to 30 days)",
     "Marks the CA DELETED; restore-certificate-authority brings it back within the window. An\n"
     "ACTIVE CA must be disabled first. Prints nothing.",
     "kmsctl acm-pca delete-certificate-authority --certificate-authority-arn " CA_ARN
     " \\\n    --permanent-deletion-time-in-days 7"},
    {"acm-pca restore-certificate-authority", "acm-pca:RestoreCertificateAuthority", run_pca,
     ca_opts, "Restore a deleted certificate authority",
     "Brings a DELETED CA back within its restore window, DISABLED (enable it with\n"
     "update-certificate-authority --status ACTIVE). Prints nothing.",
     "kmsctl acm-pca restore-certificate-authority --certificate-authority-arn " CA_ARN},
    {"acm-pca list-certificate-authorities", "acm-pca:ListCertificateAuthorities", run_pca,
     list_opts, "List the certificate authorities of the account",
     "Prints the CertificateAuthorities, and NextToken when more follow.",
     "kmsctl acm-pca list-certificate-authorities --max-results 10"},
    {"acm-pca get-certificate-authority-certificate",
     "acm-pca:GetCertificateAuthorityCertificate", run_pca, ca_opts,
     "Get a CA's own certificate (PEM)", "Prints the CA's Certificate as PEM.",
     "kmsctl acm-pca get-certificate-authority-certificate --certificate-authority-arn " CA_ARN
     " \\\n    --query Certificate --output text > ca.pem"},
    {"acm-pca get-certificate-authority-csr", "acm-pca:GetCertificateAuthorityCsr", run_pca,
     ca_opts, "Get a SUBORDINATE CA's certificate signing request (PEM)",
     "Prints the Csr of a SUBORDINATE CA: its configured subject and HSM-held public key,\n"
     "asking for CA:TRUE, signed in the HSM. Have it signed by another CA (issue-certificate\n"
     "with SubordinateCACertificate_PathLen0, or openssl ca), then import the certificate.",
     "kmsctl acm-pca get-certificate-authority-csr --certificate-authority-arn " CA_ARN
     " \\\n    --query Csr --output text > sub.csr"},
    {"acm-pca import-certificate-authority-certificate",
     "acm-pca:ImportCertificateAuthorityCertificate", run_pca, import_opts,
     "Install a SUBORDINATE CA's certificate",
     "Installs the certificate issued for a SUBORDINATE CA in PENDING_CERTIFICATE: it must be\n"
     "for the CA's key, say CA:TRUE and verify through the chain up to its root. The CA becomes\n"
     "ACTIVE. Prints nothing.",
     "kmsctl acm-pca import-certificate-authority-certificate --certificate-authority-arn "
     CA_ARN " \\\n    --certificate fileb://sub.pem --certificate-chain fileb://root.pem"},
    {"acm-pca issue-certificate", "acm-pca:IssueCertificate", run_pca, issue_opts,
     "Issue a certificate from a CSR",
     "Checks the CSR's signature, then issues a certificate as the template says (subject and\n"
     "subjectAltName from the CSR, key usages, key identifiers, a random serial), signed by the\n"
     "CA's key in the HSM. A validity beyond the CA's is refused; a server certificate is valid\n"
     "for at most 366 days. Prints the CertificateArn.",
     "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \\\n"
     "    -subj /CN=app.internal -addext subjectAltName=DNS:app.internal -out req.csr\n"
     "kmsctl acm-pca issue-certificate --certificate-authority-arn " CA_ARN " \\\n"
     "    --csr fileb://req.csr --signing-algorithm SHA256WITHECDSA --validity Value=90,Type=DAYS "
     "\\\n    --template-arn arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1\n"
     "# with a custom extension (OID 1.3.6.1.4.1.55555.1, a UTF8String, critical):\n"
     "kmsctl acm-pca issue-certificate --certificate-authority-arn " CA_ARN " \\\n"
     "    --csr fileb://req.csr --signing-algorithm SHA256WITHECDSA --validity Value=90,Type=DAYS "
     "\\\n    --template-arn "
     "arn:aws:acm-pca:::template/EndEntityServerAuthCertificate_APIPassthrough/V1 \\\n"
     "    --api-passthrough '{\"Extensions\": {\"CustomExtensions\": [{\"ObjectIdentifier\": "
     "\"1.3.6.1.4.1.55555.1\",\n      \"Value\": \"DAVoZWxsbw==\", \"Critical\": true}]}}'"},
    {"acm-pca get-certificate", "acm-pca:GetCertificate", run_pca, get_cert_opts,
     "Get an issued certificate and its chain (PEM)",
     "Prints the Certificate and the CertificateChain (the CA's certificate) as PEM.",
     "kmsctl acm-pca get-certificate --certificate-authority-arn " CA_ARN " \\\n"
     "    --certificate-arn " CA_ARN "/certificate/4f0e... --query Certificate --output text"},
    {"acm-pca revoke-certificate", "acm-pca:RevokeCertificate", run_pca, revoke_opts,
     "Revoke a certificate; the CA's CRL is reissued at once",
     "Records the revocation with its RFC 5280 reason, then writes the CA's new CRL (DER, the\n"
     "next CRL number, valid 7 days, signed by the CA's key in the HSM) to HOME/crl/CA_ID.crl.\n"
     "Prints nothing.",
     "kmsctl acm-pca revoke-certificate --certificate-authority-arn " CA_ARN " \\\n"
     "    --certificate-serial 4f0e5b... --revocation-reason KEY_COMPROMISE\n"
     "openssl crl -inform DER -in ~/.kms/crl/11223344-1234-1122-2233-112233445566.crl \\\n"
     "    -CAfile ca.pem -noout -text"},
    {"acm-pca create-certificate-authority-audit-report",
     "acm-pca:CreateCertificateAuthorityAuditReport", run_pca, report_opts,
     "Report every certificate a CA issued and revoked (JSON or CSV)",
     "Writes HOME/audit-report/CA_ID/REPORT_ID.json (or .csv) with one entry per certificate the\n"
     "CA issued, in AWS's fields (awsAccountId, certificateArn, serial, subject, notBefore,\n"
     "notAfter, issuedAt, revokedAt, revocationReason, templateArn), plus issuedBy and revokedBy:\n"
     "the callers, from the audit trail. Prints the AuditReportId and the S3Key (the file's path\n"
     "below the home).",
     "kmsctl acm-pca create-certificate-authority-audit-report --certificate-authority-arn "
     CA_ARN " \\\n    --audit-report-response-format CSV\n"
     "cat ~/.kms/$(kmsctl acm-pca describe-certificate-authority-audit-report \\\n"
     "    --certificate-authority-arn " CA_ARN " \\\n"
     "    --audit-report-id 1c9b... --query S3Key --output text)"},
    {"acm-pca describe-certificate-authority-audit-report",
     "acm-pca:DescribeCertificateAuthorityAuditReport", run_pca, report_describe_opts,
     "Show an audit report of a CA",
     "Prints AuditReportStatus (SUCCESS), CreatedAt, S3Key (the path below the home) and the\n"
     "S3BucketName given, if any.",
     "kmsctl acm-pca describe-certificate-authority-audit-report --certificate-authority-arn "
     CA_ARN " \\\n    --audit-report-id 1c9b5a70-1234-4abc-8def-0123456789ab"},

    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */
