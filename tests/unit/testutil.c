#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/hsm.h"
#include "kms/kms.h"

char *kms_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/kmstest.XXXXXX", base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

void kms_test_rmrf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

char *kms_test_source_path(const char *rel)
{
    const char *src = getenv("KMS_SOURCE_DIR");
    assert_non_null(src);
    size_t n = strlen(src) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", src, rel);
    return p;
}

int kms_test_token(const char *dir, const char *label, const char *pin)
{
    char *script = kms_test_source_path("hsm/create-token.sh");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' >/dev/null", script, dir);
    free(script);
    assert_int_equal(system(cmd), 0);
    char conf[4200];
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
    assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
    int rc = kms_hsm_init_token("/usr/lib/softhsm/libsofthsm2.so", label,
                                (const uint8_t *)"so-pin-for-tests", 16, (const uint8_t *)pin,
                                strlen(pin));
    if (rc != 0) {
        fail_msg("token init failed: %s", kms_last_error_message());
    }
    return 0;
}
