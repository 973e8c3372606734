/* kmsctl encrypt, decrypt and re-encrypt: files of any size as AWS Encryption SDK messages
 * (include/kms/envelope.h).
 *
 * The data key of a message is wrapped by KMS keys of the home (--key-id, --discovery) and/or by
 * a wrapping key the caller holds (--wrapping-key-file: raw AES or raw RSA keyring). A KMS home is
 * opened only when a KMS key is involved, so raw-keyring commands need none. The file calls of
 * the library write regular outputs through a temporary file, so a failed run leaves nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "kms/envelope.h"
#include "kms/kms.h"
#include "kmsctl.h"

/* The progress bar shows for inputs above this size (or of unknown size). */
#define PROGRESS_MIN_SIZE (8ull * 1024 * 1024)
#define PROGRESS_INTERVAL_NS 100000000ull /* at most ~10 redraws a second */
#define PROGRESS_BAR_WIDTH 30
#define MAX_FRAME_LENGTH (16u * 1024 * 1024) /* envelope.h: frame_length at most 16 MiB */
#define MAX_THREADS 1024
#define PEM_PREFIX "-----BEGIN"

/* ---- Options ---------------------------------------------------------------------------------*/

/* Older clang-format versions spread brace initializers in macros over many lines. */
/* clang-format off */
#define O_IN_FILE                                                                                  \
    {"in-file", OPT_PATH, OPT_SHORT('i'), "the input file (default, or -: standard input)"}
#define O_OUT_FILE(what)                                                                           \
    {"out-file", OPT_PATH, OPT_SHORT('o'),                                                         \
     "where the " what " goes (default, or -: standard output); a regular file is written "        \
     "under a temporary name and appears only when the whole operation succeeded"}
#define O_KEY_IDS(what) {"key-id", OPT_LIST, OPT_REPEAT, what}
#define O_CONTEXT(what)                                                                            \
    {"encryption-context", OPT_MAP, OPT_REPEAT,                                                    \
     what "; k=v (the option may repeat), shorthand k=v,k2=v2, JSON {\"k\":\"v\"} or "            \
     "file://PATH"}
#define O_COMMITMENT                                                                               \
    {"commitment-policy", OPT_STRING, 0,                                                           \
     "REQUIRE_ENCRYPT_REQUIRE_DECRYPT (default), REQUIRE_ENCRYPT_ALLOW_DECRYPT or "                \
     "FORBID_ENCRYPT_ALLOW_DECRYPT"}
#define O_DISCOVERY                                                                                \
    {"discovery", OPT_BOOL, 0,                                                                     \
     "decrypt the data key with any KMS key of the home the caller may use (instead of "           \
     "--key-id)"}
#define O_MAX_EDKS                                                                                 \
    {"max-encrypted-data-keys", OPT_INTEGER, 0,                                                    \
     "at most this many encrypted data keys per message, 1-65535 (default 10). Each one can "   \
     "cost a KMS Decrypt call and an audit record, and the sender of a message chooses them: "   \
     "a message with more is refused before any key is tried"}
#define O_WRAPPING_KEY_FILE                                                                        \
    {"wrapping-key-file", OPT_PATH, 0,                                                             \
     "a raw wrapping key of your own: a file of exactly 16, 24 or 32 bytes (AES-GCM), or a PEM "   \
     "RSA key (private to decrypt, public or private to encrypt) with --wrapping-algorithm; "      \
     "needs --key-namespace and --key-name"}
#define O_KEY_NAMESPACE                                                                            \
    {"key-namespace", OPT_STRING, 0, "the raw wrapping key's namespace (provider id)"}
#define O_KEY_NAME {"key-name", OPT_STRING, 0, "the raw wrapping key's name"}
#define O_WRAPPING_ALG                                                                             \
    {"wrapping-algorithm", OPT_STRING, 0,                                                          \
     "the padding of an RSA wrapping key: RSA_PKCS1, RSA_OAEP_SHA1, RSA_OAEP_SHA256, "             \
     "RSA_OAEP_SHA384 or RSA_OAEP_SHA512"}
#define O_THREADS                                                                                  \
    {"threads", OPT_INTEGER, 0, "worker threads (default 0: one per online core)"}
#define O_QUIET                                                                                    \
    {"quiet", OPT_BOOL, 0,                                                                         \
     "no progress bar (otherwise shown on a terminal for inputs over 8 MiB or of unknown size)"}
