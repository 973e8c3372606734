/* Pagination as the aws CLI v2 does it: a list or lookup command fetches every page and prints
 * them merged, without the pagination members (NextMarker, Truncated, Marker, IsTruncated,
 * NextToken). --page-size sets the service's page size, --max-items stops after that many items
 * and prints a NextToken to pass back as --starting-token, --no-paginate makes one call and prints
 * its response as it is; giving the service's own token or page size (--marker, --next-token,
 * --limit, --max-results) also makes one call, as with aws. The operations and their members are
 * those of botocore's paginators. */
#include <stdlib.h>
#include <string.h>

#include "kmsctl.h"
#include "paging_token.h"

#define MAX_RESULT_KEYS 3

struct paginator {
    const char *operation;
    const char *input_token;  /* request member */
    const char *output_token; /* response member */
    const char *more_results; /* response member saying more pages follow; NULL: the token */
    const char *limit_key;    /* request member of the page size */
    const char *result_keys[MAX_RESULT_KEYS + 1];
};

#define KMS_PAGES(op, key)                                                                         \
    {                                                                                              \
        op, "Marker", "NextMarker", "Truncated", "Limit",                                          \
        {                                                                                          \
            key, NULL                                                                              \
        }                                                                                          \
    }
#define IAM_PAGES(op, ...)                                                                         \
    {                                                                                              \
        op, "Marker", "Marker", "IsTruncated", "MaxItems",                                         \
        {                                                                                          \
            __VA_ARGS__, NULL                                                                      \
        }                                                                                          \
    }
#define TOKEN_PAGES(op, limit, key)                                                                \
    {                                                                                              \
        op, "NextToken", "NextToken", NULL, limit,                                                 \
        {                                                                                          \
            key, NULL                                                                              \
        }                                                                                          \
    }

static const struct paginator paginators[] = {
    KMS_PAGES("ListKeys", "Keys"),
    KMS_PAGES("ListAliases", "Aliases"),
    KMS_PAGES("ListGrants", "Grants"),
    KMS_PAGES("ListRetirableGrants", "Grants"),
    KMS_PAGES("ListKeyPolicies", "PolicyNames"),
    KMS_PAGES("ListResourceTags", "Tags"),
    IAM_PAGES("iam:ListUsers", "Users"),
    IAM_PAGES("iam:ListGroups", "Groups"),
    IAM_PAGES("iam:ListRoles", "Roles"),
    IAM_PAGES("iam:GetGroup", "Users"),
    IAM_PAGES("iam:ListGroupsForUser", "Groups"),
    IAM_PAGES("iam:ListUserPolicies", "PolicyNames"),
    IAM_PAGES("iam:ListGroupPolicies", "PolicyNames"),
    IAM_PAGES("iam:ListRolePolicies", "PolicyNames"),
    IAM_PAGES("iam:ListPolicies", "Policies"),
    IAM_PAGES("iam:ListPolicyVersions", "Versions"),
    IAM_PAGES("iam:ListAttachedUserPolicies", "AttachedPolicies"),
    IAM_PAGES("iam:ListAttachedGroupPolicies", "AttachedPolicies"),
    IAM_PAGES("iam:ListAttachedRolePolicies", "AttachedPolicies"),
    IAM_PAGES("iam:ListEntitiesForPolicy", "PolicyGroups", "PolicyUsers", "PolicyRoles"),
    IAM_PAGES("iam:ListAccessKeys", "AccessKeyMetadata"),
    IAM_PAGES("iam:ListMFADevices", "MFADevices"),
    IAM_PAGES("iam:ListVirtualMFADevices", "VirtualMFADevices"),
    IAM_PAGES("iam:ListUserTags", "Tags"),
    IAM_PAGES("iam:SimulateCustomPolicy", "EvaluationResults"),
    IAM_PAGES("iam:SimulatePrincipalPolicy", "EvaluationResults"),
    TOKEN_PAGES("cloudtrail:LookupEvents", "MaxResults", "Events"),
    TOKEN_PAGES("acm:ListCertificates", "MaxItems", "CertificateSummaryList"),
    TOKEN_PAGES("acm-pca:ListCertificateAuthorities", "MaxResults", "CertificateAuthorities"),
    TOKEN_PAGES("organizations:ListAccounts", "MaxResults", "Accounts"),
    TOKEN_PAGES("organizations:ListAccountsForParent", "MaxResults", "Accounts"),
    TOKEN_PAGES("organizations:ListChildren", "MaxResults", "Children"),
    TOKEN_PAGES("organizations:ListOrganizationalUnitsForParent", "MaxResults",
                "OrganizationalUnits"),
    TOKEN_PAGES("organizations:ListParents", "MaxResults", "Parents"),
    TOKEN_PAGES("organizations:ListPolicies", "MaxResults", "Policies"),
    TOKEN_PAGES("organizations:ListPoliciesForTarget", "MaxResults", "Policies"),
    TOKEN_PAGES("organizations:ListRoots", "MaxResults", "Roots"),
    TOKEN_PAGES("organizations:ListTargetsForPolicy", "MaxResults", "Targets"),
};

