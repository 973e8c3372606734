/* The pure IAM policy module (src/policy/policy.h) against AWS's documented semantics.
 *
 * Most of it is table-driven: tests/unit/policy_cases/<theme>.json hold evaluation cases, each one
 * object in the input format of kms_policy_simulate plus "name", "why" (the AWS documentation
 * page the expectation comes from), "expect" ("allowed" | "explicitDeny" | "implicitDeny") and,
 * for a few, "expectMatchedSids". validation.json holds documents for kms_policy_compile that
 * must be rejected with MalformedPolicyDocumentException (and a message naming the element), or
 * must compile. The cases were written from the IAM User Guide, the AWS KMS Developer Guide and
 * the Organizations User Guide, not from the implementation: a failing case is a finding until
 * shown otherwise. Every failing case is printed (file, name, expected, actual) and the test fails.
 *
 * The pure helpers (kms_policy_glob, kms_policy_arn_account) and kms_policy_evaluate itself (the
 * result flags, key_policy without a key policy, service principals, the context API) are tested
 * directly. */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "policy/policy.h"
#include "testutil.h"

#define CASES_DIR "tests/unit/policy_cases/"

/* At least this many evaluation cases must run (a truncated table must not look like a pass). */
#define MIN_EVAL_CASES 330

static const char *const EVAL_FILES[] = {
    "actions.json",
    "resources.json",
    "principals.json",
    "conditions_string.json",
    "conditions_numeric_date.json",
    "conditions_bool_binary_ip_arn_null.json",
    "qualifiers.json",
    "variables.json",
    "notelements.json",
    "scp.json",
    "boundaries_sessions.json",
    "cross_account.json",
    "kms_key_policy.json",
    "kms_conditions.json",
    "global_keys.json",
    "anonymous.json",
    "resource_star.json",
    "boundaries_resource.json",
    "sessions_resource.json",
    "scp_more.json",
};
#define N_EVAL_FILES (sizeof EVAL_FILES / sizeof EVAL_FILES[0])

/* Members of a case object that are for this runner, not for kms_policy_simulate. */
static const char *const RUNNER_KEYS[] = {"name", "why", "expect", "expectMatchedSids"};

static size_t eval_run;
static size_t eval_failed;

/* ---- Loading the tables ---------------------------------------------------------------------*/

/* The "cases" array of a case file (the caller json_decref()s *root). */
static json_t *load_cases(const char *file, json_t **root)
{
    char *path = kms_test_source_path(CASES_DIR);
    char *full = malloc(strlen(path) + strlen(file) + 1);
    assert_non_null(full);
    strcpy(full, path);
    strcat(full, file);
    free(path);
    json_error_t err;
    *root = json_load_file(full, JSON_REJECT_DUPLICATES, &err);
    if (*root == NULL) {
        fail_msg("%s: %s (line %d)", full, err.text, err.line);
    }
    free(full);
    json_t *cases = json_object_get(*root, "cases");
    if (!json_is_array(cases) || json_array_size(cases) == 0) {
        fail_msg("%s: no \"cases\" array", file);
    }
    return cases;
}

static const char *case_str(const json_t *c, const char *member, const char *file)
{
    const char *s = json_string_value(json_object_get(c, member));
    if (s == NULL) {
        fail_msg("%s: a case without a string \"%s\"", file, member);
    }
    return s;
}

/* ---- Evaluation cases -----------------------------------------------------------------------*/

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The Sids of a JSON array, sorted, as one comma-separated string (malloc'd). */
static char *sorted_sids(const json_t *array, const char *member)
{
    size_t n = json_array_size(array);
    const char **v = calloc(n + 1, sizeof *v);
    assert_non_null(v);
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(array, i);
        const char *s =
            member ? json_string_value(json_object_get(e, member)) : json_string_value(e);
        v[i] = s ? s : "(none)";
        len += strlen(v[i]) + 1;
    }
    qsort(v, n, sizeof *v, cmp_str);
    char *out = calloc(len, 1);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        strcat(out, i ? "," : "");
        strcat(out, v[i]);
    }
    free(v);
    return out;
}

/* Compares the matched Sids when the case asks for it. True when they agree. */
static bool check_sids(const char *file, const char *name, const json_t *c, const json_t *out)
{
    const json_t *want = json_object_get(c, "expectMatchedSids");
    if (want == NULL) {
        return true;
    }
    char *w = sorted_sids(want, NULL);
    char *g = sorted_sids(json_object_get(out, "MatchedStatements"), "Sid");
    bool ok = strcmp(w, g) == 0;
    if (!ok) {
        print_message("FAIL %s: %s: expected matched Sids [%s], got [%s]\n", file, name, w, g);
    }
    free(w);
    free(g);
    return ok;
}

/* Runs one case through kms_policy_simulate. True when it passes; prints it when it does not. */
static bool run_eval_case(const char *file, const json_t *c)
{
    const char *name = case_str(c, "name", file);
    const char *expect = case_str(c, "expect", file);
    json_t *input = json_deep_copy(c);
    assert_non_null(input);
    for (size_t i = 0; i < sizeof RUNNER_KEYS / sizeof RUNNER_KEYS[0]; i++) {
        json_object_del(input, RUNNER_KEYS[i]);
    }
    char *in = json_dumps(input, JSON_COMPACT);
    assert_non_null(in);
    json_decref(input);
    char *out = NULL;
    bool ok = false;
    if (kms_policy_simulate(in, strlen(in), &out) != 0) {
        print_message("FAIL %s: %s: expected %s, got error %s: %s\n", file, name, expect,
                      kms_error_name(kms_last_error()), kms_last_error_message());
        goto out;
    }
    json_error_t err;
    json_t *result = json_loads(out, 0, &err);
    const char *got = json_string_value(json_object_get(result, "EvalDecision"));
    if (got == NULL) {
        print_message("FAIL %s: %s: expected %s, got no EvalDecision in %s\n", file, name, expect,
                      out);
    } else if (strcmp(got, expect) != 0) {
        print_message("FAIL %s: %s: expected %s, got %s\n", file, name, expect, got);
    } else {
        ok = check_sids(file, name, c, result);
    }
    json_decref(result);
out:
    free(out);
    free(in);
    return ok;
}

