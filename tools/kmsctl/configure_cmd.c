/* kmsctl configure [list | get NAME | set NAME VALUE], as `aws configure` does for profiles.
 *
 * A profile lives where kmsctl reads its credentials: the home's credentials file (--home, else
 * $KMS_HOME or ~/.kms when it is a home), else $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials
 * (kms_remote_options' own order). kmsctl keeps the profile's region and output format in the
 * same INI section as its keys (botocore reads that file's values as configuration too), so one
 * 0600 file holds a profile. Every change rewrites the file atomically (a temporary file in the
 * same directory, fsync, rename), mode 0600; secrets read from it are wiped after use. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/kms.h"
#include "kmsctl.h"

#define MAX_CREDENTIALS_FILE (256 * 1024)
#define MAX_VALUE 4096

/* ---- The credentials file ----------------------------------------------------------------------
 */

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The file configure reads and writes (malloc'd). */
static char *credentials_path(const struct globals *g)
{
    char *path = NULL;
    const char *home = g->home != NULL ? g->home : kms_home_default();
    char config[4096];

    snprintf(config, sizeof config, "%s/config.json", home != NULL ? home : "");
    if (g->home != NULL || (home != NULL && access(config, F_OK) == 0)) {
        return asprintf(&path, "%s/credentials", home) < 0 ? NULL : path;
    }
    if (env_value("AWS_SHARED_CREDENTIALS_FILE") != NULL) {
        return strdup(env_value("AWS_SHARED_CREDENTIALS_FILE"));
    }
    return asprintf(&path, "%s/.aws/credentials", env_value("HOME") ? env_value("HOME") : ".") < 0
               ? NULL
               : path;
}

/* The profile a command acts as, and where that name came from (NULL: none given). */
static const char *profile_name(const struct globals *g, const char **type, const char **where)
{
    *type = NULL;
    *where = NULL;
    if (g->profile != NULL) {
        *type = "manual";
        *where = "--profile";
        return g->profile;
    }
    if (env_value("KMS_PROFILE") != NULL) {
        *type = "env";
        *where = "KMS_PROFILE";
        return env_value("KMS_PROFILE");
    }
    if (env_value("KMS_ACCESS_KEY_ID") == NULL && env_value("AWS_ACCESS_KEY_ID") == NULL &&
        env_value("AWS_PROFILE") != NULL) {
        *type = "env";
        *where = "AWS_PROFILE";
        return env_value("AWS_PROFILE");
    }
    return "default";
}

/* The whole file (NUL-terminated, malloc'd; "" when it does not exist); -1 with a message. */
static int read_text(const struct command *cmd, const char *path, char **text)
{
    FILE *f = NULL;
    size_t n = 0;
    char *buf = NULL;

    *text = NULL;
    if ((f = fopen(path, "r")) == NULL) {
        if (errno == ENOENT) {
            *text = strdup("");
            return *text != NULL ? 0 : -1;
        }
        kmsctl_usage_error(cmd, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    buf = malloc(MAX_CREDENTIALS_FILE + 1);
    if (buf != NULL) {
        n = fread(buf, 1, MAX_CREDENTIALS_FILE + 1, f);
    }
    fclose(f);
    if (buf == NULL || n > MAX_CREDENTIALS_FILE) {
        if (buf != NULL) {
            sodium_memzero(buf, n);
        }
        free(buf);
        kmsctl_usage_error(cmd, "%s is larger than %d bytes", path, MAX_CREDENTIALS_FILE);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    return 0;
}

static void free_text(char *text)
{
    kmsctl_free_secret_string(text);
}

/* Line [start, end) with blanks trimmed into *s, *n. */
static void trimmed(const char *start, const char *end, const char **s, size_t *n)
{
    while (start < end && (*start == ' ' || *start == '\t')) {
        start++;
    }
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) {
        end--;
    }
    *s = start;
    *n = (size_t)(end - start);
}

/* "[name]" (or aws's config form "[profile name]") is the section of profile? */
static bool is_section(const char *l, size_t n, const char *profile)
{
    size_t pn = strlen(profile);
    if (n < 2 || l[0] != '[' || l[n - 1] != ']') {
        return false;
    }
    l++;
    n -= 2;
    if (n > 8 && strncmp(l, "profile ", 8) == 0) {
        l += 8;
        n -= 8;
    }
    return n == pn && strncmp(l, profile, pn) == 0;
}

/* Finds key in profile's section of text: the value's start and length; false if absent. */
static bool find_value(const char *text, const char *profile, const char *key, const char **value,
                       size_t *len)
{
    bool in = false;
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        const char *end = nl != NULL ? nl : p + strlen(p);
        const char *l = NULL;
        size_t n = 0;
        trimmed(p, end, &l, &n);
        if (n > 0 && l[0] == '[') {
            in = is_section(l, n, profile);
        } else if (in && n > 0 && l[0] != '#' && l[0] != ';') {
            const char *eq = memchr(l, '=', n);
            const char *k = NULL;
            size_t kn = 0;
            if (eq != NULL) {
                trimmed(l, eq, &k, &kn);
                if (kn == strlen(key) && strncmp(k, key, kn) == 0) {
                    trimmed(eq + 1, l + n, value, len);
                    return true;
                }
            }
        }
        p = nl != NULL ? nl + 1 : end;
    }
    return false;
}

/* The value of key in profile (malloc'd, wipe with kmsctl_free_secret_string), or NULL. */
static char *profile_value(const char *text, const char *profile, const char *key)
{
    const char *v = NULL;
    size_t n = 0;
    return find_value(text, profile, key, &v, &n) ? strndup(v, n) : NULL;
}

/* Writes text to path atomically, mode 0600 (the directory made 0700 if missing). */
static int write_atomic(const struct command *cmd, const char *path, const char *text)
{
    char *tmp = NULL;
    char *dir = strdup(path);
    char *slash = dir != NULL ? strrchr(dir, '/') : NULL;
    int fd = -1;
    int r = KMSCTL_EXIT_USAGE;
    size_t len = strlen(text);

    if (dir == NULL || asprintf(&tmp, "%s.XXXXXX", path) < 0) {
        tmp = NULL;
        r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        goto out;
    }
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (!is_dir(dir) && mkdir(dir, 0700) != 0) {
            r = kmsctl_usage_error(cmd, "cannot create %s: %s", dir, strerror(errno));
            goto out;
        }
    }
    if ((fd = mkstemp(tmp)) < 0) {
        r = kmsctl_usage_error(cmd, "cannot write beside %s: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        r = kmsctl_usage_error(cmd, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        r = kmsctl_usage_error(cmd, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        r = kmsctl_usage_error(cmd, "cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    r = KMSCTL_EXIT_OK;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (tmp != NULL) {
        unlink(tmp);
    }
    free(tmp);
    free(dir);
    return r;
}

/* text with key = value set in profile's section (added, the section too, when missing). */
static char *with_value(const char *text, const char *profile, const char *key, const char *value)
{
    char *out = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&out, &size);
    const char *v = NULL;
    size_t vn = 0;
    bool done = false;
    bool in = false;

    if (m == NULL) {
        return NULL;
    }
    if (find_value(text, profile, key, &v, &vn)) {
        /* Replace the value in place: the rest of the file stays as it was. */
        fwrite(text, 1, (size_t)(v - text), m);
        fputs(value, m);
        fputs(v + vn, m);
        done = true;
    }
    for (const char *p = text; !done && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        const char *end = nl != NULL ? nl + 1 : p + strlen(p);
        const char *l = NULL;
        size_t n = 0;
        trimmed(p, nl != NULL ? nl : end, &l, &n);
        if (n > 0 && l[0] == '[') {
            in = is_section(l, n, profile);
        }
        fwrite(p, 1, (size_t)(end - p), m);
        if (nl == NULL) {
            fputc('\n', m);
        }
        if (in) {
            /* Right after the section's header line, then the rest as it was. */
            fprintf(m, "%s = %s\n", key, value);
            fputs(end, m);
            done = true;
        }
        p = end;
    }
    if (!done) {
        /* The loop copied the whole text (ending with a line break): a new section after it. */
        fprintf(m, "[%s]\n%s = %s\n", profile, key, value);
    }
    if (fclose(m) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- Names -------------------------------------------------------------------------------------
 */

/* aws configure's names for the credentials: the file's keys. */
static const char *file_key(const char *name)
{
    if (strcmp(name, "access_key") == 0) {
        return "aws_access_key_id";
    }
    if (strcmp(name, "secret_key") == 0) {
        return "aws_secret_access_key";
    }
    if (strcmp(name, "session_token") == 0) {
        return "aws_session_token";
    }
    return name;
}

static bool valid_name(const char *s)
{
    if (s[0] == '\0' || strlen(s) > 64) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.')) {
            return false;
        }
    }
    return true;
}

/* "NAME", "default.NAME" or "profile.PROFILE.NAME" into the profile and key (aws configure's
 * varname). *profile_out points into buf or is the current profile. */
static int split_varname(const struct command *cmd, const struct globals *g, const char *varname,
                         char *buf, size_t size, const char **profile, const char **key)
{
    const char *type = NULL;
    const char *where = NULL;

    snprintf(buf, size, "%s", varname);
    *profile = profile_name(g, &type, &where);
    *key = buf;
    if (strncmp(buf, "profile.", 8) == 0 && strchr(buf + 8, '.') != NULL) {
        *profile = buf + 8;
        char *dot = strrchr(buf + 8, '.');
        *dot = '\0';
        *key = dot + 1;
    } else if (strncmp(buf, "default.", 8) == 0) {
        *profile = "default";
        *key = buf + 8;
    }
    *key = file_key(*key);
    if (!valid_name(*profile) || !valid_name(*key) || strchr(*key, '.') != NULL) {
        return kmsctl_usage_error(cmd,
                                  "argument varname: '%s' is not NAME, default.NAME or "
                                  "profile.PROFILE.NAME (profile names: letters, digits, '-', '_', "
                                  "'.')",
                                  varname);
    }
    return KMSCTL_EXIT_OK;
}

static int check_value(const struct command *cmd, const char *key, const char *value)
{
    enum output_format unused;

    if (value[strcspn(value, "\r\n")] != '\0' || strlen(value) >= MAX_VALUE) {
        return kmsctl_usage_error(cmd, "argument value: a line break, or longer than %d bytes",
                                  MAX_VALUE - 1);
    }
    if (strcmp(key, "output") == 0 && kmsctl_output_format(value, &unused) != 0) {
        return kmsctl_usage_error(cmd,
                                  "argument value: output is one of json, text, table, yaml, "
                                  "yaml-stream, not '%s'",
                                  value);
    }
    return KMSCTL_EXIT_OK;
}

/* Sets key in profile of the credentials file. */
static int set_value(const struct command *cmd, const struct globals *g, const char *profile,
                     const char *key, const char *value)
{
    char *path = credentials_path(g);
    char *text = NULL;
    char *updated = NULL;
    int r = KMSCTL_EXIT_USAGE;

    if (path == NULL) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    }
    if ((r = check_value(cmd, key, value)) != KMSCTL_EXIT_OK) {
        goto out;
    }
    if (read_text(cmd, path, &text) != 0) {
        r = KMSCTL_EXIT_USAGE;
        goto out;
    }
    if ((updated = with_value(text, profile, key, value)) == NULL) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        goto out;
    }
    r = write_atomic(cmd, path, updated);
out:
    free_text(text);
    free_text(updated);
    free(path);
    return r;
}

