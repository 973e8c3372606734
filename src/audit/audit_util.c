/* Helpers shared by the audit writer and readers: hashes, hex, text, times, creating a trail. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "util/util.h"

void kms_audit_sha256_hex(const void *p, size_t n, char out[KMS_AUDIT_HASH_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[32];
    unsigned int len = 0;
    if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != sizeof md) {
        /* Never a valid hash: whatever compares against it fails. */
        memset(out, 'x', KMS_AUDIT_HASH_HEX);
        out[KMS_AUDIT_HASH_HEX] = '\0';
        return;
    }
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[KMS_AUDIT_HASH_HEX] = '\0';
}

void kms_audit_hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

bool kms_audit_is_hash_hex(const char *s)
{
    if (s == NULL || strlen(s) != KMS_AUDIT_HASH_HEX) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return true;
}

json_t *kms_audit_json_text(const char *s)
{
    json_t *v = json_string(s);
    if (v != NULL || s == NULL) {
        return v;
    }
    char *copy = strdup(s);
    if (copy == NULL) {
        return NULL;
    }
    for (char *p = copy; *p != '\0'; p++) {
        *p = (unsigned char)*p > 0x7f ? '?' : *p;
    }
    v = json_string(copy);
    free(copy);
    return v;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int64_t kms_audit_parse_time(const char *s)
{
    if (s == NULL || *s == '\0') {
        return -1;
    }
    /* A plain number of seconds since the epoch. */
    char *end = NULL;
    errno = 0;
    long long secs = strtoll(s, &end, 10);
    if (errno == 0 && end != s && *end == '\0') {
        return secs >= 0 ? (int64_t)secs : -1;
    }
    /* ISO 8601: YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM] */
    int y, mo, d, h = 0, mi = 0, sec = 0;
    size_t len = strlen(s);
    if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d)) {
        return -1;
    }
    const char *p = s + 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (strlen(p) < 5 || !digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi)) {
            return -1;
        }
        p += 5;
        if (*p == ':') {
            if (!digits(p + 1, 2, &sec)) {
                return -1;
            }
            p += 3;
            if (*p == '.') {
                p++;
                while (*p >= '0' && *p <= '9') {
                    p++;
                }
            }
        }
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (strlen(p) < 6 || !digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om)) {
            return -1;
        }
        offset = (oh * 3600L + om * 60L) * (*p == '+' ? 1 : -1);
        p += 6;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        y < 1970) {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) { /* 2026-02-31 normalised to March: refused */
        return -1;
    }
    return (int64_t)t - offset;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return kms_raise(KMS_ERR_AUDIT, "cannot create the audit directory %s: %s", path,
                         strerror(errno));
    }
    return 0;
}

int kms_audit_public_key_pem(const uint8_t *spki, size_t spki_len, char **pem)
{
    const uint8_t *p = spki;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)spki_len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    int r = -1;
    if (key != NULL && bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1 &&
        (len = BIO_get_mem_data(bio, &data)) > 0 && (*pem = strndup(data, (size_t)len)) != NULL) {
        r = 0;
    } else {
        kms_raise(KMS_ERR_INTERNAL, "cannot encode the audit digest public key as PEM");
    }
    BIO_free(bio);
    EVP_PKEY_free(key);
    return r;
}