#define O_END {NULL, 0, 0, NULL}
/* clang-format on */

const struct opt_spec kmsctl_envelope_encrypt_opts[] = {
    O_KEY_IDS("KMS key(s) to wrap the data key with: key id, key ARN, alias name or alias ARN; "
              "the first generates the data key"),
    O_CONTEXT("the encryption context, authenticated with the data and stored in the message"),
    {"required-encryption-context-keys", OPT_LIST, OPT_REPEAT,
     "keys of the encryption context that are authenticated but not stored: decrypt must then "
     "be given their pairs"},
    {"algorithm-suite", OPT_STRING, 0,
     "0x0478 (default: AES-256-GCM, HKDF-SHA512, key commitment), 0x0578 (the same, signed with "
     "ECDSA P-384), another hex id or an ESDK suite name"},
    {"frame-length", OPT_INTEGER, 0, "plaintext bytes per frame (default 4096; at most 16 MiB)"},
    O_COMMITMENT,
    O_MAX_EDKS,
    O_IN_FILE,
    O_OUT_FILE("message"),
    O_WRAPPING_KEY_FILE,
    O_KEY_NAMESPACE,
    O_KEY_NAME,
    O_WRAPPING_ALG,
    O_THREADS,
    O_QUIET,
    O_END,
};

const struct opt_spec kmsctl_envelope_decrypt_opts[] = {
    O_IN_FILE,
    O_OUT_FILE("plaintext"),
    O_KEY_IDS("only encrypted data keys of these KMS keys are tried (strict mode): key id, key "
              "ARN, alias name or alias ARN"),
    O_DISCOVERY,
    O_CONTEXT("pairs the message's encryption context must hold (and the pairs of its required "
              "but unstored keys)"),
    O_COMMITMENT,
    O_MAX_EDKS,
    {"metadata-output", OPT_PATH, 0,
     "write what the header said (suite, frame length, encryption context, the key that "
     "decrypted) as JSON to this file (- is standard output)"},
    O_WRAPPING_KEY_FILE,
    O_KEY_NAMESPACE,
    O_KEY_NAME,
    O_WRAPPING_ALG,
    O_THREADS,
    O_QUIET,
    O_END,
};

const struct opt_spec kmsctl_envelope_reencrypt_opts[] = {
    O_IN_FILE,
    O_OUT_FILE("new message"),
    {"destination-key-id", OPT_LIST, OPT_REPEAT,
     "KMS key(s) to wrap the data key with in the new message (default: the --key-id keys, "
     "whose newest key material then wraps it: how data moves to a rotated key)"},
    O_KEY_IDS("the source message's KMS key(s) (strict mode; or --discovery or a raw wrapping "
              "key)"),
    O_DISCOVERY,
    O_CONTEXT("pairs the source message's encryption context must hold, and the pairs of its "
              "required but unstored keys (they stay unstored)"),
    {"algorithm-suite", OPT_STRING, 0,
     "the new message's suite (default: 0x0578 for a signed source, else 0x0478)"},
    O_COMMITMENT,
    O_MAX_EDKS,
    O_WRAPPING_KEY_FILE,
    O_KEY_NAMESPACE,
    O_KEY_NAME,
    O_WRAPPING_ALG,
    O_THREADS,
    O_QUIET,
    O_END,
};

/* ---- One run ---------------------------------------------------------------------------------*/

struct progress {
    bool drawn;
    uint64_t start_ns;
    uint64_t last_ns;
};

/* Everything a command builds from its request; strings are borrowed from the request. */
struct envelope_run {
    const struct command *cmd;
    const struct globals *g;
    json_t *request;
    kms_client *client;       /* opened only when a KMS key is named */
    kms_keyring *keyring;     /* options.keyring */
    kms_keyring *destination; /* re-encrypt */
    kms_context_entry *entries;
    kms_encryption_context context;
    const char **required_keys;
    kms_envelope_options options;
    struct progress bar;
};

static void run_clean_up(struct envelope_run *run)
{
    /* Keyrings before the client they call. */
    kms_keyring_free(run->keyring);
    kms_keyring_free(run->destination);
    if (run->client != NULL) {
        kms_client_free(run->client);
    }
    free(run->entries);
    free(run->required_keys);
    memset(run, 0, sizeof *run);
}

