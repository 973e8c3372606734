/* IAM API Reference, "EvaluationResult", "Statement", "ResourceSpecificResult": the shape of the
 * simulators' answers. The positions of a matched statement are those IAM gives (the AWS CLI's
 * simulate-custom-policy example: a one-line document whose Statement object opens at offset 36
 * and closes at 165 is reported as StartPosition {1, 38}, EndPosition {1, 167}): the line, and
 * the column just past the brace, counted from 1. */
#include <stdlib.h>
#include <string.h>

#include "service/simulate_shape.h"

/* ---- Statement positions ------------------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    return p;
}

/* Past one JSON value starting at p (the document compiled, so it is well formed). */
static const char *skip_value(const char *p)
{
    int depth = 0;

    do {
        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0') {
                    p++;
                }
            }
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (depth == 0) {
            while (*p != '\0' && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
                   *p != '\t' && *p != '\r') {
                p++;
            }
            return p;
        }
        if (*p != '\0') {
            p++;
        }
    } while (depth > 0 && *p != '\0');
    return p;
}

/* The offsets of the braces of statement `index` of the document text; -1 if not found. */
static int statement_span(const char *text, size_t index, size_t *open, size_t *close)
{
    const char *p = skip_ws(text);

    if (*p != '{') {
        return -1;
    }
    p = skip_ws(p + 1);
    while (*p == '"') {
        const char *key = p + 1;
        const char *v = skip_ws(skip_value(p));
        bool statement = strncmp(key, "Statement\"", 10) == 0;
        if (*v != ':') {
            return -1;
        }
        v = skip_ws(v + 1);
        if (statement && *v == '{' && index == 0) {
            *open = (size_t)(v - text);
            *close = (size_t)(skip_value(v) - 1 - text);
            return 0;
        }
        if (statement && *v == '[') {
            const char *e = skip_ws(v + 1);
            for (size_t i = 0; *e != ']' && *e != '\0'; i++) {
                if (i == index && *e == '{') {
                    *open = (size_t)(e - text);
                    *close = (size_t)(skip_value(e) - 1 - text);
                    return 0;
                }
                e = skip_ws(skip_value(e));
                e = *e == ',' ? skip_ws(e + 1) : e;
            }
            return -1;
        }
        p = skip_ws(skip_value(v));
        p = *p == ',' ? skip_ws(p + 1) : p;
    }
    return -1;
}

static json_t *position(const char *text, size_t offset)
{
    long line = 1;
    size_t line_start = 0;

    for (size_t i = 0; i < offset && text[i] != '\0'; i++) {
        if (text[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    return json_pack("{s:I, s:I}", "Line", (json_int_t)line, "Column",
                     (json_int_t)(offset - line_start + 2));
}

/* ---- MissingContextValues -------------------------------------------------------------------- */

static bool names_action(json_t *patterns, const char *action)
{
    size_t i;
    json_t *v = NULL;

    if (json_is_string(patterns)) {
        return kms_policy_glob(json_string_value(patterns), action, true);
    }
    json_array_foreach(patterns, i, v)
    {
        if (json_is_string(v) && kms_policy_glob(json_string_value(v), action, true)) {
            return true;
        }
    }
    return false;
}

static bool applies(json_t *st, const char *action)
{
    json_t *a = json_object_get(st, "Action");
    json_t *na = json_object_get(st, "NotAction");

    return a != NULL ? names_action(a, action) : na != NULL && !names_action(na, action);
}

static bool listed(json_t *list, const char *key)
{
    size_t i;
    json_t *v = NULL;

    json_array_foreach(list, i, v)
    {
        if (strcasecmp(json_string_value(v), key) == 0) {
            return true;
        }
    }
    return false;
}

/* The condition keys of doc's statements for the action that the context does not give. */
static int missing_keys(const char *text, const kms_eval_input *in, json_t *missing)
{
    json_t *doc = json_loads(text, 0, NULL);
    json_t *sts = json_object_get(doc, "Statement");
    size_t n = json_is_array(sts) ? json_array_size(sts) : 1;
    int r = 0;

    for (size_t i = 0; i < n && r == 0; i++) {
        json_t *st = json_is_array(sts) ? json_array_get(sts, i) : sts;
        json_t *cond = json_object_get(st, "Condition");
        const char *op = NULL;
        json_t *keys = NULL;
        if (!json_is_object(cond) || !applies(st, in->action)) {
            continue;
        }
        json_object_foreach(cond, op, keys)
        {
            const char *key = NULL;
            json_t *unused = NULL;
            json_object_foreach(keys, key, unused)
            {
                if ((in->ctx == NULL || kms_policy_ctx_get(in->ctx, key) == NULL) &&
                    !listed(missing, key) &&
                    json_array_append_new(missing, json_string(key)) != 0) {
                    r = -1;
                }
            }
        }
    }
    json_decref(doc);
    return r;
}

/* ---- The result -------------------------------------------------------------------------------
 */

static const kms_sim_source *source_of(const kms_sim_source *s, size_t n, const kms_policy *p)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].policy == p) {
            return &s[i];
        }
    }
    return NULL;
}

