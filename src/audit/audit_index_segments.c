/* The audit index's reading of segment files (audit_index_internal.h "Reading segments"): the
 * segments in name order, their lines, the hash of a first line. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/audit.h"
#include "audit/audit_index_internal.h"
#include "util/util.h"

#define NAME_DIGITS 20

bool kms_audit_index_segment_name(const char *s)
{
    return strlen(s) == KMS_AUDIT_SEGMENT_NAME_LEN && strspn(s, "0123456789") == NAME_DIGITS &&
           strcmp(s + NAME_DIGITS, ".jsonl") == 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const seg_entry *)a)->name, ((const seg_entry *)b)->name);
}

/* The segments in name order (20 zero-padded digits sort as numbers). */
int kms_audit_index_list_segments(const kms_audit_index *x, seg_entry **out, size_t *n)
{
    char *path = kms_path_join(x->dir, "segments");
    DIR *d = path ? opendir(path) : NULL;
    if (d == NULL) {
        kms_raise(KMS_ERR_AUDIT, "cannot read the audit segments %s: %s", path ? path : x->dir,
                  strerror(errno));
        free(path);
        return -1;
    }
    free(path);
    seg_entry *names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    struct stat st;
    int r = 0;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (!kms_audit_index_segment_name(e->d_name) || fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode)) {
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            seg_entry *p = realloc(names, cap * sizeof *names);
            if (p == NULL) {
                r = kms_raise(KMS_ERR_INTERNAL, "out of memory");
                break;
            }
            names = p;
        }
        seg_entry *s = &names[count++];
        memcpy(s->name, e->d_name, KMS_AUDIT_SEGMENT_NAME_LEN + 1);
        s->size = (int64_t)st.st_size;
        s->inode = (int64_t)st.st_ino;
        s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    closedir(d);
    if (r != 0) {
        free(names);
        return -1;
    }
    if (count > 1) {
        qsort(names, count, sizeof *names, cmp_name);
    }
    *out = names;
    *n = count;
    return 0;
}

/* Opens a segment for its complete lines from offset on (a partial last line is left until it
 * is complete; a line longer than any record comes with p NULL). */
int kms_audit_index_lines_open(const kms_audit_index *x, const char *segment, uint64_t offset,
                               kms_audit_lines *r)
{
    char *path = kms_strdup_printf("%s/segments/%s", x->dir, segment);
    int rc = kms_audit_lines_open(r, path, offset, NULL, false);
    if (rc != 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot read the audit segment %s: %s", path ? path : segment,
                  strerror(r->err));
    }
    free(path);
    return rc;
}

/* kms_audit_lines_next with a read error raised. */
int kms_audit_index_lines_next(kms_audit_lines *r, kms_audit_line *l)
{
    int rc = kms_audit_lines_next(r, l);
    if (rc < 0) {
        kms_raise(KMS_ERR_AUDIT, "cannot read an audit segment: %s", strerror(r->err));
    }
    return rc;
}

/* Hash of the segment's first complete line; "" if it has none or cannot be read (then it
 * matches no stored hash and the index is rebuilt, which reports the error if it persists). */
void kms_audit_index_first_line_hash(const kms_audit_index *x, const char *segment,
                                     char out[KMS_AUDIT_HASH_HEX + 1])
{
    kms_audit_lines r;
    kms_audit_line l;
    out[0] = '\0';
    if (kms_audit_index_lines_open(x, segment, 0, &r) == 0 &&
        kms_audit_index_lines_next(&r, &l) == 1) {
        kms_audit_sha256_hex(l.p ? l.p : "", l.p ? l.len : 0, out);
    }
    kms_audit_lines_close(&r);
    kms_error_clear();
}
