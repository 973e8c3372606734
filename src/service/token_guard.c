/* SoftHSM2's token file, kept from a killed login (README "Security": SoftHSM2's token file).
 *
 * SoftHSM2 rewrites HOME/hsm/tokens/UUID/token.object in place (truncate, then write) at every
 * login. A process killed in between leaves it empty, the token then looks absent, and every key
 * of the home is lost with it. So after every successful open the file is copied, atomically, to
 * HOME/hsm/token-backup/UUID; before every open a token.object that is missing or empty is put
 * back from that copy. Both run under HOME/hsm.lock, which every process opening the token holds
 * through its login (kms_hsm_config.open_lock_path). The copy is the token file as SoftHSM2
 * keeps it (its PIN blobs are encrypted under the PINs), in a directory as private as the
 * token's. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/home_check.h"
#include "util/util.h"

#define TOKEN_FILE "token.object"
#define BACKUP_DIR "hsm/token-backup"
#define TOKEN_MAX (1024 * 1024)

typedef int (*token_fn)(const char *token_file, const char *backup_file);

/* Puts token_file back from backup_file when it is missing or empty and the copy is not. */
static int restore_one(const char *token_file, const char *backup_file)
{
    struct stat st, bst;
    if ((stat(token_file, &st) == 0 && st.st_size > 0) || stat(backup_file, &bst) != 0 ||
        bst.st_size == 0) {
        return 0;
    }
    char *data = NULL;
    size_t len = 0;
    int r = kms_file_read(backup_file, TOKEN_MAX, &data, &len);
    if (r == 0) {
        r = kms_file_write_atomic(token_file, data, len, 0600);
    }
    free(data);
    return r;
}

/* Copies token_file to backup_file when it differs from the copy: not when it is empty, nor
 * when two reads of it differ (another program, such as pkcs11-tool, rewriting it without the
 * lock). */
static int backup_one(const char *token_file, const char *backup_file)
{
    char *data = NULL, *again = NULL, *old = NULL;
    size_t len = 0, again_len = 0, old_len = 0;
    int r = kms_file_read(token_file, TOKEN_MAX, &data, &len);
    if (r == 0) {
        r = kms_file_read(token_file, TOKEN_MAX, &again, &again_len);
    }
    if (r == 0 && len > 0 && again_len == len && memcmp(again, data, len) == 0) {
        bool have = kms_file_read(backup_file, TOKEN_MAX, &old, &old_len) == 0;
        kms_error_clear();
        if (!have || old_len != len || memcmp(old, data, len) != 0) {
            r = kms_file_write_atomic(backup_file, data, len, 0600);
        }
    }
    free(old);
    free(again);
    free(data);
    return r;
}

/* fn for each token folder of HOME/hsm/tokens, under HOME/hsm.lock. */
static int each_token(const char *home, const char *lock, token_fn fn)
{
    char *tokens = kms_path_join(home, "hsm/tokens");
    char *backups = kms_path_join(home, BACKUP_DIR);
    int lock_fd = -1;
    DIR *d = NULL;
    int r = tokens == NULL || backups == NULL ? kms_raise(KMS_ERR_INTERNAL, "out of memory")
                                              : kms_file_lock(lock, true, &lock_fd);
    if (r == 0 && mkdir(backups, 0700) != 0 && errno != EEXIST) {
        r = kms_raise(KMS_ERR_HOME, "cannot create %s: %s", backups, strerror(errno));
    }
    if (r == 0 && (d = opendir(tokens)) == NULL) {
        r = kms_raise(KMS_ERR_HOME, "cannot read %s: %s", tokens, strerror(errno));
    }
    struct dirent *e;
    while (r == 0 && d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char *token_file = kms_strdup_printf("%s/%s/" TOKEN_FILE, tokens, e->d_name);
        char *backup_file = kms_strdup_printf("%s/%s", backups, e->d_name);
        r = token_file != NULL && backup_file != NULL
                ? fn(token_file, backup_file)
                : kms_raise(KMS_ERR_INTERNAL, "out of memory");
        free(token_file);
        free(backup_file);
    }
    if (d != NULL) {
        closedir(d);
    }
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    free(tokens);
    free(backups);
    return r;
}

int kms_home_token_restore(const char *home, const kms_config *cfg, const char *lock)
{
    return cfg->softhsm_conf != NULL ? each_token(home, lock, restore_one) : 0;
}

int kms_home_token_backup(const char *home, const kms_config *cfg, const char *lock)
{
    return cfg->softhsm_conf != NULL ? each_token(home, lock, backup_one) : 0;
}
