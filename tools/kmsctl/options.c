/* Command-line options -> the AWS KMS JSON request. Value syntax follows aws CLI v2: blobs are
 * base64 unless given as fileb://PATH (raw bytes); any text value may come from file://PATH;
 * maps take JSON or the k=v,k2=v2 shorthand; lists take space-separated values. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "kmsctl.h"
#include "shorthand.h"

#define FILE_PREFIX "file://"
#define FILEB_PREFIX "fileb://"

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The option of cmd whose one-letter alias arg is ("-i"), or NULL. */
static const struct opt_spec *find_short(const struct command *cmd, const char *arg)
{
    if (cmd == NULL || arg[0] != '-' || arg[1] == '\0' || arg[1] == '-' || arg[2] != '\0') {
        return NULL;
    }
    for (const struct opt_spec *o = cmd->opts; o->name != NULL; o++) {
        if (OPT_SHORT_OF(o) == arg[1]) {
            return o;
        }
    }
    return NULL;
}

/* An argument that starts an option (and so ends the values of the one before). */
static bool is_option(const struct command *cmd, const char *arg)
{
    return has_prefix(arg, "--") || find_short(cmd, arg) != NULL;
}

void kmsctl_member_name(const char *opt, char *out, size_t out_size)
{
    size_t n = 0;
    bool upper = true;

    for (const char *p = opt; *p != '\0' && n + 1 < out_size; p++) {
        if (*p == '-') {
            upper = true;
            continue;
        }
        out[n++] = upper ? (char)toupper((unsigned char)*p) : *p;
        upper = false;
    }
    out[n] = '\0';
}

int kmsctl_read_file(const struct command *cmd, const char *opt, const char *path,
                     unsigned char **out, size_t *len)
{
    int r = -1;
    char expanded[PATH_MAX];
    const char *home = getenv("HOME");
    FILE *f = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;

    /* aws expands ~ in file:// paths; the shell does not (it is not at a word start). */
    if (has_prefix(path, "~/") && home != NULL) {
        snprintf(expanded, sizeof expanded, "%s/%s", home, path + 2);
        path = expanded;
    }
    buf = malloc(KMSCTL_MAX_FILE + 2);
    if (buf == NULL) {
        kmsctl_usage_error(cmd, "argument --%s: out of memory", opt);
        goto out;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        kmsctl_usage_error(cmd, "argument --%s: cannot open '%s': %s", opt, path, strerror(errno));
        goto out;
    }
    n = fread(buf, 1, KMSCTL_MAX_FILE + 1, f);
    if (ferror(f)) {
        kmsctl_usage_error(cmd, "argument --%s: cannot read '%s': %s", opt, path, strerror(errno));
        goto out;
    }
    if (n > KMSCTL_MAX_FILE) {
        kmsctl_usage_error(cmd, "argument --%s: '%s' is larger than the %d KiB limit", opt, path,
                           KMSCTL_MAX_FILE / 1024);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    r = 0;
out:
    if (buf != NULL) {
        sodium_memzero(buf, KMSCTL_MAX_FILE + 2);
        free(buf);
    }
    if (f != NULL) {
        fclose(f);
    }
    return r;
}

static void free_file(unsigned char *buf, size_t len)
{
    if (buf != NULL) {
        sodium_memzero(buf, len);
        free(buf);
    }
}

/* Standard base64 with padding, as aws prints and takes blobs. */
static bool valid_base64(const char *s, size_t n)
{
    size_t pad = 0;

    if (n % 4 != 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=') {
            pad++;
        } else if (pad > 0 || !(isalnum(c) || c == '+' || c == '/')) {
            return false;
        }
    }
    return pad <= 2;
}

/* A text value: the argument itself, or the content of file://PATH. *file receives the buffer
 * to free (NULL if none). */
static int text_value(const struct command *cmd, const struct opt_spec *o, const char *arg,
                      const char **text, unsigned char **file, size_t *file_len)
{
    *file = NULL;
    *file_len = 0;
    if (!has_prefix(arg, FILE_PREFIX)) {
        *text = arg;
        return 0;
    }
    if (kmsctl_read_file(cmd, o->name, arg + strlen(FILE_PREFIX), file, file_len) != 0) {
        return -1;
    }
    if (strlen((char *)*file) != *file_len) {
        kmsctl_usage_error(cmd, "argument --%s: '%s' holds NUL bytes; use fileb:// for binary data",
                           o->name, arg + strlen(FILE_PREFIX));
        free_file(*file, *file_len);
        *file = NULL;
        return -1;
    }
    *text = (const char *)*file;
    return 0;
}