/* One cmocka test per case file; the file name comes as the test's state. */
static void test_case_file(void **state)
{
    const char *file = *state;
    json_t *root = NULL;
    json_t *cases = load_cases(file, &root);
    size_t failed = 0;
    size_t i = 0;
    json_t *c = NULL;
    json_array_foreach(cases, i, c)
    {
        if (!run_eval_case(file, c)) {
            failed++;
        }
    }
    size_t n = json_array_size(cases);
    eval_run += n;
    eval_failed += failed;
    json_decref(root);
    print_message("%s: %zu cases, %zu failed\n", file, n, failed);
    if (failed != 0) {
        fail_msg("%s: %zu of %zu cases failed", file, failed, n);
    }
}

static void test_case_totals(void **state)
{
    (void)state;
    print_message("policy evaluation cases: %zu run, %zu failed\n", eval_run, eval_failed);
    assert_true(eval_run >= MIN_EVAL_CASES);
}

/* ---- Validation cases -----------------------------------------------------------------------*/

static kms_policy_kind parse_kind(const char *s)
{
    static const struct {
        const char *name;
        kms_policy_kind kind;
    } KINDS[] = {{"managed", (kms_policy_kind)(KMS_POLICY_IDENTITY | KMS_POLICY_MANAGED)},
                 {"identity", KMS_POLICY_IDENTITY},
                 {"scp", KMS_POLICY_SCP},
                 {"resource", KMS_POLICY_RESOURCE},
                 {"key", KMS_POLICY_KEY},
                 {"trust", KMS_POLICY_TRUST}};
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) {
        if (strcmp(KINDS[i].name, s) == 0) {
            return KINDS[i].kind;
        }
    }
    fail_msg("unknown policy kind \"%s\"", s);
    return KMS_POLICY_IDENTITY;
}

/* The document of a validation case as text (malloc'd): a string as given, else compact JSON. */
static char *case_document(const json_t *c)
{
    const json_t *doc = json_object_get(c, "document");
    if (json_is_string(doc)) {
        return strdup(json_string_value(doc));
    }
    return json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The operation a kind of policy is given to, whose service names the error: IAM's
 * CreatePolicy, PutUserPolicy, CreateRole, KMS's PutKeyPolicy, Organizations' CreatePolicy. */
static const char *kind_operation(const char *kind)
{
    static const struct {
        const char *kind, *operation;
    } OPS[] = {{"managed", "iam:CreatePolicy"},       {"identity", "iam:PutUserPolicy"},
               {"trust", "iam:CreateRole"},           {"key", "PutKeyPolicy"},
               {"scp", "organizations:CreatePolicy"}, {"resource", "PutKeyPolicy"}};
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        if (strcmp(OPS[i].kind, kind) == 0) {
            return OPS[i].operation;
        }
    }
    return NULL;
}

/* Checks a rejection: the right code (as the kind's operation's service names it, "code"), and a
 * message naming the element ("messageContains") or starting with AWS's words
 * ("messageStartsWith"). */
static bool check_rejection(const char *name, const json_t *c)
{
    kms_error e = kms_last_error();
    const char *msg = kms_last_error_message();
    if (e != KMS_ERR_MALFORMED_POLICY) {
        print_message("FAIL validation.json: %s: expected %s, got %s: %s\n", name,
                      kms_error_name(KMS_ERR_MALFORMED_POLICY), kms_error_name(e), msg);
        return false;
    }
    const char *code = json_string_value(json_object_get(c, "code"));
    const char *op = kind_operation(json_string_value(json_object_get(c, "kind")));
    if (code != NULL && strcmp(kms_error_name_for(e, op), code) != 0) {
        print_message("FAIL validation.json: %s: %s answers %s, not %s\n", name, op,
                      kms_error_name_for(e, op), code);
        return false;
    }
    const char *start = json_string_value(json_object_get(c, "messageStartsWith"));
    if (start != NULL && strncmp(msg, start, strlen(start)) != 0) {
        print_message("FAIL validation.json: %s: message \"%s\" does not start with \"%s\"\n", name,
                      msg, start);
        return false;
    }
    const char *want = json_string_value(json_object_get(c, "messageContains"));
    if (want != NULL && (msg == NULL || strcasestr(msg, want) == NULL)) {
        print_message("FAIL validation.json: %s: message \"%s\" does not mention \"%s\"\n", name,
                      msg ? msg : "(null)", want);
        return false;
    }
    return true;
}

static bool run_validation_case(const json_t *c)
{
    const char *name = case_str(c, "name", "validation.json");
    kms_policy_kind kind = parse_kind(case_str(c, "kind", "validation.json"));
    bool valid = json_is_true(json_object_get(c, "valid"));
    char *doc = case_document(c);
    assert_non_null(doc);
    kms_policy *p = NULL;
    int rc = kms_policy_compile(doc, strlen(doc), kind, "ValidationCase", &p);
    bool ok = false;
    if (valid) {
        ok = rc == 0 && p != NULL;
        if (!ok) {
            print_message("FAIL validation.json: %s: expected valid, got %s: %s\n", name,
                          kms_error_name(kms_last_error()), kms_last_error_message());
        }
    } else if (rc == 0) {
        print_message("FAIL validation.json: %s: expected %s, got a compiled policy\n", name,
                      kms_error_name(KMS_ERR_MALFORMED_POLICY));
    } else {
        ok = check_rejection(name, c);
    }
    kms_policy_free(p);
    free(doc);
    return ok;
}

static void test_validation(void **state)
{
    (void)state;
    json_t *root = NULL;
    json_t *cases = load_cases("validation.json", &root);
    size_t failed = 0;
    size_t i = 0;
    json_t *c = NULL;
    json_array_foreach(cases, i, c)
    {
        if (!run_validation_case(c)) {
            failed++;
        }
    }
    size_t n = json_array_size(cases);
    json_decref(root);
    print_message("validation.json: %zu cases, %zu failed\n", n, failed);
    if (failed != 0) {
        fail_msg("validation.json: %zu of %zu cases failed", failed, n);
    }
}

