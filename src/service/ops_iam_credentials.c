/* IAM credentials: access keys, passwords (login profiles and the account's password policy),
 * MFA devices and the credential report, in the request and response shapes of the IAM API
 * reference (ops_iam.c says how every handler goes through the gate). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/ops_iam.h"
#include "util/util.h"

/* ---- Access keys ----------------------------------------------------------------------------- */

static int create_access_key(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    char key_id[32];
    char *secret = NULL;
    json_t *key = NULL;
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    KMS_GUARD(kms_iam_access_key_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name,
                                        kms_now(), key_id, &secret, &key));
    /* The one time the secret is shown (IAM API reference, CreateAccessKey). kmsctl wipes the
     * response text after printing it. */
    json_t *s = json_string(secret);
    kms_iam_secret_free(secret);
    json_t *inner = kms_ops_iam_unwrap(key, "AccessKey");
    if (s == NULL || json_object_set_new(inner, "SecretAccessKey", s) != 0) {
        json_decref(key);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return kms_ops_iam_respond(resp, "AccessKey", key);
}

static int list_access_keys(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_access_key_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, resp);
}

static int update_access_key(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *key_id = NULL, *status = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "AccessKeyId", true, 16, 128, &key_id));
    KMS_GUARD(kms_request_string(req, "Status", true, 1, 16, &status));
    KMS_ENSURE(strcmp(status, "Active") == 0 || strcmp(status, "Inactive") == 0, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'status' failed to satisfy "
               "constraint: Member must satisfy enum value set: [Active, Inactive]",
               status);
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_access_key_update(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name,
                                     key_id, status);
}

static int delete_access_key(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *key_id = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "AccessKeyId", true, 16, 128, &key_id));
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_access_key_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name,
                                     key_id);
}

/* The resource is the key's user, known only after the lookup: the answer is kept back until
 * the decision, and a failed lookup is decided on "*" so that it tells an unauthorised caller
 * nothing. */
static int get_access_key_last_used(kms_request *rq, json_t *req, json_t **resp)
{
    const char *key_id = NULL;
    json_t *out = NULL;
    char arn[KMS_OPS_IAM_ARN_LEN];
    KMS_GUARD(kms_request_string(req, "AccessKeyId", true, 16, 128, &key_id));
    if (kms_iam_access_key_last_used(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), key_id,
                                     &out) != 0) {
        kms_saved_error e;
        kms_error_save(&e);
        KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
        return kms_error_restore(&e);
    }
    const char *user = json_string_value(json_object_get(out, "UserName"));
    if (user != NULL) {
        kms_ops_iam_entity_arn(rq, KMS_IAM_USER, user, arn);
    } else {
        snprintf(arn, sizeof arn, "arn:aws:iam::%s:root", kms_ops_iam_account_of(rq));
    }
    if (kms_gate_authorize(rq, rq->operation, arn) != 0) {
        json_decref(out);
        return -1;
    }
    *resp = out;
    return 0;
}

/* ---- Passwords ------------------------------------------------------------------------------- */

static int create_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *password = NULL;
    bool reset = false;
    json_t *profile = NULL;
    KMS_GUARD(kms_request_string(req, "Password", true, 1, 128, &password));
    KMS_GUARD(kms_ops_iam_req_bool(req, "PasswordResetRequired", false, &reset));
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    KMS_GUARD(kms_iam_login_profile_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name,
                                           password, reset, kms_now(), &profile));
    return kms_ops_iam_respond(resp, "LoginProfile", profile);
}

static int get_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    json_t *profile = NULL;
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    KMS_GUARD(kms_iam_login_profile_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name,
                                        &profile));
    return kms_ops_iam_respond(resp, "LoginProfile", profile);
}

static int update_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *password = NULL;
    bool reset = false;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "Password", false, 1, 128, &password));
    KMS_GUARD(kms_ops_iam_req_bool(req, "PasswordResetRequired", false, &reset));
    int reset_flag = json_object_get(req, "PasswordResetRequired") != NULL ? reset : -1;
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_login_profile_update(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name,
                                        password, reset_flag, kms_now());
}

static int delete_login_profile(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    (void)resp;
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_login_profile_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name);
}

/* ChangePassword: an IAM user changes its own password; the resource is the caller. */
static int change_password(kms_request *rq, json_t *req, json_t **resp)
{
    const char *old_pw = NULL, *new_pw = NULL;
    const kms_identity *id = &rq->who->id;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "OldPassword", true, 1, 128, &old_pw));
    KMS_GUARD(kms_request_string(req, "NewPassword", true, 1, 128, &new_pw));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, id->arn));
    KMS_ENSURE(strcmp(id->type, "IAMUser") == 0, KMS_ERR_INVALID_INPUT,
               "ChangePassword is for IAM users changing their own password; %s is not an IAM "
               "user (an administrator sets passwords with update-login-profile)",
               id->arn);
    return kms_iam_password_change(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq),
                                   id->user_name, old_pw, new_pw, kms_now());
}