static json_t *utf8_string(const struct command *cmd, const struct opt_spec *o, const char *s)
{
    json_t *v = json_string(s);

    if (v == NULL) {
        kmsctl_usage_error(cmd, "argument --%s: the value is not valid UTF-8", o->name);
    }
    return v;
}

static json_t *parse_string(const struct command *cmd, const struct opt_spec *o, const char *arg)
{
    const char *text = NULL;
    unsigned char *file = NULL;
    size_t file_len = 0;
    json_t *v = NULL;

    if (text_value(cmd, o, arg, &text, &file, &file_len) != 0) {
        return NULL;
    }
    v = utf8_string(cmd, o, text);
    free_file(file, file_len);
    return v;
}

static json_t *parse_integer(const struct command *cmd, const struct opt_spec *o, const char *arg)
{
    char *end = NULL;
    long long n;

    errno = 0;
    n = strtoll(arg, &end, 10);
    if (arg[0] == '\0' || isspace((unsigned char)arg[0]) || *end != '\0' || errno != 0) {
        kmsctl_usage_error(cmd, "argument --%s: invalid integer value: '%s'", o->name, arg);
        return NULL;
    }
    return json_integer(n);
}

static json_t *parse_blob_file(const struct command *cmd, const struct opt_spec *o,
                               const char *path)
{
    unsigned char *file = NULL;
    size_t len = 0;
    char *b64 = NULL;
    size_t b64_len;
    json_t *v = NULL;

    if (kmsctl_read_file(cmd, o->name, path, &file, &len) != 0) {
        return NULL;
    }
    b64_len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    b64 = malloc(b64_len);
    if (b64 == NULL) {
        kmsctl_usage_error(cmd, "argument --%s: out of memory", o->name);
        goto out;
    }
    sodium_bin2base64(b64, b64_len, file, len, sodium_base64_VARIANT_ORIGINAL);
    v = json_string(b64);
out:
    free_file(file, len);
    if (b64 != NULL) {
        sodium_memzero(b64, b64_len);
        free(b64);
    }
    return v;
}

static json_t *parse_blob(const struct command *cmd, const struct opt_spec *o, const char *arg)
{
    const char *text = NULL;
    unsigned char *file = NULL;
    size_t file_len = 0;
    size_t n;
    json_t *v = NULL;

    if (has_prefix(arg, FILEB_PREFIX)) {
        return parse_blob_file(cmd, o, arg + strlen(FILEB_PREFIX));
    }
    if (text_value(cmd, o, arg, &text, &file, &file_len) != 0) {
        return NULL;
    }
    /* A base64 text file usually ends in a newline. */
    n = strlen(text);
    while (file != NULL && n > 0 && isspace((unsigned char)text[n - 1])) {
        n--;
    }
    if (!valid_base64(text, n)) {
        /* The value is never echoed: it may be a plaintext. */
        kmsctl_usage_error(cmd,
                           "argument --%s: the value is not valid base64; "
                           "give raw bytes as fileb://PATH",
                           o->name);
        goto out;
    }
    v = json_stringn(text, n);
out:
    free_file(file, file_len);
    return v;
}

static int map_add(const struct command *cmd, const struct opt_spec *o, json_t *map, char *item)
{
    char *eq = strchr(item, '=');
    json_t *v = NULL;

    if (eq == NULL || eq == item) {
        return kmsctl_usage_error(cmd, "argument --%s: expected KEY=VALUE, got '%s'", o->name,
                                  item);
    }
    *eq = '\0';
    if (json_object_get(map, item) != NULL) {
        return kmsctl_usage_error(cmd, "argument --%s: key '%s' given twice", o->name, item);
    }
    v = utf8_string(cmd, o, eq + 1);
    if (v == NULL || json_object_set_new(map, item, v) != 0) {
        return kmsctl_usage_error(cmd, "argument --%s: invalid key '%s'", o->name, item);
    }
    return 0;
}

