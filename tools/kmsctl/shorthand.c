/* The aws CLI's shorthand syntax (shorthand.h). */
#include "shorthand.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct shorthand {
    const char *p;
    const char *err;
    int depth;
} shorthand;

static json_t *sh_value(shorthand *s, bool text_only);

static bool sh_text_only(const char *key)
{
    return strncmp(key, "EncryptionContext", 17) == 0;
}

static json_t *sh_scalar(shorthand *s, bool text_only)
{
    char buf[4096];
    size_t n = 0;
    if (*s->p == '"' || *s->p == '\'') {
        char q = *s->p++;
        while (*s->p != '\0' && *s->p != q && n < sizeof buf - 1) {
            buf[n++] = *s->p++;
        }
        if (*s->p != q) {
            s->err = "a quoted value is not closed";
            return NULL;
        }
        s->p++;
        buf[n] = '\0';
        return json_string(buf);
    }
    while (*s->p != '\0' && strchr(",}]", *s->p) == NULL && n < sizeof buf - 1) {
        buf[n++] = *s->p++;
    }
    buf[n] = '\0';
    char *end = NULL;
    long long v = strtoll(buf, &end, 10);
    if (!text_only && (strcmp(buf, "true") == 0 || strcmp(buf, "false") == 0)) {
        return json_boolean(buf[0] == 't');
    }
    if (!text_only && n > 0 && *end == '\0' && strspn(buf, "-0123456789") == n) {
        return json_integer(v);
    }
    return json_string(buf);
}

/* key=value,... up to the end or a closing brace. */
static json_t *sh_struct(shorthand *s, char close, bool text_only)
{
    json_t *obj = json_object();
    while (obj != NULL && s->err == NULL && *s->p != '\0' && *s->p != close) {
        char key[256];
        size_t n = strcspn(s->p, "=,{}[]");
        if (n == 0 || n >= sizeof key || s->p[n] != '=') {
            s->err = "expected KEY=VALUE";
            break;
        }
        memcpy(key, s->p, n);
        key[n] = '\0';
        s->p += n + 1;
        json_t *v = sh_value(s, text_only || sh_text_only(key));
        if (v == NULL || json_object_get(obj, key) != NULL) {
            s->err = s->err != NULL ? s->err : "a key is given twice";
            json_decref(v);
            break;
        }
        json_object_set_new(obj, key, v);
        if (*s->p == ',') {
            s->p++;
        }
    }
    if (s->err != NULL || (close != '\0' && *s->p != close)) {
        s->err = s->err != NULL ? s->err : "a brace is not closed";
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *sh_value(shorthand *s, bool text_only)
{
    if ((*s->p == '{' || *s->p == '[') && s->depth >= MAX_DEPTH) {
        s->err = "nested too deep";
        return NULL;
    }
    if (*s->p == '{') {
        s->p++;
        s->depth++;
        json_t *v = sh_struct(s, '}', text_only);
        s->depth--;
        s->p += v != NULL;
        return v;
    }
    if (*s->p != '[') {
        return sh_scalar(s, text_only);
    }
    s->p++;
    s->depth++;
    json_t *list = json_array();
    while (list != NULL && *s->p != ']' && *s->p != '\0') {
        json_t *v = sh_value(s, text_only);
        if (v == NULL || json_array_append_new(list, v) != 0) {
            json_decref(list);
            return NULL;
        }
        if (*s->p == ',') {
            s->p++;
        } else if (*s->p != ']') {
            s->err = "expected ',' or ']' in a list";
            json_decref(list);
            return NULL;
        }
    }
    s->depth--;
    if (list == NULL || *s->p != ']') {
        s->err = s->err != NULL ? s->err
                 : list == NULL ? "out of memory"
                                : "a bracket is not closed";
        json_decref(list);
        return NULL;
    }
    s->p++;
    return list;
}

json_t *kmsctl_shorthand_parse(const char *text, const char **why, const char **at)
{
    shorthand s = {.p = text};
    json_t *v = sh_struct(&s, '\0', false);
    if (v == NULL) {
        *why = s.err != NULL ? s.err : "out of memory";
        *at = s.p;
    }
    return v;
}
