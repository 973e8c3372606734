/* Session ticket keys derived from a CMK and rotated by period (see kms_tls_options in
 * include/kms/tls.h): every server process of a home that names the same HMAC_256 CMK derives
 * the same keys, so a ticket one issued resumes on another, and after a restart. */
#ifndef KMS_TLS_TLS_TICKET_H
#define KMS_TLS_TLS_TICKET_H

#include <stdint.h>

#include "kms/tls.h"

#define KMS_TLS_TICKET_PERIOD_DEFAULT (12 * 3600)

/* Shared by the contexts of one server (a reload keeps the keys it derived): reference
 * counted. */
typedef struct kms_tls_ticket_keys kms_tls_ticket_keys;

/* client and key_id are the options' (client borrowed: the caller keeps it open while any
 * context made with the keys lives; key_id copied); period_seconds 0: the default. No call to
 * the KMS yet: each period's keys are derived at their first use. */
kms_tls_ticket_keys *kms_tls_ticket_keys_new(kms_client *client, const char *key_id,
                                             uint32_t period_seconds)
    __attribute__((warn_unused_result));
/* Drops one reference; the last wipes the keys. */
void kms_tls_ticket_keys_free(kms_tls_ticket_keys *t);

/* Makes ctx issue and accept tickets under these keys (SSL_CTX_set_tlsext_ticket_key_evp_cb),
 * holding a reference to them until ctx is freed; the ticket lifetime hint is one period. */
int kms_tls_ticket_keys_install(SSL_CTX *ctx, kms_tls_ticket_keys *t)
    __attribute__((warn_unused_result));

/* Tests: the clock the periods are counted by (NULL: kms_now). */
void kms_tls_ticket_keys_set_clock(kms_tls_ticket_keys *t, int64_t (*now)(void));

/* GenerateMac calls made to derive ticket keys since the process started, failed ones too
 * (tests, benchmarks). */
uint64_t kms_tls_ticket_derivations(void);

#endif
