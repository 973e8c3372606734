/* Unit tests of kmsctl's JMESPath (tools/kmsctl/jmespath.c): the examples of the specification
 * (https://jmespath.org/specification.html), section by section, each an expression, a document
 * and the result the specification gives; then the errors (with the position of a syntax error)
 * and the limits that keep a hostile expression from exhausting the stack or the CPU. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jmespath.h"

struct jcase {
    const char *expr;
    const char *doc;
    const char *want; /* JSON; NULL: an evaluation error */
};

/* Evaluates each case and compares the result with want (jansson's equality: 1 and 1.0 differ,
 * so that the type of a number is checked too). */
static void run_cases(const struct jcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct kmsctl_jmespath_error err;
        struct kmsctl_jmespath *jp = kmsctl_jmespath_compile(cases[i].expr, &err);
        json_t *doc = json_loads(cases[i].doc, JSON_DECODE_ANY, NULL);
        json_t *got = NULL;
        int rc;

        if (jp == NULL) {
            fail_msg("%s: does not compile: %s at %zu", cases[i].expr, err.message, err.at);
        }
        assert_non_null(doc);
        rc = kmsctl_jmespath_search(jp, doc, &got, &err);
        if (cases[i].want == NULL) {
            if (rc == 0) {
                char *s = json_dumps(got, JSON_ENCODE_ANY);
                fail_msg("%s: want an error, got %s", cases[i].expr, s);
            }
            assert_null(got);
            assert_true(err.message[0] != '\0');
        } else {
            json_t *want = json_loads(cases[i].want, JSON_DECODE_ANY, NULL);
            assert_non_null(want);
            if (rc != 0) {
                fail_msg("%s: error %s", cases[i].expr, err.message);
            }
            if (!json_equal(got, want)) {
                char *s = json_dumps(got, JSON_ENCODE_ANY);
                fail_msg("%s on %s: got %s, want %s", cases[i].expr, cases[i].doc, s,
                         cases[i].want);
            }
            json_decref(want);
        }
        json_decref(got);
        json_decref(doc);
        kmsctl_jmespath_free(jp);
    }
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof cases[0])

/* ---- Identifiers, sub-expressions, index expressions, slices -------------------------------- */

