/* JMESPath: a lexer, a Pratt parser to an AST, and an evaluator over jansson values, written from
 * the specification (https://jmespath.org/specification.html, "Grammar" and the sections after
 * it). Every evaluation returns a new reference; null is json_null(). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmespath.h"

/* ---- Tokens ---------------------------------------------------------------------------------- */

enum tok {
    T_EOF,
    T_UNQUOTED,
    T_QUOTED,
    T_NUMBER,
    T_LITERAL, /* `json` or 'raw string' */
    T_DOT,
    T_STAR,
    T_LBRACKET,
    T_RBRACKET,
    T_LBRACE,
    T_RBRACE,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_COLON,
    T_PIPE,
    T_OR,
    T_AND,
    T_NOT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_FLATTEN, /* [] */
    T_FILTER,  /* [? */
    T_AT,
    T_EXPREF, /* & */
};

/* Binding powers (the specification's precedence, loosest first: | || && comparators ! ...). */
static int binding_power(enum tok t)
{
    switch (t) {
    case T_PIPE:
        return 1;
    case T_OR:
        return 2;
    case T_AND:
        return 3;
    case T_EQ:
    case T_NE:
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE:
        return 5;
    case T_FLATTEN:
        return 9;
    case T_STAR:
        return 20;
    case T_FILTER:
        return 21;
    case T_DOT:
        return 40;
    case T_NOT:
        return 45;
    case T_LBRACE:
        return 50;
    case T_LBRACKET:
        return 55;
    case T_LPAREN:
        return 60;
    default:
        return 0;
    }
}

/* A projection's right side goes on while the next token binds at least this tightly. */
#define PROJECTION_STOP 10

struct token {
    enum tok type;
    size_t pos;
    long long number;
    char *text;    /* identifiers */
    json_t *value; /* literals */
};

/* ---- AST ------------------------------------------------------------------------------------- */

enum kind {
    N_FIELD,
    N_SUB,      /* kids evaluated in turn, each on the previous one's result */
    N_INDEX,    /* kids[0][index] */
    N_SLICE,    /* kids[0][start:stop:step] */
    N_PROJECT,  /* list projection: kids[1] on each element of kids[0] */
    N_VPROJECT, /* object projection: kids[1] on each value of kids[0] */
    N_FLATTEN,
    N_FILTER, /* kids[1] on each element of kids[0] for which kids[2] is true */
    N_CMP,
    N_OR,
    N_AND,
    N_NOT,
    N_LITERAL,
    N_CURRENT,
    N_PIPE,
    N_LIST,
    N_HASH,
    N_CALL,
    N_EXPREF,
};

struct node {
    enum kind kind;
    int op; /* N_CMP: the comparator token; N_CALL: the function's index */
    int depth;
    char *name; /* N_FIELD */
    json_t *value;
    long long index;
    long long slice[3];
    bool has[3];
    struct node **kids;
    char **keys; /* N_HASH: one per kid */
    size_t n;
};

struct kmsctl_jmespath {
    struct node *root;
};

static void node_free(struct node *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        node_free(n->kids[i]);
        if (n->keys != NULL) {
            free(n->keys[i]);
        }
    }
    free(n->kids);
    free(n->keys);
    free(n->name);
    json_decref(n->value);
    free(n);
}

void kmsctl_jmespath_free(struct kmsctl_jmespath *jp)
{
    if (jp != NULL) {
        node_free(jp->root);
        free(jp);
    }
}

/* ---- Lexer ----------------------------------------------------------------------------------- */

struct parser {
    const char *src;
    struct token *toks;
    size_t ntoks, cap, cur;
    int nesting;
    struct kmsctl_jmespath_error *err;
};

static int fail(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;

    if (p->err->message[0] != '\0') {
        return -1;
    }
    p->err->at = at;
    va_start(ap, fmt);
    vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int push(struct parser *p, enum tok type, size_t pos, struct token **out)
{
    if (p->ntoks == p->cap) {
        size_t cap = p->cap == 0 ? 32 : p->cap * 2;
        struct token *t = realloc(p->toks, cap * sizeof *t);
        if (t == NULL) {
            return fail(p, pos, "out of memory");
        }
        p->toks = t;
        p->cap = cap;
    }
    *out = &p->toks[p->ntoks++];
    memset(*out, 0, sizeof **out);
    (*out)->type = type;
    (*out)->pos = pos;
    return 0;
}

/* The text between delim at *i and the next unescaped delim; *i is left after it. A backslash
 * escapes the next character; with unescape_delim, "\delim" becomes delim. */
static char *delimited(struct parser *p, size_t *i, char delim, bool unescape_delim)
{
    const char *s = p->src;
    size_t start = *i;
    size_t j = start + 1;
    char *buf = NULL;
    size_t n = 0;

    buf = malloc(strlen(s + j) + 1);
    if (buf == NULL) {
        fail(p, start, "out of memory");
        return NULL;
    }
    while (s[j] != '\0' && s[j] != delim) {
        if (s[j] == '\\' && s[j + 1] == delim && unescape_delim) {
            buf[n++] = delim;
            j += 2;
            continue;
        }
        if (s[j] == '\\' && s[j + 1] != '\0') {
            buf[n++] = s[j++];
        }
        buf[n++] = s[j++];
    }
    if (s[j] != delim) {
        free(buf);
        fail(p, start, "unterminated %c", delim);
        return NULL;
    }
    buf[n] = '\0';
    *i = j + 1;
    return buf;
}

/* `json`: JSON text; as the aws CLI's library, text that is not JSON is taken as a string. */
static json_t *json_literal(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    char *quoted = NULL;
    size_t skip = strspn(text, " \t\n\r");

    if (v != NULL) {
        return v;
    }
    quoted = malloc(strlen(text) + 3);
    if (quoted == NULL) {
        return NULL;
    }
    snprintf(quoted, strlen(text) + 3, "\"%s\"", text + skip);
    v = json_loads(quoted, JSON_DECODE_ANY, NULL);
    free(quoted);
    return v;
}

static int lex_quoted(struct parser *p, size_t *i)
{
    size_t start = *i;
    char *raw = delimited(p, i, '"', false);
    char *quoted = NULL;
    json_t *v = NULL;
    struct token *t = NULL;
    int r = -1;

    if (raw == NULL) {
        goto out;
    }
    quoted = malloc(strlen(raw) + 3);
    if (quoted == NULL) {
        r = fail(p, start, "out of memory");
        goto out;
    }
    snprintf(quoted, strlen(raw) + 3, "\"%s\"", raw);
    v = json_loads(quoted, JSON_DECODE_ANY, NULL);
    if (!json_is_string(v)) {
        r = fail(p, start, "invalid quoted identifier (a JSON string)");
        goto out;
    }
    if ((r = push(p, T_QUOTED, start, &t)) != 0) {
        goto out;
    }
    t->text = strdup(json_string_value(v));
    if (t->text == NULL) {
        r = fail(p, start, "out of memory");
        goto out;
    }
    r = 0;
out:
    json_decref(v);
    free(quoted);
    free(raw);
    return r;
}

static int lex_literal(struct parser *p, size_t *i, char delim)
{
    size_t start = *i;
    char *text = delimited(p, i, delim, true);
    struct token *t = NULL;
    json_t *v = NULL;
    int r = -1;

    if (text == NULL) {
        goto out;
    }
    v = delim == '`' ? json_literal(text) : json_string(text);
    if (v == NULL) {
        r = fail(p, start, delim == '`' ? "invalid JSON literal" : "invalid raw string (UTF-8)");
        goto out;
    }
    if ((r = push(p, T_LITERAL, start, &t)) != 0) {
        goto out;
    }
    t->value = v;
    v = NULL;
    r = 0;
out:
    json_decref(v);
    free(text);
    return r;
}

static int lex_number(struct parser *p, size_t *i)
{
    const char *s = p->src;
    size_t start = *i;
    struct token *t = NULL;
    char *end = NULL;
    long long v;

    if (s[start] == '-' && !isdigit((unsigned char)s[start + 1])) {
        return fail(p, start, "'-' not followed by a number");
    }
    errno = 0;
    v = strtoll(s + start, &end, 10);
    if (errno != 0) {
        return fail(p, start, "number out of range");
    }
    if (push(p, T_NUMBER, start, &t) != 0) {
        return -1;
    }
    t->number = v;
    *i = (size_t)(end - s);
    return 0;
}

/* Two-character operators: c then second gives two, else one (or an error when one is T_EOF). */
static int lex_pair(struct parser *p, size_t *i, char second, enum tok two, enum tok one)
{
    struct token *t = NULL;
    size_t start = *i;

    if (p->src[start + 1] == second) {
        *i += 2;
        return push(p, two, start, &t);
    }
    if (one == T_EOF) {
        return fail(p, start, "unknown token '%c' (did you mean '%c%c'?)", p->src[start],
                    p->src[start], second);
    }
    *i += 1;
    return push(p, one, start, &t);
}

static enum tok single(char c)
{
    switch (c) {
    case '.':
        return T_DOT;
    case '*':
        return T_STAR;
    case ']':
        return T_RBRACKET;
    case '{':
        return T_LBRACE;
    case '}':
        return T_RBRACE;
    case '(':
        return T_LPAREN;
    case ')':
        return T_RPAREN;
    case ',':
        return T_COMMA;
    case ':':
        return T_COLON;
    case '@':
        return T_AT;
    default:
        return T_EOF;
    }
}

static int lex_identifier(struct parser *p, size_t *i)
{
    size_t start = *i;
    size_t n = 1;
    struct token *t = NULL;

    while (isalnum((unsigned char)p->src[start + n]) || p->src[start + n] == '_') {
        n++;
    }
    if (push(p, T_UNQUOTED, start, &t) != 0) {
        return -1;
    }
    t->text = strndup(p->src + start, n);
    if (t->text == NULL) {
        return fail(p, start, "out of memory");
    }
    *i += n;
    return 0;
}

static int lex_one(struct parser *p, size_t *i)
{
    const char *s = p->src;
    char c = s[*i];
    struct token *t = NULL;

    if (single(c) != T_EOF) {
        *i += 1;
        return push(p, single(c), *i - 1, &t);
    }
    if (isalpha((unsigned char)c) || c == '_') {
        return lex_identifier(p, i);
    }
    if (isdigit((unsigned char)c) || c == '-') {
        return lex_number(p, i);
    }
    switch (c) {
    case '[':
        if (s[*i + 1] == ']') {
            return lex_pair(p, i, ']', T_FLATTEN, T_LBRACKET);
        }
        return lex_pair(p, i, '?', T_FILTER, T_LBRACKET);
    case '|':
        return lex_pair(p, i, '|', T_OR, T_PIPE);
    case '&':
        return lex_pair(p, i, '&', T_AND, T_EXPREF);
    case '!':
        return lex_pair(p, i, '=', T_NE, T_NOT);
    case '<':
        return lex_pair(p, i, '=', T_LE, T_LT);
    case '>':
        return lex_pair(p, i, '=', T_GE, T_GT);
    case '=':
        return lex_pair(p, i, '=', T_EQ, T_EOF);
    case '"':
        return lex_quoted(p, i);
    case '\'':
    case '`':
        return lex_literal(p, i, c);
    default:
        if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
            return fail(p, *i, "unknown character '%c'", c);
        }
        return fail(p, *i, "unknown character (byte 0x%02x)", (unsigned char)c);
    }
}