/* ---- configure list
 * ------------------------------------------------------------------------------ */

/* aws configure list's row: '%10s %24s %16s    %s'. */
static void row(const char *name, const char *value, const char *type, const char *where)
{
    printf("%10s %24s %16s    %s\n", name, value != NULL ? value : "<not set>",
           type != NULL ? type : "None", where != NULL ? where : (value != NULL ? "" : "None"));
}

/* '*' * 16 + the last 4 characters, as aws configure's mask_value. */
static void masked(const char *secret, char *out, size_t size)
{
    size_t n = strlen(secret);
    snprintf(out, size, "****************%s", secret + (n > 4 ? n - 4 : 0));
}

/* The home's own region (config.json), for a profile without one. */
static char *home_region(const struct globals *g, char *where, size_t size)
{
    const char *home = g->home != NULL ? g->home : kms_home_default();
    json_t *config = NULL;
    char *region = NULL;

    snprintf(where, size, "%s/config.json", home != NULL ? home : "");
    config = json_load_file(where, 0, NULL);
    if (json_is_string(json_object_get(config, "region"))) {
        region = strdup(json_string_value(json_object_get(config, "region")));
    }
    json_decref(config);
    return region;
}

static int run_list(const struct command *cmd, const struct globals *g, json_t *request)
{
    const char *type = NULL;
    const char *where = NULL;
    const char *profile = profile_name(g, &type, &where);
    char *path = credentials_path(g);
    char *text = NULL;
    char *ak = NULL;
    char *sk = NULL;
    char *region = NULL;
    char shown_ak[64];
    char shown_sk[64];
    char region_file[4096];
    const char *env_prefix = NULL;

    if (path == NULL || read_text(cmd, path, &text) != 0) {
        free(path);
        return path == NULL ? kmsctl_error_json("KMSInternalException", "kmsctl: out of memory")
                            : KMSCTL_EXIT_USAGE;
    }
    row("Name", "Value", "Type", "Location");
    row("----", "-----", "----", "--------");
    row("profile", type != NULL ? profile : NULL, type, where);
    /* The environment's keys when no profile is named (as kms_client_open reads them). */
    if (type == NULL) {
        env_prefix = env_value("KMS_ACCESS_KEY_ID") != NULL   ? "KMS"
                     : env_value("AWS_ACCESS_KEY_ID") != NULL ? "AWS"
                                                              : NULL;
    }
    if (env_prefix != NULL) {
        char var_ak[32];
        char var_sk[32];
        snprintf(var_ak, sizeof var_ak, "%s_ACCESS_KEY_ID", env_prefix);
        snprintf(var_sk, sizeof var_sk, "%s_SECRET_ACCESS_KEY", env_prefix);
        masked(env_value(var_ak), shown_ak, sizeof shown_ak);
        row("access_key", shown_ak, "env", var_ak);
        if (env_value(var_sk) != NULL) {
            masked(env_value(var_sk), shown_sk, sizeof shown_sk);
        }
        row("secret_key", env_value(var_sk) != NULL ? shown_sk : NULL,
            env_value(var_sk) != NULL ? "env" : NULL, env_value(var_sk) != NULL ? var_sk : NULL);
    } else {
        ak = profile_value(text, profile, "aws_access_key_id");
        sk = profile_value(text, profile, "aws_secret_access_key");
        if (ak != NULL) {
            masked(ak, shown_ak, sizeof shown_ak);
        }
        if (sk != NULL) {
            masked(sk, shown_sk, sizeof shown_sk);
        }
        row("access_key", ak != NULL ? shown_ak : NULL,
            ak != NULL ? "shared-credentials-file" : NULL, NULL);
        row("secret_key", sk != NULL ? shown_sk : NULL,
            sk != NULL ? "shared-credentials-file" : NULL, NULL);
    }
    const char *env_region = env_value("AWS_REGION") != NULL           ? "AWS_REGION"
                             : env_value("AWS_DEFAULT_REGION") != NULL ? "AWS_DEFAULT_REGION"
                                                                       : NULL;
    if (env_region != NULL) {
        row("region", env_value(env_region), "env", env_region);
    } else if ((region = profile_value(text, profile, "region")) != NULL) {
        row("region", region, "config-file", path);
    } else if (g->endpoint_url == NULL &&
               (region = home_region(g, region_file, sizeof region_file)) != NULL) {
        row("region", region, "home", region_file);
    } else {
        row("region", NULL, NULL, NULL);
    }
    kmsctl_free_secret_string(ak);
    kmsctl_free_secret_string(sk);
    free(region);
    free_text(text);
    free(path);
    return fflush(stdout) == 0 ? KMSCTL_EXIT_OK : KMSCTL_EXIT_SERVICE;
}

