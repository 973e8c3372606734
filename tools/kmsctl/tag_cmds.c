/* --tags of the KMS commands (create-key, tag-resource): AWS KMS's tags are TagKey/TagValue
 * pairs, given as aws gives them: shorthand TagKey=K,TagValue=V or a JSON object. */
#include <stdlib.h>
#include <string.h>

#include "kmsctl.h"

/* One --tags value: TagKey=K,TagValue=V, or {"TagKey": K, "TagValue": V}. */
static json_t *parse_kms_tag(const struct command *cmd, const char *text)
{
    json_t *tag = NULL;
    if (text[0] == '{') {
        tag = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    } else {
        char *copy = strdup(text);
        char *rest = copy;
        char *item = NULL;
        tag = copy != NULL ? json_object() : NULL;
        while (tag != NULL && (item = strsep(&rest, ",")) != NULL) {
            char *eq = strchr(item, '=');
            if (eq == NULL || json_object_get(tag, item) != NULL) {
                json_decref(tag);
                tag = NULL;
                break;
            }
            *eq = '\0';
            if (json_object_set_new(tag, item, json_string(eq + 1)) != 0) {
                json_decref(tag);
                tag = NULL;
            }
        }
        free(copy);
    }
    if (!json_is_string(json_object_get(tag, "TagKey")) ||
        !json_is_string(json_object_get(tag, "TagValue")) || json_object_size(tag) != 2) {
        json_decref(tag);
        kmsctl_usage_error(cmd,
                           "argument --tags: expected TagKey=KEY,TagValue=VALUE or "
                           "{\"TagKey\": KEY, \"TagValue\": VALUE}, got '%s'",
                           text);
        return NULL;
    }
    return tag;
}

int kmsctl_run_tagged(const struct command *cmd, const struct globals *g, json_t *request)
{
    json_t *list = json_object_get(request, "Tags");
    if (json_is_array(list)) {
        json_t *tags = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            const char *text = json_string_value(v);
            /* An object (from --cli-input-json) goes to the service as it is. */
            json_t *tag = json_is_object(v) ? json_incref(v) : NULL;
            if (tag == NULL && tags != NULL && text != NULL) {
                tag = parse_kms_tag(cmd, text);
            }
            if (tag == NULL || json_array_append_new(tags, tag) != 0) {
                json_decref(tags);
                return text == NULL && !json_is_object(v)
                           ? kmsctl_usage_error(cmd, "argument --tags: expected text or objects")
                           : KMSCTL_EXIT_USAGE;
            }
        }
        if (json_object_set_new(request, "Tags", tags) != 0) {
            return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        }
    }
    return kmsctl_run_operation(cmd, g, request);
}
