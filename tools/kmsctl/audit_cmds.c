/* kmsctl's audit trail commands: lookup-events and usage-report (CloudTrail operations through
 * kms_call), validate-logs, get-audit-public-key and get-audit-anchor (local checks of the
 * trail's files and of what the HSM holds for it). */
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "kmsctl.h"

/* clang-format off */
#define O_START_TIME(what)                                                                         \
    {"start-time", OPT_STRING, 0, what " from this time on: ISO 8601 (2026-11-28T07:00:00Z) or "   \
                                  "epoch seconds"}
#define O_END_TIME(what)                                                                           \
    {"end-time", OPT_STRING, 0, what " up to this time: ISO 8601 or epoch seconds"}
#define O_END {NULL, 0, 0, NULL}
/* clang-format on */

static const struct opt_spec lookup_events_opts[] = {
    {"lookup-attributes", OPT_MAP, OPT_MAPS,
     "one filter: AttributeKey=K,AttributeValue=V with K one of EventName, Username, "
     "ResourceName, ResourceType, EventSource, ReadOnly, AccessKeyId, EventId; or, as the aws "
     "CLI takes it, JSON [{\"AttributeKey\": K, \"AttributeValue\": V}]"},
    O_START_TIME("events"),
    O_END_TIME("events"),
    {"max-results", OPT_INTEGER, 0, "events per page (1-50, default 50)"},
    {"next-token", OPT_STRING, 0, "NextToken of the previous response, for the next page"},
    O_END,
};

static const struct opt_spec usage_report_opts[] = {
    O_START_TIME("count requests"),
    O_END_TIME("count requests"),
    O_END,
};

static const struct opt_spec validate_logs_opts[] = {
    O_START_TIME("check digests and log files"),
    O_END_TIME("check digests and log files"),
    {"expect-anchor", OPT_STRING, 0,
     "SEQUENCE:HASH, an anchor printed by get-audit-anchor and kept off the machine: the trail "
     "must hold that record with that hash (catches a rollback of the whole home)"},
    O_END,
};

static const struct opt_spec anchor_opts[] = {
    O_END,
};

static const struct opt_spec public_key_opts[] = {
    {"outfile", OPT_PATH, 0, "write the PEM to this file instead of standard output"},
    O_END,
};

/* --lookup-attributes AttributeKey=EventName,AttributeValue=Encrypt -> the API's list of one. */
static int run_lookup_events(const struct command *cmd, const struct globals *g, json_t *request)
{
    json_t *attr = json_object_get(request, "LookupAttributes");
    if (json_is_object(attr)) {
        json_t *list = json_array();
        if (list == NULL || json_array_append(list, attr) != 0 ||
            json_object_set_new(request, "LookupAttributes", list) != 0) {
            return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        }
    }
    return kmsctl_run_operation(cmd, g, request);
}

static kms_client *open_client(const struct globals *g)
{
    return kmsctl_client_open(g);
}

/* SEQUENCE:HASH: a record number (no leading zeros) and 64 hex digits (the library checks the
 * same; here a bad value is a command-line error, before the home is opened). */
static bool anchor_arg_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 19 && s[0] != '0' && s[n] == ':' && strlen(s + n + 1) == 64 &&
           strspn(s + n + 1, "0123456789abcdefABCDEF") == 64;
}

