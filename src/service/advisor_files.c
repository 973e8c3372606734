/* kmsctl advisor, the home's files: OpenSSH's StrictModes as the client checks them before it
 * trusts a home (kms_client_config_load, home_check.c, the PIN file), in report mode, so that
 * every problem is listed with the chmod or chown its message names. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "service/advisor.h"
#include "service/home_check.h"
#include "util/util.h"

#define CHECK "Home.Permissions"
#define WHY                                                                                        \
    "The home's files decide what this KMS trusts (config.json names the PKCS#11 module it "       \
    "loads as code; the database holds IAM and every policy; the trail is the evidence). A file "  \
    "or directory owned by another user, or writable by group or others, lets that user change "   \
    "them; the home is refused until it is fixed. "

/* The command a StrictModes message names ("... run `chmod go-w PATH`"), or "". */
static void fix_of(const char *message, char *out, size_t size)
{
    const char *p = strstr(message, "run `");
    const char *q = p != NULL ? strchr(p + 5, '`') : NULL;
    out[0] = '\0';
    if (q != NULL && (size_t)(q - (p + 5)) < size) {
        memcpy(out, p + 5, (size_t)(q - (p + 5)));
        out[q - (p + 5)] = '\0';
    }
}

/* The last error (a StrictModes refusal of `name`) as a finding. */
static int problem(void *arg, const char *name)
{
    kms_advisor *a = arg;
    char fix[1024];
    char *why = NULL;
    char *path = name[0] == '/' ? strdup(name) : kms_path_join(a->home, name);
    const char *message = kms_last_error_message();
    fix_of(message, fix, sizeof fix);
    why = kms_strdup_printf("%s%s", WHY, message);
    int r = path == NULL || why == NULL
                ? kms_raise(KMS_ERR_INTERNAL, "out of memory")
                : kms_advisor_add(a, CHECK, KMS_ADVISOR_CRITICAL, path, why, "%s", fix);
    free(path);
    free(why);
    return r;
}

/* A path that must exist for the home to be a home. */
static int required(kms_advisor *a, const char *path, bool dir, bool *ok)
{
    struct stat st;
    *ok = false;
    KMS_ENSURE(lstat(path, &st) == 0, KMS_ERR_HOME,
               "%s is not a KMS home (cannot read %s: %s). Create one (kmsctl init, or "
               "kms_home_init), or name an existing home (KMS_HOME, or the client's home "
               "option).",
               a->home, path, strerror(errno));
    if (kms_path_check_private(path, dir, false) != 0) {
        return problem(a, path);
    }
    *ok = true;
    return 0;
}

/* The PIN file, when the PIN comes from one (client.c pin_load). */
static int pin_check(kms_advisor *a, const char *source)
{
    if (strncmp(source, "file:", 5) != 0) {
        return 0;
    }
    char *path = source[5] == '/' ? strdup(source + 5) : kms_path_join(a->home, source + 5);
    KMS_ENSURE(path != NULL, KMS_ERR_INTERNAL, "out of memory");
    struct stat st;
    int r = 0;
    if (kms_path_check_private(path, false, true) != 0) {
        r = problem(a, path);
    } else if (lstat(path, &st) == 0 && (st.st_mode & 077) != 0) {
        /* The PIN's own rule (client.c refuses it too): a secret readable by others. */
        r = kms_advisor_add(a, CHECK, KMS_ADVISOR_CRITICAL, path,
                            "The HSM PIN file is readable by group or others: whoever reads it "
                            "can use every key of the token. The home is refused until it is "
                            "fixed.",
                            "chmod 600 %s", path);
    }
    free(path);
    return r;
}

int kms_advisor_files(kms_advisor *a, bool *usable)
{
    int r = -1;
    bool home_ok = false, config_ok = false;
    char *config = kms_path_join(a->home, "config.json");
    kms_config cfg;
    memset(&cfg, 0, sizeof cfg);
    *usable = false;
    size_t before = json_array_size(a->findings);
    if (config == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (required(a, a->home, true, &home_ok) != 0 || required(a, config, false, &config_ok) != 0) {
        goto out;
    }
    if (home_ok && config_ok) {
        /* The rest is named by config.json, which can now be trusted. */
        if (kms_client_config_load(a->home, &cfg) != 0 || pin_check(a, cfg.pin_source) != 0 ||
            kms_home_check_files_report(a->home, &cfg, problem, a) != 0) {
            goto out;
        }
    }
    *usable = json_array_size(a->findings) == before;
    r = 0;
out:
    kms_client_config_clean_up(&cfg);
    free(config);
    return r;
}
