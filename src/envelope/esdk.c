/* AWS Encryption SDK message format pieces (see esdk.h). */
#include "envelope/esdk.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "envelope/crypto.h"
#include "util/error.h"
#include "util/secmem.h"

/* ---- framework/algorithm-suites.md: Supported Algorithm Suites (ESDK) -------------------------*/
/* One suite per line, as in the specification's table. */
/* clang-format off */
static const kms_esdk_suite SUITES[] = {
    {0x0014, "ALG_AES_128_GCM_IV12_TAG16_NO_KDF", 1, 16, KMS_KDF_IDENTITY, false, KMS_SIG_NONE, 16, 0},
    {0x0046, "ALG_AES_192_GCM_IV12_TAG16_NO_KDF", 1, 24, KMS_KDF_IDENTITY, false, KMS_SIG_NONE, 16, 0},
    {0x0078, "ALG_AES_256_GCM_IV12_TAG16_NO_KDF", 1, 32, KMS_KDF_IDENTITY, false, KMS_SIG_NONE, 16, 0},
    {0x0114, "ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, KMS_KDF_SHA256, false, KMS_SIG_NONE, 16, 0},
    {0x0146, "ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA256", 1, 24, KMS_KDF_SHA256, false, KMS_SIG_NONE, 16, 0},
    {0x0178, "ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA256", 1, 32, KMS_KDF_SHA256, false, KMS_SIG_NONE, 16, 0},
    {0x0214, "ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", 1, 16, KMS_KDF_SHA256, false, KMS_SIG_P256, 16, 0},
    {0x0346, "ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 24, KMS_KDF_SHA384, false, KMS_SIG_P384, 16, 0},
    {0x0378, "ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 32, KMS_KDF_SHA384, false, KMS_SIG_P384, 16, 0},
    {0x0478, "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 2, 32, KMS_KDF_SHA512, true, KMS_SIG_NONE, 32, 32},
    {0x0578, "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", 2, 32, KMS_KDF_SHA512, true, KMS_SIG_P384, 32, 32},
};
/* clang-format on */

const kms_esdk_suite *kms_esdk_suite_get(uint16_t id)
{
    for (size_t i = 0; i < sizeof SUITES / sizeof SUITES[0]; i++) {
        if (SUITES[i].id == id) {
            return &SUITES[i];
        }
    }
    return NULL;
}

const char *kms_suite_name(uint16_t suite_id)
{
    const kms_esdk_suite *s = kms_esdk_suite_get(suite_id);
    return s != NULL ? s->name : NULL;
}

int kms_suite_parse(const char *text, uint16_t *suite_id)
{
    *suite_id = 0;
    KMS_ENSURE(text != NULL && *text != '\0', KMS_ERR_VALIDATION, "no algorithm suite given");
    for (size_t i = 0; i < sizeof SUITES / sizeof SUITES[0]; i++) {
        if (strcmp(text, SUITES[i].name) == 0) {
            *suite_id = SUITES[i].id;
            return 0;
        }
    }
    const char *p = text;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
    }
    char *end = NULL;
    unsigned long v = strlen(p) == 4 ? strtoul(p, &end, 16) : 0;
    if (end != NULL && *end == '\0' && kms_esdk_suite_get((uint16_t)v) != NULL) {
        *suite_id = (uint16_t)v;
        return 0;
    }
    return kms_raise(KMS_ERR_VALIDATION,
                     "unknown algorithm suite '%s': give a hex id such as 0x0478 (the default) or "
                     "0x0578 (signed), or a name such as ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
                     text);
}

int kms_commitment_policy_parse(const char *text, kms_commitment_policy *policy)
{
    static const char *const names[] = {"REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
                                        "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
                                        "FORBID_ENCRYPT_ALLOW_DECRYPT"};
    *policy = KMS_COMMIT_REQUIRE_ENCRYPT_REQUIRE_DECRYPT;
    for (size_t i = 0; text != NULL && i < 3; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *policy = (kms_commitment_policy)i;
            return 0;
        }
    }
    return kms_raise(KMS_ERR_VALIDATION,
                     "unknown commitment policy '%s': one of REQUIRE_ENCRYPT_REQUIRE_DECRYPT "
                     "(default), REQUIRE_ENCRYPT_ALLOW_DECRYPT, FORBID_ENCRYPT_ALLOW_DECRYPT",
                     text != NULL ? text : "");
}

int kms_rsa_padding_parse(const char *text, kms_rsa_padding *padding)
{
    static const char *const names[] = {"RSA_PKCS1", "RSA_OAEP_SHA1", "RSA_OAEP_SHA256",
                                        "RSA_OAEP_SHA384", "RSA_OAEP_SHA512"};
    *padding = KMS_RSA_PKCS1;
    for (size_t i = 0; text != NULL && i < 5; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *padding = (kms_rsa_padding)i;
            return 0;
        }
    }
    return kms_raise(KMS_ERR_VALIDATION,
                     "unknown wrapping algorithm '%s': one of RSA_PKCS1, RSA_OAEP_SHA1, "
                     "RSA_OAEP_SHA256, RSA_OAEP_SHA384, RSA_OAEP_SHA512",
                     text != NULL ? text : "");
}

/* ---- Encryption context -----------------------------------------------------------------------*/
void kms_ec_init(kms_ec *ec)
{
    ec->e = NULL;
    ec->n = 0;
}

void kms_ec_clean_up(kms_ec *ec)
{
    for (size_t i = 0; i < ec->n; i++) {
        free(ec->e[i].key);
        free(ec->e[i].value);
    }
    free(ec->e);
    kms_ec_init(ec);
}

const char *kms_ec_get(const kms_ec *ec, const char *key)
{
    for (size_t i = 0; i < ec->n; i++) {
        if (strcmp(ec->e[i].key, key) == 0) {
            return ec->e[i].value;
        }
    }
    return NULL;
}

static int ec_put_n(kms_ec *ec, const char *key, size_t klen, const char *value, size_t vlen)
{
    KMS_ENSURE(klen <= UINT16_MAX && vlen <= UINT16_MAX, KMS_ERR_VALIDATION,
               "an encryption context key or value is longer than 65535 bytes");
    KMS_ENSURE(memchr(key, 0, klen) == NULL && memchr(value, 0, vlen) == NULL, KMS_ERR_VALIDATION,
               "an encryption context key or value contains a NUL byte");
    KMS_ENSURE(ec->n < UINT16_MAX, KMS_ERR_VALIDATION,
               "an encryption context has at most 65535 pairs");
    char *k = malloc(klen + 1);
    char *v = malloc(vlen + 1);
    kms_ec_entry *grown = realloc(ec->e, (ec->n + 1) * sizeof *ec->e);
    if (k == NULL || v == NULL || grown == NULL) {
        free(k);
        free(v);
        if (grown != NULL) {
            ec->e = grown;
        }
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    ec->e = grown;
    memcpy(k, key, klen);
    k[klen] = '\0';
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    if (kms_ec_get(ec, k) != NULL) {
        int r = kms_raise(KMS_ERR_VALIDATION, "encryption context key '%s' appears twice", k);
        free(k);
        free(v);
        return r;
    }
    ec->e[ec->n].key = k;
    ec->e[ec->n].value = v;
    ec->n++;
    return 0;
}

int kms_ec_put(kms_ec *ec, const char *key, const char *value)
{
    return ec_put_n(ec, key, strlen(key), value, strlen(value));
}

int kms_ec_from_public(kms_ec *ec, const kms_encryption_context *in)
{
    int r = -1;
    kms_ec_init(ec);
    for (size_t i = 0; in != NULL && i < in->count; i++) {
        if (in->entries[i].key == NULL || in->entries[i].value == NULL) {
            r = kms_raise(KMS_ERR_VALIDATION, "an encryption context entry has no key or value");
            goto out;
        }
        if ((r = kms_ec_put(ec, in->entries[i].key, in->entries[i].value)) != 0) {
            goto out;
        }
    }
    kms_ec_sort(ec);
    r = 0;
out:
    if (r != 0) {
        kms_ec_clean_up(ec);
    }
    return r;
}

int kms_ec_copy(kms_ec *dst, const kms_ec *src)
{
    kms_ec_init(dst);
    for (size_t i = 0; i < src->n; i++) {
        if (kms_ec_put(dst, src->e[i].key, src->e[i].value) != 0) {
            kms_ec_clean_up(dst);
            return -1;
        }
    }
    return 0;
}

static int ec_cmp(const void *a, const void *b)
{
    const kms_ec_entry *x = a, *y = b;
    return strcmp(x->key, y->key); /* strcmp compares as unsigned char: UTF-8 byte order */
}

void kms_ec_sort(kms_ec *ec)
{
    if (ec->n > 1) {
        qsort(ec->e, ec->n, sizeof *ec->e, ec_cmp);
    }
}

int kms_ec_serialize(const kms_ec *ec, kms_buf *out)
{
    if (ec->n == 0) {
        return 0;
    }
    int r = -1;
    kms_ec sorted = *ec; /* sort a shallow copy of the index, not the caller's order */
    kms_ec_entry *idx = malloc(ec->n * sizeof *idx);
    KMS_ENSURE(idx != NULL, KMS_ERR_INTERNAL, "out of memory");
    memcpy(idx, ec->e, ec->n * sizeof *idx);
    sorted.e = idx;
    kms_ec_sort(&sorted);
    if ((r = kms_buf_append_be16(out, (uint16_t)ec->n)) != 0) {
        goto out;
    }
    for (size_t i = 0; i < ec->n; i++) {
        if ((r = kms_buf_append_be16_bytes(out, idx[i].key, strlen(idx[i].key))) != 0) {
            goto out;
        }
        if ((r = kms_buf_append_be16_bytes(out, idx[i].value, strlen(idx[i].value))) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    free(idx);
    return r;
}

int kms_ec_view(const kms_ec *ec, kms_context_entry **entries, kms_encryption_context *view)
{
    *entries = NULL;
    view->entries = NULL;
    view->count = 0;
    if (ec->n == 0) {
        return 0;
    }
    *entries = calloc(ec->n, sizeof **entries);
    KMS_ENSURE(*entries != NULL, KMS_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < ec->n; i++) {
        (*entries)[i].key = ec->e[i].key;
        (*entries)[i].value = ec->e[i].value;
    }
    view->entries = *entries;
    view->count = ec->n;
    return 0;
}

/* ---- Encrypted data keys ---------------------------------------------------------------------*/
void kms_edk_list_clean_up(kms_edk_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].provider_id);
        free(l->v[i].provider_info);
        free(l->v[i].ciphertext);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n + 1); /* +1: provider ids and infos are read as strings too */
    if (d != NULL) {
        if (n > 0) {
            memcpy(d, p, n);
        }
        d[n] = 0;
    }
    return d;
}

int kms_edk_list_add(kms_edk_list *l, const void *provider_id, size_t id_len,
                     const void *provider_info, size_t info_len, const void *ciphertext,
                     size_t ct_len)
{
    KMS_ENSURE(id_len <= UINT16_MAX && info_len <= UINT16_MAX && ct_len <= UINT16_MAX,
               KMS_ERR_VALIDATION, "an encrypted data key field is longer than 65535 bytes");
    kms_edk *grown = realloc(l->v, (l->n + 1) * sizeof *l->v);
    KMS_ENSURE(grown != NULL, KMS_ERR_INTERNAL, "out of memory");
    l->v = grown;
    kms_edk *e = &l->v[l->n];
    e->provider_id = dup_bytes(provider_id, id_len);
    e->provider_info = dup_bytes(provider_info, info_len);
    e->ciphertext = dup_bytes(ciphertext, ct_len);
    if (e->provider_id == NULL || e->provider_info == NULL || e->ciphertext == NULL) {
        free(e->provider_id);
        free(e->provider_info);
        free(e->ciphertext);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    e->provider_id_len = id_len;
    e->provider_info_len = info_len;
    e->ciphertext_len = ct_len;
    l->n++;
    return 0;
}

/* ---- Materials -------------------------------------------------------------------------------*/
int kms_materials_init(kms_materials *m, const kms_esdk_suite *suite, const kms_ec *ec)
{
    memset(m, 0, sizeof *m);
    m->suite = suite;
    m->ec = ec;
    m->data_key = kms_secure_alloc(KMS_ESDK_MAX_KEY_LEN);
    return m->data_key != NULL ? 0 : -1;
}

void kms_materials_clean_up(kms_materials *m)
{
    kms_secure_free(m->data_key); /* wipes */
    kms_edk_list_clean_up(&m->edks);
    memset(m, 0, sizeof *m);
}

/* ---- Header ----------------------------------------------------------------------------------*/
void kms_esdk_header_init(kms_esdk_header *h)
{
    memset(h, 0, sizeof *h);
    kms_ec_init(&h->stored_ec);
}

void kms_esdk_header_clean_up(kms_esdk_header *h)
{
    kms_ec_clean_up(&h->stored_ec);
    kms_edk_list_clean_up(&h->edks);
    memset(h, 0, sizeof *h);
}

#define BAD(...) kms_raise(KMS_ERR_INVALID_CIPHERTEXT, __VA_ARGS__)

/* The parsers' third result, besides 0 and -1: the bytes end before the header does, so the
 * caller may read more and try again. No error is raised for it. */
enum { TRUNCATED = 1 };

/* message-header.md Key Value Pair Entries: sorted by key (byte order) and unique. */
static bool keys_ascend(const uint8_t *prev, size_t prev_len, const uint8_t *k, size_t kl)
{
    size_t m = prev_len < kl ? prev_len : kl;
    int c = memcmp(prev, k, m);
    return c < 0 || (c == 0 && prev_len < kl);
}

/* message-header.md AAD: Key Value Pairs Length, then count + sorted unique entries. */
static int parse_aad(kms_reader *r, kms_ec *ec)
{
    const uint8_t *kv = NULL;
    size_t total = 0;
    if (kms_reader_be16_bytes(r, &kv, &total) != 0) {
        return TRUNCATED;
    }
    if (total == 0) {
        return 0;
    }
    kms_reader in;
    uint16_t count = 0;
    kms_reader_init(&in, kv, total);
    if (kms_reader_be16(&in, &count) != 0 || count == 0) {
        return BAD("message header: the encryption context has a length but no pairs");
    }
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *k = NULL, *v = NULL;
        size_t kl = 0, vl = 0;
        if (kms_reader_be16_bytes(&in, &k, &kl) != 0 || kms_reader_be16_bytes(&in, &v, &vl) != 0) {
            return BAD("message header: encryption context pair %u is truncated", i + 1u);
        }
        if (prev != NULL && !keys_ascend(prev, prev_len, k, kl)) {
            return BAD("message header: encryption context keys are not sorted and unique");
        }
        if (ec_put_n(ec, (const char *)k, kl, (const char *)v, vl) != 0) {
            return BAD("message header: %s", kms_last_error_message());
        }
        prev = k;
        prev_len = kl;
    }
    if (in.left != 0) {
        return BAD("message header: %zu bytes after the encryption context's last pair", in.left);
    }
    return 0;
}

/* message-header.md Encrypted Data Keys: count, then provider id, provider info and ciphertext,
 * each with a be16 length. */
static int parse_edks(kms_reader *r, kms_edk_list *l)
{
    uint16_t count = 0;
    if (kms_reader_be16(r, &count) != 0) {
        return TRUNCATED;
    }
    if (count == 0) {
        return BAD("message header: no encrypted data keys");
    }
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *id = NULL, *info = NULL, *ct = NULL;
        size_t il = 0, fl = 0, cl = 0;
        if (kms_reader_be16_bytes(r, &id, &il) != 0 || kms_reader_be16_bytes(r, &info, &fl) != 0 ||
            kms_reader_be16_bytes(r, &ct, &cl) != 0) {
            return TRUNCATED;
        }
        KMS_GUARD(kms_edk_list_add(l, id, il, info, fl, ct, cl));
    }
    return 0;
}

