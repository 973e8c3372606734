/* See vectors.h. */
#include "testutil.h"
#include "vectors.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *kms_test_vectors_dir(void)
{
    const char *env = getenv("KMS_VECTORS_DIR");
    if (env != NULL && env[0] != '\0') {
        /* An explicit choice is not second-guessed: a wrong path skips, it does not fall back. */
        return is_dir(env) ? strdup(env) : NULL;
    }
    const char *src = getenv("KMS_SOURCE_DIR");
    if (src != NULL && src[0] != '\0') {
        size_t n = strlen(src) + sizeof "/../shared/vectors";
        char *p = malloc(n);
        assert_non_null(p);
        snprintf(p, n, "%s/../shared/vectors", src);
        if (is_dir(p)) {
            return p;
        }
        free(p);
    }
    return is_dir("/work/shared/vectors") ? strdup("/work/shared/vectors") : NULL;
}

json_t *kms_test_vectors_json(const char *rel)
{
    char *dir = kms_test_vectors_dir();
    if (dir == NULL) {
        print_message("no vectors directory (set KMS_VECTORS_DIR): %s skipped\n", rel);
        skip();
    }
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/%s", dir, rel);
    free(dir);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL) {
        fail_msg("%s: %s (line %d)", path, err.text, err.line);
    }
    free(path);
    return root;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

uint8_t *kms_test_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0) {
        fail_msg("odd-length hex string: %s", hex);
    }
    uint8_t *p = malloc(n / 2 + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(hex[2 * i]);
        int lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fail_msg("not a hex string: %s", hex);
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return p;
}

const char *kms_test_json_str(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL) {
        fail_msg("vector field \"%s\" is missing or not a string", name);
    }
    return s;
}

char *kms_test_read_file(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096;
    size_t len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t kms_test_sigv4_cases(char ***cases)
{
    *cases = NULL;
    char *root = kms_test_vectors_dir();
    if (root == NULL) {
        skip();
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/sigv4", root);
    free(root);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fail_msg("%s: %s", dir, "no sigv4 vectors directory");
    }
    char **names = calloc(256, sizeof *names);
    assert_non_null(names);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char cdir[1200];
        snprintf(cdir, sizeof cdir, "%s/%s", dir, names[i]);
        free(names[i]);
        char *probe = kms_test_read_file(cdir, "header-signed-request.txt");
        if (probe == NULL) {
            continue;
        }
        free(probe);
        names[kept] = strdup(cdir);
        assert_non_null(names[kept]);
        kept++;
    }
    *cases = names;
    return kept;
}

static void add_header(kms_test_http *r, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    assert_true(r->n < KMS_TEST_HTTP_MAX_HEADERS);
    r->names[r->n] = strndup(name, nlen);
    r->values[r->n] = strndup(value, vlen);
    r->n++;
}

void kms_test_http_parse(kms_test_http *r, const char *text)
{
    memset(r, 0, sizeof *r);
    const char *eol = strchr(text, '\n');
    assert_non_null(eol);
    const char *sp = memchr(text, ' ', (size_t)(eol - text));
    const char *http = strstr(text, " HTTP/1.1");
    assert_non_null(sp);
    assert_non_null(http);
    assert_true(http < eol);
    assert_true((size_t)(sp - text) < sizeof r->method);
    memcpy(r->method, text, (size_t)(sp - text));
    r->method[sp - text] = '\0';
    char *target = strndup(sp + 1, (size_t)(http - sp - 1));
    char *q = strchr(target, '?');
    if (q != NULL) {
        r->query = strdup(q + 1);
        *q = '\0';
    } else {
        r->query = strdup("");
    }
    r->path = target;
    const char *line = eol + 1;
    for (;;) {
        eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (len == 0) {
            line = eol != NULL ? eol + 1 : line;
            break;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            assert_true(r->n > 0);
            size_t i = r->n - 1;
            size_t old = strlen(r->values[i]);
            r->values[i] = realloc(r->values[i], old + len + 2);
            assert_non_null(r->values[i]);
            r->values[i][old] = '\n';
            memcpy(r->values[i] + old + 1, line, len);
            r->values[i][old + 1 + len] = '\0';
        } else {
            const char *colon = memchr(line, ':', len);
            assert_non_null(colon);
            add_header(r, line, (size_t)(colon - line), colon + 1,
                       len - (size_t)(colon - line) - 1);
        }
        if (eol == NULL) {
            line += len;
            break;
        }
        line = eol + 1;
    }
    r->body = strdup(line);
    r->body_len = strlen(line);
}

void kms_test_http_free(kms_test_http *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->path);
    free(r->query);
    free(r->body);
}