static int lex(struct parser *p)
{
    size_t i = 0;
    struct token *t = NULL;

    while (p->src[i] != '\0') {
        if (strchr(" \t\n\r", p->src[i]) != NULL) {
            i++;
            continue;
        }
        if (lex_one(p, &i) != 0) {
            return -1;
        }
    }
    return push(p, T_EOF, i, &t);
}

/* ---- Parser (Pratt: a nud for tokens that start an expression, a led for those that continue
 * one, each led binding as tightly as binding_power says) ------------------------------------- */

static struct node *expression(struct parser *p, int rbp);

static enum tok peek(const struct parser *p, size_t ahead)
{
    size_t i = p->cur + ahead;
    return i < p->ntoks ? p->toks[i].type : T_EOF;
}

static struct token *advance(struct parser *p)
{
    struct token *t = &p->toks[p->cur];
    if (p->cur + 1 < p->ntoks) {
        p->cur++;
    }
    return t;
}

static const char *tok_name(enum tok t)
{
    static const char *const names[] = {"the end of the expression",
                                        "an identifier",
                                        "a quoted identifier",
                                        "a number",
                                        "a literal",
                                        "'.'",
                                        "'*'",
                                        "'['",
                                        "']'",
                                        "'{'",
                                        "'}'",
                                        "'('",
                                        "')'",
                                        "','",
                                        "':'",
                                        "'|'",
                                        "'||'",
                                        "'&&'",
                                        "'!'",
                                        "'=='",
                                        "'!='",
                                        "'<'",
                                        "'<='",
                                        "'>'",
                                        "'>='",
                                        "'[]'",
                                        "'[?'",
                                        "'@'",
                                        "'&'"};
    return names[t];
}

static int expect(struct parser *p, enum tok t)
{
    if (peek(p, 0) != t) {
        return fail(p, p->toks[p->cur].pos, "expected %s, found %s", tok_name(t),
                    tok_name(peek(p, 0)));
    }
    advance(p);
    return 0;
}

static struct node *unexpected(struct parser *p)
{
    fail(p, p->toks[p->cur].pos, "unexpected %s", tok_name(peek(p, 0)));
    return NULL;
}

/* A node of kind with n children (taken over: freed on failure), deeper than them by one. */
static struct node *mk(struct parser *p, enum kind kind, size_t n, struct node *a, struct node *b,
                       struct node *c)
{
    struct node *kids[3] = {a, b, c};
    struct node *x = calloc(1, sizeof *x);

    if (x == NULL || (n > 0 && (x->kids = calloc(n, sizeof *x->kids)) == NULL)) {
        free(x);
        x = NULL;
        fail(p, p->toks[p->cur].pos, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (kids[i] == NULL) {
            node_free(x);
            x = NULL;
        }
    }
    if (x == NULL) {
        for (size_t i = 0; i < n; i++) {
            node_free(kids[i]);
        }
        return NULL;
    }
    x->kind = kind;
    x->n = n;
    for (size_t i = 0; i < n; i++) {
        x->kids[i] = kids[i];
        x->depth = kids[i]->depth + 1 > x->depth ? kids[i]->depth + 1 : x->depth;
    }
    if (x->depth > KMSCTL_JMESPATH_MAX_DEPTH) {
        node_free(x);
        fail(p, p->toks[p->cur].pos, "the expression nests more than %d deep",
             KMSCTL_JMESPATH_MAX_DEPTH);
        return NULL;
    }
    return x;
}

static struct node *leaf(struct parser *p, enum kind kind)
{
    return mk(p, kind, 0, NULL, NULL, NULL);
}

/* Appends kid (taken over) to x's children; x is freed on failure. */
static struct node *append(struct parser *p, struct node *x, struct node *kid, char *key)
{
    struct node **kids = NULL;
    char **keys = NULL;

    if (x == NULL || kid == NULL) {
        goto fail;
    }
    kids = realloc(x->kids, (x->n + 1) * sizeof *kids);
    if (kids == NULL) {
        goto oom;
    }
    x->kids = kids;
    if (x->kind == N_HASH) {
        keys = realloc(x->keys, (x->n + 1) * sizeof *keys);
        if (keys == NULL) {
            goto oom;
        }
        x->keys = keys;
        x->keys[x->n] = key;
        key = NULL;
    }
    x->kids[x->n++] = kid;
    x->depth = kid->depth + 1 > x->depth ? kid->depth + 1 : x->depth;
    if (x->depth > KMSCTL_JMESPATH_MAX_DEPTH) {
        node_free(x);
        fail(p, p->toks[p->cur].pos, "the expression nests more than %d deep",
             KMSCTL_JMESPATH_MAX_DEPTH);
        return NULL;
    }
    return x;
oom:
    fail(p, p->toks[p->cur].pos, "out of memory");
fail:
    free(key);
    node_free(x);
    node_free(kid);
    return NULL;
}

static struct node *field(struct parser *p, const struct token *t)
{
    struct node *x = leaf(p, N_FIELD);
    if (x != NULL && (x->name = strdup(t->text)) == NULL) {
        node_free(x);
        fail(p, t->pos, "out of memory");
        return NULL;
    }
    return x;
}

static struct node *dot_rhs(struct parser *p, int rbp);
static struct node *multi_list(struct parser *p);
static struct node *multi_hash(struct parser *p);

/* What a projection applies to each element: @ when the next token ends it. */
static struct node *projection_rhs(struct parser *p, int rbp)
{
    enum tok t = peek(p, 0);

