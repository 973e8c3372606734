/* Shared by the AWS Organizations files of src/iam (iam_org*.c): the organization a call acts on,
 * its ARNs and the lookups one file makes in another's tables. Not for use outside src/iam. */
#ifndef KMS_IAM_IAM_ORG_H
#define KMS_IAM_IAM_ORG_H

#include "iam/iam_internal.h"

#define IAM_SCP_TYPE "SERVICE_CONTROL_POLICY"

typedef struct org_info {
    char org_id[16];
    char root_id[16];
    char mgmt[13];
} org_info;

/* ---- The organization (iam_org.c) ----------------------------------------------------------- */
/* Begins a query on behalf of the management account of account_id's organization: NoSuchEntity
 * when the account has none, AccessDenied for a member account (the query is then ended). */
int kms_iam_org_begin(kms_iam *iam, iam_q *q, bool write, const char *account_id, org_info *org)
    __attribute__((warn_unused_result));
void kms_iam_org_account_arn(const org_info *o, const char *account, char *out, size_t size);
void kms_iam_org_ou_arn(const org_info *o, const char *ou, char *out, size_t size);
void kms_iam_org_root_arn(const org_info *o, char *out, size_t size);
/* {member: items} as a list response; takes items (even on failure). */
int kms_iam_org_list_wrap(const char *member, json_t **items, json_t **out)
    __attribute__((warn_unused_result));

/* ---- OUs (iam_org_units.c) ------------------------------------------------------------------ */
/* An OU of the organization: 1 found (name and parent copied when not NULL), 0 not, -1 error. */
int kms_iam_org_ou_get(iam_q *q, const org_info *o, const char *ou_id, char *name, size_t name_size,
                       char *parent, size_t parent_size) __attribute__((warn_unused_result));
/* NoSuchEntity ("ParentNotFoundException") unless parent is the root or an OU of the org. */
int kms_iam_org_parent_check(iam_q *q, const org_info *o, const char *parent_id)
    __attribute__((warn_unused_result));

/* ---- Member accounts (iam_org_accounts.c) --------------------------------------------------- */
/* A member account of the organization: 1 found (its name copied), 0 not, -1 error. */
int kms_iam_org_member_name(iam_q *q, const org_info *o, const char *account, char *name,
                            size_t name_size) __attribute__((warn_unused_result));

/* ---- Service control policies (iam_org_scp.c) ----------------------------------------------- */
/* Attaches an SCP to a root, OU or account (no checks). */
int kms_iam_org_attach_tx(iam_q *q, const char *policy_id, const char *target_id)
    __attribute__((warn_unused_result));
/* Detaches every SCP from a target. */
int kms_iam_org_detach_all_tx(iam_q *q, const char *target_id) __attribute__((warn_unused_result));

#endif
