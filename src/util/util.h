/* Small helpers shared by every module: base64, UUIDs, time, files, secrets. */
#ifndef KMS_UTIL_UTIL_H
#define KMS_UTIL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/error.h"

#define KMS_UUID_STR_LEN 36

/* Ensures libsodium and OpenSSL are initialised once (thread-safe). */
int kms_util_init(void) __attribute__((warn_unused_result));

/* Random version-4 UUID, lower-case text, 37 bytes with the NUL. */
int kms_uuid_new(char out[KMS_UUID_STR_LEN + 1]) __attribute__((warn_unused_result));
bool kms_uuid_valid(const char *s);
/* 16 raw bytes <-> text form (hex digits in either case; written in lower case). A text that is
 * not a UUID: ValidationException, out zeroed. */
int kms_uuid_to_bytes(const char *s, uint8_t out[16]) __attribute__((warn_unused_result));
void kms_uuid_from_bytes(const uint8_t in[16], char out[KMS_UUID_STR_LEN + 1]);

/* Standard base64 with padding (as AWS prints blobs). Returned strings are malloc'd. */
char *kms_base64_encode(const uint8_t *p, size_t n);
/* Decodes strict standard base64; ValidationException naming `what` on bad input. secure: the
 * result is in locked memory (free with kms_secret_free). *out and *n are cleared on entry and
 * stay cleared on failure. */
int kms_base64_decode(const char *s, const char *what, bool secure, uint8_t **out, size_t *n)
    __attribute__((warn_unused_result));

/* Seconds since the epoch, honouring libfaketime. */
int64_t kms_now(void);
/* A crash test's hook: when the environment variable KMS_FAULT equals `point`, the process
 * kills itself with SIGKILL there (as kill -9 or a power cut would stop it); when it equals
 * `point:stop`, it stops itself with SIGSTOP (as a suspended machine would) and goes on at
 * SIGCONT. */
void kms_fault_point(const char *point);
/* ISO 8601 UTC "2026-11-28T04:25:55Z". */
void kms_time_iso8601(int64_t t, char out[32]);

/* Reads a whole file (at most max bytes) into malloc'd memory, NUL-terminated. */
int kms_file_read(const char *path, size_t max, char **out, size_t *len)
    __attribute__((warn_unused_result));
/* Writes a file atomically: temp file in the same directory, fsync, rename, mode applied. */
int kms_file_write_atomic(const char *path, const void *p, size_t n, unsigned mode)
    __attribute__((warn_unused_result));
bool kms_path_exists(const char *path);

/* ---- StrictModes (OpenSSH's model): what a KMS home trusts must be the caller's own ---------
 * KMSHomeException naming the path and the chmod or chown that fixes it. */
struct stat;
/* st (of `path`) is owned by the caller (geteuid) and not writable by group or others. */
int kms_file_check_private(const struct stat *st, const char *path)
    __attribute__((warn_unused_result));
/* Opens `path` without following a symlink (a directory if dir), then checks it with fstat as
 * kms_file_check_private. missing_ok: a path that does not exist passes. */
int kms_path_check_private(const char *path, bool dir, bool missing_ok)
    __attribute__((warn_unused_result));
/* kms_file_read of a file that must pass kms_file_check_private (checked on the open descriptor;
 * a symlink is refused). */
int kms_file_read_private(const char *path, size_t max, char **out, size_t *len)
    __attribute__((warn_unused_result));
/* A file to be loaded as code (a PKCS#11 module): an absolute path to a regular file which, with
 * every directory above it, is owned by root or the caller and not writable by group or others.
 * `what` names the setting in messages. *resolved (malloc'd) is the path with symlinks resolved,
 * the one to load. */
int kms_file_check_trusted(const char *path, const char *what, char **resolved)
    __attribute__((warn_unused_result));
/* Waits for a flock on the lock file `path` and puts in *fd the descriptor, which holds it until
 * closed. exclusive: LOCK_EX, the file opened read-write and created (mode 0600) if missing.
 * Otherwise LOCK_SH on the file opened read-only, never created: *fd is -1 (and 0 returned) when
 * there is no such file. Never through a symlink; anything but a regular file is refused
 * (KMSHomeException naming `path`). */
int kms_file_lock(const char *path, bool exclusive, int *fd) __attribute__((warn_unused_result));
/* malloc'd "a/b". */
char *kms_path_join(const char *a, const char *b);

/* Room for element n of the array *arr (elements of `size` bytes, *cap of them allocated),
 * doubling it (16 at first) when full. 0, or -1 with KMSInternalException raised (the array is
 * kept as it was). */
int kms_array_reserve(void **arr, size_t *cap, size_t n, size_t size)
    __attribute__((warn_unused_result));

/* malloc'd formatted string, or NULL (KMSInternalException raised). */
char *kms_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
