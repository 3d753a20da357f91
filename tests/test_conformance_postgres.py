"""Conformance over the public corpus: ../shared/corpus/{pgaudit,postgres}/ (see PROVENANCE.md).

Every file is parsed; every record is an event or a quarantined row; counts are exact.
Skips cleanly when the corpus folder is absent (a user's clone).
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.errors import UnknownFormatError
from auditkit.sources import read_file
from tests.conftest import corpus_dir

# file -> (format, records, events, quarantined, pgaudit events)
EXPECTED = {
    ("pgaudit", "pgaudit_regress_expected.out"): ("pgaudit", 2090, 421, 1669, 415),
    ("pgaudit", "github_issue_excerpts/pgaudit_issue_111_csvlog_line.csv"): (
        "pgaudit", 1, 1, 0, 1),
    ("pgaudit", "github_issue_excerpts/pgaudit_issue_180_semicolon_prefix.log"): (
        "pgaudit", 3, 3, 0, 3),
    # line 2 is pgauditlogtofile's own CSV layout, not a server log entry: quarantined
    ("pgaudit", "github_issue_excerpts/pgauditlogtofile_issue_37_stderr_and_logtofile.log"): (
        "pgaudit", 2, 1, 1, 1),
    ("pgaudit", "github_issue_excerpts/pgbadger_issue_705_multiline_tab_continuation.log"): (
        "pgaudit", 1, 1, 0, 1),
    # 7 records in syslog/JSON envelopes (2 cut by the shipper); the "IBM Cloud Logs" title line
    ("pgaudit", "ibm_cloud_databases_postgresql_pgaudit_syslog.txt"): ("pgaudit", 8, 7, 1, 7),
    ("pgaudit", "ibm_uc_azure_postgresql_pgaudit_eventhub_records_extracted.jsonl"): (
        "pgaudit", 4, 4, 0, 4),
    ("pgaudit", "ibm_uc_rds_postgres_pgaudit_verbose_lines_extracted.log"): (
        "pgaudit", 1, 1, 0, 1),
    # a Cloud SQL PgAuditEntry in a Cloud Audit Log entry: the gcp_audit source, pgaudit events
    ("pgaudit", "gcp_cloudsql_pgaudit_data_access_entry.json"): ("gcp_audit", 1, 1, 0, 1),
    ("postgres", "beats_postgresql-11-connection-disconnection.csv.log"): (
        "postgres", 20, 20, 0, 0),
    ("postgres", "beats_postgresql-11-multi-line.csv.log"): ("postgres", 1, 1, 0, 0),
    ("postgres", "beats_postgresql-13-log-statement-all.EXCERPT.log"): ("postgres", 28, 28, 0, 0),
    ("postgres", "integrations_test-postgresql-14-csv.log"): ("postgres", 12, 12, 0, 0),
    ("postgres", "integrations_test-postgresql-aws.log"): ("postgres", 3, 3, 0, 0),
    ("postgres", "integrations_test-postgresql-timezones.log"): ("postgres", 9, 9, 0, 0),
}
# A Logstash rubydebug dump of Cloud SQL entries: not a log format anyone stores; unsupported.
NOT_POSTGRES_LOGS = {
    ("postgres", "gcp_cloudsql_postgres_logs_rubydebug.txt"),
}


def _parse(source: str, name: str, **options):
    return read_file(corpus_dir(source) / name, **options)


@pytest.mark.parametrize(("key", "expected"), sorted(EXPECTED.items()), ids=lambda v: str(v))
def test_counts(key, expected):
    fmt, records, events, quarantined, audit = expected
    name, parsed = _parse(*key)
    got = (name, parsed.records, parsed.events.height, parsed.quarantine.height,
           parsed.events.filter(pl.col("source") == "pgaudit").height)
    assert got == expected
    # nothing lost: every record is an event or a quarantined row
    assert parsed.events.height + parsed.quarantine.height == parsed.records
    assert parsed.events["event_id"].is_unique().all()


@pytest.mark.parametrize("source", ["pgaudit", "postgres"])
def test_every_corpus_file_is_covered(source):
    folder = corpus_dir(source)
    files = {
        (source, str(p.relative_to(folder)))
        for p in folder.rglob("*")
        if p.is_file() and p.name != "PROVENANCE.md"
    }
    assert files == {k for k in EXPECTED if k[0] == source} | {
        k for k in NOT_POSTGRES_LOGS if k[0] == source
    }


@pytest.mark.parametrize("key", sorted(NOT_POSTGRES_LOGS))
def test_cloud_sql_exports_are_not_mistaken_for_server_logs(key):
    with pytest.raises(UnknownFormatError, match="not recognised"):
        _parse(*key)


def test_regress_output_records():
    events = _parse("pgaudit", "pgaudit_regress_expected.out")[1].events
    audit = events.filter(pl.col("source") == "pgaudit")
    kinds = dict(audit.group_by(pl.col("extra").str.json_path_match("$.audit_type")).len()
                 .iter_rows())
    assert kinds == {"SESSION": 373, "OBJECT": 42}  # grep -c "AUDIT: OBJECT" agrees
    redacted = audit.filter(pl.col("statement").str.contains("<REDACTED>", literal=True))
    assert redacted.height == 6  # grep -c REDACTED agrees
    assert audit.filter(pl.col("statement") == "<previously logged>").height > 0
    assert audit["rows"].drop_nulls().len() > 0  # log_rows records have a 10th field
    failed = audit.filter(pl.col("outcome") == "failure")
    assert failed["action"].to_list() == ["DO", "DO"]  # CREATE TABLE bogus.x inside DO fails


def test_semicolon_prefix_given_explicitly():
    events = _parse(
        "pgaudit", "github_issue_excerpts/pgaudit_issue_180_semicolon_prefix.log",
        pg_prefix="%m; %p; %u; %d; %h; ",
    )[1].events
    assert events["actor"].to_list() == ["test_user"] * 3
    assert events["statement_id"].to_list() == ["8.1", "9.1", "10.1"]
    assert events["src_ip"].unique().to_list() == ["10.1.76.24"]
    assert str(events["time"][0]) == "2022-04-05 11:31:38.586000+00:00"  # CEST = UTC+2


def test_csvlog_issue_111_numeric_zone_and_doubled_quotes():
    parsed = _parse("pgaudit", "github_issue_excerpts/pgaudit_issue_111_csvlog_line.csv")[1]
    row = parsed.events.row(0, named=True)
    assert row["statement"] == "select session_user, current_user;"
    assert row["actor"] == "test.user" and row["database"] == "test"
    assert str(row["time"]) == "2020-08-06 03:49:08.494000+00:00"  # +03
    assert row["session_id"] == "5f2b7d84.197f2" and row["client_app"] == "psql"


def test_tab_continuation_is_stripped():
    row = _parse(
        "pgaudit", "github_issue_excerpts/pgbadger_issue_705_multiline_tab_continuation.log"
    )[1].events.row(0, named=True)
    assert row["statement"] == "select *\n    from account;"
    assert str(row["time"]) == "2022-04-18 08:58:29.510000+00:00"  # +0430


def test_rds_verbose_record():
    row = _parse("pgaudit", "ibm_uc_rds_postgres_pgaudit_verbose_lines_extracted.log")[
        1].events.row(0, named=True)
    assert (row["actor"], row["database"], row["src_ip"], row["action"]) == (
        "postgres", "testDB", "183.87.237.49", "DELETE")
    assert row["statement"] == "DELETE FROM employee WHERE emp_id  = 101"


def test_ibm_envelopes_and_truncated_records():
    events = _parse("pgaudit", "ibm_cloud_databases_postgresql_pgaudit_syslog.txt")[1].events
    truncated = events.filter(pl.col("extra").str.json_path_match("$.truncated") == "true")
    assert truncated.height == 2
    assert events["actor"].unique().to_list() == ["admin"]
    assert "DBeaver 23.3.1 - SQLEditor <Script-49.sql>" in events["client_app"].to_list()


def test_azure_flexible_and_single_server():
    events = _parse(
        "pgaudit", "ibm_uc_azure_postgresql_pgaudit_eventhub_records_extracted.jsonl"
    )[1].events
    assert events["action"].to_list() == ["DELETE", "INSERT", "SELECT", "UPDATE"]
    assert events["client_app"][0] == "DBeaver 23.3.5 - SQLEditor <Script.sql>"
    single = events.row(1, named=True)
    assert (single["actor"], single["src_ip"], single["client_app"]) == (
        "postgres", "183.87.60.14", "psql")
    assert json.loads(single["extra"])["unquoted_statement"] is True


def test_connection_lifecycle_csvlog():
    events = _parse("postgres", "beats_postgresql-11-connection-disconnection.csv.log")[1].events
    failed = events.filter((pl.col("category") == "auth") & (pl.col("outcome") == "failure"))
    assert failed.height == 4 and failed["actor"].unique().to_list() == ["azlev"]
    assert failed["error"].str.starts_with("28P01").all()
    logout = events.filter(pl.col("action") == "LOGOUT").row(0, named=True)
    assert json.loads(logout["extra"])["session_seconds"] == pytest.approx(45.407)
    login = events.filter(pl.col("action") == "LOGIN", pl.col("outcome") == "success")
    assert login.select("actor", "database", "src_ip").rows() == [
        ("postgres", "postgres", "172.24.0.1")]


def test_log_statement_excerpt():
    events = _parse("postgres", "beats_postgresql-13-log-statement-all.EXCERPT.log")[1].events
    statements = events.filter(pl.col("statement").is_not_null())
    assert statements.height == 14
    assert "E'\\n') AS \"Access privileges\"\nFROM" in statements["statement"][0]


def test_timezone_abbreviations():
    events = _parse("postgres", "integrations_test-postgresql-timezones.log")[1].events
    assert events["time"].null_count() == 0
    first = events.row(0, named=True)
    assert str(first["time"]) == "2025-04-03 20:32:14.322000+00:00"  # CEST
    error = events.filter(pl.col("error").str.contains("operator does not exist")).row(
        0, named=True)
    assert error["statement"] == "SELECT id, user FROM users WHERE NOT user @> %s"
    assert json.loads(error["extra"])["hint"].startswith("No operator matches")
