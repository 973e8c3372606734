/* Grants as the gate consults them (ops_grants.c). Private to src/service. */
#ifndef KMS_SERVICE_OPS_GRANTS_H
#define KMS_SERVICE_OPS_GRANTS_H

#include <jansson.h>

#include "service/gate.h"

/* 1 when a grant of rec allows the caller `action` with the request's encryption context, 0 when
 * none does, -1 on error. */
int kms_ops_grants_allow(kms_request *rq, const char *action, const kms_key_record *rec)
    __attribute__((warn_unused_result));
/* GrantTokens of a request: at most 10, each one a token CreateGrant could have issued
 * (InvalidGrantTokenException). */
int kms_ops_grants_tokens_check(json_t *req) __attribute__((warn_unused_result));

#endif