/* The k=v,k2=v2 shorthand. Values cannot hold commas: use JSON for those. */
static json_t *parse_shorthand_map(const struct command *cmd, const struct opt_spec *o,
                                   const char *text, size_t n)
{
    char *copy = strndup(text, n);
    char *rest = copy;
    char *item = NULL;
    json_t *map = json_object();

    if (copy == NULL || map == NULL) {
        kmsctl_usage_error(cmd, "argument --%s: out of memory", o->name);
        goto fail;
    }
    while ((item = strsep(&rest, ",")) != NULL) {
        if (map_add(cmd, o, map, item) != 0) {
            goto fail;
        }
    }
    free(copy);
    return map;
fail:
    free(copy);
    json_decref(map);
    return NULL;
}

static json_t *parse_json_map(const struct command *cmd, const struct opt_spec *o, const char *text)
{
    json_error_t err;
    json_t *map = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    const char *key = NULL;
    json_t *value = NULL;

    if (!json_is_object(map)) {
        kmsctl_usage_error(cmd, "argument --%s: invalid JSON object: %s", o->name,
                           map == NULL ? err.text : "not an object");
        json_decref(map);
        return NULL;
    }
    json_object_foreach(map, key, value)
    {
        if (!json_is_string(value)) {
            kmsctl_usage_error(cmd, "argument --%s: the value of '%s' must be a string", o->name,
                               key);
            json_decref(map);
            return NULL;
        }
    }
    return map;
}

