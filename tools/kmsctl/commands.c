/* The command table of kmsctl and the two ways a command runs: an AWS operation through
 * kms_call(), or a local handler (init). Request members follow the AWS KMS API reference. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "kms/kms.h"
#include "kmsctl.h"

/* ---- Option specs shared by several commands ---------------------------------------------- */

/* Older clang-format versions spread brace initializers in macros over many lines. */
/* clang-format off */
#define KEY_ID_HELP "key id, key ARN, alias name (alias/NAME) or alias ARN"

#define O_KEY_ID {"key-id", OPT_STRING, OPT_REQUIRED, "the KMS key: " KEY_ID_HELP}
#define O_KEY_ID_OPT                                                                               \
    {"key-id", OPT_STRING, 0,                                                                      \
     "the KMS key expected to have encrypted the blob (" KEY_ID_HELP "); "                         \
     "IncorrectKeyException if another key did"}
#define O_GRANT_TOKENS {"grant-tokens", OPT_LIST, 0, "grant tokens (space-separated list)"}
#define O_DRY_RUN                                                                                  \
    {"dry-run", OPT_BOOL, OPT_NO_FORM,                                                             \
     "check that the call would succeed (authorised, key usable) without doing it: "              \
     "DryRunOperationException if it would"}
#define O_BYPASS_LOCKOUT                                                                           \
    {"bypass-policy-lockout-safety-check", OPT_BOOL, OPT_NO_FORM,                                  \
     "skip the check that the new policy still lets you change it later (risky)"}
#define O_CONTEXT(name, what)                                                                      \
    {name, OPT_MAP, 0,                                                                             \
     what " encryption context: JSON {\"k\":\"v\"}, shorthand k=v,k2=v2, or file://PATH"}
#define O_ENC_ALG(name)                                                                            \
    {name, OPT_STRING, 0, "SYMMETRIC_DEFAULT (default), RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256"}
#define O_LIMIT {"limit", OPT_INTEGER, 0, "maximum number of items in the response (1-1000)"}
#define O_MARKER                                                                                   \
    {"marker", OPT_STRING, 0,                                                                      \
     "NextMarker of a --no-paginate response: one call from there (see --starting-token)"}
#define O_MESSAGE                                                                                  \
    {"message", OPT_BLOB, OPT_REQUIRED,                                               \
     "the message (blob: fileb://PATH or base64; at most 4096 bytes)"}
#define O_MESSAGE_TYPE                                                                             \
    {"message-type", OPT_STRING, 0, "RAW (default: KMS hashes the message) or DIGEST"}
#define O_SIGNING_ALG                                                                              \
    {"signing-algorithm", OPT_STRING, OPT_REQUIRED,                                                \
     "e.g. ECDSA_SHA_256, RSASSA_PSS_SHA_256, RSASSA_PKCS1_V1_5_SHA_256"}
#define O_MAC_ALG                                                                                  \
    {"mac-algorithm", OPT_STRING, OPT_REQUIRED,                                                    \
     "HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384 or HMAC_SHA_512"}
#define O_DATA_KEY_SPEC {"key-spec", OPT_STRING, 0, "AES_256 or AES_128 (or use --number-of-bytes)"}
#define O_NUMBER_OF_BYTES(what)                                                                    \
    {"number-of-bytes", OPT_INTEGER, 0, "length of the " what " in bytes (1-1024)"}
#define O_END {NULL, 0, 0, NULL}
/* clang-format on */

/* ---- Handlers ------------------------------------------------------------------------------- */

/* The library's error; a CiphertextBlob that is an envelope message gets the command to use. */
static int operation_error(json_t *request)
{
    const char *b64 = json_string_value(json_object_get(request, "CiphertextBlob"));
    unsigned char head[8192];
    size_t n = 0;
    char hint[1024] = "";
    if (b64 != NULL && sodium_base642bin(head, sizeof head, b64, strlen(b64), NULL, &n, NULL,
                                         sodium_base64_VARIANT_ORIGINAL) == 0) {
        kmsctl_ciphertext_hint(head, n, (long long)n, false, "FILE", hint, sizeof hint);
    }
    return kmsctl_service_error_hint(hint);
}

/* Every AWS command: the request JSON to kms_call, the response JSON printed. */
int kmsctl_run_operation(const struct command *cmd, const struct globals *g, json_t *request)
{
    int r = KMSCTL_EXIT_SERVICE;
    kms_client *client = NULL;
    char *body = NULL;
    char *response = NULL;
    bool handled = false;

    client = kmsctl_client_open(g);
    if (client == NULL) {
        r = kmsctl_service_error();
        goto out;
    }
    r = kmsctl_run_paginated(cmd, g, client, request, &handled);
    if (handled) {
        goto out;
    }
    body = json_dumps(request, JSON_COMPACT);
    if (body == NULL) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        goto out;
    }
    if (kms_call(client, cmd->operation, body, &response) != 0) {
        r = operation_error(request);
        goto out;
    }
    r = kmsctl_print_response(g, response);
out:
    if (response != NULL) {
        /* Decrypt and GenerateDataKey responses hold plaintexts. */
        sodium_memzero(response, strlen(response));
        kms_string_free(response);
    }
    kmsctl_free_secret_string(body);
    if (client != NULL) {
        kms_client_free(client);
    }
    return r;
}

static const char *member_string(json_t *request, const char *member)
{
    return json_string_value(json_object_get(request, member));
}

/* {"Home", "AccountId", "Region"} of a freshly created home, read back from its config.json so
 * that the defaults the library chose (random account id) are shown. */
static json_t *init_result(const char *home, const kms_init_options *o)
{
    char path[PATH_MAX + 16];
    char abs[PATH_MAX];
    json_t *config = NULL;
    json_t *result = NULL;
    const char *account = o->account_id;
    const char *region = o->region != NULL ? o->region : "us-east-1";

    if (realpath(home, abs) == NULL) {
        snprintf(abs, sizeof abs, "%s", home);
    }
    snprintf(path, sizeof path, "%s/config.json", abs);
    config = json_load_file(path, 0, NULL);
    if (json_is_string(json_object_get(config, "account_id"))) {
        account = json_string_value(json_object_get(config, "account_id"));
    }
    if (json_is_string(json_object_get(config, "region"))) {
        region = json_string_value(json_object_get(config, "region"));
    }
    result = json_pack("{s:s, s:s?, s:s, s:s, s:s}", "Home", abs, "AccountId", account, "Region",
                       region, "UserName", "admin", "Profile", "default");
    json_decref(config);
    return result;
}

