/* The AWS Private CA operations of kms_call: "acm-pca:CreateCertificateAuthority", ... Each
 * name is also the IAM action it is authorised as, on the CA's ARN
 * (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID), or "*" for creating and listing.
 * Private to src/service. */
#ifndef KMS_SERVICE_OPS_PKI_H
#define KMS_SERVICE_OPS_PKI_H

#include "service/dispatch.h"

/* The operation of that name ("acm-pca:..."), or NULL. */
const kms_op *kms_ops_pki_find(const char *name);
/* Their names, NULL-terminated. */
const char *const *kms_ops_pki_names(void);

#endif
