/* kmsctl: the command-line front end. Private to tools/kmsctl.
 *
 * One table of commands (commands.c) drives everything: option parsing (options.c), the usage
 * and help texts (help.c) and the call into libkms. Every AWS command maps its options to the
 * members of the AWS KMS JSON request (`--key-id` -> "KeyId") and prints the JSON response
 * (output.c). kmsctl reaches keys only through include/kms/kms.h. */
#ifndef KMSCTL_KMSCTL_H
#define KMSCTL_KMSCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "kms/kms.h"

#ifndef KMSCTL_VERSION
#define KMSCTL_VERSION "0.1.0"
#endif
/* What the audit records say called (userAgent). */
#define KMSCTL_USER_AGENT "kmsctl/" KMSCTL_VERSION

/* Exit codes, as the aws CLI uses them. */
enum {
    KMSCTL_EXIT_OK = 0,
    KMSCTL_EXIT_USAGE = 252,   /* bad command line: unknown command/option, missing/bad value */
    KMSCTL_EXIT_SERVICE = 254, /* the operation failed: {"__type", "message"} on stderr */
};

/* Input files (fileb://, file://) are capped: every AWS KMS request member is far smaller. */
#define KMSCTL_MAX_FILE (64 * 1024)

enum opt_kind {
    OPT_STRING,  /* a string; file://PATH reads it from a text file */
    OPT_INTEGER, /* a decimal integer */
    OPT_BOOL,    /* a flag without value: --name sets true, --no-name (if allowed) false */
    OPT_BLOB,    /* base64; fileb://PATH reads raw bytes, file://PATH base64 text */
    OPT_MAP,     /* string map: JSON {"k":"v"} or shorthand k=v,k2=v2; file://PATH */
    OPT_LIST,    /* string list: --name a b c, or JSON ["a","b"] */
    OPT_PATH,    /* a file name, taken as is (no file://) */
    OPT_JSON,    /* any JSON value (objects with nested members); file://PATH */
    /* A list of structures, as the aws CLI takes one: several arguments, each a structure in
     * shorthand (Key=a,Value=b) or JSON, or one JSON list of them; file://PATH. The members'
     * scalars are text ("12" stays "12"): the lists kmsctl has (tags, context entries) hold
     * strings. */
    OPT_STRUCTS,
};

enum opt_flags {
    OPT_REQUIRED = 1 << 0,
    OPT_NO_FORM = 1 << 1, /* a boolean that also has --no-NAME, as aws has for it */
    OPT_REPEAT = 1 << 2,  /* may be given more than once: lists append, maps merge */
    OPT_MAPS = 1 << 3,    /* an OPT_MAP that also takes a JSON list of such maps */
    /* May also be given without its --name: bare arguments fill these options in order
     * (`kmsctl configure set region eu-west-1`). */
    OPT_POSITIONAL = 1 << 4,
};

/* A one-letter alias (-i for --in-file), kept in the second byte of the flags. */
#define OPT_SHORT(c) ((unsigned)(unsigned char)(c) << 8)
#define OPT_SHORT_OF(o) ((char)(((o)->flags >> 8) & 0xffu))

/* One option of a command. The JSON member is the PascalCase of the name ("key-id" ->
 * "KeyId"); local commands (init) read their options under the same member names. */
struct opt_spec {
    const char *name; /* without the leading "--" */
    enum opt_kind kind;
    unsigned flags;
    const char *help;
};

/* --output, as the aws CLI has it (also AWS_DEFAULT_OUTPUT and the profile's "output"). */
enum output_format {
    OUTPUT_JSON,
    OUTPUT_TEXT,
    OUTPUT_TABLE,
    OUTPUT_YAML,
    OUTPUT_YAML_STREAM,
};

/* Global options, valid before or after the command name (as with aws). */
struct globals {
    const char *home;    /* NULL: library default ($KMS_HOME, else ~/.kms) */
    const char *profile; /* NULL: library default */
    const char *query;   /* NULL: the whole response */
    enum output_format output;
    bool output_given; /* --output was on the command line */
    /* The table format's title: the AWS operation without its service ("DescribeKey"), else
     * the command's name; set by main. */
    const char *title;
    const char *operation; /* the command's AWS operation ("iam:GetRole"), NULL if none */
    const char *color;     /* --color on|off|auto (NULL: auto): the table's colours */
    /* A KMS server instead of a home (--endpoint-url, else KMS_ENDPOINT_URL) and the CAs to
     * trust for it (--ca-bundle, else KMS_CA_BUNDLE, else AWS_CA_BUNDLE); NULL: none given. */
    const char *endpoint_url;
    const char *ca_bundle;
};

struct command;
/* Runs a command on its parsed request; returns the exit code. */
typedef int (*command_fn)(const struct command *cmd, const struct globals *g, json_t *request);

