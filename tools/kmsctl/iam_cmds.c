/* kmsctl's IAM, STS and Organizations commands, named as in `aws iam`, `aws sts` and
 * `aws organizations`. Each maps its options to the members of the request of the operation
 * "iam:NAME", "sts:NAME" or "organizations:NAME" that kms_call runs through the gate.
 *
 * Where aws's names clash in kmsctl's one namespace, the Organizations command takes an "org-"
 * prefix: org-create-policy, org-describe-policy, org-update-policy, org-list-policies,
 * org-delete-policy (create-policy etc. are IAM's). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "kms/kms.h"
#include "kmsctl.h"

/* ---- Request fix-ups before the call -------------------------------------------------------- */

/* Members whose AWS name is not the PascalCase of the option ("virtual-mfa-device-name" ->
 * "VirtualMfaDeviceName", but AWS says VirtualMFADeviceName). */
static const struct {
    const char *from;
    const char *to;
} member_renames[] = {
    {"VirtualMfaDeviceName", "VirtualMFADeviceName"},
};

/* --tags (OPT_STRUCTS: Key=K,Value=V ... or JSON): each tag exactly {"Key", "Value"}. */
static int fix_tags(const struct command *cmd, json_t *request)
{
    json_t *list = json_object_get(request, "Tags");
    size_t i;
    json_t *tag;
    json_array_foreach(list, i, tag)
    {
        if (!json_is_string(json_object_get(tag, "Key")) ||
            !json_is_string(json_object_get(tag, "Value")) || json_object_size(tag) != 2) {
            char *text = json_dumps(tag, JSON_COMPACT);
            int r = kmsctl_usage_error(cmd,
                                       "argument --tags: expected Key=KEY,Value=VALUE or "
                                       "{\"Key\": KEY, \"Value\": VALUE}, got %s",
                                       text != NULL ? text : "another value");
            free(text);
            return r;
        }
    }
    return KMSCTL_EXIT_OK;
}

/* --context-entries (OPT_STRUCTS): ContextKeyName=K,ContextKeyValues=V,ContextKeyType=string
 * or JSON; one value given as text is a list of one, as the aws CLI reads the model's list. */
static int fix_context_entries(const struct command *cmd, json_t *request)
{
    json_t *list = json_object_get(request, "ContextEntries");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        json_t *values = json_object_get(e, "ContextKeyValues");
        if (!json_is_string(json_object_get(e, "ContextKeyName"))) {
            return kmsctl_usage_error(cmd,
                                      "argument --context-entries: entry %zu has no "
                                      "ContextKeyName (ContextKeyName=K,ContextKeyValues=V,"
                                      "ContextKeyType=string)",
                                      i + 1);
        }
        if (json_is_string(values) &&
            json_object_set_new(e, "ContextKeyValues", json_pack("[O]", values)) != 0) {
            return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        }
    }
    return KMSCTL_EXIT_OK;
}

static int fix_request(const struct command *cmd, json_t *request)
{
    for (size_t i = 0; i < sizeof member_renames / sizeof member_renames[0]; i++) {
        json_t *v = json_object_get(request, member_renames[i].from);
        if (v != NULL) {
            json_object_set(request, member_renames[i].to, v);
            json_object_del(request, member_renames[i].from);
        }
    }
    int r = fix_tags(cmd, request);
    return r != KMSCTL_EXIT_OK ? r : fix_context_entries(cmd, request);
}

/* Every ordinary command of this table. */
static int run_iam(const struct command *cmd, const struct globals *g, json_t *request)
{
    int r = fix_request(cmd, request);
    return r != KMSCTL_EXIT_OK ? r : kmsctl_run_operation(cmd, g, request);
}

/* --policy-input-list and --permissions-boundary-policy-input-list: an item file://PATH is the
 * document the file holds (the aws CLI reads file:// for a list of one). */
static int read_documents(const struct command *cmd, json_t *request, const char *member,
                          const char *opt)
{
    json_t *list = json_object_get(request, member);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *item = json_string_value(v);
        unsigned char *text = NULL;
        size_t len = 0;
        if (strncmp(item, "file://", 7) != 0) {
            continue;
        }
        if (kmsctl_read_file(cmd, opt, item + 7, &text, &len) != 0) {
            return KMSCTL_EXIT_USAGE;
        }
        json_t *doc = json_stringn((const char *)text, len);
        free(text);
        if (doc == NULL || json_array_set_new(list, i, doc) != 0) {
            return kmsctl_usage_error(cmd, "argument --%s: %s is not UTF-8 text", opt, item + 7);
        }
    }
    return KMSCTL_EXIT_OK;
}

/* simulate-custom-policy: IAM's options, or --input FILE|- (the file's JSON object is the
 * request body, kms_policy_simulate's extension shape). */
static int run_simulate_custom(const struct command *cmd, const struct globals *g, json_t *request)
{
    const char *path = json_string_value(json_object_get(request, "Input"));
    unsigned char *text = NULL;
    size_t len = 0;
    json_error_t err;
    int r;
    if (path == NULL) {
        if (json_object_get(request, "PolicyInputList") == NULL ||
            json_object_get(request, "ActionNames") == NULL) {
            return kmsctl_usage_error(cmd, "the following arguments are required: "
                                           "--policy-input-list, --action-names (or --input FILE)");
        }
        json_object_del(request, "ResourceHandlingOption");
        r = read_documents(cmd, request, "PolicyInputList", "policy-input-list");
        if (r == KMSCTL_EXIT_OK) {
            r = read_documents(cmd, request, "PermissionsBoundaryPolicyInputList",
                               "permissions-boundary-policy-input-list");
        }
        if (r == KMSCTL_EXIT_OK) {
            r = fix_context_entries(cmd, request);
        }
        return r != KMSCTL_EXIT_OK ? r : kmsctl_run_operation(cmd, g, request);
    }
    if (json_object_size(request) > 1) {
        return kmsctl_usage_error(cmd, "--input holds the whole simulation: give it alone");
    }
    if (strncmp(path, "file://", 7) == 0) {
        path += 7;
    }
    if (kmsctl_read_file(cmd, "input", strcmp(path, "-") == 0 ? "/dev/stdin" : path, &text, &len) !=
        0) {
        return KMSCTL_EXIT_USAGE;
    }
    json_t *body = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (!json_is_object(body)) {
        json_decref(body);
        return kmsctl_usage_error(cmd, "argument --input: not a JSON object: %s",
                                  body == NULL ? err.text : "another JSON value");
    }
    r = kmsctl_run_operation(cmd, g, body);
    json_decref(body);
    return r;
}