static int update_password_policy(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_password_policy p;
    long long n = 0;
    (void)resp;
    memset(&p, 0, sizeof p);
    /* IAM API reference: absent parameters take their defaults (length 6, all else off). */
    KMS_GUARD(kms_request_int(req, "MinimumPasswordLength", false, 6, 128, 6, &n));
    p.minimum_password_length = n;
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireSymbols", false, &p.require_symbols));
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireNumbers", false, &p.require_numbers));
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireUppercaseCharacters", false,
                                   &p.require_uppercase_characters));
    KMS_GUARD(kms_ops_iam_req_bool(req, "RequireLowercaseCharacters", false,
                                   &p.require_lowercase_characters));
    KMS_GUARD(kms_ops_iam_req_bool(req, "AllowUsersToChangePassword", false,
                                   &p.allow_users_to_change_password));
    KMS_GUARD(kms_request_int(req, "MaxPasswordAge", false, 1, 1095, 0, &n));
    p.max_password_age = n;
    KMS_GUARD(kms_request_int(req, "PasswordReusePrevention", false, 1, 24, 0, &n));
    p.password_reuse_prevention = n;
    KMS_GUARD(kms_ops_iam_req_bool(req, "HardExpiry", false, &p.hard_expiry));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_password_policy_put(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), &p);
}

static int get_password_policy(kms_request *rq, json_t *req, json_t **resp)
{
    kms_iam_password_policy p;
    (void)req;
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    KMS_GUARD(kms_iam_password_policy_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), &p));
    json_t *o = json_pack("{s:I, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "MinimumPasswordLength",
                          (json_int_t)p.minimum_password_length, "RequireSymbols",
                          p.require_symbols, "RequireNumbers", p.require_numbers,
                          "RequireUppercaseCharacters", p.require_uppercase_characters,
                          "RequireLowercaseCharacters", p.require_lowercase_characters,
                          "AllowUsersToChangePassword", p.allow_users_to_change_password,
                          "ExpirePasswords", p.max_password_age > 0, "HardExpiry", p.hard_expiry);
    KMS_ENSURE(o != NULL, KMS_ERR_INTERNAL, "out of memory");
    if ((p.max_password_age > 0 &&
         json_object_set_new(o, "MaxPasswordAge", json_integer(p.max_password_age)) != 0) ||
        (p.password_reuse_prevention > 0 &&
         json_object_set_new(o, "PasswordReusePrevention",
                             json_integer(p.password_reuse_prevention)) != 0)) {
        json_decref(o);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    return kms_ops_iam_respond(resp, "PasswordPolicy", o);
}

static int delete_password_policy(kms_request *rq, json_t *req, json_t **resp)
{
    (void)req;
    (void)resp;
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_password_policy_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq));
}

/* ---- MFA ------------------------------------------------------------------------------------- */

static int create_virtual_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *path = NULL, *name = NULL;
    char arn[KMS_OPS_IAM_ARN_LEN];
    char *serial = NULL;
    char *seed = NULL;
    KMS_GUARD(kms_request_string(req, "Path", false, 1, 512, &path));
    KMS_GUARD(kms_request_string(req, "VirtualMFADeviceName", true, 1, 226, &name));
    kms_ops_iam_new_arn(rq, "mfa", path, name, arn);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, arn));
    KMS_GUARD(kms_iam_mfa_create(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), path, name,
                                 kms_now(), &serial, &seed));
    /* IAM API reference, VirtualMFADevice: Base32StringSeed is a blob (base64 in JSON) holding
     * the Base32 text of the seed. Shown this once; kmsctl wipes the response text. */
    int r = -1;
    json_t *dev = json_pack("{s:s}", "SerialNumber", serial);
    if (dev != NULL && kms_request_json_set_blob(dev, "Base32StringSeed", (const uint8_t *)seed,
                                                 strlen(seed)) == 0) {
        r = kms_ops_iam_respond(resp, "VirtualMFADevice", dev);
        dev = NULL;
    } else if (dev == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    json_decref(dev);
    kms_iam_secret_free(seed);
    free(serial);
    return r;
}

static int enable_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *serial = NULL, *code1 = NULL, *code2 = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "SerialNumber", true, 9, 256, &serial));
    KMS_GUARD(kms_request_string(req, "AuthenticationCode1", true, 6, 6, &code1));
    KMS_GUARD(kms_request_string(req, "AuthenticationCode2", true, 6, 6, &code2));
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_mfa_enable(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, serial,
                              code1, code2, kms_now());
}

