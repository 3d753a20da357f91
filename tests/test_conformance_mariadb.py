"""Conformance over the public corpus: ../shared/corpus/mariadb/ (see its PROVENANCE.md).

Every file is parsed; every record is an event or a quarantined row; counts are exact.
Skips cleanly when the corpus folder is absent (a user's clone).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

import auditkit.sources.mariadb  # noqa: F401  (importing registers the source)
from auditkit.access import access_table
from auditkit.enrich import enrich
from auditkit.sources import read_file
from tests.conftest import corpus_dir

# file -> (detected format, records, events, quarantined); None: detection declines the file
# (MTR results hold placeholders, TIME/HOSTNAME/ID, instead of times and ids: read with
# format="mariadb", their times are null)
EXPECTED = {
    # last line deliberately malformed: no object field
    "ibm_uc_aurora_mysql_audit_lines_extracted.log": ("mariadb", 4, 3, 1),
    "ibm_uc_mariadb_server_audit_sample.log": ("mariadb", 36, 36, 0),
    # one exact duplicate line: two events (the log says it twice)
    "ibm_uc_rds_mariadb_server_audit_sample.log": ("mariadb", 13, 13, 0),
    "mariadb_mtr_server_audit_port.result.AUDITLOG_EXCERPT.log": (None, 46, 46, 0),
    # 41 lines of SQL transcript before the 19 audit lines
    "mariadb_mtr_server_audit_timestamp.result": (None, 60, 19, 41),
}


def _parse(name: str, **options):
    return read_file(corpus_dir("mariadb") / name, **options)


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_counts(name, expected):
    detected, records, events, quarantined = expected
    if detected is None:
        with pytest.raises(Exception, match="format not recognised"):
            _parse(name)
    fmt, parsed = _parse(name, format="mariadb")
    assert detected is None or _parse(name)[0] == detected
    got = (parsed.records, parsed.events.height, parsed.quarantine.height)
    assert got == (records, events, quarantined)
    assert parsed.events.height + parsed.quarantine.height == parsed.records
    assert parsed.events["event_id"].is_unique().all()
    assert set(parsed.events["source"]) <= {"mariadb"}


def test_every_corpus_file_is_covered():
    folder = corpus_dir("mariadb")
    files = {p.name for p in folder.iterdir() if p.is_file() and p.name != "PROVENANCE.md"}
    assert files == set(EXPECTED)


def _row(name: str, line: int, **options) -> dict:
    events = _parse(name, format="mariadb", **options)[1].events
    row = events.filter(pl.col("raw_ref").str.ends_with(f":{line}")).row(0, named=True)
    return row | {"extra": json.loads(row["extra"])}


def test_named_rows_ibm_mariadb():
    name = "ibm_uc_mariadb_server_audit_sample.log"
    insert = _row(name, 13)
    assert insert["statement"] == (
        "insert into connector_details (connectorname,version,releaseddata,releasedpersonname) "
        "values ('Redis',1,CURRENT_DATE(),'Brijesh')"
    )
    assert (insert["outcome"], insert["database"], insert["statement_id"]) == (
        "success", "MariaDB", "49")
    assert insert["session_id"] == "ip-172-31-44-208.ap-south-1.compute.internal/21"
    assert insert["target"] == "ip-172-31-44-208.ap-south-1.compute.internal"
    assert insert["time"] == datetime(2022, 1, 21, 11, 16, 2, tzinfo=UTC)
    assert insert["extra"]["tz_assumed"] is True
    write = _row(name, 12)
    assert (write["category"], write["object"], write["object_type"], write["outcome"]) == (
        "write", "MariaDB.connector_details", "table", "success")
    assert write["extra"]["stmt_group"] == insert["extra"]["stmt_group"]
    failed = _row(name, 14)
    assert (failed["outcome"], failed["error"]) == ("failure", "1146")
    proc = _row(name, 18)
    assert proc["statement"].startswith("Create Procedure GetOrdersbyCustomerName (IN name")
    assert "\nBegin \nselect" in proc["statement"]
    assert _row(name, 20)["extra"]["internal"] is True  # WRITE mysql.proc
    # local times without zone follow the --tz assumption
    shifted = _row(name, 13, tz="Asia/Kolkata")
    assert shifted["time"] == datetime(2022, 1, 21, 5, 46, 2, tzinfo=UTC)


def test_named_rows_rds_and_aurora():
    rds = _row("ibm_uc_rds_mariadb_server_audit_sample.log", 2)
    assert rds["src_ip"] == "136.185.152.250"
    assert "(001, 'Monika', 'Arora', 100000, '14-02-20 09.00.00', 'HR'),\n\t\t(002" in (
        rds["statement"])
    aurora = _row("ibm_uc_aurora_mysql_audit_lines_extracted.log", 3)
    assert aurora["time"] == datetime(2023, 3, 23, 10, 56, 40, 492494, tzinfo=UTC)
    assert aurora["src_ip"] == "2600:1y16:6b0:1001:f292:6f25:a643:6588"
    assert "tz_assumed" not in aurora["extra"]
    quarantine = _parse("ibm_uc_aurora_mysql_audit_lines_extracted.log")[1].quarantine
    assert quarantine.select("line", "reason").rows() == [
        (4, "query field is not a quoted string followed by a retcode")]


def test_named_rows_mtr_port():
    name = "mariadb_mtr_server_audit_port.result.AUDITLOG_EXCERPT.log"
    failed = _row(name, 8)
    assert (failed["category"], failed["action"], failed["outcome"], failed["actor"]) == (
        "auth", "LOGIN", "failure", "no_such_user")
    assert (failed["src_ip"], failed["extra"]["client_port"]) == ("localhost", "unavailable")
    rename = _row(name, 32)
    assert (rename["action"], rename["object"], rename["extra"]["renamed_to"]) == (
        "RENAME", "test.t1", "test.renamed_t1")
    assert _row(name, 38)["statement"] == "select 1,\n2,\n# comment\n3"
    assert _row(name, 2)["statement"] == (
        "set global server_audit_incl_users= repeat(\"'root',\", 10000)")


def test_access_table_over_the_ibm_sample():
    events = enrich(_parse("ibm_uc_mariadb_server_audit_sample.log")[1].events)
    access = access_table(events)
    reads = access.filter(pl.col("access") == "read", pl.col("outcome") == "success")
    # two executions of the procedure's SELECT: each table once per statement
    # (one row per column the statement names: count statements, not rows)
    statements = reads.group_by("object").agg(pl.col("event_id").n_unique()).sort("object")
    assert statements.rows() == [
        ("MariaDB.connector_details", 1), ("testDB.Customers", 2), ("testDB.Orders", 2)]
    assert not access["object"].str.starts_with("mysql.").any()
