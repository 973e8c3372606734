/* The credentials a client acts with: the home's `credentials` file of profiles, in the AWS
 * shared credentials format (INI: [profile] then aws_access_key_id, aws_secret_access_key,
 * aws_session_token), or KMS_ACCESS_KEY_ID / KMS_SECRET_ACCESS_KEY / KMS_SESSION_TOKEN in the
 * environment. The file is 0600 and rewritten atomically; secrets read from it live in locked
 * memory and are wiped after use. */
#include <ctype.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/credentials.h"
#include "util/buf.h"
#include "util/secmem.h"
#include "util/util.h"

#define CREDENTIALS_FILE "credentials"
#define CREDENTIALS_MAX (256 * 1024)

static char *secure_strdup(const char *s, size_t n)
{
    char *p = kms_secure_alloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void kms_credentials_clean_up(kms_credentials *c)
{
    if (c->secret_access_key != NULL) {
        kms_secure_free(c->secret_access_key);
    }
    if (c->session_token != NULL) {
        kms_secure_free(c->session_token);
    }
    memset(c, 0, sizeof *c);
}

static const char *trim(char *s, char **end)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) {
        e--;
    }
    *e = '\0';
    *end = e;
    return s;
}

/* Fills c from profile `name` of the INI text (modified in place). 1 if the profile exists. */
static int parse_profile(char *text, const char *name, kms_credentials *c)
{
    bool in = false, found = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *end;
        const char *l = trim(line, &end);
        if (l[0] == '#' || l[0] == ';' || l[0] == '\0') {
            continue;
        }
        if (l[0] == '[') {
            in = end > l + 1 && end[-1] == ']' && (size_t)(end - l - 2) == strlen(name) &&
                 strncmp(l + 1, name, strlen(name)) == 0;
            found = found || in;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!in || eq == NULL) {
            continue;
        }
        *eq = '\0';
        char *kend, *vend;
        const char *k = trim((char *)l, &kend);
        const char *v = trim(eq + 1, &vend);
        if (strcmp(k, "aws_access_key_id") == 0) {
            KMS_ENSURE(strlen(v) < sizeof c->access_key_id, KMS_ERR_HOME,
                       "the access key id of profile '%s' is too long", name);
            snprintf(c->access_key_id, sizeof c->access_key_id, "%s", v);
        } else if (strcmp(k, "aws_secret_access_key") == 0 && c->secret_access_key == NULL) {
            c->secret_access_key = secure_strdup(v, strlen(v));
            KMS_ENSURE(c->secret_access_key != NULL, KMS_ERR_INTERNAL, "out of memory");
        } else if (strcmp(k, "aws_session_token") == 0 && c->session_token == NULL) {
            c->session_token = secure_strdup(v, strlen(v));
            KMS_ENSURE(c->session_token != NULL, KMS_ERR_INTERNAL, "out of memory");
        }
    }
    return found ? 1 : 0;
}

/* The credentials of the environment variables PREFIX_ACCESS_KEY_ID, PREFIX_SECRET_ACCESS_KEY
 * and PREFIX_SESSION_TOKEN. */
static int from_env(kms_credentials *c, const char *prefix)
{
    char id_var[48], secret_var[48], token_var[48];
    snprintf(id_var, sizeof id_var, "%s_ACCESS_KEY_ID", prefix);
    snprintf(secret_var, sizeof secret_var, "%s_SECRET_ACCESS_KEY", prefix);
    snprintf(token_var, sizeof token_var, "%s_SESSION_TOKEN", prefix);
    const char *id = getenv(id_var);
    const char *secret = getenv(secret_var);
    const char *token = getenv(token_var);
    KMS_ENSURE(secret != NULL && secret[0] != '\0', KMS_ERR_UNRECOGNIZED_CLIENT,
               "%s is set but %s is not: set both", id_var, secret_var);
    KMS_ENSURE(strlen(id) < sizeof c->access_key_id, KMS_ERR_UNRECOGNIZED_CLIENT,
               "%s is too long to be an access key id", id_var);
    snprintf(c->access_key_id, sizeof c->access_key_id, "%s", id);
    c->secret_access_key = secure_strdup(secret, strlen(secret));
    if (token != NULL && token[0] != '\0') {
        c->session_token = secure_strdup(token, strlen(token));
    }
    KMS_ENSURE(c->secret_access_key != NULL &&
                   (token == NULL || token[0] == '\0' || c->session_token != NULL),
               KMS_ERR_INTERNAL, "out of memory");
    return 0;
}

