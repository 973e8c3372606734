/* --output table, as the aws CLI prints it (awscli/formatter.py TableFormatter, awscli/table.py
 * MultiTable): a title row with the operation's name, then one section per object, boxed with -,
 * | and +. An object's scalars are one row under a header row of their sorted names (a single
 * scalar: a name | value row); a list of objects is one header row and a row per object; lists
 * and objects inside are sections of their own, indented by one | per level. Columns are scaled
 * to the widest section; when that is wider than the terminal (80 columns when the output is not
 * one), every one-row section is turned into name | value rows. With colour (--color on, or auto
 * on a terminal) values are blue and the indentation bars yellow, as aws's colorama styles. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kmsctl.h"

struct row {
    char **cells;
    size_t n;
};

struct section {
    char *title;
    struct row headers; /* n == 0: none */
    struct row *rows;
    size_t nrows;
    size_t ncols;
    bool has_ncols;
    size_t *widths; /* the widest cell (or header) of each column */
    size_t nwidths;
    int indent;
};

struct table {
    struct section *sections;
    size_t n;
    bool failed; /* out of memory */
    bool color;
};

/* ---- Building (formatter.py's _build_table) ------------------------------------------------- */

/* Display width as awscli's get_text_length: East Asian wide and full-width characters count 2.
 * (awscli also counts the ambiguous ones 2; those are counted 1 here.) */
static size_t text_length(const char *s)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        unsigned long cp = *p;
        size_t len = 1;
        if (*p >= 0xf0) {
            cp = *p & 0x07u;
            len = 4;
        } else if (*p >= 0xe0) {
            cp = *p & 0x0fu;
            len = 3;
        } else if (*p >= 0xc0) {
            cp = *p & 0x1fu;
            len = 2;
        }
        for (size_t i = 1; i < len && (p[i] & 0xc0u) == 0x80u; i++) {
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        for (size_t i = 1; i < len && p[1] != '\0'; i++) {
            p++;
        }
        p++;
        bool wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
        n += wide ? 2 : 1;
    }
    return n;
}

static void row_free(struct row *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->cells[i]);
    }
    free(r->cells);
    r->cells = NULL;
    r->n = 0;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct section *s = &t->sections[i];
        free(s->title);
        row_free(&s->headers);
        for (size_t j = 0; j < s->nrows; j++) {
            row_free(&s->rows[j]);
        }
        free(s->rows);
        free(s->widths);
    }
    free(t->sections);
}

static struct section *current(struct table *t)
{
    return t->n > 0 ? &t->sections[t->n - 1] : NULL;
}

static void new_section(struct table *t, const char *title, int indent)
{
    struct section *grown = realloc(t->sections, (t->n + 1) * sizeof *grown);
    if (grown == NULL) {
        t->failed = true;
        return;
    }
    t->sections = grown;
    memset(&t->sections[t->n], 0, sizeof t->sections[t->n]);
    t->sections[t->n].indent = indent;
    t->sections[t->n].title = strdup(title != NULL ? title : "");
    if (t->sections[t->n].title == NULL) {
        t->failed = true;
    }
    t->n++;
}

/* Section._update_max_widths */
static void update_widths(struct table *t, struct section *s, const struct row *r)
{
    if (s->nwidths == 0) {
        free(s->widths);
        s->widths = calloc(r->n + 1, sizeof *s->widths);
        if (s->widths == NULL) {
            t->failed = true;
            return;
        }
        s->nwidths = r->n;
        for (size_t i = 0; i < r->n; i++) {
            s->widths[i] = text_length(r->cells[i]);
        }
        return;
    }
    for (size_t i = 0; i < r->n && i < s->nwidths; i++) {
        size_t w = text_length(r->cells[i]);
        s->widths[i] = w > s->widths[i] ? w : s->widths[i];
    }
}

