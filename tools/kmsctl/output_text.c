/* --output text, as the aws CLI prints it (awscli/text.py): the scalars of an object on one line,
 * tab-separated, in sorted key order, headed by the upper-cased name of the member that holds the
 * object; then its lists and objects, each under its own name. The objects of a list share the
 * union of their scalar keys as columns. A list of scalars is one line (under a name: one line per
 * item). Python's str() prints the scalars (True, False, None). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "kmsctl.h"

static bool is_container(json_t *v)
{
    return json_is_object(v) || json_is_array(v);
}

/* Python's str() of a scalar. */
static void print_scalar_text(FILE *f, json_t *v)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        fwrite(json_string_value(v), 1, json_string_length(v), f);
        break;
    case JSON_INTEGER:
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        kmsctl_format_real(json_real_value(v), num, sizeof num);
        fputs(num, f);
        break;
    case JSON_TRUE:
        fputs("True", f);
        break;
    case JSON_FALSE:
        fputs("False", f);
        break;
    case JSON_NULL:
        fputs("None", f);
        break;
    default: {
        /* A container where the row expects a scalar: compact JSON rather than nothing. */
        char *s = json_dumps(v, JSON_COMPACT);
        fputs(s != NULL ? s : "", f);
        free(s);
    }
    }
}

static void print_upper(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        fputc(toupper((unsigned char)*s), f);
    }
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj in sorted order (malloc'd array of borrowed strings). */
static const char **sorted_keys(json_t *obj, size_t *n)
{
    const char **keys = calloc(json_object_size(obj) + 1, sizeof *keys);
    const char *key = NULL;
    json_t *value = NULL;

    *n = 0;
    if (keys == NULL) {
        return NULL;
    }
    json_object_foreach(obj, key, value)
    {
        keys[(*n)++] = key;
    }
    qsort(keys, *n, sizeof *keys, compare_keys);
    return keys;
}

static void text_item(FILE *f, json_t *item, const char *identifier, json_t *scalar_keys);

static bool has_scalars(json_t *obj, json_t *scalar_keys)
{
    const char *key = NULL;
    json_t *value = NULL;

    if (scalar_keys != NULL) {
        return json_array_size(scalar_keys) > 0;
    }
    json_object_foreach(obj, key, value)
    {
        if (!is_container(value)) {
            return true;
        }
    }
    return false;
}

static bool in_list(json_t *list, const char *s)
{
    size_t i;
    json_t *el = NULL;

    json_array_foreach(list, i, el)
    {
        if (strcmp(json_string_value(el), s) == 0) {
            return true;
        }
    }
    return false;
}

/* One row: [IDENTIFIER] then the scalars, in sorted key order or in the order of scalar_keys
 * (the union over a list of objects, so that the columns line up). */
static void text_row(FILE *f, json_t *obj, const char **keys, size_t nkeys, const char *identifier,
                     json_t *scalar_keys)
{
    size_t col = 0;
    size_t i;
    json_t *k = NULL;

    if (identifier != NULL) {
        print_upper(f, identifier);
        col++;
    }
    if (scalar_keys == NULL) {
        for (i = 0; i < nkeys; i++) {
            json_t *v = json_object_get(obj, keys[i]);
            if (!is_container(v)) {
                fputs(col++ > 0 ? "\t" : "", f);
                print_scalar_text(f, v);
            }
        }
    } else {
        json_array_foreach(scalar_keys, i, k)
        {
            json_t *v = json_object_get(obj, json_string_value(k));
            fputs(col++ > 0 ? "\t" : "", f);
            if (v != NULL) {
                print_scalar_text(f, v);
            }
        }
    }
    fputc('\n', f);
}

static void text_dict(FILE *f, json_t *obj, const char *identifier, json_t *scalar_keys)
{
    size_t nkeys = 0;
    const char **keys = sorted_keys(obj, &nkeys);

    if (keys == NULL) {
        return;
    }
    if (has_scalars(obj, scalar_keys)) {
        text_row(f, obj, keys, nkeys, identifier, scalar_keys);
    }
    /* Then the other members, each under its own name, in sorted order. */
    for (size_t i = 0; i < nkeys; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (scalar_keys != NULL ? !in_list(scalar_keys, keys[i]) : is_container(v)) {
            text_item(f, v, keys[i], NULL);
        }
    }
    free(keys);
}

/* All keys with scalar values in any object of the list, sorted. */
static json_t *all_scalar_keys(json_t *list)
{
    json_t *seen = json_object();
    json_t *keys = json_array();
    json_t *el = NULL;
    json_t *value = NULL;
    const char *key = NULL;
    const char **sorted = NULL;
    size_t i;
    size_t n = 0;

    json_array_foreach(list, i, el)
    {
        json_object_foreach(el, key, value)
        {
            if (!is_container(value)) {
                json_object_set(seen, key, json_null());
            }
        }
    }
    sorted = sorted_keys(seen, &n);
    for (i = 0; sorted != NULL && i < n; i++) {
        json_array_append_new(keys, json_string(sorted[i]));
    }
    free(sorted);
    json_decref(seen);
    return keys;
}

static void text_scalar_list(FILE *f, json_t *list, const char *identifier)
{
    size_t i;
    size_t col = 0;
    json_t *el = NULL;

    json_array_foreach(list, i, el)
    {
        if (is_container(el)) {
            continue;
        }
        if (identifier != NULL) {
            print_upper(f, identifier);
            fputc('\t', f);
            print_scalar_text(f, el);
            fputc('\n', f);
        } else {
            fputs(col++ > 0 ? "\t" : "", f);
            print_scalar_text(f, el);
        }
    }
    if (identifier == NULL && col > 0) {
        fputc('\n', f);
    }
}

static void text_list(FILE *f, json_t *list, const char *identifier)
{
    size_t i;
    json_t *el = NULL;
    bool has_object = false;
    bool has_list = false;
    json_t *keys = NULL;

    json_array_foreach(list, i, el)
    {
        has_object = has_object || json_is_object(el);
        has_list = has_list || json_is_array(el);
    }
    if (has_object) {
        keys = all_scalar_keys(list);
        json_array_foreach(list, i, el)
        {
            text_item(f, el, identifier, keys);
        }
        json_decref(keys);
        return;
    }
    text_scalar_list(f, list, identifier);
    if (has_list) {
        json_array_foreach(list, i, el)
        {
            if (json_is_array(el)) {
                text_item(f, el, identifier, NULL);
            }
        }
    }
}

static void text_item(FILE *f, json_t *item, const char *identifier, json_t *scalar_keys)
{
    if (json_is_object(item)) {
        text_dict(f, item, identifier, scalar_keys);
    } else if (json_is_array(item)) {
        text_list(f, item, identifier);
    } else {
        print_scalar_text(f, item);
        fputc('\n', f);
    }
}

void kmsctl_text_print(FILE *f, json_t *v)
{
    text_item(f, v, NULL, NULL);
}

char *kmsctl_text_scalar(json_t *v)
{
    char *s = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&s, &n);

    if (m == NULL) {
        return NULL;
    }
    print_scalar_text(m, v);
    if (fclose(m) != 0) {
        free(s);
        return NULL;
    }
    return s;
}
