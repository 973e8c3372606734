/* Random bytes that are not secret but must never repeat (request and event IDs, AES-GCM IVs),
 * without a system call for each: each thread draws from its own pool of getrandom output,
 * refilled a kilobyte at a time (libsodium's randombytes_buf). The pool lives in a page the
 * kernel wipes in a forked child (MADV_WIPEONFORK), so that parent and child never hand out
 * the same bytes, whatever way the process was forked; where the kernel cannot do that, every
 * call goes to randombytes_buf as before. Secrets (data keys, seeds) come from randombytes_buf
 * directly: no future key material waits in a pool. */
#ifndef KMS_UTIL_RANDOM_H
#define KMS_UTIL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* n random bytes into p (n at most KMS_RANDOM_PUBLIC_MAX; more come from randombytes_buf). */
void kms_random_public(void *p, size_t n);

#define KMS_RANDOM_PUBLIC_MAX 256

#endif
