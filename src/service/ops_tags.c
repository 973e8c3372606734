/* Tags of keys: TagResource, UntagResource, ListResourceTags, and the Tags of CreateKey (KMS API
 * reference; KMS Developer Guide, "Tags in AWS KMS" and "ABAC for AWS KMS"). */
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include "service/ops.h"
#include "service/ops_tags.h"
#include "util/util.h"

/* KMS API reference, Tag: TagKey 1 to 128 characters, TagValue 0 to 256. */
#define TAG_KEY_MAX 128
#define TAG_VALUE_MAX 256

/* ---- Checking tags ------------------------------------------------------------------------ */

/* Unicode letters, numbers and spaces are classified under the C.UTF-8 locale, made once (no
 * call changes the process's locale); without it, any code point above ASCII other than the
 * C1 controls passes. */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_locale_make(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* The next code point of valid UTF-8 (jansson checked it), and its length in *len. */
static unsigned long next_code_point(const unsigned char *p, size_t *len)
{
    if (p[0] < 0x80) {
        *len = 1;
        return p[0];
    }
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
    unsigned long cp = p[0] & (0x3f >> (n - 1));
    for (size_t i = 1; i < n && p[i] != '\0'; i++) {
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    *len = n;
    return cp;
}

/* Tagging AWS resources (General Reference): letters, numbers and spaces representable in
 * UTF-8, and _ . : / = + - @. */
static bool tag_char_ok(unsigned long cp)
{
    if (cp < 0x80) {
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
               cp == ' ' || strchr("_.:/=+-@", (int)cp) != NULL;
    }
    if (cp < 0xa0) {
        return false; /* C1 controls */
    }
    if (utf8_locale == (locale_t)0) {
        return true;
    }
    wint_t w = (wint_t)cp;
    return iswalnum_l(w, utf8_locale) || iswspace_l(w, utf8_locale) || cp == 0xa0;
}

/* Characters (code points) in s, and whether every one is allowed. */
static size_t tag_text_scan(const char *s, bool *ok)
{
    size_t count = 0;
    *ok = true;
    pthread_once(&utf8_once, utf8_locale_make);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; count++) {
        size_t len = 1;
        unsigned long cp = next_code_point(p, &len);
        *ok = *ok && tag_char_ok(cp);
        for (size_t i = 0; i < len && *p != '\0'; i++) {
            p++;
        }
    }
    return count;
}

/* The start of s for a message (at most 64 characters, whole ones, "..." when cut): a value of
 * 256 characters would push the rest of the message out of the error buffer. */
static const char *shown(const char *s, char out[300])
{
    size_t i = 0, chars = 0;
    while (s[i] != '\0' && chars < 64) {
        size_t len = 1;
        (void)next_code_point((const unsigned char *)s + i, &len);
        for (size_t j = 0; j < len && s[i] != '\0'; j++) {
            i++;
        }
        chars++;
    }
    snprintf(out, 300, "%.*s%s", (int)i, s, s[i] != '\0' ? "..." : "");
    return out;
}

static int tag_key_check(const char *key, const char *where)
{
    bool ok = true;
    char buf[300];
    size_t n = tag_text_scan(key, &ok);
    KMS_ENSURE(n >= 1, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
               "Member must have length greater than or equal to 1",
               shown(key, buf), where);
    KMS_ENSURE(n <= TAG_KEY_MAX, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
               "Member must have length less than or equal to %d",
               shown(key, buf), where, TAG_KEY_MAX);
    KMS_ENSURE(strncasecmp(key, "aws:", 4) != 0, KMS_ERR_TAG,
               "The request was rejected because one or more tags are not valid: tag key %s "
               "begins with aws:, which is reserved for AWS",
               shown(key, buf));
    KMS_ENSURE(ok, KMS_ERR_TAG,
               "The request was rejected because one or more tags are not valid: tag key '%s' "
               "holds a character other than letters, numbers, spaces and _ . : / = + - @",
               shown(key, buf));
    return 0;
}

static int tag_value_check(const char *key, const char *value, const char *where)
{
    bool ok = true;
    char buf[300];
    size_t n = tag_text_scan(value, &ok);
    KMS_ENSURE(n <= TAG_VALUE_MAX, KMS_ERR_VALIDATION,
               "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
               "Member must have length less than or equal to %d",
               shown(value, buf), where, TAG_VALUE_MAX);
    KMS_ENSURE(ok, KMS_ERR_TAG,
               "The request was rejected because one or more tags are not valid: the value of "
               "tag key '%s' holds a character other than letters, numbers, spaces and "
               "_ . : / = + - @",
               shown(key, buf));
    return 0;
}

/* One member of Tags: {"TagKey": STRING, "TagValue": STRING}, both required. */
static int tag_check(json_t *t, size_t i, kms_tag *out)
{
    char where[64];
    snprintf(where, sizeof where, "tags.%zu.member", i + 1);
    KMS_ENSURE(json_is_object(t), KMS_ERR_VALIDATION,
               "1 validation error detected: Value at '%s' failed to satisfy constraint: Member "
               "must be a structure {\"TagKey\": STRING, \"TagValue\": STRING}",
               where);
    const char *member;
    json_t *v;
    json_object_foreach(t, member, v)
    {
        KMS_ENSURE(strcmp(member, "TagKey") == 0 || strcmp(member, "TagValue") == 0,
                   KMS_ERR_VALIDATION, "a tag takes the members TagKey and TagValue, not '%s'",
                   member);
    }
    json_t *k = json_object_get(t, "TagKey");
    json_t *val = json_object_get(t, "TagValue");
    KMS_ENSURE(json_is_string(k), KMS_ERR_VALIDATION,
               "1 validation error detected: Value null at '%s.tagKey' failed to satisfy "
               "constraint: Member must not be null",
               where);
    KMS_ENSURE(json_is_string(val), KMS_ERR_VALIDATION,
               "1 validation error detected: Value null at '%s.tagValue' failed to satisfy "
               "constraint: Member must not be null",
               where);
    out->key = json_string_value(k);
    out->value = json_string_value(val);
    char at[80];
    snprintf(at, sizeof at, "%s.tagKey", where);
    KMS_GUARD(tag_key_check(out->key, at));
    snprintf(at, sizeof at, "%s.tagValue", where);
    return tag_value_check(out->key, out->value, at);
}

int kms_ops_tags_read(json_t *req, bool required, kms_tag **tags, size_t *n)
{
    *tags = NULL;
    *n = 0;
    json_t *list = json_object_get(req, "Tags");
    if (list == NULL || json_is_null(list)) {
        KMS_ENSURE(!required, KMS_ERR_VALIDATION,
                   "1 validation error detected: Value null at 'tags' failed to satisfy "
                   "constraint: Member must not be null");
        return 0;
    }
    KMS_ENSURE(json_is_array(list), KMS_ERR_VALIDATION,
               "Tags must be a list of {\"TagKey\": STRING, \"TagValue\": STRING}");
    size_t count = json_array_size(list);
    /* KMS Developer Guide, "Quotas": 50 tags per KMS key, so no request may carry more. */
    KMS_ENSURE(count <= KMS_STORE_TAGS_MAX, KMS_ERR_LIMIT_EXCEEDED,
               "A KMS key can have at most %d tags; the request gives %zu", KMS_STORE_TAGS_MAX,
               count);
    if (count == 0) {
        return 0;
    }
    kms_tag *out = calloc(count, sizeof *out);
    KMS_ENSURE(out != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < count; i++) {
        if (tag_check(json_array_get(list, i), i, &out[i]) != 0) {
            free(out);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out[j].key, out[i].key) == 0) {
                kms_raise(KMS_ERR_TAG,
                          "The request was rejected because one or more tags are not valid: tag "
                          "key '%s' appears more than once (tag keys of a key are unique)",
                          out[i].key);
                free(out);
                return -1;
            }
        }
    }
    *tags = out;
    *n = count;
    return 0;
}