static const char *member_string(const struct envelope_run *run, const char *member)
{
    return json_string_value(json_object_get(run->request, member));
}

static bool member_true(const struct envelope_run *run, const char *member)
{
    return json_is_true(json_object_get(run->request, member));
}

/* An OPT_INTEGER member in [min, max]; absent leaves *out as it is. */
static int member_integer(const struct envelope_run *run, const char *member, const char *opt,
                          long long min, long long max, long long *out)
{
    json_t *v = json_object_get(run->request, member);

    if (v == NULL) {
        return KMSCTL_EXIT_OK;
    }
    if (json_integer_value(v) < min || json_integer_value(v) > max) {
        return kmsctl_usage_error(run->cmd, "argument --%s: must be between %lld and %lld", opt,
                                  min, max);
    }
    *out = json_integer_value(v);
    return KMSCTL_EXIT_OK;
}

/* An OPT_LIST member as a malloc'ed array of borrowed strings (NULL, 0 when absent). */
static int member_list(const struct envelope_run *run, const char *member, const char ***out,
                       size_t *n)
{
    json_t *list = json_object_get(run->request, member);
    json_t *el = NULL;
    size_t i;

    *out = NULL;
    *n = json_array_size(list);
    if (*n == 0) {
        return KMSCTL_EXIT_OK;
    }
    *out = calloc(*n, sizeof **out);
    if (*out == NULL) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    }
    json_array_foreach(list, i, el)
    {
        (*out)[i] = json_string_value(el);
    }
    return KMSCTL_EXIT_OK;
}

/* --encryption-context (a JSON object after parsing) -> options.context. */
static int build_context(struct envelope_run *run)
{
    json_t *map = json_object_get(run->request, "EncryptionContext");
    const char *key = NULL;
    json_t *value = NULL;
    size_t n = 0;

    if (map == NULL) {
        return KMSCTL_EXIT_OK;
    }
    run->entries = calloc(json_object_size(map) + 1, sizeof *run->entries);
    if (run->entries == NULL) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    }
    json_object_foreach(map, key, value)
    {
        run->entries[n].key = key;
        run->entries[n].value = json_string_value(value);
        n++;
    }
    run->context.entries = run->entries;
    run->context.count = n;
    run->options.context = &run->context;
    return KMSCTL_EXIT_OK;
}

/* A library parser's verdict on an option value, as a usage error. */
static int bad_value(const struct envelope_run *run, const char *opt)
{
    return kmsctl_usage_error(run->cmd, "argument --%s: %s", opt, kms_last_error_message());
}

/* Options the commands share: context, suite, commitment policy, limits, threads. */
static int build_common(struct envelope_run *run)
{
    const char *suite = member_string(run, "AlgorithmSuite");
    const char *policy = member_string(run, "CommitmentPolicy");
    long long max_edks = 0;
    long long threads = 0;
    int r = build_context(run);

    if (r == KMSCTL_EXIT_OK && suite != NULL &&
        kms_suite_parse(suite, &run->options.algorithm_suite) != 0) {
        r = bad_value(run, "algorithm-suite");
    }
    if (r == KMSCTL_EXIT_OK && policy != NULL &&
        kms_commitment_policy_parse(policy, &run->options.commitment_policy) != 0) {
        r = bad_value(run, "commitment-policy");
    }
    if (r == KMSCTL_EXIT_OK) {
        r = member_integer(run, "MaxEncryptedDataKeys", "max-encrypted-data-keys", 1, UINT16_MAX,
                           &max_edks);
    }
    if (r == KMSCTL_EXIT_OK) {
        r = member_integer(run, "Threads", "threads", 0, MAX_THREADS, &threads);
    }
    run->options.max_encrypted_data_keys = (uint16_t)max_edks;
    run->options.threads = (unsigned)threads;
    return r;
}

/* ---- Keyrings --------------------------------------------------------------------------------*/

static int open_client(struct envelope_run *run)
{
    if (run->client == NULL) {
        run->client = kmsctl_client_open(run->g);
        if (run->client == NULL) {
            return kmsctl_service_error();
        }
    }
    return KMSCTL_EXIT_OK;
}

