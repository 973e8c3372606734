/* Request throttling for kmsd: token buckets named and sized like AWS KMS's request quotas, per
 * account (AWS counts every principal of an account together), plus one bucket per access key,
 * and a slow-down of repeated authentication failures per source address.
 *
 * Thread-safe: every function may be called from any worker at once (a hash table of buckets
 * under striped mutexes). Memory is bounded: at most MaxKeys buckets and MaxKeys addresses are
 * remembered; beyond that the least recently used is forgotten (it starts again full, which only
 * ever favours the forgotten caller). `now` is any clock in seconds that does not go backwards
 * (kmsd passes CLOCK_MONOTONIC; the tests pass their own). */
#ifndef KMSD_THROTTLE_H
#define KMSD_THROTTLE_H

#include <jansson.h>
#include <stddef.h>

typedef struct kmsd_throttle kmsd_throttle;

/* cfg: config.json's "server"."throttle" object, or NULL for the defaults. Members:
 *   "<AWS quota name>": requests per second (> 0), e.g. "Cryptographic operations (symmetric)
 *       request rate": 20000, "CreateKey request rate": 10;
 *   "PerAccessKey": requests per second of one access key, over all operations (default 10000,
 *       as much as the symmetric cryptographic quota: it binds the operations without a quota);
 *   "Enabled": false turns the request quotas off (default true);
 *   "AuthFailureDelay": false turns the authentication slow-down off (default true);
 *   "MaxKeys": buckets (and addresses) remembered at most (default 100000, at least 64).
 * A bucket holds one second's worth of requests (at least 1): AWS's "burst". Unknown names and
 * bad values are refused with a message (listing the known names) in err. */
kmsd_throttle *kmsd_throttle_new(const json_t *cfg, char *err, size_t errlen);
void kmsd_throttle_free(kmsd_throttle *t);

/* 0: admitted, 1: throttled (ThrottlingException "Rate exceeded"). operation is kms_call's name
 * ("Encrypt", "acm:RequestCertificate"); one with an AWS quota takes a token from the account's
 * bucket of that quota, and every request one from its access key's bucket. A request refused by
 * either takes nothing from the other. */
int kmsd_throttle_admit(kmsd_throttle *t, const char *account_id, const char *access_key_id,
                        const char *operation, double now);
/* The same with CLOCK_MONOTONIC, in the shape of include/kms/server.h's kms_admit_fn (arg is the
 * kmsd_throttle). */
int kmsd_throttle_admit_fn(void *arg, const char *account_id, const char *access_key_id,
                           const char *operation);

/* An authentication failure from source address ip. After 5 failures within a minute, its
 * failed answers are delayed: 1 s, doubling with each further failure, at most 10 s (answers
 * that are not authentication failures are never delayed, so one client with a wrong secret
 * does not slow the others sharing its address). A success does not reset it (an attacker may
 * hold one valid key); a quiet minute (no failure) does. IPv6 addresses are counted by their
 * /64 prefix. */
void kmsd_throttle_auth_failed(kmsd_throttle *t, const char *ip, double now);
/* Seconds by which to delay a failed authentication's answer to ip now (0: none). */
double kmsd_throttle_auth_delay(kmsd_throttle *t, const char *ip, double now);

/* For /metrics: {"Enabled": b, "MaxKeys": n, "Keys": n, "Quotas": {"<name>": {"Limit": rate,
 * "Throttled": n}, ..., "PerAccessKey": {...}}, "AuthFailures": {"Addresses": n, "Delayed": n}}.
 * *out is a new reference (json_decref it); -1 only when out of memory. */
int kmsd_throttle_limits(kmsd_throttle *t, json_t **out);

#endif /* KMSD_THROTTLE_H */
