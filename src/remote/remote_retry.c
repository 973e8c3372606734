/* The AWS SDKs' "standard" retry mode as pure functions: which failures are retried, how long to
 * wait, and the retry quota (AWS SDKs and Tools reference guide, "Retry behavior"; botocore's
 * retries/standard.py is the reference implementation). The loop that uses them is in
 * remote.c. */
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "remote/remote.h"

/* The SDKs' throttling error codes. LimitExceededException, which botocore also lists, is left
 * out: here it means a count limit of the home (keys, aliases, grants), which no retry lifts;
 * rate limits are ThrottlingException. */
static const char *const throttling_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

static const char *const transient_codes[] = {
    "RequestTimeout",
    "RequestTimeoutException",
};

static bool listed(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(name, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

kms_retry_class kms_remote_retry_classify(kms_transport_failure failure, long http_status,
                                          const char *error_name)
{
    switch (failure) {
    case KMS_TRANSPORT_CONNECT:
        return KMS_RETRY_TRANSIENT;
    case KMS_TRANSPORT_TIMEOUT:
        return KMS_RETRY_TIMEOUT;
    case KMS_TRANSPORT_FATAL:
        return KMS_RETRY_NONE;
    case KMS_TRANSPORT_OK:
        break;
    }
    if (http_status >= 200 && http_status < 300) {
        return KMS_RETRY_NONE;
    }
    if (http_status == 429 || listed(error_name, throttling_codes,
                                     sizeof throttling_codes / sizeof throttling_codes[0])) {
        return KMS_RETRY_THROTTLING;
    }
    if (http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504 ||
        listed(error_name, transient_codes, sizeof transient_codes / sizeof transient_codes[0])) {
        return KMS_RETRY_TRANSIENT;
    }
    return KMS_RETRY_NONE;
}

long kms_remote_retry_backoff_ms(int retry, double random01)
{
    if (retry < 1) {
        retry = 1;
    }
    if (random01 < 0 || random01 >= 1) {
        random01 = 0;
    }
    /* random * 2^(retry-1) seconds, capped: from 2^15 s on, anything but 0 reaches the cap. */
    if (retry > 16) {
        return random01 > 0 ? KMS_RETRY_MAX_BACKOFF_MS : 0;
    }
    double wait = random01 * 1000.0 * (double)(1L << (retry - 1));
    return wait > KMS_RETRY_MAX_BACKOFF_MS ? KMS_RETRY_MAX_BACKOFF_MS : (long)wait;
}

void kms_remote_retry_quota_init(kms_retry_quota *q)
{
    q->tokens = KMS_RETRY_QUOTA_MAX;
}

bool kms_remote_retry_quota_acquire(kms_retry_quota *q, kms_retry_class c, int *cost)
{
    int need = c == KMS_RETRY_TIMEOUT ? KMS_RETRY_TIMEOUT_COST : KMS_RETRY_COST;
    *cost = 0;
    if (c == KMS_RETRY_NONE || q->tokens < need) {
        return false;
    }
    q->tokens -= need;
    *cost = need;
    return true;
}

void kms_remote_retry_quota_release(kms_retry_quota *q, int cost)
{
    q->tokens += cost > 0 ? cost : KMS_RETRY_NO_RETRY_INCREMENT;
    if (q->tokens > KMS_RETRY_QUOTA_MAX) {
        q->tokens = KMS_RETRY_QUOTA_MAX;
    }
}

void kms_remote_retry_wait(int retry)
{
    double u = (double)randombytes_random() / 4294967296.0;
    long ms = kms_remote_retry_backoff_ms(retry, u);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}