/* A KMS keyring over the key ids of member (strict), or NULL in *out when none are given. */
static int kms_keyring_of(struct envelope_run *run, const char *member, kms_keyring **out)
{
    const char **ids = NULL;
    size_t n = 0;
    int r = member_list(run, member, &ids, &n);

    *out = NULL;
    if (r == KMSCTL_EXIT_OK && n > 0) {
        r = open_client(run);
    }
    if (r == KMSCTL_EXIT_OK && n > 0) {
        *out = kms_keyring_kms_new(run->client, ids, n);
        if (*out == NULL) {
            r = kmsctl_service_error();
        }
    }
    free(ids);
    return r;
}

/* Reads a wrapping key file into locked memory, without stdio (whose buffers would keep a copy
 * of the key). The caller releases *out with sodium_free, which wipes it. */
static int read_key_file(const struct envelope_run *run, const char *path, uint8_t **out,
                         size_t *len)
{
    int r = KMSCTL_EXIT_USAGE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf = NULL;
    size_t n = 0;
    ssize_t got = 1;

    if (fd < 0) {
        return kmsctl_usage_error(run->cmd, "argument --wrapping-key-file: cannot open '%s': %s",
                                  path, strerror(errno));
    }
    buf = sodium_init() >= 0 ? sodium_malloc(KMSCTL_MAX_FILE + 1) : NULL;
    if (buf == NULL) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        goto out;
    }
    while (got != 0 && n <= KMSCTL_MAX_FILE) {
        got = read(fd, buf + n, KMSCTL_MAX_FILE + 1 - n);
        if (got < 0 && errno != EINTR) {
            kmsctl_usage_error(run->cmd, "argument --wrapping-key-file: cannot read '%s': %s", path,
                               strerror(errno));
            goto out;
        }
        n += got > 0 ? (size_t)got : 0;
    }
    if (n > KMSCTL_MAX_FILE) {
        kmsctl_usage_error(run->cmd, "argument --wrapping-key-file: '%s' is larger than %d KiB",
                           path, KMSCTL_MAX_FILE / 1024);
        goto out;
    }
    *out = buf;
    *len = n;
    buf = NULL;
    r = KMSCTL_EXIT_OK;
out:
    if (buf != NULL) {
        sodium_free(buf);
    }
    close(fd);
    return r;
}

/* The raw keyring: RSA when --wrapping-algorithm is given or the file is PEM, AES otherwise. */
static int make_raw_keyring(struct envelope_run *run, const char *path, const char *ns,
                            const char *name, kms_keyring **out)
{
    const char *alg = member_string(run, "WrappingAlgorithm");
    uint8_t *key = NULL;
    size_t len = 0;
    kms_rsa_padding padding = KMS_RSA_OAEP_SHA256;
    bool pem;
    int r = read_key_file(run, path, &key, &len);

    if (r != KMSCTL_EXIT_OK) {
        return r;
    }
    pem = len >= strlen(PEM_PREFIX) && memcmp(key, PEM_PREFIX, strlen(PEM_PREFIX)) == 0;
    if (alg != NULL && kms_rsa_padding_parse(alg, &padding) != 0) {
        r = bad_value(run, "wrapping-algorithm");
    } else if (alg == NULL && pem) {
        r = kmsctl_usage_error(run->cmd,
                               "argument --wrapping-key-file: '%s' is a PEM key: give "
                               "its padding with --wrapping-algorithm",
                               path);
    } else if (alg != NULL) {
        *out = kms_keyring_raw_rsa_new(ns, name, (const char *)key, len, padding);
        r = *out == NULL ? kmsctl_service_error() : KMSCTL_EXIT_OK;
    } else if (len != 16 && len != 24 && len != 32) {
        r = kmsctl_usage_error(run->cmd,
                               "argument --wrapping-key-file: an AES wrapping key file must hold "
                               "exactly 16, 24 or 32 raw bytes; '%s' has %zu",
                               path, len);
    } else {
        *out = kms_keyring_raw_aes_new(ns, name, key, len);
        r = *out == NULL ? kmsctl_service_error() : KMSCTL_EXIT_OK;
    }
    /* The keyring holds its own copy (in locked memory). */
    sodium_memzero(key, len);
    sodium_free(key);
    return r;
}

