/* GetKeyLastUsage from the audit index (KMS API reference, GetKeyLastUsage): the newest record
 * of a successful cryptographic operation on a key, among the records the chain covers (the
 * index holds no others), and the time tracking began (the oldest record indexed). */
#include <stdlib.h>
#include <string.h>

#include "audit/audit_index_internal.h"
#include "util/util.h"

/* KeyLastUsageTrackingOperation: the operations whose use of a key is tracked. Resources of an
 * index walk resources_by_resource backwards in time, so the first match is the newest. */
static const char sql_last_use[] =
    "SELECT e.event_name, e.event_time, e.event_id, e.segment, e.offset, e.length "
    "FROM resource_names n JOIN resources r ON r.resource = n.id "
    "JOIN events e ON e.sequence = r.sequence "
    "WHERE n.arn = ?1 AND n.type = 'AWS::KMS::Key' AND e.error = 0 "
    "AND e.event_source = 'kms.amazonaws.com' AND e.event_type = 'AwsApiCall' "
    "AND e.event_name IN ('Decrypt', 'DeriveSharedSecret', 'Encrypt', 'GenerateDataKey', "
    "'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', "
    "'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'ReEncrypt', 'Sign', 'Verify', "
    "'VerifyMac') "
    "ORDER BY r.event_time DESC, r.sequence DESC LIMIT 1";
static const char sql_first_time[] = "SELECT min(event_time) FROM events";

/* The record's requestID, read from its line (NULL if it cannot be read or has none). */
static json_t *request_id(const kms_audit_index *x, kms_db_stmt *st)
{
    const char *segment = kms_db_column_is_null(st, 3) ? NULL : kms_db_column_text(st, 3);
    json_t *line = kms_audit_index_read_record(x, segment, kms_db_column_int64(st, 4),
                                               kms_db_column_int64(st, 5));
    json_t *rec = line != NULL ? json_loads(json_string_value(line), 0, NULL) : NULL;
    json_t *id = json_incref(json_object_get(rec, "requestID"));
    json_decref(rec);
    json_decref(line);
    if (!json_is_string(id)) {
        json_decref(id);
        return NULL;
    }
    return id;
}

/* *out: the usage object, or NULL when no such record is indexed. */
static int last_use(const kms_audit_index *x, const char *key_arn, json_t **out)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(x->c, sql_last_use, KMS_DB_PARAMS(kms_db_text(key_arn)), &st,
                         "cannot look up the key's last use");
    if (f <= 0) {
        kms_db_reset(st);
        return f;
    }
    json_t *use =
        json_pack("{s:s, s:I, s:s?, s:o?}", "Operation", kms_db_column_text(st, 0), "Timestamp",
                  (json_int_t)kms_db_column_int64(st, 1), "CloudTrailEventId",
                  kms_db_column_is_null(st, 2) ? NULL : kms_db_column_text(st, 2), "KmsRequestId",
                  request_id(x, st));
    kms_db_reset(st);
    KMS_ENSURE(use != NULL, KMS_ERR_INTERNAL, "out of memory");
    *out = use;
    return 0;
}

static int first_time(const kms_audit_index *x, int64_t *t)
{
    kms_db_stmt *st = NULL;
    *t = 0;
    int f = kms_db_first(x->c, sql_first_time, KMS_DB_NO_PARAMS, &st,
                         "cannot read when the trail began");
    if (f == 1 && !kms_db_column_is_null(st, 0)) {
        *t = kms_db_column_int64(st, 0);
    }
    kms_db_reset(st);
    return f < 0 ? -1 : 0;
}

int kms_audit_key_last_use(const char *dir, const kms_audit_trust *trust, const char *key_arn,
                           json_t **usage, int64_t *tracking_start)
{
    *usage = NULL;
    *tracking_start = 0;
    KMS_ENSURE(dir != NULL && key_arn != NULL, KMS_ERR_VALIDATION, "no key to look up");
    kms_audit_index x = {0};
    int r = -1;
    if (kms_audit_index_open(&x, dir, trust != NULL ? trust->index : NULL) == 0 &&
        kms_audit_index_catch_up(&x, trust) == 0 && last_use(&x, key_arn, usage) == 0 &&
        first_time(&x, tracking_start) == 0) {
        r = 0;
    }
    kms_audit_index_close(&x);
    if (r != 0) {
        json_decref(*usage);
        *usage = NULL;
    }
    return r;
}
