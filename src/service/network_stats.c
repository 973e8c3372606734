/* kms_client_stats: the figures a server's /metrics shows of the library (include/kms/server.h):
 * the HSM session pool and the audit trail's group-commit flush sizes. */
#include <stdlib.h>

#include "kms/server.h"
#include "remote/remote.h"
#include "service/client.h"
#include "store/store.h"
#include "util/util.h"

/* [[le, count]...]: le a number, the last "+Inf" (as Prometheus names it). */
static json_t *flush_buckets(const kms_audit_flush_stats *f)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < KMS_AUDIT_FLUSH_BUCKETS; i++) {
        json_t *b = i + 1 < KMS_AUDIT_FLUSH_BUCKETS
                        ? json_pack("[I, I]", (json_int_t)1 << i, (json_int_t)f->buckets[i])
                        : json_pack("[s, I]", "+Inf", (json_int_t)f->buckets[i]);
        if (json_array_append_new(list, b) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

int kms_client_stats(kms_client *client, char **stats_json)
{
    size_t open = 0, in_use = 0, max = 0;
    uint64_t hsm_wait = 0;
    kms_audit_flush_stats f;
    json_t *buckets = NULL, *stats = NULL;
    int r = -1;
    KMS_ENSURE(stats_json != NULL, KMS_ERR_VALIDATION, "no place for the figures");
    *stats_json = NULL;
    KMS_ENSURE(client != NULL, KMS_ERR_VALIDATION, "no client");
    KMS_GUARD(kms_remote_local_only(client->remote, "kms_client_stats"));
    kms_hsm_pool_stats(client->keystore.hsm, &open, &in_use, &max, &hsm_wait); /* keys token */
    /* The trail opens at the first request: until then, no flushes. */
    pthread_mutex_lock(&client->audit_lock);
    kms_audit_flush_stats_get(client->audit, &f);
    pthread_mutex_unlock(&client->audit_lock);
    if ((buckets = flush_buckets(&f)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    uint64_t db_wait = kms_store_wait_ns(client->store);
    stats = json_pack("{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:O}, s:{s:I, s:I, s:I, s:I}}",
                      "HsmSessions", "Open", (json_int_t)open, "InUse", (json_int_t)in_use, "Max",
                      (json_int_t)max, "AuditFlushes", "Count", (json_int_t)f.count, "Records",
                      (json_int_t)f.records, "SyncNanoseconds", (json_int_t)f.sync_ns, "Buckets",
                      buckets, "WaitNanoseconds", "AuditAppend", (json_int_t)f.append_wait_ns,
                      "AuditLock", (json_int_t)f.lock_wait_ns, "Database", (json_int_t)db_wait,
                      "HsmSession", (json_int_t)hsm_wait);
    if (stats == NULL || (*stats_json = json_dumps(stats, JSON_COMPACT)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(buckets);
    json_decref(stats);
    return r;
}