/* Writes the seed's bytes to path (0600), as aws --outfile does. */
static int write_seed(const struct command *cmd, const char *path, const char *b64)
{
    size_t max = strlen(b64);
    unsigned char *seed = malloc(max + 1);
    size_t n = 0;
    int r = KMSCTL_EXIT_USAGE;
    if (seed == NULL || sodium_base642bin(seed, max, b64, max, NULL, &n, NULL,
                                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: Base32StringSeed is not base64");
        goto out;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        kmsctl_usage_error(cmd, "argument --outfile: cannot create '%s': %s", path,
                           strerror(errno));
        goto out;
    }
    ssize_t w = write(fd, seed, n);
    if (close(fd) != 0 || w != (ssize_t)n) {
        kmsctl_usage_error(cmd, "argument --outfile: cannot write '%s'", path);
        goto out;
    }
    r = KMSCTL_EXIT_OK;
out:
    if (seed != NULL) {
        sodium_memzero(seed, max + 1);
        free(seed);
    }
    return r;
}

/* create-virtual-mfa-device: with --outfile the seed goes to that file (0600) and is left out
 * of what is printed, as aws does; without, it is printed (base64 of the Base32 text). */
static int run_create_virtual_mfa(const struct command *cmd, const struct globals *g,
                                  json_t *request)
{
    const char *outfile = json_string_value(json_object_get(request, "Outfile"));
    const char *method = json_string_value(json_object_get(request, "BootstrapMethod"));
    kms_client *client = NULL;
    char *body = NULL;
    char *response = NULL;
    json_t *resp = NULL;
    int r;

    if (method != NULL && strcmp(method, "Base32StringSeed") != 0) {
        return kmsctl_usage_error(cmd, "argument --bootstrap-method: only Base32StringSeed is "
                                       "supported (no QR code images)");
    }
    r = fix_request(cmd, request);
    if (r == KMSCTL_EXIT_OK) {
        r = kmsctl_check_output(cmd, g, "outfile", outfile);
    }
    if (r != KMSCTL_EXIT_OK) {
        return r;
    }
    char *path = outfile != NULL ? strdup(outfile) : NULL;
    json_object_del(request, "Outfile");
    json_object_del(request, "BootstrapMethod");
    if (path == NULL) {
        return kmsctl_run_operation(cmd, g, request);
    }
    r = KMSCTL_EXIT_SERVICE;
    body = json_dumps(request, JSON_COMPACT);
    client = body != NULL ? kmsctl_client_open(g) : NULL;
    if (client == NULL || kms_call(client, cmd->operation, body, &response) != 0) {
        r = body == NULL ? kmsctl_error_json("KMSInternalException", "kmsctl: out of memory")
                         : kmsctl_service_error();
        goto out;
    }
    resp = json_loads(response, 0, NULL);
    json_t *dev = json_object_get(resp, "VirtualMFADevice");
    const char *seed = json_string_value(json_object_get(dev, "Base32StringSeed"));
    if (seed == NULL) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: the response holds no seed");
        goto out;
    }
    r = write_seed(cmd, path, seed);
    if (r == KMSCTL_EXIT_OK) {
        json_object_del(dev, "Base32StringSeed");
        kmsctl_response_shape(g, resp);
        r = kmsctl_print_value(g, resp);
    }
out:
    if (response != NULL) {
        sodium_memzero(response, strlen(response));
        kms_string_free(response);
    }
    json_decref(resp);
    free(body);
    free(path);
    if (client != NULL) {
        kms_client_free(client);
    }
    return r;
}

/* ---- Options --------------------------------------------------------------------------------- */

/* clang-format off */
#define O_END {NULL, 0, 0, NULL}
#define O_USER {"user-name", OPT_STRING, OPT_REQUIRED, "the IAM user's name"}
#define O_USER_SELF {"user-name", OPT_STRING, 0, "the IAM user (default: the caller itself)"}
#define O_GROUP {"group-name", OPT_STRING, OPT_REQUIRED, "the IAM group's name"}
#define O_ROLE {"role-name", OPT_STRING, OPT_REQUIRED, "the IAM role's name"}
#define O_ENTITY_PATH {"path", OPT_STRING, 0, "path of the entity's ARN, /.../ (default /)"}
#define O_PATH_PREFIX                                                                              \
    {"path-prefix", OPT_STRING, 0, "only entities whose path starts so (default /)"}
#define O_MARKER {"marker", OPT_STRING, 0, "Marker of the previous response, to get the next page"}
#define O_MAX_ITEMS                                                                                \
    {"max-items", OPT_INTEGER, 0, "maximum number of items in the response (1-1000)"}
#define O_POLICY_NAME {"policy-name", OPT_STRING, OPT_REQUIRED, "the inline policy's name"}
#define O_POLICY_DOC                                                                               \
    {"policy-document", OPT_STRING, OPT_REQUIRED,                                                  \
     "the policy (JSON, usually file://policy.json); checked before anything is written"}
#define O_POLICY_ARN {"policy-arn", OPT_STRING, OPT_REQUIRED, "the managed policy's ARN"}
#define O_VERSION_ID {"version-id", OPT_STRING, OPT_REQUIRED, "the policy version (v1, v2 ...)"}
#define O_BOUNDARY                                                                                 \
    {"permissions-boundary", OPT_STRING, 0,                                                        \
     "ARN of a managed policy that caps the permissions (permissions boundary)"}
#define O_TAGS                                                                                     \
    {"tags", OPT_STRUCTS, 0, "tags: Key=K,Value=V Key=K2,Value=V2 (or JSON objects)"}
#define O_ACCESS_KEY_ID {"access-key-id", OPT_STRING, OPT_REQUIRED, "the access key id (AKIA...)"}
#define O_SERIAL {"serial-number", OPT_STRING, OPT_REQUIRED, "the MFA device's serial number (ARN)"}
#define O_MFA_CODE                                                                                 \
    {"serial-number", OPT_STRING, 0, "the caller's MFA device (with --token-code)"},               \
    {"token-code", OPT_STRING, 0, "the 6-digit code the MFA device shows now"}
#define O_DURATION(what)                                                                           \
    {"duration-seconds", OPT_INTEGER, 0, what}
#define O_ORG_POLICY_ID {"policy-id", OPT_STRING, OPT_REQUIRED, "the policy's id (p-...)"}
#define O_PARENT_ID                                                                                \
    {"parent-id", OPT_STRING, OPT_REQUIRED, "the parent: a root (r-...) or OU (ou-...)"}
#define O_OU_ID                                                                                    \
    {"organizational-unit-id", OPT_STRING, OPT_REQUIRED, "the OU's id (ou-...)"}
#define O_TARGET_ID                                                                                \
    {"target-id", OPT_STRING, OPT_REQUIRED, "a root (r-...), an OU (ou-...) or an account id"}
#define O_SCP_FILTER                                                                               \
    {"filter", OPT_STRING, OPT_REQUIRED, "the policy type: SERVICE_CONTROL_POLICY"}
/* clang-format on */

static const struct opt_spec no_opts[] = {O_END};
static const struct opt_spec user_opts[] = {O_USER, O_END};
static const struct opt_spec user_self_opts[] = {O_USER_SELF, O_END};
static const struct opt_spec group_opts[] = {O_GROUP, O_END};
static const struct opt_spec role_opts[] = {O_ROLE, O_END};
static const struct opt_spec list_path_opts[] = {O_PATH_PREFIX, O_MARKER, O_MAX_ITEMS, O_END};

static const struct opt_spec create_user_opts[] = {O_ENTITY_PATH, O_USER, O_BOUNDARY, O_TAGS,
                                                   O_END};
static const struct opt_spec update_user_opts[] = {
    O_USER,
    {"new-path", OPT_STRING, 0, "the user's new path"},
    {"new-user-name", OPT_STRING, 0, "the user's new name"},
    O_END};
static const struct opt_spec create_group_opts[] = {O_ENTITY_PATH, O_GROUP, O_END};
static const struct opt_spec get_group_opts[] = {O_GROUP, O_MARKER, O_MAX_ITEMS, O_END};
static const struct opt_spec group_user_opts[] = {O_GROUP, O_USER, O_END};
static const struct opt_spec user_page_opts[] = {O_USER, O_MARKER, O_MAX_ITEMS, O_END};
static const struct opt_spec group_page_opts[] = {O_GROUP, O_MARKER, O_MAX_ITEMS, O_END};
static const struct opt_spec role_page_opts[] = {O_ROLE, O_MARKER, O_MAX_ITEMS, O_END};

static const struct opt_spec create_role_opts[] = {
    O_ENTITY_PATH,
    O_ROLE,
    {"assume-role-policy-document", OPT_STRING, OPT_REQUIRED,
     "the trust policy: who may assume the role (JSON, usually file://trust.json)"},
    {"description", OPT_STRING, 0, "a description of the role"},
    {"max-session-duration", OPT_INTEGER, 0, "longest session, 3600-43200 seconds (default 3600)"},
    O_BOUNDARY,
    O_TAGS,
    O_END};
static const struct opt_spec update_role_opts[] = {
    O_ROLE,
    {"description", OPT_STRING, 0, "the new description"},
    {"max-session-duration", OPT_INTEGER, 0, "longest session, 3600-43200 seconds"},
    O_END};
static const struct opt_spec update_trust_opts[] = {
    O_ROLE,
    {"policy-document", OPT_STRING, OPT_REQUIRED,
     "the new trust policy (JSON, usually file://trust.json)"},
    O_END};

static const struct opt_spec put_user_policy_opts[] = {O_USER, O_POLICY_NAME, O_POLICY_DOC, O_END};
static const struct opt_spec user_policy_opts[] = {O_USER, O_POLICY_NAME, O_END};
static const struct opt_spec put_group_policy_opts[] = {O_GROUP, O_POLICY_NAME, O_POLICY_DOC,
                                                        O_END};
