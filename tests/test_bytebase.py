"""Unit tests of the bytebase source: API/export/stdout/dump shapes, identity, outcome, category,
masking and IAM deltas kept in ``extra``, quarantine."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from auditkit.errors import InputError
from auditkit.schema import EVENT_SCHEMA
from auditkit.sources import FileContext, detect_format
from auditkit.sources import bytebase as bb

CTX = FileContext(path="bb.json", display="bb.json", digest="d1g3st")
QUERY = "/bytebase.v1.SQLService/Query"
DB = "instances/prod-pg/databases/hr"


def request(statement: str = "SELECT * FROM employee", **over) -> str:
    return json.dumps({"name": DB, "statement": statement, "limit": 1000, **over})


MASKED_RESPONSE = json.dumps({"results": [{
    "columnNames": ["id", "email", "salary"], "columnTypeNames": ["INT4", "TEXT", "NUMERIC"],
    "rowsCount": "42", "latency": "0.004s", "statement": "SELECT * FROM employee",
    "masked": [{}, {"semanticTypeId": "email", "semanticTypeTitle": "Email",
                    "maskingRuleId": "r1", "algorithm": "full-mask",
                    "context": "Matched global rule: PII"},
               {"semanticTypeId": "salary", "algorithm": "range-mask"}]}]})


def api(method: str = QUERY, **over) -> dict:
    """A bytebase.v1.AuditLog as SearchAuditLogs returns it, overridable field by field."""
    out = {"name": "projects/hr/auditLogs/501", "createTime": "2025-03-04T10:15:30.123456Z",
           "user": "users/alice@corp.com", "method": method, "severity": "INFO",
           "resource": DB, "request": request(), "response": MASKED_RESPONSE,
           "latency": "0.012s",
           "requestMetadata": {"callerIp": "203.0.113.9:51234",
                               "callerSuppliedUserAgent": "Mozilla/5.0"}}
    out.update(over)
    return {k: v for k, v in out.items() if v is not ...}


def stdout(method: str = QUERY, **over) -> dict:
    """A line of Bytebase's stdout audit stream (slog JSON handler)."""
    out = {"time": "2025-03-04T11:15:30.5+01:00", "level": "INFO", "msg": method,
           "log_type": "audit", "parent": "projects/hr", "method": method, "resource": DB,
           "user": "users/102", "latency_ms": 12, "client_ip": "10.0.0.5",
           "user_agent": "bytebase-cli/3.5", "severity": "INFO", "request": request(),
           "response": json.dumps({"results": [{"columnNames": ["id"], "rowsCount": "7"}]})}
    out.update(over)
    return {k: v for k, v in out.items() if v is not ...}


def parse(text: str) -> bb.Parsed:
    return bb.read(text, CTX)


def extra(row: dict) -> dict:
    return json.loads(row["extra"])


def lines(*records: dict) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


A = api()
B = api(name="projects/hr/auditLogs/502", user="users/bob@corp.com")
APP_LOG = {"time": "2025-03-04T11:15:00Z", "level": "INFO", "msg": "server started"}
PAYLOAD = {"user": "users/101", "method": QUERY, "parent": "projects/hr", "resource": DB,
           "request": request("SELECT 1"), "severity": "INFO"}
PAYLOAD_SQL = json.dumps(PAYLOAD).replace("'", "''")
EXPORT_JSON = json.dumps([
    {"method": QUERY, "request": request(), "resource": DB, "response": "", "severity": "INFO",
     "status": None, "time": "2025-03-04T10:15:30Z", "user": "users/alice@corp.com"},
    {"method": QUERY, "request": request(), "resource": DB, "response": "", "severity": "INFO",
     "status": 'code:7  message:"permission denied"', "time": "2025-03-04T10:16:30Z",
     "user": "users/bob@corp.com"}], indent=2)
