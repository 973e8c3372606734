/* One ESDK message: header construction and checks, frames, signature (see message.h). */
#include "envelope/message.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "util/error.h"
#include "util/secmem.h"
#include "util/util.h"

void kms_msg_init(kms_msg *m)
{
    memset(m, 0, sizeof *m);
    kms_esdk_header_init(&m->hdr);
    kms_ec_init(&m->full_ec);
    kms_ec_init(&m->auth_only);
    kms_buf_init(&m->header, false);
}

void kms_msg_clean_up(kms_msg *m)
{
    kms_esdk_header_clean_up(&m->hdr);
    kms_ec_clean_up(&m->full_ec);
    kms_ec_clean_up(&m->auth_only);
    kms_secure_free(m->keys);
    kms_secure_free(m->data_key);
    kms_buf_clean_up(&m->header);
    EVP_PKEY_free(m->sig_key);
    EVP_MD_CTX_free(m->hash);
    free(m->provider_id);
    free(m->provider_info);
    memset(m, 0, sizeof *m);
}

static const char *sig_curve(const kms_esdk_suite *s)
{
    return s->sig == KMS_SIG_P256 ? "P-256" : "P-384";
}

static const char *sig_md(const kms_esdk_suite *s)
{
    return s->sig == KMS_SIG_P256 ? "SHA256" : "SHA384";
}

static int hash_start(kms_msg *m)
{
    if (m->suite->sig == KMS_SIG_NONE) {
        return 0;
    }
    EVP_MD_CTX_free(m->hash);
    m->hash = EVP_MD_CTX_new();
    if (m->hash == NULL ||
        EVP_DigestInit_ex(m->hash, EVP_get_digestbyname(sig_md(m->suite)), NULL) != 1) {
        return kms_openssl_raise("signature hash");
    }
    return 0;
}

int kms_msg_hash(kms_msg *m, const uint8_t *p, size_t n)
{
    if (m->hash == NULL || n == 0) {
        return 0;
    }
    if (EVP_DigestUpdate(m->hash, p, n) != 1) {
        return kms_openssl_raise("signature hash");
    }
    return 0;
}

/* A fresh signing key; its compressed public key goes into the stored context
 * (message-header.md: aws-crypto-public-key). */
static int new_signing_key(kms_msg *m, kms_ec *stored)
{
    int r = -1;
    char *b64 = NULL;
    kms_buf point;
    kms_buf_init(&point, false);
    EVP_PKEY_free(m->sig_key);
    m->sig_key = NULL;
    if ((r = kms_ecdsa_keygen(sig_curve(m->suite), &m->sig_key)) != 0) {
        goto out;
    }
    if ((r = kms_ecdsa_public_compressed(m->sig_key, &point)) != 0) {
        goto out;
    }
    if ((b64 = kms_base64_encode(point.data, point.len)) == NULL) {
        r = -1; /* raised */
        goto out;
    }
    if ((r = kms_ec_put(stored, KMS_ESDK_PUBKEY_CONTEXT_KEY, b64)) != 0) {
        goto out;
    }
    r = 0;
out:
    free(b64);
    kms_buf_clean_up(&point);
    return r;
}

/* client-apis/encrypt.md "Construct the header": body, then the tag over body || the
 * serialised authenticate-only context, IV zero. */