/* ---- The key ------------------------------------------------------------------------------ */

/* KeyId of the tag operations: a key id or key ARN (KMS API reference, TagResource: "Specify
 * the key ID or key ARN"). An ARN that does not name a key is InvalidArnException. Authorises
 * action on the key. */
static int tag_target(kms_request *rq, json_t *req, const char *action, kms_key_record *rec,
                      char arn[KMS_ARN_MAX])
{
    const char *ref = NULL;
    char account[13];
    KMS_GUARD(kms_request_string(req, "KeyId", true, 1, 2048, &ref));
    if (strncmp(ref, "arn:", 4) == 0) {
        const char *res = strrchr(ref, ':');
        KMS_ENSURE(kms_policy_arn_account(ref, account) == 0 &&
                       strncmp(ref, "arn:aws:kms:", 12) == 0 && res != NULL &&
                       strncmp(res + 1, "key/", 4) == 0,
                   KMS_ERR_INVALID_ARN,
                   "The request was rejected because a specified ARN is not valid: %s is not the "
                   "ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/KEY_ID)",
                   ref);
    }
    rq->key_ref = ref;
    KMS_GUARD(kms_keystore_resolve(&rq->client->keystore, ref, false, rec));
    kms_keystore_key_arn(&rq->client->keystore, rec->key_id, arn);
    if (kms_gate_authorize_key(rq, action, rec, arn) != 0) {
        kms_key_record_clean_up(rec);
        return -1;
    }
    return 0;
}

/* Key states (KMS Developer Guide, "Key states of AWS KMS keys"): TagResource and
 * UntagResource refuse a key pending deletion. */
