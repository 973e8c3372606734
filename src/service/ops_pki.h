/* The AWS Private CA operations of kms_call: "acm-pca:CreateCertificateAuthority", ... Each
 * name is also the IAM action it is authorised as, on the CA's ARN
 * (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID), or "*" for creating and listing.
 * Private to src/service. */
#ifndef KMS_SERVICE_OPS_PKI_H
#define KMS_SERVICE_OPS_PKI_H

#include "pki/pki.h"
#include "service/dispatch.h"
#include "service/gate.h"

/* The operation of that name ("acm-pca:..."), or NULL. */
const kms_op *kms_ops_pki_find(const char *name);
/* Their names, NULL-terminated. */
const char *const *kms_ops_pki_names(void);

/* ---- Audit reports (ops_pki_report.c) ---- */

/* Writes CA's audit report (format JSON or CSV) to HOME/audit-report/CA_ID/ID.json|csv, with
 * ID.meta.json beside it; *resp {AuditReportId, S3Key (the path below HOME)}. bucket (AWS's
 * S3BucketName, NULL: none) is only recorded. ks: the caller's account's view. */
int kms_ops_pki_report_create(kms_request *rq, const kms_keystore *ks, const kms_pki_ca *ca,
                              const char *format, const char *bucket, json_t **resp)
    __attribute__((warn_unused_result));
/* *resp {AuditReportStatus, CreatedAt, S3Key, S3BucketName} of that report of the CA;
 * ResourceNotFoundException if it has none of that id. */
int kms_ops_pki_report_describe(kms_request *rq, const kms_pki_ca *ca, const char *report_id,
                                json_t **resp) __attribute__((warn_unused_result));

#endif