COPY_DUMP = (
    "SET statement_timeout = 0;\n"
    "COPY public.audit_log (id, created_at, payload) FROM stdin;\n"
    f"7\t2024-07-10 19:50:55.25-07\t{json.dumps(PAYLOAD).replace(chr(92), chr(92) * 2)}\n"
    f"8\t2024-07-10 19:51:00-07\t{json.dumps({**PAYLOAD, 'user': 'users/102'})}\n"
    "\\.\n"
    "COPY public.instance (id, name) FROM stdin;\n1\tprod\n\\.\n"
)
INSERT_DUMP = (
    "-- PostgreSQL database dump\n"
    f"INSERT INTO public.audit_log VALUES (1, '2024-07-10 19:50:55-07', '{PAYLOAD_SQL}'), "
    f"(2, '2024-07-10 19:51:55-07', '{PAYLOAD_SQL}') ON CONFLICT (id) DO NOTHING;\n"
    "INSERT INTO public.audit_log (id, payload, created_ts) VALUES "
    f"(3, '{PAYLOAD_SQL}', '1720666255');\n"
)

# name, text, events, quarantined, raw_refs of events
SHAPES = [
    ("json array", json.dumps([A, B], indent=2), 2, 0, ["bb.json:1", "bb.json:2"]),
    ("auditLogs page", json.dumps({"auditLogs": [A, B], "nextPageToken": "abc"}, indent=1), 2,
     0, ["bb.json:1", "bb.json:2"]),
    ("empty page", json.dumps({"auditLogs": []}), 0, 0, []),
    ("single record", json.dumps(A, indent=4), 1, 0, ["bb.json:1"]),
    ("ndjson with blank line and crlf", (lines(A) + "\n" + lines(B)).replace("\n", "\r\n"), 2,
     0, ["bb.json:1", "bb.json:3"]),
    ("stdout stream with application logs and a banner",
     "██ Bytebase\n" + lines(APP_LOG, stdout(), APP_LOG, stdout(user="users/103")), 2, 0,
     ["bb.json:3", "bb.json:5"]),
    ("export json (pretty array, proto-text status)", EXPORT_JSON, 2, 0,
     ["bb.json:1", "bb.json:2"]),
    ("dump COPY block", COPY_DUMP, 2, 0, ["bb.json:3", "bb.json:4"]),
    ("array with a non-object", json.dumps([A, 7, B]), 2, 1, ["bb.json:1", "bb.json:3"]),
    ("auditLogs pages, one broken",
     lines({"auditLogs": [A]}) + '{"auditLogs": [{"name": \n' + lines({"auditLogs": [B]}), 2, 1,
     ["bb.json:1", "bb.json:3"]),
    ("auditLogs pages, one per line",
     lines({"auditLogs": [A, B], "nextPageToken": "p2"},
           {"auditLogs": [api(name="projects/hr/auditLogs/503")]}), 3, 0,
     ["bb.json:1", "bb.json:1", "bb.json:2"]),
    ("dump INSERT, multi-row and column lists", INSERT_DUMP, 3, 0,
     ["bb.json:2", "bb.json:2", "bb.json:3"]),
]


@pytest.mark.parametrize(("name", "text", "events", "quarantined", "refs"), SHAPES,
                         ids=[s[0] for s in SHAPES])
def test_shapes(name: str, text: str, events: int, quarantined: int, refs: list[str]) -> None:
    parsed = parse(text)
    assert (parsed.events.height, parsed.quarantine.height) == (events, quarantined)
    assert parsed.records == events + quarantined
    assert parsed.events.get_column("raw_ref").to_list() == refs
    assert parsed.events.get_column("time").null_count() == 0
    assert set(parsed.events.get_column("source")) <= {"bytebase"}
    assert set(parsed.events.get_column("layer")) <= {"workflow"}
    assert set(parsed.events.get_column("action")) <= {QUERY}
    assert parsed.events.get_column("event_id").n_unique() == events
    if events:
        assert bb.detect(text.encode())
        assert detect_format(text.encode()) == "bytebase"


