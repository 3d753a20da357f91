"""Unit tests of the cloudtrail source: containers, identities, outcome, time, category, risk."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from auditkit.errors import InputError
from auditkit.schema import EVENT_SCHEMA
from auditkit.sources import FileContext, read_file
from auditkit.sources import cloudtrail as ct

CTX = FileContext(path="t.json", display="t.json", digest="d1g3st")
IAM = {"type": "IAMUser", "principalId": "AIDAX", "arn": "arn:aws:iam::111122223333:user/alice",
       "accountId": "111122223333", "accessKeyId": "AKIAX", "userName": "alice"}


def rec(name: str = "DescribeDBInstances", **over) -> dict:
    """A minimal CloudTrail record, overridable field by field."""
    out = {"eventVersion": "1.09", "userIdentity": IAM, "eventTime": "2024-10-10T15:21:35Z",
           "eventSource": "rds.amazonaws.com", "eventName": name, "awsRegion": "eu-west-1",
           "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.17",
           "requestParameters": {"dBInstanceIdentifier": "orders"}, "responseElements": None,
           "eventID": f"id-{name}", "readOnly": True, "eventType": "AwsApiCall",
           "recipientAccountId": "111122223333"}
    out.update(over)
    return {k: v for k, v in out.items() if v is not ...}


def parse(text: str) -> ct.Parsed:
    return ct.read(text, CTX)


def extra(row: dict) -> dict:
    return json.loads(row["extra"])


A, B = rec("DescribeDBInstances"), rec("ModifyDBInstance", readOnly=False)
PRETTY = json.dumps({"Records": [A, B]}, indent=2)
# name, text, events, quarantined, raw_refs of events
SHAPES = [
    ("s3 records, compact", json.dumps({"Records": [A, B]}, separators=(",", ":")), 2, 0,
     ["t.json:1", "t.json:2"]),
    ("s3 records, pretty", PRETTY, 2, 0, ["t.json:1", "t.json:2"]),
    ("s3 records, keys sorted", json.dumps({"Records": [A, B]}, sort_keys=True), 2, 0,
     ["t.json:1", "t.json:2"]),
    ("ndjson with blank line", json.dumps(A) + "\n\n" + json.dumps(B) + "\n", 2, 0,
     ["t.json:1", "t.json:3"]),
    ("ndjson crlf", json.dumps(A) + "\r\n" + json.dumps(B) + "\r\n", 2, 0,
     ["t.json:1", "t.json:2"]),
    ("json array", json.dumps([A, B], indent=1), 2, 0, ["t.json:1", "t.json:2"]),
    ("single record", json.dumps(A, indent=4), 1, 0, ["t.json:1"]),
    ("lookup-events", json.dumps({"Events": [
        {"EventId": "x", "EventName": "DescribeDBInstances", "ReadOnly": "true",
         "EventTime": "2024-10-10T08:21:35-07:00", "CloudTrailEvent": json.dumps(A)},
        {"EventId": "y", "CloudTrailEvent": json.dumps(B)}]}, indent=2).replace("\n", "\r\n"),
     2, 0, ["t.json:1", "t.json:2"]),
    ("eventbridge", json.dumps({"version": "0", "id": "e1", "detail-type":
                                "AWS API Call via CloudTrail", "source": "aws.rds",
                                "detail": B}), 1, 0, ["t.json:1"]),
    ("eventbridge ndjson", "\n".join(json.dumps({"detail-type": "AWS API Call via CloudTrail",
                                                 "detail": r}) for r in (A, B)), 2, 0,
     ["t.json:1", "t.json:2"]),
    ("records with junk", json.dumps({"Records": [A, 7, "text", rec(eventName=...), B]}), 2, 3,
     ["t.json:1", "t.json:5"]),
    ("ndjson with invalid line", json.dumps(A) + '\n{"eventName": \n' + json.dumps(B), 2, 1,
     ["t.json:1", "t.json:3"]),
    ("control characters in strings", json.dumps(
        [rec(requestParameters={"policy": "{\n\t\"Version\": \"2012\"\r}"}), B]), 2, 0,
     ["t.json:1", "t.json:2"]),
]


@pytest.mark.parametrize(("name", "text", "events", "quarantined", "refs"), SHAPES,
                         ids=[s[0] for s in SHAPES])
def test_shapes(name: str, text: str, events: int, quarantined: int, refs: list[str]) -> None:
    parsed = parse(text)
    assert parsed.events.height == events
    assert parsed.quarantine.height == quarantined
    assert parsed.records == events + quarantined
    assert parsed.events.get_column("raw_ref").to_list() == refs
    expected = ["DescribeDBInstances", "ModifyDBInstance"]
    assert set(parsed.events.get_column("action")) <= set(expected)
    assert parsed.events.get_column("time").null_count() == 0


def test_quarantine_reasons_and_positions() -> None:
    text = json.dumps({"Records": [A, 7, rec(eventName=...), rec(eventTime=...),
                                   rec(eventTime="yesterday")]})
    q = parse(text).quarantine
    assert q.get_column("line").to_list() == [2, 3, 4, 5]
    assert q.get_column("reason").to_list() == [
        "record is not a JSON object", "no eventName", "no eventTime", "unparseable eventTime"]
    assert q.get_column("file").unique().to_list() == ["t.json"]
    assert q.get_column("raw")[1].startswith("{")
    bad = parse(json.dumps(A) + "\nnot json\n{broken\n").quarantine
    assert bad.get_column("line").to_list() == [2, 3]
    assert bad.get_column("reason")[0] == "record is not a JSON object"
    assert bad.get_column("reason")[1].startswith("invalid JSON")


@pytest.mark.parametrize("text", ['{"Records":[]}', '{"Records": [ ]}', "[]"])
def test_empty_containers(text: str) -> None:
    parsed = parse(text)
    assert (parsed.records, parsed.events.height, parsed.quarantine.height) == (0, 0, 0)


def test_truncated_file_is_an_input_error() -> None:
    text = json.dumps({"Records": [A, B]})[:-40]
    with pytest.raises(InputError, match="not a CloudTrail JSON document"):
        parse(text)


def test_insights_event_is_quarantined_with_reason() -> None:
    insight = {"eventVersion": "1.07", "eventTime": "2024-10-10T15:00:00Z", "awsRegion": "x",
               "eventID": "i1", "eventType": "AwsCloudTrailInsight", "recipientAccountId": "1",
               "insightDetails": {"state": "Start"}}
    parsed = parse(json.dumps({"Records": [insight, A]}))
    assert parsed.events.height == 1
    assert parsed.quarantine.get_column("reason").to_list() == [
        "CloudTrail Insights event (no eventName), not an API call"]


def test_digest_file_yields_no_records_with_note() -> None:
    digest = {"awsAccountId": "111122223333", "digestStartTime": "2020-09-11T18:36:49Z",
              "digestEndTime": "2020-09-11T19:36:49Z", "digestS3Bucket": "b",
              "digestS3Object": "AWSLogs/1/CloudTrail-Digest/x.json.gz", "logFiles": []}
    text = json.dumps(digest)
    assert ct.detect(text.encode())
    parsed = parse(text)
    assert (parsed.records, parsed.events.height, parsed.quarantine.height) == (0, 0, 0)
    assert parsed.notes == [ct.DIGEST_NOTE]


SSO_ROLE = "AWSReservedSSO_DBAdmin_8df5ccd37b"
# userIdentity, extra record fields, actor, actor_type, person
IDENTITIES = [
    (IAM, {}, "arn:aws:iam::111122223333:user/alice", "iam_user", "alice"),
    ({"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root",
      "accountId": "111122223333"}, {}, "arn:aws:iam::111122223333:root", "iam_user", None),
    ({"type": "AssumedRole", "principalId": "AROAX:carol@example.com",
      "arn": f"arn:aws:sts::111122223333:assumed-role/{SSO_ROLE}/carol@example.com",
      "sessionContext": {"sessionIssuer": {
          "type": "Role", "userName": SSO_ROLE,
          "arn": f"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}"},
          "attributes": {"mfaAuthenticated": "false"}}}, {},
     f"arn:aws:sts::111122223333:assumed-role/{SSO_ROLE}/carol@example.com", "assumed_role",
     "carol@example.com"),
    ({"type": "AssumedRole", "principalId": "AROAX:i-0abc",
      "arn": "arn:aws:sts::111122223333:assumed-role/app/i-0abc",
      "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "app",
                                           "arn": "arn:aws:iam::111122223333:role/app"}}}, {},
     "arn:aws:sts::111122223333:assumed-role/app/i-0abc", "assumed_role", None),
    ({"type": "AssumedRole", "principalId": "AROAX:dave", "arn": "arn:aws:sts::1:assumed-role/r/s",
      "sessionContext": {"sourceIdentity": "dave@example.com"}}, {},
     "arn:aws:sts::1:assumed-role/r/s", "assumed_role", "dave@example.com"),
    ({"type": "AssumedRole", "principalId": "AROAX:RDSSession",
      "arn": "arn:aws:sts::1:assumed-role/AWSServiceRoleForRDS/RDSSession",
      "sessionContext": {"sessionIssuer": {
          "arn": "arn:aws:iam::1:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"}}},
     {}, "arn:aws:sts::1:assumed-role/AWSServiceRoleForRDS/RDSSession", "system", None),
    ({"type": "AWSService", "invokedBy": "rds.amazonaws.com"},
     {"sourceIPAddress": "rds.amazonaws.com"}, "rds.amazonaws.com", "system", None),
    ({"type": "IdentityCenterUser", "arn": "", "accountId": "1", "accessKeyId": "",
      "onBehalfOf": {"userId": "u-123", "identityStoreArn": "arn:aws:identitystore::1:x"}},
     {"eventSource": "signin.amazonaws.com", "eventName": "UserAuthentication",
      "additionalEventData": {"UserName": "erin@example.com"}}, "u-123", "iam_user",
     "erin@example.com"),
    ({"type": "FederatedUser", "principalId": "1:frank",
      "arn": "arn:aws:sts::1:federated-user/frank", "accountId": "1"}, {},
     "arn:aws:sts::1:federated-user/frank", "assumed_role", None),
    ({"type": "WebIdentityUser", "principalId": "token.actions.githubusercontent.com:x",
      "userName": "repo:org/app", "identityProvider": "token.actions.githubusercontent.com"}, {},
     "repo:org/app", "service_account", None),
    ({"type": "AWSAccount", "principalId": "AIDAY", "accountId": "444455556666"}, {},
     "AIDAY", "unknown", None),
    ({"type": "IAMUser", "accountId": "1", "accessKeyId": "",
      "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}, {}, "1", "iam_user", None),
    (..., {}, None, "unknown", None),
]


@pytest.mark.parametrize(("identity", "fields", "actor", "actor_type", "person"), IDENTITIES)
def test_identities(identity, fields, actor, actor_type, person) -> None:
    row = parse(json.dumps(rec(userIdentity=identity, **fields))).events.row(0, named=True)
    assert (row["actor"], row["actor_type"], row["person"]) == (actor, actor_type, person)


def test_identity_extras() -> None:
    row = parse(json.dumps(rec(userIdentity=IDENTITIES[2][0]))).events.row(0, named=True)
    assert extra(row)["mfa_authenticated"] is False
    assert extra(row)["identity_type"] == "AssumedRole"
    assert extra(row)["session_issuer"].endswith(SSO_ROLE)
    cross = rec(userIdentity={**IAM, "accountId": "999988887777"})
    assert extra(parse(json.dumps(cross)).events.row(0, named=True))["caller_account"] == (
        "999988887777")


# record fields, outcome, error
OUTCOMES = [
    ({}, "success", None),
    ({"errorCode": "AccessDenied", "errorMessage": "not authorized"}, "failure",
     "AccessDenied: not authorized"),
    ({"errorCode": "Client.UnauthorizedOperation"}, "failure", "Client.UnauthorizedOperation"),
    ({"eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Failure"},
      "errorMessage": "Failed authentication"}, "failure", "Failed authentication"),
    ({"eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Failure"}}, "failure",
     "Failure"),
    ({"eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Success"}}, "success",
     None),
    ({"eventName": "UserAuthentication", "serviceEventDetails": {"UserAuthentication": "Failure"}},
     "failure", "Failure"),
]


@pytest.mark.parametrize(("fields", "outcome", "error"), OUTCOMES)
def test_outcome(fields: dict, outcome: str, error: str | None) -> None:
    row = parse(json.dumps(rec(**fields))).events.row(0, named=True)
    assert (row["outcome"], row["error"]) == (outcome, error)


TIMES = [
    ({"eventTime": "2024-10-10T15:21:35Z"}, "2024-10-10 15:21:35"),
    ({"eventTime": "2024-10-10T15:21:35.250Z"}, "2024-10-10 15:21:35.250"),
    ({"eventTime": "2024-10-10T08:21:35-07:00"}, "2024-10-10 15:21:35"),
    ({"eventTime": "2024-10-10 15:21:35.000000000"}, "2024-10-10 15:21:35"),  # CloudTrail Lake
    ({"eventTime": ..., "@timestamp": "2020-09-14T01:19:40.000Z"}, "2020-09-14 01:19:40"),
]


@pytest.mark.parametrize(("fields", "expected"), TIMES)
def test_time(fields: dict, expected: str) -> None:
    parsed = parse(json.dumps(rec(**fields)))
    time = parsed.events.get_column("time")
    assert time.dtype == EVENT_SCHEMA["time"]
    assert time.dt.strftime("%Y-%m-%d %H:%M:%S%.f").str.strip_suffix(".000000")[0] == expected
    if "@timestamp" in fields:
        assert extra(parsed.events.row(0, named=True))["time_from"] == "@timestamp"
        assert parsed.notes


# eventSource, eventName, requestParameters, category
CATEGORIES = [
    ("rds.amazonaws.com", "DescribeDBInstances", {}, "other"),
    ("rds.amazonaws.com", "DownloadDBLogFilePortion", {}, "other"),
    ("rds.amazonaws.com", "CreateDBInstance", {}, "provisioning"),
    ("rds.amazonaws.com", "DeleteDBCluster", {}, "provisioning"),
    ("rds.amazonaws.com", "ModifyDBInstance", {}, "config"),
    ("rds.amazonaws.com", "RebootDBInstance", {}, "config"),
    ("rds.amazonaws.com", "CreateDBSnapshot", {}, "backup"),
    ("rds.amazonaws.com", "RestoreDBInstanceFromDBSnapshot", {}, "backup"),
    ("rds.amazonaws.com", "StartExportTask", {}, "export"),
    ("rds.amazonaws.com", "ModifyDBParameterGroup",
     {"parameters": [{"parameterName": "max_connections", "parameterValue": "100"}]}, "config"),
    ("rds.amazonaws.com", "ModifyDBParameterGroup",
     {"parameters": [{"parameterName": "pgaudit.log", "parameterValue": "none"}]},
     "audit_config"),
    ("signin.amazonaws.com", "ConsoleLogin", {}, "auth"),
    ("sts.amazonaws.com", "AssumeRole", {}, "auth"),
    ("sts.amazonaws.com", "AssumeRoleWithSAML", {}, "auth"),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", {}, "network"),
    ("ec2.amazonaws.com", "RevokeSecurityGroupEgress", {}, "network"),
    ("iam.amazonaws.com", "AttachUserPolicy", {}, "permission"),
    ("kms.amazonaws.com", "CreateGrant", {}, "permission"),
    ("kms.amazonaws.com", "ScheduleKeyDeletion", {}, "config"),
    ("cloudtrail.amazonaws.com", "StopLogging", {}, "audit_config"),
    ("cloudtrail.amazonaws.com", "PutEventSelectors", {}, "audit_config"),
    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", {}, "config"),
    ("s3.amazonaws.com", "GetObject", {}, "other"),
]


@pytest.mark.parametrize(("service", "name", "params", "category"), CATEGORIES)
def test_category(service: str, name: str, params: dict, category: str) -> None:
    row = parse(json.dumps(rec(name, eventSource=service, requestParameters=params))).events
    assert row.get_column("category")[0] == category


# eventName, eventSource, requestParameters, risks expected in extra (empty: not risky)
RISKS = [
    ("ModifyDBSnapshotAttribute", "rds", {"dBSnapshotIdentifier": "s", "attributeName": "restore",
                                          "valuesToAdd": ["all"]}, {"RDS snapshot made public"}),
    ("ModifyDBSnapshotAttribute", "rds", {"attributeName": "restore",
                                          "valuesToAdd": ["444455556666"]},
     {"RDS snapshot shared with another account"}),
    ("ModifyDBSnapshotAttribute", "rds", {"attributeName": "restore",
                                          "valuesToRemove": ["444455556666"]}, set()),
    ("ModifyDBClusterSnapshotAttribute", "rds", {"valuesToAdd": ["all"]},
     {"RDS cluster snapshot made public"}),
    ("StartExportTask", "rds", {"s3BucketName": "b"}, {"RDS snapshot exported to an S3 bucket"}),
    ("ModifyDBParameterGroup", "rds", {"parameters": [{"parameterName": "log_statement"}]},
     {"database audit or logging parameter changed (auditing may be disabled)"}),
    ("ModifyDBClusterParameterGroup", "rds",
     {"parameters": [{"parameterName": "server_audit_logging"}]},
     {"database audit or logging parameter changed (auditing may be disabled)"}),
    ("ModifyDBParameterGroup", "rds", {"parameters": [{"parameterName": "work_mem"}]}, set()),
    ("StopLogging", "cloudtrail", {"name": "t"}, {"CloudTrail logging stopped"}),
    ("DeleteTrail", "cloudtrail", {"name": "t"}, {"CloudTrail trail deleted"}),
    ("UpdateTrail", "cloudtrail", {"name": "t"}, {"CloudTrail trail settings changed"}),
    ("PutEventSelectors", "cloudtrail", {"trailName": "t"},
     {"CloudTrail event selectors changed (events may no longer be recorded)"}),
    ("StopActivityStream", "rds", {"resourceArn": "arn"}, {"RDS Database Activity Stream stopped"}),
    ("AuthorizeSecurityGroupIngress", "ec2",
     {"ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
     {"security group opened to the internet"}),
    ("AuthorizeSecurityGroupIngress", "ec2",
     {"ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}}]}},
     set()),
    ("ModifyDBInstance", "rds", {"publiclyAccessible": True},
     {"database made publicly accessible"}),
    ("ModifyDBInstance", "rds", {"masterUserPassword": "****"}, {"database master password reset"}),
    ("ModifyDBCluster", "rds", {"deletionProtection": False}, {"deletion protection turned off"}),
    ("ModifyDBInstance", "rds", {"backupRetentionPeriod": 0}, {"automated backups disabled"}),
    ("ModifyDBInstance", "rds", {"backupRetentionPeriod": 7}, set()),
    ("DeleteDBInstance", "rds", {"skipFinalSnapshot": True},
     {"RDS instance deleted", "deleted without a final snapshot"}),
    ("DeleteDBSnapshot", "rds", {}, {"RDS snapshot deleted"}),
    ("DeleteDBInstanceAutomatedBackup", "rds", {}, {"RDS automated backups deleted"}),
    ("DisableKey", "kms", {"keyId": "k"},
     {"KMS key disabled (data encrypted with it becomes unreadable)"}),
    ("ScheduleKeyDeletion", "kms", {"keyId": "k"}, {"KMS key scheduled for deletion"}),
    ("DescribeDBSnapshots", "rds", {}, set()),
]


@pytest.mark.parametrize(("name", "service", "params", "risks"), RISKS)
def test_risky_actions_are_flagged(name: str, service: str, params: dict, risks: set) -> None:
    record = rec(name, eventSource=f"{service}.amazonaws.com", requestParameters=params)
    row = parse(json.dumps(record)).events.row(0, named=True)
    assert set(extra(row).get("risks", [])) == risks
    assert (extra(row).get("risk") in ("high", "medium")) == bool(risks)


# requestParameters, eventSource, object, object_type, target
OBJECTS = [
    ({"dBInstanceIdentifier": "orders"}, "rds", "orders", "instance",
     "111122223333/eu-west-1/orders"),
    ({"dBSnapshotIdentifier": "snap1", "dBInstanceIdentifier": "orders"}, "rds", "snap1",
     "snapshot", "111122223333/eu-west-1/orders"),
    ({"dBClusterIdentifier": "aurora1"}, "rds", "aurora1", "cluster",
     "111122223333/eu-west-1/aurora1"),
    ({"dBParameterGroupName": "pg16-audit"}, "rds", "pg16-audit", "parameter_group",
     "111122223333/eu-west-1"),
    ({"name": "org-trail"}, "cloudtrail", "org-trail", "trail", "111122223333/eu-west-1"),
    ({"name": "not-a-trail"}, "lambda", None, None, "111122223333/eu-west-1"),
    ({"keyId": "arn:aws:kms:k"}, "kms", "arn:aws:kms:k", "key", "111122223333/eu-west-1"),
    (None, "rds", None, None, "111122223333/eu-west-1"),
]


@pytest.mark.parametrize(("params", "service", "obj", "obj_type", "target"), OBJECTS)
def test_object_and_target(params, service, obj, obj_type, target) -> None:
    record = rec("X", eventSource=f"{service}.amazonaws.com", requestParameters=params)
    row = parse(json.dumps(record)).events.row(0, named=True)
    assert (row["object"], row["object_type"], row["target"]) == (obj, obj_type, target)


def test_mapped_columns_and_nested_payloads_kept_as_json() -> None:
    records = [rec(requestParameters={"filters": [{"name": "x", "values": [1, 2]}]}),
               rec(requestParameters={"filters": "a string this time"}), rec(eventID=...)]
    events = parse(json.dumps({"Records": records})).events
    row = events.row(0, named=True)
    assert row["statement"] == '{"filters":[{"name":"x","values":[1,2]}]}'
    assert events.get_column("statement")[1] == '{"filters":"a string this time"}'
    assert (row["source"], row["layer"], row["src_ip"], row["client_app"]) == (
        "cloudtrail", "infrastructure", "203.0.113.7", "aws-cli/2.17")
    assert row["event_id"] == "id-DescribeDBInstances"
    assert events.get_column("event_id")[2] == "d1g3st:3"  # no eventID: file digest + position
    info = extra(row)
    assert info["event_source"] == "rds.amazonaws.com"
    assert (info["region"], info["account"], info["read_only"]) == (
        "eu-west-1", "111122223333", True)
    assert events.schema["extra"] == pl.String


# head bytes, detected
DETECT = [
    (json.dumps({"Records": [A]}).encode(), True),
    (json.dumps([A]).encode(), True),
    (json.dumps(A).encode() + b"\n", True),
    (b'{"Events":[{"CloudTrailEvent":"{\\"eventVersion\\":\\"1.02\\"}"}]}', True),
    (json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": A}).encode(), True),
    (b'{"awsAccountId":"1","digestStartTime":"x","digestS3Object":"y","logFiles":[]}', True),
    (b"2024-10-10 15:21:35 UTC [123] LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>",
     False),
    (b'{"timestamp":"2024-10-10 15:21:35","id":0,"class":"connection","event":"connect"}',
     False),
    (b'{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog",'
     b'"methodName":"cloudsql.instances.update"},"insertId":"x","eventVersion":"1",'
     b'"eventSource":"x","eventName":"y"}', False),
    (b'{"records":[{"time":"2024","operationName":"MICROSOFT.SQL/SERVERS/WRITE",'
     b'"resourceId":"/SUBSCRIPTIONS/X"}]}', False),
    (b"Time,User ID,Request Parameters\n2022,x,y\n", False),
]


@pytest.mark.parametrize(("head", "detected"), DETECT)
def test_detect(head: bytes, detected: bool) -> None:
    assert ct.detect(head) is detected


def test_gzip_file_through_the_registry(tmp_path) -> None:
    path = tmp_path / "111122223333_CloudTrail_eu-west-1_20241010T1520Z_abc.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": [A, B]}).encode()))
    name, parsed = read_file(path)
    assert name == "cloudtrail"
    assert parsed.events.height == 2
    assert list(parsed.events.schema) == list(EVENT_SCHEMA)


def test_registered_for_infrastructure() -> None:
    from auditkit.sources import REGISTRY

    source = REGISTRY["cloudtrail"]
    assert (source.layer, source.priority) == ("infrastructure", 5)
    assert "AWSLogs/" in source.example


@pytest.mark.parametrize("container", ["records", "ndjson", "compact"])
def test_backslashes_in_nested_parameters_survive(write_log, container):
    """Windows paths, regexes and embedded JSON keep their backslashes (Polars re-serialises
    nested values without escaping them: the kit protects them)."""
    import json as _json

    params = {"path": "C:\\temp\\new", "ends": "x\\", "doc": _json.dumps({"q": 'a "b" \\ c'})}
    record = {"eventVersion": "1.09", "eventTime": "2026-11-02T10:00:00Z",
              "eventSource": "rds.amazonaws.com", "eventName": "ModifyDBParameterGroup",
              "awsRegion": "eu-west-1", "sourceIPAddress": "10.0.0.1",
              "userAgent": "agent\\1", "requestParameters": params, "eventID": "e1",
              "userIdentity": {"type": "IAMUser", "userName": "dom\\alice",
                               "arn": "arn:aws:iam::1:user/alice"}}
    text = {
        "records": _json.dumps({"Records": [record]}, indent=1),
        "ndjson": _json.dumps(record) + "\n" + _json.dumps(record | {"eventID": "e2"}) + "\n",
        "compact": _json.dumps({"Records": [record]}, separators=(",", ":")),
    }[container]
    events = read_file(write_log(text, "trail.json"))[1].events
    row = events.row(0, named=True)
    assert _json.loads(row["statement"]) == params
    assert row["client_app"] == "agent\\1"
    assert events.height == (2 if container == "ndjson" else 1)