/* ---- configure get / set
 * ------------------------------------------------------------------------- */

static int run_get(const struct command *cmd, const struct globals *g, json_t *request)
{
    const char *varname = json_string_value(json_object_get(request, "Varname"));
    char buf[256];
    const char *profile = NULL;
    const char *key = NULL;
    char *path = NULL;
    char *text = NULL;
    char *value = NULL;
    int r;

    if ((r = split_varname(cmd, g, varname, buf, sizeof buf, &profile, &key)) != KMSCTL_EXIT_OK) {
        return r;
    }
    if ((path = credentials_path(g)) == NULL || read_text(cmd, path, &text) != 0) {
        free(path);
        return KMSCTL_EXIT_USAGE;
    }
    value = profile_value(text, profile, key);
    /* As aws configure get: the value, else nothing and exit status 1. */
    if (value != NULL) {
        printf("%s\n", value);
    }
    r = value != NULL ? (fflush(stdout) == 0 ? KMSCTL_EXIT_OK : KMSCTL_EXIT_SERVICE) : 1;
    kmsctl_free_secret_string(value);
    free_text(text);
    free(path);
    return r;
}

static int run_set(const struct command *cmd, const struct globals *g, json_t *request)
{
    const char *varname = json_string_value(json_object_get(request, "Varname"));
    const char *value = json_string_value(json_object_get(request, "Value"));
    char buf[256];
    const char *profile = NULL;
    const char *key = NULL;
    int r;

    if ((r = split_varname(cmd, g, varname, buf, sizeof buf, &profile, &key)) != KMSCTL_EXIT_OK) {
        return r;
    }
    return set_value(cmd, g, profile, key, value);
}