/* A JSON list of string maps, as the aws CLI takes a list-of-structures parameter. */
static json_t *parse_map_list(const struct command *cmd, const struct opt_spec *o, const char *p)
{
    json_error_t err;
    json_t *list = json_loads(p, JSON_REJECT_DUPLICATES, &err);
    size_t i;
    json_t *item;
    if (!json_is_array(list)) {
        kmsctl_usage_error(cmd, "argument --%s: not a JSON list: %s", o->name,
                           list == NULL ? err.text : "another JSON value");
        json_decref(list);
        return NULL;
    }
    json_array_foreach(list, i, item)
    {
        const char *key;
        json_t *value;
        bool strings = json_is_object(item);
        json_object_foreach(item, key, value)
        {
            strings = strings && json_is_string(value);
        }
        if (!strings) {
            kmsctl_usage_error(cmd,
                               "argument --%s: item %zu of the list is not an object of strings",
                               o->name, i + 1);
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static json_t *parse_map(const struct command *cmd, const struct opt_spec *o, const char *arg)
{
    const char *text = NULL;
    unsigned char *file = NULL;
    size_t file_len = 0;
    const char *p = NULL;
    size_t n;
    json_t *v = NULL;

    if (text_value(cmd, o, arg, &text, &file, &file_len) != 0) {
        return NULL;
    }
    p = text + strspn(text, " \t\r\n");
    n = strlen(p);
    /* A file's final newline is not part of the last value. */
    while (file != NULL && n > 0 && isspace((unsigned char)p[n - 1])) {
        n--;
    }
    if (*p == '[' && (o->flags & OPT_MAPS)) {
        v = parse_map_list(cmd, o, p);
    } else {
        v = *p == '{' ? parse_json_map(cmd, o, p) : parse_shorthand_map(cmd, o, p, n);
    }
    free_file(file, file_len);
    return v;
}

/* Any JSON value (nested structures such as grant Constraints), inline or file://. */
static json_t *parse_json(const struct command *cmd, const struct opt_spec *o, const char *arg)
{
    const char *text = NULL;
    unsigned char *file = NULL;
    size_t file_len = 0;
    json_error_t err;

    if (text_value(cmd, o, arg, &text, &file, &file_len) != 0) {
        return NULL;
    }
    const char *t = text + strspn(text, " \t\r\n");
    json_t *v = NULL;
    /* Not JSON's first character, and KEY=...: the aws CLI's shorthand. */
    size_t key = strcspn(t, "=,{}[]\"' ");
    if (strchr("{[\"-0123456789", *t) == NULL && key > 0 && t[key] == '=') {
        const char *why = NULL, *at = NULL;
        v = kmsctl_shorthand_parse(t, &why, &at);
        if (v == NULL) {
            kmsctl_usage_error(cmd, "argument --%s: shorthand: %s at '%.40s' (or give JSON)",
                               o->name, why, at);
        }
    } else if ((v = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err)) == NULL) {
        kmsctl_usage_error(cmd, "argument --%s: invalid JSON: %s (line %d)", o->name, err.text,
                           err.line);
    }
    free_file(file, file_len);
    return v;
}

static bool all_strings(json_t *list)
{
    size_t i;
    json_t *el = NULL;

    json_array_foreach(list, i, el)
    {
        if (!json_is_string(el)) {
            return false;
        }
    }
    return true;
}

/* --name a b c: values up to the next --option. One value starting with '[' is a JSON list. */
static json_t *parse_list(const struct command *cmd, const struct opt_spec *o, const char *first,
                          int argc, char **argv, int *i)
{
    json_t *list = json_array();
    json_error_t err;

    if (first == NULL && (*i + 1 >= argc || is_option(cmd, argv[*i + 1]))) {
        kmsctl_usage_error(cmd, "argument --%s: expected at least one value", o->name);
        goto fail;
    }
    if (first == NULL) {
        first = argv[++*i];
    }
    if (first[0] == '[') {
        json_decref(list);
        list = json_loads(first, 0, &err);
        if (!json_is_array(list) || !all_strings(list)) {
            kmsctl_usage_error(cmd, "argument --%s: invalid JSON list: %s", o->name,
                               list == NULL ? err.text : "expected a list of strings");
            goto fail;
        }
        return list;
    }
    for (const char *v = first; v != NULL;
         v = (*i + 1 < argc && !is_option(cmd, argv[*i + 1])) ? argv[++*i] : NULL) {
        json_t *s = utf8_string(cmd, o, v);
        if (s == NULL || json_array_append_new(list, s) != 0) {
            goto fail;
        }
    }
    return list;
fail:
    json_decref(list);
    return NULL;
}

/* The value of an option that takes one: inline (--name=value) or the next argument. */
static int take_value(const struct command *cmd, const char *name, const char *inline_value,
                      int argc, char **argv, int *i, const char **value)
{
    if (inline_value != NULL) {
        *value = inline_value;
        return 0;
    }
    if (*i + 1 >= argc || is_option(cmd, argv[*i + 1])) {
        return kmsctl_usage_error(cmd, "argument --%s: expected one argument", name);
    }
    *value = argv[++*i];
    return 0;
}

/* Splits "--name=value" into name (copied to buf) and value (NULL when absent). */
static const char *split_option(const char *arg, char *buf, size_t size)
{
    const char *eq = strchr(arg, '=');
    size_t n = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);

    if (n >= size) {
        n = size - 1;
    }
    memcpy(buf, arg + 2, n);
    buf[n] = '\0';
    return eq != NULL ? eq + 1 : NULL;
}

static bool has_option(const struct command *cmd, const char *name)
{
    for (const struct opt_spec *o = cmd->opts; o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0) {
            return true;
        }
    }
    return false;
}

int kmsctl_output_format(const char *name, enum output_format *out)
{
    static const struct {
        const char *name;
        enum output_format format;
    } formats[] = {{"json", OUTPUT_JSON},
                   {"text", OUTPUT_TEXT},
                   {"table", OUTPUT_TABLE},
                   {"yaml", OUTPUT_YAML},
                   {"yaml-stream", OUTPUT_YAML_STREAM}};

    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(name, formats[i].name) == 0) {
            *out = formats[i].format;
            return 0;
        }
    }
    return -1;
}

