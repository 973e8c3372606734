/* What a CloudTrail record says of a request (CloudTrail User Guide, "CloudTrail record
 * contents"; AWS KMS Developer Guide, "Logging AWS KMS API calls with AWS CloudTrail"): which
 * service and event, read-only or not, and the request and response as CloudTrail shows them. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "service/audit_trail.h"
#include "service/audit_trail_shape.h"
#include "util/util.h"

/* ---- What a record says ---------------------------------------------------------------------- */

const char *kms_audit_trail_event_source(const char *operation, const char **name)
{
    static const struct {
        const char *prefix;
        const char *source;
    } sources[] = {
        {"iam:", "iam.amazonaws.com"},
        {"sts:", "sts.amazonaws.com"},
        {"organizations:", "organizations.amazonaws.com"},
        {"cloudtrail:", "cloudtrail.amazonaws.com"},
        {"signin:", "signin.amazonaws.com"},
        {"acm-pca:", "acm-pca.amazonaws.com"},
        {"acm:", "acm.amazonaws.com"},
    };
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        size_t n = strlen(sources[i].prefix);
        if (strncmp(operation, sources[i].prefix, n) == 0) {
            *name = operation + n;
            return sources[i].source;
        }
    }
    *name = operation;
    return "kms.amazonaws.com";
}

/* CloudTrail's readOnly: reads, and the KMS cryptographic operations (they change no
 * resource); STS calls issue credentials but change nothing either. */
