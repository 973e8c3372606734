/* Fuzzes kmsctl's reading of the aws CLI's shorthand syntax (tools/kmsctl/shorthand.c): any
 * text ends, without a crash, a hang or a leak, in a JSON object or a refusal that says what and
 * where (a place inside the text); an object it accepts is one that jansson can write and read
 * back as the same value. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "shorthand.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (text == NULL) {
        return 0;
    }
    const char *why = NULL, *at = NULL;
    json_t *v = kmsctl_shorthand_parse(text, &why, &at);
    if (v == NULL) {
        FUZZ_CHECK(why != NULL && at != NULL && at >= text && at <= text + strlen(text));
    } else {
        FUZZ_CHECK(json_is_object(v));
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *back = dump != NULL ? json_loads(dump, 0, NULL) : NULL;
        /* Text that is not UTF-8 makes no jansson string: then nothing was made of it. */
        FUZZ_CHECK(dump == NULL || (back != NULL && json_equal(v, back)));
        json_decref(back);
        free(dump);
        json_decref(v);
    }
    free(text);
    return 0;
}