/* The options every paginated command has (besides its own); kept under these members. */
const struct opt_spec kmsctl_paging_opts[] = {
    {"max-items", OPT_INTEGER, 0,
     "the most items to print in all; when more remain, the output ends with a NextToken"},
    {"starting-token", OPT_STRING, 0, "the NextToken a --max-items output ended with"},
    {"page-size", OPT_INTEGER, 0, "items per call to the service (all pages are still fetched)"},
    {"no-paginate", OPT_BOOL, 0, "one call only: print its response with its own Marker/NextToken"},
    {NULL, 0, 0, NULL}};

static const struct paginator *find(const char *operation)
{
    for (size_t i = 0; operation != NULL && i < sizeof paginators / sizeof paginators[0]; i++) {
        if (strcmp(paginators[i].operation, operation) == 0) {
            return &paginators[i];
        }
    }
    return NULL;
}

bool kmsctl_paginated(const struct command *cmd)
{
    return find(cmd->operation) != NULL;
}

/* Takes member out of request: its value (a new reference) or NULL. */
static json_t *take(json_t *request, const char *member)
{
    json_t *v = json_incref(json_object_get(request, member));
    json_object_del(request, member);
    return v;
}

/* The pagination members of a response, which the merged output leaves out. */
static void drop_tokens(const struct paginator *p, json_t *page)
{
    json_object_del(page, p->output_token);
    if (p->more_results != NULL) {
        json_object_del(page, p->more_results);
    }
}

static bool more_pages(const struct paginator *p, json_t *page)
{
    json_t *next = json_object_get(page, p->output_token);
    bool has_next = json_is_string(next) && json_string_length(next) > 0;
    return p->more_results != NULL
               ? json_is_true(json_object_get(page, p->more_results)) && has_next
               : has_next;
}

/* Appends page's items of every result key to merged's; the first key's first `skip` items are
 * left out, and at most `room` of them are taken (*taken says how many; room < 0: no limit). */
static int merge(const struct paginator *p, json_t *merged, json_t *page, json_int_t skip,
                 json_int_t room, json_int_t *taken)
{
    *taken = 0;
    for (size_t k = 0; p->result_keys[k] != NULL; k++) {
        json_t *items = json_object_get(page, p->result_keys[k]);
        json_t *into = json_object_get(merged, p->result_keys[k]);
        if (!json_is_array(items)) {
            continue;
        }
        if (!json_is_array(into)) {
            if (json_object_set_new(merged, p->result_keys[k], json_array()) != 0) {
                return -1;
            }
            into = json_object_get(merged, p->result_keys[k]);
        }
        for (size_t i = k == 0 ? (size_t)skip : 0; i < json_array_size(items); i++) {
            if (k == 0 && room >= 0 && *taken >= room) {
                break;
            }
            if (json_array_append(into, json_array_get(items, i)) != 0) {
                return -1;
            }
            *taken += k == 0;
        }
    }
    return 0;
}

/* One call: the response, parsed; NULL after printing the error (*r set). */
static json_t *call(kms_client *client, const struct command *cmd, json_t *request, int *r)
{
    char *body = json_dumps(request, JSON_COMPACT);
    char *response = NULL;
    json_t *page = NULL;
    if (body == NULL) {
        *r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        return NULL;
    }
    if (kms_call(client, cmd->operation, body, &response) != 0) {
        *r = kmsctl_service_error();
    } else if ((page = json_loads(response, 0, NULL)) == NULL || !json_is_object(page)) {
        json_decref(page);
        page = NULL;
        *r = kmsctl_error_json("KMSInternalException", "kmsctl: the response is not a JSON object");
    }
    free(body);
    kms_string_free(response);
    return page;
}

