/* The SigV4 signing helpers and the home shared by test_network.c and test_network_attack.c:
 * requests signed here as a client would sign them, handed to kms_call_network. */
#include "netutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sigv4/sigv4.h"
#include "testutil.h"
#include "util/util.h"

char *net_dir;
kms_client *net_client;
char net_account[13];
char net_key_id[64];
char net_region[32];

/* ---- Signing -------------------------------------------------------------------------------- */

void net_header_add(treq *t, const char *name, const char *value)
{
    assert_true(t->n < MAX_HEADERS);
    t->headers[t->n].name = name;
    t->headers[t->n].value = value;
    t->n++;
}

static const char *service_of(const char *op)
{
    static char buf[32];
    const char *colon = strchr(op, ':');
    if (colon == NULL) {
        return "kms";
    }
    snprintf(buf, sizeof buf, "%.*s", (int)(colon - op), op);
    return buf;
}

/* Builds t: operation op with body as user u signs it (o may be NULL). */
void net_sign(treq *t, const user *u, const char *op, const char *body, const sign_opts *o)
{
    static const sign_opts none = {0};
    o = o != NULL ? o : &none;
    memset(t, 0, sizeof *t);
    snprintf(t->body, sizeof t->body, "%s", body);
    time_t when = (time_t)(kms_now() + o->skew);
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(t->date, sizeof t->date, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(t->target, sizeof t->target, "TrentService.%s", op);
    const char *token = o->wrong_token != NULL ? o->wrong_token : u->token;
    bool with_token = token[0] != '\0' && !o->no_token;
    /* Sorted by name, as SignedHeaders lists them. */
    net_header_add(t, "Content-Type", "application/x-amz-json-1.1");
    net_header_add(t, "Host", "kms.test:8443");
    net_header_add(t, "X-Amz-Date", t->date);
    if (with_token) {
        net_header_add(t, "X-Amz-Security-Token", token);
    }
    net_header_add(t, "X-Amz-Target", t->target);
    const char *signed_headers = with_token ? "content-type;host;x-amz-date;x-amz-security-token;"
                                              "x-amz-target"
                                            : "content-type;host;x-amz-date;x-amz-target";
    kms_sigv4_header sh[MAX_HEADERS];
    for (size_t i = 0; i < t->n; i++) {
        sh[i].name = t->headers[i].name;
        sh[i].value = t->headers[i].value;
    }
    kms_sigv4_request sr = {.method = "POST",
                            .path = "/",
                            .headers = sh,
                            .n_headers = t->n,
                            .body = (const uint8_t *)t->body,
                            .body_len = strlen(t->body),
                            .normalize_path = 1};
    const char *reg = o->region != NULL ? o->region : net_region;
    const char *svc = o->service != NULL ? o->service : service_of(op);
    char date8[9], scope[128], sig[65];
    snprintf(date8, sizeof date8, "%.8s", t->date);
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date8, reg, svc);
    char *canonical = NULL, *sts = NULL;
    assert_int_equal(kms_sigv4_canonical_request(&sr, signed_headers, &canonical), 0);
    assert_int_equal(kms_sigv4_string_to_sign(t->date, scope, canonical, &sts), 0);
    assert_int_equal(kms_sigv4_sign(u->secret, date8, reg, svc, sts, sig), 0);
    free(canonical);
    free(sts);
    snprintf(t->auth, sizeof t->auth,
             "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", u->akid, scope,
             signed_headers, sig);
    net_header_add(t, "Authorization", t->auth);
    net_header_add(t, "User-Agent", o->user_agent != NULL ? o->user_agent : "test-agent/1.0");
    t->req = (kms_network_request){
        .method = "POST",
        .path = "/",
        .headers = t->headers,
        .header_count = t->n,
        .body = (const uint8_t *)t->body,
        .body_len = strlen(t->body),
        .operation = op,
        .request_json = t->body,
        .source_ip = o->source_ip != NULL ? o->source_ip : "192.0.2.7",
        .tls_version = o->plain_http ? NULL : "TLSv1.3",
        .cipher_suite = o->plain_http ? NULL : "TLS_AES_128_GCM_SHA256",
    };
}

/* kms_call_network of t; the response (parsed) in *resp when resp is not NULL. */
int net_send_req(treq *t, kms_network_result *res, json_t **resp)
{
    char *text = NULL;
    int rc = kms_call_network(net_client, &t->req, &text, res);
    assert_int_equal(strlen(res->request_id), 36);
    if (resp != NULL) {
        *resp = rc == 0 ? json_loads(text, 0, NULL) : NULL;
    }
    kms_string_free(text);
    return rc;
}

/* Signs and sends; returns kms_call_network's result code. */
int net_call_as(const user *u, const char *op, const char *body, const sign_opts *o,
                kms_network_result *res, json_t **resp)
{
    treq t;
    kms_network_result ignored;
    net_sign(&t, u, op, body, o);
    return net_send_req(&t, res != NULL ? res : &ignored, resp);
}

