/* Usage and help texts, generated from the command table; usage errors and "did you mean". */
#include <stdarg.h>
#include <string.h>

#include "kmsctl.h"

#define WRAP_COLUMN 80
#define NAME_COLUMN 22

/* Prints text reflowed to WRAP_COLUMN, every line indented; a blank line separates paragraphs. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
    int col = 0;
    const char *p = text;

    while (*p != '\0') {
        size_t word;
        if (strncmp(p, "\n\n", 2) == 0) {
            fputs("\n\n", f);
            col = 0;
            p += 2;
            continue;
        }
        if (*p == ' ' || *p == '\n') {
            p++;
            continue;
        }
        word = strcspn(p, " \n");
        if (col > 0 && col + 1 + (int)word > WRAP_COLUMN) {
            fputc('\n', f);
            col = 0;
        }
        if (col == 0) {
            fprintf(f, "%*s", indent, "");
            col = indent;
        } else {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, word, f);
        col += (int)word;
        p += word;
    }
    if (col > 0) {
        fputc('\n', f);
    }
}

/* Prints each line of text with indent spaces before it. */
static void print_indented(FILE *f, const char *text, int indent)
{
    while (*text != '\0') {
        size_t n = strcspn(text, "\n");
        fprintf(f, "%*s%.*s\n", indent, "", (int)n, text);
        text += n + (text[n] == '\n');
    }
}

void kmsctl_print_usage(FILE *f)
{
    fprintf(f,
            "usage: kmsctl [--home DIR | --endpoint-url URL [--ca-bundle FILE]] [--profile NAME]\n"
            "              [--output json|text|table|yaml|yaml-stream] [--query EXPR]\n"
            "              COMMAND [OPTIONS]\n");
}

