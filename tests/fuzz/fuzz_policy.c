/* Fuzzes the policy engine (src/policy), which reads policy documents that callers write:
 *
 *  - The first byte picks what the rest is: a policy document of one of the five kinds for
 *    kms_policy_compile, or a kmsctl simulate-custom-policy input for kms_policy_simulate.
 *  - compile: 0 gives a policy whose statements all have a Sid string; -1 gives
 *    MalformedPolicyDocumentException (ValidationException only for bad arguments, never here)
 *    and no policy.
 *  - A compiled policy is evaluated in every place a policy of its kind can take (identity,
 *    boundary, session, SCP level, resource or key policy) for several callers against a fixed
 *    context: a decision in range, at most KMS_EVAL_MAX_MATCHES matches, each naming this
 *    policy and one of its statements; the same input decides the same way twice (no hidden
 *    state).
 *  - simulate: 0 gives JSON with an EvalDecision; -1 is ValidationException or
 *    MalformedPolicyDocumentException.
 * ASan and UBSan catch the rest; libFuzzer's leak check covers every error path. */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "kms/kms.h"
#include "policy/policy.h"

static kms_policy_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const pairs[][2] = {
        {"aws:username", "alice"},
        {"aws:PrincipalArn", "arn:aws:iam::111122223333:user/alice"},
        {"aws:PrincipalAccount", "111122223333"},
        {"aws:SourceIp", "192.0.2.10"},
        {"aws:CurrentTime", "2026-06-01T12:00:00Z"},
        {"aws:EpochTime", "1780315200"},
        {"aws:SecureTransport", "true"},
        {"aws:TagKeys", "team"},
        {"aws:TagKeys", "cost-center"},
        {"aws:PrincipalTag/team", "blue"},
        {"kms:EncryptionContext:app", "billing"},
        {"kms:EncryptionContextKeys", "app"},
        {"kms:CallerAccount", "111122223333"},
        {"n", "42.5"},
    };
    ctx = kms_policy_ctx_new();
    FUZZ_CHECK(ctx != NULL);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        FUZZ_CHECK(kms_policy_ctx_add(ctx, pairs[i][0], pairs[i][1]) == 0);
    }
    return 0;
}

typedef struct who {
    const char *arn, *role, *account;
    bool service;
} who;

static const who CALLERS[] = {
    {"arn:aws:iam::111122223333:user/alice", NULL, "111122223333", false},
    {"arn:aws:sts::111122223333:assumed-role/App/s1", "arn:aws:iam::111122223333:role/App",
     "111122223333", false},
    {"arn:aws:iam::111122223333:root", NULL, "111122223333", false},
    {"arn:aws:iam::444455556666:user/bob", NULL, "444455556666", false},
    {"kms.amazonaws.com", NULL, NULL, true},
};

static void check_result(const kms_eval_result *r, kms_decision d, const kms_policy *p)
{
    FUZZ_CHECK(d == r->decision);
    FUZZ_CHECK(d == KMS_DECISION_ALLOWED || d == KMS_DECISION_IMPLICIT_DENY ||
               d == KMS_DECISION_EXPLICIT_DENY);
    FUZZ_CHECK(r->match_count <= KMS_EVAL_MAX_MATCHES);
    for (size_t i = 0; i < r->match_count; i++) {
        FUZZ_CHECK(r->matches[i].policy == p);
        FUZZ_CHECK(r->matches[i].statement < kms_policy_statement_count(p));
    }
    /* An explicit deny names the statement that denied, unless the matches ran out before. */
    if (d == KMS_DECISION_EXPLICIT_DENY) {
        bool deny = false;
        for (size_t i = 0; i < r->match_count; i++) {
            deny = deny || r->matches[i].deny;
        }
        FUZZ_CHECK(deny || r->match_count == KMS_EVAL_MAX_MATCHES);
    }
}

static void evaluate(const kms_policy *p, kms_policy_kind kind)
{
    static const char *const actions[] = {"kms:Decrypt", "s3:GetObject", "KMS:encrypt"};
    static const char *const resources[] = {
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:s3:::home/alice/file", "*"};
    const kms_policy *one[1] = {p};
    kms_policy_list list = {one, 1};
    for (size_t c = 0; c < sizeof CALLERS / sizeof CALLERS[0]; c++) {
        for (size_t a = 0; a < 3; a++) {
            kms_eval_input in = {
                .principal_arn = CALLERS[c].arn,
                .role_arn = CALLERS[c].role,
                .principal_account = CALLERS[c].account,
                .service = CALLERS[c].service,
                .action = actions[a],
                .resource = resources[a],
                .resource_account = "111122223333",
                .ctx = a == 2 ? NULL : ctx,
            };
            switch (kind) {
            case KMS_POLICY_IDENTITY:
                in.identity = list;
                if (a == 1) {
                    in.boundary = p;
                    in.session = p;
                }
                break;
            case KMS_POLICY_SCP:
                in.scps = &list;
                in.scp_levels = 1;
                break;
            default:
                in.resource_policy = p;
                in.key_policy = kind == KMS_POLICY_KEY;
                break;
            }
            kms_eval_result r1, r2;
            kms_decision d1 = kms_policy_evaluate(&in, &r1);
            kms_decision d2 = kms_policy_evaluate(&in, &r2);
            check_result(&r1, d1, p);
            FUZZ_CHECK(d1 == d2 && r1.match_count == r2.match_count);
        }
    }
}

static void fuzz_compile(const char *doc, size_t len, kms_policy_kind kind)
{
    kms_policy *p = (kms_policy *)1;
    if (kms_policy_compile(doc, len, kind, "PolicyInputList.1", &p) != 0) {
        FUZZ_CHECK(p == NULL);
        FUZZ_CHECK(kms_last_error() == KMS_ERR_MALFORMED_POLICY);
        return;
    }
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(strcmp(kms_policy_label(p), "PolicyInputList.1") == 0);
    FUZZ_CHECK(kms_policy_statement_count(p) > 0);
    for (size_t i = 0; i < kms_policy_statement_count(p); i++) {
        FUZZ_CHECK(kms_policy_statement_sid(p, i) != NULL);
    }
    evaluate(p, kind);
    kms_policy_free(p);
}

static void fuzz_simulate(const char *in, size_t len)
{
    char *out = NULL;
    if (kms_policy_simulate(in, len, &out) != 0) {
        FUZZ_CHECK(out == NULL);
        kms_error e = kms_last_error();
        FUZZ_CHECK(e == KMS_ERR_VALIDATION || e == KMS_ERR_MALFORMED_POLICY);
        return;
    }
    FUZZ_CHECK(out != NULL);
    json_t *j = json_loads(out, 0, NULL);
    FUZZ_CHECK(j != NULL);
    FUZZ_CHECK(json_is_string(json_object_get(j, "EvalDecision")));
    FUZZ_CHECK(json_is_array(json_object_get(j, "MatchedStatements")));
    json_decref(j);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    /* '0'..'4' (or any byte mod 6 of 0-4): a document of that kind; '5': a simulate input. */
    unsigned mode = data[0] % 6;
    const char *rest = (const char *)data + 1;
    if (mode == 5) {
        fuzz_simulate(rest, size - 1);
    } else {
        fuzz_compile(rest, size - 1, (kms_policy_kind)mode);
    }
    return 0;
}
