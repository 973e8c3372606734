/* kmsctl's paging tokens (paging_token.h). */
#include "paging_token.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define TOKEN_MAX 8192

int kmsctl_paging_token_decode(const char *input_token, const char *token, kmsctl_paging_token *out)
{
    unsigned char raw[TOKEN_MAX];
    size_t n = 0;
    json_t *doc = NULL;
    memset(out, 0, sizeof *out);
    if (sodium_base642bin(raw, sizeof raw - 1, token, strlen(token), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0) {
        raw[n] = '\0';
        doc = json_loadb((const char *)raw, n, 0, NULL);
    }
    json_t *m = json_object_get(doc, input_token);
    json_t *k = json_object_get(doc, "boto_truncate_amount");
    json_t *size = json_object_get(doc, "page_size");
    if (!json_is_string(m) || (k != NULL && (!json_is_integer(k) || json_integer_value(k) < 0)) ||
        (size != NULL && (!json_is_integer(size) || json_integer_value(size) < 1))) {
        json_decref(doc);
        return -1;
    }
    out->marker = json_incref(m);
    out->skip = k != NULL ? json_integer_value(k) : 0;
    out->page_size = json_incref(size);
    json_decref(doc);
    return 0;
}

void kmsctl_paging_token_clean_up(kmsctl_paging_token *t)
{
    json_decref(t->marker);
    json_decref(t->page_size);
    memset(t, 0, sizeof *t);
}

json_t *kmsctl_paging_token_encode(const char *input_token, json_t *marker, json_int_t used,
                                   json_t *page_size)
{
    json_t *doc = used > 0
                      ? json_pack("{s:O, s:I}", input_token, marker, "boto_truncate_amount", used)
                      : json_pack("{s:O}", input_token, marker);
    if (doc != NULL && used > 0 && page_size != NULL &&
        json_object_set(doc, "page_size", page_size) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        return NULL;
    }
    size_t len = strlen(text);
    char *b64 = malloc(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL));
    json_t *token = NULL;
    if (b64 != NULL) {
        sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL),
                          (const unsigned char *)text, len, sodium_base64_VARIANT_ORIGINAL);
        token = json_string(b64);
    }
    free(b64);
    free(text);
    return token;
}
