/* libkms envelope encryption: AWS Encryption SDK messages (message format versions 1 and 2),
 * keyrings that wrap one fresh data key per message, and streaming encrypt/decrypt of data of any
 * size. Implemented from the public specification (awslabs/aws-encryption-sdk-specification), so
 * that messages are exchangeable with every other implementation of the format.
 *
 * Conventions are those of kms.h: 0 / -1 with a thread-local error (kms_last_error), constructors
 * return NULL, whoever allocates frees. A failed decrypt never releases a byte of plaintext that
 * has not been authenticated: frames are released only after their tag verified, the one-shot and
 * file calls release nothing unless the whole message (including its signature) verified. */
#ifndef KMS_ENVELOPE_H
#define KMS_ENVELOPE_H

#include <stdint.h>

#include "kms/kms.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Algorithm suites (framework/algorithm-suites.md) ----------------------------------------*/
#define KMS_SUITE_AES_128_GCM_IV12_TAG16_NO_KDF 0x0014
#define KMS_SUITE_AES_192_GCM_IV12_TAG16_NO_KDF 0x0046
#define KMS_SUITE_AES_256_GCM_IV12_TAG16_NO_KDF 0x0078
#define KMS_SUITE_AES_128_GCM_IV12_TAG16_HKDF_SHA256 0x0114
#define KMS_SUITE_AES_192_GCM_IV12_TAG16_HKDF_SHA256 0x0146
#define KMS_SUITE_AES_256_GCM_IV12_TAG16_HKDF_SHA256 0x0178
#define KMS_SUITE_AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256 0x0214
#define KMS_SUITE_AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384 0x0346
#define KMS_SUITE_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384 0x0378
#define KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY 0x0478 /* the default */
#define KMS_SUITE_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 0x0578

/* The suite's ENUM name from the specification ("ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY"), or
 * NULL for an id the ESDK does not define. */
KMS_API const char *kms_suite_name(uint16_t suite_id);
/* Accepts a hex id ("0x0478", "0478") or the ENUM name; 0 / -1 (ValidationException). */
KMS_API KMS_MUST_CHECK int kms_suite_parse(const char *text, uint16_t *suite_id);

/* framework/commitment-policy.md. The default (0) requires key commitment both ways. */
typedef enum kms_commitment_policy {
    KMS_COMMIT_REQUIRE_ENCRYPT_REQUIRE_DECRYPT = 0,
    KMS_COMMIT_REQUIRE_ENCRYPT_ALLOW_DECRYPT,
    KMS_COMMIT_FORBID_ENCRYPT_ALLOW_DECRYPT,
} kms_commitment_policy;

KMS_API KMS_MUST_CHECK int kms_commitment_policy_parse(const char *text,
                                                       kms_commitment_policy *policy);

/* ---- Keyrings (framework/keyring-interface.md) ------------------------------------------------
 * A keyring wraps the message's data key on encrypt and unwraps one of the message's encrypted
 * data keys on decrypt. Keyrings are immutable after construction and may be shared between
 * threads and messages. */
typedef struct kms_keyring kms_keyring;

/* Raw AES keyring (framework/raw-aes-keyring.md): the application's own 16, 24 or 32 byte
 * wrapping key (copied into locked memory). */
KMS_API kms_keyring *kms_keyring_raw_aes_new(const char *key_namespace, const char *key_name,
                                             const uint8_t *wrapping_key, size_t key_len);

/* framework/raw-rsa-keyring.md padding schemes. */
typedef enum kms_rsa_padding {
    KMS_RSA_PKCS1 = 0,
    KMS_RSA_OAEP_SHA1,
    KMS_RSA_OAEP_SHA256,
    KMS_RSA_OAEP_SHA384,
    KMS_RSA_OAEP_SHA512,
} kms_rsa_padding;

KMS_API KMS_MUST_CHECK int kms_rsa_padding_parse(const char *text, kms_rsa_padding *padding);

/* Raw RSA keyring: pem is a PEM public key (encrypt only) or private key (encrypt and
 * decrypt), PKCS#8, SPKI or PKCS#1; at least 2048 bits. */
KMS_API kms_keyring *kms_keyring_raw_rsa_new(const char *key_namespace, const char *key_name,
                                             const char *pem, size_t pem_len,
                                             kms_rsa_padding padding);

