/* Tags of keys (ops_tags.c): TagResource, UntagResource, ListResourceTags, and the Tags member
 * of CreateKey. Private to src/service. */
#ifndef KMS_SERVICE_OPS_TAGS_H
#define KMS_SERVICE_OPS_TAGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "service/gate.h"
#include "store/store.h"

/* The Tags member of req ([{"TagKey", "TagValue"}]) checked as AWS checks it: each key 1 to 128
 * characters and each value at most 256 (ValidationException), letters, numbers, spaces and
 * _ . : / = + - @ only, no key beginning with aws: and no key twice (TagException), at most
 * KMS_STORE_TAGS_MAX (LimitExceededException). *tags (malloc'd, free it; its strings borrow
 * from req) and *n; none when the member is absent and not required. */
int kms_ops_tags_read(json_t *req, bool required, kms_tag **tags, size_t *n)
    __attribute__((warn_unused_result));

int kms_ops_tags_tag_resource(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_tags_untag_resource(kms_request *rq, json_t *req, json_t **resp);
int kms_ops_tags_list_resource_tags(kms_request *rq, json_t *req, json_t **resp);

#endif