def test_api_record_mapping() -> None:
    row = parse(json.dumps([A])).events.row(0, named=True)
    assert row["time"] == datetime(2025, 3, 4, 10, 15, 30, 123456, tzinfo=UTC)
    assert (row["actor"], row["actor_type"], row["person"]) == (
        "users/alice@corp.com", "gateway_user", "alice@corp.com")
    assert (row["category"], row["outcome"], row["error"]) == ("read", "success", None)
    assert (row["target"], row["database"]) == ("prod-pg", "hr")
    assert row["statement"] == "SELECT * FROM employee"
    assert (row["src_ip"], row["client_app"]) == ("203.0.113.9", "Mozilla/5.0")
    assert row["rows"] == 42
    assert row["event_id"] == "projects/hr/auditLogs/501"
    assert row["object"] is None
    info = extra(row)
    assert info["caller_ip"] == "203.0.113.9:51234"
    assert info["latency_ms"] == pytest.approx(12.0)
    assert info["log_shape"] == "api"
    assert info["limit"] == 1000


def test_stdout_line_mapping() -> None:
    row = parse(lines(stdout())).events.row(0, named=True)
    assert row["time"] == datetime(2025, 3, 4, 10, 15, 30, 500000, tzinfo=UTC)
    # numeric user ids (store rows, older builds) are kept; no person without an email
    assert (row["actor"], row["actor_type"], row["person"]) == ("users/102", "gateway_user",
                                                                None)
    assert (row["src_ip"], row["client_app"], row["rows"]) == ("10.0.0.5", "bytebase-cli/3.5",
                                                                7)
    assert row["event_id"] == "d1g3st:1"
    assert extra(row)["log_shape"] == "stdout"
    assert extra(row)["latency_ms"] == 12


def test_schema_dtypes() -> None:
    events = parse(json.dumps([A])).events
    for name in events.columns:
        assert events.schema[name] == EVENT_SCHEMA[name], name


# record overrides, outcome, error
FAILURES = [
    ({"status": {"code": 7, "message": "permission denied to query hr"}}, "failure",
     "permission_denied: permission denied to query hr"),
    ({"status": {"code": 0}}, "success", None),
    ({"status": {"code": 99}}, "failure", "code 99"),
    ({"response": json.dumps({"results": [{"error": "relation \"x\" does not exist"}]})},
     "failure", 'relation "x" does not exist'),
]


@pytest.mark.parametrize(("over", "outcome", "error"), FAILURES)
def test_outcomes(over: dict, outcome: str, error: str | None) -> None:
    row = parse(json.dumps([api(**over)])).events.row(0, named=True)
    assert (row["outcome"], row["error"]) == (outcome, error)


def test_stdout_failure_and_export_status_text() -> None:
    failed = stdout(status_code=7, status_message="no permission", response=...)
    row = parse(lines(failed)).events.row(0, named=True)
    assert (row["outcome"], row["error"]) == ("failure", "permission_denied: no permission")
    assert extra(row)["status_code"] == 7
    outcomes = parse(EXPORT_JSON).events.select("outcome", "error").rows()
    assert outcomes == [("success", None), ("failure", "permission_denied: permission denied")]


def test_login_failure_is_auth_with_the_attempted_email() -> None:
    login = api("/bytebase.v1.AuthService/Login", user=..., resource="mallory@corp.com",
                request=json.dumps({"email": "mallory@corp.com", "web": True}), response=...,
                status={"code": 16, "message": "invalid email or password"})
    row = parse(json.dumps([login])).events.row(0, named=True)
    assert (row["category"], row["action"], row["outcome"]) == (
        "auth", "/bytebase.v1.AuthService/Login", "failure")
    assert row["error"] == "unauthenticated: invalid email or password"
    assert (row["actor"], row["person"]) == ("mallory@corp.com", "mallory@corp.com")
    assert (row["statement"], row["object"], row["target"]) == (None, None, None)
    assert extra(row)["actor_from"] == "resource"


@pytest.mark.parametrize("user", ["users/101", ...])
def test_login_success_records_the_user_it_resolved_to(user) -> None:
    login = api("/bytebase.v1.AuthService/Login", user=user, resource="demo@corp.com",
                response=json.dumps({"user": {"name": "users/101", "email": "demo@corp.com"}}))
    row = parse(json.dumps([login])).events.row(0, named=True)
    assert (row["actor"], row["person"], row["outcome"]) == ("users/101", "demo@corp.com",
                                                             "success")
    assert extra(row)["logged_in_user"] == "users/101"
    assert extra(row).get("actor_from") == ("response" if user is ... else None)


