/* A test hook, not a kmsctl command: evaluates a JMESPath expression (argv[1]) on the JSON
 * document read from stdin with kmsctl's evaluator (tools/kmsctl/jmespath.c), for
 * tests/integration/test_jmespath_diff.sh. Prints the result as compact JSON and exits 0, or
 * prints "error: ..." and exits 1 (compile error: 2). */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "jmespath.h"

int main(int argc, char **argv)
{
    struct kmsctl_jmespath_error err;
    struct kmsctl_jmespath *jp = NULL;
    json_error_t jerr;
    json_t *data = NULL;
    json_t *out = NULL;
    char *text = NULL;
    int r = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: jmespath_eval EXPRESSION < DOCUMENT.json\n");
        return 2;
    }
    jp = kmsctl_jmespath_compile(argv[1], &err);
    if (jp == NULL) {
        printf("error: %s at %zu\n", err.message, err.at);
        return 2;
    }
    data = json_loadf(stdin, JSON_DECODE_ANY, &jerr);
    if (data == NULL) {
        fprintf(stderr, "jmespath_eval: stdin: %s\n", jerr.text);
        goto out;
    }
    if (kmsctl_jmespath_search(jp, data, &out, &err) != 0) {
        printf("error: %s\n", err.message);
        goto out;
    }
    text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (text == NULL) {
        goto out;
    }
    printf("%s\n", text);
    r = 0;
out:
    free(text);
    json_decref(out);
    json_decref(data);
    kmsctl_jmespath_free(jp);
    return r;
}