static int tag_state_check(const kms_key_record *rec, const char *arn)
{
    KMS_ENSURE(strcmp(rec->key_state, "PendingDeletion") != 0 &&
                   strcmp(rec->key_state, "PendingReplicaDeletion") != 0,
               KMS_ERR_INVALID_STATE, "%s is pending deletion.", arn);
    return 0;
}

/* ---- Operations --------------------------------------------------------------------------- */

int kms_ops_tags_tag_resource(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    kms_tag *tags = NULL;
    size_t n = 0;
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    memset(&rec, 0, sizeof rec);
    (void)resp;
    if ((r = kms_ops_tags_read(req, true, &tags, &n)) != 0) {
        goto out;
    }
    if ((r = tag_target(rq, req, "kms:TagResource", &rec, arn)) != 0) {
        goto out;
    }
    if ((r = tag_state_check(&rec, arn)) != 0) {
        goto out;
    }
    r = kms_store_tags_put(rq->client->store, rec.key_id, tags, n);
out:
    free(tags);
    kms_key_record_clean_up(&rec);
    return r;
}

/* TagKeys: a list of tag keys (1 to 128 characters each; the aws: prefix is refused as
 * TagResource refuses it). */
static int tag_keys_read(json_t *req, const char ***keys, size_t *n)
{
    *keys = NULL;
    *n = 0;
    json_t *list = json_object_get(req, "TagKeys");
    KMS_ENSURE(list != NULL && !json_is_null(list), KMS_ERR_VALIDATION,
               "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
               "constraint: Member must not be null");
    KMS_ENSURE(json_is_array(list), KMS_ERR_VALIDATION, "TagKeys must be a list of tag keys");
    size_t count = json_array_size(list);
    if (count == 0) {
        return 0;
    }
    const char **out = calloc(count, sizeof *out);
    KMS_ENSURE(out != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < count; i++) {
        char where[64];
        snprintf(where, sizeof where, "tagKeys.%zu.member", i + 1);
        out[i] = json_string_value(json_array_get(list, i));
        if (out[i] == NULL) {
            free(out);
            return kms_raise(KMS_ERR_VALIDATION,
                             "1 validation error detected: Value at '%s' failed to satisfy "
                             "constraint: Member must be a string",
                             where);
        }
        if (tag_key_check(out[i], where) != 0) {
            free(out);
            return -1;
        }
    }
    *keys = out;
    *n = count;
    return 0;
}

int kms_ops_tags_untag_resource(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    const char **keys = NULL;
    size_t n = 0;
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    memset(&rec, 0, sizeof rec);
    (void)resp;
    if ((r = tag_keys_read(req, &keys, &n)) != 0) {
        goto out;
    }
    if ((r = tag_target(rq, req, "kms:UntagResource", &rec, arn)) != 0) {
        goto out;
    }
    if ((r = tag_state_check(&rec, arn)) != 0) {
        goto out;
    }
    r = kms_store_tags_remove(rq->client->store, rec.key_id, keys, n);
out:
    free(keys);
    kms_key_record_clean_up(&rec);
    return r;
}

static int list_tag_cb(void *arg, const char *key, const char *value)
{
    json_t *list = arg;
    json_t *o = json_pack("{s:s, s:s}", "TagKey", key, "TagValue", value);
    KMS_ENSURE(o != NULL && json_array_append_new(list, o) == 0, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_ops_tags_list_resource_tags(kms_request *rq, json_t *req, json_t **resp)
{
    int r = -1;
    long long limit = 50;
    const char *marker = NULL;
    bool truncated = false;
    json_t *list = NULL;
    kms_key_record rec;
    char arn[KMS_ARN_MAX];
    memset(&rec, 0, sizeof rec);
    /* KMS API reference, ListResourceTags: Limit 1 to 50, default 50; Marker is the NextMarker
     * of the page before (a tag key). */
    if ((r = kms_request_int(req, "Limit", false, 1, 50, 50, &limit)) != 0 ||
        (r = kms_request_string(req, "Marker", false, 1, 1024, &marker)) != 0) {
        goto out;
    }
    if (marker != NULL && tag_key_check(marker, "marker") != 0) {
        r = kms_raise(KMS_ERR_INVALID_MARKER,
                      "The request was rejected because the marker that specifies where "
                      "pagination should next begin is not valid: '%s' was not returned by "
                      "ListResourceTags",
                      marker);
        goto out;
    }
    if ((r = tag_target(rq, req, "kms:ListResourceTags", &rec, arn)) != 0) {
        goto out;
    }
    list = json_array();
    if (list == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((r = kms_store_tags_list(rq->client->store, rec.key_id, marker, (size_t)limit, list_tag_cb,
                                 list, &truncated)) != 0) {
        goto out;
    }
    r = kms_ops_keys_respond_page(resp, "Tags", list, truncated, "TagKey");
    list = NULL;
out:
    json_decref(list);
    kms_key_record_clean_up(&rec);
    return r;
}
