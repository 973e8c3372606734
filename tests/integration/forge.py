"""Forging audit records as someone who can write HOME/audit but holds no PIN would: the record
chain is public (previousHash is the SHA-256 of the previous line), acks are not. For the tests
of issue 15, item 1 (test_audit_forgery.sh, test_audit_tamper.sh), imported from their heredocs
with sys.path set to this folder."""
import hashlib
import json


def records(path):
    """A segment's records: its bytes up to the zeros written ahead of them."""
    data = open(path, "rb").read()
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def lines(data):
    """The record lines of records(...), without their newlines."""
    return data.rstrip(b"\n").split(b"\n") if data else []


def sequence(line):
    return json.loads(line)["auditChain"]["sequence"]


def record(account, key, eid, seq, prev_hash, name="DeleteKey", **fields):
    """Record seq by "mallory" about key, chained to prev_hash (compact JSON bytes)."""
    rec = {"eventVersion": "1.08",
           "userIdentity": {"type": "IAMUser", "userName": "mallory",
                            "arn": "arn:aws:iam::%s:user/mallory" % account},
           "eventTime": "2026-12-01T00:00:00Z", "eventSource": "kms.amazonaws.com",
           "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "127.0.0.1",
           "requestParameters": {"keyId": key}, "eventID": eid, "readOnly": False,
           "resources": [{"ARN": "arn:aws:kms:us-east-1:%s:key/%s" % (account, key),
                          "type": "AWS::KMS::Key"}],
           "eventType": "AwsApiCall", "recipientAccountId": account}
    rec.update(fields)
    rec["auditChain"] = {"sequence": seq, "previousHash": prev_hash}
    return json.dumps(rec, separators=(",", ":")).encode()


def planted(account, key, eid, after, name="DeleteKey", **fields):
    """The record that follows the line `after` in the chain, by "mallory"."""
    return record(account, key, eid, sequence(after) + 1, hashlib.sha256(after).hexdigest(),
                  name, **fields)


def stopper(after):
    """A line that links to `after` but is no record a scanner accepts."""
    return b'{"x":1 not json,"auditChain":{"sequence":%d,"previousHash":"%s"}}' % (
        sequence(after) + 1, hashlib.sha256(after).hexdigest().encode())
