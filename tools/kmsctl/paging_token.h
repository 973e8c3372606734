/* kmsctl's NextToken for --max-items / --starting-token (paginate.c): base64 of
 * {"<input token>": marker, "boto_truncate_amount": n} as botocore writes its tokens, and
 * "page_size" when the page it points into had one. */
#ifndef KMSCTL_PAGING_TOKEN_H
#define KMSCTL_PAGING_TOKEN_H

#include <jansson.h>

typedef struct kmsctl_paging_token {
    json_t *marker;    /* a string: the service's token of the page (owned) */
    json_int_t skip;   /* items of that page printed already, >= 0 */
    json_t *page_size; /* an integer >= 1, or NULL (owned) */
} kmsctl_paging_token;

/* token as input_token names the service's member: 0 and *out filled, or -1 (not a token of
 * ours; *out empty). Free with kmsctl_paging_token_clean_up. */
int kmsctl_paging_token_decode(const char *input_token, const char *token,
                               kmsctl_paging_token *out);
void kmsctl_paging_token_clean_up(kmsctl_paging_token *t);
/* The token for marker (a string), used items of its page printed, its page_size (or NULL): a
 * JSON string (new reference), NULL when out of memory. */
json_t *kmsctl_paging_token_encode(const char *input_token, json_t *marker, json_int_t used,
                                   json_t *page_size);

#endif
