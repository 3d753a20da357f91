"""azure_activity: detection, the three shapes, identities, operation linking, catalogue risks."""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.schema import conform
from auditkit.sources import FileContext
from auditkit.sources import azure_activity as az

CTX = FileContext(path="t.json", display="t.json", digest="0123456789ab")
SUB = "/subscriptions/1111/resourceGroups/rg1"
SQL_SERVER = f"{SUB}/providers/Microsoft.Sql/servers/sql1"
UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"


def export(op: str = "Microsoft.Sql/servers/write", *, result: str = "Success",
           signature: str = "Succeeded.OK", corr: str = "c1", time: str = "2024-05-01T10:00:00Z",
           resource: str = SQL_SERVER, claims: dict | None = None, evidence: dict | None = None,
           body=None, **extra) -> dict:
    """A diagnostic-export record (only the given parts)."""
    identity: dict = {}
    if claims is not None:
        identity["claims"] = claims
    if evidence is not None:
        identity["authorization"] = {"evidence": evidence}
    record = {"time": time, "resourceId": resource, "operationName": op.upper(),
              "category": "Administrative", "resultType": result, "resultSignature": signature,
              "callerIpAddress": "10.0.0.5", "correlationId": corr, "identity": identity,
              "level": "Information", **extra}
    if body is not None:
        record["properties"] = {"requestbody": body}
    return record


def rest(op: str = "Microsoft.Sql/servers/write", *, status: str = "Succeeded",
         caller: str | None = "ann@corp.com", corr: str = "c1", eid: str = "e1",
         time: str = "2024-05-01T10:00:00.1234567Z", body=None) -> dict:
    """A REST / ``az monitor activity-log list`` record."""
    record = {"caller": caller, "claims": {UPN: caller} if caller and "@" in caller else {},
              "correlationId": corr, "eventDataId": eid, "eventTimestamp": time,
              "category": {"value": "Administrative"}, "level": "Informational",
              "operationName": {"value": op, "localizedValue": op},
              "resourceId": SQL_SERVER, "status": {"value": status},
              "subStatus": {"value": "Forbidden" if status == "Failed" else ""},
              "httpRequest": {"clientIpAddress": "192.0.2.1", "method": "PUT"},
              "properties": {"statusCode": "OK"}}
    if body is not None:
        record["properties"]["requestbody"] = body
    return record


def ndjson(*records: dict) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


def read(text: str) -> az.Parsed:
    parsed = az.read(text, CTX)
    assert parsed.records == parsed.events.height + parsed.quarantine.height
    parsed.events = conform(parsed.events)  # what read_file hands downstream
    return parsed


def field(events: pl.DataFrame, key: str) -> list:
    return events.get_column("extra").str.json_path_match(f"$.{key}").to_list()


# --- detection ------------------------------------------------------------------------------

LA_ROW = {"TimeGenerated": "2024-05-01T10:00:00Z",
          "OperationNameValue": "MICROSOFT.SQL/SERVERS/DATABASES/EXPORT/ACTION",
          "ActivityStatusValue": "Success", "ActivitySubstatusValue": "OK",
          "Caller": "bob@corp.com", "CallerIpAddress": "198.51.100.7", "CorrelationId": "c9",
          "EventDataId": "la1", "CategoryValue": "Administrative",
          "_ResourceId": f"{SQL_SERVER}/databases/sales",
          "Properties_d": {"requestbody": "{\"storageUri\":\"https://x.blob/y.bacpac\"}"},
          "Claims_d": {UPN: "bob@corp.com"}}

DETECT = [
    (json.dumps([rest()]), True),
    (json.dumps({"records": [export()]}), True),
    (ndjson(export(), export()), True),
    (json.dumps({"value": [rest()]}), True),
    (json.dumps([LA_ROW]), True),
    ("TimeGenerated,OperationNameValue,Caller\n2024-05-01T10:00:00Z,x/write,a@b.c\n", True),
    ('{"time": "1/9/2007 9:41:00 AM", "category": "Administrative"}\n', True),
    # not ours: GCP, CloudTrail, Azure PostgreSQL server logs (pgaudit's), text and other JSON
    ('{"protoPayload": {"methodName": "x"}, "operationName": "y", "resultType": "z"}', False),
    ('{"Records": [{"eventVersion": "1.08", "eventSource": "rds.amazonaws.com"}]}', False),
    ('{"records": [{"time": "2024-05-01T10:00:00Z", "resourceId": "/S/X", "category": '
     '"PostgreSQLLogs", "operationName": "LogEvent", "correlationId": "c", '
     '"properties": {"message": "2024-05-01 10:00:00 UTC-1-LOG: connection received"}}]}', False),
    ("2024-05-01 10:00:00 UTC [1] LOG:  statement: SELECT 1\n", False),
    ('{"timestamp": "x", "user": "root", "command": "Query"}', False),
]


