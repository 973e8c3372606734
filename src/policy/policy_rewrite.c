/* Deleted principals in policy documents (policy.h "Deleted principals"): the ARN of a deleted
 * user or role becomes its unique id, so that a principal re-created under the same name does
 * not inherit what the old one was given (IAM User Guide, "AWS JSON policy elements:
 * Principal", IAM roles: "If you delete the role and then recreate it ..."). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy_internal.h"

bool kms_policy_is_unique_id(const char *s)
{
    if (strncmp(s, "AIDA", 4) != 0 && strncmp(s, "AROA", 4) != 0) {
        return false;
    }
    size_t n = 4;
    for (; s[n] != '\0'; n++) {
        if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9'))) {
            return false;
        }
    }
    return n == 21;
}

/* One "AWS" value (a string or an array of strings): exact matches of arn replaced. Returns the
 * number replaced, -1 on allocation failure. */
static int replace_values(json_t *aws, const char *arn, const char *unique_id)
{
    int n = 0;
    if (json_is_string(aws)) {
        if (strcmp(json_string_value(aws), arn) != 0) {
            return 0;
        }
        return json_string_set(aws, unique_id) == 0 ? 1 : -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(aws, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), arn) == 0) {
            if (json_string_set(v, unique_id) != 0) {
                return -1;
            }
            n++;
        }
    }
    return n;
}

static int replace_in_statement(json_t *st, const char *arn, const char *unique_id)
{
    static const char *const members[] = {"Principal", "NotPrincipal"};
    int total = 0;
    for (size_t m = 0; m < 2; m++) {
        json_t *aws = json_object_get(json_object_get(st, members[m]), "AWS");
        int n = aws != NULL ? replace_values(aws, arn, unique_id) : 0;
        if (n < 0) {
            return -1;
        }
        total += n;
    }
    return total;
}

int kms_policy_principal_replace(const char *doc, const char *arn, const char *unique_id,
                                 char **out)
{
    int r = -1;
    int n = 0;
    json_t *root = NULL;
    *out = NULL;
    KMS_ENSURE(doc != NULL && arn != NULL && unique_id != NULL && arn[0] != '\0', KMS_ERR_INTERNAL,
               "kms_policy_principal_replace: bad arguments");
    /* Always parsed: JSON may spell the ARN with escapes ("user\/erin", "\u0065rin"), which a
     * search of the raw text would miss. */
    root = json_loads(doc, 0, NULL);
    json_t *stmts = json_object_get(root, "Statement");
    if (json_is_object(stmts)) {
        n = replace_in_statement(stmts, arn, unique_id);
    } else if (json_is_array(stmts)) {
        size_t i;
        json_t *st;
        json_array_foreach(stmts, i, st)
        {
            int k = replace_in_statement(st, arn, unique_id);
            if (k < 0) {
                n = -1;
                break;
            }
            n += k;
        }
    }
    if (n < 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (n > 0) {
        *out = json_dumps(root, JSON_INDENT(2));
        if (*out == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    r = 0;
out:
    json_decref(root);
    return r;
}
