/* The service's side of reading the audit trail: validate-logs (against the HSM's anchor and an
 * anchor kept off the machine), lookup-events and usage-report bounded by the anchor, the digest
 * key's public half. src/audit reads the files; this file finds the key and the anchor. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote/remote.h"
#include "service/audit_trail.h"
#include "service/internal_keys.h"
#include "service/ops.h"
#include "util/util.h"

/* ---- Reading the trail ------------------------------------------------------------------- */

int kms_audit_public_key(kms_client *client, char **pem)
{
    KMS_ENSURE(client != NULL && pem != NULL, KMS_ERR_VALIDATION, "no client");
    KMS_GUARD(kms_remote_local_only(client->remote, "get-audit-public-key"));
    KMS_GUARD(kms_audit_trail_spki_loaded(client));
    return kms_audit_public_key_pem(client->audit_spki, client->audit_spki_len, pem);
}

static int time_arg(const char *s, const char *what, int64_t *out)
{
    *out = 0;
    if (s == NULL) {
        return 0;
    }
    *out = kms_audit_parse_time(s);
    KMS_ENSURE(*out >= 0, KMS_ERR_VALIDATION,
               "%s '%s' is not a time: give ISO 8601 (2026-11-28T07:00:00Z) or epoch seconds", what,
               s);
    return 0;
}

#define VALIDATE_ATTEMPTS 5

static bool has_problem(const json_t *report, const char *kind)
{
    const json_t *p;
    size_t i;
    json_array_foreach(json_object_get(report, "Problems"), i, p)
    {
        const char *k = json_string_value(json_object_get(p, "Kind"));
        if (k != NULL && strcmp(k, kind) == 0) {
            return true;
        }
    }
    return false;
}

int kms_validate_logs(kms_client *client, const char *start_time, const char *end_time,
                      char **report_json)
{
    return kms_validate_logs_against(client, start_time, end_time, NULL, report_json);
}

int kms_validate_logs_against(kms_client *client, const char *start_time, const char *end_time,
                              const char *expect_anchor, char **report_json)
{
    int64_t start, end;
    json_t *report = NULL;
    KMS_ENSURE(client != NULL && report_json != NULL, KMS_ERR_VALIDATION, "no client");
    *report_json = NULL;
    KMS_GUARD(kms_remote_local_only(client->remote, "validate-logs"));
    KMS_GUARD(time_arg(start_time, "StartTime", &start));
    KMS_GUARD(time_arg(end_time, "EndTime", &end));
    KMS_GUARD(kms_audit_trail_spki_loaded(client));
    /* The anchor, read from the HSM: what the trail must still reach; the HSM's MAC checks the
     * acks. A scan that meets a batch another process is writing sees its lines before its ack,
     * or part of a line: records reported unacknowledged or torn are checked again (a few
     * times, then reported). A torn write that stays is reported every time. */
    int r = 0;
    for (int attempt = 0; r == 0 && attempt < VALIDATE_ATTEMPTS; attempt++) {
        kms_trail_trust t;
        json_decref(report);
        report = NULL;
        r = kms_audit_trail_trust_load(client, &t);
        if (r == 0) {
            r = kms_audit_validate_against(t.dir, client->audit_spki, client->audit_spki_len,
                                           &t.trust, expect_anchor, start, end, &report);
        }
        kms_audit_trail_trust_clean_up(&t);
        if (r == 0 && !has_problem(report, "unacknowledged") && !has_problem(report, "torn")) {
            break;
        }
    }
    if (r == 0) {
        *report_json = json_dumps(report, JSON_INDENT(2));
        json_decref(report);
        KMS_ENSURE(*report_json != NULL, KMS_ERR_INTERNAL, "out of memory");
    }
    return r;
}

/* The trail holds the records of every account of the home, and is read by the home's own
 * account only: a member account's administrator would read the management account's events
 * (CloudTrail shows an account the events of that account). */
static int trail_reader(const kms_request *rq, const char *action)
{
    KMS_ENSURE(strcmp(rq->who->id.account_id, rq->client->cfg.account_id) == 0,
               KMS_ERR_ACCESS_DENIED,
               "User: %s is not authorized to perform: %s: this trail is read by account %s only",
               rq->who->id.arn, action, rq->client->cfg.account_id);
    return 0;
}

/* cloudtrail:LookupEvents, as the CloudTrail API takes it. */
int kms_audit_trail_lookup_events(kms_request *rq, json_t *req, json_t **resp)
{
    const char *start_s = NULL, *end_s = NULL, *token = NULL;
    long long max = 0;
    kms_audit_query q = {0};
    KMS_GUARD(kms_gate_authorize(rq, "cloudtrail:LookupEvents", "*"));
    KMS_GUARD(trail_reader(rq, "cloudtrail:LookupEvents"));
    json_t *attrs = json_object_get(req, "LookupAttributes");
    KMS_ENSURE(attrs == NULL || (json_is_array(attrs) && json_array_size(attrs) <= 1),
               KMS_ERR_VALIDATION,
               "LookupAttributes takes at most one {AttributeKey, AttributeValue}");
    if (json_array_size(attrs) == 1) {
        json_t *a = json_array_get(attrs, 0);
        q.attribute_key = json_string_value(json_object_get(a, "AttributeKey"));
        q.attribute_value = json_string_value(json_object_get(a, "AttributeValue"));
        KMS_ENSURE(q.attribute_key != NULL && q.attribute_value != NULL, KMS_ERR_VALIDATION,
                   "a lookup attribute needs AttributeKey and AttributeValue strings");
    }
    KMS_GUARD(kms_request_string(req, "StartTime", false, 1, 64, &start_s));
    KMS_GUARD(kms_request_string(req, "EndTime", false, 1, 64, &end_s));
    KMS_GUARD(kms_request_string(req, "NextToken", false, 1, 1024, &token));
    KMS_GUARD(kms_request_int(req, "MaxResults", false, 1, 50, 50, &max));
    KMS_GUARD(time_arg(start_s, "StartTime", &q.start));
    KMS_GUARD(time_arg(end_s, "EndTime", &q.end));
    q.max_results = (int)max;
    q.next_token = token;
    /* Only records the chain and the HSM's acks cover are listed. */
    kms_trail_trust t;
    KMS_GUARD(kms_audit_trail_trust_load(rq->client, &t));
    q.trust = &t.trust;
    int r = kms_audit_lookup(t.dir, &q, resp);
    kms_audit_trail_trust_clean_up(&t);
    return r;
}

/* cloudtrail:GetUsageReport: requests per key and per operation (authorised as LookupEvents,
 * which reads the same records). */
int kms_audit_trail_usage_report(kms_request *rq, json_t *req, json_t **resp)
{
    const char *start_s = NULL, *end_s = NULL;
    int64_t start, end;
    KMS_GUARD(kms_gate_authorize(rq, "cloudtrail:LookupEvents", "*"));
    KMS_GUARD(trail_reader(rq, "cloudtrail:LookupEvents"));
    KMS_GUARD(kms_request_string(req, "StartTime", false, 1, 64, &start_s));
    KMS_GUARD(kms_request_string(req, "EndTime", false, 1, 64, &end_s));
    KMS_GUARD(time_arg(start_s, "StartTime", &start));
    KMS_GUARD(time_arg(end_s, "EndTime", &end));
    kms_trail_trust t;
    KMS_GUARD(kms_audit_trail_trust_load(rq->client, &t));
    int r = kms_audit_usage_report(t.dir, &t.trust, start, end, resp);
    kms_audit_trail_trust_clean_up(&t);
    return r;
}
