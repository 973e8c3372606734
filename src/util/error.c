#include "util/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static _Thread_local kms_error last_code;
static _Thread_local char last_message[512];
/* The operation of the kms_call that failed with the last error ("" when it came from
 * elsewhere): its service names the error (kms_last_error_code). */
static _Thread_local char last_operation[96];

/* The AWS exception names, indexed by kms_error. */
static const char *const error_names[KMS_ERR__COUNT] = {
    [KMS_OK] = "OK",
    [KMS_ERR_NOT_FOUND] = "NotFoundException",
    [KMS_ERR_DISABLED] = "DisabledException",
    [KMS_ERR_INVALID_STATE] = "KMSInvalidStateException",
    [KMS_ERR_INVALID_CIPHERTEXT] = "InvalidCiphertextException",
    [KMS_ERR_INCORRECT_KEY] = "IncorrectKeyException",
    [KMS_ERR_INVALID_KEY_USAGE] = "InvalidKeyUsageException",
    [KMS_ERR_VALIDATION] = "ValidationException",
    [KMS_ERR_ACCESS_DENIED] = "AccessDeniedException",
    [KMS_ERR_ALREADY_EXISTS] = "AlreadyExistsException",
    [KMS_ERR_INVALID_SIGNATURE] = "KMSInvalidSignatureException",
    [KMS_ERR_INVALID_MAC] = "KMSInvalidMacException",
    [KMS_ERR_LIMIT_EXCEEDED] = "LimitExceededException",
    [KMS_ERR_DEPENDENCY_TIMEOUT] = "DependencyTimeoutException",
    [KMS_ERR_INTERNAL] = "KMSInternalException",
    [KMS_ERR_INVALID_ALIAS_NAME] = "InvalidAliasNameException",
    [KMS_ERR_INVALID_ARN] = "InvalidArnException",
    [KMS_ERR_UNSUPPORTED_OPERATION] = "UnsupportedOperationException",
    [KMS_ERR_INVALID_MARKER] = "InvalidMarkerException",
    [KMS_ERR_UNKNOWN_OPERATION] = "UnknownOperationException",
    [KMS_ERR_HOME] = "KMSHomeException",
    [KMS_ERR_HSM] = "KMSHsmException",
    [KMS_ERR_MALFORMED_POLICY] = "MalformedPolicyDocumentException",
    [KMS_ERR_NO_SUCH_ENTITY] = "NoSuchEntityException",
    [KMS_ERR_ENTITY_EXISTS] = "EntityAlreadyExistsException",
    [KMS_ERR_DELETE_CONFLICT] = "DeleteConflictException",
    [KMS_ERR_PASSWORD_POLICY] = "PasswordPolicyViolationException",
    [KMS_ERR_INVALID_AUTH_CODE] = "InvalidAuthenticationCodeException",
    [KMS_ERR_UNRECOGNIZED_CLIENT] = "UnrecognizedClientException",
    [KMS_ERR_BAD_SIGNATURE] = "InvalidSignatureException",
    [KMS_ERR_EXPIRED_TOKEN] = "ExpiredTokenException",
    [KMS_ERR_INVALID_GRANT_TOKEN] = "InvalidGrantTokenException",
    [KMS_ERR_INVALID_GRANT_ID] = "InvalidGrantIdException",
    [KMS_ERR_INVALID_INPUT] = "InvalidInputException",
    [KMS_ERR_AUDIT] = "KMSAuditLogException",
    [KMS_ERR_CONFLICT] = "ConflictException",
    [KMS_ERR_REPORT_NOT_PRESENT] = "CredentialReportNotPresentException",
    [KMS_ERR_REPORT_EXPIRED] = "CredentialReportExpiredException",
    [KMS_ERR_INVALID_ARGS] = "InvalidArgsException",
    [KMS_ERR_MALFORMED_CSR] = "MalformedCSRException",
    [KMS_ERR_RESOURCE_NOT_FOUND] = "ResourceNotFoundException",
    [KMS_ERR_PCA_INVALID_STATE] = "InvalidStateException",
    [KMS_ERR_REQUEST_FAILED] = "RequestFailedException",
    [KMS_ERR_ALREADY_PROCESSED] = "RequestAlreadyProcessedException",
    [KMS_ERR_CERTIFICATE_MISMATCH] = "CertificateMismatchException",
    [KMS_ERR_MALFORMED_CERTIFICATE] = "MalformedCertificateException",
    [KMS_ERR_INVALID_REQUEST] = "InvalidRequestException",
    [KMS_ERR_INVALID_PARAMETER] = "InvalidParameterException",
    [KMS_ERR_REQUEST_IN_PROGRESS] = "RequestInProgressException",
    [KMS_ERR_RESOURCE_IN_USE] = "ResourceInUseException",
    [KMS_ERR_INVALID_TAG] = "InvalidTagException",
    [KMS_ERR_INCOMPLETE_SIGNATURE] = "IncompleteSignatureException",
    [KMS_ERR_THROTTLING] = "ThrottlingException",
    [KMS_ERR_NETWORK] = "KMSNetworkException",
    [KMS_ERR_MISSING_AUTH] = "MissingAuthenticationTokenException",
    [KMS_ERR_DRY_RUN] = "DryRunOperationException",
    [KMS_ERR_TAG] = "TagException",
};