int net_encrypt_as(const user *u, const char *key, const sign_opts *o, kms_network_result *res)
{
    char body[512];
    snprintf(body, sizeof body, "{\"KeyId\": \"%s\", \"Plaintext\": \"aGVsbG8=\"}", key);
    return net_call_as(u, "Encrypt", body, o, res, NULL);
}

/* ---- The home ------------------------------------------------------------------------------- */

void net_user_create(const char *name, const char *policy, user *u)
{
    json_decref(kms_test_call(net_client, "iam:CreateUser", "{\"UserName\": \"%s\"}", name));
    if (policy != NULL) {
        json_t *doc = json_string(policy);
        char *quoted = json_dumps(doc, JSON_ENCODE_ANY);
        json_decref(kms_test_call(net_client, "iam:PutUserPolicy",
                                  "{\"UserName\": \"%s\", \"PolicyName\": \"p\", "
                                  "\"PolicyDocument\": %s}",
                                  name, quoted));
        free(quoted);
        json_decref(doc);
    }
    json_t *k = kms_test_call(net_client, "iam:CreateAccessKey", "{\"UserName\": \"%s\"}", name);
    json_t *ak = json_object_get(k, "AccessKey");
    snprintf(u->akid, sizeof u->akid, "%s", json_string_value(json_object_get(ak, "AccessKeyId")));
    snprintf(u->secret, sizeof u->secret, "%s",
             json_string_value(json_object_get(ak, "SecretAccessKey")));
    u->token[0] = '\0';
    json_decref(k);
}

void net_key_create(const char *policy, char *out, size_t n)
{
    json_t *r;
    if (policy == NULL) {
        r = kms_test_call(net_client, "CreateKey", "{}");
    } else {
        json_t *doc = json_string(policy);
        char *quoted = json_dumps(doc, JSON_ENCODE_ANY);
        r = kms_test_call(net_client, "CreateKey", "{\"Policy\": %s}", quoted);
        free(quoted);
        json_decref(doc);
    }
    snprintf(out, n, "%s",
             json_string_value(json_object_get(json_object_get(r, "KeyMetadata"), "KeyId")));
    json_decref(r);
}

void net_role_create(const char *name)
{
    char trust[512];
    snprintf(trust, sizeof trust,
             "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", "
             "\"Principal\": {\"AWS\": \"arn:aws:iam::%s:root\"}, \"Action\": "
             "\"sts:AssumeRole\"}]}",
             net_account);
    json_t *doc = json_string(trust);
    char *quoted = json_dumps(doc, JSON_ENCODE_ANY);
    json_decref(kms_test_call(net_client, "iam:CreateRole",
                              "{\"RoleName\": \"%s\", \"AssumeRolePolicyDocument\": %s}", name,
                              quoted));
    free(quoted);
    json_decref(doc);
}

void net_home_open(void)
{
    net_dir = kms_test_tmpdir();
    net_client = kms_test_home_open(net_dir);
    assert_non_null(net_client);
    snprintf(net_region, sizeof net_region, "%s", kms_client_region(net_client));
    json_t *who = kms_test_call(net_client, "sts:GetCallerIdentity", "{}");
    snprintf(net_account, sizeof net_account, "%s",
             json_string_value(json_object_get(who, "Account")));
    json_decref(who);
    net_key_create(NULL, net_key_id, sizeof net_key_id);
}

int net_teardown(void **state)
{
    (void)state;
    kms_client_free(net_client);
    kms_test_rmrf(net_dir);
    free(net_dir);
    return 0;
}

/* ---- The trail ------------------------------------------------------------------------------ */

/* The records of access key akid (newest first), as LookupEvents finds them. */
json_t *net_records_of(const char *akid)
{
    json_t *page = kms_test_call(net_client, "cloudtrail:LookupEvents",
                                 "{\"LookupAttributes\": [{\"AttributeKey\": \"AccessKeyId\", "
                                 "\"AttributeValue\": \"%s\"}], \"MaxResults\": 50}",
                                 akid);
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(page, "Events"), i, e)
    {
        const char *line = json_string_value(json_object_get(e, "CloudTrailEvent"));
        json_t *rec = json_loads(line, 0, NULL);
        assert_non_null(rec);
        assert_int_equal(json_array_append_new(out, rec), 0);
    }
    json_decref(page);
    return out;
}

/* The record whose requestID is request_id (a reference of list's), or NULL. */
json_t *net_record_with(json_t *list, const char *request_id)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "requestID"));
        if (id != NULL && strcmp(id, request_id) == 0) {
            return r;
        }
    }
    return NULL;
}

const char *net_str(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s != NULL ? s : "";
}
