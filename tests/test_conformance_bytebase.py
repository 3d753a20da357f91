"""Conformance of the bytebase source over the public corpus (``../shared/corpus/bytebase``).

The corpus holds one excerpt of Bytebase's demo metadata-DB dump: 19 ``INSERT INTO
public.audit_log`` rows (store payloads, numeric ``users/{uid}``, ``created_at`` with ``-07``/
``-08`` offsets). Exact counts per file, the methods and identities it holds, and named rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from auditkit.sources import read_file
from tests.conftest import corpus_dir

DUMP = "bytebase_demo_dump_audit_log_excerpt.sql"
# path under the corpus folder, records, events, quarantined
COUNTS = [(DUMP, 19, 19, 0)]
QUERY, LOGIN = "/bytebase.v1.SQLService/Query", "/bytebase.v1.AuthService/Login"
WORKSPACE = "workspaces/6c86d081-379d-4366-be6f-481425e6f397"
# row id, line, time (UTC), action, category, actor, person, database, statement
NAMED = [
    # no user, no response: the email tried
    (124, 1, "2024-07-11T02:50:55", LOGIN, "auth", "demo@example.com", "demo@example.com",
     None, None),
    (115, 2, "2023-11-21T07:45:43", QUERY, "read", "users/101", None, "hr_prod",
     "SELECT * FROM employee;"),
    # no user key; the response names users/101 and its email
    (142, 4, "2025-01-15T14:54:12", LOGIN, "auth", "users/101", "demo@example.com", None, None),
    (103, 7, "2023-11-03T16:44:58", QUERY, "read", "users/104", None, "hr_prod_1",
     "SELECT * FROM salary"),
    (125, 19, "2024-07-11T03:42:09", QUERY, "read", "users/101", None, "hr_prod",
     "SELECT * FROM employee;"),
]


def parsed(relative: str):
    return read_file(corpus_dir("bytebase") / relative, display=relative)


@pytest.mark.parametrize(("relative", "records", "events", "quarantined"), COUNTS,
                         ids=[c[0] for c in COUNTS])
def test_counts(relative: str, records: int, events: int, quarantined: int) -> None:
    name, result = parsed(relative)
    assert name == "bytebase"  # detected by content, not forced
    assert (result.records, result.events.height, result.quarantine.height) == (
        records, events, quarantined)
    frame = result.events
    assert frame.get_column("time").null_count() == 0
    assert set(frame.get_column("layer")) == {"workflow"}
    assert set(frame.get_column("outcome")) == {"success"}  # no status key: OK
    assert frame.get_column("event_id").n_unique() == frame.height


def test_every_corpus_file_is_covered() -> None:
    folder = corpus_dir("bytebase")
    present = {p.name for p in folder.iterdir() if p.suffix != ".md"}
    assert present == {c[0] for c in COUNTS}


def test_methods_and_identities_match_provenance() -> None:
    events = parsed(DUMP)[1].events
    assert dict(events.group_by("action").len().iter_rows()) == {
        LOGIN: 2, QUERY: 17}
    assert dict(events.group_by("actor").len().iter_rows()) == {
        "users/101": 10, "users/104": 8, "demo@example.com": 1}
    assert set(events.get_column("actor_type")) == {"gateway_user"}
    queries = events.filter(pl.col("action") == QUERY)
    assert set(queries.get_column("target")) == {"prod-sample-instance"}
    assert queries.get_column("database").n_unique() == 7  # hr_prod, hr_prod_1 .. hr_prod_6
    assert queries.get_column("person").null_count() == 17  # numeric uids: no email
    # only row 142 carries requestMetadata (ip:port)
    assert events.filter(pl.col("src_ip").is_not_null()).select(
        "event_id", "src_ip", "client_app").rows() == [
        (f"{WORKSPACE}/auditLogs/142", "127.0.0.1", "grpc-go/1.69.2")]


@pytest.mark.parametrize(
    ("row_id", "line", "time", "action", "category", "actor", "person", "database", "statement"),
    NAMED,
)
def test_named_rows(row_id, line, time, action, category, actor, person, database, statement):
    events = parsed(DUMP)[1].events
    row = events.filter(pl.col("raw_ref") == f"{DUMP}:{line}").row(0, named=True)
    assert row["event_id"].endswith(f"/auditLogs/{row_id}")
    assert row["time"] == datetime.fromisoformat(time).replace(tzinfo=UTC)
    assert (row["action"], row["category"], row["actor"], row["person"]) == (
        action, category, actor, person)
    assert (row["database"], row["statement"]) == (database, statement)
    assert json.loads(row["extra"])["row_id"] == row_id


def test_masking_decision_of_row_125_is_kept() -> None:
    events = parsed(DUMP)[1].events
    info = json.loads(events.filter(pl.col("event_id").str.ends_with("/auditLogs/125"))
                      .get_column("extra").item())
    assert info["masked_columns"] == ["first_name", "last_name"]
    assert info["sensitive_columns"] == ["first_name", "last_name"]
    assert info["executed_statement"].startswith("WITH result AS (\nSELECT * FROM employee")
    assert info["latency_ms"] == pytest.approx(8.539708)
    masked = events.filter(pl.col("extra").str.contains('"masked_columns"'))
    assert masked.height == 1
    login = json.loads(events.filter(pl.col("event_id") == f"{WORKSPACE}/auditLogs/142")
                       .get_column("extra").item())
    assert (login["logged_in_user"], login["caller_ip"]) == ("users/101", "127.0.0.1:64249")
    assert login["actor_from"] == "response"


def test_numeric_user_resolved_from_its_sign_in() -> None:
    """Row 142's sign-in says users/101 is demo@example.com: identity resolution gives its
    queries that person (source_account, high); users/104 never signs in and stays unnamed."""
    from auditkit.identity import resolve_identities

    resolution = resolve_identities(parsed(DUMP)[1].events)
    people = resolution.events.group_by("actor").agg(pl.col("person").unique().sort())
    assert dict(people.iter_rows()) == {
        "users/101": ["demo@example.com"], "users/104": [None],
        "demo@example.com": ["demo@example.com"],
    }