/* ---- configure (asking)
 * -------------------------------------------------------------------------- */

/* One question: "PROMPT [current]: "; an empty answer keeps the current value. */
static int ask(const struct command *cmd, const struct globals *g, const char *profile,
               const char *text, const char *prompt, const char *key, bool mask)
{
    char *current = profile_value(text, profile, key);
    char shown[64];
    char *line = NULL;
    size_t size = 0;
    ssize_t n;
    int r = KMSCTL_EXIT_OK;

    if (current != NULL && mask) {
        masked(current, shown, sizeof shown);
    }
    fprintf(stderr, "%s [%s]: ", prompt, current == NULL ? "None" : mask ? shown : current);
    fflush(stderr);
    n = getline(&line, &size, stdin);
    if (n < 0) {
        fputc('\n', stderr);
        r = kmsctl_usage_error(cmd, "no answer (end of input): nothing more changed");
    } else {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != '\0') {
            r = set_value(cmd, g, profile, key, line);
        }
    }
    if (line != NULL) {
        sodium_memzero(line, size);
        free(line);
    }
    kmsctl_free_secret_string(current);
    return r;
}

static int run_configure(const struct command *cmd, const struct globals *g, json_t *request)
{
    static const struct {
        const char *prompt;
        const char *key;
        bool mask;
    } questions[] = {{"AWS Access Key ID", "aws_access_key_id", true},
                     {"AWS Secret Access Key", "aws_secret_access_key", true},
                     {"Default region name", "region", false},
                     {"Default output format", "output", false}};
    const char *type = NULL;
    const char *where = NULL;
    const char *profile = profile_name(g, &type, &where);
    int r = KMSCTL_EXIT_OK;

    if (!isatty(STDIN_FILENO)) {
        return kmsctl_usage_error(cmd, "configure asks its questions on a terminal only; without "
                                       "one: kmsctl configure set NAME VALUE (e.g. configure set "
                                       "region eu-west-1)");
    }
    for (size_t i = 0; i < sizeof questions / sizeof questions[0] && r == KMSCTL_EXIT_OK; i++) {
        char *path = credentials_path(g);
        char *text = NULL;
        if (path == NULL || read_text(cmd, path, &text) != 0) {
            free(path);
            return KMSCTL_EXIT_USAGE;
        }
        r = ask(cmd, g, profile, text, questions[i].prompt, questions[i].key, questions[i].mask);
        free_text(text);
        free(path);
    }
    return r;
}