/* message-header.md: version, type (v1), suite id and message id. */
static int parse_start(kms_reader *r, kms_esdk_header *h)
{
    uint8_t type = 0x80;
    uint16_t suite_id = 0;
    if (kms_reader_u8(r, &h->version) != 0) {
        return TRUNCATED;
    }
    if (h->version != 1 && h->version != 2) {
        return BAD("not an AWS Encryption SDK message (version byte 0x%02x; expected 0x01 or "
                   "0x02)",
                   h->version);
    }
    if (h->version == 1 && kms_reader_u8(r, &type) != 0) {
        return TRUNCATED;
    }
    if (type != 0x80) {
        return BAD("message header: unknown message type 0x%02x", type);
    }
    if (kms_reader_be16(r, &suite_id) != 0) {
        return TRUNCATED;
    }
    h->suite = kms_esdk_suite_get(suite_id);
    if (h->suite == NULL) {
        return BAD("message header: unknown algorithm suite 0x%04x", suite_id);
    }
    if (h->suite->version != h->version) {
        return BAD("message header: algorithm suite 0x%04x belongs to message format version %u, "
                   "not %u",
                   suite_id, h->suite->version, h->version);
    }
    if (kms_reader_copy(r, h->message_id, h->suite->msgid_len) != 0) {
        return TRUNCATED;
    }
    return 0;
}

