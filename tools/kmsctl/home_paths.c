/* Output paths that kmsctl refuses: the KMS home's own files. An encrypt -o into HOME/audit
 * plants a file among the trail's segments, one onto HOME/kms.db replaces the database; either
 * breaks the home for everyone. The path is resolved as the kernel will resolve it (realpath of
 * its directory, so symlinks and ".." do not hide where it points) and compared with the
 * resolved home. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "kms/kms.h"
#include "kmsctl.h"

/* The home's directories, refused with everything under them. */
static const char *const HOME_DIRS[] = {"audit", "hsm"};
/* The home's files: the database (with SQLite's companions), and what init writes beside it. */
static const char *const HOME_FILES[] = {
    "kms.db",      "kms.db-wal", "kms.db-shm", "kms.db-journal", "config.json",
    "credentials", "pin",        "so-pin",     "hsm.lock",
};

/* What of home (resolved) the resolved path p is, or NULL when it is none of the home's own;
 * *dir tells a directory of the home from one of its files. */
static const char *home_part(const char *home, const char *p, bool *dir)
{
    size_t n = strlen(home);

    *dir = false;
    if (strncmp(p, home, n) != 0 || p[n] != '/') {
        return NULL;
    }
    p += n + 1;
    for (size_t i = 0; i < sizeof HOME_DIRS / sizeof HOME_DIRS[0]; i++) {
        size_t d = strlen(HOME_DIRS[i]);
        if (strncmp(p, HOME_DIRS[i], d) == 0 && (p[d] == '\0' || p[d] == '/')) {
            *dir = true;
            return HOME_DIRS[i];
        }
    }
    for (size_t i = 0; i < sizeof HOME_FILES / sizeof HOME_FILES[0]; i++) {
        if (strcmp(p, HOME_FILES[i]) == 0) {
            return HOME_FILES[i];
        }
    }
    return NULL;
}

/* path as it will be written: the realpath of its directory joined with its last component
 * (which the envelope calls replace by a rename, not follow), or path itself resolved when that
 * last component is "." or "..". false when the directory does not resolve (nothing can be
 * written there then). */
static bool resolve_parent(const char *path, char out[PATH_MAX])
{
    char *d = strdup(path);
    char *b = strdup(path);
    char dir[PATH_MAX];
    bool ok = false;

    if (d != NULL && b != NULL && realpath(dirname(d), dir) != NULL) {
        const char *base = basename(b);
        if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0) {
            ok = realpath(path, out) != NULL;
        } else {
            ok = (size_t)snprintf(out, PATH_MAX, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base) <
                 PATH_MAX;
        }
    }
    free(d);
    free(b);
    return ok;
}

int kmsctl_check_output(const struct command *cmd, const struct globals *g, const char *opt,
                        const char *path)
{
    const char *home = g->home != NULL ? g->home : kms_home_default();
    char home_real[PATH_MAX];
    char where[PATH_MAX];
    const char *part = NULL;
    bool dir = false;

    if (path == NULL || strcmp(path, "-") == 0 || home == NULL ||
        realpath(home, home_real) == NULL) {
        return KMSCTL_EXIT_OK; /* standard output, or no home to protect */
    }
    if (resolve_parent(path, where)) {
        part = home_part(home_real, where, &dir);
    }
    /* An existing output that is a symlink: where it points counts too. */
    if (part == NULL && realpath(path, where) != NULL) {
        part = home_part(home_real, where, &dir);
    }
    /* A hard link to a file of the home has a name outside it: an existing output with other
     * links is refused, as writing it in place would write that file too. */
    struct stat sb;
    if (part == NULL && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink > 1) {
        return kmsctl_usage_error(cmd,
                                  "argument --%s: '%s' has %ju hard links: it may be another name "
                                  "of a file kmsctl must not write (the home's database, trail or "
                                  "token); remove it or choose a new file",
                                  opt, path, (uintmax_t)sb.st_nlink);
    }
    if (part == NULL) {
        return KMSCTL_EXIT_OK;
    }
    return kmsctl_usage_error(cmd,
                              "argument --%s: '%s' resolves to %s, %s %s/%s%s: kmsctl does not "
                              "write into the home's audit trail, HSM token directory, database "
                              "or configuration; choose a path outside them",
                              opt, path, where,
                              dir ? "inside the KMS home's directory" : "the KMS home's own file",
                              home_real, part, dir ? "/" : "");
}