int kmsctl_parse_global(const struct command *cmd, int argc, char **argv, int *i, struct globals *g)
{
    char name[64];
    const char *inline_value = split_option(argv[*i], name, sizeof name);
    const char *value = NULL;
    const char **slot = NULL;

    if (strcmp(name, "home") == 0) {
        slot = &g->home;
    } else if (strcmp(name, "profile") == 0) {
        slot = &g->profile;
    } else if (strcmp(name, "query") == 0) {
        slot = &g->query;
    } else if (strcmp(name, "endpoint-url") == 0) {
        slot = &g->endpoint_url;
    } else if (strcmp(name, "ca-bundle") == 0) {
        slot = &g->ca_bundle;
    } else if (strcmp(name, "color") == 0) {
        slot = &g->color;
    } else if (strcmp(name, "output") != 0) {
        return 0;
    }
    if (take_value(cmd, name, inline_value, argc, argv, i, &value) != 0) {
        return KMSCTL_EXIT_USAGE;
    }
    if (slot == &g->color && strcmp(value, "on") != 0 && strcmp(value, "off") != 0 &&
        strcmp(value, "auto") != 0) {
        return kmsctl_usage_error(cmd,
                                  "argument --color: invalid choice '%s' (choose from on, "
                                  "off, auto)",
                                  value);
    }
    if (slot != NULL) {
        *slot = value;
    } else if (kmsctl_output_format(value, &g->output) == 0) {
        g->output_given = true;
    } else {
        /* encrypt/decrypt name their data files -o/--out-file: --output stays aws's format. */
        bool has_out_file = cmd != NULL && has_option(cmd, "out-file");
        return kmsctl_usage_error(
            cmd,
            "argument --output: invalid choice '%s' (choose from json, text, table, yaml, "
            "yaml-stream)%s",
            value, has_out_file ? "; the output file is -o/--out-file" : "");
    }
    return 1;
}

static const struct opt_spec *find_in(const struct opt_spec *opts, const char *name, bool *negated)
{
    for (const struct opt_spec *o = opts; o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0) {
            return o;
        }
        if ((o->flags & OPT_NO_FORM) && has_prefix(name, "no-") && strcmp(o->name, name + 3) == 0) {
            *negated = true;
            return o;
        }
    }
    return NULL;
}

/* Every AWS command's (one with an operation), as with aws. */
static const struct opt_spec input_opts[] = {
    {"cli-input-json", OPT_JSON, 0,
     "the request's members as JSON (or file://PATH), as --generate-cli-skeleton prints them; "
     "options given on the command line win"},
    {"generate-cli-skeleton", OPT_BOOL, 0,
     "print the request's members as JSON, to fill in for --cli-input-json, and run nothing"},
    {NULL, 0, 0, NULL}};

static const struct opt_spec *find_spec(const struct command *cmd, const char *name, bool *negated)
{
    *negated = false;
    const struct opt_spec *o = find_in(cmd->opts, name, negated);
    if (o == NULL && kmsctl_paginated(cmd)) {
        o = find_in(kmsctl_paging_opts, name, negated);
    }
    if (o == NULL && cmd->operation != NULL) {
        o = find_in(input_opts, name, negated);
    }
    return o;
}

/* The request skeleton: each option's member with an empty value of its kind. */
static int print_skeleton(const struct command *cmd)
{
    char member[128];
    json_t *s = json_object();
    for (const struct opt_spec *o = cmd->opts; s != NULL && o->name != NULL; o++) {
        json_t *v = o->kind == OPT_INTEGER   ? json_integer(0)
                    : o->kind == OPT_BOOL    ? json_true()
                    : o->kind == OPT_MAP     ? json_pack("{s:s}", "KeyName", "")
                    : o->kind == OPT_LIST    ? json_pack("[s]", "")
                    : o->kind == OPT_JSON    ? json_object()
                    : o->kind == OPT_STRUCTS ? json_pack("[{}]")
                                             : json_string("");
        kmsctl_member_name(o->name, member, sizeof member);
        if (json_object_set_new(s, member, v) != 0) {
            json_decref(s);
            s = NULL;
        }
    }
    char *text = s != NULL ? json_dumps(s, JSON_INDENT(4) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(s);
    if (text == NULL) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    }
    printf("%s\n", text);
    free(text);
    return -1; /* done: exit 0 */
}

