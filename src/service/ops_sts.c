/* STS: GetCallerIdentity, AssumeRole, GetSessionToken, in the shapes of the STS API reference.
 * The secrets of new credentials travel only in the response (kmsctl wipes its text after
 * printing it); this file's copies are wiped with kms_iam_credentials_clean_up. */
#include <stdio.h>
#include <string.h>

#include "service/ops_iam.h"
#include "util/util.h"

#define M(...) ((const char *const[]){__VA_ARGS__, NULL})

/* {"Credentials": {...}} plus AssumedRoleUser for AssumeRole. */
static int credentials_response(const kms_iam_credentials *c, bool assumed_role, json_t **resp)
{
    json_t *creds = json_pack("{s:s, s:s, s:s, s:I}", "AccessKeyId", c->access_key_id,
                              "SecretAccessKey", c->secret_access_key, "SessionToken",
                              c->session_token, "Expiration", (json_int_t)c->expiration);
    KMS_ENSURE(creds != NULL, KMS_ERR_INTERNAL, "out of memory");
    json_t *r = json_pack("{s:o}", "Credentials", creds);
    KMS_ENSURE(r != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (assumed_role) {
        json_t *user = json_pack("{s:s, s:s}", "AssumedRoleId", c->assumed_role_id, "Arn",
                                 c->assumed_role_arn);
        if (user == NULL || json_object_set_new(r, "AssumedRoleUser", user) != 0) {
            json_decref(r);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    *resp = r;
    return 0;
}

static int get_caller_identity(kms_request *rq, json_t *req, json_t **resp)
{
    const kms_identity *id = &rq->who->id;
    (void)req;
    /* STS API reference, GetCallerIdentity: "No permissions are required to perform this
     * operation. If an administrator attaches a policy to your identity that explicitly denies
     * access to the sts:GetCallerIdentity action, you can still perform this operation." The
     * caller was authenticated by the gate; that is the whole decision. */
    rq->authorized = true;
    *resp = json_pack("{s:s, s:s, s:s}", "UserId", id->principal_id, "Account", id->account_id,
                      "Arn", id->arn);
    KMS_ENSURE(*resp != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

/* The trust policy of the role and the caller's own policies decide (kms_gate_authorize_trust);
 * the session policy is validated before the session is created. An unknown role is refused as
 * AWS refuses it, with AccessDenied, so that roles cannot be probed. */
static int assume_role(kms_request *rq, json_t *req, json_t **resp)
{
    const char *role_arn = NULL, *session = NULL, *policy = NULL, *serial = NULL, *code = NULL;
    long long duration = 0;
    kms_iam_role_info info;
    kms_iam_credentials creds;
    memset(&info, 0, sizeof info);
    memset(&creds, 0, sizeof creds);
    KMS_GUARD(kms_request_string(req, "RoleArn", true, 20, 2048, &role_arn));
    KMS_GUARD(kms_request_string(req, "RoleSessionName", true, 2, 64, &session));
    KMS_GUARD(kms_request_int(req, "DurationSeconds", false, 900, 43200, 0, &duration));
    KMS_GUARD(kms_request_string(req, "Policy", false, 1, 2048, &policy));
    KMS_GUARD(kms_request_string(req, "SerialNumber", false, 9, 256, &serial));
    KMS_GUARD(kms_request_string(req, "TokenCode", false, 6, 6, &code));
    KMS_ENSURE((serial == NULL) == (code == NULL), KMS_ERR_VALIDATION,
               "SerialNumber and TokenCode go together: give both or neither");
    if (kms_iam_role_lookup(rq->client->iam, role_arn, &info) != 0) {
        KMS_ENSURE(kms_last_error() != KMS_ERR_NO_SUCH_ENTITY, KMS_ERR_ACCESS_DENIED,
                   "User: %s is not authorized to perform: sts:AssumeRole on resource: %s",
                   rq->who->id.arn, role_arn);
        return -1;
    }
    int r = kms_gate_authorize_trust(rq, info.arn, info.trust_policy);
    if (r == 0 && policy != NULL) {
        r = kms_ops_iam_check_policy(policy, KMS_POLICY_IDENTITY, "Policy");
    }
    if (r == 0) {
        r = kms_iam_assume_role(rq->client->iam, &rq->who->id, info.arn, session, duration, policy,
                                serial, code, kms_now(), &creds);
    }
    if (r == 0) {
        r = credentials_response(&creds, true, resp);
    }
    kms_iam_credentials_clean_up(&creds);
    kms_iam_role_info_clean_up(&info);
    return r;
}

static int get_session_token(kms_request *rq, json_t *req, json_t **resp)
{
    const char *serial = NULL, *code = NULL;
    long long duration = 0;
    kms_iam_credentials creds;
    memset(&creds, 0, sizeof creds);
    KMS_GUARD(kms_request_int(req, "DurationSeconds", false, 900, 129600, 0, &duration));
    KMS_GUARD(kms_request_string(req, "SerialNumber", false, 9, 256, &serial));
    KMS_GUARD(kms_request_string(req, "TokenCode", false, 6, 6, &code));
    KMS_ENSURE((serial == NULL) == (code == NULL), KMS_ERR_VALIDATION,
               "SerialNumber and TokenCode go together: give both or neither");
    /* STS API reference, GetSessionToken: "No permissions are required for users to perform
     * this operation": the session carries the caller's own permissions, no more. The data
     * layer refuses callers that are sessions themselves, as AWS does. */
    rq->authorized = true;
    int r = kms_iam_session_token(rq->client->iam, &rq->who->id, duration, serial, code, kms_now(),
                                  &creds);
    if (r == 0) {
        r = credentials_response(&creds, false, resp);
    }
    kms_iam_credentials_clean_up(&creds);
    return r;
}

const kms_op kms_ops_sts_table[] = {
    {"sts:GetCallerIdentity", get_caller_identity, M(NULL)},
    {"sts:AssumeRole", assume_role,
     M("RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "SerialNumber", "TokenCode")},
    {"sts:GetSessionToken", get_session_token, M("DurationSeconds", "SerialNumber", "TokenCode")},
};

const size_t kms_ops_sts_table_count = sizeof kms_ops_sts_table / sizeof kms_ops_sts_table[0];
