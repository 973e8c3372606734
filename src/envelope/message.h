/* One message being encrypted or decrypted: the header with its keys, the signature state and
 * the frame seal/open steps shared by the streaming API (stream.c), the parallel fd pipeline
 * (pipeline.c) and re-encrypt (files.c). client-apis/encrypt.md and decrypt.md. */
#ifndef KMS_ENVELOPE_MESSAGE_H
#define KMS_ENVELOPE_MESSAGE_H

#include <openssl/evp.h>

#include "envelope/crypto.h"
#include "envelope/esdk.h"

typedef struct kms_msg {
    const kms_esdk_suite *suite;
    kms_esdk_header hdr;
    kms_ec full_ec;      /* stored plus required-but-unstored */
    kms_ec auth_only;    /* required-but-unstored: authenticated, not in the header */
    kms_esdk_keys *keys; /* locked memory */
    uint8_t *data_key;   /* locked memory, suite->key_len (kept for re-encrypt) */
    kms_buf header;      /* the serialised header (encrypt, re-encrypt) */
    EVP_PKEY *sig_key;   /* encrypt: private signing key; decrypt: the verification key */
    EVP_MD_CTX *hash;    /* running hash of header and body for signed suites */
    char *provider_id;   /* decrypt: the EDK that unwrapped */
    char *provider_info;
} kms_msg;

/* Sizes of serialised frames (message-body.md). */
static inline size_t kms_msg_regular_frame_size(uint32_t frame_len)
{
    return 4u + KMS_ESDK_IV_LEN + frame_len + KMS_ESDK_TAG_LEN;
}
static inline size_t kms_msg_final_frame_size(size_t content_len)
{
    return 4u + 4u + KMS_ESDK_IV_LEN + 4u + content_len + KMS_ESDK_TAG_LEN;
}

void kms_msg_init(kms_msg *m);
void kms_msg_clean_up(kms_msg *m);

/* Encrypt: materials from the keyring, message id, keys, the header in m->header. */
int kms_msg_encrypt_begin(kms_msg *m, const kms_envelope_options *o)
    __attribute__((warn_unused_result));
/* Decrypt: m->hdr already parsed from hdr_bytes (m->hdr.total_len bytes). Applies the commitment
 * policy and the caller's context, unwraps a data key, checks commitment and the header tag. */
int kms_msg_decrypt_begin(kms_msg *m, const kms_envelope_options *o, const uint8_t *hdr_bytes)
    __attribute__((warn_unused_result));
/* Seals one frame (regular, or final when final is true) into out, which has room for
 * kms_msg_final_frame_size(len); returns the bytes written. */
int kms_msg_seal_frame(const kms_msg *m, kms_gcm *g, uint32_t seq, bool final, const uint8_t *pt,
                       size_t len, uint8_t *out, size_t *out_len)
    __attribute__((warn_unused_result));

/* A frame found in the body by kms_msg_scan_frame. */
typedef struct kms_frame {
    uint32_t seq;
    bool final;
    const uint8_t *iv;
    const uint8_t *ct;
    size_t len;
    const uint8_t *tag;
    size_t size; /* bytes of the serialised frame */
} kms_frame;

/* Looks at the next frame at p (n bytes available), expecting sequence number seq. 0: f filled;
 * 1: more bytes needed; -1: malformed (InvalidCiphertextException). */
int kms_msg_scan_frame(const kms_msg *m, const uint8_t *p, size_t n, uint32_t seq, kms_frame *f)
    __attribute__((warn_unused_result));
/* Decrypts and verifies one frame into out (f->len bytes). On failure out is wiped. */
int kms_msg_open_frame(const kms_msg *m, kms_gcm *g, const kms_frame *f, uint8_t *out)
    __attribute__((warn_unused_result));

/* Signature (message-footer.md): feed the bytes of header and body in order. */
int kms_msg_hash(kms_msg *m, const uint8_t *p, size_t n) __attribute__((warn_unused_result));
/* Encrypt: appends the footer (signature length + DER signature) to out. */
int kms_msg_footer(kms_msg *m, kms_buf *out) __attribute__((warn_unused_result));
/* Decrypt: looks for a complete footer at p; 1 means more bytes are needed. On 0, *used is the
 * footer's length and the signature verified. */
int kms_msg_verify_footer(kms_msg *m, const uint8_t *p, size_t n, size_t *used)
    __attribute__((warn_unused_result));

/* Fills info from m (decrypt). */
int kms_msg_info(const kms_msg *m, kms_envelope_info *info) __attribute__((warn_unused_result));

#endif