/* The code of a refusal as each service's wire carries it (botocore's iam and sts models'
 * "error": {"code"}, Organizations' and KMS's shape names), and back (kms_error_from_name, as a
 * client reads it). */
static void test_error_codes(void **state)
{
    (void)state;
    static const struct {
        kms_error code;
        const char *operation, *name;
    } CODES[] = {
        {KMS_ERR_MALFORMED_POLICY, "iam:CreatePolicy", "MalformedPolicyDocument"},
        {KMS_ERR_MALFORMED_POLICY, "iam:PutUserPolicy", "MalformedPolicyDocument"},
        {KMS_ERR_MALFORMED_POLICY, "sts:AssumeRole", "MalformedPolicyDocument"},
        {KMS_ERR_MALFORMED_POLICY, "PutKeyPolicy", "MalformedPolicyDocumentException"},
        {KMS_ERR_MALFORMED_POLICY, "organizations:CreatePolicy",
         "MalformedPolicyDocumentException"},
        {KMS_ERR_NO_SUCH_ENTITY, "iam:GetUser", "NoSuchEntity"},
        {KMS_ERR_ENTITY_EXISTS, "iam:CreateUser", "EntityAlreadyExists"},
        {KMS_ERR_DELETE_CONFLICT, "iam:DeleteUser", "DeleteConflict"},
        {KMS_ERR_LIMIT_EXCEEDED, "iam:CreateAccessKey", "LimitExceeded"},
        {KMS_ERR_INVALID_INPUT, "iam:CreateUser", "InvalidInput"},
        {KMS_ERR_PASSWORD_POLICY, "iam:CreateLoginProfile", "PasswordPolicyViolation"},
        {KMS_ERR_REPORT_NOT_PRESENT, "iam:GetCredentialReport", "ReportNotPresent"},
        {KMS_ERR_ACCESS_DENIED, "iam:ListUsers", "AccessDenied"},
        {KMS_ERR_ACCESS_DENIED, "Encrypt", "AccessDeniedException"},
        {KMS_ERR_UNRECOGNIZED_CLIENT, "sts:GetCallerIdentity", "InvalidClientTokenId"},
        {KMS_ERR_INVALID_AUTH_CODE, "sts:AssumeRole", "AccessDenied"},
        {KMS_ERR_NO_SUCH_ENTITY, "organizations:DescribePolicy", "PolicyNotFoundException"},
        {KMS_ERR_DELETE_CONFLICT, "organizations:DeletePolicy", "PolicyInUseException"},
        {KMS_ERR_INVALID_INPUT, "organizations:CreatePolicy", "InvalidInputException"},
        {KMS_ERR_NOT_FOUND, "DescribeKey", "NotFoundException"},
        {KMS_ERR_NOT_FOUND, NULL, "NotFoundException"},
    };
    for (size_t i = 0; i < sizeof CODES / sizeof CODES[0]; i++) {
        assert_string_equal(kms_error_name_for(CODES[i].code, CODES[i].operation), CODES[i].name);
        assert_int_equal(kms_error_from_name(CODES[i].name),
                         CODES[i].code == KMS_ERR_INVALID_AUTH_CODE ? KMS_ERR_ACCESS_DENIED
                                                                    : CODES[i].code);
    }
}

/* ---- The pure helpers -----------------------------------------------------------------------*/

static void test_glob(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *text;
        bool ci, match;
    } V[] = {
        {"*", "", false, true},
        {"*", "anything at all", false, true},
        {"", "", false, true},
        {"", "a", false, false},
        {"?", "", false, false},
        {"?", "x", false, true},
        {"a*b", "ab", false, true},
        {"a*b", "axxb", false, true},
        {"a*b", "axxbc", false, false},
        {"a?c", "abc", false, true},
        {"a?c", "ac", false, false},
        {"a*a*a", "aaa", false, true},
        {"a*a*a", "aa", false, false},
        {"*ab*ab", "abxabab", false, true},
        {"*a*b*", "xaybz", false, true},
        {"a*", "b", false, false},
        {"a[b]", "a[b]", false, true},
        {"a.c", "abc", false, false},
        {"kms:Decrypt", "kms:Decrypt", false, true},
        {"kms:decrypt", "kms:Decrypt", false, false},
        {"kms:decrypt", "kms:Decrypt", true, true},
        {"KMS:GEN*", "kms:GenerateDataKey", true, true},
        {"KMS:GEN*", "kms:GenerateDataKey", false, false},
        {"kms:*Key", "kms:DescribeKey", true, true},
        {"kms:*Key", "kms:ListKeys", true, false},
        {"arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c", false, true},
        {"arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", false, false},
        {"arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/x", false, false},
    };
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
        bool got = kms_policy_glob(V[i].pattern, V[i].text, V[i].ci);
        if (got != V[i].match) {
            fail_msg("kms_policy_glob(\"%s\", \"%s\", %d) = %d, expected %d", V[i].pattern,
                     V[i].text, V[i].ci, got, V[i].match);
        }
    }
}

static void test_arn_account(void **state)
{
    (void)state;
    static const struct {
        const char *arn;
        int rc;
        const char *account;
    } V[] = {
        {"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", 0,
         "111122223333"},
        {"arn:aws:iam::111122223333:user/division/alice", 0, "111122223333"},
        {"arn:aws:iam::111122223333:root", 0, "111122223333"},
        {"arn:aws:sts::444455556666:assumed-role/Admin/work", 0, "444455556666"},
        {"arn:aws:s3:::amzn-s3-demo-bucket/key", 0, ""},
        {"arn:aws-cn:kms:cn-north-1:111122223333:alias/x", 0, "111122223333"},
        {"arn:aws:sqs:us-east-1:111122223333:queue:with:colons", 0, "111122223333"},
        {"not-an-arn", -1, NULL},
        {"*", -1, NULL},
        {"", -1, NULL},
        {"arn:aws:kms", -1, NULL},
    };
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
        char out[13] = "sentinel";
        int rc = kms_policy_arn_account(V[i].arn, out);
        if (rc != V[i].rc) {
            fail_msg("kms_policy_arn_account(\"%s\") = %d, expected %d", V[i].arn, rc, V[i].rc);
        }
        if (rc == 0) {
            assert_string_equal(out, V[i].account);
        }
    }
}