void kmsctl_print_global_help(FILE *f)
{
    fprintf(f, "kmsctl %s - a key management service in the spirit of AWS KMS, run locally\n\n",
            KMSCTL_VERSION);
    kmsctl_print_usage(f);
    fprintf(f, "\nGlobal options (before or after COMMAND):\n"
               "  --home DIR          the KMS home (default: $KMS_HOME, else ~/.kms)\n"
               "  --profile NAME      credentials profile of HOME/credentials (default: default)\n"
               "  --endpoint-url URL  run the command against a KMS server (kmsd) at\n"
               "                      https://HOST:PORT instead of a home, signed (SigV4) with\n"
               "                      the profile's credentials (default: $KMS_ENDPOINT_URL)\n"
               "  --ca-bundle FILE    the CA certificates (PEM) to trust for the server, e.g. the\n"
               "                      kmsd-ca.pem kmsd writes to its home (default:\n"
               "                      $KMS_CA_BUNDLE, else $AWS_CA_BUNDLE, else the system's)\n"
               "  --output FORMAT     as the aws CLI prints it: json (default), the AWS response\n"
               "                      indented; text, values tab-separated, one line per item\n"
               "                      under upper-cased group names (each page of a listing\n"
               "                      apart); table, boxed; yaml; yaml-stream, a list per page.\n"
               "                      Default: $AWS_DEFAULT_OUTPUT, else the profile's output\n"
               "                      (kmsctl configure set output text)\n"
               "                      e.g. kmsctl list-keys --output text | cut -f3\n"
               "  --color on|off|auto the table's colours (auto: on a terminal)\n"
               "  --query EXPR        a JMESPath expression (jmespath.org, the whole grammar\n"
               "                      and its 26 functions) applied as aws does: to the whole\n"
               "                      response once every page is fetched (with --output text,\n"
               "                      to each page); checked before anything runs:\n"
               "                      KeyMetadata.KeyId, Keys[].KeyId, Keys[?KeyId=='x'] | [0]\n"
               "  --help              this text\n"
               "  --version           the version of kmsctl\n"
               "\nCommands:\n\n");
    static const char *const headings[] = {"Key management and encryption (aws kms)",
                                           "Identities, credentials and organizations "
                                           "(aws iam, aws sts, aws organizations)",
                                           "The audit trail (aws cloudtrail)",
                                           "The home's security posture (as AWS Trusted Advisor)",
                                           "Private certificate authorities (aws acm-pca)",
                                           "Managed certificates (aws acm)",
                                           "Profiles (aws configure)"};
    _Static_assert(sizeof headings / sizeof headings[0] == KMSCTL_COMMAND_TABLES,
                   "one heading per command table");
    for (size_t t = 0; kmsctl_command_tables[t] != NULL && t < sizeof headings / sizeof headings[0];
         t++) {
        fprintf(f, "%s%s:\n", t ? "\n" : "", headings[t]);
        for (const struct command *c = kmsctl_command_tables[t]; c->name != NULL; c++) {
            if (strlen(c->name) > NAME_COLUMN) {
                fprintf(f, "  %s\n  %-*s  %s\n", c->name, NAME_COLUMN, "", c->summary);
            } else {
                fprintf(f, "  %-*s  %s\n", NAME_COLUMN, c->name, c->summary);
            }
        }
    }
    fprintf(f,
            "\nThe commands of a service are grouped under its name, as with aws: 'kmsctl acm\n"
            "request-certificate', 'kmsctl acm-pca issue-certificate'; 'kmsctl kms COMMAND' is\n"
            "'kmsctl COMMAND', except that 'kmsctl kms encrypt' (decrypt, re-encrypt) is AWS\n"
            "KMS's operation, 'kmsctl kms-encrypt', as with aws. 'kmsctl iam', 'sts' and\n"
            "'cloudtrail' name their services' commands the same way, and 'kmsctl organizations\n"
            "COMMAND' is 'kmsctl org-COMMAND' where that exists.\n");
    fprintf(f,
            "\nAgainst a server, every command runs there as with a home, but those that read\n"
            "the home itself (init, sign-in, validate-logs, advisor, run-scheduler, the audit\n"
            "anchor and key) and the IAM and Organizations commands (AWS's query protocol;\n"
            "of STS's, get-caller-identity, assume-role and get-session-token work) run on\n"
            "the server's machine. Credentials with a home: --profile, else KMS_PROFILE, else\n"
            "KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY (KMS_SESSION_TOKEN), else the aws CLI's\n"
            "AWS_ACCESS_KEY_ID..., else AWS_PROFILE, else the default profile of\n"
            "HOME/credentials. Against a server: --profile, else the KMS_ then the AWS_ keys,\n"
            "else KMS_PROFILE or AWS_PROFILE, of HOME/credentials, else ~/.aws/credentials.\n"
            "Example:\n"
            "  kmsctl --endpoint-url https://kms.example:8443 --ca-bundle kmsd-ca.pem \\\n"
            "      encrypt --key-id alias/app -i report.pdf -o report.pdf.enc\n");
    fprintf(f, "\nRun 'kmsctl COMMAND --help' (or 'kmsctl help COMMAND') for its options and an\n"
               "example. Raw bytes of a base64 member: --output text --query NAME | base64 -d.\n"
               "\nExit status: 0 success; 252 bad command line (message on stderr); 254 the\n"
               "operation failed ({\"__type\": NAME, \"message\": TEXT} on stderr).\n");
}

static const char *placeholder(const struct opt_spec *o)
{
    switch (o->kind) {
    case OPT_INTEGER:
        return " <integer>";
    case OPT_BOOL:
        return "";
    case OPT_BLOB:
        return " <blob>";
    case OPT_MAP:
        return " <map>";
    case OPT_LIST:
        return " <value> [<value> ...]";
    case OPT_PATH:
        return " <file>";
    case OPT_JSON:
        return " <json>";
    case OPT_STRUCTS:
        return " <structure> [<structure> ...]";
    default:
        return " <value>";
    }
}

/* "--name <value>", "--flag | --no-flag"; optional ones in brackets. */
static void format_synopsis(const struct opt_spec *o, char *out, size_t size)
{
    bool req = (o->flags & OPT_REQUIRED) != 0;

    if (o->flags & OPT_NO_FORM) {
        snprintf(out, size, "%s--%s | --no-%s%s", req ? "" : "[", o->name, o->name, req ? "" : "]");
    } else if (o->flags & OPT_POSITIONAL) {
        snprintf(out, size, "%s<%s>%s", req ? "" : "[", o->name, req ? "" : "]");
    } else {
        snprintf(out, size, "%s--%s%s%s", req ? "" : "[", o->name, placeholder(o), req ? "" : "]");
    }
}

/* The command's options, then (for a list command) the paging options it does not have itself:
 * the i-th, or NULL past the last. */
