#!/usr/bin/env bash
# kmsctl's --query against the aws CLI's own JMESPath library (python3 jmespath, which the CLI
# runs): ~150 expressions, written from the specification to cover every grammar element and
# every built-in function, errors included, each evaluated over a few documents by both. The
# results must be the same JSON (a whole number and a float differ, as they print differently);
# where the library raises an error, kmsctl's evaluator must fail too. tests/unit/jmespath_eval is
# kmsctl's evaluator as a test hook. Then --query end to end: checked before any call (252, with
# the position), applied after pagination has merged every page, printed by --output text.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EVAL="$KMS_BUILD_DIR/tests/jmespath_eval"
[ -x "$EVAL" ] || { echo "jmespath_eval is not built ($EVAL)"; exit 1; }
if ! "$PY" -c 'import jmespath' 2>/dev/null; then
    fail "python3's jmespath module (Debian: python3-jmespath, which scripts/setup.sh installs) is missing"
    exit 1
fi

# ---- the differential run -----------------------------------------------------------------------
# Each case: an expression, and the documents it runs on ("*": all of them). The compile-time
# refusals kmsctl adds (an unknown function, a wrong argument count, a slice step of 0) run where
# the library evaluates them too, so that both fail.
cat >"$TMP/cases.py" <<'PYEOF'
DOCS = {
    "keys": {"Keys": [{"KeyId": "k1", "KeyArn": "arn:aws:kms:us-east-1:111122223333:key/k1"},
                      {"KeyId": "k2", "KeyArn": "arn:aws:kms:us-east-1:111122223333:key/k2"},
                      {"KeyId": "k3", "KeyArn": "arn:aws:kms:us-east-1:111122223333:key/k3"}],
             "KeyMetadata": {"KeyId": "k1", "Enabled": True, "KeyState": "Enabled",
                             "CreationDate": 1700000000.5, "KeyUsage": "ENCRYPT_DECRYPT",
                             "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": False,
                             "Tags": [{"TagKey": "env", "TagValue": "prod"},
                                      {"TagKey": "team", "TagValue": "core"}]}},
    "people": {"people": [{"name": "ann", "age": 30, "state": "running", "tags": ["x", "y"],
                           "score": 1.5, "nested": {"v": 1}},
                          {"name": "bob", "age": 25, "state": "stopped", "tags": [],
                           "score": 2, "nested": {"v": 2}},
                          {"name": "cyd", "age": 35, "state": "running", "tags": ["y"],
                           "nested": None},
                          {"name": "dee", "age": 25, "state": "pending", "score": -3}],
               "n": [1, 2.5, -3, 0, 10], "s": ["b", "a", "c", "ab"],
               "mixed": [1, "a", None, True, False, [1, 2], {"a": 1}, "", [], {}],
               "empty": [], "obj": {}, "str": "Hello, w\u00f6rld \u2713", "zero": 0,
               "deep": [[1, [2, [3]]], [4], 5], "t": True, "f": False, "nul": None,
               "foo": {"bar": {"baz": "v"}, "list": [{"k": "a", "v": 1}, {"k": "b", "v": 2}]},
               "with space": 1, "quote\"d": 2, "\u2713": 3, "a-b": 4},
    "list": [{"a": 1, "b": [1, 2], "c": {"d": "x"}}, {"a": 2, "b": [3], "c": {"d": "y"}},
             {"a": "3", "b": [], "c": None}, [5, 6], 7, None],
    "scalar": "just a string",
}

