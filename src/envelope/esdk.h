/* The AWS Encryption SDK message format, inside the envelope module: algorithm suites, encryption
 * context serialisation, the header, the body AAD and frames, and the materials that keyrings
 * fill in. Everything here follows awslabs/aws-encryption-sdk-specification; the comments cite
 * the section. */
#ifndef KMS_ENVELOPE_ESDK_H
#define KMS_ENVELOPE_ESDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/envelope.h"
#include "util/buf.h"

#define KMS_ESDK_IV_LEN 12
#define KMS_ESDK_TAG_LEN 16
#define KMS_ESDK_MAX_KEY_LEN 32
#define KMS_ESDK_MAX_MSGID_LEN 32
#define KMS_ESDK_COMMIT_LEN 32
#define KMS_ESDK_DEFAULT_FRAME 4096u
#define KMS_ESDK_MAX_FRAME (16u * 1024 * 1024) /* our bound: memory stays a few frames */
#define KMS_ESDK_MAX_HEADER (1u * 1024 * 1024) /* our bound on a header we will buffer */
#define KMS_ESDK_FINAL_MARKER 0xFFFFFFFFu
#define KMS_ESDK_PUBKEY_CONTEXT_KEY "aws-crypto-public-key"

/* ---- framework/algorithm-suites.md ----------------------------------------------------------*/
typedef enum kms_esdk_kdf {
    KMS_KDF_IDENTITY,
    KMS_KDF_SHA256,
    KMS_KDF_SHA384,
    KMS_KDF_SHA512
} kms_esdk_kdf;
typedef enum kms_esdk_sig { KMS_SIG_NONE, KMS_SIG_P256, KMS_SIG_P384 } kms_esdk_sig;

typedef struct kms_esdk_suite {
    uint16_t id;
    const char *name;
    uint8_t version; /* message format version: 1 or 2 */
    uint8_t key_len; /* data key and derived key length, bytes */
    kms_esdk_kdf kdf;
    bool commit; /* key commitment (suite data = 32-byte commit key) */
    kms_esdk_sig sig;
    uint8_t msgid_len; /* 16 (v1) or 32 (v2) */
    uint8_t suite_data_len;
} kms_esdk_suite;

const kms_esdk_suite *kms_esdk_suite_get(uint16_t id); /* NULL if unknown */

/* ---- framework/structures.md: encryption context ---------------------------------------------
 * Owned copy, keys and values NUL-terminated (a NUL inside either is refused), unique keys. */
typedef struct kms_ec_entry {
    char *key;
    char *value;
} kms_ec_entry;

typedef struct kms_ec {
    kms_ec_entry *e;
    size_t n;
} kms_ec;

void kms_ec_init(kms_ec *ec);
void kms_ec_clean_up(kms_ec *ec);
int kms_ec_put(kms_ec *ec, const char *key, const char *value) __attribute__((warn_unused_result));
const char *kms_ec_get(const kms_ec *ec, const char *key);
int kms_ec_from_public(kms_ec *ec, const kms_encryption_context *in)
    __attribute__((warn_unused_result));
int kms_ec_copy(kms_ec *dst, const kms_ec *src) __attribute__((warn_unused_result));
/* Sorted (by UTF-8 bytes of the key), as the serialisation requires. */
void kms_ec_sort(kms_ec *ec);
/* structures.md "Serialization": count (2) + entries, sorted; nothing at all when empty. */
int kms_ec_serialize(const kms_ec *ec, kms_buf *out) __attribute__((warn_unused_result));
/* A borrowed view for keyrings and the KMS calls (valid while ec lives). */
int kms_ec_view(const kms_ec *ec, kms_context_entry **entries, kms_encryption_context *view)
    __attribute__((warn_unused_result));

/* ---- Encrypted data keys (structures.md) ------------------------------------------------------*/
typedef struct kms_edk {
    uint8_t *provider_id;
    size_t provider_id_len;
    uint8_t *provider_info;
    size_t provider_info_len;
    uint8_t *ciphertext;
    size_t ciphertext_len;
} kms_edk;

typedef struct kms_edk_list {
    kms_edk *v;
    size_t n;
} kms_edk_list;

void kms_edk_list_clean_up(kms_edk_list *l);
/* Copies the three byte strings. */
int kms_edk_list_add(kms_edk_list *l, const void *provider_id, size_t id_len,
                     const void *provider_info, size_t info_len, const void *ciphertext,
                     size_t ct_len) __attribute__((warn_unused_result));

/* ---- Materials (framework/structures.md) -------------------------------------------------------
 * What the CMM hands to keyrings. Encrypt: the keyring fills data_key (if has_data_key is false
 * and it can generate) and adds an EDK. Decrypt: the keyring sets data_key from one EDK. */
