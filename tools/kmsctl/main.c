/* kmsctl [--home DIR] [--profile NAME] [--output json|text] [--query PATH] COMMAND [OPTIONS]
 *
 * The entry point: global options, the command lookup, then the command's option parser and
 * handler from the table in commands.c. */
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kmsctl.h"

/* Requests and responses hold base64 plaintexts (Encrypt, Decrypt, GenerateDataKey) in jansson
 * strings; wipe every jansson block on release. Blocks still come from malloc, so memory that
 * the library allocates through jansson and releases with free() stays compatible.
 * malloc_usable_size is glibc's; it covers at least the requested size. */
static void wiping_free(void *p)
{
    if (p != NULL) {
        sodium_memzero(p, malloc_usable_size(p));
        free(p);
    }
}

void kmsctl_free_secret_string(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

/* The services whose commands are grouped under their name, as in the aws CLI. acm and acm-pca
 * commands are named in two words. The others are also kmsctl's flat names: `kmsctl kms
 * create-key` is `kmsctl create-key`, and `kmsctl kms encrypt` is AWS KMS's Encrypt, as with aws
 * (the flat `kms-encrypt`; the flat `encrypt` is the file tool); `kmsctl organizations
 * create-policy` is `org-create-policy`. A grouped name must be one of that service's commands
 * (its operation "service:Name"; kms: an operation without a service, or a local command). */
static const struct {
    const char *name;
    bool flat;
    const char *prefix;    /* tried first before the flat name */
    const char *operation; /* the operations' "service:" */
} groups[] = {{"acm-pca", false, NULL, NULL},
              {"acm", false, NULL, NULL},
              {"configure", false, NULL, NULL},
              {"kms", true, "kms-", NULL},
              {"iam", true, NULL, "iam:"},
              {"sts", true, NULL, "sts:"},
              {"organizations", true, "org-", "organizations:"},
              {"cloudtrail", true, NULL, "cloudtrail:"}};

static bool of_service(const struct command *c, const char *operation)
{
    if (operation == NULL) {
        return c->operation == NULL || strchr(c->operation, ':') == NULL ||
               strncmp(c->operation, "cloudtrail:", 11) == 0;
    }
    return c->operation != NULL && strncmp(c->operation, operation, strlen(operation)) == 0;
}

/* The command at argv[*i]: a flat name ("encrypt"), or a service's command in two words as in
 * the aws CLI ("acm-pca issue-certificate", *i moved to the second). NULL if unknown. */
static const struct command *find_command(int argc, char **argv, int *i, char name[128])
{
    snprintf(name, 128, "%s", argv[*i]);
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        /* `kmsctl configure --profile dev`: the group's own command, its options after it. */
        if (strcmp(argv[*i], groups[g].name) != 0 || *i + 1 >= argc || argv[*i + 1][0] == '-') {
            continue;
        }
        (*i)++;
        if (!groups[g].flat) {
            snprintf(name, 128, "%s %s", argv[*i - 1], argv[*i]);
            return kmsctl_command_find(name);
        }
        const struct command *c = NULL;
        if (groups[g].prefix != NULL) {
            snprintf(name, 128, "%s%s", groups[g].prefix, argv[*i]);
            c = kmsctl_command_find(name);
        }
        if (c == NULL) {
            snprintf(name, 128, "%s", argv[*i]);
            c = kmsctl_command_find(name);
        }
        if (c != NULL && !of_service(c, groups[g].operation)) {
            snprintf(name, 128, "%s %s", argv[*i - 1], argv[*i]);
            return NULL;
        }
        return c;
    }
    return kmsctl_command_find(name);
}

/* Without --output: AWS_DEFAULT_OUTPUT, else the profile's output (kmsctl configure set output),
 * as the aws CLI; a value kmsctl does not know is left for json. */
static void default_output(struct globals *g)
{
    const char *env = getenv("AWS_DEFAULT_OUTPUT");
    char *profile_output = NULL;

    if (g->output_given) {
        return;
    }
    if (env != NULL && kmsctl_output_format(env, &g->output) == 0) {
        return;
    }
    profile_output = kmsctl_profile_setting(g, "output");
    if (profile_output != NULL) {
        (void)kmsctl_output_format(profile_output, &g->output);
    }
    kmsctl_free_secret_string(profile_output);
}

/* `kmsctl help [COMMAND]` */
static int run_help(int argc, char **argv)
{
    const struct command *cmd = NULL;
    char name[128];
    int i = 0;

    if (argc == 0) {
        kmsctl_print_global_help(stdout);
        return KMSCTL_EXIT_OK;
    }
    cmd = find_command(argc, argv, &i, name);
    if (cmd == NULL) {
        return kmsctl_unknown_command(name);
    }
    kmsctl_print_command_help(stdout, cmd);
    return KMSCTL_EXIT_OK;
}

/* Global options before the command. Returns -1 to go on, else the exit code. */
static int parse_leading_globals(int argc, char **argv, int *i, struct globals *g)
{
    for (; *i < argc && strncmp(argv[*i], "--", 2) == 0; (*i)++) {
        int r;
        if (strcmp(argv[*i], "--help") == 0) {
            kmsctl_print_global_help(stdout);
            return KMSCTL_EXIT_OK;
        }
        if (strcmp(argv[*i], "--version") == 0) {
            printf("kmsctl %s\n", KMSCTL_VERSION);
            return KMSCTL_EXIT_OK;
        }
        r = kmsctl_parse_global(NULL, argc, argv, i, g);
        if (r == 0) {
            return kmsctl_usage_error(NULL, "unknown option %s before the command", argv[*i]);
        }
        if (r != 1) {
            return r;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct globals g = {.output = OUTPUT_JSON};
    const struct command *cmd = NULL;
    char name[128];
    json_t *request = NULL;
    int i = 1;
    int r;

    json_set_alloc_funcs(malloc, wiping_free);
    r = parse_leading_globals(argc, argv, &i, &g);
    if (r >= 0) {
        return r;
    }
    if (i >= argc) {
        kmsctl_print_usage(stderr);
        return kmsctl_usage_error(NULL, "a command is required");
    }
    if (strcmp(argv[i], "help") == 0) {
        return run_help(argc - i - 1, argv + i + 1);
    }
    cmd = find_command(argc, argv, &i, name);
    if (cmd == NULL) {
        return kmsctl_unknown_command(name);
    }
    r = kmsctl_parse_options(cmd, argc - i - 1, argv + i + 1, &g, &request);
    if (r != KMSCTL_EXIT_OK) {
        return r < 0 ? KMSCTL_EXIT_OK : r;
    }
    kmsctl_globals_from_env(&g);
    default_output(&g);
    g.operation = cmd->operation;
    g.title = cmd->operation != NULL ? cmd->operation : cmd->name;
    if (strchr(g.title, ':') != NULL) {
        g.title = strchr(g.title, ':') + 1;
    }
    r = kmsctl_check_query(g.query);
    if (r == KMSCTL_EXIT_OK) {
        r = kmsctl_check_remote(cmd, &g);
    }
    if (r == KMSCTL_EXIT_OK) {
        r = cmd->run(cmd, &g, request);
    }
    json_decref(request);
    return r;
}
