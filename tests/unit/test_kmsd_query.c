/* Unit tests of tools/kmsd/query.c, kmsd's AWS query protocol for STS: the requests and responses
 * of the STS API reference's examples (AssumeRole, GetSessionToken, GetCallerIdentity) with their
 * exact outputs, every refusal of the form decoder, XML escaping, and the XML read back by
 * botocore's own QueryParser (tests/unit/kmsd_query_botocore.py) with the shapes of its STS
 * service model: the parser the aws CLI and boto3 use, which nobody here wrote. */
#include "testutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "query.h"

#define NS "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\""

/* The parse must succeed with exactly this operation and request JSON. */
static void parse_ok(const char *body, const char *op, const char *json)
{
    char *operation = NULL, *request = NULL;
    char err[256];
    int rc = kmsd_query_parse(body, strlen(body), &operation, &request, err, sizeof err);
    if (rc != 0) {
        fail_msg("refused \"%s\": %s", body, err);
    }
    assert_string_equal(operation, op);
    assert_string_equal(request, json);
    free(operation);
    free(request);
}

/* The parse must fail with rc and a message containing want. */
static void parse_refused_n(const char *body, size_t len, int rc_want, const char *want)
{
    char *operation = (char *)"x", *request = (char *)"x";
    char err[256];
    int rc = kmsd_query_parse(body, len, &operation, &request, err, sizeof err);
    assert_int_equal(rc, rc_want);
    assert_null(operation);
    assert_null(request);
    if (strstr(err, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
    }
}

static void parse_refused(const char *body, int rc_want, const char *want)
{
    parse_refused_n(body, strlen(body), rc_want, want);
}

/* STS API reference, AssumeRole, Examples (the parameters our service takes); GetSessionToken
 * and GetCallerIdentity likewise. Members come out in the service's order, whatever the form's. */
static void parse_aws_examples(void **state)
{
    (void)state;
    parse_ok("Version=2011-06-15&Action=AssumeRole&RoleSessionName=John-session"
             "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&DurationSeconds=1800",
             "sts:AssumeRole",
             "{\"RoleArn\":\"arn:aws:iam::123456789012:role/demo\","
             "\"RoleSessionName\":\"John-session\",\"DurationSeconds\":1800}");
    parse_ok("Action=GetSessionToken&DurationSeconds=3600&SerialNumber=YourMFADeviceSerialNumber"
             "&TokenCode=123456&Version=2011-06-15",
             "sts:GetSessionToken",
             "{\"DurationSeconds\":3600,\"SerialNumber\":\"YourMFADeviceSerialNumber\","
             "\"TokenCode\":\"123456\"}");
    parse_ok("Action=GetCallerIdentity&Version=2011-06-15", "sts:GetCallerIdentity", "{}");
}

/* What botocore's query serializer sends for aws sts assume-role with a session policy:
 * percent-encoding of every reserved character, '+' and %20 both spaces, UTF-8 kept. */
static void parse_decoding(void **state)
{
    (void)state;
    parse_ok("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole"
             "%2Fr&RoleSessionName=s+p%20q&Policy=%7B%22Version%22%3A%222012-10-17%22%7D%26%C3%A9"
             "&SerialNumber=arn%3aaws%3aiam%3a%3a111122223333%3amfa%2fu&TokenCode=012345",
             "sts:AssumeRole",
             "{\"RoleArn\":\"arn:aws:iam::111122223333:role/r\",\"RoleSessionName\":\"s p q\","
             "\"Policy\":\"{\\\"Version\\\":\\\"2012-10-17\\\"}&\xc3\xa9\","
             "\"SerialNumber\":\"arn:aws:iam::111122223333:mfa/u\",\"TokenCode\":\"012345\"}");
    /* An empty value is a value (the service decides whether it is acceptable). */
    parse_ok("Action=GetSessionToken&Version=2011-06-15&TokenCode=", "sts:GetSessionToken",
             "{\"TokenCode\":\"\"}");
}

static void parse_refusals(void **state)
{
    (void)state;
    char big[KMSD_QUERY_MAX_BODY + 2];
    parse_refused("Action=AssumeRole&Version=2011-06-15&RoleArn=%4", -1,
                  "the value of RoleArn has a '%' not followed by two hex digits");
    parse_refused("Action=AssumeRole&Version=2011-06-15&RoleArn=%G1", -1,
                  "the value of RoleArn has a '%' not followed by two hex digits");
    parse_refused("Action=AssumeRole&Version=2011-06-15&Role%zArn=x", -1,
                  "a parameter name has a '%' not followed by two hex digits");
    parse_refused("Action=AssumeRole&Version=2011-06-15&RoleArn=a%00b", -1,
                  "the value of RoleArn holds a NUL byte");
    parse_refused_n("Action=GetCallerIdentity&Version=2011-06-15\0", 45, -1,
                    "the body holds a NUL byte");
    parse_refused("Action=AssumeRole&Version=2011-06-15&RoleArn=%C3%28", -1,
                  "the value of RoleArn is not UTF-8 text");
    parse_refused("Action=AssumeRole&Version=2011-06-15&RoleArn=%ED%A0%80", -1,
                  "is not UTF-8 text"); /* a surrogate */
    parse_refused("Action=AssumeRole&Version=2011-06-15&RoleArn=a&RoleArn=b", -1,
                  "the parameter RoleArn is given more than once");
    parse_refused("Action=AssumeRole&Action=AssumeRole&Version=2011-06-15", -1,
                  "the parameter Action is given more than once");
    parse_refused("Action=GetCallerIdentity&Version=2011-06-15&", -1, "has no '='");
    parse_refused("Action=GetCallerIdentity&&Version=2011-06-15", -1, "has no '='");
    parse_refused("Action=GetCallerIdentity&Version", -1, "the pair \"Version\" has no '='");
    parse_refused("Action=GetCallerIdentity&=x&Version=2011-06-15", -1, "an empty name");
    parse_refused("Action=GetCallerIdentity", -1, "the request names no Version");
    parse_refused("Action=GetCallerIdentity&Version=2010-05-08", -1,
                  "Version 2010-05-08 is not supported");
    parse_refused("Version=2011-06-15", KMSD_QUERY_INVALID_ACTION, "the request names no Action");
    parse_refused("", KMSD_QUERY_INVALID_ACTION, "the request names no Action");
    parse_refused("Action=GetFederationToken&Version=2011-06-15", KMSD_QUERY_INVALID_ACTION,
                  "Could not find operation GetFederationToken for version 2011-06-15");
    parse_refused("Action=assumerole&Version=2011-06-15", KMSD_QUERY_INVALID_ACTION,
                  "Could not find operation assumerole");
    /* AWS's parameters that our service does not take are refused by name, never dropped. */
    parse_refused("Action=AssumeRole&Version=2011-06-15&RoleArn=a&RoleSessionName=s"
                  "&Tags.member.1.Key=Project&Tags.member.1.Value=P",
                  -1,
                  "AssumeRole does not take the parameter Tags.member.1.Key (it takes: RoleArn, "
                  "RoleSessionName, DurationSeconds, Policy, SerialNumber, TokenCode)");
    parse_refused("Action=AssumeRole&Version=2011-06-15&PolicyArns.member.1.arn=a", -1,
                  "does not take the parameter PolicyArns.member.1.arn");
    parse_refused("Action=AssumeRole&Version=2011-06-15&ExternalId=123ABC", -1,
                  "does not take the parameter ExternalId");
    parse_refused("Action=GetCallerIdentity&Version=2011-06-15&DurationSeconds=900", -1,
                  "GetCallerIdentity does not take the parameter DurationSeconds (it takes: none)");
    parse_refused("Action=GetSessionToken&Version=2011-06-15&RoleArn=x", -1,
                  "(it takes: DurationSeconds, SerialNumber, TokenCode)");
    parse_refused("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=-900", -1,
                  "DurationSeconds must be a whole number of seconds, not \"-900\"");
    parse_refused("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=9e2", -1,
                  "not \"9e2\"");
    parse_refused("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=", -1, "not \"\"");
    parse_refused("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=1234567890", -1,
                  "not \"1234567890\"");
    memset(big, 'a', sizeof big);
    memcpy(big, "Action=GetCallerIdentity&Version=2011-06-15&X=", 46);
    parse_refused_n(big, KMSD_QUERY_MAX_BODY + 1, -1,
                    "the request body is 65537 bytes, more than the 65536 allowed");
}

static char *response(const char *op, const char *json, const char *id)
{
    char *xml = NULL;
    char err[256];
    if (kmsd_query_response_xml(op, json, id, &xml, err, sizeof err) != 0) {
        fail_msg("%s: %s", op, err);
    }
    return xml;
}

/* Our service's responses for the AWS examples' values (Expiration as epoch seconds, as kms_call
 * gives it): the XML of the examples, without their whitespace. */
#define ASSUME_ROLE_JSON                                                                           \
    "{\"Credentials\":{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\","                                  \
    "\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\","                           \
    "\"SessionToken\":\"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW\","    \
    "\"Expiration\":1573306481},\"AssumedRoleUser\":{\"AssumedRoleId\":\"ARO123EXAMPLE123:John\"," \
    "\"Arn\":\"arn:aws:sts::123456789012:assumed-role/demo/John\"}}"
#define GET_SESSION_TOKEN_JSON                                                                     \
    "{\"Credentials\":{\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\","                                  \
    "\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\","                           \
    "\"SessionToken\":\"AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT+FvwqnKwRcOIfrRh3c/L\","    \
    "\"Expiration\":1310414129}}"
#define GET_CALLER_IDENTITY_JSON                                                                   \
    "{\"UserId\":\"AIDACKCEVSQ6C2EXAMPLE\",\"Account\":\"123456789012\","                          \
    "\"Arn\":\"arn:aws:iam::123456789012:user/Alice\"}"

static void response_aws_examples(void **state)
{
    (void)state;
    char *xml =
        response("sts:AssumeRole", ASSUME_ROLE_JSON, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");
    assert_string_equal(
        xml, "<AssumeRoleResponse " NS "><AssumeRoleResult><Credentials>"
             "<AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>"
             "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
             "<SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"
             "</SessionToken><Expiration>2019-11-09T13:34:41Z</Expiration></Credentials>"
             "<AssumedRoleUser><AssumedRoleId>ARO123EXAMPLE123:John</AssumedRoleId>"
             "<Arn>arn:aws:sts::123456789012:assumed-role/demo/John</Arn></AssumedRoleUser>"
             "</AssumeRoleResult><ResponseMetadata>"
             "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
             "</ResponseMetadata></AssumeRoleResponse>");
    free(xml);
    xml = response("sts:GetCallerIdentity", GET_CALLER_IDENTITY_JSON,
                   "01234567-89ab-cdef-0123-456789abcdef");
    assert_string_equal(
        xml, "<GetCallerIdentityResponse " NS "><GetCallerIdentityResult>"
             "<UserId>AIDACKCEVSQ6C2EXAMPLE</UserId><Account>123456789012</Account>"
             "<Arn>arn:aws:iam::123456789012:user/Alice</Arn></GetCallerIdentityResult>"
             "<ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>"
             "</ResponseMetadata></GetCallerIdentityResponse>");
    free(xml);
    xml = response("sts:GetSessionToken", GET_SESSION_TOKEN_JSON,
                   "58c5dbae-abef-11e0-8cfe-09039844ac7d");
    assert_string_equal(
        xml, "<GetSessionTokenResponse " NS "><GetSessionTokenResult><Credentials>"
             "<AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>"
             "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
             "<SessionToken>AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT+FvwqnKwRcOIfrRh3c/L"
             "</SessionToken><Expiration>2011-07-11T19:55:29Z</Expiration></Credentials>"
             "</GetSessionTokenResult><ResponseMetadata>"
             "<RequestId>58c5dbae-abef-11e0-8cfe-09039844ac7d</RequestId>"
             "</ResponseMetadata></GetSessionTokenResponse>");
    free(xml);
}

/* Lists, numbers, booleans, null, a string Expiration left as it is, and every escape. */
static void response_shapes_and_escapes(void **state)
{
    (void)state;
    char *xml = response("sts:GetCallerIdentity",
                         "{\"A\":[\"x\",{\"B\":1},null,[2]],\"N\":-3,\"R\":0.5,\"T\":true,"
                         "\"F\":false,\"Z\":null,\"Expiration\":\"2026-12-07T20:00:00Z\","
                         "\"E\":\"&<>\\\"'\\r\\n\\t\\u0001\\u0000\\uffff\\u00e9\"}",
                         "<&>");
    assert_string_equal(xml, "<GetCallerIdentityResponse " NS "><GetCallerIdentityResult>"
                             "<A><member>x</member><member><B>1</B></member>"
                             "<member><member>2</member></member></A><N>-3</N><R>0.5</R>"
                             "<T>true</T><F>false</F>"
                             "<Expiration>2026-12-07T20:00:00Z</Expiration>"
                             "<E>&amp;&lt;&gt;&quot;&apos;&#13;\n\t\xef\xbf\xbd\xef\xbf\xbd"
                             "\xef\xbf\xbd\xc3\xa9</E></GetCallerIdentityResult>"
                             "<ResponseMetadata><RequestId>&lt;&amp;&gt;</RequestId>"
                             "</ResponseMetadata></GetCallerIdentityResponse>");
    free(xml);
}

static void response_refused(const char *op, const char *json, const char *want)
{
    char *xml = (char *)"x";
    char err[256];
    assert_int_equal(kmsd_query_response_xml(op, json, "id", &xml, err, sizeof err), -1);
    assert_null(xml);
    if (strstr(err, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
    }
}

static void response_refusals(void **state)
{
    (void)state;
    response_refused("Encrypt", "{}", "Encrypt is not an operation of the query protocol");
    response_refused(NULL, "{}", "(null) is not an operation");
    response_refused("sts:AssumeRole", "[1]", "the response is not a JSON object");
    response_refused("sts:AssumeRole", "{", "the response is not a JSON object");
    response_refused("sts:AssumeRole", "{\"a b\":1}",
                     "the response member \"a b\" is not an XML name");
    response_refused("sts:AssumeRole", "{\"1a\":1}", "is not an XML name");
    response_refused("sts:AssumeRole", "{\"A\":{\"x<y\":1}}", "\"x<y\" is not an XML name");
    response_refused("sts:AssumeRole", "{\"Expiration\":253402300800}",
                     "Expiration 253402300800 is out of range");
    response_refused("sts:AssumeRole", "{\"Expiration\":-1}", "Expiration -1 is out of range");
    response_refused(
        "sts:AssumeRole",
        "{\"A\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
        "the response nests deeper than 32 levels");
}

static void error_xml(void **state)
{
    (void)state;
    char *xml = NULL;
    assert_int_equal(kmsd_query_error_xml("AccessDenied",
                                          "User: arn:aws:iam::123456789012:user/A is not "
                                          "authorized to perform: sts:AssumeRole <&'\">",
                                          true, "4f2e1b3a-0000-4000-8000-000000000000", &xml),
                     0);
    assert_string_equal(xml, "<ErrorResponse " NS "><Error><Type>Sender</Type>"
                             "<Code>AccessDenied</Code><Message>User: "
                             "arn:aws:iam::123456789012:user/A is not authorized to perform: "
                             "sts:AssumeRole &lt;&amp;&apos;&quot;&gt;</Message></Error>"
                             "<RequestId>4f2e1b3a-0000-4000-8000-000000000000</RequestId>"
                             "</ErrorResponse>");
    free(xml);
    assert_int_equal(kmsd_query_error_xml("InternalFailure", NULL, false, NULL, &xml), 0);
    assert_string_equal(xml, "<ErrorResponse " NS "><Error><Type>Receiver</Type>"
                             "<Code>InternalFailure</Code><Message></Message></Error>"
                             "<RequestId></RequestId></ErrorResponse>");
    free(xml);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* botocore (from the Debian awscli package, or a pip install) parses our XML with STS's output
 * shapes into the values we meant; skipped when no botocore is installed. */
static void botocore_reads_our_xml(void **state)
{
    (void)state;
    char *dir = kms_test_tmpdir();
    char *script = kms_test_source_path("tests/unit/kmsd_query_botocore.py");
    char cmd[4096];
    char *xml;
    xml = response("sts:AssumeRole", ASSUME_ROLE_JSON, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");
    write_file(dir, "AssumeRole.xml", xml);
    free(xml);
    xml = response("sts:GetSessionToken", GET_SESSION_TOKEN_JSON,
                   "58c5dbae-abef-11e0-8cfe-09039844ac7d");
    write_file(dir, "GetSessionToken.xml", xml);
    free(xml);
    xml = response("sts:GetCallerIdentity", GET_CALLER_IDENTITY_JSON,
                   "01234567-89ab-cdef-0123-456789abcdef");
    write_file(dir, "GetCallerIdentity.xml", xml);
    free(xml);
    assert_int_equal(
        kmsd_query_error_xml("ExpiredToken",
                             "The security token included in the request is expired <&'\">", true,
                             "e-1", &xml),
        0);
    write_file(dir, "Error.xml", xml);
    free(xml);
    /* Debian's python first: the Debian awscli package's botocore lives in its dist-packages. */
    snprintf(cmd, sizeof cmd, "%s '%s' '%s'",
             access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3", script, dir);
    int rc = system(cmd);
    kms_test_rmrf(dir);
    free(dir);
    free(script);
    assert_true(WIFEXITED(rc));
    if (WEXITSTATUS(rc) == 77) {
        skip();
    }
    assert_int_equal(WEXITSTATUS(rc), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_aws_examples),
        cmocka_unit_test(parse_decoding),
        cmocka_unit_test(parse_refusals),
        cmocka_unit_test(response_aws_examples),
        cmocka_unit_test(response_shapes_and_escapes),
        cmocka_unit_test(response_refusals),
        cmocka_unit_test(error_xml),
        cmocka_unit_test(botocore_reads_our_xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