int kms_credentials_load_env(kms_credentials *c, bool *found)
{
    memset(c, 0, sizeof *c);
    *found = false;
    const char *prefixes[] = {"KMS", "AWS"};
    for (size_t i = 0; i < 2; i++) {
        char var[32];
        snprintf(var, sizeof var, "%s_ACCESS_KEY_ID", prefixes[i]);
        const char *id = getenv(var);
        if (id == NULL || id[0] == '\0') {
            continue;
        }
        if (from_env(c, prefixes[i]) != 0) {
            kms_credentials_clean_up(c); /* a half-read secret is wiped too */
            return -1;
        }
        *found = true;
        return 0;
    }
    return 0;
}

bool kms_env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

int kms_credentials_load(const char *home, const char *profile, bool aws_env, kms_credentials *c)
{
    memset(c, 0, sizeof *c);
    /* As the aws CLI: an explicit profile wins over the environment, the environment over the
     * default profile. */
    const char *prefix = kms_env_set("KMS_ACCESS_KEY_ID")              ? "KMS"
                         : aws_env && kms_env_set("AWS_ACCESS_KEY_ID") ? "AWS"
                                                                       : NULL;
    if (profile == NULL && prefix != NULL) {
        if (from_env(c, prefix) != 0) {
            kms_credentials_clean_up(c); /* a half-read secret is wiped too */
            return -1;
        }
        return 0;
    }
    const char *name = profile ? profile : "default";
    char *path = kms_path_join(home, CREDENTIALS_FILE);
    int r = -1;
    if (path == NULL) {
        return -1;
    }
    if (!kms_path_exists(path)) {
        /* No file: no credentials. Requests then fail with a message saying what to do. */
        r = profile == NULL ? 0
                            : kms_raise(KMS_ERR_UNRECOGNIZED_CLIENT,
                                        "no profile '%s': %s does not exist", name, path);
        free(path);
        return r;
    }
    r = kms_credentials_load_path(path, name, c);
    free(path);
    return r;
}

int kms_credentials_load_path(const char *path, const char *profile, kms_credentials *c)
{
    char *text = NULL;
    size_t len = 0;
    int r = -1;
    memset(c, 0, sizeof *c);
    if (kms_file_read(path, CREDENTIALS_MAX, &text, &len) != 0) {
        goto out;
    }
    int found = parse_profile(text, profile, c);
    if (found < 0) {
        goto out;
    }
    if (found == 0 || c->access_key_id[0] == '\0' || c->secret_access_key == NULL) {
        kms_raise(KMS_ERR_UNRECOGNIZED_CLIENT,
                  "no usable profile '%s' in %s: it needs aws_access_key_id and "
                  "aws_secret_access_key",
                  profile, path);
        goto out;
    }
    r = 0;
out:
    if (text != NULL) {
        sodium_memzero(text, len);
        free(text);
    }
    if (r != 0) {
        kms_credentials_clean_up(c);
    }
    return r;
}

/* A long-term access key (AKIA..., IAM CreateAccessKey) has no session token; temporary
 * credentials (ASIA..., STS) have one. */
static bool is_long_term(const kms_credentials *c)
{
    return c->access_key_id[0] != '\0' &&
           (c->session_token == NULL || strncmp(c->access_key_id, "AKIA", 4) == 0);
}

