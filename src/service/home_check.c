/* Checks of a KMS home before it is trusted: OpenSSH's StrictModes for its files and the PKCS#11
 * module, and the home's identity in its HSM token, so that a copied or moved home never uses
 * another home's token. Private to src/service. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/home_check.h"
#include "service/internal_keys.h"
#include "util/util.h"

#define CONFIG_FILE "config.json"

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* The value of "directories.tokendir" in a SoftHSM2 configuration (malloc'd; the last one wins,
 * as in SoftHSM2's own parser), or NULL. */
static char *softhsm_tokendir(const char *text)
{
    static const char key[] = "directories.tokendir";
    char *found = NULL;
    const char *line = text;
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        const char *stop = end != NULL ? end : line + strlen(line);
        const char *p = line;
        while (p < stop && is_blank(*p)) {
            p++;
        }
        if ((size_t)(stop - p) > sizeof key - 1 && strncmp(p, key, sizeof key - 1) == 0) {
            p += sizeof key - 1;
            while (p < stop && is_blank(*p)) {
                p++;
            }
            if (p < stop && *p == '=') {
                p++;
                while (p < stop && is_blank(*p)) {
                    p++;
                }
                const char *q = stop;
                while (q > p && is_blank(q[-1])) {
                    q--;
                }
                free(found);
                found = strndup(p, (size_t)(q - p));
            }
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return found;
}

/* The SoftHSM2 token directory must lie inside the home: a copied home whose configuration still
 * names the original's tokens would write its keys and audit anchor into the original's token. */
static int token_dir_check(const char *home, const char *conf)
{
    int r = -1;
    char *text = NULL;
    char *dir = NULL;
    char *real_home = NULL;
    char *real_dir = NULL;
    if (kms_file_read_private(conf, 1 << 16, &text, NULL) != 0) {
        goto out;
    }
    if ((dir = softhsm_tokendir(text)) == NULL || dir[0] != '/') {
        kms_raise(KMS_ERR_HOME, "%s names no absolute directories.tokendir", conf);
        goto out;
    }
    real_home = realpath(home, NULL);
    real_dir = realpath(dir, NULL);
    if (real_home == NULL || real_dir == NULL) {
        kms_raise(KMS_ERR_HOME, "cannot resolve the token directory %s named by %s: %s", dir, conf,
                  strerror(errno));
        goto out;
    }
    size_t n = strlen(real_home);
    if (strncmp(real_dir, real_home, n) != 0 || real_dir[n] != '/') {
        kms_raise(KMS_ERR_HOME,
                  "%s names the token directory %s, outside this home %s: the home was copied or "
                  "moved, and using it would change another home's keys and audit anchor. A "
                  "home moves with its own token: run `sed -i "
                  "'s|^directories.tokendir = .*|directories.tokendir = %s/hsm/tokens|' %s`",
                  conf, real_dir, real_home, real_home, conf);
        goto out;
    }
    if (kms_path_check_private(real_dir, true, false) != 0) {
        goto out;
    }
    r = 0;
out:
    free(text);
    free(dir);
    free(real_home);
    free(real_dir);
    return r;
}

/* A path of the home, checked with kms_path_check_private (absent: fine, its user complains). */
static int home_entry_check(const char *home, const char *name, bool dir)
{
    char *path = kms_path_join(home, name);
    KMS_ENSURE(path != NULL, KMS_ERR_INTERNAL, "out of memory");
    int r = kms_path_check_private(path, dir, true);
    free(path);
    return r;
}

/* A failed check stops the walk, or in report mode (problem not NULL) is handed to problem,
 * which says whether to go on. */
static int noted(int r, kms_home_problem_fn problem, void *arg, const char *name);

/* Each token's own folder in hsm/tokens (SoftHSM2 keeps a token's objects there). */
static int token_subdirs_check(const char *home, kms_home_problem_fn problem, void *arg)
{
    char *tokens = kms_path_join(home, "hsm/tokens");
    KMS_ENSURE(tokens != NULL, KMS_ERR_INTERNAL, "out of memory");
    DIR *d = opendir(tokens);
    free(tokens);
    struct dirent *e;
    int r = 0;
    while (r == 0 && d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char *name = kms_strdup_printf("hsm/tokens/%s", e->d_name);
        if (name == NULL) {
            r = -1;
            break;
        }
        r = noted(home_entry_check(home, name, true), problem, arg, name);
        free(name);
    }
    if (d != NULL) {
        closedir(d);
    }
    return r;
}

/* A failed check stops the walk, or in report mode (problem not NULL) is handed to problem,
 * which says whether to go on. */
static int noted(int r, kms_home_problem_fn problem, void *arg, const char *name)
{
    return r == 0 || problem == NULL ? r : problem(arg, name);
}

int kms_home_check_files(const char *home, kms_config *cfg)
{
    return kms_home_check_files_report(home, cfg, NULL, NULL);
}

int kms_home_check_files_report(const char *home, kms_config *cfg, kms_home_problem_fn problem,
                                void *arg)
{
    char *what = NULL;
    char *module = NULL;
    KMS_GUARD(noted(home_entry_check(home, "credentials", false), problem, arg, "credentials"));
    /* The database holds IAM, every policy and the sign-in counters; its journal files and
     * the trail's subfolders are written by others as much as the files themselves. */
    static const char *const files[] = {
        "kms.db",         "kms.db-wal",         "kms.db-shm",         "kms.db-journal",
        "audit-index.db", "audit-index.db-wal", "audit-index.db-shm", "audit-index.db-journal"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        KMS_GUARD(noted(home_entry_check(home, files[i], false), problem, arg, files[i]));
    }
    static const char *const dirs[] = {"audit", "audit/segments", "audit/digests", "audit/torn"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        KMS_GUARD(noted(home_entry_check(home, dirs[i], true), problem, arg, dirs[i]));
    }
    if (cfg->softhsm_conf != NULL) {
        KMS_GUARD(noted(home_entry_check(home, "hsm", true), problem, arg, "hsm"));
        KMS_GUARD(noted(token_dir_check(home, cfg->softhsm_conf), problem, arg, "hsm/tokens"));
        KMS_GUARD(token_subdirs_check(home, problem, arg));
        KMS_GUARD(noted(home_entry_check(home, "hsm/token-backup", true), problem, arg,
                        "hsm/token-backup"));
    }
    what = kms_strdup_printf("pkcs11_module in %s/%s", home, CONFIG_FILE);
    if (what == NULL) {
        return -1;
    }
    int r = kms_file_check_trusted(cfg->pkcs11_module, what, &module);
    free(what);
    KMS_GUARD(noted(r, problem, arg, cfg->pkcs11_module));
    if (r == 0) {
        free(cfg->pkcs11_module);
        cfg->pkcs11_module = module;
    }
    return 0;
}

/* The token that holds the home id: the home's own objects' (client.h). */
static const char *id_token(const kms_config *cfg)
{
    return cfg->internal_token_label != NULL ? cfg->internal_token_label : cfg->token_label;
}

/* The token must be this home's: init stored the home id of config.json in it. */
int kms_home_check_token(kms_hsm *hsm, const kms_config *cfg, const char *home)
{
    int r = -1;
    uint8_t *v = NULL;
    size_t n = 0;
    if (cfg->home_id[0] == '\0') {
        return 0; /* a home made before home ids */
    }
    if (kms_internal_keys_home_id_get(hsm, &v, &n) != 0) {
        if (kms_last_error() == KMS_ERR_NOT_FOUND) {
            kms_raise(KMS_ERR_HOME,
                      "the HSM token \"%s\" holds no home id, but %s/%s says it belongs to home "
                      "%s: it is not this home's token; restore the home's own token",
                      id_token(cfg), home, CONFIG_FILE, cfg->home_id);
        }
        goto out;
    }
    if (n != strlen(cfg->home_id) || memcmp(v, cfg->home_id, n) != 0) {
        kms_raise(KMS_ERR_HOME,
                  "the HSM token \"%s\" belongs to another KMS home (id %.36s), not to %s (id "
                  "%s); using it would change that home's keys and audit anchor. Point this "
                  "home at its own token (token_label, or the SoftHSM2 configuration)",
                  id_token(cfg), (const char *)v, home, cfg->home_id);
        goto out;
    }
    r = 0;
out:
    free(v);
    return r;
}

/* A new home's token must be its own: one that holds another home's id is refused; else it gets
 * this home's id. */
int kms_home_claim_token(kms_hsm *hsm, const kms_config *cfg)
{
    uint8_t *v = NULL;
    size_t n = 0;
    if (kms_internal_keys_home_id_get(hsm, &v, &n) == 0) {
        kms_raise(KMS_ERR_HOME,
                  "the HSM token \"%s\" already belongs to the KMS home with id %.36s; a new "
                  "home needs a token of its own (another token_label, or an empty SoftHSM2 "
                  "token directory)",
                  id_token(cfg), (const char *)v);
        free(v);
        return -1;
    }
    if (kms_last_error() != KMS_ERR_NOT_FOUND) {
        return -1;
    }
    return kms_internal_keys_home_id_set(hsm, cfg->home_id);
}

/* ---- One SoftHSM2 home per process ---------------------------------------------------------- */

/* SoftHSM2 reads SOFTHSM2_CONF when the module is initialised, and every home's token is
 * labelled "kms": while one home's token is open in this process, another home would be served
 * the first home's token. The homes that name a SoftHSM2 configuration (softhsm_conf) claim
 * the process for theirs; a PKCS#11 module configured otherwise is not tracked. */
static pthread_mutex_t softhsm_lock = PTHREAD_MUTEX_INITIALIZER;
static char softhsm_conf_open[PATH_MAX];
static char softhsm_home_open[PATH_MAX];
static int softhsm_users;

/* The configuration's path with symbolic links resolved (its folder, when the file is not there
 * yet); the path as given when neither resolves. */
static void resolve_conf(const char *conf, char out[PATH_MAX])
{
    char dir[PATH_MAX];
    char real[PATH_MAX];
    if (realpath(conf, real) != NULL) {
        snprintf(out, PATH_MAX, "%s", real);
        return;
    }
    snprintf(dir, sizeof dir, "%s", conf);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        size_t base = strlen(slash + 1);
        if (realpath(dir, real) != NULL && strlen(real) + base + 2 <= PATH_MAX) {
            size_t n = strlen(real);
            memcpy(out, real, n);
            out[n] = '/';
            memcpy(out + n + 1, slash + 1, base + 1);
            return;
        }
    }
    snprintf(out, PATH_MAX, "%s", conf);
}