bool kms_audit_trail_read_only(const char *source, const char *name)
{
    static const char *const prefixes[] = {"Get", "List", "Describe", "Simulate", "Lookup"};
    static const char *const kms_reads[] = {"Encrypt",
                                            "Decrypt",
                                            "ReEncrypt",
                                            "GenerateDataKey",
                                            "GenerateDataKeyWithoutPlaintext",
                                            "GenerateDataKeyPair",
                                            "GenerateDataKeyPairWithoutPlaintext",
                                            "DeriveSharedSecret",
                                            "GenerateRandom",
                                            "Sign",
                                            "Verify",
                                            "GenerateMac",
                                            "VerifyMac"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    if (strcmp(source, "sts.amazonaws.com") == 0) {
        return true;
    }
    for (size_t i = 0;
         strcmp(source, "kms.amazonaws.com") == 0 && i < sizeof kms_reads / sizeof kms_reads[0];
         i++) {
        if (strcmp(name, kms_reads[i]) == 0) {
            return true;
        }
    }
    return false;
}

bool kms_audit_trail_keeps_response(const char *source, const char *name, bool read_only)
{
    if (!read_only) {
        return true;
    }
    return strcmp(source, "sts.amazonaws.com") == 0 &&
           (strncmp(name, "AssumeRole", 10) == 0 || strcmp(name, "GetSessionToken") == 0 ||
            strcmp(name, "GetFederationToken") == 0);
}

/* Members never written to a record, request or response, at any depth: plaintexts, messages
 * and MACs, ciphertexts, passwords, secret access keys, session tokens, MFA seeds and codes. */
static bool secret_member(const char *name)
{
    static const char *const secrets[] = {
        "Plaintext",
        "CiphertextBlob",
        "CiphertextForRecipient",
        "Message",
        "Signature",
        "Mac",
        "SecretAccessKey",
        "SessionToken",
        "Password",
        "OldPassword",
        "NewPassword",
        "AuthenticationCode1",
        "AuthenticationCode2",
        "Base32StringSeed",
        "QRCodePNG",
        "TokenCode",
        "PrivateKeyPlaintext",
        "PrivateKeyCiphertextBlob",
        "SharedSecret",
        "PublicKey",
        "PrivateKey",
        "Passphrase",
        "GrantToken",
        "GrantTokens",
    };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (strcasecmp(name, secrets[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Maps whose keys are the caller's data, copied as they are (their values are strings). */
static bool verbatim_map(const char *name)
{
    static const char *const maps[] = {"EncryptionContext", "SourceEncryptionContext",
                                       "DestinationEncryptionContext", "EncryptionContextSubset",
                                       "EncryptionContextEquals"};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        if (strcmp(name, maps[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Ends s, cut to its first n bytes, before a character the cut left incomplete, so that a key
 * cut short stays UTF-8 (the JSON writer refuses anything else). */
void kms_audit_trail_utf8_cut(char *s, size_t n)
{
    size_t lead = n;
    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80) {
        lead--;
    }
    if (lead > 0) {
        unsigned char c = (unsigned char)s[lead - 1];
        size_t want = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (n - (lead - 1) < want) {
            n = lead - 1;
        }
    }
    s[n] = '\0';
}

/* Members whose number is a date (epoch seconds): CloudTrail writes them as text. Every member
 * named ...Date (CreationDate, DeletionDate, ValidTo aside, NextRotationDate, CreateDate,
 * LastUsedDate, ...), and the date members of STS, IAM and ACM that are named otherwise. */
static bool date_value(const char *name, const json_t *v)
{
    static const char *const names[] = {"ValidTo",   "Expiration",      "NotBefore",  "NotAfter",
                                        "CreatedAt", "IssuedAt",        "ImportedAt", "RevokedAt",
                                        "UpdatedAt", "PasswordLastUsed"};
    if (!json_is_number(v)) {
        return false;
    }
    size_t n = strlen(name);
    if (n >= 4 && strcmp(name + n - 4, "Date") == 0) {
        return true;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *date_text(const json_t *v)
{
    char text[32];
    double t = json_number_value(v);
    kms_audit_trail_date(t >= -62135596800.0 && t <= 253402300799.0 ? (int64_t)t : 0, text);
    return json_string(text);
}

/* A request or response as CloudTrail shows it: member names in camelCase ("KeyId" ->
 * "keyId"), secrets left out. NULL on out-of-memory. */
json_t *kms_audit_trail_sanitize(json_t *v)
{
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (out == NULL || json_array_append_new(out, kms_audit_trail_sanitize(item)) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (!json_is_object(v)) {
        return json_copy(v);
    }
    json_t *out = json_object();
    const char *key;
    json_t *member;
    json_object_foreach(v, key, member)
    {
        if (out == NULL || secret_member(key)) {
            continue;
        }
        char name[128];
        size_t n = (size_t)snprintf(name, sizeof name, "%s", key);
        if (n >= sizeof name) {
            kms_audit_trail_utf8_cut(name, sizeof name - 1);
        }
        name[0] = (char)tolower((unsigned char)name[0]);
        json_t *copy = verbatim_map(key)         ? json_deep_copy(member)
                       : date_value(key, member) ? date_text(member)
                                                 : kms_audit_trail_sanitize(member);
        if (copy == NULL || json_object_set_new(out, name, copy) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* ---- Dates ------------------------------------------------------------------------------------
 */

/* CloudTrail writes the dates inside requestParameters and responseElements as Java's medium
 * date-time format in English, UTC: "Aug 10, 2022, 10:38:27 PM" (KMS CreateKey's creationDate,
 * ScheduleKeyDeletion's deletionDate, STS's credentials.expiration, IAM's createDate). Written
 * here by hand, not with strftime, so that no locale changes it. */
void kms_audit_trail_date(int64_t t, char out[32])
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL) {
        memset(&tm, 0, sizeof tm);
        tm.tm_mday = 1;
        tm.tm_year = 70;
    }
    int hour = tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12;
    /* Room for any int the compiler cannot bound; a real date takes at most 25 bytes. */
    char text[96];
    snprintf(text, sizeof text, "%s %d, %d, %d:%02d:%02d %s", months[tm.tm_mon % 12], tm.tm_mday,
             tm.tm_year + 1900, hour, tm.tm_min, tm.tm_sec, tm.tm_hour < 12 ? "AM" : "PM");
    snprintf(out, 32, "%.31s", text);
}

/* ---- Request parameters AWS fills in ----------------------------------------------------------
 */

/* Sets member name of p to the string value unless the request has it. */
static int default_text(json_t *p, const char *name, const char *value)
{
    if (json_object_get(p, name) != NULL) {
        return 0;
    }
    KMS_ENSURE(json_object_set_new(p, name, json_string(value)) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

static int default_bool(json_t *p, const char *name, bool value)
{
    if (json_object_get(p, name) != NULL) {
        return 0;
    }
    KMS_ENSURE(json_object_set_new(p, name, json_boolean(value)) == 0, KMS_ERR_INTERNAL,
               "out of memory");
    return 0;
}

/* CreateKey (AWS KMS Developer Guide, "CreateKey" CloudTrail example): every parameter, the
 * defaults filled in. KeySpec and its deprecated twin CustomerMasterKeySpec are the same value;
 * KeyUsage defaults to ENCRYPT_DECRYPT, Origin to AWS_KMS, the two flags to false. */
static int create_key_defaults(json_t *p)
{
    const char *spec = json_string_value(json_object_get(p, "keySpec"));
    if (spec == NULL) {
        spec = json_string_value(json_object_get(p, "customerMasterKeySpec"));
    }
    if (spec == NULL) {
        spec = "SYMMETRIC_DEFAULT";
    }
    KMS_GUARD(default_text(p, "keySpec", spec));
    KMS_GUARD(default_text(p, "keyUsage", "ENCRYPT_DECRYPT"));
    KMS_GUARD(default_text(p, "origin", "AWS_KMS"));
    KMS_GUARD(default_text(p, "customerMasterKeySpec", spec));
    KMS_GUARD(default_bool(p, "bypassPolicyLockoutSafetyCheck", false));
    KMS_GUARD(default_bool(p, "multiRegion", false));
    return 0;
}

int kms_audit_trail_request_defaults(const char *name, const char *key_arn, json_t *p)
{
    if (!json_is_object(p)) {
        return 0;
    }
    if (strcmp(name, "Encrypt") == 0) {
        return default_text(p, "encryptionAlgorithm", "SYMMETRIC_DEFAULT");
    }
    if (strcmp(name, "Decrypt") == 0) {
        /* "The CloudTrail log entry for a Decrypt operation always includes the
         * encryptionAlgorithm in the requestParameters", and keyId is the key's ARN. */
        if (key_arn != NULL && key_arn[0] != '\0') {
            KMS_ENSURE(json_object_set_new(p, "keyId", json_string(key_arn)) == 0, KMS_ERR_INTERNAL,
                       "out of memory");
        }
        return default_text(p, "encryptionAlgorithm", "SYMMETRIC_DEFAULT");
    }
    if (strcmp(name, "ReEncrypt") == 0) {
        KMS_GUARD(default_text(p, "sourceEncryptionAlgorithm", "SYMMETRIC_DEFAULT"));
        return default_text(p, "destinationEncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    }
    if (strcmp(name, "CreateKey") == 0) {
        return create_key_defaults(p);
    }
    return 0;
}
