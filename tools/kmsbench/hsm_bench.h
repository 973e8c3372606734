/* The HsmEncrypt measurement of kmsbench: the HSM's own ceiling for GenerateDataKey and Encrypt,
 * the bare PKCS#11 AES-256-GCM encryption of 32 bytes under the benchmark's symmetric CMK, in
 * the same token, with no gate, policy, audit record or metadata around it. */
#ifndef KMSBENCH_HSM_BENCH_H
#define KMSBENCH_HSM_BENCH_H

struct bench_ctx;

/* One C_EncryptInit + C_Encrypt of 32 bytes (kms_hsm_aes_gcm_encrypt on a pooled session) under
 * the current material of the newest symmetric key described "kmsbench" in the client's home,
 * the key kmsbench measures Encrypt and GenerateDataKey with. The key is looked up once, at the
 * first call; in-process only (a remote client has no HSM). b is kmsbench's bench_ctx, whose first
 * member is its kms_client. 0, or -1 with the error raised. Thread-safe. */
int hsm_bench_encrypt(struct bench_ctx *b);

#endif