/* ---- kms_policy_evaluate directly -----------------------------------------------------------*/

#define ALICE "arn:aws:iam::111122223333:user/alice"
#define KEY "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

static kms_policy *compile(const char *doc, kms_policy_kind kind, const char *label)
{
    kms_policy *p = NULL;
    if (kms_policy_compile(doc, strlen(doc), kind, label, &p) != 0) {
        fail_msg("%s: %s: %s", label, kms_error_name(kms_last_error()), kms_last_error_message());
    }
    assert_non_null(p);
    return p;
}

static const char ALLOW_KMS[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:*\","
    "\"Resource\":\"*\"}]}";
static const char ALLOW_S3[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
    "\"Resource\":\"*\"}]}";
static const char FULL_ACCESS[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"FullAWSAccess\",\"Effect\":\"Allow\","
    "\"Action\":\"*\",\"Resource\":\"*\"}]}";
static const char DENY_DECRYPT[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"AllowAll\",\"Effect\":\"Allow\","
    "\"Action\":\"*\",\"Resource\":\"*\"},{\"Sid\":\"DenyDecrypt\",\"Effect\":\"Deny\","
    "\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}]}";
static const char DEFAULT_KEY_POLICY[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"Enable IAM User Permissions\","
    "\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},"
    "\"Action\":\"kms:*\",\"Resource\":\"*\"}]}";
static const char KEY_POLICY_ALICE[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
    "\"" ALICE "\"},\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}]}";

/* A same-account request of alice for kms:Decrypt on KEY with no policies yet. */
static kms_eval_input alice_decrypt(void)
{
    kms_eval_input in;
    memset(&in, 0, sizeof in);
    in.principal_arn = ALICE;
    in.principal_account = "111122223333";
    in.action = "kms:Decrypt";
    in.resource = KEY;
    return in;
}

/* Policy evaluation logic: KMS key policies must allow; a key with no key policy is unusable
 * even when IAM policies allow. */
static void test_evaluate_key_policy_required(void **state)
{
    (void)state;
    kms_policy *id = compile(ALLOW_KMS, KMS_POLICY_IDENTITY, "identity");
    kms_policy *kp = compile(DEFAULT_KEY_POLICY, KMS_POLICY_KEY, "KeyPolicy");
    const kms_policy *ids[] = {id};
    kms_eval_input in = alice_decrypt();
    in.identity = (kms_policy_list){ids, 1};
    in.key_policy = true;
    kms_eval_result r;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    assert_int_equal(r.decision, KMS_DECISION_IMPLICIT_DENY);
    in.resource_policy = kp;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_ALLOWED);
    assert_true(r.identity_allowed);
    /* Without key_policy the same request is ordinary identity-based evaluation. */
    in.resource_policy = NULL;
    in.key_policy = false;
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_ALLOWED);
    kms_policy_free(id);
    kms_policy_free(kp);
}

/* SCP evaluation: every level must allow; scp_denied says an SCP was the gate. */
static void test_evaluate_scp_flags(void **state)
{
    (void)state;
    kms_policy *id = compile(ALLOW_KMS, KMS_POLICY_IDENTITY, "identity");
    kms_policy *full = compile(FULL_ACCESS, KMS_POLICY_SCP, "FullAWSAccess");
    kms_policy *s3 = compile(ALLOW_S3, KMS_POLICY_SCP, "S3Only");
    kms_policy *deny = compile(DENY_DECRYPT, KMS_POLICY_SCP, "DenyDecrypt");
    const kms_policy *ids[] = {id};
    const kms_policy *root_level[] = {full};
    const kms_policy *ou_s3[] = {s3};
    const kms_policy *ou_deny[] = {full, deny};
    kms_policy_list levels[2] = {{root_level, 1}, {ou_s3, 1}};
    kms_eval_input in = alice_decrypt();
    in.identity = (kms_policy_list){ids, 1};
    in.scps = levels;
    in.scp_levels = 2;
    kms_eval_result r;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    assert_true(r.scp_denied);
    levels[1] = (kms_policy_list){ou_deny, 2};
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_EXPLICIT_DENY);
    assert_true(r.scp_denied);
    levels[1] = (kms_policy_list){root_level, 1};
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_ALLOWED);
    assert_false(r.scp_denied);
    in.scp_levels = 0; /* not in an organization */
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_ALLOWED);
    kms_policy_free(id);
    kms_policy_free(full);
    kms_policy_free(s3);
    kms_policy_free(deny);
}

/* Permissions boundaries and session policies limit identity-based grants. */
static void test_evaluate_boundary_session_flags(void **state)
{
    (void)state;
    kms_policy *id = compile(ALLOW_KMS, KMS_POLICY_IDENTITY, "identity");
    kms_policy *s3 = compile(ALLOW_S3, KMS_POLICY_IDENTITY, "S3Only");
    const kms_policy *ids[] = {id};
    kms_eval_input in = alice_decrypt();
    in.identity = (kms_policy_list){ids, 1};
    in.boundary = s3;
    kms_eval_result r;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    assert_true(r.boundary_denied);
    in.boundary = NULL;
    in.principal_arn = "arn:aws:sts::111122223333:assumed-role/Admin/work";
    in.role_arn = "arn:aws:iam::111122223333:role/Admin";
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_ALLOWED);
    assert_false(r.session_denied);
    in.session = s3;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    assert_true(r.session_denied);
    kms_policy_free(id);
    kms_policy_free(s3);
}