/* ---- The names each service's wire carries ------------------------------------------------
 * KMS, ACM and ACM PCA (AWS JSON 1.1) send the exception shape's name, error_names above. The
 * query protocol's services send the "error": {"code"} of their botocore model instead (iam
 * 2010-05-08, sts 2011-06-15: "MalformedPolicyDocument", "NoSuchEntity", ...) and, for what
 * no model lists, the code of AWS's "Common errors" page ("AccessDenied", "ValidationError",
 * "InvalidClientTokenId", "Throttling", ...). Organizations (AWS JSON 1.1) sends shape names,
 * its own where its model has one for the failure (DuplicatePolicyException, PolicyInUse...).
 * A row with an operation applies to that operation only. */
typedef struct wire_name {
    const char *service;   /* "iam", "sts", "organizations" */
    const char *operation; /* NULL: every operation of the service */
    kms_error code;
    const char *name;
} wire_name;

#define QUERY_COMMON(svc)                                                                          \
    {svc, NULL, KMS_ERR_ACCESS_DENIED, "AccessDenied"},                                            \
        {svc, NULL, KMS_ERR_VALIDATION, "ValidationError"},                                        \
        {svc, NULL, KMS_ERR_UNRECOGNIZED_CLIENT, "InvalidClientTokenId"},                          \
        {svc, NULL, KMS_ERR_BAD_SIGNATURE, "SignatureDoesNotMatch"},                               \
        {svc, NULL, KMS_ERR_INCOMPLETE_SIGNATURE, "IncompleteSignature"},                          \
        {svc, NULL, KMS_ERR_EXPIRED_TOKEN, "ExpiredToken"},                                        \
        {svc, NULL, KMS_ERR_THROTTLING, "Throttling"},                                             \
        {svc, NULL, KMS_ERR_MISSING_AUTH, "MissingAuthenticationToken"},                           \
        {svc, NULL, KMS_ERR_UNKNOWN_OPERATION, "InvalidAction"},                                   \
    {                                                                                              \
        svc, NULL, KMS_ERR_MALFORMED_POLICY, "MalformedPolicyDocument"                             \
    }

#define ORG_NOT_FOUND(op, name)                                                                    \
    {                                                                                              \
        "organizations", "organizations:" op, KMS_ERR_NO_SUCH_ENTITY, name                         \
    }