ALL = "*"
CASES = [
    # identifiers, quoted identifiers, sub-expressions
    ("Keys", ALL), ("KeyMetadata.KeyId", ALL), ("KeyMetadata.Nope", ALL), ("nope.nope.nope", ALL),
    ('"with space"', ALL), ('"quote\\"d"', ALL), ('"\\u2713"', ALL), ('"a-b"', ALL),
    ('foo."bar".baz', ALL), ("foo.bar.baz.qux", ALL), ("str.length", ALL), ("_x9", ALL),
    # index expressions, negative too
    ("Keys[0]", ALL), ("Keys[-1].KeyId", ALL), ("Keys[3]", ALL), ("Keys[-4]", ALL),
    ("[0]", ALL), ("[-1]", ALL), ("deep[0][1][1][0]", ALL), ("n[1]", ALL), ("str[0]", ALL),
    # slices
    ("n[1:3]", ALL), ("n[:2]", ALL), ("n[::2]", ALL), ("n[::-1]", ALL), ("n[-2:]", ALL),
    ("n[10:]", ALL), ("n[-10:2]", ALL), ("n[3:1]", ALL), ("n[3:1:-1]", ALL), ("n[:-1:3]", ALL),
    ("[1:]", ALL), ("[::-2].a", ALL), ("Keys[:2].KeyId", ALL), ("s[0:100:-1]", ALL),
    ("n[::0]", ["people"]),
    # list, object and flatten projections
    ("Keys[*].KeyId", ALL), ("Keys[*]", ALL), ("[*].a", ALL), ("[*].c.d", ALL), ("[*][0]", ALL),
    ("people[*].tags[0]", ALL), ("people[*].nested.v", ALL), ("*.KeyId", ALL), ("*", ALL),
    ("foo.*.baz", ALL), ("foo.*", ALL), ("*.*", ALL), ("*[0]", ALL), ("people[*].*", ALL),
    ("deep[]", ALL), ("deep[][]", ALL), ("deep[][][]", ALL), ("[]", ALL), ("[].b", ALL),
    ("[].b[]", ALL), ("people[].tags[]", ALL), ("people[*].tags[]", ALL), ("mixed[]", ALL),
    ("Keys[].KeyId | [1]", ALL), ("people[*].name | [-1]", ALL), ("[*].b[0]", ALL),
    ("KeyMetadata.Tags[*].TagValue", ALL), ("KeyMetadata.*", ALL),
    # filter projections and comparators
    ("people[?state=='running'].name", ALL), ("people[?state!='running'].name", ALL),
    ("people[?age > `25`].name", ALL), ("people[?age >= `25`].name", ALL),
    ("people[?age < `30`].name", ALL), ("people[?age <= `30`].name", ALL),
    ("people[?age == `25`] | [0].name", ALL), ("people[?score].name", ALL),
    ("people[?tags].name", ALL), ("people[?!tags].name", ALL), ("people[?nested.v == `2`]", ALL),
    ("[?a == `1`]", ALL), ("[?a == '3'].c", ALL), ("[?b[0] > `1`].a", ALL), ("[?@ == `7`]", ALL),
    ("n[?@ > `0`]", ALL), ("s[?@ > 'a']", ALL), ("mixed[?@]", ALL), ("mixed[?!@]", ALL),
    ("KeyMetadata.Tags[?TagKey=='env'].TagValue | [0]", ALL), 
    ("people[?name < 'c'].name", ALL), ("people[?score > `0`].name", ALL), ("f < t", ALL),
    ("people[?state=='running'][]", ALL), ("people[?age==`25`].name[]", ALL),
    ("`1` == `1.0`", ALL), ("`[1, 2]` == `[1, 2.0]`", ALL), ("`{\"a\": 1, \"b\": 2}` == `{\"b\": 2, \"a\": 1}`", ALL),
    ("t == `true`", ALL), ("nul == `null`", ALL), ("str == 'x'", ALL), ("nul < `1`", ALL),
    ("`true` < `false`", ALL), ("obj == `{}`", ALL), ("empty != `[]`", ALL),
    # or, and, not, parentheses
    ("nope || KeyMetadata.KeyId", ALL), ("empty || obj || zero", ALL), ("t && f", ALL),
    ("zero && str", ALL), ("!t", ALL), ("!empty", ALL), ("!nul", ALL), ("!!str", ALL),
    ("t || f && nul", ALL), ("(t || f) && nul", ALL), ("!t == f", ALL), ("!(t == f)", ALL),
    ("people[?age > `25` && state == 'running'].name", ALL),
    ("people[?age > `30` || name == 'bob'].name", ALL), ("people[?!(age > `26`)].name", ALL),
    # literals and raw strings
    ("`\"lit\"`", ALL), ("`[1, {\"a\": null}]`", ALL), ("`3.25`", ALL), ("`-1`", ALL),
    ("`legacy`", ALL), ("`\"a\\`b\"`", ALL), ("'raw'", ALL), ("'it\\'s'", ALL),
    ("'back\\\\slash'", ALL), ("''", ALL), ("'\u2713'", ALL),
    # pipes, current node, multi-select lists and hashes
    ("Keys | [0] | KeyId", ALL), ("@", ALL), ("@.Keys[0].KeyId", ALL), ("people | length(@)", ALL),
    ("[KeyMetadata.KeyId, KeyMetadata.KeyState]", ALL), ("[a, b]", ALL), ("[*].[a, c.d]", ALL),
    ("{id: KeyMetadata.KeyId, state: KeyMetadata.KeyState}", ALL), ("{a: a, \"b c\": b}", ALL),
    ("Keys[*].{id: KeyId}", ALL), ("people[*].[name, age][0]", ALL), ("foo.list[*].{k: k}", ALL),
    ("[[a, b], {x: a}]", ALL), ("foo.[bar, list]", ALL), ("foo.{b: bar}", ALL),
    # functions
    ("abs(zero)", ALL), ("abs(`-2.5`)", ALL), ("abs(str)", ["people"]), ("avg(n)", ALL),
    ("avg(empty)", ALL), ("avg(s)", ["people"]), ("ceil(`2.1`)", ALL), ("floor(`-2.1`)", ALL),
    ("ceil(`3`)", ALL), ("floor(str)", ["people"]), ("contains(s, 'a')", ALL),
    ("contains(str, 'w\u00f6')", ALL), ("contains(mixed, `[1, 2]`)", ALL),
    ("contains(n, `2.5`)", ALL), ("contains(t, 'x')", ["people"]), ("ends_with(str, '\u2713')", ALL),
    ("starts_with(str, 'Hello')", ALL), ("starts_with(str, zero)", ["people"]),
    ("join(', ', s)", ALL), ("join('', people[*].name)", ALL), ("join(', ', n)", ["people"]),
    ("keys(KeyMetadata)", ALL), ("keys(obj)", ALL), ("values(foo)", ALL), ("keys(s)", ["people"]),
    ("length(str)", ALL), ("length(people)", ALL), ("length(foo)", ALL), ("length(zero)", ["people"]),
    ("map(&name, people)", ALL), ("map(&[], deep)", ALL), ("map(&length(@), s)", ALL),
    ("map(&a, @)", ["list"]), ("max(n)", ALL), ("max(s)", ALL), ("max(empty)", ALL),
    ("max(mixed)", ["people"]), ("min(n)", ALL), ("min(s)", ALL), ("max_by(people, &age).name", ALL),
    ("min_by(people, &age).name", ALL), ("max_by(people, &name)", ALL), ("min_by(empty, &a)", ALL),
    ("max_by(people, &score)", ["people"]), ("merge(foo, `{\"x\": 1}`, obj)", ALL),
    ("merge(KeyMetadata, `{\"KeyId\": \"new\"}`).KeyId", ALL), ("merge(s)", ["people"]),
    ("not_null(nope, nul, zero, str)", ALL), ("not_null(nope)", ALL), ("reverse(n)", ALL),
    ("reverse(str)", ALL), ("reverse(zero)", ["people"]), ("sort(s)", ALL), ("sort(n)", ALL),
    ("sort(mixed)", ["people"]), ("sort_by(people, &age)[*].name", ALL),
    ("sort_by(people, &name)[*].age", ALL), ("sort_by(people, &score)", ["people"]),
    ("sum(n)", ALL), ("sum(empty)", ALL), ("sum(s)", ["people"]), ("to_array(str)", ALL),
    ("to_array(n)", ALL), ("to_array(nul)", ALL), ("to_string(str)", ALL), ("to_string(n)", ALL),
    ("to_string(foo)", ALL), ("to_string(KeyMetadata)", ALL), ("to_string(mixed)", ALL),
    ("to_number('12')", ALL), ("to_number('-1.5')", ALL), ("to_number(' 7 ')", ALL),
    ("to_number('1e3')", ALL), ("to_number('abc')", ALL), ("to_number(t)", ALL),
    ("to_number(zero)", ALL), ("type(@)", ALL), ("type(mixed[3])", ALL), ("type(n[1])", ALL),
    ("people[?contains(tags, 'y')].name", ALL), ("people[?starts_with(name, 'b')].age", ALL),
    ("length(people[?age > `26`])", ALL), ("sort(people[*].name)[-1]", ALL),
    ("Keys[?ends_with(KeyArn, 'k2')].KeyId | [0]", ALL), ("sort_by(Keys, &KeyId)[-1].KeyId", ALL),
    ("sum(map(&age, people))", ALL), ("people[*].name | join('-', @)", ALL),
    # errors: syntax, unknown functions, arity, expression references where values go
    ("foo.", ALL), ("foo[", ALL), ("[0", ALL), ("foo bar", ALL), ("a = b", ALL), ("'abc", ALL),
    ("\"abc", ALL), ("foo[1:2:3:4]", ALL), ("foo[a]", ALL), ("nope(@)", ALL), ("length()", ALL),
    ("length(@, @)", ALL), ("\"length\"(@)", ALL), ("{}", ALL), ("{a: b", ALL), ("[a, b", ALL),
    ("a.[0]", ALL), ("- 1", ALL), ("a ~ b", ALL), ("(a", ALL), ("a]", ALL), ("a.|b", ALL),
    ("length(&a)", ALL), ("map(a, @)", ["list"]), ("sort_by(people, name)", ["people"]),
    ("*.", ALL), ("[?]", ALL), ("a[?b", ALL), ("`{`", ALL), ("@.@", ALL), ("a.'b'", ALL),
]