/* --wrapping-key-file with --key-namespace and --key-name; NULL in *out when not given. */
static int raw_keyring_of(struct envelope_run *run, kms_keyring **out)
{
    const char *path = member_string(run, "WrappingKeyFile");
    const char *ns = member_string(run, "KeyNamespace");
    const char *name = member_string(run, "KeyName");

    *out = NULL;
    if (path == NULL && ns == NULL && name == NULL &&
        member_string(run, "WrappingAlgorithm") == NULL) {
        return KMSCTL_EXIT_OK;
    }
    if (path == NULL || ns == NULL || name == NULL) {
        return kmsctl_usage_error(run->cmd, "a raw wrapping key needs all of --wrapping-key-file, "
                                            "--key-namespace and --key-name");
    }
    return make_raw_keyring(run, path, ns, name, out);
}

/* The keyring of --key-id / --discovery and the raw wrapping key: one of them, or a
 * multi-keyring with the KMS keyring first (on encrypt, it generates the data key). */
static int build_keyring(struct envelope_run *run, bool decrypt)
{
    bool discovery = member_true(run, "Discovery");
    kms_keyring *kms = NULL;
    kms_keyring *raw = NULL;
    int r = KMSCTL_EXIT_OK;

    if (discovery && json_object_get(run->request, "KeyId") != NULL) {
        return kmsctl_usage_error(run->cmd, "--discovery and --key-id exclude each other");
    }
    /* The raw key first: its usage errors come before the KMS home is opened. */
    r = raw_keyring_of(run, &raw);
    if (r == KMSCTL_EXIT_OK && discovery) {
        r = open_client(run);
        if (r == KMSCTL_EXIT_OK) {
            kms = kms_keyring_kms_discovery_new(run->client);
            r = kms == NULL ? kmsctl_service_error() : KMSCTL_EXIT_OK;
        }
    } else if (r == KMSCTL_EXIT_OK) {
        r = kms_keyring_of(run, "KeyId", &kms);
    }
    if (r == KMSCTL_EXIT_OK && kms == NULL && raw == NULL) {
        r = kmsctl_usage_error(run->cmd,
                               "give --key-id%s, or a raw wrapping key with "
                               "--wrapping-key-file, --key-namespace and --key-name",
                               decrypt ? " or --discovery" : "");
    }
    if (r != KMSCTL_EXIT_OK) {
        kms_keyring_free(kms);
        kms_keyring_free(raw);
        return r;
    }
    if (kms != NULL && raw != NULL) {
        run->keyring = kms_keyring_multi_new(kms, &raw, 1); /* owns both, also on failure */
    } else {
        run->keyring = kms != NULL ? kms : raw;
    }
    if (run->keyring == NULL) {
        return kmsctl_service_error();
    }
    run->options.keyring = run->keyring;
    return KMSCTL_EXIT_OK;
}

/* ---- Progress bar ----------------------------------------------------------------------------*/

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void format_size(uint64_t n, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;

    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(out, size, "%.0f %s", v, units[u]);
    } else {
        snprintf(out, size, "%.1f %s", v, units[u]);
    }
}

/* kms_progress_fn: redraws the line on stderr, at most every PROGRESS_INTERVAL_NS. */
static void progress_draw(void *arg, uint64_t done, uint64_t total)
{
    struct progress *p = arg;
    uint64_t now = now_ns();
    char done_s[32];
    char total_s[32];
    char rate_s[40] = "";
    char rate[32];
    char bar[PROGRESS_BAR_WIDTH + 1];
    double elapsed = (double)(now - p->start_ns) / 1e9;
    double frac = total > 0 ? (double)(done < total ? done : total) / (double)total : 0;

    if (p->drawn && now - p->last_ns < PROGRESS_INTERVAL_NS) {
        return;
    }
    p->drawn = true;
    p->last_ns = now;
    format_size(done, done_s, sizeof done_s);
    if (elapsed > 0.05) {
        format_size((uint64_t)((double)done / elapsed), rate, sizeof rate);
        snprintf(rate_s, sizeof rate_s, "  %s/s", rate);
    }
    if (total == 0) {
        fprintf(stderr, "\r%s%s\033[K", done_s, rate_s);
        return;
    }
    format_size(total, total_s, sizeof total_s);
    for (size_t i = 0; i < PROGRESS_BAR_WIDTH; i++) {
        bar[i] = (double)(i + 1) <= frac * PROGRESS_BAR_WIDTH ? '#' : '-';
    }
    bar[PROGRESS_BAR_WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %3d%%  %s / %s%s\033[K", bar, (int)(frac * 100), done_s, total_s,
            rate_s);
}

static void progress_end(struct progress *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        p->drawn = false;
    }
}

