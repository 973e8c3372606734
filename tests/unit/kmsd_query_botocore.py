#!/usr/bin/env python3
"""botocore's QueryParser reads kmsd's STS XML (tools/kmsd/query.c) with the output shapes of
botocore's STS service model, and gets the values test_kmsd_query.c put in. botocore is the parser
of the aws CLI and boto3: a reader nobody here wrote.

    kmsd_query_botocore.py DIR   (DIR holds AssumeRole.xml, GetSessionToken.xml,
                                  GetCallerIdentity.xml, Error.xml)
Exits 0 when every value matches, 1 when one does not, 77 when no botocore is installed."""
import datetime
import json
import os
import sys


def load_botocore():
    # The Debian awscli package carries its own botocore (awscli.botocore), which is what `aws`
    # uses; a pip-installed botocore will do as well.
    for name in ("awscli.botocore", "botocore"):
        for extra in (None, "/usr/lib/python3/dist-packages"):
            if extra is not None and extra not in sys.path:
                sys.path.append(extra)
            try:
                return __import__(name, fromlist=["parsers", "model"])
            except ImportError:
                continue
    return None


def main():
    botocore = load_botocore()
    if botocore is None:
        print("SKIPPED: no botocore (Debian package awscli)")
        return 77
    from importlib import import_module

    print("botocore: %s" % os.path.dirname(botocore.__file__))

    parsers = import_module(botocore.__name__ + ".parsers")
    model = import_module(botocore.__name__ + ".model")
    path = os.path.join(os.path.dirname(botocore.__file__), "data", "sts", "2011-06-15",
                        "service-2.json")
    if os.path.exists(path):
        with open(path) as f:
            service = json.load(f)
    else:
        import gzip
        with gzip.open(path + ".gz") as f:
            service = json.load(f)
    sts = model.ServiceModel(service)
    assert sts.metadata["protocol"] == "query", sts.metadata["protocol"]
    parser = parsers.create_parser("query")
    utc = datetime.timezone.utc
    directory = sys.argv[1]
    failures = 0

    def parse(op, status):
        with open(os.path.join(directory, op + ".xml"), "rb") as f:
            body = f.read()
        shape = sts.operation_model("AssumeRole" if op == "Error" else op).output_shape
        return parser.parse({"body": body, "headers": {}, "status_code": status}, shape)

    def check(op, got, want):
        nonlocal failures
        got = {k: v for k, v in got.items() if k in want}
        for key in ("ResponseMetadata",):
            if key in want:
                got[key] = {k: v for k, v in got[key].items() if k in want[key]}
        if got != want:
            print("%s: botocore read\n  %r\nwanted\n  %r" % (op, got, want))
            failures += 1
        else:
            print("%s: botocore reads what we meant" % op)

    def creds(token, expiration):
        return {"AccessKeyId": "ASIAIOSFODNN7EXAMPLE",
                "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
                "SessionToken": token, "Expiration": expiration}

    def fix_tz(parsed):
        # botocore gives tz-aware datetimes in its own tzutc; compare as UTC instants.
        c = parsed.get("Credentials")
        if c and isinstance(c.get("Expiration"), datetime.datetime):
            c["Expiration"] = c["Expiration"].astimezone(utc)
        return parsed

    check("AssumeRole", fix_tz(parse("AssumeRole", 200)), {
        "Credentials": creds("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW",
                             datetime.datetime(2019, 11, 9, 13, 34, 41, tzinfo=utc)),
        "AssumedRoleUser": {"AssumedRoleId": "ARO123EXAMPLE123:John",
                            "Arn": "arn:aws:sts::123456789012:assumed-role/demo/John"},
        "ResponseMetadata": {"RequestId": "c6104cbe-af31-11e0-8154-cbc7ccf896c7"}})
    check("GetSessionToken", fix_tz(parse("GetSessionToken", 200)), {
        "Credentials": creds("AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT+FvwqnKwRcOIfrRh3c/L",
                             datetime.datetime(2011, 7, 11, 19, 55, 29, tzinfo=utc)),
        "ResponseMetadata": {"RequestId": "58c5dbae-abef-11e0-8cfe-09039844ac7d"}})
    check("GetCallerIdentity", parse("GetCallerIdentity", 200), {
        "UserId": "AIDACKCEVSQ6C2EXAMPLE", "Account": "123456789012",
        "Arn": "arn:aws:iam::123456789012:user/Alice",
        "ResponseMetadata": {"RequestId": "01234567-89ab-cdef-0123-456789abcdef"}})
    check("Error", parse("Error", 400), {
        "Error": {"Type": "Sender", "Code": "ExpiredToken",
                  "Message": "The security token included in the request is expired <&'\">"},
        "ResponseMetadata": {"RequestId": "e-1"}})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