@pytest.mark.parametrize(("text", "expected"), DETECT)
def test_detect(text, expected):
    assert az.detect(text.encode()) is expected


# --- shapes -----------------------------------------------------------------------------------

COMMON = ["action", "outcome", "actor", "actor_type", "person", "src_ip", "target", "object",
          "object_type", "event_id"]
SHAPES = [
    # REST: caller, httpRequest.clientIpAddress, eventDataId
    (json.dumps([rest()]),
     ["Microsoft.Sql/servers/write", "success", "ann@corp.com", "iam_user", "ann@corp.com",
      "192.0.2.1", "subscriptions/1111/resourceGroups/rg1", "sql1", "server", "e1"]),
    # export records wrapper: upper-case operation, claims UPN, no event id (digest:position)
    (json.dumps({"records": [export(claims={UPN: "cy@corp.com"})]}),
     ["MICROSOFT.SQL/SERVERS/WRITE", "success", "cy@corp.com", "iam_user", "cy@corp.com",
      "10.0.0.5", "subscriptions/1111/resourceGroups/rg1", "sql1", "server", "0123456789ab:1"]),
    # Log Analytics AzureActivity rows (JSON export)
    (json.dumps([LA_ROW]),
     ["MICROSOFT.SQL/SERVERS/DATABASES/EXPORT/ACTION", "success", "bob@corp.com", "iam_user",
      "bob@corp.com", "198.51.100.7", "subscriptions/1111/resourceGroups/rg1", "sql1/sales",
      "database", "la1"]),
]


@pytest.mark.parametrize(("text", "expected"), SHAPES)
def test_shapes(text, expected):
    events = read(text).events
    assert events.height == 1
    assert [events[c][0] for c in COMMON] == expected
    assert events["source"][0] == "azure_activity"
    assert events["layer"][0] == "infrastructure"


def test_log_analytics_csv():
    header = "TimeGenerated,OperationNameValue,ActivityStatusValue,Caller,CallerIpAddress," \
             "CorrelationId,EventDataId,_ResourceId,Properties\n"
    body = '"{""requestbody"":""{\\""properties\\"":{\\""state\\"":\\""Disabled\\""}}""}"'
    text = header + (
        f"\"5/1/2024, 10:00:00.000 PM\",Microsoft.Sql/servers/auditingSettings/write,Succeeded,"
        f"dee@corp.com,203.0.113.9,c1,la2,{SQL_SERVER}/auditingSettings/default,{body}\n"
    )
    parsed = read(text)
    events = parsed.events
    assert events["time"][0].isoformat() == "2024-05-01T22:00:00+00:00"
    assert (events["actor"][0], events["outcome"][0], events["category"][0]) == (
        "dee@corp.com", "success", "audit_config")
    assert events["statement"][0] == '{"properties":{"state":"Disabled"}}'
    assert field(events, "risk") == ["high"]
    assert events["raw_ref"][0] == "t.json:2"