/* rmdir of the directories make_parents made: from deepest up to and including top. */
static void remove_parents(const char *deepest, const char *top)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", deepest);
    for (;;) {
        (void)rmdir(path);
        char *last = strrchr(path, '/');
        if (strcmp(path, top) == 0 || last == NULL || last == path) {
            return;
        }
        *last = '\0';
    }
}

/* mkdir -p of the directories above home (mode 0700 each; existing ones are left as they are),
 * so that `init` can make a home anywhere. parent[] receives the directory above home and top[]
 * the highest one made ("" when none was), for remove_parents if the init then fails. 0, or -1
 * with errno set and nothing left made. */
static int make_parents(const char *home, char parent[PATH_MAX], char top[PATH_MAX])
{
    parent[0] = top[0] = '\0';
    if (snprintf(parent, PATH_MAX, "%s", home) >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') {
        parent[--n] = '\0';
    }
    char *last = strrchr(parent, '/');
    if (last == NULL || last == parent) {
        parent[0] = '\0';
        return 0; /* relative to the current directory, or directly under / */
    }
    *last = '\0';
    for (char *p = parent + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(parent, 0700) == 0 && top[0] == '\0') {
                snprintf(top, PATH_MAX, "%s", parent);
            } else if (errno != EEXIST && access(parent, F_OK) != 0) {
                int err = errno;
                if (top[0] != '\0') {
                    remove_parents(parent, top); /* what this call made, above the failure */
                }
                top[0] = '\0';
                errno = err;
                return -1;
            }
            if (end) {
                return 0;
            }
            *p = '/';
        }
    }
}

static int run_init(const struct command *cmd, const struct globals *g, json_t *request)
{
    int r = KMSCTL_EXIT_SERVICE;
    kms_init_options o = {0};
    const char *home = g->home != NULL ? g->home : kms_home_default();
    const char *pin_file = member_string(request, "PinFile");
    unsigned char *pin = NULL;
    size_t pin_len = 0;
    unsigned char *root_pw = NULL;
    size_t root_pw_len = 0;
    json_t *result = NULL;

    if (home == NULL) {
        return kmsctl_usage_error(cmd, "no KMS home: give --home DIR or set KMS_HOME");
    }
    o.region = member_string(request, "Region");
    o.account_id = member_string(request, "AccountId");
    o.pkcs11_module = member_string(request, "Pkcs11Module");
    o.token_label = member_string(request, "TokenLabel");
    if (pin_file != NULL) {
        if (kmsctl_read_file(cmd, "pin-file", pin_file, &pin, &pin_len) != 0) {
            r = KMSCTL_EXIT_USAGE;
            goto out;
        }
        /* The first line is the PIN. */
        pin[strcspn((char *)pin, "\r\n")] = '\0';
        o.pin = (const char *)pin;
    }
    const char *root_file = member_string(request, "RootPasswordFile");
    if (root_file != NULL) {
        if (kmsctl_read_file(cmd, "root-password-file", root_file, &root_pw, &root_pw_len) != 0) {
            r = KMSCTL_EXIT_USAGE;
            goto out;
        }
        root_pw[strcspn((char *)root_pw, "\r\n")] = '\0';
        o.root_password = (const char *)root_pw;
    }
    char parent[PATH_MAX], top[PATH_MAX];
    if (make_parents(home, parent, top) != 0) {
        char message[PATH_MAX + 128];
        snprintf(message, sizeof message, "cannot create the directories above %s: %s", home,
                 strerror(errno));
        r = kmsctl_error_json("KMSHomeException", message);
        goto out;
    }
    if (kms_home_init(home, &o) != 0) {
        r = kmsctl_service_error();
        if (top[0] != '\0') {
            remove_parents(parent, top); /* a refused init leaves nothing behind */
        }
        goto out;
    }
    result = init_result(home, &o);
    if (result == NULL) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        goto out;
    }
    r = kmsctl_print_value(g, result);
out:
    if (pin != NULL) {
        sodium_memzero(pin, pin_len);
        free(pin);
    }
    if (root_pw != NULL) {
        sodium_memzero(root_pw, root_pw_len);
        free(root_pw);
    }
    json_decref(result);
    return r;
}

/* ---- Option lists ---------------------------------------------------------------------------- */

static const struct opt_spec sign_in_opts[] = {
    {"user-name", OPT_STRING, 0, "the IAM user (default: the account's root user)"},
    {"password-file", OPT_PATH, 0,
     "file whose first line is the password (default: $KMS_PASSWORD, else a prompt)"},
    {"token-code", OPT_STRING, 0, "the current code of your MFA device (once one is enrolled)"},
    {"new-password-file", OPT_PATH, 0,
     "a new password, when the old one must be changed (reset required or expired)"},
    {"duration-seconds", OPT_INTEGER, 0, "session length, 900-43200 (default 43200; root 3600)"},
    {"save-profile", OPT_STRING, 0,
     "the profile the session is saved as (default: signin); a profile that holds a long-term "
     "access key (AKIA..., no session token) is not replaced without --force"},
    {"force", OPT_BOOL, 0,
     "replace the --save-profile profile even when it holds a long-term access key, whose "
     "secret is then lost unless kept elsewhere"},
    O_END,
};

static const struct opt_spec init_opts[] = {
    {"region", OPT_STRING, 0, "AWS-style region of the home's ARNs (default us-east-1)"},
    {"account-id", OPT_STRING, 0, "12-digit account id of the home's ARNs (default: random)"},
    {"pkcs11-module", OPT_STRING, 0,
     "PKCS#11 module (default: SoftHSM2; another module means an existing token is used)"},
    {"token-label", OPT_STRING, 0, "label of the HSM token (default kms)"},
    {"pin-file", OPT_STRING, 0,
     "file whose first line is the token's user PIN (default: a random PIN kept in HOME/pin)"},
    {"root-password-file", OPT_PATH, 0,
     "file whose first line is the root user's sign-in password (default: the root user cannot "
     "sign in; it has no access keys either)"},
    O_END,
};