/* --output text and yaml-stream print each page as it comes, --query applied to each, as
 * awscli's TextFormatter and StreamedYAMLFormatter do; the other formats print the merged whole. */
static bool per_page(const struct globals *g)
{
    return g->output == OUTPUT_TEXT || g->output == OUTPUT_YAML_STREAM;
}

/* Prints one page: text, the items this page gave (*merged, which then starts again empty);
 * yaml-stream, the page as the service answered it (its Marker and Truncated too) with those
 * items. */
static int print_page(const struct paginator *p, const struct globals *g, json_t *page,
                      json_t **merged)
{
    json_t *shown = NULL;
    int r;

    if (g->output == OUTPUT_YAML_STREAM) {
        shown = json_deep_copy(page);
        for (size_t k = 0; shown != NULL && p->result_keys[k] != NULL; k++) {
            json_t *items = json_object_get(*merged, p->result_keys[k]);
            if (items != NULL && json_object_set(shown, p->result_keys[k], items) != 0) {
                json_decref(shown);
                shown = NULL;
            }
        }
    } else {
        shown = json_incref(*merged);
    }
    json_decref(*merged);
    *merged = json_object();
    if (shown == NULL || *merged == NULL) {
        json_decref(shown);
        return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    }
    kmsctl_response_shape(g, shown);
    r = kmsctl_print_value(g, shown);
    json_decref(shown);
    return r;
}

/* --output text after --max-items stopped early: the token on a line of its own, as awscli
 * prints {"NextToken": {"NextToken": TOKEN}} (--query applied to it too). Takes token. */
static int print_next_token(const struct globals *g, json_t *token)
{
    json_t *v = token != NULL ? json_pack("{s{so}}", "NextToken", "NextToken", token) : NULL;
    int r;

    if (v == NULL) {
        return kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    }
    r = kmsctl_print_value(g, v);
    json_decref(v);
    return r;
}

/* Every page from the starting marker on, merged, at most max_items items (< 0: all). */
static int fetch_all(const struct command *cmd, const struct globals *g, kms_client *client,
                     const struct paginator *p, json_t *request, json_int_t max_items,
                     json_int_t skip, json_t *page_size)
{
    int r = KMSCTL_EXIT_SERVICE;
    json_t *merged = NULL, *page = NULL;
    json_int_t printed = 0;
    for (;;) {
        json_t *marker = json_incref(json_object_get(request, p->input_token));
        if ((page = call(client, cmd, request, &r)) == NULL) {
            json_decref(marker);
            goto out;
        }
        if (merged == NULL) {
            merged = json_deep_copy(page);
            for (size_t k = 0; merged != NULL && p->result_keys[k] != NULL; k++) {
                json_object_del(merged, p->result_keys[k]);
            }
            if (merged == NULL) {
                json_decref(marker);
                r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
                goto out;
            }
            drop_tokens(p, merged);
        }
        json_int_t taken = 0;
        json_int_t room = max_items >= 0 ? max_items - printed : -1;
        json_int_t available =
            (json_int_t)json_array_size(json_object_get(page, p->result_keys[0]));
        if (merge(p, merged, page, skip, room, &taken) != 0) {
            json_decref(marker);
            r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
            goto out;
        }
        printed += taken;
        if (per_page(g) && (r = print_page(p, g, page, &merged)) != KMSCTL_EXIT_OK) {
            json_decref(marker);
            goto out;
        }
        bool page_left = skip + taken < available;
        bool more = more_pages(p, page);
        if (max_items >= 0 && printed >= max_items && (page_left || more)) {
            /* Stopped inside this page: resume at its marker, past what was printed; at its
             * end: at the next page's marker. */
            json_t *empty = json_string("");
            json_t *token =
                page_left
                    ? kmsctl_paging_token_encode(p->input_token, marker != NULL ? marker : empty,
                                                 skip + taken,
                                                 json_object_get(request, p->limit_key))
                    : kmsctl_paging_token_encode(p->input_token,
                                                 json_object_get(page, p->output_token), 0, NULL);
            json_decref(empty);
            json_decref(marker);
            if (per_page(g) && g->output == OUTPUT_TEXT) {
                r = print_next_token(g, token);
                goto out;
            }
            if (per_page(g)) {
                json_decref(token);
                r = KMSCTL_EXIT_OK;
                goto out;
            }
            if (token == NULL || json_object_set_new(merged, "NextToken", token) != 0) {
                r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
                goto out;
            }
            break;
        }
        json_decref(marker);
        if (!more) {
            break;
        }
        /* The pages after a resumed one have --page-size's size (or the service's). */
        if (page_size == NULL) {
            json_object_del(request, p->limit_key);
        }
        if (json_object_set(request, p->input_token, json_object_get(page, p->output_token)) != 0 ||
            (page_size != NULL && json_object_set(request, p->limit_key, page_size) != 0)) {
            r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
            goto out;
        }
        json_decref(page);
        page = NULL;
        skip = 0;
    }
    if (per_page(g)) {
        r = KMSCTL_EXIT_OK;
        goto out;
    }
    kmsctl_response_shape(g, merged);
    r = kmsctl_print_value(g, merged);
out:
    json_decref(page);
    json_decref(merged);
    return r;
}