/* ---- What the other commands read ---------------------------------------------------------------
 */

char *kmsctl_profile_setting(const struct globals *g, const char *key)
{
    const char *type = NULL;
    const char *where = NULL;
    const char *profile = profile_name(g, &type, &where);
    char *path = credentials_path(g);
    char *text = NULL;
    char *value = NULL;
    FILE *f = path != NULL ? fopen(path, "r") : NULL;

    if (f != NULL) {
        size_t n = 0;
        text = malloc(MAX_CREDENTIALS_FILE + 1);
        if (text != NULL) {
            n = fread(text, 1, MAX_CREDENTIALS_FILE, f);
            text[n] = '\0';
            value = profile_value(text, profile, key);
            sodium_memzero(text, n);
            free(text);
        }
        fclose(f);
    }
    free(path);
    return value;
}

/* ---- The commands
 * -------------------------------------------------------------------------------- */

static const struct opt_spec no_opts[] = {{NULL, 0, 0, NULL}};
static const struct opt_spec get_opts[] = {
    {"varname", OPT_STRING, OPT_REQUIRED | OPT_POSITIONAL,
     "NAME (aws_access_key_id, aws_secret_access_key, aws_session_token, region, output), "
     "default.NAME or profile.PROFILE.NAME"},
    {NULL, 0, 0, NULL}};