/* On when stderr is a terminal, --quiet is absent and the input is big or of unknown size. */
static void setup_progress(struct envelope_run *run, const char *in_path)
{
    struct stat st;
    bool is_stdin = in_path == NULL || strcmp(in_path, "-") == 0;
    int rc = is_stdin ? fstat(STDIN_FILENO, &st) : stat(in_path, &st);

    if (member_true(run, "Quiet") || !isatty(STDERR_FILENO)) {
        return;
    }
    if (rc == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= PROGRESS_MIN_SIZE) {
        return;
    }
    run->bar.start_ns = now_ns();
    run->options.progress = progress_draw;
    run->options.progress_arg = &run->bar;
}

/* ---- --metadata-output -----------------------------------------------------------------------*/

/* A JSON string, or null for bytes that are not UTF-8 (JSON cannot hold them). */
static json_t *string_or_null(const char *s)
{
    json_t *v = s != NULL ? json_string(s) : NULL;

    return v != NULL ? v : json_null();
}

static json_t *metadata_json(const kms_envelope_info *info)
{
    char suite[8];
    char id[128];
    json_t *ec = json_object();
    json_t *doc = NULL;

    snprintf(suite, sizeof suite, "0x%04X", (unsigned)info->algorithm_suite);
    sodium_bin2base64(id, sizeof id, info->message_id, info->message_id_len,
                      sodium_base64_VARIANT_ORIGINAL);
    for (size_t i = 0; ec != NULL && i < info->context_count; i++) {
        json_object_set_new(ec, info->context[i].key, string_or_null(info->context[i].value));
    }
    doc = json_pack("{s:s, s:s?, s:i, s:I, s:s, s:o?, s:o, s:o}", "AlgorithmSuite", suite,
                    "AlgorithmSuiteName", kms_suite_name(info->algorithm_suite),
                    "MessageFormatVersion", (int)info->message_version, "FrameLength",
                    (json_int_t)info->frame_length, "MessageId", id, "EncryptionContext", ec,
                    "KeyProviderId", string_or_null(info->key_provider_id), "KeyProviderInfo",
                    string_or_null(info->key_provider_info));
    return doc;
}

static int write_metadata(const char *path, const kms_envelope_info *info)
{
    json_t *doc = metadata_json(info);
    bool to_stdout = strcmp(path, "-") == 0;
    FILE *f = NULL;
    int r = KMSCTL_EXIT_SERVICE;

    if (doc == NULL) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    }
    f = to_stdout ? stdout : fopen(path, "w");
    if (f == NULL) {
        json_decref(doc);
        return kmsctl_error_json("ValidationException", "kmsctl: cannot create the metadata file");
    }
    if (json_dumpf(doc, f, JSON_INDENT(4) | JSON_PRESERVE_ORDER) == 0 && fputc('\n', f) != EOF &&
        fflush(f) == 0 && !ferror(f)) {
        r = KMSCTL_EXIT_OK;
    }
    if (!to_stdout && fclose(f) != 0) {
        r = KMSCTL_EXIT_SERVICE;
    }
    json_decref(doc);
    if (r != KMSCTL_EXIT_OK) {
        return kmsctl_error_json("ValidationException", "kmsctl: writing the metadata failed");
    }
    return r;
}

/* ---- Commands --------------------------------------------------------------------------------*/

static int build_encrypt(struct envelope_run *run)
{
    long long frame = 0;
    size_t n = 0;
    int r = build_common(run);

    if (r == KMSCTL_EXIT_OK) {
        r = member_integer(run, "FrameLength", "frame-length", 1, MAX_FRAME_LENGTH, &frame);
        run->options.frame_length = (uint32_t)frame;
    }
    if (r == KMSCTL_EXIT_OK) {
        r = member_list(run, "RequiredEncryptionContextKeys", &run->required_keys, &n);
        run->options.required_context_keys = run->required_keys;
        run->options.required_context_key_count = n;
    }
    return r == KMSCTL_EXIT_OK ? build_keyring(run, false) : r;
}

/* After the library call: the progress line cleared, the failure reported as AWS's JSON error;
 * a decryption's input (in, NULL for an encryption) that is a KMS ciphertext blob is named so. */
