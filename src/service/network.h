/* kms_call_network's memory of the access keys it saw (network.c), per client: how many refused
 * authentications of each were recorded this minute, and when its last use was written to IAM.
 * Private to src/service. */
#ifndef KMS_SERVICE_NETWORK_H
#define KMS_SERVICE_NETWORK_H

#include <stdbool.h>
#include <stdint.h>

/* Refused authentications recorded per access key and minute; the rest are only counted. */
#define KMS_NETWORK_REFUSALS_RECORDED 10
/* Access keys remembered; the least recently seen one without a refusal recorded this minute
 * makes room (network.c). */
#define KMS_NETWORK_KEYS 256

/* IAM's words for an access key whose token is not its own (src/iam/iam_sts.c). */
#define KMS_NETWORK_INVALID_TOKEN "The security token included in the request is invalid."

typedef struct kms_network_keys kms_network_keys;

/* NULL on out-of-memory (raised). */
kms_network_keys *kms_network_keys_new(void);
void kms_network_keys_free(kms_network_keys *k);

#endif