/* --cli-input-json's members join the request where the command line left them out. */
static int merge_input(const struct command *cmd, json_t *req, json_t *input)
{
    char member[128];
    const char *key;
    json_t *value;
    if (!json_is_object(input)) {
        return kmsctl_usage_error(cmd, "argument --cli-input-json: not a JSON object");
    }
    json_object_foreach(input, key, value)
    {
        bool known = false;
        for (const struct opt_spec *o = cmd->opts; !known && o->name != NULL; o++) {
            kmsctl_member_name(o->name, member, sizeof member);
            known = strcmp(member, key) == 0;
        }
        if (!known) {
            return kmsctl_usage_error(cmd,
                                      "argument --cli-input-json: unknown parameter \"%s\" (the "
                                      "members are those --generate-cli-skeleton prints)",
                                      key);
        }
        if (json_object_get(req, key) == NULL && json_object_set(req, key, value) != 0) {
            return kmsctl_usage_error(cmd, "out of memory");
        }
    }
    return KMSCTL_EXIT_OK;
}

/* encrypt, decrypt and re-encrypt work on envelope messages (files); their kms- twins are the
 * direct KMS operations on at most 4 KiB. An option of the twin names it. */
static const struct command *kms_twin(const struct command *cmd, const char *name)
{
    char twin[64];
    if (cmd->operation != NULL ||
        (size_t)snprintf(twin, sizeof twin, "kms-%s", cmd->name) >= sizeof twin) {
        return NULL;
    }
    const struct command *t = kmsctl_command_find(twin);
    bool negated = false;
    return t != NULL && find_spec(t, name, &negated) != NULL ? t : NULL;
}

static int unknown_option(const struct command *cmd, const char *name)
{
    char hint[256] = "";
    size_t n = 0;
    const struct command *twin = kms_twin(cmd, name);
    if (twin != NULL) {
        return kmsctl_usage_error(
            cmd,
            "unknown option --%s: `kmsctl %s` works on files (-i/-o, envelope "
            "messages of any size); the direct KMS operation %s (at most 4 "
            "KiB) is `kmsctl %s --%s ...`",
            name, cmd->name, twin->operation, twin->name, name);
    }

    for (const struct opt_spec *o = cmd->opts; o->name != NULL; o++) {
        if (kmsctl_close_match(name, o->name) && n + strlen(o->name) + 8 < sizeof hint) {
            n += (size_t)snprintf(hint + n, sizeof hint - n, "%s--%s", n == 0 ? "" : ", ", o->name);
        }
    }
    if (n > 0) {
        return kmsctl_usage_error(cmd, "unknown option --%s (did you mean %s?)", name, hint);
    }
    return kmsctl_usage_error(cmd, "unknown option --%s", name);
}

/* A JSON-valued option given the name of an existing .json file instead of file://NAME (the aws
 * CLI would send the name itself, which no service reads as a document). */
static bool names_json_file(const struct opt_spec *o, const char *value)
{
    struct stat st;
    size_t n = strlen(value);
    return (o->kind == OPT_STRING || o->kind == OPT_JSON || o->kind == OPT_MAP) && n > 5 &&
           strcmp(value + n - 5, ".json") == 0 && strchr(value, '{') == NULL &&
           !has_prefix(value, FILE_PREFIX) && stat(value, &st) == 0 && S_ISREG(st.st_mode);
}