static int call_done(struct envelope_run *run, int rc, const char *in)
{
    char hint[1024] = "";
    progress_end(&run->bar);
    if (rc == 0) {
        return KMSCTL_EXIT_OK;
    }
    struct stat st;
    FILE *f = in != NULL && strcmp(in, "-") != 0 && stat(in, &st) == 0 ? fopen(in, "rb") : NULL;
    if (f != NULL) {
        unsigned char head[3];
        size_t n = fread(head, 1, sizeof head, f);
        fclose(f);
        kmsctl_ciphertext_hint(head, n, (long long)st.st_size, true, in, hint, sizeof hint);
    }
    return kmsctl_service_error_hint(hint);
}

int kmsctl_envelope_encrypt(const struct command *cmd, const struct globals *g, json_t *request)
{
    struct envelope_run run = {.cmd = cmd, .g = g, .request = request};
    const char *in = member_string(&run, "InFile");
    int r = kmsctl_check_output(cmd, g, "out-file", member_string(&run, "OutFile"));

    r = r == KMSCTL_EXIT_OK ? build_encrypt(&run) : r;

    if (r == KMSCTL_EXIT_OK) {
        setup_progress(&run, in);
        r = call_done(&run,
                      kms_envelope_encrypt_file(&run.options, in, member_string(&run, "OutFile")),
                      NULL);
    }
    run_clean_up(&run);
    return r;
}

int kmsctl_envelope_decrypt(const struct command *cmd, const struct globals *g, json_t *request)
{
    struct envelope_run run = {.cmd = cmd, .g = g, .request = request};
    const char *in = member_string(&run, "InFile");
    const char *out = member_string(&run, "OutFile");
    const char *metadata = member_string(&run, "MetadataOutput");
    kms_envelope_info info;
    int r = KMSCTL_EXIT_OK;

    memset(&info, 0, sizeof info);
    if (metadata != NULL && strcmp(metadata, "-") == 0 && (out == NULL || strcmp(out, "-") == 0)) {
        r = kmsctl_usage_error(cmd, "argument --metadata-output: the plaintext already goes to "
                                    "standard output; name a file for one of them");
    }
    r = r == KMSCTL_EXIT_OK ? kmsctl_check_output(cmd, g, "out-file", out) : r;
    r = r == KMSCTL_EXIT_OK ? kmsctl_check_output(cmd, g, "metadata-output", metadata) : r;
    r = r == KMSCTL_EXIT_OK ? build_common(&run) : r;
    r = r == KMSCTL_EXIT_OK ? build_keyring(&run, true) : r;
    if (r == KMSCTL_EXIT_OK) {
        setup_progress(&run, in);
        r = call_done(&run, kms_envelope_decrypt_file(&run.options, in, out, &info), in);
    }
    if (r == KMSCTL_EXIT_OK && metadata != NULL) {
        r = write_metadata(metadata, &info);
    }
    kms_envelope_info_clean_up(&info);
    run_clean_up(&run);
    return r;
}

int kmsctl_envelope_reencrypt(const struct command *cmd, const struct globals *g, json_t *request)
{
    struct envelope_run run = {.cmd = cmd, .g = g, .request = request};
    int r = kmsctl_check_output(cmd, g, "out-file", member_string(&run, "OutFile"));

    r = r == KMSCTL_EXIT_OK ? build_common(&run) : r;
    r = r == KMSCTL_EXIT_OK ? build_keyring(&run, true) : r;
    /* Without destinations the source keys are the destination: the data key is wrapped
     * again under their current (newest) material version. */
    const char *dest =
        json_object_get(request, "DestinationKeyId") != NULL ? "DestinationKeyId" : "KeyId";
    r = r == KMSCTL_EXIT_OK ? kms_keyring_of(&run, dest, &run.destination) : r;
    if (r == KMSCTL_EXIT_OK && run.destination == NULL) {
        r = kmsctl_usage_error(cmd, "give --destination-key-id, or --key-id to re-encrypt under "
                                    "the newest material of the same keys");
    }
    if (r == KMSCTL_EXIT_OK) {
        setup_progress(&run, member_string(&run, "InFile"));
        r = call_done(&run,
                      kms_envelope_reencrypt_file(&run.options, run.destination,
                                                  member_string(&run, "InFile"),
                                                  member_string(&run, "OutFile")),
                      member_string(&run, "InFile"));
    }
    run_clean_up(&run);
    return r;
}