/* message-header.md: content type, reserved and IV length (v1), frame length. */
static int parse_content(kms_reader *r, kms_esdk_header *h)
{
    uint8_t reserved[4] = {0}, iv_len = KMS_ESDK_IV_LEN;
    if (kms_reader_u8(r, &h->content_type) != 0) {
        return TRUNCATED;
    }
    if (h->content_type != 1 && h->content_type != 2) {
        return BAD("message header: unknown content type 0x%02x", h->content_type);
    }
    if (h->version == 1) {
        if (kms_reader_copy(r, reserved, sizeof reserved) != 0) {
            return TRUNCATED;
        }
        if ((reserved[0] | reserved[1] | reserved[2] | reserved[3]) != 0) {
            return BAD("message header: reserved bytes are not zero");
        }
        if (kms_reader_u8(r, &iv_len) != 0) {
            return TRUNCATED;
        }
        if (iv_len != KMS_ESDK_IV_LEN) {
            return BAD("message header: IV length %u (the suite uses 12)", iv_len);
        }
    }
    if (kms_reader_be32(r, &h->frame_length) != 0) {
        return TRUNCATED;
    }
    if (h->content_type == 1 && h->frame_length != 0) {
        return BAD("message header: a non-framed message has frame length %u", h->frame_length);
    }
    if (h->content_type == 2 && h->frame_length == 0) {
        return BAD("message header: a framed message has frame length 0");
    }
    if (h->frame_length > KMS_ESDK_MAX_FRAME) {
        return BAD("message header: frame length %u is above this implementation's limit of %u "
                   "bytes",
                   h->frame_length, KMS_ESDK_MAX_FRAME);
    }
    return 0;
}