static int deactivate_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL, *serial = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "SerialNumber", true, 9, 256, &serial));
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_mfa_deactivate(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, serial);
}

static int list_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *name = NULL;
    KMS_GUARD(kms_ops_iam_authorize_target_user(rq, req, &name));
    return kms_iam_mfa_list(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), name, resp);
}

static int list_virtual_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *status = NULL;
    KMS_GUARD(kms_request_string(req, "AssignmentStatus", false, 1, 16, &status));
    KMS_ENSURE(status == NULL || strcmp(status, "Assigned") == 0 ||
                   strcmp(status, "Unassigned") == 0 || strcmp(status, "Any") == 0,
               KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at 'assignmentStatus' failed to satisfy "
               "constraint: Member must satisfy enum value set: [Assigned, Unassigned, Any]",
               status);
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_mfa_list_virtual(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), status,
                                    resp);
}

static int delete_virtual_mfa(kms_request *rq, json_t *req, json_t **resp)
{
    const char *serial = NULL;
    (void)resp;
    KMS_GUARD(kms_request_string(req, "SerialNumber", true, 9, 256, &serial));
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, serial));
    return kms_iam_mfa_delete(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq), serial);
}

/* ---- The credential report ----------------------------------------------------------------- */

/* Both are account-wide: the resource is "*" (IAM Service Authorization Reference). */
static int generate_credential_report(kms_request *rq, json_t *req, json_t **resp)
{
    (void)req;
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_credential_report_generate(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq),
                                              kms_now(), resp);
}

static int get_credential_report(kms_request *rq, json_t *req, json_t **resp)
{
    (void)req;
    KMS_GUARD(kms_gate_authorize(rq, rq->operation, "*"));
    return kms_iam_credential_report_get(kms_ops_iam_iam_of(rq), kms_ops_iam_account_of(rq),
                                         kms_now(), resp);
}

/* ---- The table ----------------------------------------------------------------------------------
 */

/* Members as in the IAM API reference, limited to those this implementation honours: any other
 * is refused by name rather than ignored. */
#define M(...) ((const char *const[]){__VA_ARGS__, NULL})
#define PAGE "Marker", "MaxItems"

const kms_op kms_ops_iam_credentials_table[] = {
    {"iam:CreateAccessKey", create_access_key, M("UserName")},
    {"iam:ListAccessKeys", list_access_keys, M("UserName")},
    {"iam:UpdateAccessKey", update_access_key, M("UserName", "AccessKeyId", "Status")},
    {"iam:DeleteAccessKey", delete_access_key, M("UserName", "AccessKeyId")},
    {"iam:GetAccessKeyLastUsed", get_access_key_last_used, M("AccessKeyId")},

    {"iam:CreateLoginProfile", create_login_profile,
     M("UserName", "Password", "PasswordResetRequired")},
    {"iam:GetLoginProfile", get_login_profile, M("UserName")},
    {"iam:UpdateLoginProfile", update_login_profile,
     M("UserName", "Password", "PasswordResetRequired")},
    {"iam:DeleteLoginProfile", delete_login_profile, M("UserName")},
    {"iam:ChangePassword", change_password, M("OldPassword", "NewPassword")},
    {"iam:UpdateAccountPasswordPolicy", update_password_policy,
     M("MinimumPasswordLength", "RequireSymbols", "RequireNumbers", "RequireUppercaseCharacters",
       "RequireLowercaseCharacters", "AllowUsersToChangePassword", "MaxPasswordAge",
       "PasswordReusePrevention", "HardExpiry")},
    {"iam:GetAccountPasswordPolicy", get_password_policy, M(NULL)},
    {"iam:DeleteAccountPasswordPolicy", delete_password_policy, M(NULL)},

    {"iam:CreateVirtualMFADevice", create_virtual_mfa, M("Path", "VirtualMFADeviceName")},
    {"iam:EnableMFADevice", enable_mfa,
     M("UserName", "SerialNumber", "AuthenticationCode1", "AuthenticationCode2")},
    {"iam:DeactivateMFADevice", deactivate_mfa, M("UserName", "SerialNumber")},
    {"iam:ListMFADevices", list_mfa, M("UserName")},
    {"iam:ListVirtualMFADevices", list_virtual_mfa, M("AssignmentStatus")},
    {"iam:DeleteVirtualMFADevice", delete_virtual_mfa, M("SerialNumber")},

    {"iam:GenerateCredentialReport", generate_credential_report, M(NULL)},
    {"iam:GetCredentialReport", get_credential_report, M(NULL)},
};
const size_t kms_ops_iam_credentials_table_count =
    sizeof kms_ops_iam_credentials_table / sizeof kms_ops_iam_credentials_table[0];

#undef PAGE
#undef M