static const wire_name wire_names[] = {
    QUERY_COMMON("iam"),
    {"iam", NULL, KMS_ERR_NO_SUCH_ENTITY, "NoSuchEntity"},
    {"iam", NULL, KMS_ERR_ENTITY_EXISTS, "EntityAlreadyExists"},
    {"iam", NULL, KMS_ERR_DELETE_CONFLICT, "DeleteConflict"},
    {"iam", NULL, KMS_ERR_LIMIT_EXCEEDED, "LimitExceeded"},
    {"iam", NULL, KMS_ERR_INVALID_INPUT, "InvalidInput"},
    {"iam", NULL, KMS_ERR_PASSWORD_POLICY, "PasswordPolicyViolation"},
    {"iam", NULL, KMS_ERR_INVALID_AUTH_CODE, "InvalidAuthenticationCode"},
    {"iam", NULL, KMS_ERR_REPORT_NOT_PRESENT, "ReportNotPresent"},
    {"iam", NULL, KMS_ERR_REPORT_EXPIRED, "ReportExpired"},
    {"iam", NULL, KMS_ERR_MALFORMED_CERTIFICATE, "MalformedCertificate"},
    {"iam", NULL, KMS_ERR_CONFLICT, "ConcurrentModification"},
    {"iam", NULL, KMS_ERR_INTERNAL, "ServiceFailure"},
    QUERY_COMMON("sts"),
    /* AssumeRole with a wrong MFA code: "MultiFactorAuthentication failed ..." (AccessDenied). */
    {"sts", NULL, KMS_ERR_INVALID_AUTH_CODE, "AccessDenied"},
    {"sts", NULL, KMS_ERR_INVALID_INPUT, "ValidationError"},
    {"sts", NULL, KMS_ERR_INTERNAL, "InternalFailure"},
    {"organizations", "organizations:CreatePolicy", KMS_ERR_ENTITY_EXISTS,
     "DuplicatePolicyException"},
    {"organizations", "organizations:UpdatePolicy", KMS_ERR_ENTITY_EXISTS,
     "DuplicatePolicyException"},
    {"organizations", "organizations:AttachPolicy", KMS_ERR_ENTITY_EXISTS,
     "DuplicatePolicyAttachmentException"},
    {"organizations", "organizations:CreateOrganization", KMS_ERR_ENTITY_EXISTS,
     "AlreadyInOrganizationException"},
    {"organizations", "organizations:MoveAccount", KMS_ERR_ENTITY_EXISTS,
     "DuplicateAccountException"},
    {"organizations", "organizations:DeletePolicy", KMS_ERR_DELETE_CONFLICT,
     "PolicyInUseException"},
    {"organizations", "organizations:DeleteOrganization", KMS_ERR_DELETE_CONFLICT,
     "OrganizationNotEmptyException"},
    {"organizations", "organizations:DeleteOrganizationalUnit", KMS_ERR_DELETE_CONFLICT,
     "OrganizationalUnitNotEmptyException"},
    {"organizations", NULL, KMS_ERR_LIMIT_EXCEEDED, "ConstraintViolationException"},
    /* What was not found, by the operation's subject (an organization not in use is named by
     * the operations that read only it). */
    ORG_NOT_FOUND("DescribeOrganization", "AWSOrganizationsNotInUseException"),
    ORG_NOT_FOUND("DeleteOrganization", "AWSOrganizationsNotInUseException"),
    ORG_NOT_FOUND("ListRoots", "AWSOrganizationsNotInUseException"),
    ORG_NOT_FOUND("ListAccounts", "AWSOrganizationsNotInUseException"),
    ORG_NOT_FOUND("ListPolicies", "AWSOrganizationsNotInUseException"),
    ORG_NOT_FOUND("CreateAccount", "AWSOrganizationsNotInUseException"),
    ORG_NOT_FOUND("CreatePolicy", "AWSOrganizationsNotInUseException"),
    ORG_NOT_FOUND("DescribePolicy", "PolicyNotFoundException"),
    ORG_NOT_FOUND("UpdatePolicy", "PolicyNotFoundException"),
    ORG_NOT_FOUND("DeletePolicy", "PolicyNotFoundException"),
    ORG_NOT_FOUND("ListTargetsForPolicy", "PolicyNotFoundException"),
    ORG_NOT_FOUND("DetachPolicy", "PolicyNotAttachedException"),
    ORG_NOT_FOUND("DescribeAccount", "AccountNotFoundException"),
    ORG_NOT_FOUND("DescribeOrganizationalUnit", "OrganizationalUnitNotFoundException"),
    ORG_NOT_FOUND("DeleteOrganizationalUnit", "OrganizationalUnitNotFoundException"),
    ORG_NOT_FOUND("ListPoliciesForTarget", "TargetNotFoundException"),
    ORG_NOT_FOUND("ListParents", "ChildNotFoundException"),
    ORG_NOT_FOUND("CreateOrganizationalUnit", "ParentNotFoundException"),
    ORG_NOT_FOUND("ListOrganizationalUnitsForParent", "ParentNotFoundException"),
    ORG_NOT_FOUND("ListAccountsForParent", "ParentNotFoundException"),
};