# Where the library departs from the specification, kmsctl follows the specification: ordering a
# number against a string is null ("Ordering operators ... for any other type, null"); the
# library raises Python's TypeError from inside its evaluator.
SPEC = [
    ("`1` < `\"a\"`", "keys", None),
    ("people[?age > '2']", "people", []),
    ("s[?@ >= `1`]", "people", []),
]
PYEOF

cat >"$TMP/diff.py" <<'PYEOF'
import json, subprocess, sys
import jmespath

sys.path.insert(0, sys.argv[2])
from cases import DOCS, CASES, SPEC

EVAL = sys.argv[1]

def same(a, b):
    """Equal as JSON, a whole number and a float being different (they print differently)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b

passed = failed = 0
for expr, docs in CASES:
    names = list(DOCS) if docs == "*" else docs
    for name in names:
        doc = DOCS[name]
        try:
            want, want_err = jmespath.search(expr, doc), None
            json.dumps(want)
        except Exception as e:
            want, want_err = None, type(e).__name__
        run = subprocess.run([EVAL, expr], input=json.dumps(doc), capture_output=True, text=True)
        if run.returncode not in (0, 1, 2):
            got, got_err = None, "crash %d %s" % (run.returncode, run.stderr.strip())
        elif run.returncode != 0:
            got, got_err = None, run.stdout.strip()
        else:
            got, got_err = json.loads(run.stdout), None
        what = "%s on %s" % (expr, name)
        if want_err is not None and got_err is not None and not got_err.startswith("crash"):
            passed += 1
            print("ok - %s: both refuse (%s / %s)" % (what, want_err, got_err))
        elif want_err is None and got_err is None and same(want, got):
            passed += 1
            print("ok - %s = %s" % (what, json.dumps(got)))
        else:
            failed += 1
            print("FAIL - %s: the aws CLI's library gives %s, kmsctl %s" % (
                what, want_err or json.dumps(want), got_err or json.dumps(got)), file=sys.stderr)
for expr, name, want in SPEC:
    run = subprocess.run([EVAL, expr], input=json.dumps(DOCS[name]), capture_output=True, text=True)
    if run.returncode == 0 and same(json.loads(run.stdout), want):
        passed += 1
        print("ok - %s on %s = %s, as the specification says" % (expr, name, json.dumps(want)))
    else:
        failed += 1
        print("FAIL - %s on %s: want %s (the specification), got %s" % (
            expr, name, json.dumps(want), run.stdout.strip()), file=sys.stderr)
print("differential: %d passed, %d failed (%d expressions)" % (passed, failed, len(CASES)))
sys.exit(1 if failed else 0)
PYEOF

if "$PY" "$TMP/diff.py" "$EVAL" "$TMP" >"$TMP/diff.out"; then
    ok "$(tail -n 1 "$TMP/diff.out")"
else
    cat "$TMP/diff.out" | grep -v '^ok' || true
    fail "$(tail -n 1 "$TMP/diff.out")"
fi

# ---- --query end to end ---------------------------------------------------------------------------
init_home
for i in 1 2 3; do kms create-key --description "key $i" >/dev/null; done
IDS=$(kms list-keys | "$PY" -c 'import json,sys; print("\t".join(k["KeyId"] for k in json.load(sys.stdin)["Keys"]))')
assert_eq "$(kms list-keys --page-size 1 --query 'length(Keys)')" 3 \
    "--query runs after pagination merged every page (pages of 1)"
assert_eq "$(kms list-keys --query 'Keys[].KeyId' --output text)" "$IDS" \
    "a projection in --output text: the ids on one tab-separated line, as aws prints a list"
assert_eq "$(kms list-keys --page-size 2 --query 'Keys[].KeyId' --output text | wc -l)" 2 \
    "with --output text the query runs on each page, as aws's TextFormatter: a line per page"
FIRST=$(cut -f1 <<<"$IDS")
assert_eq "$(kms list-keys --query "Keys[?KeyId=='$FIRST'].KeyArn | [0]" --output text)" \
    "$(kms describe-key --key-id "$FIRST" --query KeyMetadata.Arn --output text)" \
    "a filter with a raw string and a pipe"
assert_eq "$(kms describe-key --key-id "$FIRST" --query "{e: KeyMetadata.Enabled, d: starts_with(KeyMetadata.Description, 'key ')}" | tr -d ' \n')" \
    '{"e":true,"d":true}' "a multi-select hash with a function, in its order"
assert_eq "$(kms describe-key --key-id "$FIRST" --query 'KeyMetadata.Nope')" "null" \
    "a missing member is null"
assert_eq "$(kms describe-key --key-id "$FIRST" --query 'KeyMetadata.Nope' --output text)" "None" \
    "and None in --output text, as aws prints it"
expect_usage_error "invalid JMESPath expression: expected an identifier, '*', '[' or '{' after '.', found the end of the expression, at character 13: 'KeyMetadata.'" \
    kms create-key --query 'KeyMetadata.'
expect_usage_error "unknown-function: lenght(), at character 7" kms list-keys --query 'lenght(Keys)'
expect_usage_error "expected ']', found the end of the expression, at character 17" kms list-keys --query "Keys[?KeyId=='x'"
assert_eq "$(kms list-keys --query 'length(Keys)')" 3 "a refused --query made no call (no key created)"
RC=0
kms list-keys --query 'abs(Keys)' >"$TMP/out" 2>"$TMP/err" || RC=$?
assert_eq "$RC" 254 "an expression that fails on the response: exit 254"
assert_contains "$(cat "$TMP/err")" "the call succeeded but --query 'abs(Keys)' failed on its response: invalid-type: abs() does not take array as argument 1" \
    "with the evaluation error"
