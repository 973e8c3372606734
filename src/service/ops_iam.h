/* The IAM, STS and Organizations operations of kms_call: "iam:CreateUser", "sts:AssumeRole",
 * "organizations:CreatePolicy" ... Private to src/service.
 *
 * Each operation's name is also the IAM action it is authorised as (the IAM Service
 * Authorization Reference names them so), and its handler runs behind the gate like every KMS
 * operation: it reads its members, calls kms_gate_authorize (or ..._trust) before it reads or
 * writes anything, validates every policy document it receives with kms_policy_compile, and
 * only then calls src/iam. */
#ifndef KMS_SERVICE_OPS_IAM_H
#define KMS_SERVICE_OPS_IAM_H

#include <stddef.h>

#include "service/dispatch.h"
#include "service/request.h"

/* THE entry point dispatch uses: the operation of that name, or NULL. */
const kms_op *kms_ops_iam_find(const char *name);
/* The names of every IAM, STS and Organizations operation, NULL-terminated. */
const char *const *kms_ops_iam_names(void);

/* ---- Shared by ops_iam.c, ops_sts.c, ops_org.c and ops_simulate.c only --------------------- */

/* Each file's operations. */
extern const kms_op kms_ops_iam_policies_table[];
extern const size_t kms_ops_iam_policies_table_count;
extern const kms_op kms_ops_iam_credentials_table[];
extern const size_t kms_ops_iam_credentials_table_count;
extern const kms_op kms_ops_sts_table[];
extern const size_t kms_ops_sts_table_count;
extern const kms_op kms_ops_org_table[];
extern const size_t kms_ops_org_table_count;
extern const kms_op kms_ops_simulate_table[];
extern const size_t kms_ops_simulate_table_count;

/* Refuses doc unless it compiles as a policy of that kind (MalformedPolicyDocumentException
 * naming the element, as src/policy words it). label names the document in the message. */
int kms_ops_iam_check_policy(const char *doc, kms_policy_kind kind, const char *label)
    __attribute__((warn_unused_result));
/* *resp = {member: obj} (takes obj); an object that already is a whole response (it holds
 * member) is passed on as it is. */
int kms_ops_iam_respond(json_t **resp, const char *member, json_t *obj)
    __attribute__((warn_unused_result));
/* An optional boolean member; *out keeps dflt when absent. */
int kms_ops_iam_req_bool(json_t *req, const char *name, bool dflt, bool *out)
    __attribute__((warn_unused_result));

/* ---- Shared by ops_iam.c, ops_iam_policies.c and ops_iam_credentials.c (ops_iam.c) -------- */

#define KMS_OPS_IAM_ARN_LEN 600

/* The caller's account. */
const char *kms_ops_iam_account_of(const kms_request *rq);

/* Reads the name member of `kind` and authorises the operation on that entity. */
int kms_ops_iam_authorize_entity(kms_request *rq, json_t *req, kms_iam_kind kind, const char **name)
    __attribute__((warn_unused_result));

/* Reads UserName (else the caller, as IAM does) and authorises the operation on that user. */
int kms_ops_iam_authorize_target_user(kms_request *rq, json_t *req, const char **name)
    __attribute__((warn_unused_result));

/* A permissions boundary names a managed policy: its default version must compile as an
 * identity-based policy before it is set. */
int kms_ops_iam_check_boundary(kms_request *rq, const char *policy_arn)
    __attribute__((warn_unused_result));

/* The ARN of user/group/role `name` with its path; "/" when it cannot be looked up (it does not
 * exist: the operation fails after the decision). */
void kms_ops_iam_entity_arn(kms_request *rq, kms_iam_kind kind, const char *name,
                            char arn[KMS_OPS_IAM_ARN_LEN]);

/* The client's IAM store. */
kms_iam *kms_ops_iam_iam_of(const kms_request *rq);

/* The ARN of a new entity at path (NULL "/"): arn:aws:iam::A:KIND/PATH/NAME. */
void kms_ops_iam_new_arn(const kms_request *rq, const char *kind, const char *path,
                         const char *name, char arn[KMS_OPS_IAM_ARN_LEN]);

/* The entity kind of the families of operations that exist for users, groups and roles
 * (PutUserPolicy, PutGroupPolicy, PutRolePolicy ...): it is in the operation's name. */
kms_iam_kind kms_ops_iam_op_kind(const kms_request *rq);

/* Marker and MaxItems of a list request (*max_items 0: the default). */
int kms_ops_iam_req_page(json_t *req, const char **marker, size_t *max_items)
    __attribute__((warn_unused_result));

/* obj, or its member `member` when obj is a whole response holding it. */
json_t *kms_ops_iam_unwrap(json_t *obj, const char *member);

#endif