    if (binding_power(t) < PROJECTION_STOP) {
        return leaf(p, N_CURRENT);
    }
    if (t == T_LBRACKET || t == T_FILTER) {
        return expression(p, rbp);
    }
    if (t == T_DOT) {
        advance(p);
        return dot_rhs(p, rbp);
    }
    return unexpected(p);
}

static struct node *dot_rhs(struct parser *p, int rbp)
{
    switch (peek(p, 0)) {
    case T_UNQUOTED:
    case T_QUOTED:
    case T_STAR:
        return expression(p, rbp);
    case T_LBRACKET:
        advance(p);
        return multi_list(p);
    case T_LBRACE:
        advance(p);
        return multi_hash(p);
    default:
        fail(p, p->toks[p->cur].pos, "expected an identifier, '*', '[' or '{' after '.', found %s",
             tok_name(peek(p, 0)));
        return NULL;
    }
}

/* After an element of a multi-select list or hash: the closing token (consumed) ends x, a ','
 * (consumed) asks for another element; anything else fails and frees x. *done says which. */
static struct node *list_next(struct parser *p, struct node *x, enum tok close, bool *done)
{
    *done = true;
    if (x == NULL) {
        return NULL;
    }
    if (peek(p, 0) == close) {
        if (expect(p, close) == 0) {
            return x;
        }
    } else if (peek(p, 0) != T_COMMA) {
        fail(p, p->toks[p->cur].pos, "expected ',' or '%c', found %s",
             close == T_RBRACKET ? ']' : '}', tok_name(peek(p, 0)));
    } else if (expect(p, T_COMMA) == 0) {
        *done = false;
        return x;
    }
    node_free(x);
    return NULL;
}

static struct node *multi_list(struct parser *p)
{
    struct node *x = leaf(p, N_LIST);
    bool done = x == NULL;

    while (!done) {
        x = list_next(p, append(p, x, expression(p, 0), NULL), T_RBRACKET, &done);
    }
    return x;
}

static struct node *multi_hash(struct parser *p)
{
    struct node *x = leaf(p, N_HASH);
    bool done = x == NULL;

    while (!done) {
        struct token *k = &p->toks[p->cur];
        char *key = NULL;
        if (k->type != T_UNQUOTED && k->type != T_QUOTED) {
            fail(p, k->pos, "expected a key (an identifier), found %s", tok_name(k->type));
            node_free(x);
            return NULL;
        }
        advance(p);
        if (expect(p, T_COLON) != 0 || (key = strdup(k->text)) == NULL) {
            fail(p, k->pos, "out of memory");
            node_free(x);
            return NULL;
        }
        x = list_next(p, append(p, x, expression(p, 0), key), T_RBRACE, &done);
    }
    return x;
}

/* After '[': a number ']' or a slice [start]:[stop][:[step]] ']'. */
static struct node *index_or_slice(struct parser *p, struct node *left)
{
    struct node *x = NULL;
    size_t pos = p->toks[p->cur].pos;
    int part = 0;

    if (left == NULL) {
        return NULL;
    }
    if (peek(p, 0) == T_NUMBER && peek(p, 1) == T_RBRACKET) {
        x = mk(p, N_INDEX, 1, left, NULL, NULL);
        if (x != NULL) {
            x->index = advance(p)->number;
            advance(p);
        }
        return x;
    }
    x = mk(p, N_SLICE, 1, left, NULL, NULL);
    while (x != NULL && peek(p, 0) != T_RBRACKET) {
        if (peek(p, 0) == T_COLON && part < 2) {
            part++;
            advance(p);
        } else if (peek(p, 0) == T_NUMBER && !x->has[part]) {
            x->has[part] = true;
            x->slice[part] = advance(p)->number;
        } else {
            node_free(x);
            return unexpected(p);
        }
    }
    if (x != NULL && x->has[2] && x->slice[2] == 0) {
        node_free(x);
        fail(p, pos, "invalid-value: a slice step cannot be 0");
        return NULL;
    }
    if (x != NULL) {
        advance(p);
        x = mk(p, N_PROJECT, 2, x, projection_rhs(p, binding_power(T_STAR)), NULL);
    }
    return x;
}

static int function_index(const char *name);
static bool function_arity_ok(int fn, size_t nargs);
static const char *function_arity(int fn);

static struct node *call(struct parser *p, struct node *left, size_t pos)
{
    struct node *x = NULL;
    int fn;

    if (left->kind != N_FIELD) {
        node_free(left);
        fail(p, pos, "'(' after something that is not a function name");
        return NULL;
    }
    fn = function_index(left->name);
    if (fn < 0) {
        fail(p, pos, "unknown-function: %s()", left->name);
        node_free(left);
        return NULL;
    }
    x = leaf(p, N_CALL);
    if (x == NULL) {
        node_free(left);
        return NULL;
    }
    x->op = fn;
    while (x != NULL && peek(p, 0) != T_RPAREN) {
        if (x->n > 0 && peek(p, 0) != T_COMMA) {
            fail(p, p->toks[p->cur].pos, "expected ',' or ')', found %s", tok_name(peek(p, 0)));
        }
        if (x->n > 0 && expect(p, T_COMMA) != 0) {
            node_free(x);
            x = NULL;
            break;
        }
        x = append(p, x, expression(p, 0), NULL);
    }
    if (x != NULL && !function_arity_ok(fn, x->n)) {
        fail(p, pos, "invalid-arity: %s() takes %s, not %zu", left->name, function_arity(fn), x->n);
        node_free(x);
        x = NULL;
    }
    node_free(left);
    if (x != NULL) {
        advance(p);
    }
    return x;
}

static struct node *nud_lbracket(struct parser *p)
{
    if (peek(p, 0) == T_NUMBER || peek(p, 0) == T_COLON) {
        return index_or_slice(p, leaf(p, N_CURRENT));
    }
    if (peek(p, 0) == T_STAR && peek(p, 1) == T_RBRACKET) {
        advance(p);
        advance(p);
        return mk(p, N_PROJECT, 2, leaf(p, N_CURRENT), projection_rhs(p, binding_power(T_STAR)),
                  NULL);
    }
    return multi_list(p);
}

static struct node *filter(struct parser *p, struct node *left)
{
    struct node *cond = expression(p, 0);
    struct node *right = NULL;

    if (cond == NULL || expect(p, T_RBRACKET) != 0) {
        node_free(left);
        node_free(cond);
        return NULL;
    }
    right =
        peek(p, 0) == T_FLATTEN ? leaf(p, N_CURRENT) : projection_rhs(p, binding_power(T_FILTER));
    return mk(p, N_FILTER, 3, left, right, cond);
}

static struct node *nud(struct parser *p, struct token *t)
{
    struct node *x = NULL;

    switch (t->type) {
    case T_LITERAL:
        x = leaf(p, N_LITERAL);
        if (x != NULL) {
            x->value = json_incref(t->value);
        }
        return x;
    case T_QUOTED:
        if (peek(p, 0) == T_LPAREN) {
            fail(p, t->pos, "a function name cannot be quoted");
            return NULL;
        }
        return field(p, t);
    case T_UNQUOTED:
        return field(p, t);
    case T_STAR:
        return mk(p, N_VPROJECT, 2, leaf(p, N_CURRENT), projection_rhs(p, binding_power(T_STAR)),
                  NULL);
    case T_FILTER:
        return filter(p, leaf(p, N_CURRENT));
    case T_LBRACE:
        return multi_hash(p);
    case T_FLATTEN:
        return mk(p, N_PROJECT, 2, mk(p, N_FLATTEN, 1, leaf(p, N_CURRENT), NULL, NULL),
                  projection_rhs(p, binding_power(T_FLATTEN)), NULL);
    case T_LPAREN:
        x = expression(p, 0);
        if (x != NULL && expect(p, T_RPAREN) != 0) {
            node_free(x);
            x = NULL;
        }
        return x;
    case T_NOT:
        return mk(p, N_NOT, 1, expression(p, binding_power(T_NOT)), NULL, NULL);
    case T_AT:
        return leaf(p, N_CURRENT);
    case T_EXPREF:
        return mk(p, N_EXPREF, 1, expression(p, 0), NULL, NULL);
    case T_LBRACKET:
        return nud_lbracket(p);
    default:
        fail(p, t->pos, "unexpected %s", tok_name(t->type));
        return NULL;
    }
}

/* a.b.c as one N_SUB with three children, so that long paths do not nest. */
static struct node *sub(struct parser *p, struct node *left, struct node *right)
{
    if (left != NULL && left->kind == N_SUB) {
        return append(p, left, right, NULL);
    }
    return mk(p, N_SUB, 2, left, right, NULL);
}

static struct node *led(struct parser *p, struct token *t, struct node *left)
{
    int bp = binding_power(t->type);
    struct node *x = NULL;

