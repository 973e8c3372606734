/* Opening a KMS home: config, PIN, HSM, metadata; and creating one (kms_home_init). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "remote/remote.h"
#include "service/audit_trail.h"
#include "service/client.h"
#include "service/credentials.h"
#include "service/home_check.h"
#include "service/internal_keys.h"
#include "service/network.h"
#include "util/secmem.h"
#include "util/util.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define CONFIG_FILE "config.json"
#define DB_FILE "kms.db"
/* Held by every process while it opens the HSM token (kms_internal_keys_hsm_open). */
#define HSM_LOCK_FILE "hsm.lock"

/* Opens the token with SoftHSM2's token file kept from a killed login: put back before, copied
 * after (token_guard.c). A copy that cannot be written does not stop the open. */
static kms_hsm *hsm_open_guarded(const char *home, const kms_config *cfg, const char *label,
                                 const uint8_t *pin, size_t pin_len, unsigned pool_size,
                                 const char *lock)
{
    if (kms_home_token_restore(home, cfg, lock) != 0) {
        return NULL;
    }
    kms_hsm *hsm =
        kms_internal_keys_hsm_open(cfg->pkcs11_module, label, pin, pin_len, pool_size, lock);
    if (hsm != NULL && kms_home_token_backup(home, cfg, lock) != 0) {
        kms_error_clear();
    }
    return hsm;
}
#define MAX_PIN 256

const char *kms_home_default(void)
{
    static _Thread_local char path[4096];
    const char *env = getenv("KMS_HOME");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    const char *home = getenv("HOME");
    snprintf(path, sizeof path, "%s/.kms", home ? home : ".");
    return path;
}

void kms_client_config_clean_up(kms_config *cfg)
{
    free(cfg->pkcs11_module);
    free(cfg->token_label);
    free(cfg->internal_token_label);
    free(cfg->pin_source);
    free(cfg->softhsm_conf);
    memset(cfg, 0, sizeof *cfg);
}

