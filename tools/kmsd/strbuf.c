/* A growing text buffer (strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kmsd_strbuf_add(kmsd_strbuf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 256 : b->cap;
        while (b->len + n + 1 > cap) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void kmsd_strbuf_str(kmsd_strbuf *b, const char *s)
{
    kmsd_strbuf_add(b, s, strlen(s));
}

char *kmsd_strbuf_take(kmsd_strbuf *b)
{
    char *p = b->p;
    if (b->oom || p == NULL) {
        free(p);
        p = NULL;
    }
    memset(b, 0, sizeof *b);
    return p;
}

int kmsd_strbuf_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}