/* Takes the cells (malloc'd strings) into a row of section s, or its header row. */
static void add_to(struct table *t, struct section *s, char **cells, size_t n, bool header)
{
    struct row r = {cells, n};

    for (size_t i = 0; i < n; i++) {
        if (cells[i] == NULL) {
            t->failed = true;
        }
    }
    if (s == NULL || t->failed) {
        row_free(&r);
        t->failed = true;
        return;
    }
    if (!s->has_ncols) {
        s->ncols = n;
        s->has_ncols = true;
    }
    if (header) {
        row_free(&s->headers);
        update_widths(t, s, &r);
        s->headers = r;
        return;
    }
    if (n != s->ncols) {
        /* awscli raises "Row should have N elements"; a response never gives such rows. */
        row_free(&r);
        return;
    }
    struct row *grown = realloc(s->rows, (s->nrows + 1) * sizeof *grown);
    if (grown == NULL) {
        row_free(&r);
        t->failed = true;
        return;
    }
    s->rows = grown;
    s->rows[s->nrows++] = r;
    update_widths(t, s, &r);
}

/* The same into the section last begun. */
static void add_cells(struct table *t, char **cells, size_t n, bool header)
{
    add_to(t, current(t), cells, n, header);
}

static char **cells_new(size_t n)
{
    return calloc(n + 1, sizeof(char *));
}