static const struct opt_spec group_policy_opts[] = {O_GROUP, O_POLICY_NAME, O_END};
static const struct opt_spec put_role_policy_opts[] = {O_ROLE, O_POLICY_NAME, O_POLICY_DOC, O_END};
static const struct opt_spec role_policy_opts[] = {O_ROLE, O_POLICY_NAME, O_END};

static const struct opt_spec create_policy_opts[] = {
    {"policy-name", OPT_STRING, OPT_REQUIRED, "the managed policy's name"},
    O_ENTITY_PATH,
    O_POLICY_DOC,
    {"description", OPT_STRING, 0, "a description (cannot be changed later)"},
    O_END};
static const struct opt_spec policy_arn_opts[] = {O_POLICY_ARN, O_END};
static const struct opt_spec list_policies_opts[] = {
    {"scope", OPT_STRING, 0, "All (default), AWS (AWS managed) or Local (this account's)"},
    {"only-attached", OPT_BOOL, OPT_NO_FORM, "only policies attached to something"},
    O_PATH_PREFIX,
    O_MARKER,
    O_MAX_ITEMS,
    O_END};
static const struct opt_spec create_policy_version_opts[] = {
    O_POLICY_ARN,
    O_POLICY_DOC,
    {"set-as-default", OPT_BOOL, OPT_NO_FORM, "make the new version the one in force"},
    O_END};
static const struct opt_spec policy_version_opts[] = {O_POLICY_ARN, O_VERSION_ID, O_END};

static const struct opt_spec user_policy_arn_opts[] = {O_USER, O_POLICY_ARN, O_END};
static const struct opt_spec group_policy_arn_opts[] = {O_GROUP, O_POLICY_ARN, O_END};
static const struct opt_spec role_policy_arn_opts[] = {O_ROLE, O_POLICY_ARN, O_END};
static const struct opt_spec list_attached_user_opts[] = {O_USER, O_PATH_PREFIX, O_MARKER,
                                                          O_MAX_ITEMS, O_END};
static const struct opt_spec list_attached_group_opts[] = {O_GROUP, O_PATH_PREFIX, O_MARKER,
                                                           O_MAX_ITEMS, O_END};
static const struct opt_spec list_attached_role_opts[] = {O_ROLE, O_PATH_PREFIX, O_MARKER,
                                                          O_MAX_ITEMS, O_END};

static const struct opt_spec put_user_boundary_opts[] = {
    O_USER,
    {"permissions-boundary", OPT_STRING, OPT_REQUIRED,
     "ARN of the managed policy that caps the user's permissions"},
    O_END};
static const struct opt_spec put_role_boundary_opts[] = {
    O_ROLE,
    {"permissions-boundary", OPT_STRING, OPT_REQUIRED,
     "ARN of the managed policy that caps the role's permissions"},
    O_END};

static const struct opt_spec tag_user_opts[] = {
    O_USER,
    {"tags", OPT_STRUCTS, OPT_REQUIRED, "Key=K,Value=V Key=K2,Value=V2 (or JSON objects)"},
    O_END};
static const struct opt_spec untag_user_opts[] = {
    O_USER, {"tag-keys", OPT_LIST, OPT_REQUIRED, "the keys of the tags to remove"}, O_END};
static const struct opt_spec tag_role_opts[] = {
    O_ROLE,
    {"tags", OPT_STRUCTS, OPT_REQUIRED, "Key=K,Value=V Key=K2,Value=V2 (or JSON objects)"},
    O_END};
static const struct opt_spec untag_role_opts[] = {
    O_ROLE, {"tag-keys", OPT_LIST, OPT_REQUIRED, "the keys of the tags to remove"}, O_END};

static const struct opt_spec update_access_key_opts[] = {
    O_USER_SELF,
    O_ACCESS_KEY_ID,
    {"status", OPT_STRING, OPT_REQUIRED, "Active or Inactive"},
    O_END};
static const struct opt_spec delete_access_key_opts[] = {O_USER_SELF, O_ACCESS_KEY_ID, O_END};
static const struct opt_spec access_key_opts[] = {O_ACCESS_KEY_ID, O_END};

static const struct opt_spec create_login_profile_opts[] = {
    O_USER_SELF,
    {"password", OPT_STRING, OPT_REQUIRED,
     "the password (file://PATH keeps it out of the process list); it must satisfy the "
     "account's password policy"},
    {"password-reset-required", OPT_BOOL, OPT_NO_FORM,
     "the user must change it at the next sign-in"},
    O_END};
static const struct opt_spec update_login_profile_opts[] = {
    O_USER_SELF,
    {"password", OPT_STRING, 0, "the new password (file://PATH keeps it out of the process list)"},
    {"password-reset-required", OPT_BOOL, OPT_NO_FORM,
     "the user must change it at the next sign-in"},
    O_END};
static const struct opt_spec change_password_opts[] = {
    {"old-password", OPT_STRING, OPT_REQUIRED, "the current password (or file://PATH)"},
    {"new-password", OPT_STRING, OPT_REQUIRED, "the new password (or file://PATH)"},
    O_END};
static const struct opt_spec password_policy_opts[] = {
    {"minimum-password-length", OPT_INTEGER, 0, "6-128 (default 6)"},
    {"require-symbols", OPT_BOOL, OPT_NO_FORM,
     "at least one of ! @ # $ % ^ & * ( ) _ + - = [ ] { } | '"},
    {"require-numbers", OPT_BOOL, OPT_NO_FORM, "at least one digit"},
    {"require-uppercase-characters", OPT_BOOL, OPT_NO_FORM, "at least one of A-Z"},
    {"require-lowercase-characters", OPT_BOOL, OPT_NO_FORM, "at least one of a-z"},
    {"allow-users-to-change-password", OPT_BOOL, OPT_NO_FORM,
     "users may change their own password"},
    {"max-password-age", OPT_INTEGER, 0, "days a password is valid, 1-1095 (default: forever)"},
    {"password-reuse-prevention", OPT_INTEGER, 0,
     "how many previous passwords cannot be reused, 1-24"},
    {"hard-expiry", OPT_BOOL, OPT_NO_FORM,
     "an expired password can only be reset by an administrator"},
    O_END};

static const struct opt_spec create_virtual_mfa_opts[] = {
    {"virtual-mfa-device-name", OPT_STRING, OPT_REQUIRED, "the device's name"},
    O_ENTITY_PATH,
    {"outfile", OPT_PATH, 0,
     "write the seed (Base32 text) to this file (0600) instead of printing it"},
    {"bootstrap-method", OPT_STRING, 0, "Base32StringSeed (the only one here; no QR code)"},
    O_END};
static const struct opt_spec enable_mfa_opts[] = {
    O_USER_SELF,
    O_SERIAL,
    {"authentication-code1", OPT_STRING, OPT_REQUIRED, "a code the device shows"},
    {"authentication-code2", OPT_STRING, OPT_REQUIRED, "the next code it shows"},
    O_END};
static const struct opt_spec deactivate_mfa_opts[] = {O_USER_SELF, O_SERIAL, O_END};
static const struct opt_spec list_virtual_mfa_opts[] = {
    {"assignment-status", OPT_STRING, 0, "Assigned, Unassigned or Any (default)"}, O_END};
static const struct opt_spec serial_opts[] = {O_SERIAL, O_END};

#define O_CONTEXT_ENTRIES                                                                          \
    {                                                                                              \
        "context-entries", OPT_STRUCTS, 0,                                                         \
            "condition keys: ContextKeyName=K,ContextKeyValues=V,ContextKeyType=string ... "       \
            "(values: a "                                                                          \
            "list [v1,v2]), or JSON [{\"ContextKeyName\": K, \"ContextKeyValues\": [V], "          \
            "\"ContextKeyType\": \"string\"}]"                                                     \
    }