#undef QUERY_COMMON
#undef ORG_NOT_FOUND

/* "iam:CreatePolicy" is of "iam" (n = 3); a name without a colon is KMS's. */
static bool of_service(const char *operation, const char *service)
{
    size_t n = strlen(service);
    return operation != NULL && strncmp(operation, service, n) == 0 && operation[n] == ':';
}

const char *kms_error_name_for(kms_error code, const char *operation)
{
    const char *any = NULL;
    for (size_t i = 0; i < sizeof wire_names / sizeof wire_names[0]; i++) {
        const wire_name *w = &wire_names[i];
        if (w->code != code || !of_service(operation, w->service)) {
            continue;
        }
        if (w->operation != NULL && strcmp(w->operation, operation) == 0) {
            return w->name;
        }
        if (w->operation == NULL && any == NULL) {
            any = w->name;
        }
    }
    return any != NULL ? any : kms_error_name(code);
}

const char *kms_last_error_code(void)
{
    return kms_error_name_for(last_code, last_operation);
}

void kms_error_set_operation(const char *operation)
{
    snprintf(last_operation, sizeof last_operation, "%s", operation != NULL ? operation : "");
}

int kms_raise(kms_error code, const char *fmt, ...)
{
    /* Format into a scratch buffer first: callers may pass kms_last_error_message() itself as
     * an argument, to wrap the previous error in a new one. */
    char msg[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    last_code = code;
    memcpy(last_message, msg, sizeof msg);
    last_operation[0] = '\0';
    return -1;
}

void kms_error_clear(void)
{
    last_code = KMS_OK;
    last_message[0] = '\0';
    last_operation[0] = '\0';
}

void kms_error_save(kms_saved_error *e)
{
    e->code = last_code;
    snprintf(e->message, sizeof e->message, "%s", last_message);
}

int kms_error_restore(const kms_saved_error *e)
{
    return kms_raise(e->code, "%s", e->message);
}

kms_error kms_last_error(void)
{
    return last_code;
}

const char *kms_last_error_message(void)
{
    return last_message;
}

const char *kms_error_name(kms_error code)
{
    if ((unsigned)code >= KMS_ERR__COUNT || error_names[code] == NULL) {
        return "KMSInternalException";
    }
    return error_names[code];
}

kms_error kms_error_from_name(const char *name)
{
    if (name == NULL || name[0] == '\0') {
        return KMS_ERR__COUNT;
    }
    /* "com.amazonaws.kms#NotFoundException": the shape's namespace goes. */
    const char *hash = strrchr(name, '#');
    name = hash != NULL ? hash + 1 : name;
    size_t n = strcspn(name, ":"); /* x-amzn-ErrorType's "Name:http://..." */
    for (int c = KMS_ERR_NOT_FOUND; c < KMS_ERR__COUNT; c++) {
        const char *known = error_names[c];
        size_t k = known != NULL ? strlen(known) : 0;
        if (k == 0) {
            continue;
        }
        /* The name itself, or the query protocol's without "Exception" ("NoSuchEntity"). */
        if ((n == k && strncmp(name, known, n) == 0) ||
            (k > 9 && n == k - 9 && strcmp(known + n, "Exception") == 0 &&
             strncmp(name, known, n) == 0)) {
            return (kms_error)c;
        }
    }
    /* A service's own code for it ("InvalidClientTokenId", "ReportExpired"). */
    for (size_t i = 0; i < sizeof wire_names / sizeof wire_names[0]; i++) {
        if (strlen(wire_names[i].name) == n && strncmp(name, wire_names[i].name, n) == 0) {
            return wire_names[i].code;
        }
    }
    return KMS_ERR__COUNT;
}