/* message-header.md: suite data (v2) ends the body; then the IV (v1) and the tag. */
static int parse_inner(const uint8_t *p, size_t n, kms_esdk_header *h)
{
    kms_reader r;
    int rc = 0;
    kms_reader_init(&r, p, n);
    if ((rc = parse_start(&r, h)) != 0) {
        return rc;
    }
    if ((rc = parse_aad(&r, &h->stored_ec)) != 0) {
        return rc;
    }
    if ((rc = parse_edks(&r, &h->edks)) != 0) {
        return rc;
    }
    if ((rc = parse_content(&r, h)) != 0) {
        return rc;
    }
    if (h->version == 2 && kms_reader_copy(&r, h->suite_data, h->suite->suite_data_len) != 0) {
        return TRUNCATED;
    }
    h->body_len = n - r.left;
    if (h->version == 1 && kms_reader_copy(&r, h->header_iv, KMS_ESDK_IV_LEN) != 0) {
        return TRUNCATED;
    }
    if (kms_reader_copy(&r, h->tag, KMS_ESDK_TAG_LEN) != 0) {
        return TRUNCATED;
    }
    h->total_len = n - r.left;
    return 0;
}

int kms_esdk_header_parse(const uint8_t *p, size_t n, kms_esdk_header *h)
{
    kms_esdk_header_clean_up(h);
    kms_esdk_header_init(h);
    int rc = parse_inner(p, n, h);
    if (rc == TRUNCATED && n >= KMS_ESDK_MAX_HEADER) {
        rc = BAD("message header: longer than this implementation's limit of %u bytes",
                 KMS_ESDK_MAX_HEADER);
    }
    if (rc != 0) {
        kms_esdk_header_clean_up(h);
        kms_esdk_header_init(h);
    }
    return rc;
}

