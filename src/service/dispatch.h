/* The operations of kms_call (dispatch.c): each operation's name, handler and the request
 * members it accepts. Private to src/service. */
#ifndef KMS_SERVICE_DISPATCH_H
#define KMS_SERVICE_DISPATCH_H

#include <jansson.h>

#include "service/gate.h"

/* Operation handlers: JSON request in, JSON response out (AWS shapes). */
typedef int (*kms_op_handler)(kms_request *rq, json_t *req, json_t **resp);

typedef struct kms_op {
    const char *name; /* "CreateKey" */
    kms_op_handler handler;
    const char *const *members; /* request members it accepts, NULL-terminated */
} kms_op;

const kms_op *kms_dispatch_find(const char *name);

/* kms_call's body, shared with kms_call_network: operation with request_json run through the
 * gate as caller (NULL: the client's own credentials). */
int kms_dispatch_call(kms_client *client, const char *operation, const char *request_json,
                      kms_gate_caller *caller, char **response_json)
    __attribute__((warn_unused_result));

#endif
