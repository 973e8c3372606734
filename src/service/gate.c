/* THE GATE: authenticate -> authorize -> execute -> audit, one road for every operation. */
#include <stdio.h>
#include <string.h>

#include "service/service.h"
#include "util/util.h"

int kms_gate_begin(kms_request *rq, kms_client *client, const char *operation)
{
    memset(rq, 0, sizeof *rq);
    kms_error_clear();
    rq->client = client;
    rq->operation = operation;
    KMS_ENSURE(client != NULL, KMS_ERR_VALIDATION, "no client");
    /* Authenticate: the client carries the caller established at kms_client_open (the IAM issue
     * replaces this with access keys, sessions and MFA). */
    KMS_ENSURE(client->caller.arn[0] != '\0', KMS_ERR_ACCESS_DENIED, "no authenticated caller");
    return 0;
}

/* The account that owns a resource ARN ("arn:aws:kms:REGION:ACCOUNT:..."), or NULL for "*". */
static int arn_account(const char *arn, char out[13])
{
    if (strcmp(arn, "*") == 0) {
        out[0] = '\0';
        return 0;
    }
    const char *p = arn;
    for (int field = 0; field < 4; field++) {
        p = strchr(p, ':');
        if (p == NULL) {
            return -1;
        }
        p++;
    }
    const char *end = strchr(p, ':');
    if (end == NULL || end - p != 12) {
        return -1;
    }
    memcpy(out, p, 12);
    out[12] = '\0';
    return 0;
}

int kms_gate_authorize(kms_request *rq, const char *action, const char *resource_arn)
{
    char account[13];
    rq->action = action;
    KMS_ENSURE(arn_account(resource_arn, account) == 0, KMS_ERR_ACCESS_DENIED,
               "User: %s is not authorized to perform: %s on resource: %s", rq->client->caller.arn,
               action, resource_arn);
    /* Until the IAM issue brings policies, the rule is AWS's default key policy alone: the
     * account's own principals may use the account's keys; nobody else may. Explicit denies and
     * finer grants arrive with the policy evaluator. */
    KMS_ENSURE(account[0] == '\0' || strcmp(account, rq->client->caller.account_id) == 0,
               KMS_ERR_ACCESS_DENIED,
               "User: %s is not authorized to perform: %s on resource: %s because no "
               "resource-based policy allows the %s action",
               rq->client->caller.arn, action, resource_arn, action);
    rq->authorized = true;
    return 0;
}

int kms_gate_end(kms_request *rq, int rc)
{
    /* Audit: the audit issue writes one durable CloudTrail-style record here for every request,
     * allowed or denied, and turns a failed write into a failed operation. */
    if (rc == 0 && !rq->authorized) {
        /* An operation that succeeded without an authorization decision is a bug: fail closed. */
        return kms_raise(KMS_ERR_INTERNAL, "%s ran without an authorization decision",
                         rq->operation);
    }
    return rc;
}