typedef struct kms_materials {
    const kms_esdk_suite *suite;
    const kms_ec *ec;  /* the full context: stored plus required-but-unstored */
    uint8_t *data_key; /* kms_secure_alloc'ed, suite->key_len bytes */
    bool has_data_key;
    kms_edk_list edks; /* encrypt: out */
    /* decrypt: the EDK that worked (borrowed from the header) */
    const kms_edk *used_edk;
} kms_materials;

int kms_materials_init(kms_materials *m, const kms_esdk_suite *suite, const kms_ec *ec)
    __attribute__((warn_unused_result));
void kms_materials_clean_up(kms_materials *m);

/* ---- Keyrings: a small vtable (style.md: backends as small vtables) ---------------------------
 * on_encrypt: raise and return -1 on failure, add one EDK (generating the data key first if the
 * materials have none and the keyring can). on_decrypt: try the EDKs this keyring owns, set the
 * data key from the first that unwraps and return 0; return -1 with an error raised when none
 * did (NotFoundException-like "no encrypted data key of this keyring" or the unwrap error). */
typedef struct kms_keyring_vtable {
    const char *name;
    int (*on_encrypt)(const kms_keyring *kr, kms_materials *m);
    int (*on_decrypt)(const kms_keyring *kr, kms_materials *m, const kms_edk_list *edks);
    void (*destroy)(kms_keyring *kr);
} kms_keyring_vtable;

struct kms_keyring {
    const kms_keyring_vtable *vt;
};

/* ---- data-format/message-header.md
 * -------------------------------------------------------------*/
typedef struct kms_esdk_header {
    uint8_t version;
    const kms_esdk_suite *suite;
    uint8_t message_id[KMS_ESDK_MAX_MSGID_LEN];
    kms_ec stored_ec; /* as found in the header AAD */
    kms_edk_list edks;
    uint8_t content_type; /* 1 non-framed, 2 framed */
    uint32_t frame_length;
    uint8_t suite_data[KMS_ESDK_COMMIT_LEN];
    uint8_t header_iv[KMS_ESDK_IV_LEN]; /* v1 only; zero for v2 */
    uint8_t tag[KMS_ESDK_TAG_LEN];
    size_t body_len;  /* bytes of header body (authenticated as AAD) */
    size_t total_len; /* header body + header authentication */
} kms_esdk_header;

void kms_esdk_header_init(kms_esdk_header *h);
void kms_esdk_header_clean_up(kms_esdk_header *h);

/* Parses a header from the start of p. Returns 0 (h filled, h->total_len bytes used), 1 when p
 * ends before the header does (feed more bytes and call again), -1 on a malformed header
 * (InvalidCiphertextException naming the field). */
int kms_esdk_header_parse(const uint8_t *p, size_t n, kms_esdk_header *h)
    __attribute__((warn_unused_result));

/* Serialises the header body (everything before the header authentication) into out. */
int kms_esdk_header_serialize_body(const kms_esdk_header *h, kms_buf *out)
    __attribute__((warn_unused_result));

/* ---- Keys of one message (transitive-requirements.md: HKDF encryption key, commit key) --------*/
typedef struct kms_esdk_keys {
    uint8_t key[KMS_ESDK_MAX_KEY_LEN]; /* derived data key */
    uint8_t commit[KMS_ESDK_COMMIT_LEN];
} kms_esdk_keys;

int kms_esdk_derive(const kms_esdk_suite *suite, const uint8_t *data_key, const uint8_t *message_id,
                    kms_esdk_keys *out) __attribute__((warn_unused_result));

/* ---- data-format/message-body-aad.md
 * ------------------------------------------------------------*/
typedef enum kms_esdk_body_kind {
    KMS_BODY_FRAME,       /* "AWSKMSEncryptionClient Frame" */
    KMS_BODY_FINAL_FRAME, /* "AWSKMSEncryptionClient Final Frame" */
    KMS_BODY_SINGLE,      /* "AWSKMSEncryptionClient Single Block" */
} kms_esdk_body_kind;

#define KMS_ESDK_BODY_AAD_MAX (KMS_ESDK_MAX_MSGID_LEN + 40 + 4 + 8)
/* Writes the body AAD into out (KMS_ESDK_BODY_AAD_MAX bytes), returns its length. */
size_t kms_esdk_body_aad(uint8_t *out, const uint8_t *message_id, size_t msgid_len,
                         kms_esdk_body_kind kind, uint32_t seq, uint64_t content_len);

/* Frame IV: the sequence number, big-endian, left-padded with zeros to 12 bytes. */
void kms_esdk_frame_iv(uint8_t iv[KMS_ESDK_IV_LEN], uint32_t seq);

#endif