static json_t *matched_json(const kms_eval_result *res, const kms_sim_source *sources,
                            size_t nsources)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < res->match_count; i++) {
        const kms_eval_match *m = &res->matches[i];
        /* IAM: under an explicit deny, the denying statements are the only ones listed. */
        if (res->decision == KMS_DECISION_EXPLICIT_DENY && !m->deny) {
            continue;
        }
        const kms_sim_source *src = source_of(sources, nsources, m->policy);
        json_t *st =
            json_pack("{s:s}", "SourcePolicyId",
                      src != NULL && src->id != NULL ? src->id : kms_policy_label(m->policy));
        size_t open = 0;
        size_t close = 0;
        if (st == NULL || json_array_append_new(list, st) != 0) {
            json_decref(list);
            return NULL;
        }
        if (src != NULL && src->type != NULL &&
            json_object_set_new(st, "SourcePolicyType", json_string(src->type)) != 0) {
            json_decref(list);
            return NULL;
        }
        if (src != NULL && src->text != NULL &&
            statement_span(src->text, m->statement, &open, &close) == 0 &&
            (json_object_set_new(st, "StartPosition", position(src->text, open)) != 0 ||
             json_object_set_new(st, "EndPosition", position(src->text, close)) != 0)) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static int add_details(json_t *o, const kms_eval_input *in, const kms_eval_result *res)
{
    if (strcmp(in->resource, "*") != 0 &&
        json_object_set_new(o, "EvalDecisionDetails", json_object()) != 0) {
        return -1;
    }
    if (in->boundary != NULL &&
        json_object_set_new(
            o, "PermissionsBoundaryDecisionDetail",
            json_pack("{s:b}", "AllowedByPermissionsBoundary", !res->boundary_denied)) != 0) {
        return -1;
    }
    if (in->scp_levels > 0 &&
        json_object_set_new(o, "OrganizationsDecisionDetail",
                            json_pack("{s:b}", "AllowedByOrganizations", !res->scp_denied)) != 0) {
        return -1;
    }
    return 0;
}

json_t *kms_sim_result_json(const kms_eval_input *in, const kms_eval_result *res,
                            const kms_sim_source *sources, size_t nsources, bool resources_given)
{
    const char *decision = kms_policy_decision_name(res->decision);
    json_t *missing = json_array();
    json_t *matched = matched_json(res, sources, nsources);
    json_t *o = NULL;

    for (size_t i = 0; missing != NULL && i < nsources; i++) {
        if (sources[i].text != NULL && missing_keys(sources[i].text, in, missing) != 0) {
            goto fail;
        }
    }
    if (missing == NULL || matched == NULL) {
        goto fail;
    }
    if (resources_given) {
        /* The keys a named resource misses are under its ResourceSpecificResults. */
        json_t *specific =
            json_pack("[{s:s, s:s, s:O, s:O, s:{}}]", "EvalResourceName", in->resource,
                      "EvalResourceDecision", decision, "MatchedStatements", matched,
                      "MissingContextValues", missing, "EvalDecisionDetails");
        o = json_pack("{s:s, s:s, s:s, s:O, s:[], s:o}", "EvalActionName", in->action,
                      "EvalResourceName", in->resource, "EvalDecision", decision,
                      "MatchedStatements", matched, "MissingContextValues",
                      "ResourceSpecificResults", specific);
    } else {
        o = json_pack("{s:s, s:s, s:s, s:O, s:O}", "EvalActionName", in->action, "EvalResourceName",
                      in->resource, "EvalDecision", decision, "MatchedStatements", matched,
                      "MissingContextValues", missing);
    }
    if (o == NULL || add_details(o, in, res) != 0) {
        goto fail;
    }
    json_decref(missing);
    json_decref(matched);
    return o;
fail:
    json_decref(o);
    json_decref(missing);
    json_decref(matched);
    return NULL;
}