/* Same account: a resource-based policy that names the user grants by itself. */
static void test_evaluate_resource_grant(void **state)
{
    (void)state;
    kms_policy *rp = compile(KEY_POLICY_ALICE, KMS_POLICY_RESOURCE, "ResourcePolicy");
    kms_eval_input in = alice_decrypt();
    in.resource_policy = rp;
    kms_eval_result r;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_ALLOWED);
    assert_true(r.resource_allowed);
    assert_false(r.identity_allowed);
    in.principal_arn = "arn:aws:iam::111122223333:user/bob";
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    assert_false(r.resource_allowed);
    kms_policy_free(rp);
}

/* Documents IAM accepts though they are odd (issue 18): an action with any text after its
 * service prefix is valid and matches nothing that text does not name (a NotAction of it,
 * everything); nothing after the prefix, and a resource-policy statement without Principal, are
 * accepted only by the simulators (KMS_POLICY_AS_SIMULATED), and match nothing. */
static void test_odd_documents(void **state)
{
    (void)state;
    kms_policy *p = NULL;
    static const char *const odd_actions[] = {"kms:Encrypt,kms:Decrypt", "kms: Decrypt",
                                              "kms:Decrypt ", "kms:a:b"};
    for (size_t i = 0; i < sizeof odd_actions / sizeof odd_actions[0]; i++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                 "\"Action\":\"%s\",\"Resource\":\"*\"}]}",
                 odd_actions[i]);
        kms_policy *id = compile(doc, KMS_POLICY_IDENTITY, "Odd");
        kms_policy *kp = compile(DEFAULT_KEY_POLICY, KMS_POLICY_KEY, "KeyPolicy");
        const kms_policy *ids[] = {id};
        kms_eval_input in = alice_decrypt();
        in.identity = (kms_policy_list){ids, 1};
        in.key_policy = true;
        in.resource_policy = kp;
        kms_eval_result r;
        assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
        kms_policy_free(id);
        /* The same as NotAction: every action is outside it, kms:Decrypt too. */
        snprintf(doc, sizeof doc,
                 "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                 "\"NotAction\":\"%s\",\"Resource\":\"*\"}]}",
                 odd_actions[i]);
        id = compile(doc, KMS_POLICY_IDENTITY, "OddNot");
        ids[0] = id;
        assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_ALLOWED);
        kms_policy_free(id);
        kms_policy_free(kp);
    }
    static const char empty_action[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:\","
        "\"Resource\":\"*\"}]}";
    assert_int_equal(
        kms_policy_compile(empty_action, strlen(empty_action), KMS_POLICY_IDENTITY, "Empty", &p),
        -1);
    assert_int_equal(kms_last_error(), KMS_ERR_MALFORMED_POLICY);
    assert_int_equal(kms_policy_compile(",kms:Decrypt", 0, KMS_POLICY_IDENTITY, "x", &p), -1);
    static const char no_service[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"k ms:Decrypt\",\"Resource\":\"*\"}]}";
    assert_int_equal(
        kms_policy_compile(no_service, strlen(no_service), KMS_POLICY_IDENTITY, "Space", &p), -1);
    kms_policy *sim =
        compile(empty_action, (kms_policy_kind)(KMS_POLICY_IDENTITY | KMS_POLICY_AS_SIMULATED),
                "EmptySimulated");
    kms_policy *kp = compile(DEFAULT_KEY_POLICY, KMS_POLICY_KEY, "KeyPolicy");
    const kms_policy *sims[] = {sim};
    kms_eval_input in = alice_decrypt();
    in.identity = (kms_policy_list){sims, 1};
    in.key_policy = true;
    in.resource_policy = kp;
    kms_eval_result r;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    kms_policy_free(sim);
    kms_policy_free(kp);
    /* A key policy statement without Principal: KMS refuses it; the simulator takes it, and it
     * grants nobody. */
    static const char no_principal[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:*\","
        "\"Resource\":\"*\"}]}";
    assert_int_equal(
        kms_policy_compile(no_principal, strlen(no_principal), KMS_POLICY_KEY, "K", &p), -1);
    assert_int_equal(kms_last_error(), KMS_ERR_MALFORMED_POLICY);
    kp = compile(no_principal, (kms_policy_kind)(KMS_POLICY_KEY | KMS_POLICY_AS_SIMULATED),
                 "KeySimulated");
    in = alice_decrypt();
    in.resource_policy = kp;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    assert_false(r.resource_allowed);
    kms_policy_free(kp);
}

/* Service-specific rules (issue 18): sts:GetCallerIdentity is allowed even under an explicit
 * Deny; AWS managed policies are readable by everyone (an explicit Deny still wins); nobody
 * creates or changes a service-linked role or an alias/aws/ alias, whatever a policy allows. */
static void test_service_rules(void **state)
{
    (void)state;
    kms_policy *deny_all =
        compile("{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\","
                "\"Resource\":\"*\"}]}",
                KMS_POLICY_IDENTITY, "DenyAll");
    kms_policy *allow_all = compile(FULL_ACCESS, KMS_POLICY_IDENTITY, "AllowAll");
    const kms_policy *deny[] = {deny_all};
    const kms_policy *allow[] = {allow_all};
    kms_eval_input in = alice_decrypt();
    in.action = "sts:GetCallerIdentity";
    in.resource = "*";
    in.identity = (kms_policy_list){deny, 1};
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_ALLOWED);
    in.action = "sts:GetSessionToken";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_EXPLICIT_DENY);

    in = alice_decrypt();
    in.action = "iam:GetPolicyVersion";
    in.resource = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_ALLOWED);
    in.identity = (kms_policy_list){deny, 1};
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_EXPLICIT_DENY);
    in.identity = (kms_policy_list){NULL, 0};
    in.resource = "arn:aws:iam::111122223333:policy/Mine";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_IMPLICIT_DENY);
    in.resource = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    in.action = "iam:DeletePolicy";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_IMPLICIT_DENY);

    in = alice_decrypt();
    in.identity = (kms_policy_list){allow, 1};
    in.action = "iam:CreateRole";
    in.resource = "arn:aws:iam::111122223333:role/aws-service-role/kms.amazonaws.com/x";
    kms_eval_result r;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_IMPLICIT_DENY);
    assert_true(r.reserved);
    in.action = "iam:GetRole";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_ALLOWED);
    in.action = "kms:CreateAlias";
    in.resource = "arn:aws:kms:us-east-1:111122223333:alias/aws/s3";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_IMPLICIT_DENY);
    in.resource = "arn:aws:kms:us-east-1:111122223333:alias/app";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_ALLOWED);
    kms_policy_free(deny_all);
    kms_policy_free(allow_all);
}

