/* Fuzzes kmsd's query protocol (tools/kmsd/query.c): the input is a form-encoded STS request
 * body. The decoder answers 0, -1 or KMSD_QUERY_INVALID_ACTION, with its outputs NULL and a
 * message on failure; a request it accepts names one of our three operations and is a JSON object
 * of strings and whole numbers, which the response converter (given it as if it were the
 * response) turns into XML whose elements balance and whose text holds no markup or control
 * character; the error converter does the same for the decoder's message. The input read as a
 * response JSON goes through the converter too. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "query.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* The XML's elements nest and close in order; text and attribute values are escaped (no raw
 * '<' in text, '&' only as one of our references) and carry no control character but tab and
 * newline. */
static void check_xml(const char *xml)
{
    const char *stack[80];
    size_t depth = 0;
    const char *p = xml;
    FUZZ_CHECK(strncmp(p, "<", 1) == 0);
    while (*p != '\0') {
        FUZZ_CHECK((unsigned char)*p >= 0x20 || *p == '\t' || *p == '\n');
        if (*p == '&') {
            FUZZ_CHECK(strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&lt;", 4) == 0 ||
                       strncmp(p, "&gt;", 4) == 0 || strncmp(p, "&quot;", 6) == 0 ||
                       strncmp(p, "&apos;", 6) == 0 || strncmp(p, "&#13;", 5) == 0);
            p++;
            continue;
        }
        if (*p == '>') {
            FUZZ_CHECK(false); /* outside a tag: must have been escaped */
        }
        if (*p != '<') {
            p++;
            continue;
        }
        const char *end = strchr(p, '>');
        FUZZ_CHECK(end != NULL);
        if (p[1] == '/') {
            size_t n = (size_t)(end - p - 2);
            FUZZ_CHECK(depth > 0);
            depth--;
            FUZZ_CHECK(strncmp(stack[depth], p + 2, n) == 0);
            FUZZ_CHECK(stack[depth][n] == '>' || stack[depth][n] == ' ');
        } else {
            FUZZ_CHECK(depth < sizeof stack / sizeof stack[0]);
            stack[depth++] = p + 1;
        }
        p = end + 1;
    }
    FUZZ_CHECK(depth == 0);
}

static void check_request(const char *operation, const char *request_json)
{
    json_t *req = json_loads(request_json, 0, NULL);
    const char *key;
    json_t *v;
    char *xml = NULL;
    char err[256];
    FUZZ_CHECK(strcmp(operation, "sts:AssumeRole") == 0 ||
               strcmp(operation, "sts:GetSessionToken") == 0 ||
               strcmp(operation, "sts:GetCallerIdentity") == 0);
    FUZZ_CHECK(req != NULL && json_is_object(req));
    json_object_foreach(req, key, v)
    {
        FUZZ_CHECK(json_is_string(v) || json_is_integer(v));
        FUZZ_CHECK(json_is_string(v) || strcmp(key, "DurationSeconds") == 0);
    }
    json_decref(req);
    /* Nothing the decoder accepts makes the converter fail (Expiration is not a request member,
     * and member names are our parameter names). */
    FUZZ_CHECK(kmsd_query_response_xml(operation, request_json, "id", &xml, err, sizeof err) == 0);
    check_xml(xml);
    free(xml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *operation = NULL, *request = NULL, *xml = NULL;
    char err[256] = "";
    char *text;
    int rc = kmsd_query_parse((const char *)data, size, &operation, &request, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == KMSD_QUERY_INVALID_ACTION);
    if (rc == 0) {
        FUZZ_CHECK(operation != NULL && request != NULL);
        check_request(operation, request);
    } else {
        FUZZ_CHECK(operation == NULL && request == NULL && err[0] != '\0');
        FUZZ_CHECK(kmsd_query_error_xml("InvalidParameterValue", err, true, "id", &xml) == 0);
        check_xml(xml);
        free(xml);
        xml = NULL;
    }
    free(operation);
    free(request);
    /* The same bytes as a response body of kms_call. */
    if ((text = malloc(size + 1)) == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (kmsd_query_response_xml("sts:AssumeRole", text, "<id&>", &xml, err, sizeof err) == 0) {
        check_xml(xml);
        free(xml);
    } else {
        FUZZ_CHECK(xml == NULL && err[0] != '\0');
    }
    free(text);
    return 0;
}
