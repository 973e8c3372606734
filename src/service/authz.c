/* The caches behind the gate's decisions: compiled caller policies and key policies. */
#include "service/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static const char root_all_doc[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"RootUser\",\"Effect\":\"Allow\","
    "\"Action\":\"*\",\"Resource\":\"*\"}]}";

int kms_authz_init(kms_authz *az)
{
    memset(az, 0, sizeof *az);
    KMS_ENSURE(pthread_mutex_init(&az->lock, NULL) == 0, KMS_ERR_INTERNAL, "cannot create a lock");
    /* AWS: the root user of an account has every permission in it; only SCPs and (for KMS keys)
     * the key policy limit it. The identity side of the root user is this one statement. */
    return kms_policy_compile(root_all_doc, strlen(root_all_doc), KMS_POLICY_IDENTITY, "RootUser",
                              &az->root_all);
}

static void snapshot_free(kms_principal_snapshot *s)
{
    for (size_t i = 0; i < s->identity_count; i++) {
        kms_policy_free(s->identity[i]);
    }
    free(s->identity);
    for (size_t i = 0; i < s->scp_policy_count; i++) {
        kms_policy_free(s->scp_policies[i]);
    }
    free(s->scp_policies);
    free(s->scps);
    kms_policy_free(s->boundary);
    kms_policy_free(s->session);
    kms_iam_identity_clean_up(&s->id);
    free(s);
}

kms_principal_snapshot *kms_authz_snapshot_new(kms_identity *id, uint64_t generation)
{
    kms_principal_snapshot *s = calloc(1, sizeof *s);
    if (s == NULL) {
        kms_iam_identity_clean_up(id);
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->generation = generation;
    s->id = *id;
    memset(id, 0, sizeof *id); /* what it owned is the snapshot's now */
    return s;
}

void kms_authz_snapshot_release(kms_principal_snapshot *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
        snapshot_free(s);
    }
}

static void entries_free(kms_key_policy_entry *e)
{
    while (e != NULL) {
        kms_key_policy_entry *next = e->next;
        kms_policy_free(e->policy);
        free(e);
        e = next;
    }
}

void kms_authz_clean_up(kms_authz *az)
{
    kms_authz_snapshot_release(az->current);
    for (size_t i = 0; i < KMS_AUTHZ_CALLERS; i++) {
        kms_authz_snapshot_release(az->callers[i].snapshot);
    }
    for (size_t i = 0; i < KMS_AUTHZ_BUCKETS; i++) {
        entries_free(az->buckets[i]);
    }
    entries_free(az->retired);
    kms_policy_free(az->root_all);
    pthread_mutex_destroy(&az->lock);
    memset(az, 0, sizeof *az);
}

char *kms_authz_default_key_policy(const char *account_id)
{
    /* KMS Developer Guide, "Default key policy": the account decides through IAM. */
    return kms_strdup_printf(
        "{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n"
        "  \"Statement\" : [ {\n    \"Sid\" : \"Enable IAM User Permissions\",\n"
        "    \"Effect\" : \"Allow\",\n    \"Principal\" : {\n"
        "      \"AWS\" : \"arn:aws:iam::%s:root\"\n    },\n    \"Action\" : \"kms:*\",\n"
        "    \"Resource\" : \"*\"\n  } ]\n}",
        account_id);
}