int kms_credentials_check_replace(const char *home, const char *profile)
{
    int r = -1;
    char *text = NULL;
    size_t len = 0;
    kms_credentials c;
    memset(&c, 0, sizeof c);
    char *path = kms_path_join(home, CREDENTIALS_FILE);
    if (path == NULL) {
        return -1;
    }
    if (!kms_path_exists(path)) {
        r = 0;
        goto out;
    }
    if (kms_file_read(path, CREDENTIALS_MAX, &text, &len) != 0) {
        goto out;
    }
    if (parse_profile(text, profile, &c) < 0) {
        goto out;
    }
    if (is_long_term(&c)) {
        kms_raise(KMS_ERR_ALREADY_EXISTS,
                  "profile '%s' of %s holds the long-term access key %s, whose secret cannot be "
                  "shown again: replacing it would lose that access for good. Save the session "
                  "under another profile name (--save-profile NAME), or give --force to replace "
                  "the profile anyway",
                  profile, path, c.access_key_id);
        goto out;
    }
    r = 0;
out:
    if (text != NULL) {
        sodium_memzero(text, len);
        free(text);
    }
    kms_credentials_clean_up(&c);
    free(path);
    return r;
}

/* Copies every section of text but `name` into b. */
static int copy_other_profiles(const char *text, const char *name, kms_buf *b)
{
    bool skip = false;
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        const char *l = p;
        while (l < p + n && (*l == ' ' || *l == '\t')) {
            l++;
        }
        if (*l == '[') {
            size_t nn = strlen(name);
            skip = strncmp(l + 1, name, nn) == 0 && l[1 + nn] == ']';
        }
        if (!skip) {
            KMS_GUARD(kms_buf_append(b, (const uint8_t *)p, n));
            if (nl == NULL) {
                KMS_GUARD(kms_buf_append(b, (const uint8_t *)"\n", 1));
            }
        }
        p += n;
    }
    return 0;
}

int kms_credentials_save(const char *home, const char *profile, const char *access_key_id,
                         const char *secret, const char *session_token)
{
    int r = -1;
    char *text = NULL;
    size_t len = 0;
    KMS_ENSURE(profile[0] != '\0', KMS_ERR_VALIDATION, "a profile name is needed");
    for (const char *p = profile; *p != '\0'; p++) {
        KMS_ENSURE(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.',
                   KMS_ERR_VALIDATION, "profile names are letters, digits, '-', '_' and '.': '%s'",
                   profile);
    }
    /* One value per line: a line break would smuggle lines (or profiles) into the file. */
    const char *values[] = {access_key_id, secret, session_token};
    for (size_t i = 0; i < 3; i++) {
        KMS_ENSURE(values[i] == NULL ||
                       (values[i][strcspn(values[i], "\r\n")] == '\0' && strlen(values[i]) < 4096),
                   KMS_ERR_VALIDATION, "a credential holds a line break or is too long: refused");
    }
    char *path = kms_path_join(home, CREDENTIALS_FILE);
    kms_buf b;
    kms_buf_init(&b, true);
    if (path == NULL) {
        return -1;
    }
    if (kms_path_exists(path) && kms_file_read(path, CREDENTIALS_MAX, &text, &len) != 0) {
        goto out;
    }
    if ((text != NULL && copy_other_profiles(text, profile, &b) != 0)) {
        goto out;
    }
    char head[160];
    snprintf(head, sizeof head, "[%s]\naws_access_key_id = %s\naws_secret_access_key = ", profile,
             access_key_id);
    if (kms_buf_append(&b, (const uint8_t *)head, strlen(head)) != 0 ||
        kms_buf_append(&b, (const uint8_t *)secret, strlen(secret)) != 0 ||
        kms_buf_append(&b, (const uint8_t *)"\n", 1) != 0) {
        goto out;
    }
    if (session_token != NULL &&
        (kms_buf_append(&b, (const uint8_t *)"aws_session_token = ", 20) != 0 ||
         kms_buf_append(&b, (const uint8_t *)session_token, strlen(session_token)) != 0 ||
         kms_buf_append(&b, (const uint8_t *)"\n", 1) != 0)) {
        goto out;
    }
    r = kms_file_write_atomic(path, b.data, b.len, 0600);
out:
    if (text != NULL) {
        sodium_memzero(text, len);
        free(text);
    }
    kms_buf_clean_up(&b);
    free(path);
    return r;
}
