/* Key records: the metadata of customer keys (state, description, key policy, aliases, rotation
 * schedule, deletion) as the service reads and changes it. The rows live in src/store; the key
 * store is the one road to them, so that key material and key metadata have one owner. */
#include "keystore/keystore.h"

int kms_keystore_key_get(const kms_keystore *ks, const char *key_id, kms_key_record *out)
{
    return kms_store_key_get(ks->store, key_id, out);
}

int kms_keystore_deleted_get(const kms_keystore *ks, const char *key_id, int64_t *when)
{
    return kms_store_deleted_get(ks->store, key_id, when);
}

int kms_keystore_key_list(const kms_keystore *ks, const char *marker, size_t limit,
                          kms_keystore_key_cb cb, void *arg, bool *truncated)
{
    return kms_store_key_list(ks->store, marker, limit, cb, arg, truncated);
}

int kms_keystore_set_description(const kms_keystore *ks, const char *key_id,
                                 const char *description)
{
    return kms_store_key_set_description(ks->store, key_id, description);
}

int kms_keystore_set_state(const kms_keystore *ks, const char *key_id, const char *state,
                           int64_t deletion_date, int pending_window_days)
{
    return kms_store_key_set_state(ks->store, key_id, state, deletion_date, pending_window_days);
}

int kms_keystore_cancel_deletion(const kms_keystore *ks, const char *key_id, int64_t now)
{
    return kms_store_key_cancel_deletion(ks->store, key_id, now);
}

/* ---- Key policies ---------------------------------------------------------------------------- */

int kms_keystore_policy_get(const kms_keystore *ks, const char *key_id, char **doc,
                            int64_t *version)
{
    return kms_store_key_policy_get(ks->store, key_id, doc, version);
}

int kms_keystore_policy_put(const kms_keystore *ks, const char *key_id, const char *doc)
{
    return kms_store_key_policy_put(ks->store, key_id, doc);
}

int kms_keystore_policy_rewrite(const kms_keystore *ks, kms_store_policy_rewrite_fn fn, void *arg,
                                size_t *count)
{
    return kms_store_key_policy_rewrite(ks->store, fn, arg, count);
}

/* ---- Aliases --------------------------------------------------------------------------------- */

int kms_keystore_alias_create(const kms_keystore *ks, const char *alias_name, const char *key_id,
                              int64_t now)
{
    return kms_store_alias_create(ks->store, alias_name, key_id, now);
}

int kms_keystore_alias_update(const kms_keystore *ks, const char *alias_name, const char *key_id,
                              int64_t now)
{
    return kms_store_alias_update(ks->store, alias_name, key_id, now);
}

int kms_keystore_alias_delete(const kms_keystore *ks, const char *alias_name)
{
    return kms_store_alias_delete(ks->store, alias_name);
}

int kms_keystore_alias_get(const kms_keystore *ks, const char *alias_name, kms_alias_record *out)
{
    return kms_store_alias_get(ks->store, alias_name, out);
}

int kms_keystore_alias_list(const kms_keystore *ks, const char *key_id, const char *marker,
                            size_t limit, kms_keystore_alias_cb cb, void *arg, bool *truncated)
{
    return kms_store_alias_list(ks->store, key_id, marker, limit, cb, arg, truncated);
}

/* ---- Rotation schedule and due work ---------------------------------------------------------- */

int kms_keystore_rotation_get(const kms_keystore *ks, const char *key_id, kms_key_rotation *out)
{
    return kms_store_rotation_get(ks->store, key_id, out);
}

int kms_keystore_rotation_set(const kms_keystore *ks, const char *key_id, int period_days,
                              int64_t next_rotation)
{
    return kms_store_rotation_set(ks->store, key_id, period_days, next_rotation);
}

int kms_keystore_rotation_list(const kms_keystore *ks, const char *key_id, uint32_t after,
                               size_t limit, kms_keystore_rotation_cb cb, void *arg,
                               bool *truncated)
{
    return kms_store_rotation_list(ks->store, key_id, after, limit, cb, arg, truncated);
}

int kms_keystore_due_list(const kms_keystore *ks, int64_t now, int64_t usage_limit,
                          int64_t stale_before, kms_keystore_due_cb cb, void *arg)
{
    return kms_store_due_list(ks->store, now, usage_limit, stale_before, cb, arg);
}

int kms_keystore_next_due(const kms_keystore *ks, int64_t now, int64_t *when)
{
    return kms_store_next_due(ks->store, now, when);
}
