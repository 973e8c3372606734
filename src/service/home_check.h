/* Checks of a KMS home before it is trusted (home_check.c). Private to src/service. */
#ifndef KMS_SERVICE_HOME_CHECK_H
#define KMS_SERVICE_HOME_CHECK_H

#include "hsm/hsm.h"
#include "service/client.h"

/* OpenSSH's StrictModes for a KMS home, before any of its files is trusted
 * (kms_client_config_load checks the home and config.json, the PIN file is checked where it is
 * read): the credentials, the audit, hsm and token directories belong to the caller and are not
 * writable by group or others; the SoftHSM2 token directory lies inside the home (a copied home
 * is refused, with the command that gives it its own token); the PKCS#11 module is a trusted
 * file (kms_file_check_trusted), and cfg->pkcs11_module becomes its resolved path.
 * KMSHomeException saying what to fix. */
int kms_home_check_files(const char *home, kms_config *cfg) __attribute__((warn_unused_result));
/* kms_home_check_files in report mode (kmsctl advisor): each failed check calls problem(arg,
 * name) with its error raised (the message names the path and the chmod or chown that fixes it;
 * name: the entry of the home, or the module's path); problem returns 0 to go on, -1 to stop.
 * problem NULL: kms_home_check_files. */
typedef int (*kms_home_problem_fn)(void *arg, const char *name);
int kms_home_check_files_report(const char *home, kms_config *cfg, kms_home_problem_fn problem,
                                void *arg) __attribute__((warn_unused_result));
/* The token holds the home id of cfg (init stored it); a home without one (made before home
 * ids) passes. KMSHomeException when the token belongs to another home or holds no id. */
int kms_home_check_token(kms_hsm *hsm, const kms_config *cfg, const char *home)
    __attribute__((warn_unused_result));
/* For init: refuses (KMSHomeException) a token that already holds a home id, else stores
 * cfg->home_id in it. */
int kms_home_claim_token(kms_hsm *hsm, const kms_config *cfg) __attribute__((warn_unused_result));
/* One SoftHSM2 home per process. SoftHSM2 reads SOFTHSM2_CONF when its module is initialised,
 * and every home's token is labelled "kms", so a process serves one SoftHSM2 home at a time:
 * a home that names a SoftHSM2 configuration (softhsm_conf not NULL) claims the process for it
 * and sets SOFTHSM2_CONF. KMSHomeException naming both homes when another home's configuration
 * (compared as resolved paths) holds the process; the same home may be opened again. A home
 * whose module is configured otherwise (softhsm_conf NULL: a real HSM) is not tracked (*claimed
 * false). The claim ends with kms_home_softhsm_release once every handle of the home is closed.
 * Thread-safe. */
int kms_home_softhsm_claim(const char *home, const char *softhsm_conf, bool *claimed)
    __attribute__((warn_unused_result));
void kms_home_softhsm_release(bool claimed);

/* SoftHSM2's token file kept from a killed login (token_guard.c): before the token is opened, a
 * missing or empty HOME/hsm/tokens/UUID/token.object is put back from HOME/hsm/token-backup/UUID;
 * after it was opened, the copy is refreshed. Both under `lock` (HOME/hsm.lock); nothing for a
 * home whose HSM is not SoftHSM2. */
int kms_home_token_restore(const char *home, const kms_config *cfg, const char *lock)
    __attribute__((warn_unused_result));
int kms_home_token_backup(const char *home, const kms_config *cfg, const char *lock)
    __attribute__((warn_unused_result));

#endif
