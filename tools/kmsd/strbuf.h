/* A growing text buffer for kmsd's writers (the query protocol's XML, /metrics): appends never
 * fail on the spot; an allocation failure is remembered and kmsd_strbuf_take then gives NULL. */
#ifndef KMSD_STRBUF_H
#define KMSD_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kmsd_strbuf {
    char *p;
    size_t len, cap;
    bool oom;
} kmsd_strbuf;

/* Appends n bytes of s (the text stays NUL-terminated). */
void kmsd_strbuf_add(kmsd_strbuf *b, const char *s, size_t n);
void kmsd_strbuf_str(kmsd_strbuf *b, const char *s);
/* Takes the text out of b (malloc'd; NULL when an allocation failed) and empties b. */
char *kmsd_strbuf_take(kmsd_strbuf *b);

/* Writes a message into the caller's err[errlen] (when err is not NULL) and returns rc: the
 * parsers' and loaders' way of saying what was wrong. */
int kmsd_strbuf_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