static void spec_identifiers_and_indexes(void **state)
{
    (void)state;
    static const struct jcase cases[] = {
        {"foo", "{\"foo\": \"value\"}", "\"value\""},
        {"bar", "{\"foo\": \"value\"}", "null"},
        {"foo", "{\"foo\": [0, 1, 2]}", "[0, 1, 2]"},
        {"\"with space\"", "{\"with space\": \"value\"}", "\"value\""},
        {"\"special chars: !@#\"", "{\"special chars: !@#\": \"value\"}", "\"value\""},
        {"\"quote\\\"char\"", "{\"quote\\\"char\": \"value\"}", "\"value\""},
        {"\"\\u2713\"", "{\"\\u2713\": \"value\"}", "\"value\""},
        {"foo.bar", "{\"foo\": {\"bar\": \"value\"}}", "\"value\""},
        {"foo.\"bar\"", "{\"foo\": {\"bar\": \"value\"}}", "\"value\""},
        {"foo.bar", "{\"foo\": {\"baz\": \"value\"}}", "null"},
        {"foo.bar.baz", "{\"foo\": {\"bar\": {\"baz\": \"value\"}}}", "\"value\""},
        {"[0]", "[\"first\", \"second\", \"third\"]", "\"first\""},
        {"[-1]", "[\"first\", \"second\", \"third\"]", "\"third\""},
        {"[100]", "[\"first\", \"second\", \"third\"]", "null"},
        {"foo[0]", "{\"foo\": [\"first\", \"second\", \"third\"]}", "\"first\""},
        {"foo[100]", "{\"foo\": [\"first\", \"second\", \"third\"]}", "null"},
        {"foo[0][0]", "{\"foo\": [[0, 1], [1, 2]]}", "0"},
        {"[0:4:1]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[0, 1, 2, 3]"},
        {"[0:4]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[0, 1, 2, 3]"},
        {"[0:3]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[0, 1, 2]"},
        {"[:2]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[0, 1]"},
        {"[::2]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[0, 2, 4, 6, 8]"},
        {"[::-1]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]"},
        {"[-2:]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[8, 9]"},
        {"[5:1:-2]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "[5, 3]"},
        {"[-100:100]", "[0, 1, 2]", "[0, 1, 2]"},
        {"[1:]", "{\"a\": 1}", "null"},
        {"[0]", "\"abc\"", "null"},
    };
    RUN(cases);
}

/* ---- Projections: list, slice, object, flatten, filter --------------------------------------- */

static void spec_projections(void **state)
{
    (void)state;
    static const char people[] = "{\"people\": [{\"first\": \"James\", \"last\": \"d\"}, "
                                 "{\"first\": \"Jacob\", \"last\": \"e\"}, {\"first\": "
                                 "\"Jayden\", \"last\": \"f\"}, {\"missing\": \"different\"}], "
                                 "\"foo\": {\"bar\": \"baz\"}}";
    static const char reservations[] =
        "{\"reservations\": [{\"instances\": [{\"state\": \"running\"}, {\"state\": "
        "\"stopped\"}]}, {\"instances\": [{\"state\": \"terminated\"}, {\"state\": "
        "\"running\"}]}]}";
    static const char ops[] = "{\"ops\": {\"functionA\": {\"numArgs\": 2}, \"functionB\": "
                              "{\"numArgs\": 3}, \"functionC\": {\"variadic\": true}}}";
    static const char machines[] = "{\"machines\": [{\"name\": \"a\", \"state\": \"running\"}, "
                                   "{\"name\": \"b\", \"state\": \"stopped\"}, {\"name\": \"c\", "
                                   "\"state\": \"running\"}]}";
    static const struct jcase cases[] = {
        {"people[*].first", people, "[\"James\", \"Jacob\", \"Jayden\"]"},
        {"people[:2].first", people, "[\"James\", \"Jacob\"]"},
        {"people[*].first | [0]", people, "\"James\""},
        {"foo[*].bar", people, "null"},
        {"[*].foo", "[{\"foo\": 1}, {\"foo\": 2}, {\"foo\": 3}]", "[1, 2, 3]"},
        {"[*].foo", "[{\"foo\": 1}, {\"foo\": 2}, {\"bar\": 3}]", "[1, 2]"},
        {"*.foo", "{\"a\": {\"foo\": 1}, \"b\": {\"foo\": 2}, \"c\": {\"bar\": 1}}", "[1, 2]"},
        {"ops.*.numArgs", ops, "[2, 3]"},
        {"ops.*", ops, "[{\"numArgs\": 2}, {\"numArgs\": 3}, {\"variadic\": true}]"},
        {"reservations[*].instances[*].state", reservations,
         "[[\"running\", \"stopped\"], [\"terminated\", \"running\"]]"},
        {"reservations[].instances[].state", reservations,
         "[\"running\", \"stopped\", \"terminated\", \"running\"]"},
        {"[]", "[[0, 1], 2, [3], 4, [5, [6, 7]]]", "[0, 1, 2, 3, 4, 5, [6, 7]]"},
        {"[][]", "[[0, 1], 2, [3], 4, [5, [6, 7]]]", "[0, 1, 2, 3, 4, 5, 6, 7]"},
        {"machines[?state=='running'].name", machines, "[\"a\", \"c\"]"},
        {"machines[?state!='running'][name, state]", machines, "[[\"b\", \"stopped\"]]"},
        {"machines[?state=='running'].name | [1]", machines, "\"c\""},
        {"[?a > `1`].a", "[{\"a\": 1}, {\"a\": 2}, {\"a\": 3}, {\"a\": \"x\"}]", "[2, 3]"},
        {"[?a >= `2`].a", "[{\"a\": 1}, {\"a\": 2}, {\"a\": 3}]", "[2, 3]"},
        {"[?a < `2`].a", "[{\"a\": 1}, {\"a\": 2}, {\"a\": 3}]", "[1]"},
        {"[?a <= `2`].a", "[{\"a\": 1}, {\"a\": 2.0}, {\"a\": 3}]", "[1, 2.0]"},
        {"[?a == `2`].a", "[{\"a\": 1}, {\"a\": 2.0}, {\"a\": 3}]", "[2.0]"},
        {"[?b]", "[{\"b\": []}, {\"b\": [0]}, {\"b\": 0}, {\"b\": \"\"}, {}]",
         "[{\"b\": [0]}, {\"b\": 0}]"},
    };
    RUN(cases);
}

/* ---- Or, and, not, comparators, literals, raw strings, pipes, multi-select ------------------ */

static void spec_expressions(void **state)
{
    (void)state;
    static const char foo_bar[] = "{\"foo\": [{\"bar\": [\"first1\", \"second1\"]}, {\"bar\": "
                                  "[\"first2\", \"second2\"]}]}";
    static const struct jcase cases[] = {
        {"foo || bar", "{\"foo\": \"foo-value\"}", "\"foo-value\""},
        {"foo || bar", "{\"bar\": \"bar-value\"}", "\"bar-value\""},
        {"foo || bar", "{\"foo\": \"foo-value\", \"bar\": \"bar-value\"}", "\"foo-value\""},
        {"foo || bar", "{\"baz\": \"baz-value\"}", "null"},
        {"foo || bar || baz", "{\"baz\": \"baz-value\"}", "\"baz-value\""},
        {"override || mylist[-1]", "{\"mylist\": [\"one\", \"two\"]}", "\"two\""},
        {"override || mylist[-1]", "{\"override\": \"yes\", \"mylist\": [\"one\", \"two\"]}",
         "\"yes\""},
        {"True && False", "{\"True\": true, \"False\": false}", "false"},
        {"Number && EmptyList", "{\"Number\": 5, \"EmptyList\": []}", "[]"},
        {"foo[?a == `1` && b == `2`]", "{\"foo\": [{\"a\": 1, \"b\": 2}, {\"a\": 1, \"b\": 3}]}",
         "[{\"a\": 1, \"b\": 2}]"},
        {"!True", "{\"True\": true}", "false"},
        {"!False", "{\"False\": false}", "true"},
        {"!Number", "{\"Number\": 5}", "false"},
        {"!EmptyList", "{\"EmptyList\": []}", "true"},
        {"a || b && c", "{\"a\": 0, \"b\": 1, \"c\": 2}", "0"},
        {"(a || b) && c", "{\"a\": \"\", \"b\": 1, \"c\": 2}", "2"},
        {"`\"foo\"`", "{}", "\"foo\""},
        {"`\"\\u03a6\"`", "{}", "\"\\u03a6\""},
        {"`[1, 2, 3]`", "{}", "[1, 2, 3]"},
        {"`{\"a\": \"b\"}`", "{}", "{\"a\": \"b\"}"},
        {"`true`", "{}", "true"},
        {"`null`", "{}", "null"},
        {"`1.5`", "{}", "1.5"},
        {"`\"a\\`b\"`", "{}", "\"a`b\""},
        {"`foo`", "{}", "\"foo\""},
        {"'foo'", "{}", "\"foo\""},
        {"'foo bar'", "{}", "\"foo bar\""},
        {"'foo\\'bar'", "{}", "\"foo'bar\""},
        {"'foo\\\"quote'", "{}", "\"foo\\\\\\\"quote\""},
        {"''", "{}", "\"\""},
        {"`{\"a\": [1, 1.0]}` == `{\"a\": [1.0, 1]}`", "{}", "true"},
        {"`{\"a\": 1, \"b\": 2}` == `{\"b\": 2, \"a\": 1}`", "{}", "true"},
        {"`[1, 2]` != `[2, 1]`", "{}", "true"},
        {"`true` == `1`", "{}", "false"},
        {"a < b", "{\"a\": \"abc\", \"b\": \"abd\"}", "true"},
        {"a < b", "{\"a\": 1, \"b\": \"abd\"}", "null"},
        {"a > b", "{\"a\": [1], \"b\": [0]}", "null"},
        {"foo[*].bar | [0]", foo_bar, "[\"first1\", \"second1\"]"},
        {"foo | bar", "{\"foo\": {\"bar\": \"baz\"}}", "\"baz\""},
        {"foo[*].bar[0]", foo_bar, "[\"first1\", \"first2\"]"},
        {"[foo,bar]", "{\"foo\": \"a\", \"bar\": \"b\", \"baz\": \"c\"}", "[\"a\", \"b\"]"},
        {"[foo,bar[0]]", "{\"foo\": \"a\", \"bar\": [\"b\"], \"baz\": \"c\"}", "[\"a\", \"b\"]"},
        {"[foo,bar.baz]", "{\"foo\": \"a\", \"bar\": {\"baz\": \"b\"}}", "[\"a\", \"b\"]"},
        {"[foo,baz]", "{\"foo\": \"a\", \"bar\": \"b\"}", "[\"a\", null]"},
        {"{foo: foo, bar: bar}", "{\"foo\": \"a\", \"bar\": \"b\", \"baz\": \"c\"}",
         "{\"foo\": \"a\", \"bar\": \"b\"}"},
        {"{foo: foo, firstbar: bar[0]}", "{\"foo\": \"a\", \"bar\": [\"b\"]}",
         "{\"foo\": \"a\", \"firstbar\": \"b\"}"},
        {"{foo: foo, \"bar.baz\": bar.baz}", "{\"foo\": \"a\", \"bar\": {\"baz\": \"b\"}}",
         "{\"foo\": \"a\", \"bar.baz\": \"b\"}"},
        {"{foo: foo, baz: baz}", "{\"foo\": \"a\", \"bar\": \"b\"}",
         "{\"foo\": \"a\", \"baz\": null}"},
        {"a.[b, c]", "{\"a\": null}", "null"},
        {"a.{b: b}", "{\"a\": {\"b\": 1}}", "{\"b\": 1}"},
        {"@", "[1, 2]", "[1, 2]"},
        {"[*].[@, length(@)]", "[\"ab\", \"c\"]", "[[\"ab\", 2], [\"c\", 1]]"},
    };
    RUN(cases);
}

/* ---- Built-in functions --------------------------------------------------------------------- */

static void spec_functions(void **state)
{
    (void)state;
    static const char people[] = "{\"people\": [{\"age\": 20, \"age_str\": \"20\", \"name\": "
                                 "\"b\"}, {\"age\": 40, \"age_str\": \"40\", \"name\": \"a\"}, "
                                 "{\"age\": 30, \"age_str\": \"30\", \"name\": \"c\"}]}";
    static const char nn[] = "{\"a\": null, \"b\": \"\", \"c\": [], \"d\": \"foobar\"}";
    static const struct jcase cases[] = {
        {"abs(foo)", "{\"foo\": -1}", "1"},
        {"abs(`-24`)", "{}", "24"},
        {"abs(`-1.5`)", "{}", "1.5"},
        {"abs(`\"x\"`)", "{}", NULL},
        {"avg(@)", "[10, 15, 20]", "15.0"},
        {"avg(@)", "[]", "null"},
        {"avg(@)", "[10, false, 20]", NULL},
        {"contains(`\"foobar\"`, `\"foo\"`)", "{}", "true"},
        {"contains(`\"foobar\"`, `\"not\"`)", "{}", "false"},
        {"contains(`false`, `\"bar\"`)", "{}", NULL},
        {"contains(@, `\"a\"`)", "[\"a\"]", "true"},
        {"contains(@, `[1.0]`)", "[[1]]", "true"},
        {"ceil(`1.001`)", "{}", "2"},
        {"ceil(`1.9`)", "{}", "2"},
        {"ceil(`1`)", "{}", "1"},
        {"ceil(`\"abc\"`)", "{}", NULL},
        {"ends_with(str, 'r')", "{\"str\": \"Str\"}", "true"},
        {"ends_with(str, 'tr')", "{\"str\": \"Str\"}", "true"},
        {"ends_with(str, 'Str')", "{\"str\": \"Str\"}", "true"},
        {"ends_with(str, 'SStr')", "{\"str\": \"Str\"}", "false"},
        {"ends_with(str, 'foo')", "{\"str\": \"Str\"}", "false"},
        {"ends_with(str, `0`)", "{\"str\": \"Str\"}", NULL},
        {"floor(`1.001`)", "{}", "1"},
        {"floor(`1.9`)", "{}", "1"},
        {"floor(`-1.5`)", "{}", "-2"},
        {"join(`\", \"`, `[\"a\", \"b\"]`)", "{}", "\"a, b\""},
        {"join(`\"\"`, `[\"a\", \"b\"]`)", "{}", "\"ab\""},
        {"join(`\", \"`, `[\"a\", false, \"b\"]`)", "{}", NULL},
        {"join(`\", \"`, `[false]`)", "{}", NULL},
        {"keys(@)", "{\"foo\": \"baz\", \"bar\": \"bam\"}", "[\"foo\", \"bar\"]"},
        {"keys(@)", "{}", "[]"},
        {"keys(`false`)", "{}", NULL},
        {"keys(`[\"b\", \"a\", \"c\"]`)", "{}", NULL},
        {"length(`\"abc\"`)", "{}", "3"},
        {"length(@)", "\"current\"", "7"},
        {"length(not_there)", "\"current\"", NULL},
        {"length(`[\"a\", \"b\", \"c\"]`)", "{}", "3"},
        {"length(`[]`)", "{}", "0"},
        {"length(@)", "{}", "0"},
        {"length(@)", "{\"foo\": \"bar\", \"baz\": \"bam\"}", "2"},
        {"length('\\u2713\\u2713')", "{}", "12"},
        {"length(`\"\\u2713\\u2713\"`)", "{}", "2"},
        {"map(&foo, @)", "[{\"foo\": \"a\"}, {\"foo\": \"b\"}, {}, [], {\"foo\": \"f\"}]",
         "[\"a\", \"b\", null, null, \"f\"]"},
        {"map(&[], @)", "[[1, 2, 3, [4]], [5, 6, 7, [8, 9]]]", "[[1, 2, 3, 4], [5, 6, 7, 8, 9]]"},
        {"max(`[10, 15]`)", "{}", "15"},
        {"max(`[\"a\", \"b\"]`)", "{}", "\"b\""},
        {"max(`[\"a\", 2, \"b\"]`)", "{}", NULL},
        {"max(`[10, false, 20]`)", "{}", NULL},
        {"max(`[]`)", "{}", "null"},
        {"max_by(people, &age)", people, "{\"age\": 40, \"age_str\": \"40\", \"name\": \"a\"}"},
        {"max_by(people, &age).age", people, "40"},
        {"max_by(people, &age_str).age", people, "40"},
        {"max_by(people, &to_number(age_str)).age", people, "40"},
        {"max_by(people, &name_missing)", people, NULL},
        {"merge(`{\"a\": \"b\"}`, `{\"c\": \"d\"}`)", "{}", "{\"a\": \"b\", \"c\": \"d\"}"},
        {"merge(`{\"a\": \"b\"}`, `{\"a\": \"override\"}`)", "{}", "{\"a\": \"override\"}"},
        {"merge(`{\"a\": \"x\", \"b\": \"y\"}`, `{\"b\": \"override\", \"c\": \"z\"}`)", "{}",
         "{\"a\": \"x\", \"b\": \"override\", \"c\": \"z\"}"},
        {"merge(`{}`, `[]`)", "{}", NULL},
        {"min(`[10, 15]`)", "{}", "10"},
        {"min(`[\"a\", \"b\"]`)", "{}", "\"a\""},
        {"min(`[\"a\", 2, \"b\"]`)", "{}", NULL},
        {"min_by(people, &age).age", people, "20"},
        {"min_by(people, &age_str).age", people, "20"},
        {"not_null(unknown_key, d)", nn, "\"foobar\""},
        {"not_null(unknown_key, a, b, c, d)", nn, "\"\""},
        {"not_null(a, a, a)", nn, "null"},
        {"reverse(`[0, 1, 2, 3, 4]`)", "{}", "[4, 3, 2, 1, 0]"},
        {"reverse(`[]`)", "{}", "[]"},
        {"reverse(`[\"a\", \"b\", \"c\", 1, 2, 3]`)", "{}", "[3, 2, 1, \"c\", \"b\", \"a\"]"},
        {"reverse(`\"abcd\"`)", "{}", "\"dcba\""},
        {"reverse(`\"a\\u2713b\"`)", "{}", "\"b\\u2713a\""},
        {"sort(`[\"b\", \"a\", \"c\"]`)", "{}", "[\"a\", \"b\", \"c\"]"},
        {"sort(`[1, 3, 2.5]`)", "{}", "[1, 2.5, 3]"},
        {"sort(`[1, \"a\"]`)", "{}", NULL},
        {"sort_by(people, &age)[].name", people, "[\"b\", \"c\", \"a\"]"},
        {"sort_by(people, &age_str)[].name", people, "[\"b\", \"c\", \"a\"]"},
        {"sort_by(people, &to_number(age_str))[].name", people, "[\"b\", \"c\", \"a\"]"},
        {"sort_by(@, &a)[].i", "[{\"a\": 2, \"i\": 0}, {\"a\": 1, \"i\": 1}, {\"a\": 2, \"i\": 2}]",
         "[1, 0, 2]"},
        {"sort_by(@, &a)", "[{\"a\": 2}, {\"a\": \"x\"}]", NULL},
        {"starts_with(str, 'S')", "{\"str\": \"Str\"}", "true"},
        {"starts_with(str, 'St')", "{\"str\": \"Str\"}", "true"},
        {"starts_with(str, 'Str')", "{\"str\": \"Str\"}", "true"},
        {"starts_with(str, 'String')", "{\"str\": \"Str\"}", "false"},
        {"sum(`[10, 15]`)", "{}", "25"},
        {"sum(`[10, 1.5]`)", "{}", "11.5"},
        {"sum(`[]`)", "{}", "0"},
        {"sum(`[10, false, 20]`)", "{}", NULL},
        {"to_array(`[1, 2]`)", "{}", "[1, 2]"},
        {"to_array(`\"string\"`)", "{}", "[\"string\"]"},
        {"to_array(`0`)", "{}", "[0]"},
        {"to_array(`true`)", "{}", "[true]"},
        {"to_array(`{\"foo\": \"bar\"}`)", "{}", "[{\"foo\": \"bar\"}]"},
        {"to_string(`2`)", "{}", "\"2\""},
        {"to_string(`\"foo\"`)", "{}", "\"foo\""},
        {"to_string(`[1, 2]`)", "{}", "\"[1,2]\""},
        {"to_string(`{\"a\": [1.5, 1e20, 1.0, 0.0001, \"\\u00e9\"]}`)", "{}",
         "\"{\\\"a\\\":[1.5,1e+20,1.0,0.0001,\\\"\\\\u00e9\\\"]}\""},
        {"to_number(`\"1.0\"`)", "{}", "1.0"},
        {"to_number(`\"1.1\"`)", "{}", "1.1"},
        {"to_number(`\"4\"`)", "{}", "4"},
        {"to_number(`\" -4 \"`)", "{}", "-4"},
        {"to_number(`\"1e3\"`)", "{}", "1000.0"},
        {"to_number(`\"notanumber\"`)", "{}", "null"},
        {"to_number(`false`)", "{}", "null"},
        {"to_number(`null`)", "{}", "null"},
        {"to_number(`[0]`)", "{}", "null"},
        {"to_number(`{\"foo\": 0}`)", "{}", "null"},
        {"type(`\"foo\"`)", "{}", "\"string\""},
        {"type(`true`)", "{}", "\"boolean\""},
        {"type(`false`)", "{}", "\"boolean\""},
        {"type(`null`)", "{}", "\"null\""},
        {"type(`123`)", "{}", "\"number\""},
        {"type(`123.05`)", "{}", "\"number\""},
        {"type(`[\"abc\"]`)", "{}", "\"array\""},
        {"type(`{\"abc\": \"123\"}`)", "{}", "\"object\""},
        {"type(@)", "{}", "\"object\""},
        {"values(@)", "{\"foo\": \"baz\", \"bar\": \"bam\"}", "[\"baz\", \"bam\"]"},
        {"values(`[\"a\", \"b\"]`)", "{}", NULL},
        {"values(`false`)", "{}", NULL},
        {"length(&a)", "{}", NULL},
        {"map(@, @)", "[1]", NULL},
        {"&a", "{}", NULL},
        {"foo.length(@)", "{\"foo\": \"abc\"}", "3"},
    };
    RUN(cases);
}

/* ---- Syntax errors: refused when compiled, with the position -------------------------------- */

static void syntax_errors(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        size_t at;
        const char *says;
    } cases[] = {
        {"foo.", 4, "after '.'"},
        {"foo[", 4, "expected '*'"},
        {"[0", 2, "unexpected"},
        {"foo bar", 4, "unexpected an identifier"},
        {"a = b", 2, "unknown token '='"},
        {"'abc", 0, "unterminated '"},
        {"`\"abc`", 0, "invalid JSON literal"},
        {"\"abc", 0, "unterminated \""},
        {"foo[::0]", 4, "step cannot be 0"},
        {"foo[1:2:3:4]", 9, "unexpected"},
        {"foo[a]", 4, "expected '*'"},
        {"nope(@)", 4, "unknown-function: nope()"},
        {"length()", 6, "invalid-arity: length() takes 1 argument, not 0"},
        {"length(@, @)", 6, "invalid-arity"},
        {"merge()", 5, "at least 1 argument"},
        {"\"a\"(@)", 0, "cannot be quoted"},
        {"{}", 1, "expected a key"},
        {"{a: b", 5, "expected ',' or '}'"},
        {"[a, b", 5, "expected ',' or ']'"},
        {"a.[0]", 3, "unexpected a number"},
        {"- 1", 0, "'-' not followed"},
        {"a ~ b", 2, "unknown character '~'"},
        {"", 0, "empty"},
        {"  ", 0, "empty"},
        {"f(a,)", 1, "unknown-function"},
        {"length(a,)", 9, "unexpected ')'"},
        {"a.b(@)", 3, "unknown-function"},
        {"(a", 2, "expected ')'"},
        {"length(@ @)", 9, "expected ',' or ')', found '@'"},
        {"not_null(a,)", 11, "unexpected ')'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kmsctl_jmespath_error err;
        struct kmsctl_jmespath *jp = kmsctl_jmespath_compile(cases[i].expr, &err);
        if (jp != NULL) {
            fail_msg("%s: compiles", cases[i].expr);
        }
        if (strstr(err.message, cases[i].says) == NULL || err.at != cases[i].at) {
            fail_msg("%s: got \"%s\" at %zu, want \"%s\" at %zu", cases[i].expr, err.message,
                     err.at, cases[i].says, cases[i].at);
        }
    }
}

/* ---- Limits ---------------------------------------------------------------------------------- */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    char *s = malloc(strlen(head) + strlen(unit) * n + strlen(tail) + 1);
    assert_non_null(s);
    strcpy(s, head);
    for (size_t i = 0; i < n; i++) {
        strcat(s, unit);
    }
    strcat(s, tail);
    return s;
}

