/* Fuzzes kmsctl's JMESPath (tools/kmsctl/jmespath.c): any text either compiles or is refused with
 * a message and a position inside it; an expression that compiles evaluates, without a crash, a
 * hang, a leak or a stack overflow (nesting is bounded when compiled, work when evaluated), on a
 * document with every JSON type, to a value jansson can write, or to an error with a message. The
 * input is the expression, optionally followed by a NUL byte and a JSON document to use instead. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "jmespath.h"

static json_t *default_doc;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    default_doc =
        json_loads("{\"a\": [1, 2.5, -3, \"x\", null, true, [4, [5]], {\"b\": \"c\"}],"
                   " \"s\": \"h\\u00e9llo\", \"o\": {\"k\": [{\"v\": 1}, {\"v\": \"2\"}]},"
                   " \"n\": 0, \"e\": [], \"t\": false}",
                   0, NULL);
    return default_doc != NULL ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    struct kmsctl_jmespath_error err;
    struct kmsctl_jmespath *jp = NULL;
    json_t *doc = NULL;
    json_t *out = NULL;
    size_t len;

    if (text == NULL) {
        return 0;
    }
    len = strlen(text);
    if (len + 1 < size) {
        doc = json_loadb((const char *)data + len + 1, size - len - 1, JSON_DECODE_ANY, NULL);
    }
    jp = kmsctl_jmespath_compile(text, &err);
    if (jp == NULL) {
        FUZZ_CHECK(err.message[0] != '\0' && err.at <= len);
    } else {
        int rc = kmsctl_jmespath_search(jp, doc != NULL ? doc : default_doc, &out, &err);
        if (rc == 0) {
            char *dump = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
            FUZZ_CHECK(out != NULL && dump != NULL);
            free(dump);
        } else {
            FUZZ_CHECK(rc == -1 && out == NULL && err.message[0] != '\0');
        }
        json_decref(out);
        kmsctl_jmespath_free(jp);
    }
    json_decref(doc);
    free(text);
    return 0;
}