struct command {
    const char *name;
    const char *operation; /* AWS action name; NULL for local commands */
    command_fn run;
    const struct opt_spec *opts; /* terminated by an entry with name NULL */
    const char *summary;         /* one line for the command list */
    const char *description;     /* paragraph(s) for COMMAND --help */
    const char *example;         /* one or more lines of shell */
};

/* commands.c: the KMS commands; iam_cmds.c: the IAM, STS and Organizations commands. Both
 * tables end with an entry whose name is NULL; kmsctl_command_tables lists them, NULL-ended. */
extern const struct command kmsctl_commands[];
extern const struct command kmsctl_iam_commands[];
/* audit_cmds.c: lookup-events, usage-report, validate-logs, get-audit-public-key. */
extern const struct command kmsctl_audit_commands[];
/* advisor_cmd.c: kmsctl advisor. */
extern const struct command kmsctl_advisor_commands[];
/* pki_cmds.c: `kmsctl acm-pca NAME` (named "acm-pca NAME" in the table). */
extern const struct command kmsctl_pki_commands[];
/* acm_cmds.c: `kmsctl acm NAME` (named "acm NAME" in the table). */
extern const struct command kmsctl_acm_commands[];
/* configure_cmd.c: `kmsctl configure [list | get | set]` (named "configure NAME"). */
extern const struct command kmsctl_configure_commands[];
extern const struct command *const kmsctl_command_tables[];
/* How many tables kmsctl_command_tables lists (help.c has a heading for each). */
#define KMSCTL_COMMAND_TABLES 7
/* configure_cmd.c: the value of key (region, output) in the profile kmsctl acts as, from the
 * credentials file `kmsctl configure` writes; NULL if none (free with
 * kmsctl_free_secret_string). */
char *kmsctl_profile_setting(const struct globals *g, const char *key);
const struct command *kmsctl_command_find(const char *name);
/* signin.c: kmsctl sign-in (password, MFA code) -> a session profile. */
int kmsctl_sign_in(const struct command *cmd, const struct globals *g, json_t *request);
/* scheduler_cmd.c: kmsctl run-scheduler [--once] [--interval S]. */
int kmsctl_run_scheduler(const struct command *cmd, const struct globals *g, json_t *request);
/* Every AWS command: the request JSON to kms_call, the response JSON printed. */
int kmsctl_run_operation(const struct command *cmd, const struct globals *g, json_t *request);
/* tag_cmds.c: kmsctl_run_operation after --tags TagKey=K,TagValue=V became KMS's Tags. */
int kmsctl_run_tagged(const struct command *cmd, const struct globals *g, json_t *request);

/* paginate.c: list and lookup commands fetch every page, as the aws CLI does. */
extern const struct opt_spec kmsctl_paging_opts[];
bool kmsctl_paginated(const struct command *cmd);
/* For a paginated command: takes the paging members out of request and, unless one call is
 * asked for, fetches and prints every page (*handled true, the exit code returned). Otherwise
 * *handled is false and request is ready for one call. */
int kmsctl_run_paginated(const struct command *cmd, const struct globals *g, kms_client *client,
                         json_t *request, bool *handled);

/* envelope_cmds.c: encrypt, decrypt and re-encrypt of files of any size as AWS Encryption SDK
 * messages (include/kms/envelope.h). */
extern const struct opt_spec kmsctl_envelope_encrypt_opts[];
extern const struct opt_spec kmsctl_envelope_decrypt_opts[];
extern const struct opt_spec kmsctl_envelope_reencrypt_opts[];
int kmsctl_envelope_encrypt(const struct command *cmd, const struct globals *g, json_t *request);
int kmsctl_envelope_decrypt(const struct command *cmd, const struct globals *g, json_t *request);
int kmsctl_envelope_reencrypt(const struct command *cmd, const struct globals *g, json_t *request);

/* home_paths.c: KMSCTL_EXIT_OK, or a usage error for option --opt when path (a file kmsctl is
 * about to write; NULL or "-" is standard output) resolves, through symlinks and "..", into the
 * KMS home's audit or hsm directory or onto one of its own files (kms.db and its -wal, -shm and
 * -journal, config.json, credentials, the PIN files). */
int kmsctl_check_output(const struct command *cmd, const struct globals *g, const char *opt,
                        const char *path);

/* options.c: parses argv (after the command name) into *request. Global options found there
 * update *g. Returns KMSCTL_EXIT_OK, KMSCTL_EXIT_USAGE (message printed), or -1 when --help
 * was asked for (help printed, caller exits 0). */
int kmsctl_parse_options(const struct command *cmd, int argc, char **argv, struct globals *g,
                         json_t **request);
/* Parses one global option at argv[*i] ("--home" ...). Returns 1 if it was one (and *i moved
 * past its value), 0 if not a global option, KMSCTL_EXIT_USAGE on a bad value. */
