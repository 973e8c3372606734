/* The compiled form of a policy, shared by the files of src/policy (private).
 *
 * kms_policy_compile turns a JSON document into these structures once, so that evaluation does
 * no JSON work and no allocation (policy.h: "evaluation allocates nothing"): action patterns are
 * lower-cased, every pattern is pre-split into codes (literal bytes, '*', '?', policy variables),
 * numbers, dates and CIDR blocks of conditions are parsed, principals classified. */
#ifndef KMS_POLICY_POLICY_INTERNAL_H
#define KMS_POLICY_POLICY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "policy/policy.h"

/* ---- Patterns ---------------------------------------------------------------------------------
 * A pattern is an array of codes: 0-255 a literal byte, PAT_STAR and PAT_QMARK the IAM
 * wildcards, PAT_VAR + i the i-th policy variable of the pattern. */
enum {
    PAT_STAR = 0x100,
    PAT_QMARK = 0x101,
    PAT_VAR = 0x1000,
};

/* The longest pattern after variable substitution (stack buffer of the evaluator); longer
 * substitutions do not match. */
#define PAT_EXPAND_MAX 4096

typedef struct pol_var {
    char *key;     /* lower-cased context key */
    uint32_t hash; /* kms_policy_key_hash(key) */
    char *def;     /* default value, NULL when none: "${key, 'default'}" */
} pol_var;

typedef struct pol_pattern {
    uint16_t *codes;
    size_t n;
    pol_var *vars;
    size_t nvars;
    bool any; /* exactly "*": matches everything, the common case */
    /* The literal bytes before the first wildcard or variable, at most 8, packed little-endian
     * with a mask: one 64-bit comparison rejects most non-matching patterns (kms_policy_text_head).
     */
    uint64_t head;
    uint64_t head_mask;
} pol_pattern;

/* How a pattern's text is read (IAM User Guide, "IAM policy elements: Variables and tags"). */
typedef struct pat_opts {
    bool wildcards; /* '*' and '?' are wildcards (else literal) */
    bool variables; /* ${...} is a policy variable (Version 2012-10-17 only) */
    bool lower;     /* lower-case literal bytes (actions match case-insensitively) */
} pat_opts;

int kms_policy_pattern_compile(const char *text, pat_opts opts, pol_pattern *out)
    __attribute__((warn_unused_result));
void kms_policy_pattern_clean_up(pol_pattern *p);

/* An IP address as parsed; defined here for the context's parsed values. */
typedef struct pol_ip {
    int family; /* 4 or 6 */
    uint8_t addr[16];
    unsigned prefix; /* bits */
} pol_ip;

/* A context value as Numeric, Date and IpAddress conditions read it: parsed the first time a
 * condition compares it (most values never are), then kept, so that a context evaluated again
 * does not parse again. state: CTX_UNPARSED, CTX_CLAIMED (one evaluation is filling it in;
 * others parse for themselves), CTX_PARSED (the members are set; read after an acquire load),
 * so that evaluations on several threads may share a context. */
enum { CTX_UNPARSED, CTX_CLAIMED, CTX_PARSED };
typedef struct ctx_parsed {
    _Atomic uint8_t state;
    bool num_ok, date_ok, ip_ok;
    double num;
    int64_t ms;
    pol_ip ip;
} ctx_parsed;

/* The context, as policy_context.c keeps it: lower-cased keys, values in insertion order. Keys,
 * values, value lists and their parsed forms live in the context's arena (a first block inside
 * the context, more blocks as needed), so that a request's context of some twenty keys costs no
 * allocation, not a hundred. */
typedef struct ctx_entry {
    char *key;
    uint32_t hash; /* kms_policy_key_hash(key) */
    char **values;
    ctx_parsed *parsed; /* one per value */
    size_t n;
} ctx_entry;

/* The parsed form of value vi of e (parsed now unless an evaluation did before). */
void kms_policy_ctx_parsed(const ctx_entry *e, size_t vi, ctx_parsed *out);

#define KMS_POLICY_CTX_ENTRIES 32
#define KMS_POLICY_CTX_ARENA 4096
/* The index of keys (slot: entry number + 1, 0 empty), kept while there are at most
 * KMS_POLICY_CTX_INDEXED entries; a larger context is searched entry by entry. */
