/* Deleted principals lose what policies and grants gave them (issue 15, item 4). Private to
 * src/service: DeleteUser and DeleteRole call it before they delete. */
#ifndef KMS_SERVICE_OPS_UNBIND_H
#define KMS_SERVICE_OPS_UNBIND_H

#include "iam/iam.h"
#include "service/request.h"

/* The user or role `name` of the caller's account (kind KMS_IAM_USER or KMS_IAM_ROLE) is about
 * to be deleted: every key policy Principal / NotPrincipal "AWS" value, every grant's grantee
 * and retiring principal, and every trust policy of the account's roles that names its ARN
 * exactly now names its unique id (AIDA... / AROA...) instead, as AWS shows a deleted
 * principal. The evaluator and the grants match a unique id only to the principal whose id it
 * is, so this changes nothing while the principal exists, and a principal re-created under the
 * same name matches none of it. Done BEFORE the deletion: if it fails, nothing is deleted (fail
 * closed). An entity that does not exist: nothing to do (the deletion then fails). */
int kms_ops_unbind_principal(kms_request *rq, kms_iam_kind kind, const char *name)
    __attribute__((warn_unused_result));

/* KMS API reference, PutKeyPolicy / CreateKey: a key policy naming a user or role that does not
 * exist is refused (MalformedPolicyDocumentException, "Policy contains a statement with one or
 * more invalid principals"): a name that is bound to nobody would bind to whoever is created
 * under it later. Only the accounts of this home are checked; doc was compiled already. */
int kms_ops_unbind_check_principals(kms_request *rq, const char *doc)
    __attribute__((warn_unused_result));

#endif