    switch (t->type) {
    case T_DOT:
        if (peek(p, 0) == T_STAR) {
            advance(p);
            return mk(p, N_VPROJECT, 2, left, projection_rhs(p, bp), NULL);
        }
        return sub(p, left, dot_rhs(p, bp));
    case T_PIPE:
        return mk(p, N_PIPE, 2, left, expression(p, bp), NULL);
    case T_OR:
        return mk(p, N_OR, 2, left, expression(p, bp), NULL);
    case T_AND:
        return mk(p, N_AND, 2, left, expression(p, bp), NULL);
    case T_EQ:
    case T_NE:
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE:
        x = mk(p, N_CMP, 2, left, expression(p, bp), NULL);
        if (x != NULL) {
            x->op = (int)t->type;
        }
        return x;
    case T_LPAREN:
        return call(p, left, t->pos);
    case T_FILTER:
        return filter(p, left);
    case T_FLATTEN:
        return mk(p, N_PROJECT, 2, mk(p, N_FLATTEN, 1, left, NULL, NULL), projection_rhs(p, bp),
                  NULL);
    case T_LBRACKET:
        if (peek(p, 0) == T_NUMBER || peek(p, 0) == T_COLON) {
            return index_or_slice(p, left);
        }
        if (expect(p, T_STAR) != 0 || expect(p, T_RBRACKET) != 0) {
            node_free(left);
            return NULL;
        }
        return mk(p, N_PROJECT, 2, left, projection_rhs(p, binding_power(T_STAR)), NULL);
    default:
        node_free(left);
        fail(p, t->pos, "unexpected %s", tok_name(t->type));
        return NULL;
    }
}

static struct node *expression(struct parser *p, int rbp)
{
    struct node *left = NULL;

    if (++p->nesting > KMSCTL_JMESPATH_MAX_DEPTH) {
        fail(p, p->toks[p->cur].pos, "the expression nests more than %d deep",
             KMSCTL_JMESPATH_MAX_DEPTH);
        p->nesting--;
        return NULL;
    }
    left = nud(p, advance(p));
    while (left != NULL && rbp < binding_power(peek(p, 0))) {
        left = led(p, advance(p), left);
    }
    p->nesting--;
    return left;
}

struct kmsctl_jmespath *kmsctl_jmespath_compile(const char *expr, struct kmsctl_jmespath_error *err)
{
    struct parser p = {.src = expr, .err = err};
    struct kmsctl_jmespath *jp = NULL;
    struct node *root = NULL;