DELTA = {"@type": "type.googleapis.com/bytebase.v1.AuditData", "policyDelta": {"bindingDeltas": [
    {"action": "ADD", "role": "roles/projectDeveloper", "member": "user:bob@corp.com"},
    {"action": "REMOVE", "role": "roles/projectOwner", "member": "user:eve@corp.com",
     "condition": {"expression": 'request.time < timestamp("2025-04-01T00:00:00Z")'}}]}}
POLICY = {"resource": "projects/hr", "policy": {"bindings": [
    {"role": "roles/projectDeveloper", "members": ["user:bob@corp.com"]}]}}


def test_set_iam_policy_keeps_the_delta() -> None:
    record = api("/bytebase.v1.ProjectService/SetIamPolicy", resource="projects/hr",
                 request=json.dumps(POLICY), response=json.dumps(POLICY["policy"]),
                 serviceData=DELTA)
    events = parse(json.dumps([record])).events
    row = events.row(0, named=True)
    assert (row["category"], row["action"]) == ("permission",
                                                "/bytebase.v1.ProjectService/SetIamPolicy")
    assert (row["object"], row["object_type"], row["statement"]) == ("projects/hr", "iam_policy",
                                                                     None)
    delta = extra(row)["policy_delta"]
    assert [(d["action"], d["role"], d["member"]) for d in delta] == [
        ("ADD", "roles/projectDeveloper", "user:bob@corp.com"),
        ("REMOVE", "roles/projectOwner", "user:eve@corp.com")]
    assert delta[1]["condition"]["expression"].startswith("request.time <")
    added = events.select(
        pl.col("extra").str.json_path_match("$.policy_delta[0].member")).item()
    assert added == "user:bob@corp.com"
    # stdout has no serviceData: the new policy from the request is kept instead
    line = stdout("/bytebase.v1.ProjectService/SetIamPolicy", request=json.dumps(POLICY))
    kept = extra(parse(lines(line)).events.row(0, named=True))
    assert kept["policy_bindings"][0]["members"] == ["user:bob@corp.com"]
    assert json.loads(kept["request"]) == POLICY


def test_masking_decisions_kept_and_queryable() -> None:
    events = parse(json.dumps([A])).events
    info = extra(events.row(0, named=True))
    assert info["masked_columns"] == ["email", "salary"]
    assert info["masking"][0] == {
        "column": "email", "semantic_type_id": "email", "semantic_type_title": "Email",
        "masking_rule_id": "r1", "algorithm": "full-mask", "context": "Matched global rule: PII"}
    assert info["masking"][1] == {"column": "salary", "semantic_type_id": "salary",
                                  "algorithm": "range-mask"}
    masked = events.select(
        pl.col("extra").str.json_path_match("$.masked_columns").str.json_decode(
            pl.List(pl.String))).item()
    assert masked.to_list() == ["email", "salary"]
    # older builds: booleans per column, and a `sensitive` list
    old = json.dumps({"results": [{"columnNames": ["a", "b", "c"], "masked": [False, True, True],
                                   "sensitive": [False, True, False]}]})
    info = extra(parse(json.dumps([api(response=old)])).events.row(0, named=True))
    assert (info["masked_columns"], info["sensitive_columns"]) == (["b", "c"], ["b"])
    assert "masking" not in info
    unmasked = json.dumps({"results": [{"columnNames": ["a"], "masked": [{}]}]})
    assert "masked_columns" not in extra(
        parse(json.dumps([api(response=unmasked)])).events.row(0, named=True))