#define KMS_POLICY_CTX_SLOTS 64
#define KMS_POLICY_CTX_INDEXED 40

typedef struct ctx_block {
    struct ctx_block *next;
    size_t used, cap;
    _Alignas(max_align_t) char data[];
} ctx_block;

struct kms_policy_ctx {
    ctx_entry *e; /* first: inline; more: malloc'd */
    size_t n, cap;
    ctx_block *blocks; /* blocks beyond the first, newest first */
    size_t used;       /* of first */
    bool heap;         /* the context itself was malloc'd (kms_policy_ctx_new) */
    uint8_t slot[KMS_POLICY_CTX_SLOTS];
    ctx_entry inline_e[KMS_POLICY_CTX_ENTRIES];
    _Alignas(max_align_t) char first[KMS_POLICY_CTX_ARENA];
};

/* FNV-1a of a lower-cased key: compared before the key itself. */
uint32_t kms_policy_key_hash(const char *lower_key);
/* The entry of a lower-cased key whose hash is given, or NULL. */
const ctx_entry *kms_policy_ctx_find(const kms_policy_ctx *ctx, const char *lower_key,
                                     uint32_t hash);

/* Substitutes the variables of p from ctx into out (at most cap codes). false when a variable
 * has no value and no default, or the result does not fit: then the pattern matches nothing. */
bool kms_policy_pattern_expand(const pol_pattern *p, const kms_policy_ctx *ctx, uint16_t *out,
                               size_t cap, size_t *n);
/* Glob of codes (no variables) against text; ci folds ASCII case of the text (the pattern is
 * already lower-case). */
bool kms_policy_glob_codes(const uint16_t *p, size_t pn, const char *t, size_t tn, bool ci);
/* p against text, substituting variables: the one entry point of the evaluator. */
bool kms_policy_pattern_match(const pol_pattern *p, const kms_policy_ctx *ctx, const char *text,
                              size_t tlen, bool ci);
/* The first 8 bytes of text packed as pol_pattern.head is (folded when ci). */
uint64_t kms_policy_text_head(const char *text, size_t tlen, bool ci);
/* kms_policy_pattern_match with the text's head computed once by the caller for many patterns. */
bool kms_policy_pattern_match_head(const pol_pattern *p, const kms_policy_ctx *ctx,
                                   const char *text, size_t tlen, bool ci, uint64_t thead);
/* Exact comparison (no wildcards) of a pattern with variables against text. */
bool kms_policy_pattern_equals(const pol_pattern *p, const kms_policy_ctx *ctx, const char *text,
                               size_t tlen, bool ci);
/* ArnLike: each of the six colon-separated fields matched on its own, the last taking the
 * rest (IAM User Guide, "Condition operators": Amazon Resource Name (ARN) condition
 * operators). */
bool kms_policy_pattern_arn_match(const pol_pattern *p, const kms_policy_ctx *ctx,
                                  const char *text);

/* The account field of an ARN without raising; -1 when s is not an ARN. */
int kms_policy_arn_account_split(const char *arn, char out[13]);
bool kms_policy_is_account_id(const char *s);

/* ---- Conditions ------------------------------------------------------------------------------ */
typedef enum cond_family {
    COND_STRING_EQ,
    COND_STRING_EQ_CI,
    COND_STRING_LIKE,
    COND_NUM_EQ,
    COND_NUM_LT,
    COND_NUM_LE,
    COND_NUM_GT,
    COND_NUM_GE,
    COND_DATE_EQ,
    COND_DATE_LT,
    COND_DATE_LE,
    COND_DATE_GT,
    COND_DATE_GE,
    COND_BOOL,
    COND_BINARY,
    COND_IP,
    COND_ARN,
    COND_NULL,
} cond_family;

typedef enum cond_set {
    SET_NONE,
    SET_ALL, /* ForAllValues: */
    SET_ANY, /* ForAnyValue: */
} cond_set;

typedef struct pol_cvalue {
    pol_pattern pat; /* String* and Arn*: the value with wildcards/variables as the family reads */
    char *text;      /* the value as written (Bool, Binary, messages) */
    double num;
    int64_t ms; /* dates: milliseconds since the epoch */
    pol_ip ip;
    bool flag; /* Bool and Null */
} pol_cvalue;

