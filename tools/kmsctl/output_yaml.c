/* --output yaml, as the aws CLI v2 prints it (awscli/formatter.py YAMLDumper: ruamel.yaml's safe
 * dumper, block style, keys sorted, 80 columns, Unicode as is), emitted by libyaml. A string that
 * would read back as another type (true, 12, 1.5, null, a date) is single-quoted, as the YAML 1.2
 * resolver of ruamel.yaml decides; libyaml chooses the other styles (plain where it can). */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "kmsctl.h"

/* ruamel.yaml resolver.py, the YAML 1.2 implicit resolvers (bool, float, int, merge, null,
 * timestamp, value, yaml), as POSIX extended expressions. */
static const char *const implicit[] = {
    "^(true|True|TRUE|false|False|FALSE)$",
    "^([-+]?([0-9][0-9_]*)\\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?([0-9][0-9_]*)([eE][-+]?[0-9]+)|"
    "[-+]?\\.[0-9_]+([eE][-+][0-9]+)?|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$",
    "^([-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$",
    "^<<$",
    "^(~|null|Null|NULL|)$",
    "^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:"
    "[0-9]{2}(\\.[0-9]*)?([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)$",
    "^=$",
    "^(!|&|\\*)$",
};

#define IMPLICIT_COUNT (sizeof implicit / sizeof implicit[0])

/* True when the plain scalar s would be read as something other than a string. The expressions
 * are compiled once (kmsctl prints from one thread). */
static bool resolves_other(const char *s)
{
    static regex_t compiled[IMPLICIT_COUNT];
    static int ready = 0; /* 1: compiled, -1: failed */

    if (ready == 0) {
        ready = 1;
        for (size_t i = 0; i < IMPLICIT_COUNT && ready == 1; i++) {
            if (regcomp(&compiled[i], implicit[i], REG_EXTENDED | REG_NOSUB) != 0) {
                ready = -1;
            }
        }
    }
    if (ready != 1) {
        return true; /* cannot tell: quoting is always correct */
    }
    for (size_t i = 0; i < IMPLICIT_COUNT; i++) {
        if (regexec(&compiled[i], s, 0, NULL, 0) == 0) {
            return true;
        }
    }
    return false;
}

static int scalar(yaml_emitter_t *e, const char *text, bool as_string)
{
    yaml_event_t ev;
    bool quoted = as_string && resolves_other(text);

    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text),
                                      !quoted, 1, YAML_ANY_SCALAR_STYLE)) {
        return -1;
    }
    return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

/* ruamel.yaml's represent_float: repr() in lower case, ".0" before an exponent without a point. */
static void float_text(double d, char *out, size_t size)
{
    char num[64];
    char *e = NULL;

    if (d != d) {
        snprintf(out, size, ".nan");
        return;
    }
    if (d > 1e308 || d < -1e308) {
        snprintf(out, size, "%s.inf", d < 0 ? "-" : "");
        return;
    }
    kmsctl_format_real(d, num, sizeof num);
    e = strchr(num, 'e');
    if (e != NULL && memchr(num, '.', (size_t)(e - num)) == NULL) {
        snprintf(out, size, "%.*s.0%s", (int)(e - num), num, e);
    } else {
        snprintf(out, size, "%s", num);
    }
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int node(yaml_emitter_t *e, json_t *v);

static int mapping(yaml_emitter_t *e, json_t *v)
{
    yaml_event_t ev;
    const char **keys = calloc(json_object_size(v) + 1, sizeof *keys);
    const char *key = NULL;
    json_t *value = NULL;
    size_t n = 0;
    int r = -1;

    if (keys == NULL) {
        return -1;
    }
    json_object_foreach(v, key, value)
    {
        keys[n++] = key;
    }
    qsort(keys, n, sizeof *keys, compare_keys);
    if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
        !yaml_emitter_emit(e, &ev)) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (scalar(e, keys[i], true) != 0) {
            goto out;
        }
        if (node(e, json_object_get(v, keys[i])) != 0) {
            goto out;
        }
    }
    if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev)) {
        goto out;
    }
    r = 0;
out:
    free(keys);
    return r;
}

static int sequence(yaml_emitter_t *e, json_t *v)
{
    yaml_event_t ev;
    size_t i;
    json_t *el = NULL;

    if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
        !yaml_emitter_emit(e, &ev)) {
        return -1;
    }
    json_array_foreach(v, i, el)
    {
        if (node(e, el) != 0) {
            return -1;
        }
    }
    if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev)) {
        return -1;
    }
    return 0;
}

static int node(yaml_emitter_t *e, json_t *v)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return mapping(e, v);
    case JSON_ARRAY:
        return sequence(e, v);
    case JSON_STRING:
        return scalar(e, json_string_value(v), true);
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return scalar(e, num, false);
    case JSON_REAL:
        float_text(json_real_value(v), num, sizeof num);
        return scalar(e, num, false);
    case JSON_TRUE:
        return scalar(e, "true", false);
    case JSON_FALSE:
        return scalar(e, "false", false);
    default:
        return scalar(e, "null", false);
    }
}

int kmsctl_yaml_print(FILE *f, json_t *v)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    int r = -1;

    if (!yaml_emitter_initialize(&e)) {
        return -1;
    }
    yaml_emitter_set_output_file(&e, f);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, 80);
    yaml_emitter_set_indent(&e, 2);
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(&e, &ev)) {
        goto out;
    }
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&e, &ev)) {
        goto out;
    }
    if (node(&e, v) != 0) {
        goto out;
    }
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e, &ev)) {
        goto out;
    }
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e, &ev)) {
        goto out;
    }
    if (!yaml_emitter_flush(&e)) {
        goto out;
    }
    r = 0;
out:
    yaml_emitter_delete(&e);
    return r;
}