# method, statement, category
CATEGORIES = [
    (QUERY, "SELECT 1", "read"),
    ("/bytebase.v1.SQLService/Export", "SELECT * FROM employee", "export"),
    ("/bytebase.v1.SQLService/AdminExecute", "  -- fix\nDROP TABLE tmp", "schema"),
    ("/bytebase.v1.SQLService/AdminExecute", "/* bulk */ insert into t values (1)", "write"),
    ("/bytebase.v1.SQLService/AdminExecute", "(SELECT 1)", "read"),
    ("/bytebase.v1.SQLService/AdminExecute", "GRANT SELECT ON t TO bob", "permission"),
    ("/bytebase.v1.SQLService/AdminExecute", "VACUUM", "other"),
    ("/bytebase.v1.IssueService/ApproveIssue", None, "approval"),
    ("/bytebase.v1.RolloutService/BatchRunTasks", None, "approval"),
    ("/bytebase.v1.PlanService/CreatePlan", None, "approval"),
    ("/bytebase.v1.AuthService/Logout", None, "auth"),
    ("/bytebase.v1.UserService/CreateUser", None, "permission"),
    ("/bytebase.v1.InstanceService/CreateInstance", None, "provisioning"),
    ("/bytebase.v1.SettingService/UpdateSetting", None, "config"),
    ("/bytebase.v1.DatabaseService/GetDatabase", None, "other"),
    ("bb.project.repository.push", None, "other"),
]


@pytest.mark.parametrize(("method", "statement", "category"), CATEGORIES)
def test_categories(method: str, statement: str | None, category: str) -> None:
    req = request(statement) if statement else json.dumps({"name": "projects/hr/issues/12"})
    row = parse(json.dumps([api(method, request=req)])).events.row(0, named=True)
    assert row["category"] == category
    if method.startswith("/bytebase.v1.SQLService/"):
        assert row["statement"] == statement
    else:
        assert row["statement"] is None


def test_export_admin_flag_and_non_sql_objects() -> None:
    export = api("/bytebase.v1.SQLService/Export", request=request(admin=True, format="CSV"),
                 response=json.dumps({"appliedAccessGrant": "projects/hr/accessGrants/9"}))
    info = extra(parse(json.dumps([export])).events.row(0, named=True))
    assert (info["admin"], info["applied_access_grant"]) == (True, "projects/hr/accessGrants/9")
    issue = api("/bytebase.v1.IssueService/ApproveIssue", resource="projects/hr/issues/12",
                request=json.dumps({"name": "projects/hr/issues/12"}), response=...)
    row = parse(json.dumps([issue])).events.row(0, named=True)
    assert (row["object"], row["object_type"], row["target"]) == (
        "projects/hr/issues/12", "issue", None)


def test_service_accounts_are_not_persons() -> None:
    row = parse(json.dumps([api(user="users/ci@service.bytebase.com")])).events.row(
        0, named=True)
    assert (row["actor_type"], row["person"]) == ("service_account", None)


def test_dump_rows() -> None:
    events = parse(INSERT_DUMP).events
    assert events.get_column("event_id").to_list() == [
        "projects/hr/auditLogs/1", "projects/hr/auditLogs/2", "projects/hr/auditLogs/3"]
    assert events.get_column("time").to_list() == [
        datetime(2024, 7, 11, 2, 50, 55, tzinfo=UTC), datetime(2024, 7, 11, 2, 51, 55, tzinfo=UTC),
        datetime(2024, 7, 11, 2, 50, 55, tzinfo=UTC)]
    assert set(events.get_column("actor")) == {"users/101"}
    copy = parse(COPY_DUMP)
    assert copy.events.get_column("time")[0] == datetime(2024, 7, 11, 2, 50, 55, 250000,
                                                         tzinfo=UTC)
    assert copy.events.get_column("actor").to_list() == ["users/101", "users/102"]
    assert copy.events.get_column("statement").to_list() == ["SELECT 1", "SELECT 1"]
    assert any("not audit records" in note for note in copy.notes)


def test_unparsable_records_are_quarantined_with_their_line() -> None:
    text = lines(A) + '{"method": "/bytebase.v1.SQLService/Query", "request": \n' + lines(B)
    parsed = parse(text)
    assert parsed.events.height == 2
    q = parsed.quarantine.row(0, named=True)
    assert (q["file"], q["line"], q["format"]) == ("bb.json", 2, "bytebase")
    assert q["reason"].startswith("invalid JSON")
    assert parsed.records == 3
    missing = parse(json.dumps([api(method=...), api(createTime=...), api(createTime="soon")]))
    assert missing.quarantine.get_column("reason").to_list() == [
        "no method", "no time (createTime/time/created_at)", "unparseable time"]
    assert missing.quarantine.get_column("line").to_list() == [1, 2, 3]