int kmsctl_parse_global(const struct command *cmd, int argc, char **argv, int *i,
                        struct globals *g);
/* The format named (json, text, table, yaml, yaml-stream) into *out; -1 if none is. */
int kmsctl_output_format(const char *name, enum output_format *out);
/* "key-id" -> "KeyId" into out. */
void kmsctl_member_name(const char *opt, char *out, size_t out_size);
/* Reads a file given as "file://PATH" / "fileb://PATH" path part; ~/ expanded. At most
 * KMSCTL_MAX_FILE bytes; NUL-terminated. On error prints a usage error for option `opt`. */
int kmsctl_read_file(const struct command *cmd, const char *opt, const char *path,
                     unsigned char **out, size_t *len);

/* client.c: the client every command uses: the home, or the server of --endpoint-url (NULL
 * with the library's error raised). */
kms_client *kmsctl_client_open(const struct globals *g);
/* Fills endpoint_url and ca_bundle from the environment when the command line did not. */
void kmsctl_globals_from_env(struct globals *g);
/* KMSCTL_EXIT_OK, or (with --endpoint-url) UnsupportedOperationException printed for a command
 * that reads the home itself (validate-logs, advisor, run-scheduler, ...). */
int kmsctl_check_remote(const struct command *cmd, const struct globals *g);

/* help.c */
void kmsctl_print_usage(FILE *f);
void kmsctl_print_global_help(FILE *f);
void kmsctl_print_command_help(FILE *f, const struct command *cmd);
/* Prints "kmsctl: error: ..." and the --help hint for cmd (NULL: global); returns 252. */
int kmsctl_usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Unknown command: error with close matches; returns 252. */
int kmsctl_unknown_command(const char *name);
/* Edit distance (Levenshtein), for "did you mean". */
size_t kmsctl_distance(const char *a, const char *b);
bool kmsctl_close_match(const char *typed, const char *candidate);

/* output.c */
/* The timestamps of a response (members AWS's models type so), given as epoch seconds, as the
 * aws CLI v2 prints them: ISO 8601 with an offset. */
void kmsctl_iso_dates(json_t *v);
/* A response as the aws CLI hands it to its formatter: kmsctl_iso_dates, and for IAM the policy
 * documents (PolicyDocument, AssumeRolePolicyDocument, Document) as JSON objects, URL-decoded
 * (botocore's json_decode_policies). */
void kmsctl_response_shape(const struct globals *g, json_t *v);
/* Prints a response body (JSON text) per --output/--query, its timestamps as ISO 8601; empty
 * bodies print nothing. */
int kmsctl_print_response(const struct globals *g, const char *response);
/* Checks the syntax of --query before anything runs; 252 with a message if bad. */
int kmsctl_check_query(const char *query);
/* Prints an already parsed value per --output/--query. */
int kmsctl_print_value(const struct globals *g, json_t *value);
/* The shortest digits of d that read back the same, as Python's repr(float). */
void kmsctl_format_real(double d, char *out, size_t size);
/* output_text.c: --output text (awscli/text.py). */
void kmsctl_text_print(FILE *f, json_t *v);
/* Python's str() of a scalar (True, False, None, repr of floats); malloc'd, NULL on no memory. */
char *kmsctl_text_scalar(json_t *v);
/* output_table.c: --output table (awscli/table.py), title the section title of the whole. */
int kmsctl_table_print(FILE *f, const char *title, bool color, json_t *v);
/* output_yaml.c: --output yaml (awscli's YAMLDumper: ruamel.yaml's safe dump, block style,
 * sorted keys; a scalar as JSON). 0, or -1 when libyaml fails. */
int kmsctl_yaml_print(FILE *f, json_t *v);
/* Prints the library's last error as {"__type", "message"} on stderr; returns 254. */
int kmsctl_service_error(void);
/* Set by kmsctl_client_open: the identity came from AWS_ACCESS_KEY_ID or AWS_PROFILE. */
extern bool kmsctl_aws_identity;
/* kmsctl_service_error with hint appended to the message ("" for none). */
int kmsctl_service_error_hint(const char *hint);
/* After an InvalidCiphertextException: when the first bytes (head, n of them, of a whole input
 * of total bytes, named where) are the other kind of ciphertext than the command reads
 * (envelope: a KMS ciphertext blob; else an envelope message), hint[size] names the command to
 * use; else it is "". */
void kmsctl_ciphertext_hint(const unsigned char *head, size_t n, long long total, bool envelope,
                            const char *where, char *hint, size_t size);
/* Same shape for an error kmsctl detects in a response; returns 254. */
int kmsctl_error_json(const char *type, const char *message);

/* Wipes and frees a NUL-terminated string that may hold secrets (base64 plaintexts). */
void kmsctl_free_secret_string(char *s);

#endif