/* A service principal is matched by "Principal": {"Service": ...} only. */
static void test_evaluate_service_principal(void **state)
{
    (void)state;
    static const char BUCKET_POLICY[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"AWSCloudTrailWrite\","
        "\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"cloudtrail.amazonaws.com\"},"
        "\"Action\":\"s3:PutObject\",\"Resource\":\"arn:aws:s3:::trail-bucket/AWSLogs/*\"}]}";
    kms_policy *rp = compile(BUCKET_POLICY, KMS_POLICY_RESOURCE, "BucketPolicy");
    kms_eval_input in;
    memset(&in, 0, sizeof in);
    in.principal_arn = "cloudtrail.amazonaws.com";
    in.service = true;
    in.action = "s3:PutObject";
    in.resource = "arn:aws:s3:::trail-bucket/AWSLogs/111122223333/log.json.gz";
    in.resource_account = "111122223333";
    in.resource_policy = rp;
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_ALLOWED);
    in.principal_arn = "config.amazonaws.com";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_IMPLICIT_DENY);
    in.principal_arn = "cloudtrail.amazonaws.com";
    in.action = "s3:DeleteObject";
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_IMPLICIT_DENY);
    kms_policy_free(rp);
}

/* The deciding statement is reported, with its Sid. */
static void test_evaluate_matches(void **state)
{
    (void)state;
    kms_policy *p = compile(DENY_DECRYPT, KMS_POLICY_IDENTITY, "PolicyInputList.1");
    assert_string_equal(kms_policy_label(p), "PolicyInputList.1");
    assert_int_equal(kms_policy_statement_count(p), 2);
    assert_string_equal(kms_policy_statement_sid(p, 1), "DenyDecrypt");
    const kms_policy *ids[] = {p};
    kms_eval_input in = alice_decrypt();
    in.identity = (kms_policy_list){ids, 1};
    kms_eval_result r;
    assert_int_equal(kms_policy_evaluate(&in, &r), KMS_DECISION_EXPLICIT_DENY);
    bool found = false;
    assert_true(r.match_count >= 1 && r.match_count <= KMS_EVAL_MAX_MATCHES);
    for (size_t i = 0; i < r.match_count; i++) {
        if (r.matches[i].deny) {
            assert_ptr_equal(r.matches[i].policy, p);
            assert_int_equal(r.matches[i].statement, 1);
            found = true;
        }
    }
    assert_true(found);
    kms_policy_free(p);
}

/* The request context: keys compare case-insensitively, a second add makes a key multi-valued,
 * set replaces. */
static void test_context(void **state)
{
    (void)state;
    kms_policy_ctx *ctx = kms_policy_ctx_new();
    assert_non_null(ctx);
    assert_null(kms_policy_ctx_get(ctx, "kms:EncryptionContextKeys"));
    assert_int_equal(kms_policy_ctx_add(ctx, "kms:EncryptionContextKeys", "AppName"), 0);
    assert_int_equal(kms_policy_ctx_add(ctx, "KMS:encryptioncontextkeys", "Project"), 0);
    assert_string_equal(kms_policy_ctx_get(ctx, "kms:ENCRYPTIONCONTEXTKEYS"), "AppName");
    static const char ANY_PROJECT[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:*\","
        "\"Resource\":\"*\",\"Condition\":{\"ForAnyValue:StringEquals\":{"
        "\"kms:EncryptionContextKeys\":\"Project\"}}}]}";
    kms_policy *p = compile(ANY_PROJECT, KMS_POLICY_IDENTITY, "identity");
    const kms_policy *ids[] = {p};
    kms_eval_input in = alice_decrypt();
    in.identity = (kms_policy_list){ids, 1};
    in.ctx = ctx;
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_ALLOWED);
    assert_int_equal(kms_policy_ctx_set(ctx, "kms:EncryptionContextKeys", "Stage"), 0);
    assert_string_equal(kms_policy_ctx_get(ctx, "kms:EncryptionContextKeys"), "Stage");
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_IMPLICIT_DENY);
    in.ctx = NULL; /* no condition keys at all: ForAnyValue is false */
    assert_int_equal(kms_policy_evaluate(&in, NULL), KMS_DECISION_IMPLICIT_DENY);
    kms_policy_free(p);
    kms_policy_ctx_free(ctx);
}

/* The document need not be NUL-terminated: only len bytes are read. */
static void test_compile_len(void **state)
{
    (void)state;
    char buf[sizeof ALLOW_KMS + 8];
    memcpy(buf, ALLOW_KMS, strlen(ALLOW_KMS));
    memcpy(buf + strlen(ALLOW_KMS), "}}garbag", 8);
    kms_policy *p = NULL;
    assert_int_equal(kms_policy_compile(buf, strlen(ALLOW_KMS), KMS_POLICY_IDENTITY, "x", &p), 0);
    assert_non_null(p);
    kms_policy_free(p);
    p = NULL;
    assert_kms_error(kms_policy_compile(buf, strlen(ALLOW_KMS) - 1, KMS_POLICY_IDENTITY, "x", &p),
                     KMS_ERR_MALFORMED_POLICY);
    kms_policy_free(p);
}