static const struct opt_spec create_key_opts[] = {
    {"description", OPT_STRING, 0, "description of the key (up to 8192 characters)"},
    {"key-spec", OPT_STRING, 0,
     "SYMMETRIC_DEFAULT (default: AES-256), RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, "
     "ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, HMAC_224, HMAC_256, HMAC_384 or HMAC_512"},
    {"key-usage", OPT_STRING, 0,
     "ENCRYPT_DECRYPT (default for symmetric keys), SIGN_VERIFY (RSA and ECC keys), "
     "GENERATE_VERIFY_MAC (HMAC keys) or KEY_AGREEMENT (ECC_NIST_* keys: ECDH)"},
    {"origin", OPT_STRING, 0, "AWS_KMS (default; the only origin supported here)"},
    {"multi-region", OPT_BOOL, OPT_NO_FORM,
     "multi-Region key (not supported here: --multi-region fails with "
     "UnsupportedOperationException)"},
    {"policy", OPT_STRING, 0,
     "the key policy (JSON, usually file://policy.json); default: the AWS default key policy, "
     "which lets the account's IAM policies decide"},
    O_BYPASS_LOCKOUT,
    {"tags", OPT_LIST, 0,
     "tags of the new key: TagKey=K,TagValue=V TagKey=K2,TagValue=V2 (or JSON objects)"},
    O_END,
};

static const struct opt_spec key_id_only_opts[] = {O_KEY_ID, O_END};
/* clang-format off */
#define O_TAG_KEY_ID {"key-id", OPT_STRING, OPT_REQUIRED, "the KMS key: key id or key ARN"}
/* clang-format on */
static const struct opt_spec tag_resource_opts[] = {
    O_TAG_KEY_ID,
    {"tags", OPT_LIST, OPT_REQUIRED,
     "TagKey=K,TagValue=V TagKey=K2,TagValue=V2 (or JSON objects {\"TagKey\", \"TagValue\"})"},
    O_END};
static const struct opt_spec untag_resource_opts[] = {
    O_TAG_KEY_ID, {"tag-keys", OPT_LIST, OPT_REQUIRED, "the keys of the tags to remove"}, O_END};
static const struct opt_spec list_resource_tags_opts[] = {
    O_TAG_KEY_ID,
    {"limit", OPT_INTEGER, 0, "maximum number of tags in the response (1-50)"},
    O_MARKER,
    O_END,
};
/* clang-format off */
#define O_ROTATION_KEY_ID                                                                          \
    {"key-id", OPT_STRING, OPT_REQUIRED,                                                           \
     "the symmetric encryption KMS key: key id or key ARN"}
/* clang-format on */
static const struct opt_spec rotation_key_opts[] = {O_ROTATION_KEY_ID, O_END};
static const struct opt_spec enable_rotation_opts[] = {
    O_ROTATION_KEY_ID,
    {"rotation-period-in-days", OPT_INTEGER, 0,
     "days between automatic rotations, 90-2560 (default 365)"},
    O_END,
};
static const struct opt_spec list_rotations_opts[] = {O_ROTATION_KEY_ID, O_LIMIT, O_MARKER, O_END};
static const struct opt_spec run_scheduler_opts[] = {
    {"once", OPT_BOOL, 0, "do what is due now, print it, and exit"},
    {"interval", OPT_INTEGER, 0,
     "without --once: wake at least this often, in seconds, to look for work by usage "
     "(default 3600); it also wakes when the next rotation or deletion falls due"},
    O_END,
};
static const struct opt_spec key_id_grants_opts[] = {O_KEY_ID, O_GRANT_TOKENS, O_END};
static const struct opt_spec key_last_usage_opts[] = {
    {"key-id", OPT_STRING, 0, "the key ID or key ARN (not an alias)"}, O_END};

static const struct opt_spec get_key_policy_opts[] = {
    O_KEY_ID, {"policy-name", OPT_STRING, 0, "the policy name: default (the only one)"}, O_END};

static const struct opt_spec put_key_policy_opts[] = {
    O_KEY_ID,
    {"policy", OPT_STRING, OPT_REQUIRED, "the new key policy (JSON, usually file://policy.json)"},
    {"policy-name", OPT_STRING, 0, "the policy name: default (the only one)"},
    O_BYPASS_LOCKOUT,
    O_END,
};

static const struct opt_spec list_key_policies_opts[] = {O_KEY_ID, O_LIMIT, O_MARKER, O_END};