def test_bad_dump_rows_are_quarantined() -> None:
    text = (INSERT_DUMP
            + "INSERT INTO public.audit_log (id, payload, created_at) VALUES (4, '{broken', "
              "'2024-07-10 19:50:55-07');\n"
            + "INSERT INTO public.audit_log (id, created_at) VALUES (5, '2024-07-10');\n")
    parsed = parse(text)
    assert parsed.events.height == 3
    q = parsed.quarantine.select("line", "reason").rows()
    assert [line for line, _ in q] == [4, 5]
    assert q[0][1].startswith("invalid JSON")
    assert q[1][1] == "audit_log row without a JSON payload column"
    broken = INSERT_DUMP.replace('"severity"', '"severity', 1)
    bad = parse(broken).quarantine
    assert bad.get_column("line").to_list() == [2]
    assert bad.get_column("reason")[0].startswith("invalid JSON")


def test_backslashes_survive_every_container() -> None:
    statement = r"SELECT * FROM t WHERE path LIKE 'C:\temp\%' AND re ~ '\d+'"
    context = r"rule \d matched"
    response = json.dumps({"results": [{"columnNames": ["a"], "masked": [
        {"semanticTypeId": "x", "context": context}]}]})
    record = api(request=request(statement), response=response)
    for text in (json.dumps([record], indent=2), json.dumps({"auditLogs": [record]}),
                 lines(record, record), json.dumps(record, indent=2)):
        row = parse(text).events.row(0, named=True)
        assert row["statement"] == statement
        assert extra(row)["masking"][0]["context"] == context


def test_truncated_stdout_payload_is_kept_and_flagged() -> None:
    line = stdout(request=request()[:30] + bb.TRUNCATED)
    row = parse(lines(line)).events.row(0, named=True)
    assert row["statement"] is None
    assert extra(row)["truncated"] is True
    assert extra(row)["request_unparsed"] is True


def test_truncated_document_is_an_error_naming_file_and_position() -> None:
    text = json.dumps({"auditLogs": [A, B]}, indent=2)[:-60]
    with pytest.raises(InputError, match=r"^bb\.json:\d+:\d+: not a valid JSON document"):
        parse(text)


def test_text_without_records_is_an_error_naming_the_file() -> None:
    with pytest.raises(InputError, match=r"bb\.json:1: no Bytebase audit records"):
        parse("SET statement_timeout = 0;\nSELECT 1;\n")


# content bytebase must not claim
FOREIGN = [
    json.dumps({"Records": [{"eventVersion": "1.08", "eventName": "DescribeDBInstances",
                             "eventSource": "rds.amazonaws.com"}]}),
    json.dumps({"protoPayload": {"methodName": "cloudsql.instances.update"},
                "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity"}),
    '2024-05-01 10:00:00 UTC [1] bb@bytebase LOG:  statement: INSERT INTO audit_log (payload) '
    'VALUES (\'{"method": "/bytebase.v1.SQLService/Query"}\')\n',
    "INSERT INTO public.audit_log (id, payload) VALUES (1, '{\"action\": \"login\"}');\n",
    json.dumps({"timestamp": "2024-05-01 10:00:00", "method": "GET", "path": "/bytebase.v1"}),
]


@pytest.mark.parametrize("text", FOREIGN)
def test_detect_does_not_claim_other_formats(text: str) -> None:
    assert not bb.detect(text.encode())


def test_records_and_payloads_of_unexpected_types() -> None:
    odd = api(requestMetadata="203.0.113.9", name="projects/hr/auditLogs/600")
    odd_response = api(name="projects/hr/auditLogs/601",
                       response=json.dumps({"results": {"not": "a list"}}))
    parsed = parse(lines(A, odd, odd_response))
    assert parsed.events.get_column("event_id").to_list() == [
        "projects/hr/auditLogs/501", "projects/hr/auditLogs/601"]
    assert parsed.quarantine.select("line", "reason").rows() == [
        (2, "fields of unexpected types for the Bytebase audit schema")]
    assert extra(parsed.events.row(1, named=True))["response_unparsed"] is True