/* KMS keyring over this project's CMKs, called through the service gate (GenerateDataKey,
 * Encrypt, Decrypt) as the client's caller. key_ids (key id, key ARN, alias name or alias ARN)
 * are resolved to key ARNs at construction. On encrypt the first key generates the data key and
 * every other key also wraps it; on decrypt only encrypted data keys of these keys are tried
 * (strict mode). The client must outlive the keyring. */
KMS_API kms_keyring *kms_keyring_kms_new(kms_client *client, const char *const *key_ids,
                                         size_t key_count);
/* Discovery mode: decrypt with any CMK of this KMS the caller may use. Cannot encrypt. */
KMS_API kms_keyring *kms_keyring_kms_discovery_new(kms_client *client);

/* Multi-keyring (framework/multi-keyring.md): generator (may be NULL when the data key comes from
 * elsewhere, e.g. a re-encrypt) plus children. Takes ownership of all keyrings given, also on
 * failure. */
KMS_API kms_keyring *kms_keyring_multi_new(kms_keyring *generator, kms_keyring *const *children,
                                           size_t child_count);

KMS_API void kms_keyring_free(kms_keyring *keyring);

/* ---- Options ---------------------------------------------------------------------------------*/
/* Called with the bytes of input consumed so far and the total (0 when unknown); never from two
 * threads at once, but the fd and file calls may call it from any of their worker threads. */
