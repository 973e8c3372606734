/* Fuzzes the KMS home config parser, kms_client_config_load (service/client.c), through the file it
 * reads: each input becomes HOME/config.json of one temporary home made once per process.
 *
 * On success: account_id is 12 digits, region non-empty and short, the three required strings
 * present, and region and account_id are the input's own members. On failure the error is
 * KMSHomeException (or ValidationException / KMSInternalException from reading the file) and
 * the config is left empty. */
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "service/client.h"
#include "util/util.h"

static char home[4096];
static char config_path[4096 + 16];

static void remove_home(void)
{
    unlink(config_path);
    rmdir(home);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    FUZZ_CHECK(kms_util_init() == 0);
    snprintf(home, sizeof home, "%s/kms-fuzz-config-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(home) != NULL);
    snprintf(config_path, sizeof config_path, "%s/config.json", home);
    atexit(remove_home);
    return 0;
}

static void write_config(const uint8_t *data, size_t size)
{
    int fd = open(config_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        FUZZ_CHECK(k > 0);
        done += (size_t)k;
    }
    FUZZ_CHECK(close(fd) == 0);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/* The loaded config agrees with an independent reading of the same text. */
static void check_against_json(const uint8_t *data, size_t size, const kms_config *cfg)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0'; /* the loader reads the file as a C string too */
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(root));
    const char *region = json_string_value(json_object_get(root, "region"));
    const char *account = json_string_value(json_object_get(root, "account_id"));
    FUZZ_CHECK(region != NULL && strcmp(region, cfg->region) == 0);
    FUZZ_CHECK(account != NULL && strcmp(account, cfg->account_id) == 0);
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(root, "token_label")), cfg->token_label) ==
               0);
    FUZZ_CHECK((json_object_get(root, "softhsm_conf") != NULL &&
                json_is_string(json_object_get(root, "softhsm_conf"))) ==
               (cfg->softhsm_conf != NULL));
    json_decref(root);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kms_config cfg;
    write_config(data, size);
    if (kms_client_config_load(home, &cfg) != 0) {
        kms_error e = kms_last_error();
        FUZZ_CHECK(e == KMS_ERR_HOME || e == KMS_ERR_VALIDATION || e == KMS_ERR_INTERNAL);
        FUZZ_CHECK(cfg.pkcs11_module == NULL && cfg.token_label == NULL && cfg.pin_source == NULL &&
                   cfg.softhsm_conf == NULL);
        return 0;
    }
    FUZZ_CHECK(strlen(cfg.account_id) == 12 && all_digits(cfg.account_id, 12));
    FUZZ_CHECK(cfg.region[0] != '\0' && strlen(cfg.region) < sizeof cfg.region);
    FUZZ_CHECK(cfg.pkcs11_module != NULL && cfg.pkcs11_module[0] != '\0');
    FUZZ_CHECK(cfg.token_label != NULL && cfg.token_label[0] != '\0');
    FUZZ_CHECK(cfg.pin_source != NULL && cfg.pin_source[0] != '\0');
    check_against_json(data, size, &cfg);
    kms_client_config_clean_up(&cfg);
    return 0;
}