static int run_validate_logs(const struct command *cmd, const struct globals *g, json_t *request)
{
    int r = KMSCTL_EXIT_SERVICE;
    char *report = NULL;
    json_t *parsed = NULL;
    kms_client *client = NULL;
    const char *expect = json_string_value(json_object_get(request, "ExpectAnchor"));
    if (expect != NULL && !anchor_arg_ok(expect)) {
        return kmsctl_usage_error(cmd,
                                  "argument --expect-anchor: '%s' is not SEQUENCE:HASH (a record "
                                  "number and 64 hex digits, as get-audit-anchor prints Anchor)",
                                  expect);
    }
    client = open_client(g);
    if (client == NULL ||
        kms_validate_logs_against(client, json_string_value(json_object_get(request, "StartTime")),
                                  json_string_value(json_object_get(request, "EndTime")), expect,
                                  &report) != 0) {
        r = kmsctl_service_error();
        goto out;
    }
    r = kmsctl_print_response(g, report);
    parsed = json_loads(report, 0, NULL);
    if (r == KMSCTL_EXIT_OK && !json_is_true(json_object_get(parsed, "Valid"))) {
        size_t n = json_array_size(json_object_get(parsed, "Problems"));
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the audit trail is not valid: %zu problem%s, listed in the report above", n,
                 n == 1 ? "" : "s");
        r = kmsctl_error_json("AuditLogInvalid", msg);
    }
out:
    json_decref(parsed);
    kms_string_free(report);
    kms_client_free(client);
    return r;
}

static int run_public_key(const struct command *cmd, const struct globals *g, json_t *request)
{
    int r = KMSCTL_EXIT_SERVICE;
    char *pem = NULL;
    const char *path = json_string_value(json_object_get(request, "Outfile"));
    if (kmsctl_check_output(cmd, g, "outfile", path) != KMSCTL_EXIT_OK) {
        return KMSCTL_EXIT_USAGE;
    }
    kms_client *client = open_client(g);
    if (client == NULL || kms_audit_public_key(client, &pem) != 0) {
        r = kmsctl_service_error();
        goto out;
    }
    FILE *f = path != NULL ? fopen(path, "w") : stdout;
    if (f == NULL) {
        r = kmsctl_usage_error(cmd, "argument --outfile: cannot create '%s'", path);
        goto out;
    }
    bool ok = fputs(pem, f) >= 0;
    ok = (path != NULL ? fclose(f) == 0 : fflush(f) == 0) && ok;
    r = ok ? KMSCTL_EXIT_OK : kmsctl_error_json("KMSInternalException", "kmsctl: write failed");
out:
    kms_string_free(pem);
    kms_client_free(client);
    return r;
}

static int run_anchor(const struct command *cmd, const struct globals *g, json_t *request)
{
    (void)cmd;
    (void)request;
    int r = KMSCTL_EXIT_SERVICE;
    char *anchor = NULL;
    kms_client *client = open_client(g);
    if (client == NULL || kms_audit_anchor_get(client, &anchor) != 0) {
        r = kmsctl_service_error();
        goto out;
    }
    r = kmsctl_print_response(g, anchor);
out:
    kms_string_free(anchor);
    kms_client_free(client);
    return r;
}

static int run_seal(const struct command *cmd, const struct globals *g, json_t *request)
{
    (void)cmd;
    (void)request;
    int r = KMSCTL_EXIT_SERVICE;
    char *result = NULL;
    kms_client *client = open_client(g);
    if (client == NULL || kms_audit_seal_now(client, &result) != 0) {
        r = kmsctl_service_error();
        goto out;
    }
    r = kmsctl_print_response(g, result);
out:
    kms_string_free(result);
    kms_client_free(client);
    return r;
}