typedef void (*kms_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* The default limit on encrypted data keys (EDKs) per message. The sender of a message chooses
 * its EDKs, and a decrypt tries them one by one: each EDK of a KMS key is one KMS Decrypt call
 * (an HSM operation and an audit record), so without a limit one crafted message with thousands
 * of junk EDKs makes thousands of calls. The AWS Encryption SDK allows 65,535 unless told
 * otherwise, and its developer guide ("Limiting encrypted data keys", configure.html
 * #config-limit-keys) advises setting a limit, above all for messages from untrusted sources;
 * here the safe value is the default. Ten covers a message wrapped by a few KMS keys in a few
 * regions plus raw keys. A message over the limit is refused (LimitExceededException) before
 * any key is tried; encrypt refuses to write one, so that what it writes decrypts with the
 * defaults. Raise max_encrypted_data_keys for messages wrapped by more keys. */
#define KMS_ENVELOPE_DEFAULT_MAX_EDKS 10

typedef struct kms_envelope_options {
    const kms_keyring *keyring; /* required */
    /* Encrypt: the message's encryption context. Decrypt: the context the caller requires; every
     * pair must be in the message (stored or, for required-but-unstored keys, authenticated). */
    const kms_encryption_context *context;
    /* Encrypt only: keys of context that are authenticated but not stored in the message
     * (framework/required-encryption-context-cmm.md); decrypt then needs them from the caller. */
    const char *const *required_context_keys;
    size_t required_context_key_count;
    uint16_t algorithm_suite;                /* encrypt; 0 = 0x0478 */
    uint32_t frame_length;                   /* encrypt; 0 = 4096; at most 16 MiB */
    kms_commitment_policy commitment_policy; /* default REQUIRE_ENCRYPT_REQUIRE_DECRYPT */
    /* Encrypt and decrypt: at most this many encrypted data keys per message; 0 means
     * KMS_ENVELOPE_DEFAULT_MAX_EDKS, UINT16_MAX every count the format can hold. See there. */
    uint16_t max_encrypted_data_keys;
    unsigned threads;         /* fd/file helpers; 0 = one per online core */
    kms_progress_fn progress; /* optional */
    void *progress_arg;
} kms_envelope_options;

/* What a decrypt found in the message header; kms_envelope_info_clean_up releases it. */
typedef struct kms_envelope_info {
    uint8_t message_version; /* 1 or 2 */
    uint16_t algorithm_suite;
    uint32_t frame_length; /* 0: non-framed body */
    uint8_t message_id[32];
    size_t message_id_len;
    kms_context_entry *context; /* stored and caller-supplied authenticated pairs, sorted */
    size_t context_count;
    char *key_provider_id;   /* of the encrypted data key that was used */
    char *key_provider_info; /* its text part: the key ARN, or a raw keyring's key name */
} kms_envelope_info;

KMS_API void kms_envelope_info_clean_up(kms_envelope_info *info);

/* ---- One-shot buffers ------------------------------------------------------------------------*/
/* *out is malloc'ed: free the message with kms_buffer_free and plaintexts with kms_secret_free.
 * info may be NULL. */
KMS_API KMS_MUST_CHECK int kms_envelope_encrypt(const kms_envelope_options *options,
                                                const uint8_t *plaintext, size_t plaintext_len,
                                                uint8_t **message, size_t *message_len);
KMS_API KMS_MUST_CHECK int kms_envelope_decrypt(const kms_envelope_options *options,
                                                const uint8_t *message, size_t message_len,
                                                uint8_t **plaintext, size_t *plaintext_len,
                                                kms_envelope_info *info);

/* ---- Streaming (client-apis/streaming.md) -----------------------------------------------------
 * Feed input with _update in pieces of any size; output is handed to write(), which returns 0 or
 * -1 (after raising an error, or with errno set). Decrypt hands over each frame's plaintext only
 * after its tag verified; for signed suites the signature is checked in _final, so an
 * application that must not act on unsigned plaintext buffers it until _final returns 0 (the
 * one-shot and file helpers do that). Memory stays bounded by a few frames whatever the size. */
typedef int (*kms_write_fn)(void *arg, const uint8_t *data, size_t len);
typedef struct kms_envelope_stream kms_envelope_stream;

/* plaintext_len: the total length when known (UINT64_MAX otherwise); it is only used to reject
 * messages that would exceed the format's limits early. */
KMS_API kms_envelope_stream *kms_envelope_encrypt_start(const kms_envelope_options *options,
                                                        uint64_t plaintext_len);
KMS_API kms_envelope_stream *kms_envelope_decrypt_start(const kms_envelope_options *options);
KMS_API KMS_MUST_CHECK int kms_envelope_update(kms_envelope_stream *stream, const uint8_t *in,
                                               size_t in_len, kms_write_fn write, void *arg);
/* Ends the message: encrypt writes the final frame and footer; decrypt checks the message was
 * complete, the signature and that no bytes follow. info may be NULL (decrypt only). */
KMS_API KMS_MUST_CHECK int kms_envelope_final(kms_envelope_stream *stream, kms_write_fn write,
                                              void *arg, kms_envelope_info *info);
KMS_API void kms_envelope_stream_free(kms_envelope_stream *stream);

/* ---- File descriptors and files --------------------------------------------------------------
 * Frames are independent: these use options->threads workers. The fd calls stream to out_fd as
 * frames verify (a failed decrypt may have written earlier verified frames: use the file calls
 * when that matters). */
KMS_API KMS_MUST_CHECK int kms_envelope_encrypt_fd(const kms_envelope_options *options, int in_fd,
                                                   int out_fd);
KMS_API KMS_MUST_CHECK int kms_envelope_decrypt_fd(const kms_envelope_options *options, int in_fd,
                                                   int out_fd, kms_envelope_info *info);

/* Paths; NULL or "-" is stdin / stdout. A regular-file output is written to a temporary file in
 * the same directory and renamed over out_path only when the whole operation succeeded (for
 * decrypt: every frame and the signature verified); on failure nothing is left behind. Any other
 * output (a pipe, a terminal, /dev/null) is streamed to directly. */
KMS_API KMS_MUST_CHECK int kms_envelope_encrypt_file(const kms_envelope_options *options,
                                                     const char *in_path, const char *out_path);
KMS_API KMS_MUST_CHECK int kms_envelope_decrypt_file(const kms_envelope_options *options,
                                                     const char *in_path, const char *out_path,
                                                     kms_envelope_info *info);

/* Re-encrypt: moves a message to the keys of destination. The message is decrypted with
 * options->keyring (every frame, the commitment and the signature verified) and encrypted again
 * under a fresh data key and message id, with the same encryption context (the caller's
 * required-but-unstored pairs stay unstored), frame length and kind of suite (signed or not;
 * legacy suites are upgraded to key commitment), or options->algorithm_suite. The plaintext
 * passes between the two in memory. Rewriting only the header would reuse the header tag's
 * AES-GCM key and IV (fixed at zero by the format) and let anyone holding both messages forge
 * frames, so the body is not copied. Paths as in the file calls. */
KMS_API KMS_MUST_CHECK int kms_envelope_reencrypt_file(const kms_envelope_options *options,
                                                       const kms_keyring *destination,
                                                       const char *in_path, const char *out_path);

#ifdef __cplusplus
}
#endif

#endif /* KMS_ENVELOPE_H */