static const struct opt_spec *nth_opt(const struct command *cmd, size_t i)
{
    size_t own = 0;
    while (cmd->opts[own].name != NULL) {
        own++;
    }
    if (i < own) {
        return &cmd->opts[i];
    }
    if (!kmsctl_paginated(cmd)) {
        return NULL;
    }
    i -= own;
    for (const struct opt_spec *o = kmsctl_paging_opts; o->name != NULL; o++) {
        bool shadowed = false;
        for (size_t k = 0; k < own; k++) {
            shadowed = shadowed || strcmp(cmd->opts[k].name, o->name) == 0;
        }
        if (!shadowed && i-- == 0) {
            return o;
        }
    }
    return NULL;
}

static void print_synopsis(FILE *f, const struct command *cmd)
{
    char item[256];
    size_t indent = strlen("usage: kmsctl ") + strlen(cmd->name) + 1;
    size_t col = indent;
    const struct opt_spec *o;

    fprintf(f, "usage: kmsctl %s", cmd->name);
    for (size_t i = 0; (o = nth_opt(cmd, i)) != NULL; i++) {
        format_synopsis(o, item, sizeof item);
        if (col + 1 + strlen(item) > WRAP_COLUMN) {
            fprintf(f, "\n%*s", (int)indent, "");
            col = indent;
        } else {
            fputc(' ', f);
            col++;
        }
        fputs(item, f);
        col += strlen(item);
    }
    fputc('\n', f);
}

/* Explains the value syntaxes the command's options use. */
static void print_value_notes(FILE *f, const struct command *cmd)
{
    bool seen[OPT_STRUCTS + 1] = {false};

    for (const struct opt_spec *o = cmd->opts; o->name != NULL; o++) {
        seen[o->kind] = true;
    }
    if (!seen[OPT_BLOB] && !seen[OPT_MAP] && !seen[OPT_LIST] && !seen[OPT_STRING] &&
        !seen[OPT_PATH] && !seen[OPT_JSON] && !seen[OPT_STRUCTS]) {
        return;
    }
    fprintf(f, "\nValues:\n");
    if (seen[OPT_BLOB]) {
        fprintf(f,
                "  <blob>   fileb://PATH reads raw bytes; otherwise the value is base64 (also\n"
                "           file://PATH holding base64 text). Files are limited to %d KiB.\n",
                KMSCTL_MAX_FILE / 1024);
    }
    if (seen[OPT_MAP]) {
        fprintf(f,
                "  <map>    JSON '{\"k\":\"v\"}', shorthand k=v,k2=v2 (no commas in values), or\n"
                "           file://PATH holding the JSON\n");
    }
    if (seen[OPT_LIST]) {
        fprintf(f, "  <value> [<value> ...]  several values separated by spaces, or JSON "
                   "'[\"a\",\"b\"]'\n");
    }
    if (seen[OPT_STRING]) {
        fprintf(f, "  <value>  text; file://PATH reads it from a file\n");
    }
    if (seen[OPT_JSON]) {
        fprintf(
            f, "  <json>   a JSON value as AWS's API reference shapes it, file://PATH, or the aws\n"
               "           CLI's shorthand: Key=value,Nested={k=v},List=[a,b] (quote it)\n");
    }
    if (seen[OPT_STRUCTS]) {
        fprintf(f, "  <structure> [<structure> ...]  one or more structures in the aws CLI's\n"
                   "           shorthand (Key=a,Value=b Key=c,Value=d; quote values with commas:\n"
                   "           Name='a,b'), each also JSON '{...}', or one JSON list '[{...}]';\n"
                   "           file://PATH\n");
    }
    if (seen[OPT_PATH]) {
        fprintf(f, "  <file>   a file name, as is; for input and output files - is stdin/stdout\n");
    }
}