def test_request_body_string_or_object_and_statement_compact():
    body = {"properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "255.255.255.255"}}
    op = "Microsoft.Sql/servers/firewallRules/write"
    as_object = read(ndjson(export(op, body=body))).events
    as_string = read(ndjson(export(op, body=json.dumps(body, separators=(",", ":"))))).events
    expected = '{"properties":{"startIpAddress":"0.0.0.0","endIpAddress":"255.255.255.255"}}'
    assert as_object["statement"][0] == as_string["statement"][0] == expected
    assert field(as_object, "risk") == field(as_string, "risk") == ["high"]


TIMES = [
    ("2007-01-09T09:41:00", "2007-01-09T09:41:00+00:00"),
    ("2007-01-09T09:41:00.6816663Z", "2007-01-09T09:41:00.681666+00:00"),
    ("2007-01-09T11:41:00+02:00", "2007-01-09T09:41:00+00:00"),
    ("1/9/2007 9:41:00 AM", "2007-01-09T09:41:00+00:00"),
    ("01/09/2007 09:41:00", "2007-01-09T09:41:00+00:00"),
    ("1/9/2007 10:41:00 AM +01:00", "2007-01-09T09:41:00+00:00"),
    ("1/9/2007 12:05:00 AM", "2007-01-09T00:05:00+00:00"),
    ("5/1/2024, 1:02:03.500 PM", "2024-05-01T13:02:03.500000+00:00"),
]


@pytest.mark.parametrize(("raw", "expected"), TIMES)
def test_parse_time(raw, expected):
    got = pl.select(az.parse_time(pl.lit(raw))).item()
    assert got.isoformat() == expected


# --- identities -------------------------------------------------------------------------------

APPID = "11111111-2222-3333-4444-555555555555"
IDENTITIES = [
    # (record, actor, actor_type, person)
    (export(claims={UPN: "eve@corp.com", "appid": APPID}), "eve@corp.com", "iam_user",
     "eve@corp.com"),
    (export(claims={"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name":
                    " fay@corp.com"}), "fay@corp.com", "iam_user", "fay@corp.com"),
    (export(claims={"appid": APPID, "idtyp": "app"}), APPID, "service_account", None),
    (export(claims={"appid": APPID},
            evidence={"principalType": "ServicePrincipal", "principalId": "abc"}),
     APPID, "service_account", None),
    (export(claims={"appid": APPID, "xms_mirid": "/subscriptions/1/.../userAssignedIdentities/m"}),
     APPID, "service_account", None),
    (export(evidence={"principalId": "0123456789abcdef0123456789abcdef"}),
     "0123456789abcdef0123456789abcdef", "service_account", None),
    (rest(caller=APPID), APPID, "service_account", None),
    (rest(caller="Microsoft.Advisor"), "Microsoft.Advisor", "system", None),
    (export("Microsoft.ResourceHealth/healthevent/Activated/action", category="ResourceHealth"),
     None, "system", None),
    (export(), None, "unknown", None),
]


@pytest.mark.parametrize(("record", "actor", "kind", "person"), IDENTITIES)
def test_identity(record, actor, kind, person):
    events = read(ndjson(record)).events
    assert (events["actor"][0], events["actor_type"][0], events["person"][0]) == (
        actor, kind, person)


# --- operations: Start/Accept/Success linked by correlation id -------------------------------

def counted(events: pl.DataFrame) -> pl.DataFrame:
    """The actions views count: records not superseded by their operation's final record."""
    return events.filter(pl.col("category") != "other")


LIFECYCLES = [
    (("Start", "Success"), "success"),
    (("Start", "Failure"), "failure"),
    (("Start", "Accept", "Success"), "success"),
    (("Success", "Start"), "success"),  # delivery order does not matter
    (("Start",), "unknown"),  # still running (or its end is in another file): counted, unknown
]


@pytest.mark.parametrize(("statuses", "outcome"), LIFECYCLES)
def test_operation_counted_once_with_final_outcome(statuses, outcome):
    op = "Microsoft.Sql/servers/delete"
    times = {"Start": "10:00:00", "Accept": "10:00:01", "Success": "10:00:05",
             "Failure": "10:00:05"}
    records = [export(op, result=s, time=f"2024-05-01T{times[s]}Z") for s in statuses]
    parsed = read(ndjson(*records))
    events = parsed.events
    assert events.height == len(statuses)  # every record is an event
    actions = counted(events)
    assert actions.height == 1
    assert actions["outcome"][0] == outcome
    assert actions["category"][0] == "provisioning"
    assert field(actions, "risk") == ["high"]
    final_id = actions["event_id"][0]
    others = events.filter(pl.col("category") == "other")
    assert field(others, "superseded_by") == [final_id] * (len(statuses) - 1)
    assert field(others, "risk") == [None] * others.height  # risk only on the final record


def test_rest_start_success_and_failure_error():
    events = read(json.dumps([
        rest(status="Started", eid="e1", time="2024-05-01T10:00:00Z"),
        rest(status="Failed", eid="e2", time="2024-05-01T10:00:02Z"),
    ])).events
    actions = counted(events)
    assert actions.select("event_id", "outcome", "error").row(0) == ("e2", "failure", "Forbidden")
    assert field(events, "superseded_by") == ["e2", None]


def test_operations_are_linked_only_within_correlation_and_operation():
    records = [
        export("Microsoft.Sql/servers/delete", result="Start", corr="a"),
        export("Microsoft.Sql/servers/databases/delete", result="Success", corr="a"),
        export("Microsoft.Sql/servers/delete", result="Success", corr="b"),
        export("Microsoft.Sql/servers/write", result="Start", corr=None),
        export("Microsoft.Sql/servers/write", result="Success", corr=None),
    ]
    events = read(ndjson(*records)).events
    assert counted(events).height == 5  # nothing shares (correlation id, operation)
    # two terminal records of one operation (a re-delivery) are both kept and counted
    dup = read(ndjson(export(result="Success"), export(result="Success"))).events
    assert counted(dup).height == 2


def test_access_view_counts_an_exported_database_once():
    from auditkit.access import access_table
    from auditkit.enrich import enrich

    op = "Microsoft.Sql/servers/databases/export/action"
    db = f"{SQL_SERVER}/databases/sales"
    records = [export(op, result=r, resource=db, claims={UPN: "gil@corp.com"}) for r in
               ("Start", "Accept", "Success")]
    events = read(ndjson(*records)).events
    access = access_table(enrich(events))
    assert access.select("person", "object", "access", "outcome").rows() == [
        ("gil@corp.com", "sql1/sales", "export", "success")]


# --- catalogue ------------------------------------------------------------------------------

FW = "Microsoft.Sql/servers/firewallRules/write"
PG_CONF = "Microsoft.DBforPostgreSQL/flexibleServers/configurations/write"
PG = f"{SUB}/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"


def fw(start: str, end: str) -> dict:
    return {"properties": {"startIpAddress": start, "endIpAddress": end}}


RISKS = [
    # (operation, resource, body, category, risk)
    (FW, f"{SQL_SERVER}/firewallRules/AllowAll", fw("0.0.0.0", "255.255.255.255"), "network",
     "high"),
    (FW, f"{SQL_SERVER}/firewallRules/AllowAllWindowsAzureIps", fw("0.0.0.0", "0.0.0.0"),
     "network", "high"),
    (FW, f"{SQL_SERVER}/firewallRules/office", fw("203.0.113.1", "203.0.113.9"), "network",
     "medium"),
    (FW, f"{SQL_SERVER}/firewallRules/office", None, "network", "medium"),
    ("Microsoft.Sql/servers/write", SQL_SERVER, {"properties": {"publicNetworkAccess": "Enabled"}},
     "config", "high"),
    ("Microsoft.Sql/servers/write", SQL_SERVER,
     {"properties": {"administratorLoginPassword": "x"}}, "config", "high"),
    ("Microsoft.Sql/servers/write", SQL_SERVER, {"properties": {"minimalTlsVersion": "1.2"}},
     "config", None),
    ("Microsoft.Sql/servers/databases/export/action", f"{SQL_SERVER}/databases/d", None, "export",
     "high"),
    ("Microsoft.Sql/servers/auditingSettings/write", f"{SQL_SERVER}/auditingSettings/default",
     {"properties": {"state": "Disabled"}}, "audit_config", "high"),
    ("Microsoft.Sql/servers/securityAlertPolicies/write", f"{SQL_SERVER}/securityAlertPolicies/d",
     {"properties": {"state": "Disabled"}}, "audit_config", "high"),
    (PG_CONF, f"{PG}/configurations/pgaudit.log", {"properties": {"value": "none"}},
     "config", "high"),
    (PG_CONF, f"{PG}/configurations/shared_preload_libraries", None, "config", "high"),
    (PG_CONF, f"{PG}/configurations/work_mem", {"properties": {"value": "64MB"}}, "config", None),
    ("Microsoft.DBforMySQL/flexibleServers/configurations/write",
     f"{SUB}/providers/Microsoft.DBforMySQL/flexibleServers/my1/configurations/audit_log_enabled",
     {"properties": {"value": "OFF"}}, "config", "high"),
    ("Microsoft.Insights/diagnosticSettings/delete",
     f"{SQL_SERVER}/providers/Microsoft.Insights/diagnosticSettings/toLA", None, "audit_config",
     "high"),
    ("Microsoft.Sql/servers/administrators/write", f"{SQL_SERVER}/administrators/ActiveDirectory",
     None, "permission", "high"),
    ("Microsoft.Authorization/roleAssignments/write",
     f"{SUB}/providers/Microsoft.Authorization/roleAssignments/ra1",
     {"properties": {"roleDefinitionId": "/subscriptions/1111/providers/Microsoft.Authorization/"
                     "roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"}},
     "permission", "high"),
    ("Microsoft.Sql/servers/databases/delete", f"{SQL_SERVER}/databases/d", None, "provisioning",
     "high"),
    ("Microsoft.Sql/servers/databases/backupShortTermRetentionPolicies/write",
     f"{SQL_SERVER}/databases/d/backupShortTermRetentionPolicies/default", None, "backup",
     "medium"),
    ("Microsoft.Sql/servers/databases/transparentDataEncryption/write",
     f"{SQL_SERVER}/databases/d/transparentDataEncryption/current",
     {"properties": {"state": "Disabled"}}, "config", "high"),
    ("Microsoft.Authorization/locks/delete",
     f"{SQL_SERVER}/providers/Microsoft.Authorization/locks/nodelete", None, "config", "high"),
    # not in the catalogue: category from the operation's verb
    ("Microsoft.Web/sites/restart/action", f"{SUB}/providers/Microsoft.Web/sites/w1", None,
     "config", None),
]


@pytest.mark.parametrize(("op", "resource", "body", "category", "risk"), RISKS)
def test_catalogue(op, resource, body, category, risk):
    events = read(ndjson(export(op, resource=resource, body=body))).events
    assert (events["category"][0], field(events, "risk")[0]) == (category, risk)
    if body is not None:  # statement is the request body alone, not the catalogue's match text
        assert events["statement"][0] == json.dumps(body, separators=(",", ":"))


# --- containers, quarantine, robustness -------------------------------------------------------

def test_quarantine_keeps_every_record_with_position_and_reason():
    text = "\n".join([
        json.dumps(export()),
        "not json {",
        json.dumps({"time": "2024-05-01T10:00:00Z", "category": "Administrative"}),
        json.dumps(export(category="NonInteractiveUserSignInLogs", identity="a@b.c")),
        "",
        json.dumps(export(result="Failure")),
    ])
    parsed = read(text)
    assert parsed.records == 5
    assert parsed.events["raw_ref"].to_list() == ["t.json:1", "t.json:6"]
    assert parsed.quarantine.select("line", "reason").rows() == [
        (2, "not a JSON object"),
        (3, "Activity Log record without operationName"),
        (4, "not an Activity Log record (category NonInteractiveUserSignInLogs)"),
    ]


@pytest.mark.parametrize(("records", "is_rest"), [
    ([rest(body={"a": 1}), rest(status="Failed", caller=APPID)], True),
    ([export(claims={UPN: "x@y.z"}, body="{}"), export(result="Start"), LA_ROW], False),
])
def test_slow_path_matches_fast_path(records, is_rest):
    frame = az.split_records(ndjson(*records))[0]
    fast = az.decode_envelope(frame, rest=is_rest)
    slow = az.flatten_json(frame)
    assert fast.select(*az.FIELDS).equals(slow.select(*az.FIELDS))
    assert fast.select(pl.coalesce("operation", "la_operation"))["operation"].null_count() == 0


def test_mixed_shapes_in_one_file():
    events = read(ndjson(rest(eid="r1"), export(claims={UPN: "x@y.z"}), LA_ROW)).events
    assert events["action"].to_list() == [
        "Microsoft.Sql/servers/write", "MICROSOFT.SQL/SERVERS/WRITE",
        "MICROSOFT.SQL/SERVERS/DATABASES/EXPORT/ACTION"]
    assert events["actor"].to_list() == ["ann@corp.com", "x@y.z", "bob@corp.com"]


def test_one_records_wrapper_per_line_and_value_document():
    batch = json.dumps({"records": [export(result="Start"), export(result="Success")]})
    parsed = read(batch + "\n" + batch + "\n")
    assert parsed.records == 4
    assert parsed.events["raw_ref"].to_list() == ["t.json:1", "t.json:2", "t.json:3", "t.json:4"]
    value = read(json.dumps({"value": [rest(), rest(eid="e2", corr="c2")], "nextLink": None}))
    assert value.events["event_id"].to_list() == ["e1", "e2"]