static const struct opt_spec simulate_custom_opts[] = {
    {"policy-input-list", OPT_LIST, 0,
     "the identity policies: documents (JSON text), each also file://PATH"},
    {"action-names", OPT_LIST, 0, "actions to simulate (kms:Decrypt iam:GetUser ...)"},
    {"resource-arns", OPT_LIST, 0, "resources (default *)"},
    {"permissions-boundary-policy-input-list", OPT_LIST, 0,
     "a permissions boundary document (file://PATH too)"},
    {"resource-policy", OPT_STRING, 0, "a resource policy document (file://PATH too)"},
    {"resource-owner", OPT_STRING, 0,
     "the account owning resources whose ARN names none: arn:aws:iam::ACCOUNT:root"},
    {"caller-arn", OPT_STRING, 0,
     "the IAM user simulated as the caller (required with --resource-policy)"},
    O_CONTEXT_ENTRIES,
    {"resource-handling-option", OPT_STRING, 0, "accepted as IAM takes it; not used"},
    {"input", OPT_PATH, 0,
     "instead of the options above (kmsctl's extension): FILE holding a simulation's JSON "
     "object (principal, action, resource, identityPolicies, ...), or - for standard input"},
    O_END};
static const struct opt_spec simulate_principal_opts[] = {
    {"policy-source-arn", OPT_STRING, OPT_REQUIRED, "ARN of a user or role of this account"},
    {"action-names", OPT_LIST, OPT_REQUIRED, "actions to simulate (kms:Decrypt iam:GetUser ...)"},
    {"resource-arns", OPT_LIST, 0,
     "resources (default *); a KMS key ARN of this home brings in its key policy"},
    O_CONTEXT_ENTRIES,
    O_END};

static const struct opt_spec assume_role_opts[] = {
    {"role-arn", OPT_STRING, OPT_REQUIRED, "the role to assume"},
    {"role-session-name", OPT_STRING, OPT_REQUIRED,
     "a name for the session; it ends the session's ARN (2-64 characters)"},
    O_DURATION("session length, 900 seconds up to the role's MaxSessionDuration (default 3600)"),
    {"policy", OPT_STRING, 0,
     "a session policy: the session may do only what it and the role both allow (JSON)"},
    O_MFA_CODE,
    O_END};
static const struct opt_spec get_session_token_opts[] = {
    O_DURATION("session length, 900-43200 seconds (default 43200)"), O_MFA_CODE, O_END};

static const struct opt_spec create_org_opts[] = {
    {"feature-set", OPT_STRING, 0, "ALL (default; the only one here)"}, O_END};
static const struct opt_spec create_ou_opts[] = {
    O_PARENT_ID, {"name", OPT_STRING, OPT_REQUIRED, "the OU's name"}, O_END};
static const struct opt_spec ou_opts[] = {O_OU_ID, O_END};
static const struct opt_spec parent_opts[] = {O_PARENT_ID, O_END};
static const struct opt_spec create_account_opts[] = {
    {"email", OPT_STRING, OPT_REQUIRED, "the account's email address"},
    {"account-name", OPT_STRING, OPT_REQUIRED, "the account's name"},
    {"role-name", OPT_STRING, 0,
     "role the management account may assume in it (default OrganizationAccountAccessRole)"},
    O_END};
static const struct opt_spec account_opts[] = {
    {"account-id", OPT_STRING, OPT_REQUIRED, "the 12-digit account id"}, O_END};
static const struct opt_spec move_account_opts[] = {
    {"account-id", OPT_STRING, OPT_REQUIRED, "the 12-digit account id"},
    {"source-parent-id", OPT_STRING, OPT_REQUIRED, "its parent now (r-... or ou-...)"},
    {"destination-parent-id", OPT_STRING, OPT_REQUIRED, "its new parent (r-... or ou-...)"},
    O_END};
static const struct opt_spec child_opts[] = {
    {"child-id", OPT_STRING, OPT_REQUIRED, "an OU id (ou-...) or account id"}, O_END};
static const struct opt_spec org_create_policy_opts[] = {
    {"content", OPT_STRING, OPT_REQUIRED,
     "the SCP (JSON, usually file://scp.json); checked before anything is written"},
    {"description", OPT_STRING, OPT_REQUIRED, "a description (may be empty)"},
    {"name", OPT_STRING, OPT_REQUIRED, "the policy's name"},
    {"type", OPT_STRING, OPT_REQUIRED, "SERVICE_CONTROL_POLICY"},
    O_END};
static const struct opt_spec org_policy_opts[] = {O_ORG_POLICY_ID, O_END};
static const struct opt_spec org_update_policy_opts[] = {
    O_ORG_POLICY_ID,
    {"name", OPT_STRING, 0, "the new name"},
    {"description", OPT_STRING, 0, "the new description"},
    {"content", OPT_STRING, 0, "the new SCP (JSON, usually file://scp.json)"},
    O_END};
static const struct opt_spec org_list_policies_opts[] = {O_SCP_FILTER, O_END};
static const struct opt_spec policies_for_target_opts[] = {O_TARGET_ID, O_SCP_FILTER, O_END};
static const struct opt_spec org_attach_opts[] = {O_ORG_POLICY_ID, O_TARGET_ID, O_END};

/* ---- The table --------------------------------------------------------------------------------
 * Order is the order of `kmsctl --help`. */

#define ACCT "111122223333"