static bool is_scalar(json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* Python's truth value: empty containers and strings, 0, False and None are false. */
static bool truthy(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    case JSON_TRUE:
        return true;
    default:
        return false;
    }
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* _group_scalar_keys over one object or (union) a list of them: sorted names of the scalar
 * members into headers, of the others into more; a JSON object of names used as a set. */
static void group_keys(json_t *obj, json_t *headers, json_t *more)
{
    const char *key = NULL;
    json_t *value = NULL;

    json_object_foreach(obj, key, value)
    {
        json_object_set_new(is_scalar(value) ? headers : more, key, json_true());
    }
}

static const char **sorted_names(json_t *set, size_t *n)
{
    const char **names = calloc(json_object_size(set) + 1, sizeof *names);
    const char *key = NULL;
    json_t *value = NULL;

    *n = 0;
    if (names == NULL) {
        return NULL;
    }
    json_object_foreach(set, key, value)
    {
        names[(*n)++] = key;
    }
    qsort(names, *n, sizeof *names, compare_strings);
    return names;
}

static bool build(struct table *t, const char *title, json_t *cur, int indent);

static void header_row(struct table *t, const char **names, size_t n)
{
    char **cells = cells_new(n);
    if (cells == NULL) {
        t->failed = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cells[i] = strdup(names[i]);
    }
    add_cells(t, cells, n, true);
}

/* One row: the members named, '' for those an object lacks. */
static void value_row(struct table *t, json_t *obj, const char **names, size_t n)
{
    char **cells = cells_new(n);
    if (cells == NULL) {
        t->failed = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(obj, names[i]);
        cells[i] = v != NULL ? kmsctl_text_scalar(v) : strdup("");
    }
    add_cells(t, cells, n, false);
}

static void sub_table_from_dict(struct table *t, json_t *cur, int indent)
{
    json_t *hset = json_object();
    json_t *mset = json_object();
    size_t nh = 0;
    size_t nm = 0;
    const char **h = NULL;
    const char **m = NULL;

    if (hset == NULL || mset == NULL) {
        t->failed = true;
        goto out;
    }
    group_keys(cur, hset, mset);
    h = sorted_names(hset, &nh);
    m = sorted_names(mset, &nm);
    if (h == NULL || m == NULL) {
        t->failed = true;
        goto out;
    }
    if (nh == 1) {
        /* A single scalar: a name | value row without a header. */
        char **cells = cells_new(2);
        if (cells == NULL) {
            t->failed = true;
            goto out;
        }
        cells[0] = strdup(h[0]);
        cells[1] = kmsctl_text_scalar(json_object_get(cur, h[0]));
        add_cells(t, cells, 2, false);
    } else if (nh > 0) {
        header_row(t, h, nh);
        value_row(t, cur, h, nh);
    }
    for (size_t i = 0; i < nm; i++) {
        build(t, m[i], json_object_get(cur, m[i]), indent + 1);
    }
out:
    free(h);
    free(m);
    json_decref(hset);
    json_decref(mset);
}

static void sub_table_from_list(struct table *t, json_t *cur, int indent, const char *title)
{
    json_t *hset = json_object();
    json_t *mset = json_object();
    size_t nh = 0;
    size_t nm = 0;
    const char **h = NULL;
    const char **m = NULL;
    size_t i;
    json_t *el = NULL;

    if (hset == NULL || mset == NULL) {
        t->failed = true;
        goto out;
    }
    json_array_foreach(cur, i, el)
    {
        group_keys(el, hset, mset);
    }
    h = sorted_names(hset, &nh);
    m = sorted_names(mset, &nm);
    if (h == NULL || m == NULL) {
        t->failed = true;
        goto out;
    }
    header_row(t, h, nh);
    json_array_foreach(cur, i, el)
    {
        if (i > 0 && nm > 0) {
            new_section(t, title, indent);
            header_row(t, h, nh);
        }
        value_row(t, el, h, nh);
        for (size_t k = 0; k < nm; k++) {
            json_t *v = json_object_get(el, m[k]);
            if (v != NULL) {
                build(t, m[k], v, indent + 1);
            }
        }
    }
out:
    free(h);
    free(m);
    json_decref(hset);
    json_decref(mset);
}

/* A list of lists: a row per list of scalars (an object gives the row of its names, as
 * awscli's all() over a dict walks its keys). */
static void list_row(struct table *t, json_t *item)
{
    size_t n = json_is_array(item) ? json_array_size(item) : json_object_size(item);
    char **cells = cells_new(n);
    size_t i = 0;

    if (cells == NULL) {
        t->failed = true;
        return;
    }
    if (json_is_array(item)) {
        for (i = 0; i < n; i++) {
            cells[i] = kmsctl_text_scalar(json_array_get(item, i));
        }
    } else {
        const char *key = NULL;
        json_t *value = NULL;
        json_object_foreach(item, key, value)
        {
            cells[i++] = strdup(key);
        }
    }
    add_cells(t, cells, n, false);
}

static bool all_scalars(json_t *item)
{
    size_t i;
    json_t *el = NULL;

    if (json_is_object(item)) {
        return true;
    }
    json_array_foreach(item, i, el)
    {
        if (!is_scalar(el)) {
            return false;
        }
    }
    return true;
}

/* formatter.py's _build_table: false when there is nothing to show. */
static bool build(struct table *t, const char *title, json_t *cur, int indent)
{
    if (!truthy(cur) || t->failed) {
        return false;
    }
    if (title != NULL) {
        new_section(t, title, indent);
    }
    if (json_is_array(cur)) {
        if (json_is_object(json_array_get(cur, 0))) {
            sub_table_from_list(t, cur, indent, title);
        } else {
            size_t i;
            json_t *item = NULL;
            json_array_foreach(cur, i, item)
            {
                if (is_scalar(item)) {
                    char **cells = cells_new(1);
                    if (cells == NULL) {
                        t->failed = true;
                        return true;
                    }
                    cells[0] = kmsctl_text_scalar(item);
                    add_cells(t, cells, 1, false);
                } else if (all_scalars(item)) {
                    list_row(t, item);
                } else {
                    build(t, NULL, item, 0);
                }
            }
        }
    }
    if (json_is_object(cur)) {
        sub_table_from_dict(t, cur, indent);
    }
    return true;
}

/* ---- Rendering (table.py's MultiTable.render) ------------------------------------------------ */

static size_t terminal_width(void)
{
    struct winsize ws;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
        return 80;
    }
    return ws.ws_col;
}

static void repeat(FILE *f, char c, long n)
{
    for (long i = 0; i < n; i++) {
        fputc(c, f);
    }
}