/* Every scalar inside v as text (numbers and booleans of the shorthand become strings). */
static int stringify(json_t *v)
{
    const char *key = NULL;
    json_t *member = NULL;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, member)
        {
            if (json_is_integer(member) || json_is_boolean(member) || json_is_real(member)) {
                char *text = json_dumps(member, JSON_ENCODE_ANY);
                if (text == NULL || json_object_set_new(v, key, json_string(text)) != 0) {
                    free(text);
                    return -1;
                }
                free(text);
            } else if (stringify(member) != 0) {
                return -1;
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, member)
        {
            if (json_is_integer(member) || json_is_boolean(member) || json_is_real(member)) {
                char *text = json_dumps(member, JSON_ENCODE_ANY);
                if (text == NULL || json_array_set_new(v, i, json_string(text)) != 0) {
                    free(text);
                    return -1;
                }
                free(text);
            } else if (stringify(member) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* OPT_STRUCTS: the arguments up to the next option, each a structure (or a list of them). */
static json_t *parse_structs(const struct command *cmd, const struct opt_spec *o, const char *first,
                             int argc, char **argv, int *i)
{
    json_t *list = json_array();

    if (first == NULL && (*i + 1 >= argc || is_option(cmd, argv[*i + 1]))) {
        kmsctl_usage_error(cmd, "argument --%s: expected at least one structure", o->name);
        goto fail;
    }
    if (first == NULL) {
        first = argv[++*i];
    }
    for (const char *arg = first; arg != NULL;
         arg = (*i + 1 < argc && !is_option(cmd, argv[*i + 1])) ? argv[++*i] : NULL) {
        json_t *v = parse_json(cmd, o, arg);
        size_t k;
        json_t *item = NULL;
        if (v == NULL) {
            goto fail;
        }
        if (json_is_object(v) && json_array_append(list, v) == 0) {
            json_decref(v);
            continue;
        }
        json_array_foreach(v, k, item)
        {
            if (!json_is_object(item)) {
                break;
            }
        }
        if (!json_is_array(v) || k < json_array_size(v) || json_array_extend(list, v) != 0) {
            json_decref(v);
            kmsctl_usage_error(cmd,
                               "argument --%s: '%s' is not a structure (Name=value,Name2=value) "
                               "nor a JSON list of objects",
                               o->name, arg);
            goto fail;
        }
        json_decref(v);
    }
    if (stringify(list) != 0) {
        kmsctl_usage_error(cmd, "out of memory");
        goto fail;
    }
    return list;
fail:
    json_decref(list);
    return NULL;
}

static json_t *parse_value(const struct command *cmd, const struct opt_spec *o, bool negated,
                           const char *inline_value, int argc, char **argv, int *i)
{
    const char *value = NULL;

    if (o->kind == OPT_BOOL) {
        if (inline_value != NULL) {
            kmsctl_usage_error(cmd, "argument --%s%s: takes no value", negated ? "no-" : "",
                               o->name);
            return NULL;
        }
        return json_boolean(!negated);
    }
    if (o->kind == OPT_LIST) {
        return parse_list(cmd, o, inline_value, argc, argv, i);
    }
    if (o->kind == OPT_STRUCTS) {
        return parse_structs(cmd, o, inline_value, argc, argv, i);
    }
    if (take_value(cmd, o->name, inline_value, argc, argv, i, &value) != 0) {
        return NULL;
    }
    if (names_json_file(o, value)) {
        kmsctl_usage_error(cmd,
                           "argument --%s: '%s' is taken as the value itself; to read the file, "
                           "write --%s file://%s",
                           o->name, value, o->name, value);
        return NULL;
    }
    switch (o->kind) {
    case OPT_INTEGER:
        return parse_integer(cmd, o, value);
    case OPT_BLOB:
        return parse_blob(cmd, o, value);
    case OPT_MAP:
        return parse_map(cmd, o, value);
    case OPT_JSON:
        return parse_json(cmd, o, value);
    case OPT_PATH:
        return utf8_string(cmd, o, value);
    default:
        return parse_string(cmd, o, value);
    }
}

static int check_required(const struct command *cmd, json_t *request)
{
    char member[128];
    char missing[512] = "";
    size_t n = 0;

    for (const struct opt_spec *o = cmd->opts; o->name != NULL; o++) {
        kmsctl_member_name(o->name, member, sizeof member);
        if ((o->flags & OPT_REQUIRED) && json_object_get(request, member) == NULL &&
            n + strlen(o->name) + 8 < sizeof missing) {
            n += (size_t)snprintf(missing + n, sizeof missing - n, "%s--%s", n == 0 ? "" : ", ",
                                  o->name);
        }
    }
    if (n > 0) {
        return kmsctl_usage_error(cmd, "the following arguments are required: %s", missing);
    }
    return KMSCTL_EXIT_OK;
}

/* A repeated OPT_REPEAT option: v's items join those given before (takes v). */
static int merge_repeat(const struct command *cmd, const struct opt_spec *o, json_t *prev,
                        json_t *v)
{
    const char *key = NULL;
    json_t *value = NULL;
    int r = KMSCTL_EXIT_OK;

    if (json_is_array(prev) && json_is_array(v)) {
        json_array_extend(prev, v);
    } else if (json_is_object(prev) && json_is_object(v)) {
        json_object_foreach(v, key, value)
        {
            if (json_object_get(prev, key) != NULL) {
                r = kmsctl_usage_error(cmd, "argument --%s: key '%s' given twice", o->name, key);
                break;
            }
            json_object_set(prev, key, value);
        }
    } else {
        r = kmsctl_usage_error(cmd, "argument --%s: given more than once", o->name);
    }
    json_decref(v);
    return r;
}

/* One "--name[=value]" or "-x" at argv[*i]: a global option or one of the command's. */
static int parse_one(const struct command *cmd, int argc, char **argv, int *i, struct globals *g,
                     json_t *request)
{
    char name[128];
    char member[128];
    const char *inline_value = NULL;
    const struct opt_spec *o = find_short(cmd, argv[*i]);
    bool negated = false;
    json_t *prev = NULL;
    json_t *v = NULL;

    if (o == NULL) {
        int r = kmsctl_parse_global(cmd, argc, argv, i, g);
        if (r != 0) {
            return r == 1 ? KMSCTL_EXIT_OK : r;
        }
        inline_value = split_option(argv[*i], name, sizeof name);
        o = find_spec(cmd, name, &negated);
        if (o == NULL) {
            return unknown_option(cmd, name);
        }
    }
    kmsctl_member_name(o->name, member, sizeof member);
    prev = json_object_get(request, member);
    if (prev != NULL && !(o->flags & OPT_REPEAT)) {
        return kmsctl_usage_error(cmd, "argument --%s: given more than once", o->name);
    }
    v = parse_value(cmd, o, negated, inline_value, argc, argv, i);
    if (v == NULL) {
        return KMSCTL_EXIT_USAGE;
    }
    if (prev != NULL) {
        return merge_repeat(cmd, o, prev, v);
    }
    json_object_set_new(request, member, v);
    return KMSCTL_EXIT_OK;
}

/* A bare argument: the first OPT_POSITIONAL option not yet given takes it as its string. */
static int parse_positional(const struct command *cmd, const char *arg, json_t *request)
{
    char member[128];

    for (const struct opt_spec *o = cmd->opts; o->name != NULL; o++) {
        if (!(o->flags & OPT_POSITIONAL)) {
            continue;
        }
        kmsctl_member_name(o->name, member, sizeof member);
        if (json_object_get(request, member) != NULL) {
            continue;
        }
        if (json_object_set_new(request, member, json_string(arg)) != 0) {
            return kmsctl_usage_error(cmd, "argument %s: not valid UTF-8", o->name);
        }
        return KMSCTL_EXIT_OK;
    }
    return kmsctl_usage_error(cmd, "unexpected argument '%s'", arg);
}

int kmsctl_parse_options(const struct command *cmd, int argc, char **argv, struct globals *g,
                         json_t **request)
{
    int r = KMSCTL_EXIT_OK;
    json_t *req = json_object();

    if (req == NULL) {
        return kmsctl_usage_error(cmd, "out of memory");
    }
    /* --help anywhere wins over errors in the other arguments, as with aws. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            kmsctl_print_command_help(stdout, cmd);
            json_decref(req);
            return -1;
        }
    }
    for (int i = 0; i < argc && r == KMSCTL_EXIT_OK; i++) {
        if (find_short(cmd, argv[i]) == NULL &&
            (!has_prefix(argv[i], "--") || argv[i][2] == '\0')) {
            r = parse_positional(cmd, argv[i], req);
        } else {
            r = parse_one(cmd, argc, argv, &i, g, req);
        }
    }
    json_t *skeleton = json_incref(json_object_get(req, "GenerateCliSkeleton"));
    json_t *input = json_incref(json_object_get(req, "CliInputJson"));
    json_object_del(req, "GenerateCliSkeleton");
    json_object_del(req, "CliInputJson");
    if (r == KMSCTL_EXIT_OK && json_is_true(skeleton)) {
        r = print_skeleton(cmd);
    }
    if (r == KMSCTL_EXIT_OK && input != NULL) {
        r = merge_input(cmd, req, input);
    }
    json_decref(skeleton);
    json_decref(input);
    if (r == KMSCTL_EXIT_OK) {
        r = check_required(cmd, req);
    }
    if (r != KMSCTL_EXIT_OK) {
        json_decref(req);
        return r;
    }
    *request = req;
    return KMSCTL_EXIT_OK;
}
