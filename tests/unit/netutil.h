/* The SigV4 signing helpers and the home shared by test_network.c and test_network_attack.c
 * (built into those two programs only, tests/CMakeLists.txt). */
#ifndef KMS_TEST_NETUTIL_H
#define KMS_TEST_NETUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kms/kms.h"
#include "kms/server.h"
#include "service/network.h"

#include "testutil.h"

#define MAX_HEADERS 12

/* The home of net_home_open: its directory, client, account, region. */
extern char *net_dir;
extern kms_client *net_client;
extern char net_account[13];
extern char net_region[32];
extern char net_key_id[64]; /* a key every user of the account may use through IAM */

/* A user of the account: its access key and secret. */
typedef struct user {
    char akid[32];
    char secret[64];
    char token[1024]; /* a session's token, "" for a long-term key */
} user;

/* One request as a front end hands it in. */
typedef struct treq {
    kms_http_header headers[MAX_HEADERS];
    size_t n;
    char date[17];
    char target[96];
    char auth[1024];
    char body[2048];
    kms_network_request req;
} treq;

typedef struct sign_opts {
    const char *region;  /* NULL: the home's */
    const char *service; /* NULL: the operation's */
    int64_t skew;        /* seconds added to the signing time */
    const char *user_agent;
    const char *source_ip;
    bool plain_http;
    bool no_token; /* a session's request without its X-Amz-Security-Token */
    const char *wrong_token;
} sign_opts;

/* Appends a header to t. */
void net_header_add(treq *t, const char *name, const char *value);

/* Builds t: operation op with body as user u signs it (o may be NULL). */
void net_sign(treq *t, const user *u, const char *op, const char *body, const sign_opts *o);

/* kms_call_network of t; the response (parsed) in *resp when resp is not NULL. */
int net_send_req(treq *t, kms_network_result *res, json_t **resp);

/* Signs and sends; returns kms_call_network's result code. */
int net_call_as(const user *u, const char *op, const char *body, const sign_opts *o,
                kms_network_result *res, json_t **resp);

/* Encrypt of a short plaintext under key, as u. */
int net_encrypt_as(const user *u, const char *key, const sign_opts *o, kms_network_result *res);

/* Creates IAM user name with inline policy (NULL: none) and its access key, in *u. */
void net_user_create(const char *name, const char *policy, user *u);

/* Creates a key with key policy policy (NULL: the default), its id in out. */
void net_key_create(const char *policy, char *out, size_t n);

/* Creates IAM role name, which the account's principals may assume. */
void net_role_create(const char *name);

/* Opens a fresh home in net_dir as net_client; fills net_region, net_account, net_key_id. */
void net_home_open(void);

/* cmocka group teardown: closes and removes the home of net_home_open. */
int net_teardown(void **state);

/* The records of access key akid (newest first), as LookupEvents finds them. */
json_t *net_records_of(const char *akid);

/* The record whose requestID is request_id (a reference of list's), or NULL. */
json_t *net_record_with(json_t *list, const char *request_id);

/* The string member name of o, "" when missing. */
const char *net_str(json_t *o, const char *name);

#endif