void kmsctl_print_command_help(FILE *f, const struct command *cmd)
{
    char item[256];
    char alias[8];

    print_synopsis(f, cmd);
    fputc('\n', f);
    print_wrapped(f, cmd->description, 0);
    if (cmd->operation != NULL) {
        fprintf(f, "\nAWS KMS operation: %s\n", cmd->operation);
    }
    fprintf(f, "\nOptions:\n");
    if (cmd->opts[0].name == NULL && !kmsctl_paginated(cmd)) {
        fprintf(f, "  none besides the global options\n");
    }
    const struct opt_spec *o;
    for (size_t i = 0; (o = nth_opt(cmd, i)) != NULL; i++) {
        alias[0] = '\0';
        if (OPT_SHORT_OF(o) != '\0') {
            snprintf(alias, sizeof alias, "-%c, ", OPT_SHORT_OF(o));
        }
        if (o->flags & OPT_NO_FORM) {
            snprintf(item, sizeof item, "--%s | --no-%s", o->name, o->name);
        } else if (o->flags & OPT_POSITIONAL) {
            snprintf(item, sizeof item, "<%s> (or --%s%s)", o->name, o->name, placeholder(o));
        } else {
            snprintf(item, sizeof item, "%s--%s%s", alias, o->name, placeholder(o));
        }
        fprintf(f, "  %s%s%s\n", item, (o->flags & OPT_REQUIRED) ? "  (required)" : "",
                (o->flags & OPT_REPEAT) ? "  (repeatable)" : "");
        print_wrapped(f, o->help, 6);
    }
    print_value_notes(f, cmd);
    fprintf(f, "\nExample:\n");
    print_indented(f, cmd->example, 2);
    fprintf(f, "\nThe global options --home, --endpoint-url, --ca-bundle, --profile, --output and "
               "--query apply too; see 'kmsctl --help'.\n");
    if (cmd->operation != NULL) {
        fprintf(f, "As with aws, --generate-cli-skeleton prints the request's members as JSON and "
                   "--cli-input-json JSON|file://PATH takes them (the command line wins).\n");
    }
}

static void print_hint(const struct command *cmd)
{
    if (cmd != NULL) {
        fprintf(stderr, "Run 'kmsctl %s --help' for its options.\n", cmd->name);
    } else {
        fprintf(stderr, "Run 'kmsctl --help' for the commands and global options.\n");
    }
}

int kmsctl_usage_error(const struct command *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kmsctl: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_hint(cmd);
    return KMSCTL_EXIT_USAGE;
}

size_t kmsctl_distance(const char *a, const char *b)
{
    size_t row[64];
    size_t la = strlen(a);
    size_t lb = strlen(b);

    if (la >= 64 || lb >= 64) {
        return (size_t)-1;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* Close: a typo or two away, or one name contained in the other ("encrypt" -> "kms-encrypt"). */
bool kmsctl_close_match(const char *typed, const char *candidate)
{
    size_t d = kmsctl_distance(typed, candidate);
    size_t lt = strlen(typed);

    if (d <= 2 && d < lt) {
        return true;
    }
    return lt >= 4 && (strstr(candidate, typed) != NULL || strstr(typed, candidate) != NULL);
}

/* The commands of a service's group ("acm"): how many, each printed to f (NULL: counted only). */
static size_t group_commands(FILE *f, const char *name)
{
    size_t n = 0, len = strlen(name);
    for (size_t t = 0; kmsctl_command_tables[t] != NULL; t++) {
        for (const struct command *c = kmsctl_command_tables[t]; c->name != NULL; c++) {
            if (strncmp(c->name, name, len) == 0 && c->name[len] == ' ') {
                if (f != NULL) {
                    fprintf(f, "%s%s", n == 0 ? "" : ", ", c->name);
                }
                n++;
            }
        }
    }
    return n;
}

int kmsctl_unknown_command(const char *name)
{
    size_t n = 0;

    if (strchr(name, ' ') == NULL && group_commands(NULL, name) > 0) {
        fprintf(stderr,
                "kmsctl: error: unknown command '%s': it needs one of its commands: ", name);
        (void)group_commands(stderr, name);
        fprintf(stderr, "\n");
        print_hint(NULL);
        return KMSCTL_EXIT_USAGE;
    }
    fprintf(stderr, "kmsctl: error: unknown command '%s'\n", name);
    for (size_t t = 0; kmsctl_command_tables[t] != NULL; t++) {
        for (const struct command *c = kmsctl_command_tables[t]; c->name != NULL; c++) {
            if (kmsctl_close_match(name, c->name)) {
                fprintf(stderr, "%s%s", n == 0 ? "Did you mean: " : ", ", c->name);
                n++;
            }
        }
    }
    if (n > 0) {
        fprintf(stderr, "?\n");
    }
    print_hint(NULL);
    return KMSCTL_EXIT_USAGE;
}