/* clang-format off */
const struct command kmsctl_iam_commands[] = {
    /* Users */
    {"create-user", "iam:CreateUser", run_iam, create_user_opts, "Create an IAM user",
     "Creates an IAM user: an identity with no permissions until policies give it some, and no\n"
     "credentials until you create an access key or a login profile. Prints the User.",
     "kmsctl create-user --user-name alice\n"
     "kmsctl create-user --user-name bob --path /dev/ --tags Key=team,Value=payments"},
    {"get-user", "iam:GetUser", run_iam, user_self_opts, "Show an IAM user",
     "Prints the User (ARN, id, path, creation date); without --user-name, the caller.",
     "kmsctl get-user --user-name alice"},
    {"list-users", "iam:ListUsers", run_iam, list_path_opts, "List the IAM users",
     "Lists the account's IAM users (every page, as the aws CLI: --max-items, --starting-token).",
     "kmsctl list-users --path-prefix /dev/"},
    {"update-user", "iam:UpdateUser", run_iam, update_user_opts, "Rename or move an IAM user",
     "Changes a user's name and/or path. Prints nothing.",
     "kmsctl update-user --user-name alice --new-user-name alice.smith"},
    {"delete-user", "iam:DeleteUser", run_iam, user_opts, "Delete an IAM user",
     "Deletes a user. Refused (DeleteConflictException) while it still has access keys, a login\n"
     "profile, MFA devices, policies or group memberships. Prints nothing.",
     "kmsctl delete-user --user-name alice"},

    /* Groups */
    {"create-group", "iam:CreateGroup", run_iam, create_group_opts, "Create an IAM group",
     "Creates a group; its members get the permissions of the group's policies. Prints the\n"
     "Group.",
     "kmsctl create-group --group-name Readers"},
    {"get-group", "iam:GetGroup", run_iam, get_group_opts, "Show an IAM group and its users",
     "Prints the Group and its Users.", "kmsctl get-group --group-name Readers"},
    {"list-groups", "iam:ListGroups", run_iam, list_path_opts, "List the IAM groups",
     "Lists the account's groups (every page).", "kmsctl list-groups"},
    {"delete-group", "iam:DeleteGroup", run_iam, group_opts, "Delete an IAM group",
     "Deletes a group; refused while it has members or policies. Prints nothing.",
     "kmsctl delete-group --group-name Readers"},
    {"add-user-to-group", "iam:AddUserToGroup", run_iam, group_user_opts, "Add a user to a group",
     "Makes the user a member of the group (adding it again changes nothing). Prints nothing.",
     "kmsctl add-user-to-group --group-name Readers --user-name alice"},
    {"remove-user-from-group", "iam:RemoveUserFromGroup", run_iam, group_user_opts,
     "Remove a user from a group", "Ends the user's membership of the group. Prints nothing.",
     "kmsctl remove-user-from-group --group-name Readers --user-name alice"},
    {"list-groups-for-user", "iam:ListGroupsForUser", run_iam, user_page_opts,
     "List the groups of a user", "Lists the groups the user is a member of.",
     "kmsctl list-groups-for-user --user-name alice"},

    /* Roles */
    {"create-role", "iam:CreateRole", run_iam, create_role_opts, "Create an IAM role",
     "Creates a role: an identity without long-term credentials that principals named by its\n"
     "trust policy may assume (assume-role) to get temporary credentials with the role's\n"
     "permissions. The trust policy is checked before anything is written. Prints the Role.",
     "kmsctl create-role --role-name Auditor --assume-role-policy-document file://trust.json\n"
     "# trust.json: {\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\",\n"
     "#   \"Principal\": {\"AWS\": \"arn:aws:iam::" ACCT ":user/alice\"},\n"
     "#   \"Action\": \"sts:AssumeRole\"}]}"},
    {"get-role", "iam:GetRole", run_iam, role_opts, "Show an IAM role",
     "Prints the Role with its trust policy (AssumeRolePolicyDocument).",
     "kmsctl get-role --role-name Auditor"},
    {"list-roles", "iam:ListRoles", run_iam, list_path_opts, "List the IAM roles",
     "Lists the account's roles (every page).", "kmsctl list-roles"},
    {"update-role", "iam:UpdateRole", run_iam, update_role_opts,
     "Change a role's description or session length",
     "Changes the description and/or the maximum session duration of a role. Prints nothing.",
     "kmsctl update-role --role-name Auditor --max-session-duration 7200"},
    {"update-assume-role-policy", "iam:UpdateAssumeRolePolicy", run_iam, update_trust_opts,
     "Replace the trust policy of a role",
     "Replaces who may assume the role. The policy is checked before it is stored. Prints\n"
     "nothing.",
     "kmsctl update-assume-role-policy --role-name Auditor --policy-document file://trust.json"},
    {"delete-role", "iam:DeleteRole", run_iam, role_opts, "Delete an IAM role",
     "Deletes a role; refused while it has policies. Its sessions stop working. Prints nothing.",
     "kmsctl delete-role --role-name Auditor"},

    /* Inline policies */
    {"put-user-policy", "iam:PutUserPolicy", run_iam, put_user_policy_opts,
     "Add or replace an inline policy of a user",
     "Embeds a policy in the user (replacing one of the same name). The document is checked\n"
     "first: MalformedPolicyDocumentException names the faulty element. Prints nothing.",
     "kmsctl put-user-policy --user-name alice --policy-name decrypt \\\n"
     "    --policy-document file://decrypt.json"},
    {"get-user-policy", "iam:GetUserPolicy", run_iam, user_policy_opts,
     "Show an inline policy of a user", "Prints the user's inline policy document.",
     "kmsctl get-user-policy --user-name alice --policy-name decrypt"},
    {"delete-user-policy", "iam:DeleteUserPolicy", run_iam, user_policy_opts,
     "Delete an inline policy of a user", "Removes the inline policy. Prints nothing.",
     "kmsctl delete-user-policy --user-name alice --policy-name decrypt"},
    {"list-user-policies", "iam:ListUserPolicies", run_iam, user_page_opts,
     "List the inline policies of a user", "Lists the names of the user's inline policies.",
     "kmsctl list-user-policies --user-name alice"},
    {"put-group-policy", "iam:PutGroupPolicy", run_iam, put_group_policy_opts,
     "Add or replace an inline policy of a group",
     "Embeds a policy in the group; it applies to every member. Checked first. Prints nothing.",
     "kmsctl put-group-policy --group-name Readers --policy-name decrypt \\\n"
     "    --policy-document file://decrypt.json"},
    {"get-group-policy", "iam:GetGroupPolicy", run_iam, group_policy_opts,
     "Show an inline policy of a group", "Prints the group's inline policy document.",
     "kmsctl get-group-policy --group-name Readers --policy-name decrypt"},
    {"delete-group-policy", "iam:DeleteGroupPolicy", run_iam, group_policy_opts,
     "Delete an inline policy of a group", "Removes the inline policy. Prints nothing.",
     "kmsctl delete-group-policy --group-name Readers --policy-name decrypt"},
    {"list-group-policies", "iam:ListGroupPolicies", run_iam, group_page_opts,
     "List the inline policies of a group", "Lists the names of the group's inline policies.",
     "kmsctl list-group-policies --group-name Readers"},
    {"put-role-policy", "iam:PutRolePolicy", run_iam, put_role_policy_opts,
     "Add or replace an inline policy of a role",
     "Embeds a policy in the role; its sessions get it. Checked first. Prints nothing.",
     "kmsctl put-role-policy --role-name Auditor --policy-name describe \\\n"
     "    --policy-document file://describe.json"},
    {"get-role-policy", "iam:GetRolePolicy", run_iam, role_policy_opts,
     "Show an inline policy of a role", "Prints the role's inline policy document.",
     "kmsctl get-role-policy --role-name Auditor --policy-name describe"},
    {"delete-role-policy", "iam:DeleteRolePolicy", run_iam, role_policy_opts,
     "Delete an inline policy of a role", "Removes the inline policy. Prints nothing.",
     "kmsctl delete-role-policy --role-name Auditor --policy-name describe"},
    {"list-role-policies", "iam:ListRolePolicies", run_iam, role_page_opts,
     "List the inline policies of a role", "Lists the names of the role's inline policies.",
     "kmsctl list-role-policies --role-name Auditor"},

    /* Managed policies */
    {"create-policy", "iam:CreatePolicy", run_iam, create_policy_opts,
     "Create a managed policy (IAM)",
     "Creates a customer managed policy (version v1) that can be attached to users, groups and\n"
     "roles, or used as a permissions boundary. Checked first. Prints the Policy. (Service\n"
     "control policies of Organizations: org-create-policy.)",
     "kmsctl create-policy --policy-name KmsReadOnly --policy-document file://readonly.json"},
    {"get-policy", "iam:GetPolicy", run_iam, policy_arn_opts, "Show a managed policy",
     "Prints the Policy (default version, attachment count ...); its document: get-policy-version.",
     "kmsctl get-policy --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"list-policies", "iam:ListPolicies", run_iam, list_policies_opts,
     "List managed policies (IAM)",
     "Lists the AWS managed and this account's managed policies (every page).",
     "kmsctl list-policies --scope Local --only-attached"},
    {"delete-policy", "iam:DeletePolicy", run_iam, policy_arn_opts, "Delete a managed policy (IAM)",
     "Deletes a customer managed policy; refused while it is attached, used as a boundary, or\n"
     "has versions other than the default. Prints nothing.",
     "kmsctl delete-policy --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"create-policy-version", "iam:CreatePolicyVersion", run_iam, create_policy_version_opts,
     "Add a version to a managed policy",
     "Adds a new version of the policy document (at most 5 versions); --set-as-default puts it\n"
     "in force. Checked first. Prints the PolicyVersion.",
     "kmsctl create-policy-version --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly \\\n"
     "    --policy-document file://readonly-v2.json --set-as-default"},
    {"get-policy-version", "iam:GetPolicyVersion", run_iam, policy_version_opts,
     "Show a version of a managed policy", "Prints the PolicyVersion with its Document.",
     "kmsctl get-policy-version --policy-arn arn:aws:iam::aws:policy/AdministratorAccess \\\n"
     "    --version-id v1"},
    {"list-policy-versions", "iam:ListPolicyVersions", run_iam, policy_arn_opts,
     "List the versions of a managed policy", "Lists the policy's versions and which is default.",
     "kmsctl list-policy-versions --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"delete-policy-version", "iam:DeletePolicyVersion", run_iam, policy_version_opts,
     "Delete a version of a managed policy",
     "Deletes a non-default version. Prints nothing.",
     "kmsctl delete-policy-version --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly \\\n"
     "    --version-id v1"},
    {"set-default-policy-version", "iam:SetDefaultPolicyVersion", run_iam, policy_version_opts,
     "Choose the version of a managed policy in force",
     "Makes the version the default one, the one that applies. Prints nothing.",
     "kmsctl set-default-policy-version --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly \\\n"
     "    --version-id v2"},

    /* Attached policies */
    {"attach-user-policy", "iam:AttachUserPolicy", run_iam, user_policy_arn_opts,
     "Attach a managed policy to a user",
     "Attaches the managed policy to the user. Prints nothing.",
     "kmsctl attach-user-policy --user-name alice \\\n"
     "    --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"detach-user-policy", "iam:DetachUserPolicy", run_iam, user_policy_arn_opts,
     "Detach a managed policy from a user", "Detaches the managed policy. Prints nothing.",
     "kmsctl detach-user-policy --user-name alice \\\n"
     "    --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"list-attached-user-policies", "iam:ListAttachedUserPolicies", run_iam,
     list_attached_user_opts, "List the managed policies of a user",
     "Lists the names and ARNs of the managed policies attached to the user.",
     "kmsctl list-attached-user-policies --user-name alice"},
    {"attach-group-policy", "iam:AttachGroupPolicy", run_iam, group_policy_arn_opts,
     "Attach a managed policy to a group",
     "Attaches the managed policy to the group. Prints nothing.",
     "kmsctl attach-group-policy --group-name Readers \\\n"
     "    --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"detach-group-policy", "iam:DetachGroupPolicy", run_iam, group_policy_arn_opts,
     "Detach a managed policy from a group", "Detaches the managed policy. Prints nothing.",
     "kmsctl detach-group-policy --group-name Readers \\\n"
     "    --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"list-attached-group-policies", "iam:ListAttachedGroupPolicies", run_iam,
     list_attached_group_opts, "List the managed policies of a group",
     "Lists the names and ARNs of the managed policies attached to the group.",
     "kmsctl list-attached-group-policies --group-name Admins"},
    {"attach-role-policy", "iam:AttachRolePolicy", run_iam, role_policy_arn_opts,
     "Attach a managed policy to a role",
     "Attaches the managed policy to the role. Prints nothing.",
     "kmsctl attach-role-policy --role-name Auditor \\\n"
     "    --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"detach-role-policy", "iam:DetachRolePolicy", run_iam, role_policy_arn_opts,
     "Detach a managed policy from a role", "Detaches the managed policy. Prints nothing.",
     "kmsctl detach-role-policy --role-name Auditor \\\n"
     "    --policy-arn arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"list-attached-role-policies", "iam:ListAttachedRolePolicies", run_iam,
     list_attached_role_opts, "List the managed policies of a role",
     "Lists the names and ARNs of the managed policies attached to the role.",
     "kmsctl list-attached-role-policies --role-name Auditor"},

    /* Permissions boundaries */
    {"put-user-permissions-boundary", "iam:PutUserPermissionsBoundary", run_iam,
     put_user_boundary_opts, "Cap a user's permissions with a boundary",
     "Sets a managed policy as the user's permissions boundary: the user may then do only what\n"
     "both its policies and the boundary allow. Prints nothing.",
     "kmsctl put-user-permissions-boundary --user-name alice \\\n"
     "    --permissions-boundary arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"delete-user-permissions-boundary", "iam:DeleteUserPermissionsBoundary", run_iam, user_opts,
     "Remove a user's permissions boundary", "Removes the boundary. Prints nothing.",
     "kmsctl delete-user-permissions-boundary --user-name alice"},
    {"put-role-permissions-boundary", "iam:PutRolePermissionsBoundary", run_iam,
     put_role_boundary_opts, "Cap a role's permissions with a boundary",
     "Sets a managed policy as the role's permissions boundary. Prints nothing.",
     "kmsctl put-role-permissions-boundary --role-name Auditor \\\n"
     "    --permissions-boundary arn:aws:iam::" ACCT ":policy/KmsReadOnly"},
    {"delete-role-permissions-boundary", "iam:DeleteRolePermissionsBoundary", run_iam, role_opts,
     "Remove a role's permissions boundary", "Removes the boundary. Prints nothing.",
     "kmsctl delete-role-permissions-boundary --role-name Auditor"},

    /* Tags */
    {"tag-user", "iam:TagUser", run_iam, tag_user_opts, "Tag an IAM user",
     "Adds tags to the user (a tag of the same key is replaced). Tags are principal tags in\n"
     "conditions (aws:PrincipalTag/KEY). Prints nothing.",
     "kmsctl tag-user --user-name alice --tags Key=team,Value=payments Key=level,Value=2"},
    {"untag-user", "iam:UntagUser", run_iam, untag_user_opts, "Remove tags from an IAM user",
     "Removes the tags of the given keys. Prints nothing.",
     "kmsctl untag-user --user-name alice --tag-keys level"},
    {"list-user-tags", "iam:ListUserTags", run_iam, user_opts, "List the tags of an IAM user",
     "Prints the user's Tags.", "kmsctl list-user-tags --user-name alice"},
    {"tag-role", "iam:TagRole", run_iam, tag_role_opts, "Tag an IAM role",
     "Adds tags to the role (a tag of the same key is replaced). Prints nothing.",
     "kmsctl tag-role --role-name Auditor --tags Key=team,Value=audit"},
    {"untag-role", "iam:UntagRole", run_iam, untag_role_opts, "Remove tags from an IAM role",
     "Removes the tags of the given keys. Prints nothing.",
     "kmsctl untag-role --role-name Auditor --tag-keys team"},
    {"list-role-tags", "iam:ListRoleTags", run_iam, role_opts, "List the tags of an IAM role",
     "Prints the role's Tags.", "kmsctl list-role-tags --role-name Auditor"},

    /* Access keys */
    {"create-access-key", "iam:CreateAccessKey", run_iam, user_self_opts,
     "Create an access key for a user",
     "Creates a long-term access key (at most two per user). The SecretAccessKey is shown this\n"
     "once and never again: keep it safe. Use it with KMS_ACCESS_KEY_ID and\n"
     "KMS_SECRET_ACCESS_KEY, or in a profile of HOME/credentials.",
     "kmsctl create-access-key --user-name alice > alice-key.json"},
    {"list-access-keys", "iam:ListAccessKeys", run_iam, user_self_opts,
     "List the access keys of a user",
     "Lists the ids, status and dates of the user's access keys (never the secrets); without\n"
     "--user-name, the caller's.",
     "kmsctl list-access-keys --user-name alice"},
    {"update-access-key", "iam:UpdateAccessKey", run_iam, update_access_key_opts,
     "Activate or deactivate an access key",
     "Sets an access key Inactive (requests signed with it are refused at once) or Active\n"
     "again. Prints nothing.",
     "kmsctl update-access-key --user-name alice --access-key-id AKIAIOSFODNN7EXAMPLE \\\n"
     "    --status Inactive"},
    {"delete-access-key", "iam:DeleteAccessKey", run_iam, delete_access_key_opts,
     "Delete an access key", "Deletes the access key for good. Prints nothing.",
     "kmsctl delete-access-key --user-name alice --access-key-id AKIAIOSFODNN7EXAMPLE"},
    {"get-access-key-last-used", "iam:GetAccessKeyLastUsed", run_iam, access_key_opts,
     "Show when an access key was last used",
     "Prints the key's user and when, for which service and in which region it was last used.",
     "kmsctl get-access-key-last-used --access-key-id AKIAIOSFODNN7EXAMPLE"},

    /* Passwords */
    {"create-login-profile", "iam:CreateLoginProfile", run_iam, create_login_profile_opts,
     "Give a user a password",
     "Gives the user a password for sign-in (kmsctl sign-in). It must satisfy the account's\n"
     "password policy and is stored only as an Argon2id hash. Prints the LoginProfile.",
     "kmsctl create-login-profile --user-name alice --password file://alice.pw \\\n"
     "    --password-reset-required"},
    {"get-login-profile", "iam:GetLoginProfile", run_iam, user_self_opts,
     "Show whether a user has a password",
     "Prints the LoginProfile (creation date, reset required); never the password.",
     "kmsctl get-login-profile --user-name alice"},
    {"update-login-profile", "iam:UpdateLoginProfile", run_iam, update_login_profile_opts,
     "Reset a user's password",
     "Sets a new password for the user and/or whether it must be changed at the next sign-in.\n"
     "Prints nothing.",
     "kmsctl update-login-profile --user-name alice --password file://new.pw \\\n"
     "    --password-reset-required"},
    {"delete-login-profile", "iam:DeleteLoginProfile", run_iam, user_self_opts,
     "Remove a user's password", "The user can no longer sign in with a password. Prints nothing.",
     "kmsctl delete-login-profile --user-name alice"},
    {"change-password", "iam:ChangePassword", run_iam, change_password_opts,
     "Change your own password (IAM user)",
     "The calling IAM user changes its own password: the old one must be right, the new one\n"
     "must satisfy the password policy and not be a recent one. Prints nothing.",
     "kmsctl --profile alice change-password --old-password file://old.pw \\\n"
     "    --new-password file://new.pw"},
    {"update-account-password-policy", "iam:UpdateAccountPasswordPolicy", run_iam,
     password_policy_opts, "Set the account's password policy",
     "Replaces the whole password policy: options not given take their defaults. Prints\n"
     "nothing.",
     "kmsctl update-account-password-policy --minimum-password-length 14 --require-symbols \\\n"
     "    --require-numbers --require-uppercase-characters --require-lowercase-characters \\\n"
     "    --allow-users-to-change-password --max-password-age 90 --password-reuse-prevention 24"},
    {"get-account-password-policy", "iam:GetAccountPasswordPolicy", run_iam, no_opts,
     "Show the account's password policy",
     "Prints the PasswordPolicy; NoSuchEntityException when the account has none.",
     "kmsctl get-account-password-policy"},
    {"delete-account-password-policy", "iam:DeleteAccountPasswordPolicy", run_iam, no_opts,
     "Remove the account's password policy", "Deletes the password policy. Prints nothing.",
     "kmsctl delete-account-password-policy"},

    /* Credential report */
    {"generate-credential-report", "iam:GenerateCredentialReport", run_iam, no_opts,
     "Generate the account's credential report",
     "Builds the credential report (a CSV of every user, the root user first: passwords, MFA,\n"
     "access keys and when they were last used) and keeps it for get-credential-report, in any\n"
     "process, for 4 hours. Generated at once: prints State COMPLETE and a Description.",
     "kmsctl generate-credential-report"},
    {"get-credential-report", "iam:GetCredentialReport", run_iam, no_opts,
     "Print the account's credential report",
     "Prints the last generated report: Content (the CSV, base64), ReportFormat text/csv and\n"
     "GeneratedTime. CredentialReportNotPresentException before generate-credential-report,\n"
     "CredentialReportExpiredException once the report is more than 4 hours old.",
     "kmsctl get-credential-report --output text --query Content | base64 -d > report.csv"},

    /* MFA */
    {"create-virtual-mfa-device", "iam:CreateVirtualMFADevice", run_create_virtual_mfa,
     create_virtual_mfa_opts, "Create a virtual MFA device (TOTP)",
     "Creates a virtual MFA device (RFC 6238 TOTP, 6 digits, 30 s). Its secret seed is given\n"
     "this once: with --outfile it is written there (the Base32 text to type into an\n"
     "authenticator app), else printed as Base32StringSeed (base64 of the Base32 text, as AWS).\n"
     "Then enable-mfa-device assigns it to a user.",
     "kmsctl create-virtual-mfa-device --virtual-mfa-device-name alice \\\n"
     "    --outfile alice-mfa.txt --bootstrap-method Base32StringSeed"},
    {"enable-mfa-device", "iam:EnableMFADevice", run_iam, enable_mfa_opts,
     "Assign an MFA device to a user",
     "Assigns the MFA device to the user, proven by two consecutive codes. From then on the\n"
     "user signs in with a code, and sessions created with a code carry\n"
     "aws:MultiFactorAuthPresent. Prints nothing.",
     "kmsctl enable-mfa-device --user-name alice \\\n"
     "    --serial-number arn:aws:iam::" ACCT ":mfa/alice \\\n"
     "    --authentication-code1 123456 --authentication-code2 789012"},
    {"deactivate-mfa-device", "iam:DeactivateMFADevice", run_iam, deactivate_mfa_opts,
     "Unassign an MFA device from a user",
     "Unassigns the device; it remains and can be deleted or assigned again. Prints nothing.",
     "kmsctl deactivate-mfa-device --user-name alice \\\n"
     "    --serial-number arn:aws:iam::" ACCT ":mfa/alice"},
    {"list-mfa-devices", "iam:ListMFADevices", run_iam, user_self_opts,
     "List the MFA devices of a user",
     "Lists the serial numbers and enable dates of the user's MFA devices.",
     "kmsctl list-mfa-devices --user-name alice"},
    {"list-virtual-mfa-devices", "iam:ListVirtualMFADevices", run_iam, list_virtual_mfa_opts,
     "List the virtual MFA devices of the account",
     "Lists the account's virtual MFA devices and who they are assigned to.",
     "kmsctl list-virtual-mfa-devices --assignment-status Unassigned"},
    {"delete-virtual-mfa-device", "iam:DeleteVirtualMFADevice", run_iam, serial_opts,
     "Delete a virtual MFA device",
     "Deletes an unassigned virtual MFA device (deactivate it first). Prints nothing.",
     "kmsctl delete-virtual-mfa-device --serial-number arn:aws:iam::" ACCT ":mfa/alice"},

    /* Simulation */
    {"simulate-custom-policy", "iam:SimulateCustomPolicy", run_simulate_custom,
     simulate_custom_opts, "Evaluate policies you give against actions and resources",
     "As `aws iam simulate-custom-policy`: evaluates the identity policies of\n"
     "--policy-input-list (with a permissions boundary and a resource policy if given) for\n"
     "each action on each resource, as --caller-arn, and prints IAM's EvaluationResults:\n"
     "EvalActionName, EvalResourceName, EvalDecision (allowed, implicitDeny, explicitDeny),\n"
     "MatchedStatements (SourcePolicyId PolicyInputList.N, StartPosition, EndPosition),\n"
     "MissingContextValues (condition keys the policies use and --context-entries lacks),\n"
     "EvalDecisionDetails, PermissionsBoundaryDecisionDetail and, for --resource-arns,\n"
     "ResourceSpecificResults. Nothing is read from or written to the home's IAM data.\n"
     "kmsctl's extension: --input FILE (or -) holds one simulation as a JSON object with the\n"
     "members principal, action, resource, resourceAccount, context, identityPolicies,\n"
     "resourcePolicy, permissionsBoundary, sessionPolicy, serviceControlPolicies (a list per\n"
     "level, root first) and keyPolicy (true: resourcePolicy is a KMS key policy); it prints\n"
     "that one result.",
     "kmsctl simulate-custom-policy --policy-input-list file://policy.json \\\n"
     "    --action-names kms:Decrypt kms:Encrypt \\\n"
     "    --context-entries ContextKeyName=aws:CurrentTime,ContextKeyValues=2026-01-01T00:00:00Z,"
     "ContextKeyType=date\n"
     "kmsctl simulate-custom-policy --policy-input-list file://a.json file://b.json \\\n"
     "    --action-names s3:GetObject --resource-arns arn:aws:s3:::bucket/key \\\n"
     "    --resource-policy file://bucket-policy.json \\\n"
     "    --caller-arn arn:aws:iam::" ACCT ":user/alice\n"
     "kmsctl simulate-custom-policy --input request.json"},
    {"simulate-principal-policy", "iam:SimulatePrincipalPolicy", run_iam,
     simulate_principal_opts, "Evaluate a user's or role's policies against actions",
     "Evaluates the stored policies of a user or role of this account (identity policies,\n"
     "permissions boundary, SCPs, and the key policy of this home's KMS keys given as\n"
     "resources) for each action and resource, and prints IAM's EvaluationResults with the\n"
     "decisive statements (SourcePolicyId, SourcePolicyType, StartPosition, EndPosition) and\n"
     "MissingContextValues. --context-entries gives condition keys:\n"
     "ContextKeyName=aws:SourceIp,ContextKeyValues=10.0.0.1,ContextKeyType=ip ...",
     "kmsctl simulate-principal-policy \\\n"
     "    --policy-source-arn arn:aws:iam::" ACCT ":user/alice \\\n"
     "    --action-names kms:Decrypt kms:Encrypt \\\n"
     "    --resource-arns arn:aws:kms:us-east-1:" ACCT ":key/1234abcd-12ab-34cd-56ef-1234567890ab"},

    /* STS */
    {"get-caller-identity", "sts:GetCallerIdentity", run_iam, no_opts, "Show who you are",
     "Prints the UserId, Account and Arn of the credentials in use. Needs no permission.",
     "kmsctl --profile alice get-caller-identity"},
    {"assume-role", "sts:AssumeRole", run_iam, assume_role_opts,
     "Get temporary credentials of a role",
     "Returns temporary credentials (AccessKeyId, SecretAccessKey, SessionToken, Expiration)\n"
     "for the role, if its trust policy trusts you and your policies allow sts:AssumeRole.\n"
     "Use them with KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY and KMS_SESSION_TOKEN.",
     "kmsctl assume-role --role-arn arn:aws:iam::" ACCT ":role/Auditor \\\n"
     "    --role-session-name alice-audit --duration-seconds 900"},
    {"get-session-token", "sts:GetSessionToken", run_iam, get_session_token_opts,
     "Get temporary credentials of your own (with MFA)",
     "Returns temporary credentials with your own permissions, typically with an MFA code so\n"
     "that policies requiring aws:MultiFactorAuthPresent allow them. Needs no permission.",
     "kmsctl get-session-token --serial-number arn:aws:iam::" ACCT ":mfa/alice \\\n"
     "    --token-code 123456"},

    /* Organizations */
    {"create-organization", "organizations:CreateOrganization", run_iam, create_org_opts,
     "Create an organization",
     "Creates an organization with this account as management account, a root with the\n"
     "FullAWSAccess SCP, and all features. Prints the Organization.",
     "kmsctl create-organization"},
    {"describe-organization", "organizations:DescribeOrganization", run_iam, no_opts,
     "Show the organization", "Prints the Organization the account belongs to.",
     "kmsctl describe-organization"},
    {"delete-organization", "organizations:DeleteOrganization", run_iam, no_opts,
     "Delete the organization",
     "Deletes the organization; refused while it has member accounts. Prints nothing.",
     "kmsctl delete-organization"},
    {"list-roots", "organizations:ListRoots", run_iam, no_opts, "List the organization's root",
     "Prints the Roots (one) with their ids (r-...).", "kmsctl list-roots --query Roots[0].Id"},
    {"create-organizational-unit", "organizations:CreateOrganizationalUnit", run_iam,
     create_ou_opts, "Create an organizational unit",
     "Creates an OU under a root or OU; SCPs attached to it apply to every account below.\n"
     "Prints the OrganizationalUnit.",
     "kmsctl create-organizational-unit --parent-id r-examplerootid --name Workloads"},
    {"describe-organizational-unit", "organizations:DescribeOrganizationalUnit", run_iam, ou_opts,
     "Show an organizational unit", "Prints the OrganizationalUnit.",
     "kmsctl describe-organizational-unit --organizational-unit-id ou-exam-12345678"},
    {"list-organizational-units-for-parent", "organizations:ListOrganizationalUnitsForParent",
     run_iam, parent_opts, "List the OUs under a root or OU", "Prints the OrganizationalUnits.",
     "kmsctl list-organizational-units-for-parent --parent-id r-examplerootid"},
    {"delete-organizational-unit", "organizations:DeleteOrganizationalUnit", run_iam, ou_opts,
     "Delete an organizational unit",
     "Deletes an empty OU (no accounts, no child OUs). Prints nothing.",
     "kmsctl delete-organizational-unit --organizational-unit-id ou-exam-12345678"},
    {"create-account", "organizations:CreateAccount", run_iam, create_account_opts,
     "Create a member account",
     "Creates a new account in the organization, under the root, with a role\n"
     "(OrganizationAccountAccessRole) the management account may assume to administer it.\n"
     "Prints the CreateAccountStatus with the new AccountId.",
     "kmsctl create-account --email dev@example.com --account-name Dev"},
    {"list-accounts", "organizations:ListAccounts", run_iam, no_opts,
     "List the organization's accounts", "Prints the Accounts of the organization.",
     "kmsctl list-accounts"},
    {"list-accounts-for-parent", "organizations:ListAccountsForParent", run_iam, parent_opts,
     "List the accounts under a root or OU", "Prints the Accounts directly under the parent.",
     "kmsctl list-accounts-for-parent --parent-id ou-exam-12345678"},
    {"describe-account", "organizations:DescribeAccount", run_iam, account_opts,
     "Show a member account", "Prints the Account.",
     "kmsctl describe-account --account-id " ACCT},
    {"move-account", "organizations:MoveAccount", run_iam, move_account_opts,
     "Move an account to another root or OU",
     "Moves the account; the SCPs of its new parents apply from then on. Prints nothing.",
     "kmsctl move-account --account-id " ACCT " --source-parent-id r-examplerootid \\\n"
     "    --destination-parent-id ou-exam-12345678"},
    {"list-parents", "organizations:ListParents", run_iam, child_opts,
     "Show the parent of an account or OU", "Prints the Parents (one): its id and type.",
     "kmsctl list-parents --child-id " ACCT},
    {"org-create-policy", "organizations:CreatePolicy", run_iam, org_create_policy_opts,
     "Create a service control policy (aws organizations create-policy)",
     "Creates a service control policy (aws organizations create-policy; named org-create-policy\n"
     "here because create-policy is IAM's). An SCP caps what the accounts below its targets may\n"
     "do; it never restricts the management account. Checked first. Prints the Policy.",
     "kmsctl org-create-policy --name DenyDecrypt --type SERVICE_CONTROL_POLICY \\\n"
     "    --description 'no decrypt' --content file://scp.json"},
    {"org-describe-policy", "organizations:DescribePolicy", run_iam, org_policy_opts,
     "Show a service control policy (aws organizations describe-policy)",
     "Prints the Policy with its Content (aws organizations describe-policy).",
     "kmsctl org-describe-policy --policy-id p-examplepolicyid111"},
    {"org-update-policy", "organizations:UpdatePolicy", run_iam, org_update_policy_opts,
     "Change a service control policy (aws organizations update-policy)",
     "Changes the name, description and/or content of an SCP (aws organizations update-policy).\n"
     "New content is checked first. Prints the Policy.",
     "kmsctl org-update-policy --policy-id p-examplepolicyid111 --content file://scp-v2.json"},
    {"org-list-policies", "organizations:ListPolicies", run_iam, org_list_policies_opts,
     "List the service control policies (aws organizations list-policies)",
     "Prints the Policies of the organization (aws organizations list-policies).",
     "kmsctl org-list-policies --filter SERVICE_CONTROL_POLICY"},
    {"list-policies-for-target", "organizations:ListPoliciesForTarget", run_iam,
     policies_for_target_opts, "List the SCPs attached to a root, OU or account",
     "Prints the Policies directly attached to the target.",
     "kmsctl list-policies-for-target --target-id " ACCT " --filter SERVICE_CONTROL_POLICY"},
    {"list-targets-for-policy", "organizations:ListTargetsForPolicy", run_iam, org_policy_opts,
     "List where an SCP is attached", "Prints the Targets (roots, OUs, accounts) of the policy.",
     "kmsctl list-targets-for-policy --policy-id p-examplepolicyid111"},
    {"attach-policy", "organizations:AttachPolicy", run_iam, org_attach_opts,
     "Attach an SCP to a root, OU or account",
     "Attaches the service control policy to the target. Prints nothing.",
     "kmsctl attach-policy --policy-id p-examplepolicyid111 --target-id " ACCT},
    {"detach-policy", "organizations:DetachPolicy", run_iam, org_attach_opts,
     "Detach an SCP from a root, OU or account",
     "Detaches the policy; refused if that would leave the target with no SCP. Prints nothing.",
     "kmsctl detach-policy --policy-id p-examplepolicyid111 --target-id " ACCT},
    {"org-delete-policy", "organizations:DeletePolicy", run_iam, org_policy_opts,
     "Delete a service control policy (aws organizations delete-policy)",
     "Deletes an SCP that is attached nowhere (aws organizations delete-policy). Prints nothing.",
     "kmsctl org-delete-policy --policy-id p-examplepolicyid111"},

    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */
