"""gcp_audit: containers, identities, outcomes, categories, Cloud SQL pgAudit and MySQL audit."""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.sources import FileContext, detect_format, read_file
from auditkit.sources import gcp_audit as gcp

CTX = FileContext(path="t.json", display="t.json", digest="0123456789ab")
ACTIVITY = "projects/p1/logs/cloudaudit.googleapis.com%2Factivity"
DATA_ACCESS = "projects/p1/logs/cloudaudit.googleapis.com%2Fdata_access"


def entry(method: str = "cloudsql.instances.update", *, log: str = ACTIVITY, auth=None,
          request=None, status=None, insert_id: str = "id1", ts: str = "2024-05-01T10:00:00Z",
          service: str = "cloudsql.googleapis.com", labels=None, **payload) -> dict:
    """A LogEntry with an AuditLog payload (only the given parts)."""
    pp = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "serviceName": service,
          "methodName": method, "resourceName": "projects/p1/instances/db1", **payload}
    if auth is not None:
        pp["authenticationInfo"] = auth
    if request is not None:
        pp["request"] = request
    if status is not None:
        pp["status"] = status
    return {"insertId": insert_id, "logName": log, "timestamp": ts, "severity": "NOTICE",
            "resource": {"type": "cloudsql_database",
                         "labels": labels or {"database_id": "p1:db1", "project_id": "p1"}},
            "protoPayload": pp}


def read(text: str) -> gcp.Parsed:
    parsed = gcp.read(text, CTX)
    assert parsed.records == parsed.events.height + parsed.quarantine.height
    return parsed


def rows(text: str) -> list[dict]:
    return read(text).events.to_dicts()


def extra(row: dict) -> dict:
    return json.loads(row["extra"])


ONE = entry(auth={"principalEmail": "alice@corp.com"})
TWO = entry("cloudsql.instances.get", insert_id="id2", log=DATA_ACCESS)

# container text -> number of events
CONTAINERS = [
    ("single object", json.dumps(ONE), 1),
    ("pretty single object", json.dumps(ONE, indent=2), 1),
    ("gcloud JSON array", json.dumps([ONE, TWO], indent=2), 2),
    ("entries API", json.dumps({"entries": [ONE, TWO], "nextPageToken": "x"}), 2),
    ("NDJSON (GCS sink)", json.dumps(ONE) + "\n" + json.dumps(TWO) + "\n", 2),
    ("NDJSON with CRLF and blank lines", json.dumps(ONE) + "\r\n\r\n" + json.dumps(TWO), 2),
]


@pytest.mark.parametrize(("text", "count"), [c[1:] for c in CONTAINERS],
                         ids=[c[0] for c in CONTAINERS])
def test_containers(text, count):
    events = rows(text)
    assert len(events) == count
    assert events[0]["action"] == "cloudsql.instances.update"
    assert events[0]["actor"] == "alice@corp.com"
    assert str(events[0]["time"]) == "2024-05-01 10:00:00+00:00"


def test_bigquery_export_json_nested_and_flattened():
    nested = {
        "logName": ACTIVITY, "insertId": "bq1", "timestamp": "2024-05-01 10:00:00.123 UTC",
        "resource": {"type": "cloudsql_database", "labels": {"database_id": "p1:db1"}},
        "protopayload_auditlog": {
            "serviceName": "cloudsql.googleapis.com", "methodName": "cloudsql.instances.export",
            "resourceName": "projects/p1/instances/db1",
            "authenticationInfo": {"principalEmail": "bob@corp.com"},
            "requestMetadata": {"callerIp": "10.0.0.1"},
            "status": {"code": 0},
            "requestJson": '{"body":{"exportContext":{"uri":"gs://b/x.sql"}}}',
        },
    }
    flat = {
        "logName": ACTIVITY, "insertId": "bq2", "timestamp": "2024-05-01T10:00:01Z",
        "resource.type": "cloudsql_database",
        "protopayload_auditlog.serviceName": "cloudsql.googleapis.com",
        "protopayload_auditlog.methodName": "cloudsql.instances.delete",
        "protopayload_auditlog.authenticationInfo.principalEmail": "bob@corp.com",
        "protopayload_auditlog.status.code": "7",
        "protopayload_auditlog.status.message": "denied",
        "protopayload_auditlog.requestJson": '{"instance":"db1"}',
    }
    text = json.dumps(nested) + "\n" + json.dumps(flat) + "\n"
    assert gcp.detect(text.encode())
    first, second = rows(text)
    assert (first["action"], first["actor"], first["src_ip"], first["category"]) == (
        "cloudsql.instances.export", "bob@corp.com", "10.0.0.1", "export")
    assert first["statement"] == '{"body":{"exportContext":{"uri":"gs://b/x.sql"}}}'
    assert str(first["time"]) == "2024-05-01 10:00:00.123000+00:00"
    assert extra(first)["risk"] == "high"
    assert (second["action"], second["outcome"], second["error"], second["statement"]) == (
        "cloudsql.instances.delete", "failure", "7: denied", '{"instance":"db1"}')


def test_bigquery_export_csv():
    header = (
        "timestamp,logName,insertId,resource.type,resource.labels.database_id,"
        "protopayload_auditlog.serviceName,protopayload_auditlog.methodName,"
        "protopayload_auditlog.authenticationInfo.principalEmail,"
        "protopayload_auditlog.requestMetadata.callerIp,protopayload_auditlog.status.code,"
        "protopayload_auditlog.requestJson"
    )
    row = (
        f'2024-05-01 10:00:00 UTC,{ACTIVITY},c1,cloudsql_database,p1:db1,cloudsql.googleapis.com,'
        'cloudsql.users.update,carol@corp.com,10.0.0.2,,"{""name"":""postgres""}"'
    )
    text = header + "\n" + row + "\n"
    assert gcp.detect(text.encode())
    (event,) = rows(text)
    assert (event["action"], event["actor"], event["target"], event["outcome"]) == (
        "cloudsql.users.update", "carol@corp.com", "p1:db1", "success")
    assert event["statement"] == '{"name":"postgres"}'
    assert event["raw_ref"] == "t.json:2"
    assert extra(event)["risks"] == ["Cloud SQL database user password reset or changed"]


SA = "deployer@p1.iam.gserviceaccount.com"
# authenticationInfo -> (actor, actor_type, person, extra.delegated_by)
IDENTITIES = [
    ({"principalEmail": "alice@corp.com"}, ("alice@corp.com", "iam_user", "alice@corp.com", None)),
    ({"principalEmail": SA}, (SA, "service_account", None, None)),
    ({"principalEmail": "x@example.com", "principalSubject": "serviceAccount:x@example.com"},
     ("x@example.com", "service_account", None, None)),
    ({"principalEmail": "system:serviceaccount:kube-system:gc"},
     ("system:serviceaccount:kube-system:gc", "system", None, None)),
    ({"principalSubject": "principal://iam.googleapis.com/projects/1/locations/global/x"},
     ("principal://iam.googleapis.com/projects/1/locations/global/x", "service_account", None,
      None)),
    ({"principalEmail": "xxx@xxx.xxx"}, ("xxx@xxx.xxx", "iam_user", None, None)),  # redacted
    ({}, (None, "unknown", None, None)),
    ({"principalSubject": "user:erin@corp.com"},
     ("user:erin@corp.com", "iam_user", "erin@corp.com", None)),
    # impersonation: the human at the start of the chain is the person
    ({"principalEmail": SA, "serviceAccountDelegationInfo": [
        {"firstPartyPrincipal": {"principalEmail": "dana@corp.com"}},
        {"firstPartyPrincipal": {"principalEmail": "mid@p1.iam.gserviceaccount.com"}}]},
     (SA, "service_account", "dana@corp.com", "dana@corp.com")),
    # a chain started by another service account: no person
    ({"principalEmail": SA, "serviceAccountDelegationInfo": [
        {"firstPartyPrincipal": {"principalEmail": "ci@p1.iam.gserviceaccount.com"}}]},
     (SA, "service_account", None, "ci@p1.iam.gserviceaccount.com")),
]


@pytest.mark.parametrize(("auth", "expected"), IDENTITIES, ids=[str(i[0])[:60] for i in IDENTITIES])
def test_identity(auth, expected):
    (event,) = rows(json.dumps(entry(auth=auth)))
    got = (event["actor"], event["actor_type"], event["person"], extra(event).get("delegated_by"))
    assert got == expected


# status -> (outcome, error)
STATUSES = [
    (None, ("success", None)),
    ({}, ("success", None)),
    ({"code": 0}, ("success", None)),
    ({"message": "Connection succeeded."}, ("success", None)),
    ({"code": 7, "message": "PERMISSION_DENIED"}, ("failure", "7: PERMISSION_DENIED")),
    ({"code": 5}, ("failure", "5")),
]


@pytest.mark.parametrize(("status", "expected"), STATUSES, ids=[str(s[0]) for s in STATUSES])
def test_outcome(status, expected):
    (event,) = rows(json.dumps(entry(status=status)))
    assert (event["outcome"], event["error"]) == expected


# (method, service, request) -> (category, risk)
CATEGORIES = [
    ("cloudsql.instances.list", "cloudsql.googleapis.com", None, ("other", None)),
    ("beta.compute.instances.aggregatedList", "compute.googleapis.com", None, ("other", None)),
    ("v1.compute.firewalls.insert", "compute.googleapis.com",
     {"allowed": [{"IPProtocol": "tcp", "ports": ["5432"]}], "sourceRanges": ["0.0.0.0/0"]},
     ("network", "high")),
    ("v1.compute.firewalls.insert", "compute.googleapis.com",
     {"allowed": [{"IPProtocol": "tcp", "ports": ["443"]}], "sourceRanges": ["10.0.0.0/8"]},
     ("network", None)),
    ("cloudsql.instances.update", "cloudsql.googleapis.com",
     {"body": {"settings": {"tier": "db-custom-2"}}}, ("config", None)),
    ("cloudsql.instances.update", "cloudsql.googleapis.com",
     {"body": {"settings": {"ipConfiguration": {"authorizedNetworks": [
         {"name": "any", "value": "0.0.0.0/0"}]}}}}, ("config", "high")),
    ("cloudsql.instances.patch", "cloudsql.googleapis.com",
     {"body": {"settings": {"databaseFlags": [{"name": "cloudsql.enable_pgaudit",
                                               "value": "off"}]}}}, ("config", "high")),
    ("cloudsql.instances.patch", "cloudsql.googleapis.com",
     {"body": {"settings": {"databaseFlags": [{"name": "pgaudit.log", "value": "none"}]}}},
     ("config", "high")),
    ("cloudsql.instances.update", "cloudsql.googleapis.com",
     {"body": {"settings": {"databaseFlags": [{"name": "cloudsql_mysql_audit",
                                               "value": "OFF"}]}}}, ("config", "high")),
    ("cloudsql.instances.update", "cloudsql.googleapis.com",
     {"body": {"settings": {"deletionProtectionEnabled": False}}}, ("config", "high")),
    ("cloudsql.instances.export", "cloudsql.googleapis.com", None, ("export", "high")),
    ("cloudsql.instances.delete", "cloudsql.googleapis.com", None, ("provisioning", "high")),
    ("cloudsql.backupRuns.delete", "cloudsql.googleapis.com", None, ("backup", "high")),
    ("cloudsql.users.update", "cloudsql.googleapis.com", {"name": "postgres"},
     ("permission", "high")),
    ("SetIamPolicy", "cloudresourcemanager.googleapis.com",
     {"policy": {"bindings": [{"role": "roles/cloudsql.admin", "members": ["user:e@x.com"]}]}},
     ("permission", "high")),
    ("SetIamPolicy", "cloudresourcemanager.googleapis.com",
     {"policy": {"bindings": [{"role": "roles/viewer", "members": ["user:e@x.com"]}]}},
     ("permission", None)),
    ("google.logging.v2.ConfigServiceV2.DeleteSink", "logging.googleapis.com", None,
     ("audit_config", "high")),
    ("DestroyCryptoKeyVersion", "cloudkms.googleapis.com", None, ("config", "high")),
    ("google.iam.admin.v1.CreateRole", "iam.googleapis.com", None, ("permission", None)),
    ("v1.compute.instances.insert", "compute.googleapis.com", None, ("provisioning", None)),
]


@pytest.mark.parametrize(("method", "service", "request_body", "expected"), CATEGORIES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CATEGORIES)])
def test_category_and_risk(method, service, request_body, expected):
    (event,) = rows(json.dumps(entry(method, service=service, request=request_body)))
    assert (event["category"], extra(event).get("risk")) == expected
    assert event["layer"] == "infrastructure" and event["source"] == "gcp_audit"


def test_api_event_columns():
    e = entry("cloudsql.instances.update", auth={"principalEmail": "alice@corp.com"},
              request={"body": {"settings": {"tier": "x"}}}, insert_id="abc",
              requestMetadata={"callerIp": "203.0.113.9", "callerSuppliedUserAgent": "gcloud/1"},
              ts="2024-05-01T10:00:00.123456789Z")
    e["operation"] = {"id": "op-1", "first": True}
    (event,) = rows(json.dumps(e))
    assert event["src_ip"] == "203.0.113.9" and event["client_app"] == "gcloud/1"
    assert event["object"] == "projects/p1/instances/db1" and event["target"] == "p1:db1"
    assert event["object_type"] == "cloudsql_database"
    assert event["event_id"] == "abc" and event["raw_ref"] == "t.json:1"
    assert event["statement"] == '{"body":{"settings":{"tier":"x"}}}'
    assert str(event["time"]) == "2024-05-01 10:00:00.123456+00:00"
    assert extra(event) | {"labels": None} == {
        "log_type": "activity", "service": "cloudsql.googleapis.com", "severity": "NOTICE",
        "operation_id": "op-1", "labels": None,
    }


@pytest.mark.parametrize("kind", ["activity", "data_access", "system_event", "policy"])
def test_log_type(kind):
    log = f"organizations/1/logs/cloudaudit.googleapis.com%2F{kind}"
    (event,) = rows(json.dumps(entry(log=log)))
    assert extra(event)["log_type"] == kind


# --- Cloud SQL pgAudit -------------------------------------------------------------------------

PG = "type.googleapis.com/google.cloud.sql.audit.v1.PgAuditEntry"


def pg_entry(statement: str, *, stmt: int = 1, sub: int = 1, index: int = 1, count: int = 1,
             session: int = 77, klass: str = "READ", command: str = "SELECT", obj: str = "",
             obj_type: str = "", typed: bool = True, as_text: bool = False) -> dict:
    request = {"auditClass": klass, "auditType": "SESSION", "command": command,
               "statement": statement, "parameter": "<not logged>", "object": obj,
               "objectType": obj_type, "database": "shop", "user": "app_user",
               "databaseSessionId": session, "statementId": stmt, "substatementId": sub,
               "chunkIndex": index, "chunkCount": count}
    if as_text:  # AlloyDB's documented example renders the numbers as strings
        request = {k: str(v) if isinstance(v, int) else v for k, v in request.items()}
    if typed:
        request["@type"] = PG
    return entry("cloudsql.instances.query", log=DATA_ACCESS, request=request,
                 insert_id=f"pg-{session}-{stmt}-{sub}-{index}", resourceName="instances/db1")


def ndjson(*entries: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in entries)


def test_pgaudit_entry_maps_like_pgaudit():
    text = ndjson(pg_entry("select * from public.orders", obj="public.orders",
                           obj_type="TABLE"))
    (event,) = rows(text)
    assert (event["source"], event["layer"], event["category"], event["action"]) == (
        "pgaudit", "workflow", "read", "SELECT")
    assert (event["actor"], event["actor_type"], event["database"]) == (
        "app_user", "db_user", "shop")
    assert (event["object"], event["object_type"], event["statement_id"]) == (
        "public.orders", "table", "1.1")
    assert event["session_id"] == "77" and event["target"] == "p1:db1"
    assert event["event_id"] == "pg-77-1-1-1"
    x = extra(event)
    assert (x["audit_type"], x["audit_class"], x["substatement_id"], x["parameter"]) == (
        "SESSION", "READ", 1, "<not logged>")
    assert x["stmt_group"].startswith("0123456789ab:") and "truncated" not in x


@pytest.mark.parametrize("variant", ["untyped", "numbers as strings"])
def test_pgaudit_entry_variants(variant):
    kwargs = {"typed": False} if variant == "untyped" else {"as_text": True}
    (event,) = rows(ndjson(pg_entry("select 1", **kwargs)))
    assert (event["source"], event["statement"], event["statement_id"]) == (
        "pgaudit", "select 1", "1.1")


def test_pgaudit_categories_reuse_pgaudit_rules():
    text = ndjson(
        pg_entry("SET pgaudit.log = 'none'", stmt=1, klass="MISC", command="SET"),
        pg_entry("create role x login", stmt=2, klass="ROLE", command="CREATE ROLE"),
        pg_entry("copy t to stdout", stmt=3, klass="READ", command="COPY"),
        pg_entry("create table t (a int)", stmt=4, klass="DDL", command="CREATE TABLE"),
    )
    assert [e["category"] for e in rows(text)] == ["audit_config", "permission", "export",
                                                   "schema"]


def test_pgaudit_chunks_reassembled_out_of_order():
    text = ndjson(
        pg_entry("select 0", stmt=1),
        pg_entry("where b = 2", stmt=2, index=3, count=3),
        pg_entry("select a ", stmt=2, index=1, count=3),
        pg_entry("select 9", stmt=2, session=78),  # same ids, other session: not a chunk
        pg_entry("from t ", stmt=2, index=2, count=3),
    )
    parsed = read(text)
    events = parsed.events.to_dicts()
    assert [e["statement"] for e in events] == [
        "select 0", "select a from t where b = 2", "select 9"]
    assert events[1]["event_id"] == "pg-77-2-1-1"  # the first chunk's entry
    assert extra(events[1])["chunks"] == 3 and "truncated" not in extra(events[1])
    # records count reassembled statements: the two continuation chunks are merged, and said so
    assert parsed.records == 3 and parsed.quarantine.height == 0
    assert any("2 pgAudit chunk entries merged" in n for n in parsed.notes)


def test_pgaudit_missing_chunk_is_flagged_truncated():
    text = ndjson(pg_entry("select a ", index=1, count=3), pg_entry("where b = 2", index=3,
                                                                    count=3))
    (event,) = rows(text)
    assert event["statement"] == "select a where b = 2"
    assert extra(event)["truncated"] is True and extra(event)["chunks"] == 2


def test_substatements_share_a_stmt_group():
    text = ndjson(pg_entry("select f()", stmt=5, sub=1, klass="FUNCTION", command="SELECT"),
                  pg_entry("select 1", stmt=5, sub=2))
    first, second = rows(text)
    assert (first["statement_id"], second["statement_id"]) == ("5.1", "5.2")
    assert extra(first)["stmt_group"] == extra(second)["stmt_group"]


# --- Cloud SQL MySQL audit ---------------------------------------------------------------------

def test_mysql_audit_entry():
    request = {"@type": "type.googleapis.com/google.cloud.sql.audit.v1.MysqlAuditEntry",
               "cmd": "drop_table", "status": "unsuccessful", "errCode": "1051", "user": "root",
               "privUser": "root", "ip": "198.51.100.7", "query": "DROP TABLE STU",
               "queryId": "9", "threadId": "4", "msgType": "activity",
               "objects": [{"db": "testuc", "name": "STU", "objType": "TABLE"}]}
    connect = dict(request, cmd="connect", status="successful", objects=[], query="")
    text = ndjson(entry("cloudsql.instances.query", log=DATA_ACCESS, request=request),
                  entry("cloudsql.instances.query", log=DATA_ACCESS, request=connect,
                        insert_id="id2"))
    drop, login = rows(text)
    assert (drop["source"], drop["layer"], drop["category"], drop["action"]) == (
        "gcp_audit", "workflow", None, "DROP TABLE")
    assert (drop["outcome"], drop["error"], drop["actor"], drop["src_ip"]) == (
        "failure", "1051", "root", "198.51.100.7")
    assert (drop["database"], drop["object"], drop["object_type"]) == (
        "testuc", "testuc.STU", "table")
    assert (drop["session_id"], drop["statement_id"]) == ("4", "9")
    assert (login["category"], login["outcome"]) == ("auth", "success")


# --- nothing lost, detection -------------------------------------------------------------------

def test_bad_lines_and_non_audit_entries_are_quarantined():
    text_payload = {"logName": "projects/p1/logs/cloudsql.googleapis.com%2Fpostgres.log",
                    "insertId": "t1", "textPayload": "FATAL:  password authentication failed"}
    no_method = entry()
    del no_method["protoPayload"]["methodName"]
    text = ndjson(ONE) + "{not json\n" + ndjson(text_payload, no_method, {"jsonPayload": {}})
    parsed = read(text)
    assert parsed.events.height == 1 and parsed.records == 5
    got = parsed.quarantine.select("line", "reason").rows()
    assert [line for line, _ in got] == [2, 3, 4, 5]
    assert got[0][1] == "not a JSON object"
    assert "textPayload" in got[1][1]
    assert got[2][1] == "AuditLog entry without methodName"
    assert "without protoPayload" in got[3][1]
    assert parsed.quarantine["raw"][0] == "{not json"


def test_odd_entry_only_slows_its_batch(monkeypatch):
    elided = entry()
    elided["protoPayload"]["authenticationInfo"] = "..."  # a string where an object is expected
    text = ndjson(ONE, elided, TWO) + "[1]\n"
    fast_and_slow = read(text)
    monkeypatch.setattr(gcp, "BATCH", 1)  # the good entries now take the fast path alone
    per_entry = read(text)
    assert fast_and_slow.events.equals(per_entry.events)
    assert fast_and_slow.events["actor"].to_list() == ["alice@corp.com", None, None]
    assert per_entry.quarantine.select("line", "reason").rows() == [(4, "not a JSON object")]


def test_array_element_that_is_not_an_object():
    parsed = read(json.dumps([ONE, "oops"]))
    assert (parsed.events.height, parsed.quarantine.height) == (1, 1)
    assert parsed.quarantine["line"][0] == 2


# head bytes -> claimed by gcp_audit
DETECT = [
    (json.dumps(ONE).encode(), True),
    (json.dumps([ONE], indent=2).encode(), True),
    (b'{"Records":[{"eventVersion":"1.08","eventSource":"rds.amazonaws.com"}]}', False),
    (b'{"records":[{"operationName":"MICROSOFT.SQL/SERVERS/WRITE","resourceId":"/x"}]}', False),
    (b"2024-05-01 10:00:00 UTC [1] LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>\n",
     False),
    (b'{\n  "protoPayload" => {\n    "methodName" => "x"\n  }\n}\n', False),  # rubydebug
    (b'"message" => "{\\"insertId\\":\\"x\\",\\"protoPayload\\":{}}"\n', False),
    (b'{"logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","insertId":"x"}', True),
    (b"timestamp,protopayload_auditlog.methodName\n", True),
]


@pytest.mark.parametrize(("head", "expected"), DETECT, ids=[str(i) for i in range(len(DETECT))])
def test_detect(head, expected):
    assert gcp.detect(head) is expected


def test_read_file_detects_and_conforms(tmp_path):
    path = tmp_path / "audit.json"
    path.write_text(json.dumps([ONE, TWO]))
    assert detect_format(path.read_bytes()) == "gcp_audit"
    name, parsed = read_file(path)
    assert name == "gcp_audit" and parsed.events.height == 2
    assert parsed.events.schema["time"] == pl.Datetime("us", "UTC")
