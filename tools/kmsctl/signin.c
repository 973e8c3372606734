/* kmsctl sign-in: a person's password (and MFA code) in, a session profile out. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "kms/kms.h"
#include "kmsctl.h"

#define MAX_PASSWORD 1024

/* Reads a password: from FILE (its first line), else $KMS_PASSWORD, else the terminal without
 * echo. Locked memory; NULL with a usage error printed. */
static char *read_password(const struct command *cmd, const char *opt, const char *file,
                           const char *env, const char *prompt, int *rc)
{
    char *p = sodium_malloc(MAX_PASSWORD);
    *rc = KMSCTL_EXIT_USAGE;
    if (p == NULL) {
        *rc = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        return NULL;
    }
    p[0] = '\0';
    if (file != NULL) {
        unsigned char *buf = NULL;
        size_t len = 0;
        if (kmsctl_read_file(cmd, opt, file, &buf, &len) != 0) {
            sodium_free(p);
            return NULL;
        }
        buf[strcspn((char *)buf, "\r\n")] = '\0';
        snprintf(p, MAX_PASSWORD, "%s", (char *)buf);
        sodium_memzero(buf, len);
        free(buf);
    } else if (env != NULL && getenv(env) != NULL) {
        snprintf(p, MAX_PASSWORD, "%s", getenv(env));
    } else if (isatty(STDIN_FILENO)) {
        struct termios old, quiet;
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        if (fgets(p, MAX_PASSWORD, stdin) == NULL) {
            p[0] = '\0';
        }
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
        p[strcspn(p, "\r\n")] = '\0';
    } else {
        kmsctl_usage_error(cmd, "no password: give --%s FILE, set %s, or run on a terminal", opt,
                           env ? env : "it");
        sodium_free(p);
        return NULL;
    }
    return p;
}

int kmsctl_sign_in(const struct command *cmd, const struct globals *g, json_t *request)
{
    int rc = KMSCTL_EXIT_SERVICE;
    char *password = NULL, *new_password = NULL;
    const char *user = json_string_value(json_object_get(request, "UserName"));
    const char *profile = json_string_value(json_object_get(request, "SaveProfile"));
    const char *new_file = json_string_value(json_object_get(request, "NewPasswordFile"));
    kms_sign_in_options o = {
        .home = g->home,
        .user_name = user,
        .mfa_code = json_string_value(json_object_get(request, "TokenCode")),
        .duration_seconds = (long)json_integer_value(json_object_get(request, "DurationSeconds")),
        .save_profile = profile ? profile : "signin",
        .force = json_is_true(json_object_get(request, "Force")),
    };
    int64_t expiration = 0;
    json_t *out = NULL;

    if (sodium_init() < 0) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: cannot initialise libsodium");
    }
    password = read_password(cmd, "password-file",
                             json_string_value(json_object_get(request, "PasswordFile")),
                             "KMS_PASSWORD", "Password: ", &rc);
    if (password == NULL) {
        goto out;
    }
    if (new_file != NULL) {
        new_password = read_password(cmd, "new-password-file", new_file, NULL, "", &rc);
        if (new_password == NULL) {
            goto out;
        }
    }
    o.password = password;
    o.new_password = new_password;
    if (kms_sign_in(&o, &expiration) != 0) {
        rc = kmsctl_service_error();
        goto out;
    }
    out = json_pack("{s:s, s:s, s:I}", "Profile", o.save_profile, "UserName", user ? user : "root",
                    "Expiration", (json_int_t)expiration);
    kmsctl_iso_dates(out);
    rc = out ? kmsctl_print_value(g, out)
             : kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
out:
    if (password != NULL) {
        sodium_free(password);
    }
    if (new_password != NULL) {
        sodium_free(new_password);
    }
    json_decref(out);
    return rc;
}
