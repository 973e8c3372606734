/* The scheduler's work (scheduler.c): rotations and the end of deletion windows, run as the
 * service. Private to src/service. */
#ifndef KMS_SERVICE_SCHEDULER_H
#define KMS_SERVICE_SCHEDULER_H

#include <jansson.h>
#include <stdint.h>

#include "kms/kms.h"

/* The serviceEventDetails of a RotateKey service event as AWS writes it (AWS KMS Developer
 * Guide, CloudTrail "RotateKey"): rotationType AUTOMATIC or ON_DEMAND, keyOrigin, the key
 * material ids before and after (version - 1 and version of key_arn) and keyId. NULL when out
 * of memory. */
json_t *kms_scheduler_rotate_key_event(const char *key_id, const char *key_arn,
                                       const char *rotation_type, uint32_t version);

/* The private CA's share of a run (scheduler_pca.c): CRLs reissued once half of their validity
 * has passed, DELETED CAs past their restore window deleted for good; the report gains
 * CrlsReissued and CertificateAuthoritiesDeleted, failures go to its Errors. */
int kms_scheduler_pca_run(kms_client *client, int64_t now, json_t *report)
    __attribute__((warn_unused_result));

#endif