static const struct opt_spec set_opts[] = {
    {"varname", OPT_STRING, OPT_REQUIRED | OPT_POSITIONAL,
     "NAME, default.NAME or profile.PROFILE.NAME (access_key, secret_key and session_token name "
     "the aws_ keys)"},
    {"value", OPT_STRING, OPT_REQUIRED | OPT_POSITIONAL,
     "the value (output: json, text, table, "
     "yaml or yaml-stream)"},
    {NULL, 0, 0, NULL}};

const struct command kmsctl_configure_commands[] = {
    {"configure", NULL, run_configure, no_opts,
     "Set a profile's access key, secret, region and output, asking for each",
     "As `aws configure`: asks for the profile's (--profile, else KMS_PROFILE, else default) "
     "access\n"
     "key id, secret access key, region and output format, showing the current values (keys\n"
     "masked); an empty answer keeps a value. It asks on a terminal only: elsewhere use\n"
     "`kmsctl configure set`. The profile is a section of the credentials file kmsctl signs\n"
     "with: HOME/credentials (--home, KMS_HOME or ~/.kms when that is a home), else\n"
     "AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials; it is written atomically, mode 0600.",
     "kmsctl --profile dev configure"},
    {"configure list", NULL, run_list, no_opts,
     "Show the profile, its keys (masked), and the region, with where each comes from",
     "As `aws configure list`: one line each for the profile, access_key, secret_key and\n"
     "region: the value (keys as ****************ABCD), its type (manual, env,\n"
     "shared-credentials-file, config-file, home) and where it was found.",
     "kmsctl configure list\nkmsctl --profile dev configure list"},
    {"configure get", NULL, run_get, get_opts, "Print one setting of a profile",
     "As `aws configure get`: prints the value of NAME in the profile (--profile, KMS_PROFILE,\n"
     "else default; or the profile the name gives: default.region, profile.dev.region), or\n"
     "nothing with exit status 1 when it is not set. Secrets are printed as stored.",
     "kmsctl configure get region\nkmsctl configure get profile.dev.output"},
    {"configure set", NULL, run_set, set_opts, "Set one setting of a profile",
     "As `aws configure set`: writes NAME = VALUE into the profile's section of the credentials\n"
     "file (the section is added if missing), atomically and mode 0600. region is the SigV4\n"
     "region for --endpoint-url (AWS_REGION and AWS_DEFAULT_REGION come first); output is the\n"
     "default --output (AWS_DEFAULT_OUTPUT comes first).",
     "kmsctl configure set region eu-west-1\n"
     "kmsctl configure set output text --profile dev\n"
     "kmsctl configure set profile.ci.aws_access_key_id AKIA..."},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL}};