int kmsctl_run_paginated(const struct command *cmd, const struct globals *g, kms_client *client,
                         json_t *request, bool *handled)
{
    const struct paginator *p = find(cmd->operation);
    *handled = false;
    if (p == NULL) {
        return KMSCTL_EXIT_OK;
    }
    json_t *max_items = take(request, "MaxItems");
    json_t *start = take(request, "StartingToken");
    json_t *page_size = take(request, "PageSize");
    json_t *no_paginate = take(request, "NoPaginate");
    int r = KMSCTL_EXIT_OK;
    json_t *marker = NULL, *token_size = NULL;
    json_int_t skip = 0;
    /* The service's own token or page size given (--marker, --limit, --max-results): one call,
     * as aws does (awscli's check_should_enable_pagination counts the limit key among the
     * manual paging arguments), and so with --no-paginate. Its page size is --page-size, else a
     * --max-items (IAM's and ACM's own name for it). */
    bool manual = json_object_get(request, p->input_token) != NULL ||
                  json_object_get(request, p->limit_key) != NULL || json_is_true(no_paginate);
    json_t *size = page_size != NULL ? page_size : manual ? max_items : NULL;
    if ((max_items != NULL && json_integer_value(max_items) < 1) ||
        (page_size != NULL && json_integer_value(page_size) < 1)) {
        r = kmsctl_usage_error(cmd, "--max-items and --page-size take a number of at least 1");
    } else if (start != NULL && manual) {
        r = kmsctl_usage_error(cmd, "--starting-token goes with the whole listing, not with "
                                    "--no-paginate or the service's own --marker/--next-token");
    } else if (size != NULL && json_object_set(request, p->limit_key, size) != 0) {
        r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
    } else if (start != NULL) {
        /* The page the token points into is fetched again as it was: from its marker, with
         * the size it had (none: the service's). */
        kmsctl_paging_token t;
        if (!json_is_string(start) ||
            kmsctl_paging_token_decode(p->input_token, json_string_value(start), &t) != 0) {
            r = kmsctl_usage_error(cmd, "argument --starting-token: not a NextToken this command "
                                        "printed (pass back the NextToken of a --max-items "
                                        "output)");
        } else {
            marker = t.marker;
            skip = t.skip;
            token_size = t.page_size; /* both now owned here */
        }
        if (r == KMSCTL_EXIT_OK && token_size == NULL) {
            json_object_del(request, p->limit_key);
        }
        if (r == KMSCTL_EXIT_OK &&
            ((json_string_length(marker) > 0 &&
              json_object_set(request, p->input_token, marker) != 0) ||
             (token_size != NULL && json_object_set(request, p->limit_key, token_size) != 0))) {
            r = kmsctl_error_json("KMSInternalException", "kmsctl: out of memory");
        }
    }
    if (r == KMSCTL_EXIT_OK && !manual) {
        *handled = true;
        r = fetch_all(cmd, g, client, p, request,
                      max_items != NULL ? json_integer_value(max_items) : -1, skip, page_size);
    } else if (r != KMSCTL_EXIT_OK) {
        *handled = true;
    }
    json_decref(marker);
    json_decref(token_size);
    json_decref(max_items);
    json_decref(start);
    json_decref(page_size);
    json_decref(no_paginate);
    return r;
}