static void test_decision_names(void **state)
{
    (void)state;
    assert_string_equal(kms_policy_decision_name(KMS_DECISION_ALLOWED), "allowed");
    assert_string_equal(kms_policy_decision_name(KMS_DECISION_EXPLICIT_DENY), "explicitDeny");
    assert_string_equal(kms_policy_decision_name(KMS_DECISION_IMPLICIT_DENY), "implicitDeny");
}

/* A deleted principal's ARN becomes its unique id in Principal / NotPrincipal "AWS" values,
 * strings and array members alike, exact matches only; conditions and other principals stay. */
static void test_principal_replace(void **state)
{
    (void)state;
    static const char ERIN[] = "arn:aws:iam::111122223333:user/erin";
    static const char ID[] = "AIDAJQABLZS4A3QDU576Q";
    static const char DOC[] =
        "{\"Version\":\"2012-10-17\",\"Statement\":["
        "{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:user/erin\"},"
        "\"Action\":\"kms:*\",\"Resource\":\"*\"},"
        "{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"arn:aws:iam::111122223333:user/erin2\","
        "\"arn:aws:iam::111122223333:user/erin\"]},\"Action\":\"kms:Decrypt\",\"Resource\":\"*\","
        "\"Condition\":{\"StringEquals\":{\"aws:PrincipalArn\":"
        "\"arn:aws:iam::111122223333:user/erin\"}}},"
        "{\"Effect\":\"Deny\",\"NotPrincipal\":{\"AWS\":[\"arn:aws:iam::111122223333:user/erin\"]},"
        "\"Action\":\"kms:Encrypt\",\"Resource\":\"*\"}]}";
    char *out = NULL;
    assert_int_equal(kms_policy_principal_replace(DOC, ERIN, ID, &out), 0);
    assert_non_null(out);
    json_t *root = json_loads(out, 0, NULL);
    assert_non_null(root);
    json_t *st = json_object_get(root, "Statement");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(st, 0), "Principal"), "AWS")),
                        ID);
    json_t *list = json_object_get(json_object_get(json_array_get(st, 1), "Principal"), "AWS");
    assert_string_equal(json_string_value(json_array_get(list, 0)),
                        "arn:aws:iam::111122223333:user/erin2");
    assert_string_equal(json_string_value(json_array_get(list, 1)), ID);
    json_t *cond =
        json_object_get(json_object_get(json_array_get(st, 1), "Condition"), "StringEquals");
    assert_string_equal(json_string_value(json_object_get(cond, "aws:PrincipalArn")), ERIN);
    list = json_object_get(json_object_get(json_array_get(st, 2), "NotPrincipal"), "AWS");
    assert_string_equal(json_string_value(json_array_get(list, 0)), ID);
    json_decref(root);
    /* The result is a valid policy. */
    kms_policy *p = compile(out, KMS_POLICY_KEY, "replaced");
    kms_policy_free(p);
    free(out);
    out = (char *)1;
    /* Nothing names the principal: no new document. */
    assert_int_equal(
        kms_policy_principal_replace(DOC, "arn:aws:iam::111122223333:user/eri", ID, &out), 0);
    assert_null(out);
    assert_true(kms_policy_is_unique_id(ID));
    assert_true(kms_policy_is_unique_id("AROADBQP57FF2AEXAMPLE"));
    assert_false(kms_policy_is_unique_id("AGPAJQABLZS4A3QDU576Q")); /* a group's: no principal */
    assert_false(kms_policy_is_unique_id("AIDAJQABLZS4A3QDU576"));
    assert_false(kms_policy_is_unique_id("AIDAJQABLZS4A3QDU576q"));
}

#define CASE_FILE_TEST(i)                                                                          \
    {                                                                                              \
        EVAL_FILES[i], test_case_file, NULL, NULL, (void *)EVAL_FILES[i]                           \
    }

/* A context past its first blocks (policy_context.c keeps entries and text in an arena): many
 * keys, many values of one key, values longer than a block, and set() replacing values; every
 * value stays readable and a numeric condition still parses its value where it compares. */
static void context_grows(kms_policy_ctx *ctx)
{
    assert_non_null(ctx);
    char key[64], value[64];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "aws:PrincipalTag/K%d", i);
        snprintf(value, sizeof value, "%d", i);
        assert_int_equal(kms_policy_ctx_add(ctx, key, value), 0);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(value, sizeof value, "v%d", i);
        assert_int_equal(kms_policy_ctx_add(ctx, "kms:EncryptionContextKeys", value), 0);
    }
    char *long_value = malloc(10000);
    assert_non_null(long_value);
    memset(long_value, 'x', 9999);
    long_value[9999] = '\0';
    assert_int_equal(kms_policy_ctx_add(ctx, "kms:EncryptionContext:Long", long_value), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "AWS:PRINCIPALTAG/k%d", i);
        snprintf(value, sizeof value, "%d", i);
        assert_string_equal(kms_policy_ctx_get(ctx, key), value);
    }
    assert_string_equal(kms_policy_ctx_get(ctx, "kms:EncryptionContextKeys"), "v0");
    assert_string_equal(kms_policy_ctx_get(ctx, "kms:EncryptionContext:Long"), long_value);
    assert_int_equal(kms_policy_ctx_set(ctx, "kms:EncryptionContextKeys", "only"), 0);
    assert_string_equal(kms_policy_ctx_get(ctx, "kms:EncryptionContextKeys"), "only");
    free(long_value);

    const char *doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                      "\"Action\":\"kms:Encrypt\",\"Resource\":\"*\",\"Condition\":{"
                      "\"NumericGreaterThan\":{\"aws:PrincipalTag/K99\":\"98\"}}}]}";
    kms_policy *p = NULL;
    assert_int_equal(kms_policy_compile(doc, strlen(doc), KMS_POLICY_IDENTITY, "t", &p), 0);
    kms_eval_input in;
    kms_eval_result res;
    memset(&in, 0, sizeof in);
    const kms_policy *items[] = {p};
    in.principal_arn = "arn:aws:iam::111122223333:user/alice";
    in.principal_account = "111122223333";
    in.action = "kms:Encrypt";
    in.resource = "arn:aws:kms:us-east-1:111122223333:key/k";
    in.resource_account = "111122223333";
    in.identity.items = items;
    in.identity.count = 1;
    in.ctx = ctx;
    assert_int_equal(kms_policy_evaluate(&in, &res), KMS_DECISION_ALLOWED);
    assert_int_equal(kms_policy_ctx_set(ctx, "aws:PrincipalTag/K99", "98"), 0);
    assert_int_equal(kms_policy_evaluate(&in, &res), KMS_DECISION_IMPLICIT_DENY);
    assert_int_equal(kms_policy_ctx_set(ctx, "aws:PrincipalTag/K99", "not a number"), 0);
    assert_int_equal(kms_policy_evaluate(&in, &res), KMS_DECISION_IMPLICIT_DENY);
    kms_policy_free(p);
    kms_policy_ctx_free(ctx);
}

