/* Fuzzes kmsctl's --starting-token decoder (tools/kmsctl/paging_token.c): any text is refused
 * or gives a string marker, a count of at least 0 and a page size of at least 1 (or none); what
 * it accepts, encoded again, decodes to the same values. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "paging_token.h"

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
    kmsctl_paging_token t, again;
    if (kmsctl_paging_token_decode("Marker", text, &t) == 0) {
        FUZZ_CHECK(json_is_string(t.marker) && t.skip >= 0);
        FUZZ_CHECK(t.page_size == NULL ||
                   (json_is_integer(t.page_size) && json_integer_value(t.page_size) >= 1));
        json_t *token = kmsctl_paging_token_encode("Marker", t.marker, t.skip, t.page_size);
        if (token != NULL) {
            FUZZ_CHECK(kmsctl_paging_token_decode("Marker", json_string_value(token), &again) == 0);
            FUZZ_CHECK(json_equal(again.marker, t.marker) && again.skip == t.skip);
            /* The page size travels only with a count (it says how that page was cut). */
            FUZZ_CHECK(t.skip == 0 ? again.page_size == NULL
                                   : (again.page_size == NULL) == (t.page_size == NULL));
            kmsctl_paging_token_clean_up(&again);
            json_decref(token);
        }
        kmsctl_paging_token_clean_up(&t);
    } else {
        FUZZ_CHECK(t.marker == NULL && t.page_size == NULL);
    }
    free(text);
    return 0;
}
