/* The one place kmsctl opens its client: the KMS home (--home), or a KMS server
 * (--endpoint-url / KMS_ENDPOINT_URL) reached over HTTPS and signed with the profile's
 * credentials. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsctl.h"

/* The commands that read the home itself: they run on the server's machine. */
static const char *const home_only[] = {
    "init",           "sign-in",       "validate-logs", "get-audit-public-key", "get-audit-anchor",
    "seal-audit-log", "run-scheduler", "advisor",
};

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

void kmsctl_globals_from_env(struct globals *g)
{
    if (g->endpoint_url == NULL) {
        g->endpoint_url = env_value("KMS_ENDPOINT_URL");
    }
    if (g->ca_bundle == NULL) {
        g->ca_bundle = env_value("KMS_CA_BUNDLE");
    }
    if (g->ca_bundle == NULL) {
        g->ca_bundle = env_value("AWS_CA_BUNDLE");
    }
}

int kmsctl_check_remote(const struct command *cmd, const struct globals *g)
{
    if (g->endpoint_url == NULL) {
        return KMSCTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof home_only / sizeof home_only[0]; i++) {
        if (strcmp(cmd->name, home_only[i]) == 0) {
            char msg[512];
            snprintf(msg, sizeof msg,
                     "%s needs the KMS home: run it on the server's machine (kmsctl --home HOME "
                     "%s), not through --endpoint-url %s",
                     cmd->name, cmd->name, g->endpoint_url);
            return kmsctl_error_json("UnsupportedOperationException", msg);
        }
    }
    return KMSCTL_EXIT_OK;
}

bool kmsctl_aws_identity; /* the caller's identity came from AWS_ACCESS_KEY_ID or AWS_PROFILE */

/* Which identity the environment names, as the aws CLI reads it: KMS_ first, then AWS_. A
 * warning when AWS_ variables are set and the KMS_ ones win; none with --profile (as aws). */
static void note_identity(const struct globals *g)
{
    const char *kms = env_value("KMS_ACCESS_KEY_ID") ? "KMS_ACCESS_KEY_ID"
                      : env_value("KMS_PROFILE")     ? "KMS_PROFILE"
                                                     : NULL;
    const char *aws = env_value("AWS_ACCESS_KEY_ID") ? "AWS_ACCESS_KEY_ID"
                      : env_value("AWS_PROFILE")     ? "AWS_PROFILE"
                                                     : NULL;
    kmsctl_aws_identity = g->profile == NULL && kms == NULL && aws != NULL;
    if (g->profile == NULL && kms != NULL && aws != NULL) {
        fprintf(stderr,
                "kmsctl: warning: %s is set and ignored: %s names the identity (the KMS_ "
                "variables come before the AWS_ ones)\n",
                aws, kms);
    }
}

kms_client *kmsctl_client_open(const struct globals *g)
{
    note_identity(g);
    if (g->endpoint_url == NULL) {
        kms_client_options copts = {.home = g->home,
                                    .profile = g->profile,
                                    .user_agent = KMSCTL_USER_AGENT,
                                    .aws_environment = true};
        return kms_client_open(&copts);
    }
    /* With --home too, the credentials are that home's profiles. */
    char file[4096] = "";
    if (g->home != NULL) {
        snprintf(file, sizeof file, "%s/credentials", g->home);
    }
    /* The SigV4 region: AWS_REGION, AWS_DEFAULT_REGION (the library reads them), else the
     * profile's region (kmsctl configure set region), else the server's. */
    char *region = env_value("AWS_REGION") == NULL && env_value("AWS_DEFAULT_REGION") == NULL
                       ? kmsctl_profile_setting(g, "region")
                       : NULL;
    kms_remote_options ropts = {
        .endpoint_url = g->endpoint_url,
        .ca_bundle = g->ca_bundle,
        .profile = g->profile,
        .credentials_file = file[0] != '\0' ? file : NULL,
        .user_agent = KMSCTL_USER_AGENT,
        .region = region,
    };
    kms_client *client = kms_client_open_remote(&ropts);
    kmsctl_free_secret_string(region);
    return client;
}