int kms_home_softhsm_claim(const char *home, const char *softhsm_conf, bool *claimed)
{
    int r = -1;
    char conf[PATH_MAX];
    *claimed = false;
    if (softhsm_conf == NULL) {
        return 0;
    }
    resolve_conf(softhsm_conf, conf);
    pthread_mutex_lock(&softhsm_lock);
    if (softhsm_users > 0 && strcmp(conf, softhsm_conf_open) != 0) {
        kms_raise(KMS_ERR_HOME,
                  "cannot open the KMS home %s: this process already has the KMS home %s open, "
                  "and SoftHSM2 reads one configuration per process (SOFTHSM2_CONF %s), so the "
                  "second home would be served the first home's token. Use one SoftHSM2 home "
                  "per process: open %s in another process (another kmsctl or kmsd).",
                  home, softhsm_home_open, softhsm_conf_open, home);
        goto out;
    }
    if (setenv("SOFTHSM2_CONF", conf, 1) != 0) {
        kms_raise(KMS_ERR_INTERNAL, "cannot set SOFTHSM2_CONF");
        goto out;
    }
    if (softhsm_users == 0) {
        snprintf(softhsm_conf_open, sizeof softhsm_conf_open, "%s", conf);
        snprintf(softhsm_home_open, sizeof softhsm_home_open, "%s", home);
    }
    softhsm_users++;
    *claimed = true;
    r = 0;
out:
    pthread_mutex_unlock(&softhsm_lock);
    return r;
}

void kms_home_softhsm_release(bool claimed)
{
    if (!claimed) {
        return;
    }
    pthread_mutex_lock(&softhsm_lock);
    if (softhsm_users > 0) {
        softhsm_users--;
    }
    pthread_mutex_unlock(&softhsm_lock);
}