    memset(err, 0, sizeof *err);
    if (strlen(expr) > KMSCTL_JMESPATH_MAX_LEN) {
        fail(&p, KMSCTL_JMESPATH_MAX_LEN, "the expression is longer than %d bytes",
             KMSCTL_JMESPATH_MAX_LEN);
        return NULL;
    }
    if (lex(&p) != 0) {
        goto out;
    }
    if (peek(&p, 0) == T_EOF) {
        fail(&p, 0, "the expression is empty");
        goto out;
    }
    root = expression(&p, 0);
    if (root != NULL && peek(&p, 0) != T_EOF) {
        unexpected(&p);
        goto out;
    }
    if (root == NULL) {
        goto out;
    }
    jp = calloc(1, sizeof *jp);
    if (jp == NULL) {
        fail(&p, 0, "out of memory");
        goto out;
    }
    jp->root = root;
    root = NULL;
out:
    node_free(root);
    for (size_t i = 0; i < p.ntoks; i++) {
        free(p.toks[i].text);
        json_decref(p.toks[i].value);
    }
    free(p.toks);
    return jp;
}

/* ---- Evaluation: values --------------------------------------------------------------------- */

struct eval {
    unsigned long steps;
    struct kmsctl_jmespath_error *err;
};

static int efail(struct eval *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int efail(struct eval *e, const char *fmt, ...)
{
    va_list ap;

    if (e->err->message[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(e->err->message, sizeof e->err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Counts work, so that an expression cannot run (nearly) forever: [@,@]|[@,@]|... doubles. */
static int tick(struct eval *e, size_t n)
{
    e->steps += n;
    if (e->steps > KMSCTL_JMESPATH_MAX_STEPS) {
        return efail(e, "the expression does too much work (more than %lu steps)",
                     KMSCTL_JMESPATH_MAX_STEPS);
    }
    return 0;
}

static json_t *oom(struct eval *e)
{
    efail(e, "out of memory");
    return NULL;
}

/* Appends v (a new reference, taken over; NULL fails) to the array a. */
static int add(struct eval *e, json_t *a, json_t *v)
{
    if (v == NULL) {
        return -1;
    }
    if (json_array_append_new(a, v) != 0) {
        oom(e);
        return -1;
    }
    return 0;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* False: null, false, "", [] and {}; everything else (0 too) is true. */
static bool truthy(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return true;
    }
}

static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    double x = json_number_value(a), y = json_number_value(b);
    return x < y ? -1 : x > y;
}

/* Strings order by code point, which is the byte order of UTF-8. */
static int str_cmp(const json_t *a, const json_t *b)
{
    size_t na = json_string_length(a), nb = json_string_length(b);
    int c = memcmp(json_string_value(a), json_string_value(b), na < nb ? na : nb);
    return c != 0 ? c : (na > nb) - (na < nb);
}

/* The specification's equality: 1 and 1.0 are equal, objects whatever their order. 1: equal, 0:
 * not, -1: too much work. */
static int equal(struct eval *e, const json_t *a, const json_t *b)
{
    const char *key;
    json_t *va;
    int r;

    if (tick(e, 1) != 0) {
        return -1;
    }
    if (a == b) {
        return 1;
    }
    if (json_is_number(a) && json_is_number(b)) {
        return num_cmp(a, b) == 0;
    }
    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }
    switch (json_typeof(a)) {
    case JSON_STRING:
        return str_cmp(a, b) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            if ((r = equal(e, json_array_get(a, i), json_array_get(b, i))) != 1) {
                return r;
            }
        }
        return 1;
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b)) {
            return 0;
        }
        json_object_foreach((json_t *)a, key, va)
        {
            json_t *vb = json_object_get(b, key);
            if (vb == NULL) {
                return 0;
            }
            if ((r = equal(e, va, vb)) != 1) {
                return r;
            }
        }
        return 1;
    default:
        return 1; /* true, false, null */
    }
}

/* ---- Evaluation: expressions ---------------------------------------------------------------- */

static json_t *eval(struct eval *e, const struct node *n, json_t *v);
static json_t *call_function(struct eval *e, const struct node *n, json_t *v);

/* The slice's elements, as the specification's slice algorithm computes them (Python's). */
static json_t *slice(struct eval *e, const struct node *n, json_t *a)
{
    long long len = (long long)json_array_size(a);
    long long step = n->has[2] ? n->slice[2] : 1;
    long long at[2];
    json_t *out = json_array();

    if (out == NULL) {
        return oom(e);
    }
    for (int k = 0; k < 2; k++) {
        long long x = n->slice[k];
        if (!n->has[k]) {
            x = k == 0 ? (step > 0 ? 0 : len - 1) : (step > 0 ? len : -1);
        } else if (x < 0) {
            x = x + len < 0 ? (step < 0 ? -1 : 0) : x + len;
        } else if (x >= len) {
            x = step < 0 ? len - 1 : len;
        }
        at[k] = x;
    }
    for (long long i = at[0]; step > 0 ? i < at[1] : i > at[1]; i += step) {
        if (tick(e, 1) != 0 || add(e, out, json_incref(json_array_get(a, (size_t)i))) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Applies n to each of the values, keeping the results that are not null. */
static json_t *project(struct eval *e, const struct node *n, json_t *const *vals, size_t count)
{
    json_t *out = json_array();

    if (out == NULL || tick(e, count) != 0) {
        json_decref(out);
        return out == NULL ? oom(e) : NULL;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *r = eval(e, n, vals[i]);
        if (r == NULL) {
            json_decref(out);
            return NULL;
        }
        if (json_is_null(r)) {
            continue;
        }
        if (add(e, out, r) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *array_items(json_t *a, json_t ***vals, size_t *count)
{
    *vals = NULL;
    *count = json_array_size(a);
    if (*count == 0) {
        return a;
    }
    *vals = calloc(*count, sizeof **vals);
    if (*vals == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < *count; i++) {
        (*vals)[i] = json_array_get(a, i);
    }
    return a;
}

static json_t *eval_project(struct eval *e, const struct node *n, json_t *v)
{
    json_t *left = eval(e, n->kids[0], v);
    json_t **vals = NULL;
    json_t *out = NULL;
    size_t count = 0;

    if (left == NULL) {
        return NULL;
    }
    if (n->kind == N_PROJECT && !json_is_array(left)) {
        out = json_null();
    } else if (n->kind == N_VPROJECT && !json_is_object(left)) {
        out = json_null();
    } else if (n->kind == N_PROJECT) {
        out =
            array_items(left, &vals, &count) == NULL ? oom(e) : project(e, n->kids[1], vals, count);
    } else {
        const char *key;
        json_t *val;
        vals = calloc(json_object_size(left) + 1, sizeof *vals);
        if (vals == NULL) {
            out = oom(e);
        } else {
            json_object_foreach(left, key, val)
            {
                vals[count++] = val;
            }
            out = project(e, n->kids[1], vals, count);
        }
    }
    free(vals);
    json_decref(left);
    return out;
}

static json_t *flatten(struct eval *e, json_t *a)
{
    json_t *out = json_array();

    if (out == NULL) {
        return oom(e);
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *el = json_array_get(a, i);
        size_t n = json_is_array(el) ? json_array_size(el) : 1;
        if (tick(e, n) != 0) {
            json_decref(out);
            return NULL;
        }
        if (json_is_array(el) ? json_array_extend(out, el) != 0
                              : add(e, out, json_incref(el)) != 0) {
            json_decref(out);
            return oom(e);
        }
    }
    return out;
}

static json_t *eval_filter(struct eval *e, const struct node *n, json_t *v)
{
    json_t *left = eval(e, n->kids[0], v);
    json_t *out = NULL;

    if (left == NULL || !json_is_array(left)) {
        json_decref(left);
        return left == NULL ? NULL : json_null();
    }
    out = json_array();
    if (out == NULL || tick(e, json_array_size(left)) != 0) {
        json_decref(left);
        json_decref(out);
        return out == NULL ? oom(e) : NULL;
    }
    for (size_t i = 0; i < json_array_size(left) && out != NULL; i++) {
        json_t *el = json_array_get(left, i);
        json_t *c = eval(e, n->kids[2], el);
        json_t *r = NULL;
        bool keep = c != NULL && truthy(c);
        if (c == NULL || (keep && (r = eval(e, n->kids[1], el)) == NULL) ||
            (r != NULL && !json_is_null(r) && add(e, out, r) != 0)) {
            json_decref(out);
            out = NULL;
        }
        json_decref(c);
    }
    json_decref(left);
    return out;
}

static json_t *compare(struct eval *e, const struct node *n, json_t *v)
{
    json_t *a = eval(e, n->kids[0], v);
    json_t *b = a != NULL ? eval(e, n->kids[1], v) : NULL;
    json_t *out = NULL;
    int c = 0;

    if (b == NULL) {
        goto out;
    }
    if (n->op == T_EQ || n->op == T_NE) {
        c = equal(e, a, b);
        out = c < 0 ? NULL : json_boolean((c == 1) == (n->op == T_EQ));
        goto out;
    }
    /* Ordering: numbers, and (as the aws CLI's library does) strings; anything else is null. */
    if (json_is_number(a) && json_is_number(b)) {
        c = num_cmp(a, b);
    } else if (json_is_string(a) && json_is_string(b)) {
        c = str_cmp(a, b);
    } else {
        out = json_null();
        goto out;
    }
    switch (n->op) {
    case T_LT:
        out = json_boolean(c < 0);
        break;
    case T_LE:
        out = json_boolean(c <= 0);
        break;
    case T_GT:
        out = json_boolean(c > 0);
        break;
    default:
        out = json_boolean(c >= 0);
        break;
    }
out:
    json_decref(a);
    json_decref(b);
    return out;
}

static json_t *multi_select(struct eval *e, const struct node *n, json_t *v)
{
    json_t *out = n->kind == N_LIST ? json_array() : json_object();

    if (out == NULL) {
        return oom(e);
    }
    for (size_t i = 0; i < n->n; i++) {
        json_t *r = eval(e, n->kids[i], v);
        int bad = r == NULL;
        if (!bad && n->kind == N_LIST) {
            bad = add(e, out, r);
        } else if (!bad && json_object_set_new(out, n->keys[i], r) != 0) {
            bad = oom(e) == NULL;
        }
        if (bad) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *eval_sub(struct eval *e, const struct node *n, json_t *v)
{
    json_t *cur = json_incref(v);

    for (size_t i = 0; i < n->n && cur != NULL; i++) {
        json_t *next = eval(e, n->kids[i], cur);
        json_decref(cur);
        cur = next;
    }
    return cur;
}

static json_t *eval_index(struct eval *e, const struct node *n, json_t *v)
{
    json_t *left = eval(e, n->kids[0], v);
    json_t *out = NULL;

    if (left == NULL) {
        return NULL;
    }
    if (!json_is_array(left)) {
        out = json_null();
    } else if (n->kind == N_SLICE) {
        out = slice(e, n, left);
    } else {
        long long len = (long long)json_array_size(left);
        long long i = n->index < 0 ? n->index + len : n->index;
        out = i >= 0 && i < len ? json_incref(json_array_get(left, (size_t)i)) : json_null();
    }
    json_decref(left);
    return out;
}

static json_t *eval_logic(struct eval *e, const struct node *n, json_t *v)
{
    json_t *a = eval(e, n->kids[0], v);

    if (a == NULL) {
        return NULL;
    }
    if (n->kind == N_NOT) {
        bool t = truthy(a);
        json_decref(a);
        return json_boolean(!t);
    }
    if (truthy(a) == (n->kind == N_OR)) {
        return a;
    }
    json_decref(a);
    return eval(e, n->kids[1], v);
}

static json_t *eval(struct eval *e, const struct node *n, json_t *v)
{
    json_t *left = NULL;
    json_t *out = NULL;

    if (tick(e, 1) != 0) {
        return NULL;
    }
    switch (n->kind) {
    case N_FIELD:
        out = json_is_object(v) ? json_object_get(v, n->name) : NULL;
        return out != NULL ? json_incref(out) : json_null();
    case N_SUB:
        return eval_sub(e, n, v);
    case N_INDEX:
    case N_SLICE:
        return eval_index(e, n, v);
    case N_PROJECT:
    case N_VPROJECT:
        return eval_project(e, n, v);
    case N_FLATTEN:
        left = eval(e, n->kids[0], v);
        out = left == NULL ? NULL : json_is_array(left) ? flatten(e, left) : json_null();
        json_decref(left);
        return out;
    case N_FILTER:
        return eval_filter(e, n, v);
    case N_CMP:
        return compare(e, n, v);
    case N_OR:
    case N_AND:
    case N_NOT:
        return eval_logic(e, n, v);
    case N_LITERAL:
        return json_incref(n->value);
    case N_CURRENT:
        return json_incref(v);
    case N_PIPE:
        left = eval(e, n->kids[0], v);
        out = left != NULL ? eval(e, n->kids[1], left) : NULL;
        json_decref(left);
        return out;
    case N_LIST:
    case N_HASH:
        return json_is_null(v) ? json_null() : multi_select(e, n, v);
    case N_CALL:
        return call_function(e, n, v);
    default:
        efail(e, "invalid-type: an expression reference (&...) is only a function's argument");
        return NULL;
    }
}

int kmsctl_jmespath_search(const struct kmsctl_jmespath *jp, json_t *data, json_t **out,
                           struct kmsctl_jmespath_error *err)
{
    struct eval e = {.err = err};

    memset(err, 0, sizeof *err);
    *out = eval(&e, jp->root, data != NULL ? data : json_null());
    if (*out == NULL) {
        if (err->message[0] == '\0') {
            oom(&e);
        }
        return -1;
    }
    return 0;
}

/* ---- to_string: JSON text as the aws CLI's library writes it (Python's json.dumps with
 * separators "," and ":": \u escapes for everything outside printable ASCII, floats as repr) -- */

struct buf {
    char *data;
    size_t len, cap;
    bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* The code point at s (valid UTF-8, as jansson keeps it) and its length in bytes. */
static unsigned long utf8_next(const unsigned char *s, size_t *len)
{
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xe0) {
        *len = 2;
        return ((s[0] & 0x1fUL) << 6) | (s[1] & 0x3f);
    }
    if (s[0] < 0xf0) {
        *len = 3;
        return ((s[0] & 0x0fUL) << 12) | ((s[1] & 0x3fUL) << 6) | (s[2] & 0x3f);
    }
    *len = 4;
    return ((s[0] & 0x07UL) << 18) | ((s[1] & 0x3fUL) << 12) | ((s[2] & 0x3fUL) << 6) |
           (s[3] & 0x3f);
}

static void put_string(struct buf *b, const json_t *v)
{
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    char esc[32];

    puts_(b, "\"");
    for (size_t i = 0, len = 0; i < n; i += len) {
        unsigned long c = utf8_next(s + i, &len);
        const char *short_esc = c == '"'    ? "\\\""
                                : c == '\\' ? "\\\\"
                                : c == '\n' ? "\\n"
                                : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t"
                                : c == '\b' ? "\\b"
                                : c == '\f' ? "\\f"
                                            : NULL;
        if (short_esc != NULL) {
            puts_(b, short_esc);
        } else if (c >= 0x20 && c < 0x7f) {
            put(b, (const char *)s + i, 1);
        } else if (c > 0xffff) {
            c -= 0x10000;
            snprintf(esc, sizeof esc, "\\u%04lx\\u%04lx", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
            puts_(b, esc);
        } else {
            snprintf(esc, sizeof esc, "\\u%04lx", c);
            puts_(b, esc);
        }
    }
    puts_(b, "\"");
}

/* Python's repr(float): the shortest digits that read back the same; positional for decimal
 * exponents -4..15 (with ".0" when whole), else d[.ddd]e+XX. */
static void put_real(struct buf *b, double d)
{
    char sci[40], digits[24], out[64];
    int prec, exp10, nd = 0;
    size_t n = 0;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, d);
        if (strtod(sci, NULL) == d) {
            break;
        }
    }
    for (const char *c = sci; *c != 'e'; c++) {
        if (isdigit((unsigned char)*c)) {
            digits[nd++] = *c;
        }
    }
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    digits[nd] = '\0';
    exp10 = atoi(strchr(sci, 'e') + 1);
    if (signbit(d)) {
        out[n++] = '-';
    }
    if (exp10 >= -4 && exp10 < 16) {
        for (int i = exp10; i < 0; i++) {
            out[n++] = '0';
            if (i == exp10) {
                out[n++] = '.';
            }
        }
        for (int i = 0; i < nd || i <= exp10; i++) {
            out[n++] = i < nd ? digits[i] : '0';
            if (i == exp10) {
                out[n++] = '.';
            }
        }
        if (out[n - 1] == '.') {
            out[n++] = '0';
        }
        out[n] = '\0';
    } else {
        snprintf(out + n, sizeof out - n, "%c%s%se%c%02d", digits[0], nd > 1 ? "." : "", digits + 1,
                 exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    puts_(b, out);
}

static int put_json(struct eval *e, struct buf *b, const json_t *v)
{
    char num[32];
    const char *key;
    json_t *val;
    bool first = true;

    if (tick(e, 1) != 0) {
        return -1;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        put_string(b, v);
        return 0;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        puts_(b, num);
        return 0;
    case JSON_REAL:
        put_real(b, json_real_value(v));
        return 0;
    case JSON_ARRAY:
        puts_(b, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            puts_(b, i > 0 ? "," : "");
            if (put_json(e, b, json_array_get(v, i)) != 0) {
                return -1;
            }
        }
        puts_(b, "]");
        return 0;
    case JSON_OBJECT:
        puts_(b, "{");
        json_object_foreach((json_t *)v, key, val)
        {
            json_t *k = json_string(key);
            puts_(b, first ? "" : ",");
            first = false;
            if (k == NULL) {
                oom(e);
                return -1;
            }
            put_string(b, k);
            json_decref(k);
            puts_(b, ":");
            if (put_json(e, b, val) != 0) {
                return -1;
            }
        }
        puts_(b, "}");
        return 0;
    default:
        puts_(b, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
        return 0;
    }
}

/* ---- Functions (the specification's "Built-in Functions") ----------------------------------- */

enum {
    A_NUM = 1,
    A_STR = 2,
    A_BOOL = 4,
    A_NULL = 8,
    A_ARR = 16,
    A_OBJ = 32,
    A_EXPREF = 64,
    A_ARR_NUM = 128, /* an array of numbers only */
    A_ARR_STR = 256, /* an array of strings only */
    A_ANY = A_NUM | A_STR | A_BOOL | A_NULL | A_ARR | A_OBJ,
};

struct arg {
    json_t *v;               /* NULL for an expression reference */
    const struct node *expr; /* the & expression's body */
};

typedef json_t *(*fn_impl)(struct eval *e, const struct arg *a, size_t n);

struct function {
    const char *name;
    size_t min, max;   /* max SIZE_MAX: variadic */
    unsigned types[2]; /* of the first argument and of the others */
    fn_impl impl;
};

static json_t *fn_abs(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    if (json_is_integer(a[0].v) && json_integer_value(a[0].v) != LLONG_MIN) {
        json_int_t x = json_integer_value(a[0].v);
        return json_integer(x < 0 ? -x : x);
    }
    json_t *v = json_real(fabs(json_number_value(a[0].v)));
    return v != NULL ? v : oom(e);
}

static json_t *fn_ceil_floor(struct eval *e, const struct arg *a, bool up)
{
    if (json_is_integer(a[0].v)) {
        return json_incref(a[0].v);
    }
    double d = up ? ceil(json_real_value(a[0].v)) : floor(json_real_value(a[0].v));
    json_t *v = fabs(d) < 9.2e18 ? json_integer((json_int_t)d) : json_real(d);
    return v != NULL ? v : oom(e);
}

static json_t *fn_ceil(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return fn_ceil_floor(e, a, true);
}

static json_t *fn_floor(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return fn_ceil_floor(e, a, false);
}

/* sum and avg: whole numbers add up exactly while they fit, as Python's integers. */
static json_t *sum(struct eval *e, json_t *arr, bool average)
{
    json_int_t isum = 0;
    double dsum = 0;
    bool exact = true;
    size_t count = json_array_size(arr);

    if (tick(e, count) != 0) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *x = json_array_get(arr, i);
        dsum += json_number_value(x);
        exact = exact && json_is_integer(x) &&
                !__builtin_add_overflow(isum, json_integer_value(x), &isum);
    }
    if (average) {
        json_t *v = count == 0 ? json_null() : json_real(dsum / (double)count);
        return v != NULL ? v : oom(e);
    }
    json_t *v = exact ? json_integer(isum) : json_real(dsum);
    return v != NULL ? v : oom(e);
}

static json_t *fn_sum(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return sum(e, a[0].v, false);
}

static json_t *fn_avg(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return sum(e, a[0].v, true);
}

static json_t *fn_contains(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    if (json_is_string(a[0].v)) {
        if (!json_is_string(a[1].v)) {
            efail(e, "invalid-type: contains() on a string searches for a string, not %s",
                  type_name(a[1].v));
            return NULL;
        }
        return json_boolean(strstr(json_string_value(a[0].v), json_string_value(a[1].v)) != NULL);
    }
    for (size_t i = 0; i < json_array_size(a[0].v); i++) {
        int r = equal(e, json_array_get(a[0].v, i), a[1].v);
        if (r != 0) {
            return r < 0 ? NULL : json_true();
        }
    }
    return json_false();
}

static json_t *affix(const struct arg *a, bool end)
{
    size_t ns = json_string_length(a[0].v), np = json_string_length(a[1].v);
    const char *s = json_string_value(a[0].v);

    if (np > ns) {
        return json_false();
    }
    return json_boolean(memcmp(end ? s + ns - np : s, json_string_value(a[1].v), np) == 0);
}

static json_t *fn_starts_with(struct eval *e, const struct arg *a, size_t n)
{
    (void)e;
    (void)n;
    return affix(a, false);
}

static json_t *fn_ends_with(struct eval *e, const struct arg *a, size_t n)
{
    (void)e;
    (void)n;
    return affix(a, true);
}

static json_t *fn_join(struct eval *e, const struct arg *a, size_t n)
{
    struct buf b = {0};
    json_t *out = NULL;

    (void)n;
    if (tick(e, json_array_size(a[1].v)) != 0) {
        return NULL;
    }
    puts_(&b, "");
    for (size_t i = 0; i < json_array_size(a[1].v); i++) {
        json_t *s = json_array_get(a[1].v, i);
        if (i > 0) {
            put(&b, json_string_value(a[0].v), json_string_length(a[0].v));
        }
        put(&b, json_string_value(s), json_string_length(s));
    }
    out = b.failed ? NULL : json_stringn(b.data, b.len);
    free(b.data);
    return out != NULL ? out : oom(e);
}

/* keys() and values(), in the object's order. */
static json_t *members(struct eval *e, json_t *obj, bool keys)
{
    json_t *out = json_array();
    const char *key;
    json_t *val;

    if (out == NULL || tick(e, json_object_size(obj)) != 0) {
        json_decref(out);
        return out == NULL ? oom(e) : NULL;
    }
    json_object_foreach(obj, key, val)
    {
        if (add(e, out, keys ? json_string(key) : json_incref(val)) != 0) {
            json_decref(out);
            return oom(e);
        }
    }
    return out;
}

static json_t *fn_keys(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return members(e, a[0].v, true);
}

static json_t *fn_values(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return members(e, a[0].v, false);
}

static json_t *fn_length(struct eval *e, const struct arg *a, size_t n)
{
    size_t count = 0;

    (void)e;
    (void)n;
    if (json_is_string(a[0].v)) {
        const char *s = json_string_value(a[0].v);
        for (size_t i = 0; i < json_string_length(a[0].v); i++) {
            count += ((unsigned char)s[i] & 0xc0) != 0x80;
        }
    } else {
        count = json_is_array(a[0].v) ? json_array_size(a[0].v) : json_object_size(a[0].v);
    }
    return json_integer((json_int_t)count);
}

static json_t *fn_map(struct eval *e, const struct arg *a, size_t n)
{
    json_t *out = json_array();

    (void)n;
    if (out == NULL) {
        return oom(e);
    }
    for (size_t i = 0; i < json_array_size(a[1].v); i++) {
        if (add(e, out, eval(e, a[0].expr, json_array_get(a[1].v, i))) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *fn_merge(struct eval *e, const struct arg *a, size_t n)
{
    json_t *out = json_object();

    if (out == NULL) {
        return oom(e);
    }
    for (size_t i = 0; i < n; i++) {
        if (tick(e, json_object_size(a[i].v)) != 0 || json_object_update(out, a[i].v) != 0) {
            json_decref(out);
            return e->err->message[0] != '\0' ? NULL : oom(e);
        }
    }
    return out;
}

static json_t *fn_not_null(struct eval *e, const struct arg *a, size_t n)
{
    (void)e;
    for (size_t i = 0; i < n; i++) {
        if (!json_is_null(a[i].v)) {
            return json_incref(a[i].v);
        }
    }
    return json_null();
}

static json_t *fn_reverse(struct eval *e, const struct arg *a, size_t n)
{
    json_t *out = NULL;
    size_t len = json_is_string(a[0].v) ? json_string_length(a[0].v) : json_array_size(a[0].v);

    (void)n;
    if (tick(e, len) != 0) {
        return NULL;
    }
    if (json_is_string(a[0].v)) {
        const unsigned char *s = (const unsigned char *)json_string_value(a[0].v);
        char *r = malloc(len + 1);
        size_t w = len;
        if (r == NULL) {
            return oom(e);
        }
        for (size_t i = 0, cl = 0; i < len; i += cl) {
            utf8_next(s + i, &cl);
            w -= cl;
            memcpy(r + w, s + i, cl);
        }
        out = json_stringn(r, len);
        free(r);
        return out != NULL ? out : oom(e);
    }
    out = json_array();
    for (size_t i = len; out != NULL && i > 0; i--) {
        if (add(e, out, json_incref(json_array_get(a[0].v, i - 1))) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out != NULL ? out : oom(e);
}

static json_t *fn_to_array(struct eval *e, const struct arg *a, size_t n)
{
    json_t *out = NULL;

    (void)n;
    if (json_is_array(a[0].v)) {
        return json_incref(a[0].v);
    }
    out = json_array();
    if (out == NULL || add(e, out, json_incref(a[0].v)) != 0) {
        json_decref(out);
        return oom(e);
    }
    return out;
}

static json_t *fn_to_string(struct eval *e, const struct arg *a, size_t n)
{
    struct buf b = {0};
    json_t *out = NULL;

    (void)n;
    if (json_is_string(a[0].v)) {
        return json_incref(a[0].v);
    }
    if (put_json(e, &b, a[0].v) != 0) {
        free(b.data);
        return NULL;
    }
    out = b.failed ? NULL : json_stringn(b.data, b.len);
    free(b.data);
    return out != NULL ? out : oom(e);
}

/* A string as Python's int(), else float(), reads it: surrounding whitespace allowed; else null. */
static json_t *fn_to_number(struct eval *e, const struct arg *a, size_t n)
{
    const char *s = NULL;
    char *end = NULL;
    size_t len;
    double d;

    (void)n;
    if (json_is_number(a[0].v)) {
        return json_incref(a[0].v);
    }
    if (!json_is_string(a[0].v)) {
        return json_null();
    }
    s = json_string_value(a[0].v);
    s += strspn(s, " \t\n\r\v\f");
    len = strlen(s);
    while (len > 0 && strchr(" \t\n\r\v\f", s[len - 1]) != NULL) {
        len--;
    }
    if (len == 0 || strspn(s, "0123456789+-.eE") < len) {
        return json_null();
    }
    if (strspn(s + (s[0] == '-' || s[0] == '+'), "0123456789") + (s[0] == '-' || s[0] == '+') ==
        len) {
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (errno == 0 && end == s + len) {
            json_t *v = json_integer(i);
            return v != NULL ? v : oom(e);
        }
    }
    errno = 0;
    d = strtod(s, &end);
    if (end != s + len || !isfinite(d)) {
        return json_null();
    }
    json_t *v = json_real(d);
    return v != NULL ? v : oom(e);
}

static json_t *fn_type(struct eval *e, const struct arg *a, size_t n)
{
    (void)e;
    (void)n;
    return json_string(type_name(a[0].v));
}

/* ---- sort, sort_by, max, min, max_by, min_by: on numbers or on strings ---------------------- */

struct keyed {
    json_t *value;
    json_t *key;
    size_t index;
};

static int key_cmp(const json_t *a, const json_t *b)
{
    return json_is_string(a) ? str_cmp(a, b) : num_cmp(a, b);
}

/* Stable: equal keys keep their order. */
static int keyed_cmp(const void *pa, const void *pb)
{
    const struct keyed *a = pa, *b = pb;
    int c = key_cmp(a->key, b->key);
    return c != 0 ? c : (a->index > b->index) - (a->index < b->index);
}

/* The elements of arr with their keys (the elements, or expr applied to them), which must all be
 * numbers or all strings. */
static struct keyed *keyed_items(struct eval *e, json_t *arr, const struct node *expr,
                                 const char *fn)
{
    size_t count = json_array_size(arr);
    struct keyed *k = calloc(count + 1, sizeof *k);

    if (k == NULL || tick(e, count) != 0) {
        free(k);
        return k == NULL ? (struct keyed *)oom(e) : NULL;
    }
    for (size_t i = 0; i < count; i++) {
        k[i].value = json_array_get(arr, i);
        k[i].index = i;
        k[i].key = expr != NULL ? eval(e, expr, k[i].value) : json_incref(k[i].value);
        if (k[i].key == NULL) {
            goto fail;
        }
        if ((!json_is_number(k[i].key) && !json_is_string(k[i].key)) ||
            (i > 0 && json_is_string(k[i].key) != json_is_string(k[0].key))) {
            efail(e, "invalid-type: %s() compares numbers or strings, not %s%s%s", fn,
                  type_name(k[i].key), i > 0 ? " with " : "", i > 0 ? type_name(k[0].key) : "");
            goto fail;
        }
    }
    return k;
fail:
    for (size_t i = 0; i < count; i++) {
        json_decref(k[i].key);
    }
    free(k);
    return NULL;
}

static void keyed_free(struct keyed *k, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        json_decref(k[i].key);
    }
    free(k);
}

static json_t *sort(struct eval *e, json_t *arr, const struct node *expr, const char *fn)
{
    size_t count = json_array_size(arr);
    struct keyed *k = keyed_items(e, arr, expr, fn);
    json_t *out = NULL;

    if (k == NULL) {
        return NULL;
    }
    qsort(k, count, sizeof *k, keyed_cmp);
    out = json_array();
    for (size_t i = 0; out != NULL && i < count; i++) {
        if (add(e, out, json_incref(k[i].value)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    keyed_free(k, count);
    return out != NULL ? out : e->err->message[0] != '\0' ? NULL : oom(e);
}

/* The first greatest (sign 1) or least (sign -1) element; null for an empty array. */
static json_t *extreme(struct eval *e, json_t *arr, const struct node *expr, int sign,
                       const char *fn)
{
    size_t count = json_array_size(arr);
    struct keyed *k = NULL;
    size_t best = 0;
    json_t *out = NULL;

    if (count == 0) {
        return json_null();
    }
    k = keyed_items(e, arr, expr, fn);
    if (k == NULL) {
        return NULL;
    }
    for (size_t i = 1; i < count; i++) {
        if (key_cmp(k[i].key, k[best].key) * sign > 0) {
            best = i;
        }
    }
    out = json_incref(k[best].value);
    keyed_free(k, count);
    return out;
}

static json_t *fn_sort(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return sort(e, a[0].v, NULL, "sort");
}

static json_t *fn_sort_by(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return sort(e, a[0].v, a[1].expr, "sort_by");
}

static json_t *fn_max(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return extreme(e, a[0].v, NULL, 1, "max");
}

static json_t *fn_min(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return extreme(e, a[0].v, NULL, -1, "min");
}

static json_t *fn_max_by(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return extreme(e, a[0].v, a[1].expr, 1, "max_by");
}

static json_t *fn_min_by(struct eval *e, const struct arg *a, size_t n)
{
    (void)n;
    return extreme(e, a[0].v, a[1].expr, -1, "min_by");
}

/* ---- The function table and the call -------------------------------------------------------- */

#define VARIADIC SIZE_MAX

static const struct function functions[] = {
    {"abs", 1, 1, {A_NUM, 0}, fn_abs},
    {"avg", 1, 1, {A_ARR_NUM, 0}, fn_avg},
    {"ceil", 1, 1, {A_NUM, 0}, fn_ceil},
    {"contains", 2, 2, {A_ARR | A_STR, A_ANY}, fn_contains},
    {"ends_with", 2, 2, {A_STR, A_STR}, fn_ends_with},
    {"floor", 1, 1, {A_NUM, 0}, fn_floor},
    {"join", 2, 2, {A_STR, A_ARR_STR}, fn_join},
    {"keys", 1, 1, {A_OBJ, 0}, fn_keys},
    {"length", 1, 1, {A_STR | A_ARR | A_OBJ, 0}, fn_length},
    {"map", 2, 2, {A_EXPREF, A_ARR}, fn_map},
    {"max", 1, 1, {A_ARR_NUM | A_ARR_STR, 0}, fn_max},
    {"max_by", 2, 2, {A_ARR, A_EXPREF}, fn_max_by},
    {"merge", 1, VARIADIC, {A_OBJ, A_OBJ}, fn_merge},
    {"min", 1, 1, {A_ARR_NUM | A_ARR_STR, 0}, fn_min},
    {"min_by", 2, 2, {A_ARR, A_EXPREF}, fn_min_by},
    {"not_null", 1, VARIADIC, {A_ANY, A_ANY}, fn_not_null},
    {"reverse", 1, 1, {A_STR | A_ARR, 0}, fn_reverse},
    {"sort", 1, 1, {A_ARR_NUM | A_ARR_STR, 0}, fn_sort},
    {"sort_by", 2, 2, {A_ARR, A_EXPREF}, fn_sort_by},
    {"starts_with", 2, 2, {A_STR, A_STR}, fn_starts_with},
    {"sum", 1, 1, {A_ARR_NUM, 0}, fn_sum},
    {"to_array", 1, 1, {A_ANY, 0}, fn_to_array},
    {"to_number", 1, 1, {A_ANY, 0}, fn_to_number},
    {"to_string", 1, 1, {A_ANY, 0}, fn_to_string},
    {"type", 1, 1, {A_ANY, 0}, fn_type},
    {"values", 1, 1, {A_OBJ, 0}, fn_values},
};

static int function_index(const char *name)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        if (strcmp(functions[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool function_arity_ok(int fn, size_t nargs)
{
    return nargs >= functions[fn].min && nargs <= functions[fn].max;
}

static const char *function_arity(int fn)
{
    const struct function *f = &functions[fn];
    if (f->max == VARIADIC) {
        return "at least 1 argument";
    }
    return f->min == 1 ? "1 argument" : "2 arguments";
}

static bool all_of(const json_t *arr, bool (*is)(const json_t *))
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (!is(json_array_get(arr, i))) {
            return false;
        }
    }
    return true;
}

static bool is_number(const json_t *v)
{
    return json_is_number(v);
}

static bool is_string(const json_t *v)
{
    return json_is_string(v);
}

static bool type_ok(const struct arg *a, unsigned types)
{
    if (a->v == NULL) {
        return (types & A_EXPREF) != 0;
    }
    switch (json_typeof(a->v)) {
    case JSON_INTEGER:
    case JSON_REAL:
        return (types & A_NUM) != 0;
    case JSON_STRING:
        return (types & A_STR) != 0;
    case JSON_TRUE:
    case JSON_FALSE:
        return (types & A_BOOL) != 0;
    case JSON_NULL:
        return (types & A_NULL) != 0;
    case JSON_OBJECT:
        return (types & A_OBJ) != 0;
    default:
        return (types & A_ARR) != 0 || ((types & A_ARR_NUM) && all_of(a->v, is_number)) ||
               ((types & A_ARR_STR) && all_of(a->v, is_string));
    }
}

static json_t *call_function(struct eval *e, const struct node *n, json_t *v)
{
    const struct function *f = &functions[n->op];
    struct arg *args = calloc(n->n, sizeof *args);
    json_t *out = NULL;
    size_t i;

    if (args == NULL) {
        return oom(e);
    }
    for (i = 0; i < n->n; i++) {
        unsigned types = f->types[i == 0 ? 0 : 1];
        if (n->kids[i]->kind == N_EXPREF) {
            args[i].expr = n->kids[i]->kids[0];
        } else if ((args[i].v = eval(e, n->kids[i], v)) == NULL) {
            goto out;
        }
        if (!type_ok(&args[i], types)) {
            efail(e, "invalid-type: %s() does not take %s as argument %zu", f->name,
                  args[i].v == NULL ? "an expression reference" : type_name(args[i].v), i + 1);
            i++;
            goto out;
        }
    }
    out = f->impl(e, args, n->n);
out:
    for (size_t j = 0; j < i; j++) {
        json_decref(args[j].v);
    }
    free(args);
    return out;
}