/* Numeric, Date and IpAddress conditions parse a context value the first time one compares it
 * and keep the result: evaluating a context again, or on two threads at once, decides the same. */
typedef struct shared_eval {
    const kms_eval_input *in;
    int allowed;
} shared_eval;

static void *evaluate_often(void *arg)
{
    shared_eval *se = arg;
    for (int i = 0; i < 2000; i++) {
        kms_eval_result res;
        se->allowed += kms_policy_evaluate(se->in, &res) == KMS_DECISION_ALLOWED;
    }
    return NULL;
}

static void test_context_parsed_once(void **state)
{
    (void)state;
    const char *doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                      "\"Action\":\"kms:Encrypt\",\"Resource\":\"*\",\"Condition\":{"
                      "\"IpAddress\":{\"aws:SourceIp\":\"192.0.2.0/24\"},"
                      "\"DateGreaterThan\":{\"aws:CurrentTime\":\"2020-01-01T00:00:00Z\"},"
                      "\"NumericLessThan\":{\"aws:MultiFactorAuthAge\":\"3600\"}}}]}";
    kms_policy *p = NULL;
    assert_int_equal(kms_policy_compile(doc, strlen(doc), KMS_POLICY_IDENTITY, "t", &p), 0);
    kms_policy_ctx_storage storage;
    kms_policy_ctx *ctx = kms_policy_ctx_init(&storage);
    assert_int_equal(kms_policy_ctx_add(ctx, "aws:SourceIp", "192.0.2.7"), 0);
    assert_int_equal(kms_policy_ctx_add(ctx, "aws:CurrentTime", "2026-12-07T22:00:00Z"), 0);
    assert_int_equal(kms_policy_ctx_add(ctx, "aws:MultiFactorAuthAge", "60"), 0);
    const kms_policy *items[] = {p};
    kms_eval_input in;
    memset(&in, 0, sizeof in);
    in.principal_arn = "arn:aws:iam::111122223333:user/alice";
    in.principal_account = "111122223333";
    in.action = "kms:Encrypt";
    in.resource = "arn:aws:kms:us-east-1:111122223333:key/k";
    in.resource_account = "111122223333";
    in.identity.items = items;
    in.identity.count = 1;
    in.ctx = ctx;
    shared_eval a = {&in, 0}, b = {&in, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, evaluate_often, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, evaluate_often, &b), 0);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    assert_int_equal(a.allowed, 2000);
    assert_int_equal(b.allowed, 2000);
    /* A value replaced is parsed again. */
    assert_int_equal(kms_policy_ctx_set(ctx, "aws:SourceIp", "198.51.100.1"), 0);
    kms_eval_result res;
    assert_int_equal(kms_policy_evaluate(&in, &res), KMS_DECISION_IMPLICIT_DENY);
    assert_int_equal(kms_policy_evaluate(&in, &res), KMS_DECISION_IMPLICIT_DENY);
    assert_int_equal(kms_policy_ctx_set(ctx, "aws:SourceIp", "192.0.2.200"), 0);
    assert_int_equal(kms_policy_evaluate(&in, &res), KMS_DECISION_ALLOWED);
    kms_policy_ctx_free(ctx);
    kms_policy_free(p);
}

/* ... on the heap (kms_policy_ctx_new) and in caller storage (kms_policy_ctx_init, the gate's). */
static void test_context_grows(void **state)
{
    (void)state;
    context_grows(kms_policy_ctx_new());
    kms_policy_ctx_storage storage;
    context_grows(kms_policy_ctx_init(&storage));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_arn_account),
        cmocka_unit_test(test_decision_names),
        cmocka_unit_test(test_compile_len),
        cmocka_unit_test(test_evaluate_key_policy_required),
        cmocka_unit_test(test_evaluate_scp_flags),
        cmocka_unit_test(test_evaluate_boundary_session_flags),
        cmocka_unit_test(test_evaluate_resource_grant),
        cmocka_unit_test(test_odd_documents),
        cmocka_unit_test(test_service_rules),
        cmocka_unit_test(test_evaluate_service_principal),
        cmocka_unit_test(test_evaluate_matches),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_context_grows),
        cmocka_unit_test(test_context_parsed_once),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_principal_replace),
        CASE_FILE_TEST(0),
        CASE_FILE_TEST(1),
        CASE_FILE_TEST(2),
        CASE_FILE_TEST(3),
        CASE_FILE_TEST(4),
        CASE_FILE_TEST(5),
        CASE_FILE_TEST(6),
        CASE_FILE_TEST(7),
        CASE_FILE_TEST(8),
        CASE_FILE_TEST(9),
        CASE_FILE_TEST(10),
        CASE_FILE_TEST(11),
        CASE_FILE_TEST(12),
        CASE_FILE_TEST(13),
        CASE_FILE_TEST(14),
        CASE_FILE_TEST(15),
        CASE_FILE_TEST(16),
        CASE_FILE_TEST(17),
        CASE_FILE_TEST(18),
        CASE_FILE_TEST(19),
        cmocka_unit_test(test_case_totals),
    };
    _Static_assert(N_EVAL_FILES == 20, "one CASE_FILE_TEST per case file");
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
