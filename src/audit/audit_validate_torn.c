/* validate-logs, pass 6: every file in torn/ is the bytes an AuditLogRepaired record names
 * (audit.h "Durability, group commit, crash"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_validator.h"
#include "util/util.h"

/* ---- torn/ ---------------------------------------------------------------------------------- */

/* "SEGMENT-OFFSET" or "SEGMENT-OFFSET.K" (audit.h "On disk": dir/torn/), SEGMENT the file name
 * of a segment; *file gets "segments/SEGMENT". */
static bool parse_torn_name(const char *name, char file[NAME_MAX_LEN], int64_t *offset)
{
    const size_t seg_len = NAME_DIGITS + sizeof ".jsonl" - 1;
    char seg[NAME_DIGITS + sizeof ".jsonl"];
    int64_t number;
    if (strlen(name) < seg_len + 2 || name[seg_len] != '-') {
        return false;
    }
    memcpy(seg, name, seg_len);
    seg[seg_len] = '\0';
    const char *p = name + seg_len + 1;
    size_t digits = strspn(p, "0123456789");
    const char *k = p + digits;
    /* At most 18 digits: any such number fits int64_t. */
    if (!kms_validator_parse_name(seg, ".jsonl", &number) || digits == 0 || digits > 18 ||
        (*k != '\0' &&
         (*k != '.' || k[1] == '\0' || strspn(k + 1, "0123456789") != strlen(k + 1)))) {
        return false;
    }
    *offset = strtoll(p, NULL, 10);
    snprintf(file, NAME_MAX_LEN, "segments/%s", seg);
    return true;
}

/* SHA-256 and length of the regular file fd. 0, or an errno value (EINVAL: not a regular file). */
static int hash_file(int fd, char hash[KMS_AUDIT_HASH_HEX + 1], uint64_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return EINVAL;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return ENOMEM;
    }
    int err = 0;
    char buf[8192];
    *len = 0;
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            err = k < 0 ? errno : 0;
            break;
        }
        if (EVP_DigestUpdate(md, buf, (size_t)k) != 1) {
            err = ENOMEM;
            break;
        }
        *len += (uint64_t)k;
    }
    uint8_t h[32];
    unsigned int hl = 0;
    if (err == 0 && EVP_DigestFinal_ex(md, h, &hl) != 1) {
        err = ENOMEM;
    }
    EVP_MD_CTX_free(md);
    if (err == 0) {
        kms_audit_hex_encode(h, sizeof h, hash);
    }
    return err;
}

/* A torn/ file must hold exactly the bytes an AuditLogRepaired record describes: one without
 * such a record is a repair that did not finish (the crash came before the record), or a file
 * put there. */
static void check_torn_file(validator *v, int dfd, const char *name)
{
    char file[NAME_MAX_LEN + 256], seg[NAME_MAX_LEN], hash[KMS_AUDIT_HASH_HEX + 1];
    int64_t offset;
    uint64_t len = 0;
    snprintf(file, sizeof file, "torn/%s", name);
    if (!parse_torn_name(name, seg, &offset)) {
        kms_validator_unexpected(v, "torn", name,
                                 "not the name of a torn line (a segment name, '-', an offset)");
        return;
    }
    int fd = kms_validator_open_trail_file(dfd, name);
    int err = fd < 0 ? (errno == ELOOP ? EINVAL : errno) : hash_file(fd, hash, &len);
    if (fd >= 0) {
        close(fd);
    }
    if (err == ENOMEM) {
        v->oom = true;
        return;
    }
    if (err == EINVAL) {
        kms_validator_unexpected(v, "torn", name, "not a regular file");
        return;
    }
    if (err != 0) {
        kms_validator_problem(v, &v->other, "missing", file, -1, 0, "%s cannot be read: %s", file,
                              strerror(err));
        return;
    }
    const repair *same = NULL;
    for (size_t i = 0; i < v->nreps; i++) {
        repair *p = &v->reps[i];
        if (strcmp(p->file, seg) != 0 || p->offset != offset) {
            continue;
        }
        if (!p->matched && (uint64_t)p->length == len && strcmp(p->sha256, hash) == 0) {
            p->matched = true;
            return;
        }
        same = same ? same : p;
    }
    if (same == NULL) {
        kms_validator_problem(
            v, &v->other, "unrecorded-repair", file, -1, 0,
            "%s holds %" PRIu64 " bytes cut from %s at offset %" PRId64 ", but no "
            "AuditLogRepaired record in the trail records that repair: the repair was "
            "interrupted, or the file was put there",
            file, len, seg, offset);
    } else {
        kms_validator_problem(
            v, &v->other, "unrecorded-repair", file, -1, 0,
            "%s (%" PRIu64 " bytes, SHA-256 %s) is not what the AuditLogRepaired record of %s "
            "at offset %" PRId64 " says was cut (%" PRId64 " bytes, SHA-256 %s): the file was "
            "changed or replaced",
            file, len, hash, seg, offset, same->length, same->sha256);
    }
}

/* torn/ exists once the writer has repaired a segment; without it there is nothing to check. */
void kms_validator_check_torn(validator *v)
{
    char *path = kms_path_join(v->dir, "torn");
    if (path == NULL) {
        v->oom = true;
        return;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (fd >= 0 && d == NULL) {
        err = errno;
        close(fd);
    }
    free(path);
    if (err == ENOTDIR || err == ELOOP) {
        kms_validator_problem(v, &v->other, "unexpected", "torn", -1, 0,
                              "torn is not a directory: it does not belong in the trail");
    } else if (err != 0 && err != ENOENT) {
        kms_validator_problem(v, &v->other, "missing", "torn/", -1, 0,
                              "the directory torn/ cannot be read: %s", strerror(err));
    }
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && !v->oom) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            check_torn_file(v, dirfd(d), e->d_name);
        }
    }
    closedir(d);
}