/* Section.total_width(padding=4, with_border=True, outer_padding=indent) */
static size_t total_width(const struct section *s)
{
    size_t total = 2 + 2 * (size_t)s->indent;
    size_t title = text_length(s->title) + 2 + 2 * (size_t)s->indent;

    for (size_t i = 0; i < s->nwidths; i++) {
        total += s->widths[i] + 4;
    }
    return title > total ? title : total;
}

static size_t max_width(const struct table *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        size_t sw = total_width(&t->sections[i]);
        w = sw > w ? sw : w;
    }
    return w;
}

/* convert_to_vertical_table: a one-row section with headers becomes name | value rows. */
static void to_vertical(struct table *t)
{
    for (size_t i = 0; i < t->n && !t->failed; i++) {
        struct section *s = &t->sections[i];
        if (s->nrows != 1 || s->headers.n == 0) {
            continue;
        }
        struct row headers = s->headers;
        struct row values = s->rows[0];
        free(s->rows);
        free(s->widths);
        s->rows = NULL;
        s->nrows = 0;
        s->widths = NULL;
        s->nwidths = 0;
        s->headers = (struct row){NULL, 0};
        s->has_ncols = false;
        for (size_t c = 0; c < headers.n && c < values.n; c++) {
            char **cells = cells_new(2);
            if (cells == NULL) {
                t->failed = true;
                break;
            }
            cells[0] = headers.cells[c];
            cells[1] = values.cells[c];
            headers.cells[c] = NULL;
            values.cells[c] = NULL;
            add_to(t, s, cells, 2, false);
        }
        row_free(&headers);
        row_free(&values);
    }
}

/* Python's round() of a non-negative number: halves to the even neighbour. */
static long round_even(double x)
{
    long whole = (long)x;
    double frac = x - (double)whole;

    if (frac > 0.5 || (frac == 0.5 && (whole % 2) != 0)) {
        return whole + 1;
    }
    return whole;
}

/* Section.calculate_column_widths(padding=4, max_width): scaled to width, Python's round (half
 * to even), then off-by-one fixes from the left (too wide) or the right (too narrow). */
static long *column_widths(const struct section *s, long width)
{
    long *scaled = calloc(s->nwidths + 1, sizeof *scaled);
    double sum = 0;
    long off = 0;

    if (scaled == NULL || s->nwidths == 0) {
        return scaled;
    }
    for (size_t i = 0; i < s->nwidths; i++) {
        sum += (double)(s->widths[i] + 4);
    }
    double factor = (double)width / sum;
    for (size_t i = 0; i < s->nwidths; i++) {
        scaled[i] = round_even(factor * (double)(s->widths[i] + 4));
        off += scaled[i];
    }
    off -= width;
    while (off != 0) {
        for (size_t k = 0; k < s->nwidths && off != 0; k++) {
            size_t i = off < 0 ? s->nwidths - 1 - k : k;
            if (off > 0) {
                scaled[i]--;
                off--;
            } else {
                scaled[i]++;
                off++;
            }
        }
    }
    return scaled;
}

/* Every line of a section is framed by one | per indentation level on each side. */
static void bars(const struct table *t, FILE *f, int indent)
{
    for (int i = 0; i < indent; i++) {
        fputs(t->color ? "\033[2m\033[33m|\033[0m" : "|", f);
    }
}

/* With colour, aws's output stream is colorama's with autoreset: every write the table makes
 * (the bars, the line, the bars, the line break) is followed by a reset. */
static void reset(const struct table *t, FILE *f)
{
    fputs(t->color ? "\033[0m" : "", f);
}

static void line_start(const struct table *t, FILE *f, int indent)
{
    bars(t, f, indent);
    reset(t, f);
}

static void line_end(const struct table *t, FILE *f, int indent)
{
    reset(t, f);
    bars(t, f, indent);
    reset(t, f);
    fputc('\n', f);
    reset(t, f);
}

