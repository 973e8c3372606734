/* The AWS Certificate Manager operations of kms_call: "acm:RequestCertificate", ... Each name
 * is also the IAM action it is authorised as, on the certificate's ARN
 * (arn:aws:acm:REGION:ACCOUNT:certificate/ID), or "*" for requesting, importing and listing.
 * Private to src/service. */
#ifndef KMS_SERVICE_OPS_ACM_H
#define KMS_SERVICE_OPS_ACM_H

#include "service/dispatch.h"

/* The operation of that name ("acm:..."), or NULL. */
const kms_op *kms_ops_acm_find(const char *name);
/* Their names, NULL-terminated. */
const char *const *kms_ops_acm_names(void);

#endif