/* clang-format off */
const struct command kmsctl_audit_commands[] = {
    {"lookup-events", "cloudtrail:LookupEvents", run_lookup_events, lookup_events_opts,
     "Look up audit events (CloudTrail records), newest first",
     "Finds the audit trail's records, newest first, as `aws cloudtrail lookup-events` does:\n"
     "at most one lookup attribute, a time range; every page of up to 50 (--max-results)\n"
     "events unless --max-items N stops after N (its NextToken goes back as --starting-token).\n"
     "Each event carries the whole record as CloudTrailEvent.\n"
     "Needs cloudtrail:LookupEvents.",
     "kmsctl lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=Decrypt \\\n"
     "    --start-time 2026-11-28T00:00:00Z --max-items 10"},
    {"usage-report", "cloudtrail:GetUsageReport", kmsctl_run_operation, usage_report_opts,
     "Count requests per key and per operation",
     "Counts the audit trail's requests in a period: per KMS key (with each operation and its\n"
     "errors) and per operation, the basis of a cost and usage report. Needs\n"
     "cloudtrail:LookupEvents.",
     "kmsctl usage-report --start-time 2026-11-01T00:00:00Z --end-time 2026-12-01T00:00:00Z"},
    {"validate-logs", NULL, run_validate_logs, validate_logs_opts,
     "Check the audit trail for tampering",
     "Checks the audit trail as `aws cloudtrail validate-logs` does: every digest's signature\n"
     "(with the digest key held in the HSM) and the chain of digests, every log file's hash,\n"
     "and every record's sequence number and link to the record before it. Prints a JSON\n"
     "report naming each modified, missing, out-of-order or unexpected file and record; exits\n"
     "254 if anything is wrong. Records after the newest digest are counted as Unsigned.\n"
     "The HSM's anchor catches digests deleted or rolled back; but SoftHSM's token is a file,\n"
     "and a restored older copy of both HOME/audit and the token directory rolls the anchor\n"
     "back too. --expect-anchor SEQUENCE:HASH (from get-audit-anchor, kept off the machine)\n"
     "catches that: the trail must hold that record with that hash.",
     "kmsctl validate-logs --start-time 2026-11-28T00:00:00Z\n"
     "kmsctl validate-logs --expect-anchor 1042:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b"
     "822cd15d6c15b0f00a08"},
    {"get-audit-public-key", NULL, run_public_key, public_key_opts,
     "Export the public key that verifies audit digests (PEM)",
     "Prints the public half of the HSM key that signs the audit digests, so that anyone can\n"
     "check a digest without kmsctl:\n"
     "  openssl dgst -sha256 -verify audit-key.pem \\\n"
     "      -signature HOME/audit/digests/N.json.sig HOME/audit/digests/N.json",
     "kmsctl get-audit-public-key --outfile audit-key.pem"},
    {"get-audit-anchor", NULL, run_anchor, anchor_opts,
     "Print the audit trail's anchor, to keep off the machine",
     "Prints the anchor the HSM holds for the audit trail: the last sealed record's sequence\n"
     "number and chain hash (SHA-256 of its line), as {\"Anchor\": \"SEQUENCE:HASH\",\n"
     "\"Sequence\": N, \"Hash\": \"...\", \"DigestFile\": \"digests/...\"}. Keep Anchor somewhere\n"
     "the machine cannot change (a ticket, another host, paper) and check the trail against it\n"
     "later with validate-logs --expect-anchor: that catches a rollback of the whole home,\n"
     "which the HSM's anchor cannot while the token is a file (see README, Security).",
     "kmsctl get-audit-anchor --output text --query Anchor > anchor-$(date +%F).txt\n"
     "kmsctl validate-logs --expect-anchor \"$(cat anchor-2026-12-01.txt)\""},
    {"seal-audit-log", NULL, run_seal, anchor_opts,
     "Sign the audit trail's open segment now",
     "Seals the open segment of the audit trail: its records are checked against the chain and\n"
     "the HSM anchor, a digest is written and signed by the HSM key, the segment becomes\n"
     "read-only. The trail is otherwise sealed once audit_digest_period_seconds (config.json,\n"
     "default 3600) has passed since the newest digest, when a segment reaches 16 MiB, and by\n"
     "run-scheduler; commands leave their records in the open segment, where the record chain\n"
     "and the HSM anchor cover them and validate-logs counts them as UnsignedTail. Seal before\n"
     "a backup, or before handing the trail to an auditor. Prints the anchor as\n"
     "get-audit-anchor does, with \"Sealed\": false when there was nothing to seal.",
     "kmsctl seal-audit-log\n"
     "kmsctl seal-audit-log --output text --query Anchor > anchor-$(date +%F).txt"},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */
