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
/* The token holds the home id of cfg (init stored it); a home without one (made before home
 * ids) passes. KMSHomeException when the token belongs to another home or holds no id. */
int kms_home_check_token(kms_hsm *hsm, const kms_config *cfg, const char *home)
    __attribute__((warn_unused_result));
/* For init: refuses (KMSHomeException) a token that already holds a home id, else stores
 * cfg->home_id in it. */
int kms_home_claim_token(kms_hsm *hsm, const kms_config *cfg) __attribute__((warn_unused_result));

#endif