static int config_string(json_t *root, const char *name, const char *path, char **out)
{
    const char *s = json_string_value(json_object_get(root, name));
    KMS_ENSURE(s != NULL && s[0] != '\0', KMS_ERR_HOME, "%s has no \"%s\" string", path, name);
    *out = strdup(s);
    KMS_ENSURE(*out != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

static bool account_id_valid(const char *s)
{
    if (s == NULL || strlen(s) != 12) {
        return false;
    }
    for (size_t i = 0; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

int kms_client_config_load(const char *home, kms_config *cfg)
{
    int r = -1;
    char *path = kms_path_join(home, CONFIG_FILE);
    char *text = NULL;
    char *region = NULL;
    char *account = NULL;
    json_t *root = NULL;
    memset(cfg, 0, sizeof *cfg);
    if (path == NULL) {
        return -1;
    }
    /* StrictModes: the home and its config are the caller's own before anything is trusted. */
    if (kms_path_check_private(home, true, true) != 0) {
        goto out;
    }
    if (kms_file_read_private(path, 1 << 20, &text, NULL) != 0) {
        if (kms_last_error() == KMS_ERR_NOT_FOUND) {
            kms_raise(KMS_ERR_HOME,
                      "%s is not a KMS home (no readable %s). Create one (kmsctl init, or "
                      "kms_home_init), or name an existing home (KMS_HOME, or the client's "
                      "home option).",
                      home, CONFIG_FILE);
        }
        goto out;
    }
    json_error_t jerr;
    root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        kms_raise(KMS_ERR_HOME, "%s is not valid JSON (line %d: %s)", path, jerr.line, jerr.text);
        goto out;
    }
    if (config_string(root, "region", path, &region) != 0 ||
        config_string(root, "account_id", path, &account) != 0 ||
        config_string(root, "pkcs11_module", path, &cfg->pkcs11_module) != 0 ||
        config_string(root, "token_label", path, &cfg->token_label) != 0 ||
        config_string(root, "pin_source", path, &cfg->pin_source) != 0) {
        goto out;
    }
    if (!account_id_valid(account) || strlen(region) >= sizeof cfg->region) {
        kms_raise(KMS_ERR_HOME, "%s: account_id must be 12 digits and region a short name", path);
        goto out;
    }
    snprintf(cfg->region, sizeof cfg->region, "%s", region);
    snprintf(cfg->account_id, sizeof cfg->account_id, "%s", account);
    json_t *period = json_object_get(root, "audit_digest_period_seconds");
    if (period != NULL) {
        if (!json_is_integer(period) || json_integer_value(period) < 1 ||
            json_integer_value(period) > 86400 * 7) {
            kms_raise(KMS_ERR_HOME, "%s: audit_digest_period_seconds must be 1 to 604800", path);
            goto out;
        }
        cfg->audit_digest_period = json_integer_value(period);
    }
    cfg->rotation_usage_limit = KMS_ROTATION_USAGE_LIMIT;
    json_t *usage = json_object_get(root, "rotation_usage_limit");
    if (usage != NULL) {
        /* Up to half the AES-GCM bound, so that rotation always comes before the hard stop. */
        if (!json_is_integer(usage) || json_integer_value(usage) < 1 ||
            json_integer_value(usage) > KMS_GCM_INVOCATION_MAX / 2) {
            kms_raise(KMS_ERR_HOME, "%s: rotation_usage_limit must be 1 to 2147483648", path);
            goto out;
        }
        cfg->rotation_usage_limit = json_integer_value(usage);
    }
    json_t *warn = json_object_get(root, "certificate_expiry_warning_days");
    if (warn != NULL) {
        if (!json_is_integer(warn) || json_integer_value(warn) < 1 ||
            json_integer_value(warn) > 3650) {
            kms_raise(KMS_ERR_HOME, "%s: certificate_expiry_warning_days must be 1 to 3650", path);
            goto out;
        }
        cfg->certificate_warning_days = json_integer_value(warn);
    }
    json_t *home_id = json_object_get(root, "home_id");
    if (home_id != NULL) {
        if (!kms_uuid_valid(json_string_value(home_id))) {
            kms_raise(KMS_ERR_HOME, "%s: home_id must be a UUID", path);
            goto out;
        }
        snprintf(cfg->home_id, sizeof cfg->home_id, "%s", json_string_value(home_id));
    }
    const char *itl = json_string_value(json_object_get(root, "internal_token_label"));
    if (itl != NULL && (cfg->internal_token_label = strdup(itl)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    const char *sh = json_string_value(json_object_get(root, "softhsm_conf"));
    if (sh != NULL) {
        cfg->softhsm_conf = sh[0] == '/' ? strdup(sh) : kms_path_join(home, sh);
        if (cfg->softhsm_conf == NULL) {
            kms_raise(KMS_ERR_INTERNAL, "out of memory");
            goto out;
        }
    }
    r = 0;
out:
    if (r != 0) {
        kms_client_config_clean_up(cfg);
    }
    json_decref(root);
    free(text);
    free(path);
    free(region);
    free(account);
    return r;
}

/* Reads the PIN named by pin_source into locked memory. */
static int pin_load(const char *home, const char *source, uint8_t **pin, size_t *pin_len)
{
    int r = -1;
    char *path = NULL;
    char *text = NULL;
    size_t len = 0, text_len = 0;
    const char *value = NULL;
    if (strncmp(source, "env:", 4) == 0) {
        value = getenv(source + 4);
        KMS_ENSURE(value != NULL && value[0] != '\0', KMS_ERR_HSM,
                   "the HSM PIN comes from the environment variable %s, which is not set",
                   source + 4);
        len = strlen(value);
    } else if (strncmp(source, "file:", 5) == 0) {
        path = source[5] == '/' ? strdup(source + 5) : kms_path_join(home, source + 5);
        KMS_ENSURE(path != NULL, KMS_ERR_INTERNAL, "out of memory");
        struct stat st;
        bool exists = lstat(path, &st) == 0;
        /* StrictModes first (KMSHomeException), then the PIN's own rule (not readable by others).
         */
        if (exists && kms_file_check_private(&st, path) != 0) {
            goto out;
        }
        if (exists && (st.st_mode & 077) != 0) {
            kms_raise(KMS_ERR_HSM,
                      "the PIN file %s is readable by others (mode %03o); run "
                      "`chmod 600 %s`",
                      path, (unsigned)(st.st_mode & 0777), path);
            goto out;
        }
        if (kms_file_read_private(path, MAX_PIN, &text, &text_len) != 0) {
            kms_raise(KMS_ERR_HSM, "cannot read the HSM PIN: %s", kms_last_error_message());
            goto out;
        }
        len = text_len;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) {
            len--;
        }
        value = text;
    } else {
        return kms_raise(KMS_ERR_HOME, "pin_source must be \"file:PATH\" or \"env:NAME\"");
    }
    if (len == 0 || len > MAX_PIN) {
        kms_raise(KMS_ERR_HSM, "the HSM PIN is empty or too long");
        goto out;
    }
    *pin = kms_secure_alloc(len);
    if (*pin == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(*pin, value, len);
    *pin_len = len;
    r = 0;
out:
    if (text != NULL) {
        /* Every byte read: a PIN file may hold a NUL, which strlen would stop at. */
        sodium_memzero(text, text_len);
        free(text);
    }
    free(path);
    return r;
}

kms_client *kms_client_open(const kms_client_options *opts)
{
    kms_client *c = NULL;
    uint8_t *pin = NULL;
    size_t pin_len = 0;
    char *db = NULL;
    char *lock = NULL;
    kms_error_clear();
    if (kms_util_init() != 0) {
        return NULL;
    }
    const char *home = opts && opts->home ? opts->home : kms_home_default();
    const char *profile = opts && opts->profile ? opts->profile : getenv("KMS_PROFILE");
    bool aws_env = opts != NULL && opts->aws_environment;
    if (profile == NULL && aws_env && !kms_env_set("KMS_ACCESS_KEY_ID") &&
        !kms_env_set("AWS_ACCESS_KEY_ID") && kms_env_set("AWS_PROFILE")) {
        profile = getenv("AWS_PROFILE");
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->audit_lock, NULL);
    c->home = strdup(home);
    /* A user agent is a short product name; a long one would not fit in a record. */
    c->user_agent = strndup(opts && opts->user_agent ? opts->user_agent : "libkms/0.1.0", 256);
    c->network_keys = kms_network_keys_new();
    if (c->home == NULL || c->user_agent == NULL || c->network_keys == NULL ||
        kms_client_config_load(home, &c->cfg) != 0 || kms_home_check_files(home, &c->cfg) != 0) {
        goto fail;
    }
    /* The PIN file is checked (and read) before anything of the home is opened or written. */
    if (pin_load(home, c->cfg.pin_source, &pin, &pin_len) != 0) {
        goto fail;
    }
    /* Credentials are checked at the first request (the gate), as a remote service does. */
    kms_credentials creds;
    if (kms_credentials_load(home, profile, aws_env, &creds) != 0) {
        goto fail;
    }
    snprintf(c->access_key_id, sizeof c->access_key_id, "%s", creds.access_key_id);
    c->secret_access_key = creds.secret_access_key;
    c->session_token = creds.session_token;
    if (kms_authz_init(&c->authz) != 0) {
        goto fail;
    }
    c->authz_ready = true;
    db = kms_path_join(home, DB_FILE);
    if (db == NULL || (c->store = kms_store_open(db, false)) == NULL) {
        goto fail;
    }
    /* One SoftHSM2 home per process, refused before its token is opened (home_check.h). */
    if (kms_home_softhsm_claim(home, c->cfg.softhsm_conf, &c->softhsm_claimed) != 0) {
        goto fail;
    }
    lock = kms_path_join(home, HSM_LOCK_FILE);
    if (lock == NULL) {
        goto fail;
    }
    const char *internal = c->cfg.internal_token_label;
    c->hsm = hsm_open_guarded(home, &c->cfg, internal != NULL ? internal : c->cfg.token_label, pin,
                              pin_len, 0, lock);
    if (c->hsm != NULL && internal != NULL) {
        c->keys_hsm = hsm_open_guarded(home, &c->cfg, c->cfg.token_label, pin, pin_len, 0, lock);
    }
    kms_secure_free(pin);
    pin = NULL;
    if (c->hsm == NULL || (internal != NULL && c->keys_hsm == NULL) ||
        kms_home_check_token(c->hsm, &c->cfg, c->home) != 0) {
        goto fail;
    }
    c->keystore.hsm = c->keys_hsm != NULL ? c->keys_hsm : c->hsm;
    c->keystore.store = c->store;
    c->keystore.region = c->cfg.region;
    c->keystore.account_id = c->cfg.account_id;
    c->keystore.usage = kms_keystore_usage_new();
    if (c->keystore.usage == NULL) {
        goto fail;
    }
    kms_iam_sealer sealer = kms_internal_keys_sealer(c->hsm);
    c->iam = kms_iam_new(c->store, &sealer, c->cfg.region);
    if (c->iam == NULL) {
        goto fail;
    }
    free(db);
    free(lock);
    return c;
fail:
    if (pin != NULL) {
        kms_secure_free(pin);
    }
    free(db);
    free(lock);
    kms_client_free(c);
    return NULL;
}

kms_client *kms_client_open_remote(const kms_remote_options *opts)
{
    kms_error_clear();
    kms_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if ((c->remote = kms_remote_open(opts)) == NULL) {
        free(c);
        return NULL;
    }
    snprintf(c->cfg.region, sizeof c->cfg.region, "%s", kms_remote_region(c->remote));
    return c;
}

void kms_client_free(kms_client *c)
{
    if (c == NULL) {
        return;
    }
    if (c->remote != NULL) {
        kms_remote_free(c->remote);
        free(c);
        return;
    }
    /* A clean shutdown seals the trail's open segment with a signed digest (the HSM is still
     * open). */
    kms_audit_close(c->audit);
    EVP_MAC_CTX_free(c->audit_ack_mac);
    kms_keystore_usage_free(c->keystore.usage, c->store);
    free(c->audit_spki);
    free(c->user_agent);
    kms_network_keys_free(c->network_keys);
    pthread_mutex_destroy(&c->audit_lock);
    if (c->authz_ready) {
        kms_authz_clean_up(&c->authz);
    }
    kms_iam_free(c->iam);
    if (c->secret_access_key != NULL) {
        kms_secure_free(c->secret_access_key);
    }
    if (c->session_token != NULL) {
        kms_secure_free(c->session_token);
    }
    kms_internal_keys_hsm_close(c->keys_hsm);
    kms_internal_keys_hsm_close(c->hsm);
    kms_home_softhsm_release(c->softhsm_claimed);
    kms_store_close(c->store);
    kms_client_config_clean_up(&c->cfg);
    free(c->home);
    free(c);
}

/* ---- kms_home_init ------------------------------------------------------------------------ */

static int random_secret(char *out, size_t len)
{
    /* Printable PINs: some HSM tools choke on binary ones. 24 random bytes -> 32 characters. */
    uint8_t raw[24];
    KMS_ENSURE(len >= sodium_base64_ENCODED_LEN(sizeof raw, sodium_base64_VARIANT_URLSAFE),
               KMS_ERR_INTERNAL, "secret buffer too small");
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, len, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

static char *hsm_script_path(const kms_init_options *o)
{
    const char *dirs[] = {o && o->hsm_script_dir ? o->hsm_script_dir : getenv("KMS_HSM_DIR"),
                          KMS_HSM_DIR_SOURCE, KMS_HSM_DIR_INSTALLED};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (dirs[i] == NULL) {
            continue;
        }
        char *p = kms_path_join(dirs[i], "create-token.sh");
        if (p != NULL && access(p, R_OK) == 0) {
            return p;
        }
        free(p);
    }
    kms_raise(KMS_ERR_HOME, "cannot find hsm/create-token.sh; set KMS_HSM_DIR to the folder "
                            "that holds it");
    return NULL;
}

static int run_create_token(const char *script, const char *dir)
{
    pid_t pid = fork();
    KMS_ENSURE(pid >= 0, KMS_ERR_INTERNAL, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
        }
        execlp("bash", "bash", script, dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        KMS_ENSURE(errno == EINTR, KMS_ERR_INTERNAL, "waitpid failed: %s", strerror(errno));
    }
    KMS_ENSURE(WIFEXITED(status) && WEXITSTATUS(status) == 0, KMS_ERR_HSM,
               "%s %s failed (exit %d); is softhsm2 installed?", script, dir,
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

static int home_check_new(const char *home, bool *created)
{
    struct stat st;
    *created = false;
    if (stat(home, &st) != 0) {
        KMS_ENSURE(errno == ENOENT, KMS_ERR_HOME, "cannot use %s: %s", home, strerror(errno));
        KMS_ENSURE(mkdir(home, 0700) == 0, KMS_ERR_HOME, "cannot create %s: %s", home,
                   strerror(errno));
        *created = true;
        return 0;
    }
    KMS_ENSURE(S_ISDIR(st.st_mode), KMS_ERR_HOME, "%s exists and is not a directory", home);
    KMS_GUARD(kms_path_check_private(home, true, false));
    char *cfg = kms_path_join(home, CONFIG_FILE);
    char *db = kms_path_join(home, DB_FILE);
    bool exists = (cfg && kms_path_exists(cfg)) || (db && kms_path_exists(db));
    free(cfg);
    free(db);
    KMS_ENSURE(!exists, KMS_ERR_ALREADY_EXISTS,
               "%s already holds a KMS home; nothing was changed. Use it as it is, or choose "
               "another --home.",
               home);
    DIR *d = opendir(home);
    KMS_ENSURE(d != NULL, KMS_ERR_HOME, "cannot read %s: %s", home, strerror(errno));
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = false;
        }
    }
    closedir(d);
    KMS_ENSURE(empty, KMS_ERR_HOME, "%s exists and is not empty; choose an empty or new folder",
               home);
    return 0;
}

/* Removes what init created (the home if it made it, else the entries it added). */
static void home_undo(const char *home, bool created)
{
    const char *entries[] = {CONFIG_FILE, DB_FILE,  DB_FILE "-wal", DB_FILE "-shm",
                             "pin",       "so-pin", "credentials",  HSM_LOCK_FILE};
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        char *p = kms_path_join(home, entries[i]);
        if (p != NULL) {
            unlink(p);
        }
        free(p);
    }
    char *hsm = kms_path_join(home, "hsm");
    char *audit = kms_path_join(home, "audit");
    if (hsm != NULL && audit != NULL) {
        pid_t pid = fork();
        if (pid == 0) {
            execlp("rm", "rm", "-rf", "--", hsm, audit, (char *)NULL);
            _exit(127);
        }
        if (pid > 0) {
            waitpid(pid, NULL, 0);
        }
    }
    free(hsm);
    free(audit);
    if (created) {
        rmdir(home);
    }
}

static int write_config(const char *home, const kms_config *cfg, bool softhsm)
{
    int r = -1;
    char *path = kms_path_join(home, CONFIG_FILE);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "region", cfg->region, "account_id",
                          cfg->account_id, "pkcs11_module", cfg->pkcs11_module, "token_label",
                          cfg->token_label, "pin_source", cfg->pin_source, "home_id", cfg->home_id);
    char *text = NULL;
    if (path == NULL || o == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (cfg->internal_token_label != NULL &&
        json_object_set_new(o, "internal_token_label", json_string(cfg->internal_token_label)) !=
            0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (softhsm && json_object_set_new(o, "softhsm_conf", json_string("hsm/softhsm2.conf")) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (kms_file_write_atomic(path, text, strlen(text), 0600) != 0) {
        goto out;
    }
    r = 0;
out:
    free(text);
    json_decref(o);
    free(path);
    return r;
}

/* The customer keys' token of a home with two (client.h) holds the home id too, so that no other
 * home, opening it as its only token, takes it for its own. Opening a home checks the id in the
 * token of the home's own objects only: a check here would cost a C_FindObjects over every key. */
static int claim_keys_token(const char *home, const kms_config *cfg, const char *pin)
{
    if (cfg->internal_token_label == NULL) {
        return 0;
    }
    char *lock = kms_path_join(home, HSM_LOCK_FILE);
    kms_hsm *keys = lock != NULL ? hsm_open_guarded(home, cfg, cfg->token_label,
                                                    (const uint8_t *)pin, strlen(pin), 1, lock)
                                 : NULL;
    free(lock);
    int r = keys != NULL ? kms_home_claim_token(keys, cfg) : -1;
    kms_internal_keys_hsm_close(keys);
    return r;
}

/* AWS's account hardening (IAM User Guide, "Security best practices in IAM"): the root user
 * gets no access keys; day-to-day work is done by an "admin" user of an "Admins" group with
 * full access, whose access key becomes the default profile; a password policy is set. The
 * HSM key that seals IAM secrets is generated first. */
static int harden_account(const char *home, const kms_config *cfg, kms_store *store,
                          const char *pin, const char *root_password)
{
    int r = -1;
    kms_iam *iam = NULL;
    char akid[32] = "";
    char *secret = NULL;
    char *lock = kms_path_join(home, HSM_LOCK_FILE);
    kms_hsm *hsm = lock != NULL ? hsm_open_guarded(home, cfg,
                                                   cfg->internal_token_label != NULL
                                                       ? cfg->internal_token_label
                                                       : cfg->token_label,
                                                   (const uint8_t *)pin, strlen(pin), 1, lock)
                                : NULL;
    free(lock);
    if (hsm == NULL || kms_home_claim_token(hsm, cfg) != 0 ||
        claim_keys_token(home, cfg, pin) != 0 || kms_internal_keys_sealer_create(hsm) != 0 ||
        kms_audit_trail_home_create(home, hsm) != 0) {
        goto out;
    }
    kms_iam_sealer sealer = kms_internal_keys_sealer(hsm);
    iam = kms_iam_new(store, &sealer, cfg->region);
    if (iam == NULL || kms_iam_bootstrap(iam, cfg->account_id, kms_now(), akid, &secret) != 0 ||
        kms_credentials_save(home, "default", akid, secret, NULL) != 0) {
        goto out;
    }
    if (root_password != NULL &&
        kms_iam_login_profile_create(iam, cfg->account_id, NULL, root_password, false, kms_now(),
                                     NULL) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_secret_free(secret);
    kms_iam_free(iam);
    kms_internal_keys_hsm_close(hsm);
    return r;
}

/* Opens the new home as its admin and writes the records of init's IAM setup. */
static int init_records(const char *home, bool root_login_profile)
{
    kms_client_options o = {.home = home, .profile = "default"};
    kms_client *c = kms_client_open(&o);
    if (c == NULL) {
        return -1;
    }
    int r = kms_audit_trail_init_records(c, root_login_profile);
    kms_client_free(c);
    return r;
}

/* A SoftHSM2 home's own objects get a token of their own beside the customer keys' (client.h:
 * SoftHSM2 compares every object of a token at every C_FindObjects, and a command finds several
 * of the home's own objects), labelled "internal-LABEL" (not "LABEL-..."; tools such as pkcs11-tool
 * match --token-label as a prefix), with the same PINs. A label too long for that keeps one token.
 */
static int init_internal_token(const char *module, const char *label, const char *so_pin,
                               const char *pin, kms_config *cfg)
{
    char internal[33]; /* a PKCS#11 token label has 32 bytes */
    int n = snprintf(internal, sizeof internal, "internal-%s", label);
    if (n < 0 || (size_t)n >= sizeof internal) {
        return 0;
    }
    KMS_GUARD(kms_internal_keys_init_token(module, internal, (const uint8_t *)so_pin,
                                           strlen(so_pin), (const uint8_t *)pin, strlen(pin)));
    cfg->internal_token_label = strdup(internal);
    KMS_ENSURE(cfg->internal_token_label != NULL, KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_home_init(const char *home, const kms_init_options *opts)
{
    int r = -1;
    bool created = false;
    bool started = false;
    bool softhsm_claimed = false;
    char pin[64] = {0};
    char so_pin[64] = {0};
    char *pin_path = NULL;
    char *so_path = NULL;
    char *hsm_dir = NULL;
    char *script = NULL;
    char *db = NULL;
    char *trusted_module = NULL;
    kms_store *store = NULL;
    kms_config cfg;
    memset(&cfg, 0, sizeof cfg);
    kms_error_clear();
    KMS_GUARD(kms_util_init());
    if (home == NULL) {
        home = kms_home_default();
    }
    const char *region = opts && opts->region ? opts->region : "us-east-1";
    const char *module = opts && opts->pkcs11_module ? opts->pkcs11_module : DEFAULT_MODULE;
    const char *label = opts && opts->token_label ? opts->token_label : "kms";
    bool softhsm = strcmp(module, DEFAULT_MODULE) == 0;
    KMS_ENSURE(region[0] != '\0' && strlen(region) < sizeof cfg.region, KMS_ERR_VALIDATION,
               "region must be a short name such as us-east-1");
    if (opts && opts->account_id) {
        KMS_ENSURE(account_id_valid(opts->account_id), KMS_ERR_VALIDATION,
                   "account id must be 12 digits, got '%s'", opts->account_id);
        snprintf(cfg.account_id, sizeof cfg.account_id, "%s", opts->account_id);
    } else {
        /* A random account id that cannot be mistaken for a real one of AWS's: starts with 9. */
        cfg.account_id[0] = '9';
        for (int i = 1; i < 12; i++) {
            cfg.account_id[i] = (char)('0' + randombytes_uniform(10));
        }
    }
    snprintf(cfg.region, sizeof cfg.region, "%s", region);
    KMS_GUARD(kms_uuid_new(cfg.home_id));
    KMS_GUARD(kms_file_check_trusted(module, "the PKCS#11 module", &trusted_module));
    if (home_check_new(home, &created) != 0) {
        free(trusted_module);
        return -1;
    }
    started = true;
    cfg.pkcs11_module = strdup(module);
    module = trusted_module;
    cfg.token_label = strdup(label);
    cfg.pin_source = strdup("file:pin");
    pin_path = kms_path_join(home, "pin");
    so_path = kms_path_join(home, "so-pin");
    hsm_dir = kms_path_join(home, "hsm");
    db = kms_path_join(home, DB_FILE);
    if (!cfg.pkcs11_module || !cfg.token_label || !cfg.pin_source || !pin_path || !so_path ||
        !hsm_dir || !db) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (opts && opts->pin) {
        snprintf(pin, sizeof pin, "%s", opts->pin);
    } else if (random_secret(pin, sizeof pin) != 0) {
        goto out;
    }
    if (random_secret(so_pin, sizeof so_pin) != 0 ||
        kms_file_write_atomic(pin_path, pin, strlen(pin), 0600) != 0 ||
        kms_file_write_atomic(so_path, so_pin, strlen(so_pin), 0600) != 0) {
        goto out;
    }
    if (softhsm) {
        char *conf = kms_path_join(hsm_dir, "softhsm2.conf");
        script = hsm_script_path(opts);
        if (conf == NULL || script == NULL || run_create_token(script, hsm_dir) != 0 ||
            kms_home_softhsm_claim(home, conf, &softhsm_claimed) != 0) {
            free(conf);
            goto out;
        }
        free(conf);
        if (kms_internal_keys_init_token(module, label, (const uint8_t *)so_pin, strlen(so_pin),
                                         (const uint8_t *)pin, strlen(pin)) != 0 ||
            init_internal_token(module, label, so_pin, pin, &cfg) != 0) {
            goto out;
        }
    }
    store = kms_store_open(db, true);
    if (store == NULL || write_config(home, &cfg, softhsm) != 0 ||
        harden_account(home, &cfg, store, pin, opts ? opts->root_password : NULL) != 0) {
        goto out;
    }
    kms_store_close(store);
    store = NULL;
    /* The IAM setup's records are the first of the trail; without them, no home (fail closed). */
    if (init_records(home, opts != NULL && opts->root_password != NULL) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_store_close(store);
    kms_home_softhsm_release(softhsm_claimed);
    if (r != 0 && started) {
        kms_saved_error e;
        kms_error_save(&e);
        home_undo(home, created);
        kms_error_restore(&e);
    }
    sodium_memzero(pin, sizeof pin);
    sodium_memzero(so_pin, sizeof so_pin);
    kms_client_config_clean_up(&cfg);
    free(pin_path);
    free(so_path);
    free(hsm_dir);
    free(script);
    free(db);
    free(trusted_module);
    return r;
}