/* center_text: text of length n centred in a cell of `length` between left and right edges. */
static void center(FILE *f, const char *text, long length, const char *left)
{
    long n = (long)text_length(text);
    long start = length / 2 - n / 2 - 1;
    long so_far = (long)strlen(left) + start + n;

    fputs(left, f);
    repeat(f, ' ', start);
    fputs(text, f);
    repeat(f, ' ', length - 1 - so_far);
    fputc('|', f);
}

/* align_left: text after two spaces (none if it does not fit), padded to the right edge. */
static void align_left(const struct table *t, FILE *f, const char *text, long length,
                       const char *left)
{
    long n = (long)text_length(text);
    long lw = (long)strlen(left);
    long padding = length - (n + 2 + lw + 1) >= 0 ? 2 : 0;

    fputs(left, f);
    repeat(f, ' ', padding);
    fputs(t->color ? "\033[1m\033[34m" : "", f);
    fputs(text, f);
    fputs(t->color ? "\033[0m" : "", f);
    repeat(f, ' ', length - lw - padding - n - 1);
    fputc('|', f);
}

static void line_break(const struct table *t, FILE *f, int indent, const long *widths, size_t n)
{
    line_start(t, f, indent);
    for (size_t i = 0; i < n; i++) {
        if (i == 0) {
            fputc('+', f);
            repeat(f, '-', widths[i] - 2);
        } else {
            repeat(f, '-', widths[i] - 1);
        }
        fputc('+', f);
    }
    line_end(t, f, indent);
}

static int render_section(const struct table *t, FILE *f, const struct section *s, long width)
{
    long *widths = NULL;

    width -= 2L * s->indent;
    if (s->title[0] != '\0') {
        line_start(t, f, s->indent);
        center(f, s->title, width, "|");
        line_end(t, f, s->indent);
        if (s->headers.n == 0 && s->nrows == 0) {
            line_start(t, f, s->indent);
            fputc('+', f);
            repeat(f, '-', width - 2);
            fputc('+', f);
            line_end(t, f, s->indent);
        }
    }
    if (s->headers.n == 0 && s->nrows == 0) {
        return 0;
    }
    if ((widths = column_widths(s, width)) == NULL) {
        return -1;
    }
    if (s->headers.n > 0) {
        line_break(t, f, s->indent, widths, s->nwidths);
        line_start(t, f, s->indent);
        for (size_t i = 0; i < s->headers.n && i < s->nwidths; i++) {
            center(f, s->headers.cells[i], widths[i], i == 0 ? "|" : "");
        }
        line_end(t, f, s->indent);
    }
    if (s->nrows > 0 && s->nwidths > 0) {
        line_break(t, f, s->indent, widths, s->nwidths);
        for (size_t r = 0; r < s->nrows; r++) {
            line_start(t, f, s->indent);
            for (size_t i = 0; i < s->rows[r].n && i < s->nwidths; i++) {
                align_left(t, f, s->rows[r].cells[i], widths[i], i == 0 ? "|" : "");
            }
            line_end(t, f, s->indent);
        }
        line_break(t, f, s->indent, widths, s->nwidths);
    }
    free(widths);
    return 0;
}

int kmsctl_table_print(FILE *f, const char *title, bool color, json_t *v)
{
    struct table t = {.color = color};
    int r = -1;

    if (!build(&t, title != NULL ? title : "", v, 0)) {
        r = 0;
        goto out;
    }
    if (t.failed) {
        goto out;
    }
    size_t width = max_width(&t);
    if (width > terminal_width()) {
        to_vertical(&t);
        width = max_width(&t);
    }
    if (t.failed) {
        goto out;
    }
    repeat(f, '-', (long)width);
    fputc('\n', f);
    reset(&t, f);
    for (size_t i = 0; i < t.n; i++) {
        if (render_section(&t, f, &t.sections[i], (long)width) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    table_free(&t);
    return r;
}