static const struct opt_spec create_grant_opts[] = {
    O_KEY_ID,
    {"grantee-principal", OPT_STRING, OPT_REQUIRED,
     "who receives the permissions: an IAM user, role or account ARN"},
    {"operations", OPT_LIST, OPT_REQUIRED,
     "operations the grant allows: Decrypt Encrypt GenerateDataKey "
     "GenerateDataKeyWithoutPlaintext ReEncryptFrom ReEncryptTo Sign Verify GetPublicKey "
     "CreateGrant RetireGrant DescribeKey GenerateMac VerifyMac"},
    {"retiring-principal", OPT_STRING, 0, "who may retire the grant"},
    {"constraints", OPT_JSON, 0,
     "encryption context the requests must carry: '{\"EncryptionContextSubset\": {\"k\": "
     "\"v\"}}' or EncryptionContextEquals"},
    {"name", OPT_STRING, 0, "a friendly name for the grant"},
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec list_grants_opts[] = {
    O_KEY_ID,
    O_LIMIT,
    O_MARKER,
    {"grant-id", OPT_STRING, 0, "only this grant"},
    {"grantee-principal", OPT_STRING, 0, "only grants for this principal"},
    O_END,
};

static const struct opt_spec list_retirable_grants_opts[] = {
    {"retiring-principal", OPT_STRING, OPT_REQUIRED, "the retiring principal's ARN"},
    O_LIMIT,
    O_MARKER,
    O_END,
};

static const struct opt_spec retire_grant_opts[] = {
    {"grant-token", OPT_STRING, 0, "the grant's token (or --key-id with --grant-id)"},
    {"key-id", OPT_STRING, 0, "the grant's KMS key (with --grant-id)"},
    {"grant-id", OPT_STRING, 0, "the grant's id"},
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec revoke_grant_opts[] = {
    O_KEY_ID, {"grant-id", OPT_STRING, OPT_REQUIRED, "the grant's id"}, O_DRY_RUN, O_END};

static const struct opt_spec list_keys_opts[] = {O_LIMIT, O_MARKER, O_END};

static const struct opt_spec update_key_description_opts[] = {
    O_KEY_ID,
    {"description", OPT_STRING, OPT_REQUIRED, "the new description (may be empty)"},
    O_END,
};

static const struct opt_spec schedule_key_deletion_opts[] = {
    O_KEY_ID,
    {"pending-window-in-days", OPT_INTEGER, 0, "waiting period before deletion, 7-30 (default 30)"},
    O_END,
};

static const struct opt_spec alias_target_opts[] = {
    {"alias-name", OPT_STRING, OPT_REQUIRED, "alias/NAME (not alias/aws/...)"},
    {"target-key-id", OPT_STRING, OPT_REQUIRED, "key id or key ARN the alias points to"},
    O_END,
};

static const struct opt_spec delete_alias_opts[] = {
    {"alias-name", OPT_STRING, OPT_REQUIRED, "alias/NAME of the alias to delete"},
    O_END,
};

static const struct opt_spec list_aliases_opts[] = {
    {"key-id", OPT_STRING, 0, "only aliases of this key (key id or key ARN)"},
    O_LIMIT,
    O_MARKER,
    O_END,
};

static const struct opt_spec encrypt_opts[] = {
    O_KEY_ID,
    {"plaintext", OPT_BLOB, OPT_REQUIRED,
     "data to encrypt (blob: fileb://PATH or base64; at most 4096 bytes)"},
    O_CONTEXT("encryption-context", "the"),
    O_ENC_ALG("encryption-algorithm"),
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec decrypt_opts[] = {
    {"ciphertext-blob", OPT_BLOB, OPT_REQUIRED,
     "the ciphertext (blob: fileb://PATH or base64), as Encrypt/GenerateDataKey returned it"},
    O_KEY_ID_OPT,
    O_CONTEXT("encryption-context", "the"),
    O_ENC_ALG("encryption-algorithm"),
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec re_encrypt_opts[] = {
    {"ciphertext-blob", OPT_BLOB, OPT_REQUIRED,
     "the ciphertext to re-encrypt (blob: fileb://PATH or base64)"},
    {"destination-key-id", OPT_STRING, OPT_REQUIRED, "the key to re-encrypt under: " KEY_ID_HELP},
    O_CONTEXT("source-encryption-context", "the ciphertext's"),
    {"source-key-id", OPT_STRING, 0, "the key expected to have encrypted the blob"},
    O_CONTEXT("destination-encryption-context", "the new"),
    O_ENC_ALG("source-encryption-algorithm"),
    O_ENC_ALG("destination-encryption-algorithm"),
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec data_key_opts[] = {
    O_KEY_ID,
    O_DATA_KEY_SPEC,
    O_NUMBER_OF_BYTES("data key"),
    O_CONTEXT("encryption-context", "the"),
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec data_key_pair_opts[] = {
    O_KEY_ID,
    {"key-pair-spec", OPT_STRING, OPT_REQUIRED,
     "RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521 or "
     "ECC_SECG_P256K1"},
    O_CONTEXT("encryption-context", "the"),
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec derive_shared_secret_opts[] = {
    O_KEY_ID,
    {"key-agreement-algorithm", OPT_STRING, OPT_REQUIRED, "ECDH (the only one)"},
    {"public-key", OPT_BLOB, OPT_REQUIRED,
     "the other party's public key: DER SubjectPublicKeyInfo on the KMS key's curve (blob: "
     "fileb://PATH or base64)"},
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec random_opts[] = {
    {"number-of-bytes", OPT_INTEGER, 0, "how many random bytes (1-1024)"},
    O_END,
};

static const struct opt_spec sign_opts[] = {
    O_KEY_ID, O_MESSAGE, O_MESSAGE_TYPE, O_SIGNING_ALG, O_GRANT_TOKENS, O_DRY_RUN, O_END,
};

static const struct opt_spec verify_opts[] = {
    O_KEY_ID,
    O_MESSAGE,
    O_MESSAGE_TYPE,
    {"signature", OPT_BLOB, OPT_REQUIRED, "the signature (blob: fileb://PATH or base64)"},
    O_SIGNING_ALG,
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

static const struct opt_spec generate_mac_opts[] = {
    O_KEY_ID, O_MESSAGE, O_MAC_ALG, O_GRANT_TOKENS, O_DRY_RUN, O_END,
};

static const struct opt_spec verify_mac_opts[] = {
    O_KEY_ID,
    O_MESSAGE,
    O_MAC_ALG,
    {"mac", OPT_BLOB, OPT_REQUIRED, "the MAC to verify (blob: fileb://PATH or base64)"},
    O_GRANT_TOKENS,
    O_DRY_RUN,
    O_END,
};

/* ---- The table --------------------------------------------------------------------------------
 * Order is the order of `kmsctl --help`. */
const struct command kmsctl_commands[] = {
    {"init", NULL, run_init, init_opts, "Create a new KMS home (HSM token, database, config)",
     "Creates the KMS home given by --home (else $KMS_HOME, else ~/.kms): a SoftHSM2 token and\n"
     "its configuration, the SQLite metadata database, config.json and a 0600 PIN file. Refuses\n"
     "with AlreadyExistsException if the directory already holds a KMS home.\n"
     "It hardens the account as AWS recommends: the root user gets no access keys; an \"admin\"\n"
     "user in an \"Admins\" group with AdministratorAccess is created and its access key saved\n"
     "as the default profile of HOME/credentials (0600); a password policy is set. Prints the\n"
     "home, its account id, region, the admin user and its profile.",
     "kmsctl --home ./kms-home init --region eu-west-1 --account-id 111122223333"},

    {"sign-in", NULL, kmsctl_sign_in, sign_in_opts,
     "Sign in with a password (and MFA code) and save a session",
     "Signs a person in: the password is checked (and, once the user has an MFA device, the\n"
     "code); temporary credentials are saved as a profile of HOME/credentials, to be used with\n"
     "--profile. The password never appears on the command line. A profile that holds a\n"
     "long-term access key (such as the default profile init writes, whose secret was shown\n"
     "only once) is not replaced unless --force is given: choose another --save-profile.",
     "KMS_PASSWORD=... kmsctl sign-in --user-name alice --token-code 123456 --save-profile alice\n"
     "kmsctl --profile alice list-keys"},

    /* Keys */
    {"create-key", "CreateKey", kmsctl_run_tagged, create_key_opts, "Create a KMS key",
     "Creates a KMS key whose key material never leaves the HSM. Without options: a symmetric\n"
     "AES-256 key for ENCRYPT_DECRYPT. --tags tags it as it is made (see tag-resource). Prints\n"
     "the KeyMetadata.",
     "kmsctl create-key --description 'app data key'\n"
     "kmsctl create-key --tags TagKey=Project,TagValue=Alpha\n"
     "kmsctl create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY\n"
     "kmsctl create-key --description build --output text --query KeyMetadata.KeyId"},
    {"describe-key", "DescribeKey", kmsctl_run_operation, key_id_grants_opts,
     "Show the metadata of a KMS key",
     "Prints the KeyMetadata of a KMS key (state, spec, usage, dates, ARN).",
     "kmsctl describe-key --key-id alias/app"},
    {"get-key-last-usage", "GetKeyLastUsage", kmsctl_run_operation, key_last_usage_opts,
     "Show when a KMS key was last used for cryptography",
     "Prints the last successful cryptographic operation with the key (KeyLastUsage: Operation,\n"
     "Timestamp, CloudTrailEventId, KmsRequestId), read from the audit trail, and the date\n"
     "tracking began (TrackingStartDate). No KeyLastUsage: not used since then. Before you\n"
     "schedule a key's deletion, disable it and watch the trail for DisabledException too.",
     "kmsctl get-key-last-usage --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"list-keys", "ListKeys", kmsctl_run_operation, list_keys_opts,
     "List the KMS keys of the account",
     "Lists the key ids and ARNs of the account's KMS keys: every page, merged, as the aws CLI\n"
     "does (--max-items N stops after N and prints a NextToken for --starting-token;\n"
     "--no-paginate, or the service's own --marker, makes one call and prints Truncated and\n"
     "NextMarker).",
     "kmsctl list-keys --max-items 10"},
    {"update-key-description", "UpdateKeyDescription", kmsctl_run_operation,
     update_key_description_opts, "Change the description of a KMS key",
     "Replaces the description of a KMS key. Prints nothing.",
     "kmsctl update-key-description --key-id alias/app --description 'app data, v2'"},
    {"enable-key", "EnableKey", kmsctl_run_operation, key_id_only_opts, "Enable a disabled KMS key",
     "Sets the key state to Enabled, so the key can be used again. Prints nothing.",
     "kmsctl enable-key --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"disable-key", "DisableKey", kmsctl_run_operation, key_id_only_opts,
     "Disable a KMS key (no cryptographic use)",
     "Sets the key state to Disabled: cryptographic operations with it fail with\n"
     "DisabledException until enable-key. Prints nothing.",
     "kmsctl disable-key --key-id alias/app"},
    {"schedule-key-deletion", "ScheduleKeyDeletion", kmsctl_run_operation,
     schedule_key_deletion_opts, "Schedule the deletion of a KMS key",
     "Sets the key state to PendingDeletion; the key and its material are deleted when the\n"
     "waiting period ends, unless cancel-key-deletion is called before. A key pending deletion\n"
     "cannot be used.",
     "kmsctl schedule-key-deletion --key-id alias/old --pending-window-in-days 7"},
    {"cancel-key-deletion", "CancelKeyDeletion", kmsctl_run_operation, key_id_only_opts,
     "Cancel a scheduled key deletion",
     "Cancels the scheduled deletion of a key; the key is then Disabled (enable it with\n"
     "enable-key).",
     "kmsctl cancel-key-deletion --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},

    /* Rotation */
    {"enable-key-rotation", "EnableKeyRotation", kmsctl_run_operation, enable_rotation_opts,
     "Turn on automatic rotation of a key's material",
     "The key gets new key material every rotation period (90-2560 days, default 365), made in\n"
     "the HSM by the scheduler (run-scheduler); its id, ARN, aliases and policy stay, new\n"
     "encryptions use the newest material and every older version still decrypts. Only\n"
     "symmetric encryption keys rotate. Changing the period of a key that rotates already\n"
     "moves its next rotation date by the difference. Prints nothing.",
     "kmsctl enable-key-rotation --key-id 1234abcd-12ab-34cd-56ef-1234567890ab \\\n"
     "    --rotation-period-in-days 180"},
    {"disable-key-rotation", "DisableKeyRotation", kmsctl_run_operation, rotation_key_opts,
     "Turn off automatic rotation of a key",
     "Stops automatic rotation; versions made so far stay and still decrypt. Prints nothing.",
     "kmsctl disable-key-rotation --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"get-key-rotation-status", "GetKeyRotationStatus", kmsctl_run_operation, rotation_key_opts,
     "Show whether and when a key rotates",
     "Prints KeyRotationEnabled and, when it is on, RotationPeriodInDays and NextRotationDate;\n"
     "OnDemandRotationStartDate while an on-demand rotation is under way. A key pending\n"
     "deletion shows false (its setting comes back if the deletion is cancelled).",
     "kmsctl get-key-rotation-status --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"rotate-key-on-demand", "RotateKeyOnDemand", kmsctl_run_operation, rotation_key_opts,
     "Rotate a key's material now",
     "Makes a new key material version in the HSM at once (at most 10 times per key), without\n"
     "changing the automatic rotation schedule. Data encrypted before still decrypts; move it\n"
     "to the new version with kms-re-encrypt or re-encrypt.",
     "kmsctl rotate-key-on-demand --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"list-key-rotations", "ListKeyRotations", kmsctl_run_operation, list_rotations_opts,
     "List a key's rotations",
     "Lists every completed rotation of the key, oldest first, with its RotationDate and\n"
     "RotationType (AUTOMATIC or ON_DEMAND).",
     "kmsctl list-key-rotations --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"run-scheduler", NULL, kmsctl_run_scheduler, run_scheduler_opts,
     "Carry out due rotations and key deletions",
     "Does what is due, as the KMS service itself (no user's credentials are used): automatic\n"
     "rotations whose date has come (once per key, however many periods were missed while the\n"
     "machine was off), rotations of key versions that reached the usage limit\n"
     "(config.json rotation_usage_limit, default 2^30 encryptions), rotations a crash left\n"
     "half done, and deletions whose waiting period ended (the HSM material is destroyed, the\n"
     "aliases and metadata removed). Each action is an AwsServiceEvent in the audit trail.\n"
     "Prints one JSON object per run. Safe to run in several processes at once. With --once it\n"
     "exits after one run (254 if an action failed); without, it stays in the foreground,\n"
     "wakes when work falls due (or every --interval seconds) and stops cleanly on SIGTERM or\n"
     "SIGINT. hsm/kms-scheduler.service and .timer are systemd examples.",
     "kmsctl run-scheduler --once\n"
     "kmsctl run-scheduler --interval 600"},

    /* Aliases */
    {"create-alias", "CreateAlias", kmsctl_run_operation, alias_target_opts,
     "Create an alias for a KMS key",
     "Creates a friendly name (alias/NAME) for a KMS key; the alias can then be given wherever\n"
     "a key id is expected. Prints nothing.",
     "kmsctl create-alias --alias-name alias/app --target-key-id "
     "1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"update-alias", "UpdateAlias", kmsctl_run_operation, alias_target_opts,
     "Point an alias at another KMS key",
     "Associates an existing alias with a different KMS key of the same type and usage. Prints\n"
     "nothing.",
     "kmsctl update-alias --alias-name alias/app --target-key-id "
     "0987dcba-09fe-87dc-65ba-ab0987654321"},
    {"delete-alias", "DeleteAlias", kmsctl_run_operation, delete_alias_opts, "Delete an alias",
     "Deletes an alias; the key it pointed to is not affected. Prints nothing.",
     "kmsctl delete-alias --alias-name alias/app"},
    {"list-aliases", "ListAliases", kmsctl_run_operation, list_aliases_opts, "List aliases",
     "Lists the aliases of the account, or of one key with --key-id (every page; see list-keys\n"
     "for --max-items, --starting-token and --no-paginate).",
     "kmsctl list-aliases --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},

    /* Tags */
    {"tag-resource", "TagResource", kmsctl_run_tagged, tag_resource_opts,
     "Add or change tags of a KMS key",
     "Adds tags to a KMS key, or replaces the value of a tag key it has. Tag keys (1-128\n"
     "characters, case-sensitive) and values (0-256) hold letters, numbers, spaces and\n"
     "_ . : / = + - @; keys beginning with aws: are reserved (TagException); a key holds at\n"
     "most 50 tags (LimitExceededException). A key pending deletion cannot be tagged. Tags are\n"
     "aws:ResourceTag/KEY in policies (attribute-based access control): tagging a key can\n"
     "allow or deny access to it at once. Prints nothing.",
     "kmsctl tag-resource --key-id 1234abcd-12ab-34cd-56ef-1234567890ab \\\n"
     "    --tags TagKey=Project,TagValue=Alpha TagKey=CostCenter,TagValue=80432"},
    {"untag-resource", "UntagResource", kmsctl_run_operation, untag_resource_opts,
     "Remove tags from a KMS key",
     "Removes the tags of the given tag keys from a KMS key (a key it does not have is no\n"
     "error). Untagging can allow or deny access at once, as tagging can. Prints nothing.",
     "kmsctl untag-resource --key-id 1234abcd-12ab-34cd-56ef-1234567890ab \\\n"
     "    --tag-keys Project CostCenter"},
    {"list-resource-tags", "ListResourceTags", kmsctl_run_operation, list_resource_tags_opts,
     "List the tags of a KMS key",
     "Lists the tags of a KMS key as Tags: [{TagKey, TagValue}], in tag key order (every page;\n"
     "see list-keys for --max-items, --starting-token and --no-paginate).",
     "kmsctl list-resource-tags --key-id 1234abcd-12ab-34cd-56ef-1234567890ab"},

    /* Key policies */
    {"get-key-policy", "GetKeyPolicy", kmsctl_run_operation, get_key_policy_opts,
     "Show the key policy of a KMS key",
     "Prints the key policy (a JSON document in a string) of a KMS key. The key policy is the\n"
     "primary control of a key: IAM policies count only where it lets the account decide (the\n"
     "default key policy does).",
     "kmsctl get-key-policy --key-id alias/app --output text --query Policy"},
    {"put-key-policy", "PutKeyPolicy", kmsctl_run_operation, put_key_policy_opts,
     "Replace the key policy of a KMS key",
     "Sets a new key policy. It is checked like any policy (MalformedPolicyDocumentException\n"
     "names the element) and must still allow you kms:PutKeyPolicy, so that you cannot lock\n"
     "yourself out, unless --bypass-policy-lockout-safety-check. Prints nothing.",
     "kmsctl put-key-policy --key-id alias/app --policy file://key-policy.json"},
    {"list-key-policies", "ListKeyPolicies", kmsctl_run_operation, list_key_policies_opts,
     "List the key policy names of a KMS key", "Prints the policy names of a key: always default.",
     "kmsctl list-key-policies --key-id alias/app"},

    /* Grants */
    {"create-grant", "CreateGrant", kmsctl_run_operation, create_grant_opts,
     "Give a principal permissions on a KMS key",
     "Creates a grant: the grantee may perform the listed operations with the key, optionally\n"
     "only with a given encryption context, until the grant is retired or revoked. An explicit\n"
     "deny in a policy still wins. Prints the GrantId and GrantToken.",
     "kmsctl create-grant --key-id alias/app \\\n"
     "    --grantee-principal arn:aws:iam::111122223333:user/alice \\\n"
     "    --operations Decrypt GenerateDataKey \\\n"
     "    --constraints '{\"EncryptionContextSubset\": {\"tenant\": \"acme\"}}'"},
    {"list-grants", "ListGrants", kmsctl_run_operation, list_grants_opts,
     "List the grants of a KMS key", "Lists the grants of a key (every page, as list-keys).",
     "kmsctl list-grants --key-id alias/app"},
    {"list-retirable-grants", "ListRetirableGrants", kmsctl_run_operation,
     list_retirable_grants_opts, "List the grants a principal may retire",
     "Lists the grants whose retiring principal is the given one.",
     "kmsctl list-retirable-grants --retiring-principal arn:aws:iam::111122223333:role/ops"},
    {"retire-grant", "RetireGrant", kmsctl_run_operation, retire_grant_opts, "Retire a grant",
     "Deletes a grant, by its token or by key and grant id. Its retiring principal, its grantee\n"
     "(when the grant allows RetireGrant) and the account that created it may retire it. Prints\n"
     "nothing.",
     "kmsctl retire-grant --key-id alias/app --grant-id 0c237476b39f8bc4..."},
    {"revoke-grant", "RevokeGrant", kmsctl_run_operation, revoke_grant_opts, "Revoke a grant",
     "Deletes a grant of a key (needs kms:RevokeGrant on the key). Prints nothing.",
     "kmsctl revoke-grant --key-id alias/app --grant-id 0c237476b39f8bc4..."},

    /* Envelope encryption: files of any size */
    {"encrypt", NULL, kmsctl_envelope_encrypt, kmsctl_envelope_encrypt_opts,
     "Encrypt a file of any size under KMS keys or a raw wrapping key",
     "Envelope encryption: encrypts the input (standard input by default) with a fresh data key\n"
     "and writes an AWS Encryption SDK message (standard output by default) that holds the data\n"
     "key wrapped by every KMS key given with --key-id and/or by a raw wrapping key of your own\n"
     "(--wrapping-key-file, --key-namespace, --key-name; no KMS home needed then). Any ESDK\n"
     "implementation can decrypt the message with the same keys. Frames are encrypted in\n"
     "parallel; memory stays a few frames whatever the size.\n\n"
     "A regular output file is written under a temporary name and renamed only on success.",
     "kmsctl encrypt --key-id alias/app --encryption-context purpose=backup \\\n"
     "    -i db.dump -o db.dump.esdk\n"
     "tar c data | kmsctl encrypt --key-id alias/app --algorithm-suite 0x0578 > data.tar.esdk\n"
     "head -c 32 /dev/urandom > aes.key\n"
     "kmsctl encrypt --wrapping-key-file aes.key --key-namespace backup --key-name k1 \\\n"
     "    -i notes.txt -o notes.txt.esdk"},
    {"decrypt", NULL, kmsctl_envelope_decrypt, kmsctl_envelope_decrypt_opts,
     "Decrypt a message made by encrypt (or by any AWS Encryption SDK)",
     "Decrypts an AWS Encryption SDK message (standard input by default) to standard output or\n"
     "--out-file. Give the keys that may unwrap the data key: --key-id (strict: only these KMS\n"
     "keys), --discovery (any KMS key of the home you may use) and/or a raw wrapping key. With\n"
     "--encryption-context the message must hold those pairs. Frames are released only after\n"
     "they verified; a regular output file appears only when the whole message, including its\n"
     "signature, verified, and nothing is left behind on failure.\n\n"
     "A message with more than --max-encrypted-data-keys (default 10) encrypted data keys is\n"
     "refused before any key is tried: the sender chooses them, and each one can cost a KMS\n"
     "Decrypt call and an audit record. The first data key that decrypts is used.",
     "kmsctl decrypt --key-id alias/app --encryption-context purpose=backup \\\n"
     "    -i db.dump.esdk -o db.dump --metadata-output db.dump.json\n"
     "kmsctl decrypt --discovery < data.tar.esdk | tar x"},
    {"re-encrypt", NULL, kmsctl_envelope_reencrypt, kmsctl_envelope_reencrypt_opts,
     "Move an encrypted message to other KMS keys",
     "Decrypts a message with the source keys (--key-id, --discovery or a raw wrapping key),\n"
     "verifying every frame and the signature, and encrypts it again under a fresh data key\n"
     "wrapped by the --destination-key-id keys only, with the same encryption context and frame\n"
     "length. The plaintext passes between the two in memory and never reaches a file; a\n"
     "regular output file appears only when everything succeeded. Uncommitted legacy messages\n"
     "come out with key commitment. Without --destination-key-id the --key-id keys wrap the\n"
     "new data key under their newest key material: after a rotation, this moves data to the\n"
     "new version.",
     "kmsctl re-encrypt --key-id alias/old --destination-key-id alias/new \\\n"
     "    -i db.dump.esdk -o db.dump.new.esdk\n"
     "kmsctl re-encrypt --key-id alias/app -i db.dump.esdk -o db.dump.rotated.esdk"},

    /* Cryptographic operations */
    {"kms-encrypt", "Encrypt", kmsctl_run_operation, encrypt_opts,
     "Encrypt up to 4 KiB with a KMS key (AWS Encrypt)",
     "Encrypts a small plaintext (at most 4096 bytes) directly under a KMS key and prints the\n"
     "CiphertextBlob (base64). For files of any size use encrypt (envelope encryption).",
     "kmsctl kms-encrypt --key-id alias/app --plaintext fileb://secret.txt \\\n"
     "    --encryption-context purpose=test --output text --query CiphertextBlob \\\n"
     "    | base64 -d > secret.kms"},
    {"kms-decrypt", "Decrypt", kmsctl_run_operation, decrypt_opts,
     "Decrypt a ciphertext blob (AWS Decrypt)",
     "Decrypts a ciphertext blob made by kms-encrypt, generate-data-key or\n"
     "generate-data-key-without-plaintext. The blob names its key; --key-id, if given, must\n"
     "match. The encryption context must be the one given at encryption. Prints the Plaintext\n"
     "(base64): use --output text --query Plaintext | base64 -d for the raw bytes.",
     "kmsctl kms-decrypt --ciphertext-blob fileb://secret.kms \\\n"
     "    --encryption-context purpose=test --output text --query Plaintext \\\n"
     "    | base64 -d > secret.txt"},
    {"kms-re-encrypt", "ReEncrypt", kmsctl_run_operation, re_encrypt_opts,
     "Re-encrypt a ciphertext under another key (AWS ReEncrypt)",
     "Decrypts a ciphertext blob and encrypts the plaintext again under --destination-key-id\n"
     "(and a new encryption context), without the plaintext leaving KMS.",
     "kmsctl kms-re-encrypt --ciphertext-blob fileb://secret.kms \\\n"
     "    --destination-key-id alias/new --source-encryption-context purpose=test \\\n"
     "    --destination-encryption-context purpose=test"},
    {"generate-data-key", "GenerateDataKey", kmsctl_run_operation, data_key_opts,
     "Generate a data key, plaintext and encrypted",
     "Returns a fresh data key twice: in plaintext (Plaintext, base64) and encrypted under the\n"
     "KMS key (CiphertextBlob). Give --key-spec or --number-of-bytes. Use the plaintext, then\n"
     "forget it; keep the CiphertextBlob beside the data.",
     "kmsctl generate-data-key --key-id alias/app --key-spec AES_256"},
    {"generate-data-key-without-plaintext", "GenerateDataKeyWithoutPlaintext", kmsctl_run_operation,
     data_key_opts, "Generate a data key, encrypted only",
     "Like generate-data-key, but returns only the encrypted data key (CiphertextBlob); decrypt\n"
     "it with kms-decrypt when the key is needed.",
     "kmsctl generate-data-key-without-plaintext --key-id alias/app --number-of-bytes 32"},
    {"generate-data-key-pair", "GenerateDataKeyPair", kmsctl_run_operation, data_key_pair_opts,
     "Generate a key pair, its private key in plaintext and encrypted",
     "Returns a fresh RSA or EC key pair for use outside KMS: the public key (PublicKey, DER\n"
     "SubjectPublicKeyInfo, base64), the private key in plaintext (PrivateKeyPlaintext, DER\n"
     "PKCS #8, base64) and the private key encrypted under the symmetric KMS key\n"
     "(PrivateKeyCiphertextBlob; kms-decrypt gives back the PKCS #8 DER).",
     "kmsctl generate-data-key-pair --key-id alias/app --key-pair-spec ECC_NIST_P256 \\\n"
     "    --output text --query PrivateKeyPlaintext | base64 -d \\\n"
     "    | openssl pkey -inform DER -out private.pem"},
    {"generate-data-key-pair-without-plaintext", "GenerateDataKeyPairWithoutPlaintext",
     kmsctl_run_operation, data_key_pair_opts,
     "Generate a key pair, its private key encrypted only",
     "Like generate-data-key-pair, but without PrivateKeyPlaintext: the private key comes back\n"
     "encrypted under the KMS key only; decrypt it with kms-decrypt when it is needed.",
     "kmsctl generate-data-key-pair-without-plaintext --key-id alias/app \\\n"
     "    --key-pair-spec RSA_2048 --output text --query PublicKey | base64 -d > public.der"},
    {"derive-shared-secret", "DeriveSharedSecret", kmsctl_run_operation, derive_shared_secret_opts,
     "Derive an ECDH shared secret with a KEY_AGREEMENT key",
     "Runs ECDH in the HSM between the private key of a KEY_AGREEMENT KMS key (ECC_NIST_P256,\n"
     "P384 or P521) and another party's public key, and prints the raw shared secret\n"
     "(SharedSecret, base64). The other party derives the same secret from its private key and\n"
     "the KMS key's public key (get-public-key).",
     "kmsctl derive-shared-secret --key-id alias/agree --key-agreement-algorithm ECDH \\\n"
     "    --public-key fileb://peer-public.der --output text --query SharedSecret | base64 -d"},
    {"generate-random", "GenerateRandom", kmsctl_run_operation, random_opts,
     "Get random bytes from the HSM",
     "Returns random bytes from the HSM's generator as Plaintext (base64).",
     "kmsctl generate-random --number-of-bytes 32 --output text --query Plaintext | base64 -d"},
    {"sign", "Sign", kmsctl_run_operation, sign_opts, "Sign a message with an asymmetric KMS key",
     "Signs a message (or, with --message-type DIGEST, a precomputed digest) with the private\n"
     "key of a SIGN_VERIFY key pair. Prints the Signature (base64).",
     "kmsctl sign --key-id alias/signer --message fileb://release.tar.gz.sha256 \\\n"
     "    --message-type DIGEST --signing-algorithm ECDSA_SHA_256 \\\n"
     "    --output text --query Signature | base64 -d > release.sig"},
    {"verify", "Verify", kmsctl_run_operation, verify_opts, "Verify a signature with a KMS key",
     "Verifies a signature made by sign. Prints SignatureValid true; an invalid signature\n"
     "fails with KMSInvalidSignatureException (exit 254).",
     "kmsctl verify --key-id alias/signer --message fileb://release.tar.gz.sha256 \\\n"
     "    --message-type DIGEST --signature fileb://release.sig --signing-algorithm ECDSA_SHA_256"},
    {"get-public-key", "GetPublicKey", kmsctl_run_operation, key_id_grants_opts,
     "Get the public key of an asymmetric KMS key",
     "Prints the public key (PublicKey: DER SubjectPublicKeyInfo, base64) and how it may be\n"
     "used.",
     "kmsctl get-public-key --key-id alias/signer --output text --query PublicKey \\\n"
     "    | base64 -d > signer.der"},
    {"generate-mac", "GenerateMac", kmsctl_run_operation, generate_mac_opts,
     "Compute an HMAC with an HMAC KMS key",
     "Computes the HMAC of a message (at most 4096 bytes) with a GENERATE_VERIFY_MAC key. Prints\n"
     "the Mac (base64).",
     "kmsctl generate-mac --key-id alias/mac --message fileb://token --mac-algorithm HMAC_SHA_256"},
    {"verify-mac", "VerifyMac", kmsctl_run_operation, verify_mac_opts,
     "Verify an HMAC with a KMS key",
     "Verifies an HMAC made by generate-mac. Prints MacValid true; a wrong MAC fails with\n"
     "KMSInvalidMacException (exit 254).",
     "kmsctl verify-mac --key-id alias/mac --message fileb://token \\\n"
     "    --mac-algorithm HMAC_SHA_256 --mac fileb://token.mac"},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

const struct command *const kmsctl_command_tables[KMSCTL_COMMAND_TABLES + 1] = {
    kmsctl_commands,     kmsctl_iam_commands, kmsctl_audit_commands,     kmsctl_advisor_commands,
    kmsctl_pki_commands, kmsctl_acm_commands, kmsctl_configure_commands, NULL};

const struct command *kmsctl_command_find(const char *name)
{
    for (size_t t = 0; kmsctl_command_tables[t] != NULL; t++) {
        for (const struct command *c = kmsctl_command_tables[t]; c->name != NULL; c++) {
            if (strcmp(c->name, name) == 0) {
                return c;
            }
        }
    }
    return NULL;
}
