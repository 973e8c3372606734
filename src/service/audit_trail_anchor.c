/* The trail's anchor for operators (README "Security"): get-audit-anchor prints the record the
 * HSM's anchor covers, so that it can be kept off the machine and given back to validate-logs
 * --expect-anchor (audit.h "An anchor kept off the machine"); seal-audit-log signs the open
 * segment now, and the scheduler when it is due. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "remote/remote.h"
#include "service/audit_trail.h"
#include "service/ops.h"
#include "util/util.h"

int kms_audit_anchor_get(kms_client *client, char **anchor_json)
{
    int r = -1;
    char *dir = NULL, *anchor = NULL;
    char hash[KMS_AUDIT_HASH_HEX + 1], file[64], text[96];
    uint64_t seq = 0;
    json_t *o = NULL;
    KMS_ENSURE(client != NULL && anchor_json != NULL, KMS_ERR_VALIDATION, "no client");
    *anchor_json = NULL;
    KMS_GUARD(kms_remote_local_only(client->remote, "get-audit-anchor"));
    if ((dir = kms_audit_trail_dir(client->home)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_audit_trail_read_anchor(client, dir, &anchor) != 0) {
        goto out;
    }
    if (anchor == NULL) {
        kms_raise(KMS_ERR_NOT_FOUND,
                  "the audit trail in %s has no anchor yet: it is set when the first record is "
                  "written; run any command, then get-audit-anchor again",
                  dir);
        goto out;
    }
    if (kms_audit_anchor_record(dir, anchor, &seq, hash, file) != 0) {
        goto out;
    }
    snprintf(text, sizeof text, "%" PRIu64 ":%s", seq, hash);
    o = json_pack("{s:s, s:I, s:s, s:s}", "Anchor", text, "Sequence", (json_int_t)seq, "Hash", hash,
                  "DigestFile", file);
    *anchor_json = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (*anchor_json == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(o);
    free(anchor);
    free(dir);
    return r;
}

int kms_audit_trail_seal(kms_client *c, bool only_if_due, bool *sealed)
{
    kms_audit *a = NULL;
    *sealed = false;
    KMS_GUARD(kms_audit_trail_of_client(c, &a));
    return kms_audit_seal_when(a, only_if_due, sealed);
}

int kms_audit_seal_now(kms_client *client, char **result_json)
{
    bool sealed = false;
    char *anchor = NULL;
    KMS_ENSURE(client != NULL && result_json != NULL, KMS_ERR_VALIDATION, "no client");
    *result_json = NULL;
    KMS_GUARD(kms_remote_local_only(client->remote, "seal-audit-log"));
    KMS_GUARD(kms_audit_trail_seal(client, false, &sealed));
    KMS_GUARD(kms_audit_anchor_get(client, &anchor));
    json_t *o = json_loads(anchor, 0, NULL);
    free(anchor);
    if (o == NULL || json_object_set_new(o, "Sealed", json_boolean(sealed)) != 0 ||
        (*result_json = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
        json_decref(o);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    json_decref(o);
    return 0;
}