typedef struct pol_cond {
    cond_family family;
    bool negated;
    bool if_exists;
    cond_set set;
    char *key; /* lower-cased */
    uint32_t hash;
    pol_cvalue *values;
    size_t nvalues;
} pol_cond;

/* Compiles one operator block {"StringEquals": {KEY: VALUE|[VALUES]}} entry into conds. */
int kms_policy_cond_compile(const char *path, const char *op, json_t *block, bool variables,
                            pol_cond **conds, size_t *nconds) __attribute__((warn_unused_result));
void kms_policy_cond_clean_up(pol_cond *c);
bool kms_policy_cond_eval(const pol_cond *c, const kms_policy_ctx *ctx);

/* Value parsers shared by compile (policy values) and the context (its values). */
bool kms_policy_parse_number(const char *s, double *out);
bool kms_policy_parse_date(const char *s, int64_t *ms);
bool kms_policy_parse_ip(const char *s, bool allow_prefix, pol_ip *out);

/* ---- Principals ------------------------------------------------------------------------------ */
typedef enum prin_type {
    PRIN_ANY,       /* "*" or {"AWS": "*"} */
    PRIN_ACCOUNT,   /* account id or arn:PARTITION:iam::ID:root */
    PRIN_ARN,       /* a user, session or federated-user ARN: exact */
    PRIN_ROLE,      /* a role ARN: its sessions (role_arn) */
    PRIN_SERVICE,   /* {"Service": name} */
    PRIN_FEDERATED, /* {"Federated": provider} */
    PRIN_CANONICAL, /* {"CanonicalUser": id} */
    PRIN_UNIQUE_ID, /* {"AWS": "AIDA..."} or "AROA...": a deleted (or any) user or role by id */
} prin_type;

typedef struct pol_principal {
    prin_type type;
    char *value;
    char account[13];
} pol_principal;

/* ---- Statements and policies ----------------------------------------------------------------- */
typedef enum prin_mode {
    PRIN_MODE_NONE, /* no Principal element (identity-based kinds) */
    PRIN_MODE_PRINCIPAL,
    PRIN_MODE_NOT_PRINCIPAL,
} prin_mode;

typedef struct pol_stmt {
    char *sid;
    bool deny;
    bool not_action;
    pol_pattern *actions;
    size_t nactions;
    bool no_resource; /* no Resource element (trust policies, SCPs): any resource */
    bool not_resource;
    pol_pattern *resources;
    size_t nresources;
    prin_mode pmode;
    pol_principal *principals;
    size_t nprincipals;
    pol_cond *conds;
    size_t nconds;
} pol_stmt;

struct kms_policy {
    char *label;
    kms_policy_kind kind;
    bool simulated; /* compiled with KMS_POLICY_AS_SIMULATED */
    bool managed;   /* compiled with KMS_POLICY_MANAGED */
    bool variables; /* Version 2012-10-17 */
    pol_stmt *stmts;
    size_t nstmts;
};

/* ---- Service-specific rules (policy_services.c) -----------------------------------------------
 */
/* sts:GetCallerIdentity: allowed to every signed caller, even under an explicit Deny. */
bool kms_policy_action_always_allowed(const char *action);
/* Reading an AWS managed policy (arn:aws:iam::aws:policy/...): allowed to every principal. */
bool kms_policy_public_read(const char *action, const char *resource);
/* Changing a service-linked role or an alias/aws/ alias: no policy can allow it. */
bool kms_policy_reserved(const char *action, const char *resource);
/* The action names no resource (kms:CreateKey, iam:ListUsers, ...): its request's resource is
 * "*", and a statement that names it applies whatever its Resource or NotResource says. */
bool kms_policy_action_takes_no_resource(const char *action);

/* ---- Validation (policy_validate.c) --------------------------------------------------------- */
/* Resource r of element path as IAM validates it: "*" or an ARN of a known partition; IAM
 * resources without a region and of one of IAM's types; S3 buckets and objects without a
 * region. */
int kms_policy_resource_check(const char *path, const char *r) __attribute__((warn_unused_result));
/* The Version element (NULL when absent): one IAM knows, and 2012-10-17 for a managed policy;
 * *variables whether ${...} are policy variables (2012-10-17). */
int kms_policy_version_check(json_t *version, bool managed, bool *variables)
    __attribute__((warn_unused_result));

#endif
