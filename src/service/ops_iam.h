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
extern const kms_op kms_ops_iam_table[];
extern const size_t kms_ops_iam_table_count;
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

#endif