int kms_audit_create(const char *dir, const uint8_t *spki, size_t spki_len)
{
    int r = -1;
    char *segments = kms_path_join(dir, "segments");
    char *digests = kms_path_join(dir, "digests");
    char *lock = kms_path_join(dir, "LOCK");
    char *pem_path = kms_path_join(dir, "digest-public-key.pem");
    char *pem = NULL;
    if (segments == NULL || digests == NULL || lock == NULL || pem_path == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (make_dir(dir) != 0 || make_dir(segments) != 0 || make_dir(digests) != 0) {
        goto out;
    }
    if (!kms_path_exists(lock) && kms_file_write_atomic(lock, "", 0, 0600) != 0) {
        goto out;
    }
    if (kms_audit_public_key_pem(spki, spki_len, &pem) != 0 ||
        kms_file_write_atomic(pem_path, pem, strlen(pem), 0644) != 0) {
        goto out;
    }
    r = 0;
out:
    free(pem);
    free(segments);
    free(digests);
    free(lock);
    free(pem_path);
    return r;
}

static bool hex_run(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* Where the line's ack member starts (len if it has none): ,"ack":"<64 hex>" just before "}}". */
static size_t ack_start(const char *line, size_t len)
{
    static const char key[] = ",\"ack\":\"";
    const size_t n = sizeof key - 1 + KMS_AUDIT_HASH_HEX + 1;
    if (len < n + 2 || memcmp(line + len - 2, "}}", 2) != 0) {
        return len;
    }
    const char *k = line + len - 2 - n;
    return memcmp(k, key, sizeof key - 1) == 0 && k[n - 1] == '"' &&
                   hex_run(k + sizeof key - 1, KMS_AUDIT_HASH_HEX)
               ? (size_t)(k - line)
               : len;
}

bool kms_audit_chain_suffix(const char *line, size_t len, uint64_t *seq,
                            char prev[KMS_AUDIT_HASH_HEX + 1], size_t *ack_at)
{
    static const char head[] = "\"auditChain\":{\"sequence\":";
    static const char mid[] = ",\"previousHash\":\"";
    *seq = 0;
    *ack_at = ack_start(line, len);
    /* core: the line up to the previousHash's closing quote (what "}}" ends without an ack). */
    size_t core = *ack_at < len ? *ack_at : len >= 2 ? len - 2 : 0;
    const size_t tail = sizeof mid - 1 + KMS_AUDIT_HASH_HEX + 1;
    if (core < tail + sizeof head || (*ack_at == len && memcmp(line + len - 2, "}}", 2) != 0) ||
        line[core - 1] != '"') {
        return false;
    }
    const char *h = line + core - 1 - KMS_AUDIT_HASH_HEX;
    const char *m = h - (sizeof mid - 1);
    if (memcmp(m, mid, sizeof mid - 1) != 0 || !hex_run(h, KMS_AUDIT_HASH_HEX)) {
        return false;
    }
    const char *d = m;
    uint64_t v = 0, scale = 1;
    while (d > line && d[-1] >= '0' && d[-1] <= '9' && m - d < 19) {
        d--;
        v += (uint64_t)(*d - '0') * scale;
        scale *= 10;
    }
    if (d == m || *d == '0' || (size_t)(d - line) < sizeof head - 1 ||
        memcmp(d - (sizeof head - 1), head, sizeof head - 1) != 0) {
        return false;
    }
    *seq = v;
    memcpy(prev, h, KMS_AUDIT_HASH_HEX);
    prev[KMS_AUDIT_HASH_HEX] = '\0';
    return true;
}

int kms_audit_ack_hash(const char *line, size_t ack_at, uint8_t hash[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, line, ack_at) == 1 && EVP_DigestUpdate(md, "}}", 2) == 1 &&
             EVP_DigestFinal_ex(md, hash, &n) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : kms_raise(KMS_ERR_INTERNAL, "SHA-256 failed");
}

bool kms_audit_ack_verifies(const kms_audit_acker *acker, const char *line, size_t len)
{
    uint64_t seq = 0;
    size_t at = 0;
    char prev[KMS_AUDIT_HASH_HEX + 1], want[KMS_AUDIT_HASH_HEX + 1];
    uint8_t hash[32], mac[32];
    if (acker == NULL || acker->mac == NULL || line == NULL ||
        !kms_audit_chain_suffix(line, len, &seq, prev, &at) || at == len ||
        kms_audit_ack_hash(line, at, hash) != 0 || acker->mac(acker->arg, hash, mac) != 0) {
        return false;
    }
    kms_audit_hex_encode(mac, sizeof mac, want);
    bool ok = CRYPTO_memcmp(want, line + at + sizeof ",\"ack\":\"" - 1, KMS_AUDIT_HASH_HEX) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

const char kms_audit_zero_hash[KMS_AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";