/* message-header.md Encrypted Data Keys: count, then each key's three length-prefixed fields. */
static int serialize_edks(const kms_edk_list *l, kms_buf *out)
{
    KMS_GUARD(kms_buf_append_be16(out, (uint16_t)l->n));
    for (size_t i = 0; i < l->n; i++) {
        const kms_edk *e = &l->v[i];
        KMS_GUARD(kms_buf_append_be16_bytes(out, e->provider_id, e->provider_id_len));
        KMS_GUARD(kms_buf_append_be16_bytes(out, e->provider_info, e->provider_info_len));
        KMS_GUARD(kms_buf_append_be16_bytes(out, e->ciphertext, e->ciphertext_len));
    }
    return 0;
}

int kms_esdk_header_serialize_body(const kms_esdk_header *h, kms_buf *out)
{
    int r = -1;
    kms_buf aad;
    kms_buf_init(&aad, false);
    if ((r = kms_ec_serialize(&h->stored_ec, &aad)) != 0) {
        goto out;
    }
    if (aad.len > UINT16_MAX) {
        r = kms_raise(KMS_ERR_VALIDATION,
                      "the encryption context serialises to more than 65535 bytes");
        goto out;
    }
    if ((r = kms_buf_append_u8(out, h->version)) != 0) {
        goto out;
    }
    if (h->version == 1 && (r = kms_buf_append_u8(out, 0x80)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append_be16(out, h->suite->id)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append(out, h->message_id, h->suite->msgid_len)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append_be16_bytes(out, aad.data, aad.len)) != 0) {
        goto out;
    }
    if ((r = serialize_edks(&h->edks, out)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append_u8(out, h->content_type)) != 0) {
        goto out;
    }
    if (h->version == 1) {
        if ((r = kms_buf_append_be32(out, 0)) != 0) { /* reserved */
            goto out;
        }
        if ((r = kms_buf_append_u8(out, KMS_ESDK_IV_LEN)) != 0) {
            goto out;
        }
    }
    if ((r = kms_buf_append_be32(out, h->frame_length)) != 0) {
        goto out;
    }
    if (h->version == 2 &&
        (r = kms_buf_append(out, h->suite_data, h->suite->suite_data_len)) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_buf_clean_up(&aad);
    return r;
}

/* ---- Key derivation
 * ----------------------------------------------------------------------------*/
int kms_esdk_derive(const kms_esdk_suite *suite, const uint8_t *data_key, const uint8_t *message_id,
                    kms_esdk_keys *out)
{
    static const char *const md[] = {NULL, "SHA256", "SHA384", "SHA512"};
    uint8_t info[2 + KMS_ESDK_MAX_MSGID_LEN];
    info[0] = (uint8_t)(suite->id >> 8);
    info[1] = (uint8_t)suite->id;
    memset(out, 0, sizeof *out);
    if (suite->kdf == KMS_KDF_IDENTITY) {
        memcpy(out->key, data_key, suite->key_len);
        return 0;
    }
    if (!suite->commit) {
        /* Salt: hash-length zeros; info: suite id || message id. */
        memcpy(info + 2, message_id, suite->msgid_len);
        return kms_hkdf(md[suite->kdf], NULL, 0, data_key, suite->key_len, info,
                        2u + suite->msgid_len, out->key, suite->key_len);
    }
    /* Committing suites: salt = message id; info = suite id || "DERIVEKEY" and "COMMITKEY". */
    int r = -1;
    uint8_t derive_info[2 + 9];
    memcpy(derive_info, info, 2);
    memcpy(derive_info + 2, "DERIVEKEY", 9);
    if ((r = kms_hkdf(md[suite->kdf], message_id, suite->msgid_len, data_key, suite->key_len,
                      derive_info, sizeof derive_info, out->key, suite->key_len)) != 0) {
        goto out;
    }
    if ((r = kms_hkdf(md[suite->kdf], message_id, suite->msgid_len, data_key, suite->key_len,
                      (const uint8_t *)"COMMITKEY", 9, out->commit, KMS_ESDK_COMMIT_LEN)) != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        sodium_memzero(out, sizeof *out);
    }
    return r;
}

/* ---- Body AAD and IVs
 * ---------------------------------------------------------------------------*/
size_t kms_esdk_body_aad(uint8_t *out, const uint8_t *message_id, size_t msgid_len,
                         kms_esdk_body_kind kind, uint32_t seq, uint64_t content_len)
{
    static const char *const content[] = {"AWSKMSEncryptionClient Frame",
                                          "AWSKMSEncryptionClient Final Frame",
                                          "AWSKMSEncryptionClient Single Block"};
    size_t n = 0;
    size_t cl = strlen(content[kind]);
    memcpy(out, message_id, msgid_len);
    n += msgid_len;
    memcpy(out + n, content[kind], cl);
    n += cl;
    for (int i = 3; i >= 0; i--) {
        out[n++] = (uint8_t)(seq >> (8 * i));
    }
    for (int i = 7; i >= 0; i--) {
        out[n++] = (uint8_t)(content_len >> (8 * i));
    }
    return n;
}

void kms_esdk_frame_iv(uint8_t iv[KMS_ESDK_IV_LEN], uint32_t seq)
{
    memset(iv, 0, KMS_ESDK_IV_LEN);
    iv[8] = (uint8_t)(seq >> 24);
    iv[9] = (uint8_t)(seq >> 16);
    iv[10] = (uint8_t)(seq >> 8);
    iv[11] = (uint8_t)seq;
}