static void limits(void **state)
{
    (void)state;
    struct kmsctl_jmespath_error err;
    struct kmsctl_jmespath *jp = NULL;
    json_t *out = NULL;
    char *deep = NULL;

    /* A long dotted path is one node with many children, not a deep tree. */
    deep = repeat("a", ".a", 5000, "");
    jp = kmsctl_jmespath_compile(deep, &err);
    assert_non_null(jp);
    kmsctl_jmespath_free(jp);
    free(deep);

    /* Nesting: parentheses, brackets, indexes, pipes and or all count. */
    const char *units[][3] = {{"", "(", "a"},  {"", "[", "a"},   {"a", "[0]", ""},
                              {"a", "|a", ""}, {"a", "||a", ""}, {"", "!", "a"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        deep = repeat(units[i][0], units[i][1], 300, units[i][2]);
        jp = kmsctl_jmespath_compile(deep, &err);
        assert_null(jp);
        assert_non_null(strstr(err.message, "nests more than 128 deep"));
        free(deep);
        deep = repeat(units[i][0], units[i][1], 50, units[i][2]);
        jp = kmsctl_jmespath_compile(deep, &err);
        if (strcmp(units[i][1], "(") == 0 || strcmp(units[i][1], "[") == 0) {
            assert_null(jp); /* unclosed, but not too deep */
            assert_null(strstr(err.message, "nests"));
        } else {
            assert_non_null(jp);
        }
        kmsctl_jmespath_free(jp);
        free(deep);
    }

    deep = repeat("", "a", KMSCTL_JMESPATH_MAX_LEN + 1, "");
    assert_null(kmsctl_jmespath_compile(deep, &err));
    assert_non_null(strstr(err.message, "longer than"));
    free(deep);

    /* Each [@,@] doubles the value: 2^40 elements are refused, not walked. */
    deep = repeat("@", "|[@,@]", 40, "|to_string(@)");
    jp = kmsctl_jmespath_compile(deep, &err);
    assert_non_null(jp);
    assert_int_equal(kmsctl_jmespath_search(jp, json_null(), &out, &err), 0);
    assert_string_equal(json_string_value(out), "null"); /* [@,@] of null is null */
    json_decref(out);
    kmsctl_jmespath_free(jp);
    free(deep);
    deep = repeat("`1`", "|[@,@]", 40, "|to_string(@)");
    jp = kmsctl_jmespath_compile(deep, &err);
    assert_non_null(jp);
    assert_int_equal(kmsctl_jmespath_search(jp, json_null(), &out, &err), -1);
    assert_null(out);
    assert_non_null(strstr(err.message, "too much work"));
    kmsctl_jmespath_free(jp);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_identifiers_and_indexes),
        cmocka_unit_test(spec_projections),
        cmocka_unit_test(spec_expressions),
        cmocka_unit_test(spec_functions),
        cmocka_unit_test(syntax_errors),
        cmocka_unit_test(limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