static int seal_header(kms_msg *m)
{
    int r = -1;
    kms_buf aad;
    kms_buf_init(&aad, false);
    kms_gcm g = {0};
    uint8_t iv[KMS_ESDK_IV_LEN] = {0};
    m->header.len = 0;
    kms_ec_sort(&m->hdr.stored_ec);
    if ((r = kms_esdk_header_serialize_body(&m->hdr, &m->header)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append(&aad, m->header.data, m->header.len)) != 0) {
        goto out;
    }
    if ((r = kms_ec_serialize(&m->auth_only, &aad)) != 0) {
        goto out;
    }
    if ((r = kms_gcm_init(&g, m->keys->key, m->suite->key_len, true)) != 0) {
        goto out;
    }
    if ((r = kms_gcm_seal(&g, iv, aad.data, aad.len, NULL, 0, NULL, m->hdr.tag)) != 0) {
        goto out;
    }
    m->hdr.body_len = m->header.len;
    if (m->suite->version == 1 && (r = kms_buf_append(&m->header, iv, sizeof iv)) != 0) {
        goto out;
    }
    if ((r = kms_buf_append(&m->header, m->hdr.tag, KMS_ESDK_TAG_LEN)) != 0) {
        goto out;
    }
    m->hdr.total_len = m->header.len;
    if ((r = hash_start(m)) != 0) {
        goto out;
    }
    if ((r = kms_msg_hash(m, m->header.data, m->header.len)) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_gcm_clean_up(&g);
    kms_buf_clean_up(&aad);
    return r;
}

static bool is_required_key(const kms_envelope_options *o, const char *key)
{
    for (size_t i = 0; i < o->required_context_key_count; i++) {
        if (strcmp(o->required_context_keys[i], key) == 0) {
            return true;
        }
    }
    return false;
}

static int alloc_secrets(kms_msg *m)
{
    m->keys = kms_secure_alloc(sizeof *m->keys);
    m->data_key = kms_secure_alloc(KMS_ESDK_MAX_KEY_LEN);
    return m->keys != NULL && m->data_key != NULL ? 0 : -1;
}

/* The limit on encrypted data keys the options set (envelope.h: KMS_ENVELOPE_DEFAULT_MAX_EDKS). */
static uint16_t max_edks_of(const kms_envelope_options *o)
{
    return o->max_encrypted_data_keys != 0 ? o->max_encrypted_data_keys
                                           : KMS_ENVELOPE_DEFAULT_MAX_EDKS;
}

/* Has the keyring generate and wrap the message's data key (into m->data_key), leaving the
 * EDKs in m->hdr.edks. */
static int wrap_data_key(kms_msg *m, const kms_keyring *keyring, uint16_t max_edks)
{
    kms_materials mat;
    KMS_GUARD(kms_materials_init(&mat, m->suite, &m->full_ec));
    int r = -1;
    if (keyring->vt->on_encrypt == NULL) {
        r = kms_raise(KMS_ERR_VALIDATION,
                      "a %s keyring cannot encrypt: name the keys to "
                      "encrypt under",
                      keyring->vt->name);
        goto out;
    }
    if (keyring->vt->on_encrypt(keyring, &mat) != 0) {
        goto out;
    }
    if (!mat.has_data_key || mat.edks.n == 0) {
        r = kms_raise(KMS_ERR_INTERNAL, "the keyring produced no encrypted data key");
        goto out;
    }
    if (mat.edks.n > max_edks) {
        r = kms_raise(KMS_ERR_LIMIT_EXCEEDED,
                      "%zu encrypted data keys exceed the maximum of %u per message: raise "
                      "max_encrypted_data_keys (kmsctl: --max-encrypted-data-keys), and on "
                      "decrypt too",
                      mat.edks.n, max_edks);
        goto out;
    }
    memcpy(m->data_key, mat.data_key, m->suite->key_len);
    kms_edk_list_clean_up(&m->hdr.edks);
    m->hdr.edks = mat.edks;
    mat.edks.v = NULL;
    mat.edks.n = 0;
    r = 0;
out:
    kms_materials_clean_up(&mat);
    return r;
}

int kms_msg_encrypt_begin(kms_msg *m, const kms_envelope_options *o)
{
    KMS_ENSURE(o != NULL && o->keyring != NULL, KMS_ERR_VALIDATION,
               "no keyring: give the keys to encrypt under");
    uint16_t suite_id =
        o->algorithm_suite != 0 ? o->algorithm_suite : KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY;
    m->suite = kms_esdk_suite_get(suite_id);
    KMS_ENSURE(m->suite != NULL, KMS_ERR_VALIDATION, "unknown algorithm suite 0x%04x", suite_id);
    /* framework/commitment-policy.md: which suites encrypt may use. */
    bool forbid = o->commitment_policy == KMS_COMMIT_FORBID_ENCRYPT_ALLOW_DECRYPT;
    KMS_ENSURE(m->suite->commit || forbid, KMS_ERR_VALIDATION,
               "algorithm suite 0x%04x has no key commitment, which the commitment policy "
               "requires: use 0x0478 or 0x0578, or the policy FORBID_ENCRYPT_ALLOW_DECRYPT",
               suite_id);
    KMS_ENSURE(!m->suite->commit || !forbid, KMS_ERR_VALIDATION,
               "the commitment policy FORBID_ENCRYPT_ALLOW_DECRYPT forbids committing suite "
               "0x%04x: choose a message format version 1 suite",
               suite_id);
    uint32_t frame = o->frame_length != 0 ? o->frame_length : KMS_ESDK_DEFAULT_FRAME;
    KMS_ENSURE(frame <= KMS_ESDK_MAX_FRAME, KMS_ERR_VALIDATION,
               "frame length %u is above the limit of %u bytes", frame, KMS_ESDK_MAX_FRAME);

    KMS_GUARD(kms_ec_from_public(&m->full_ec, o->context));
    /* encrypt.md: keys starting "aws-crypto-" are reserved for the SDK. */
    for (size_t i = 0; i < m->full_ec.n; i++) {
        KMS_ENSURE(strncmp(m->full_ec.e[i].key, "aws-crypto-", 11) != 0, KMS_ERR_VALIDATION,
                   "encryption context key '%s' is reserved: keys starting 'aws-crypto-' belong "
                   "to the message format",
                   m->full_ec.e[i].key);
    }
    for (size_t i = 0; i < o->required_context_key_count; i++) {
        KMS_ENSURE(kms_ec_get(&m->full_ec, o->required_context_keys[i]) != NULL, KMS_ERR_VALIDATION,
                   "required encryption context key '%s' is not in the encryption context",
                   o->required_context_keys[i]);
    }
    m->hdr.version = m->suite->version;
    m->hdr.suite = m->suite;
    m->hdr.content_type = 2;
    m->hdr.frame_length = frame;
    for (size_t i = 0; i < m->full_ec.n; i++) {
        kms_ec *dst = is_required_key(o, m->full_ec.e[i].key) ? &m->auth_only : &m->hdr.stored_ec;
        KMS_GUARD(kms_ec_put(dst, m->full_ec.e[i].key, m->full_ec.e[i].value));
    }
    if (m->suite->sig != KMS_SIG_NONE) {
        KMS_GUARD(new_signing_key(m, &m->hdr.stored_ec));
        KMS_GUARD(kms_ec_put(&m->full_ec, KMS_ESDK_PUBKEY_CONTEXT_KEY,
                             kms_ec_get(&m->hdr.stored_ec, KMS_ESDK_PUBKEY_CONTEXT_KEY)));
        kms_ec_sort(&m->full_ec);
    }
    KMS_GUARD(alloc_secrets(m));
    KMS_GUARD(wrap_data_key(m, o->keyring, max_edks_of(o)));
    randombytes_buf(m->hdr.message_id, m->suite->msgid_len);
    KMS_GUARD(kms_esdk_derive(m->suite, m->data_key, m->hdr.message_id, m->keys));
    memcpy(m->hdr.suite_data, m->keys->commit, m->suite->suite_data_len);
    return seal_header(m);
}

/* decrypt.md / default-cmm.md: the caller's context must agree with the stored one; pairs the
 * message does not store are the required-but-unstored context, authenticated through the
 * header tag. */
static int reproduce_context(kms_msg *m, const kms_envelope_options *o)
{
    KMS_GUARD(kms_ec_copy(&m->full_ec, &m->hdr.stored_ec));
    for (size_t i = 0; o->context != NULL && i < o->context->count; i++) {
        const char *k = o->context->entries[i].key, *v = o->context->entries[i].value;
        KMS_ENSURE(k != NULL && v != NULL, KMS_ERR_VALIDATION,
                   "an encryption context entry has no key or value");
        const char *stored = kms_ec_get(&m->hdr.stored_ec, k);
        if (stored != NULL) {
            KMS_ENSURE(strcmp(stored, v) == 0, KMS_ERR_INVALID_CIPHERTEXT,
                       "encryption context mismatch: the message's value for '%s' differs from "
                       "the one given",
                       k);
            continue;
        }
        KMS_ENSURE(strcmp(k, KMS_ESDK_PUBKEY_CONTEXT_KEY) != 0, KMS_ERR_VALIDATION,
                   "encryption context key '%s' is reserved", k);
        KMS_GUARD(kms_ec_put(&m->auth_only, k, v));
        KMS_GUARD(kms_ec_put(&m->full_ec, k, v));
    }
    kms_ec_sort(&m->full_ec);
    kms_ec_sort(&m->auth_only);
    return 0;
}

static int load_verification_key(kms_msg *m)
{
    const char *b64 = kms_ec_get(&m->hdr.stored_ec, KMS_ESDK_PUBKEY_CONTEXT_KEY);
    if (m->suite->sig == KMS_SIG_NONE) {
        KMS_ENSURE(b64 == NULL, KMS_ERR_INVALID_CIPHERTEXT,
                   "message header: an unsigned suite's context carries a signature key");
        return 0;
    }
    KMS_ENSURE(b64 != NULL, KMS_ERR_INVALID_CIPHERTEXT,
               "message header: a signed suite's context has no '%s'", KMS_ESDK_PUBKEY_CONTEXT_KEY);
    uint8_t *point = NULL;
    size_t n = 0;
    if (kms_base64_decode(b64, "the message's signature key", false, &point, &n) != 0) {
        return kms_raise(KMS_ERR_INVALID_CIPHERTEXT, "%s", kms_last_error_message());
    }
    m->sig_key = kms_ecdsa_public_from_point(sig_curve(m->suite), point, n);
    free(point);
    return m->sig_key != NULL ? 0 : -1;
}

static int unwrap_data_key(kms_msg *m, const kms_keyring *keyring)
{
    kms_materials mat;
    KMS_GUARD(kms_materials_init(&mat, m->suite, &m->full_ec));
    int r = -1;
    if ((r = keyring->vt->on_decrypt(keyring, &mat, &m->hdr.edks)) != 0) {
        goto out;
    }
    if (!mat.has_data_key || mat.used_edk == NULL) {
        r = kms_raise(KMS_ERR_INTERNAL, "the keyring returned no data key");
        goto out;
    }
    memcpy(m->data_key, mat.data_key, m->suite->key_len);
    m->provider_id = kms_strdup_printf("%.*s", (int)mat.used_edk->provider_id_len,
                                       (const char *)mat.used_edk->provider_id);
    m->provider_info = kms_strdup_printf("%.*s", (int)mat.used_edk->provider_info_len,
                                         (const char *)mat.used_edk->provider_info);
    if (m->provider_id == NULL || m->provider_info == NULL) {
        r = -1; /* kms_strdup_printf raised */
        goto out;
    }
    r = 0;
out:
    kms_materials_clean_up(&mat);
    return r;
}

static int verify_header(kms_msg *m, const uint8_t *hdr_bytes)
{
    int r = -1;
    kms_buf aad;
    kms_buf_init(&aad, false);
    kms_gcm g = {0};
    if ((r = kms_buf_append(&aad, hdr_bytes, m->hdr.body_len)) != 0) {
        goto out;
    }
    if ((r = kms_ec_serialize(&m->auth_only, &aad)) != 0) {
        goto out;
    }
    if ((r = kms_gcm_init(&g, m->keys->key, m->suite->key_len, false)) != 0) {
        goto out;
    }
    if (kms_gcm_open(&g, m->hdr.header_iv, aad.data, aad.len, NULL, 0, NULL, m->hdr.tag) != 0) {
        r = kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                      "the message header did not authenticate: it was modified, or it was not "
                      "written with the encryption context given");
        goto out;
    }
    if ((r = hash_start(m)) != 0) {
        goto out;
    }
    if ((r = kms_msg_hash(m, hdr_bytes, m->hdr.total_len)) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_gcm_clean_up(&g);
    kms_buf_clean_up(&aad);
    return r;
}

int kms_msg_decrypt_begin(kms_msg *m, const kms_envelope_options *o, const uint8_t *hdr_bytes)
{
    KMS_ENSURE(o != NULL && o->keyring != NULL, KMS_ERR_VALIDATION,
               "no keyring: give the keys (or discovery) to decrypt with");
    m->suite = m->hdr.suite;
    /* framework/commitment-policy.md: REQUIRE_DECRYPT refuses uncommitted messages before any
     * key is touched. */
    KMS_ENSURE(m->suite->commit ||
                   o->commitment_policy != KMS_COMMIT_REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
               KMS_ERR_INVALID_CIPHERTEXT,
               "the message uses algorithm suite 0x%04x without key commitment, which the "
               "commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT refuses; to read it anyway use "
               "the policy REQUIRE_ENCRYPT_ALLOW_DECRYPT",
               m->suite->id);
    /* Before any key is tried: each encrypted data key may cost a KMS call (envelope.h,
     * KMS_ENVELOPE_DEFAULT_MAX_EDKS). */
    KMS_ENSURE(m->hdr.edks.n <= max_edks_of(o), KMS_ERR_LIMIT_EXCEEDED,
               "the message has %zu encrypted data keys, more than the maximum of %u: refused "
               "before trying any (raise max_encrypted_data_keys, kmsctl: "
               "--max-encrypted-data-keys, only for messages you expect to have that many)",
               m->hdr.edks.n, max_edks_of(o));
    KMS_GUARD(reproduce_context(m, o));
    KMS_GUARD(load_verification_key(m));
    KMS_GUARD(alloc_secrets(m));
    KMS_GUARD(unwrap_data_key(m, o->keyring));
    KMS_GUARD(kms_esdk_derive(m->suite, m->data_key, m->hdr.message_id, m->keys));
    if (m->suite->commit) {
        /* transitive-requirements.md: constant-time commitment check. */
        KMS_ENSURE(CRYPTO_memcmp(m->keys->commit, m->hdr.suite_data, KMS_ESDK_COMMIT_LEN) == 0,
                   KMS_ERR_INVALID_CIPHERTEXT,
                   "key commitment check failed: the data key does not belong to this message");
    }
    return verify_header(m, hdr_bytes);
}

int kms_msg_seal_frame(const kms_msg *m, kms_gcm *g, uint32_t seq, bool final, const uint8_t *pt,
                       size_t len, uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    uint8_t aad[KMS_ESDK_BODY_AAD_MAX];
    size_t aad_len = kms_esdk_body_aad(aad, m->hdr.message_id, m->suite->msgid_len,
                                       final ? KMS_BODY_FINAL_FRAME : KMS_BODY_FRAME, seq, len);
    size_t n = 0;
    if (final) {
        memset(out, 0xFF, 4);
        n = 4;
    }
    out[n++] = (uint8_t)(seq >> 24);
    out[n++] = (uint8_t)(seq >> 16);
    out[n++] = (uint8_t)(seq >> 8);
    out[n++] = (uint8_t)seq;
    kms_esdk_frame_iv(out + n, seq);
    const uint8_t *iv = out + n;
    n += KMS_ESDK_IV_LEN;
    if (final) {
        out[n++] = (uint8_t)(len >> 24);
        out[n++] = (uint8_t)(len >> 16);
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    }
    KMS_GUARD(kms_gcm_seal(g, iv, aad, aad_len, pt, len, out + n, out + n + len));
    *out_len = n + len + KMS_ESDK_TAG_LEN;
    return 0;
}

/* encrypt.md/decrypt.md: a frame's IV is its sequence number, left-padded with zeros. */
static int check_iv(const uint8_t *iv, uint32_t seq)
{
    uint8_t want[KMS_ESDK_IV_LEN];
    kms_esdk_frame_iv(want, seq);
    KMS_ENSURE(memcmp(iv, want, KMS_ESDK_IV_LEN) == 0, KMS_ERR_INVALID_CIPHERTEXT,
               "message body: frame %u has an IV that is not its sequence number", seq);
    return 0;
}

static int scan_frame(const kms_msg *m, const uint8_t *p, size_t n, uint32_t seq, kms_frame *f)
{
    /* message-body.md: a regular frame is seq, IV, frame_length bytes, tag; the final frame is
     * the marker, seq, IV, a 4-byte length, that many bytes, tag. A short read means "more". */
    uint32_t frame_len = m->hdr.frame_length;
    uint32_t first = 0, len = frame_len;
    kms_reader r;
    kms_reader_init(&r, p, n);
    if (kms_reader_be32(&r, &first) != 0) {
        return 1;
    }
    f->final = first == KMS_ESDK_FINAL_MARKER;
    if (!f->final) {
        KMS_ENSURE(first == seq, KMS_ERR_INVALID_CIPHERTEXT,
                   "message body: frame %u found where frame %u belongs (frames reordered, "
                   "duplicated or missing)",
                   first, seq);
        /* At most 2^32 - 1 frames: the last sequence number is the final frame's. */
        KMS_ENSURE(seq != UINT32_MAX, KMS_ERR_INVALID_CIPHERTEXT, "message body: too many frames");
    } else {
        uint32_t fseq = 0;
        if (kms_reader_be32(&r, &fseq) != 0) {
            return 1;
        }
        KMS_ENSURE(fseq == seq, KMS_ERR_INVALID_CIPHERTEXT,
                   "message body: final frame numbered %u where frame %u belongs", fseq, seq);
    }
    if (kms_reader_bytes(&r, KMS_ESDK_IV_LEN, &f->iv) != 0 ||
        (f->final && kms_reader_be32(&r, &len) != 0)) {
        return 1;
    }
    KMS_ENSURE(len <= frame_len, KMS_ERR_INVALID_CIPHERTEXT,
               "message body: final frame of %u bytes exceeds the frame length %u", len, frame_len);
    if (kms_reader_bytes(&r, len, &f->ct) != 0 ||
        kms_reader_bytes(&r, KMS_ESDK_TAG_LEN, &f->tag) != 0) {
        return 1;
    }
    KMS_GUARD(check_iv(f->iv, seq));
    f->seq = seq;
    f->len = len;
    f->size = n - r.left;
    return 0;
}

int kms_msg_scan_frame(const kms_msg *m, const uint8_t *p, size_t n, uint32_t seq, kms_frame *f)
{
    memset(f, 0, sizeof *f);
    int rc = scan_frame(m, p, n, seq, f);
    if (rc != 0) {
        memset(f, 0, sizeof *f);
    }
    return rc;
}

int kms_msg_open_frame(const kms_msg *m, kms_gcm *g, const kms_frame *f, uint8_t *out)
{
    uint8_t aad[KMS_ESDK_BODY_AAD_MAX];
    size_t aad_len =
        kms_esdk_body_aad(aad, m->hdr.message_id, m->suite->msgid_len,
                          f->final ? KMS_BODY_FINAL_FRAME : KMS_BODY_FRAME, f->seq, f->len);
    if (kms_gcm_open(g, f->iv, aad, aad_len, f->ct, f->len, out, f->tag) != 0) {
        sodium_memzero(out, f->len);
        return kms_raise(KMS_ERR_INVALID_CIPHERTEXT,
                         "message body: frame %u did not authenticate (modified or truncated); "
                         "no plaintext of it was released",
                         f->seq);
    }
    return 0;
}

int kms_msg_footer(kms_msg *m, kms_buf *out)
{
    if (m->suite->sig == KMS_SIG_NONE) {
        return 0;
    }
    int r = -1;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    kms_buf sig;
    kms_buf_init(&sig, false);
    if (EVP_DigestFinal_ex(m->hash, digest, &dlen) != 1) {
        r = kms_openssl_raise("signature hash");
        goto out;
    }
    if ((r = kms_ecdsa_sign_digest(m->sig_key, sig_md(m->suite), digest, dlen, &sig)) != 0) {
        goto out;
    }
    /* message-footer.md: signature length, then the signature. */
    if ((r = kms_buf_append_be16_bytes(out, sig.data, sig.len)) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_buf_clean_up(&sig);
    return r;
}

int kms_msg_verify_footer(kms_msg *m, const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    if (m->suite->sig == KMS_SIG_NONE) {
        return 0;
    }
    /* message-footer.md: signature length, then the signature. */
    kms_reader r;
    const uint8_t *sig = NULL;
    size_t sig_len = 0;
    kms_reader_init(&r, p, n);
    if (kms_reader_be16_bytes(&r, &sig, &sig_len) != 0) {
        return 1;
    }
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (EVP_DigestFinal_ex(m->hash, digest, &dlen) != 1) {
        return kms_openssl_raise("signature hash");
    }
    KMS_GUARD(kms_ecdsa_verify_digest(m->sig_key, sig_md(m->suite), digest, dlen, sig, sig_len));
    *used = n - r.left;
    return 0;
}

int kms_msg_info(const kms_msg *m, kms_envelope_info *info)
{
    memset(info, 0, sizeof *info);
    info->message_version = m->hdr.version;
    info->algorithm_suite = m->suite->id;
    info->frame_length = m->hdr.frame_length;
    memcpy(info->message_id, m->hdr.message_id, m->suite->msgid_len);
    info->message_id_len = m->suite->msgid_len;
    info->context = calloc(m->full_ec.n + 1, sizeof *info->context);
    info->key_provider_id = strdup(m->provider_id != NULL ? m->provider_id : "");
    info->key_provider_info = strdup(m->provider_info != NULL ? m->provider_info : "");
    if (info->context == NULL || info->key_provider_id == NULL || info->key_provider_info == NULL) {
        kms_envelope_info_clean_up(info);
        return kms_raise(KMS_ERR_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < m->full_ec.n; i++) {
        info->context[i].key = strdup(m->full_ec.e[i].key);
        info->context[i].value = strdup(m->full_ec.e[i].value);
        info->context_count++;
        if (info->context[i].key == NULL || info->context[i].value == NULL) {
            kms_envelope_info_clean_up(info);
            return kms_raise(KMS_ERR_INTERNAL, "out of memory");
        }
    }
    return 0;
}

void kms_envelope_info_clean_up(kms_envelope_info *info)
{
    if (info == NULL) {
        return;
    }
    for (size_t i = 0; i < info->context_count; i++) {
        free((char *)info->context[i].key);
        free((char *)info->context[i].value);
    }
    free(info->context);
    free(info->key_provider_id);
    free(info->key_provider_info);
    memset(info, 0, sizeof *info);
}
