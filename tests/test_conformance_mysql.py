"""Conformance over the public corpus: ../shared/corpus/{mysql_enterprise,percona}/ (see their
PROVENANCE.md). Every file is parsed; every record is an event or a quarantined row; counts are
exact. Skips cleanly when the corpus folder is absent (a user's clone).
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.errors import UnknownFormatError
from auditkit.sources import mysql_enterprise as _mysql_enterprise  # noqa: F401 (registers)
from auditkit.sources import percona as _percona  # noqa: F401 (registers)
from auditkit.sources import read_file
from tests.conftest import corpus_dir

# (folder, file) -> (format detected, records, events, quarantined)
EXPECTED = {
    ("mysql_enterprise", "beats_mysqlenterprise_audit_test.log"): ("mysql_enterprise", 31, 31, 0),
    ("mysql_enterprise", "ibm_uc_mysql_audit_json.log"): ("mysql_enterprise", 6, 6, 0),
    ("percona", "canonical_charmed_mysql_k8s_docs_audit_json_excerpt.log"): ("percona", 10, 10, 0),
    ("percona", "github_issue_excerpts/percona_server_pr_649_csv_format_excerpt_placeholders.csv"):
        ("percona", 4, 4, 0),
    # audit_log_filter writes MySQL Enterprise's formats: the content cannot tell them apart
    ("percona", "psmysql_docs_audit_log_filter_json_example_01.txt"): ("mysql_enterprise", 7, 7, 0),
    ("percona", "psmysql_docs_audit_log_filter_newxml_example_01.txt"):
        ("mysql_enterprise", 6, 6, 0),
    ("percona", "psmysql_docs_audit_log_filter_oldxml_example_01.txt"):
        ("mysql_enterprise", 7, 7, 0),
    ("percona", "psmysql_docs_audit_log_plugin_example_01.txt"): ("percona", 1, 1, 0),
    # the doc's NEW-XML example lacks </AUDIT_RECORD>: a truncated record
    ("percona", "psmysql_docs_audit_log_plugin_example_02.txt"): ("percona", 1, 0, 1),
    ("percona", "psmysql_docs_audit_log_plugin_example_03.txt"): ("percona", 1, 1, 0),
    ("percona", "psmysql_docs_audit_log_plugin_example_04.txt"): ("percona", 1, 1, 0),
    ("percona", "psmysql_docs_audit_log_plugin_example_05.txt"): ("percona", 1, 1, 0),
    ("percona", "psmysql_docs_audit_log_plugin_example_06.txt"): ("percona", 1, 1, 0),
    ("percona", "psmysql_docs_audit_log_plugin_example_07.txt"): ("percona", 1, 1, 0),
    # the doc annotates attributes with ";; ..." comments: not XML, quarantined as malformed
    ("percona", "psmysql_docs_audit_log_plugin_example_08.txt"): ("percona", 1, 0, 1),
    ("percona", "psmysql_docs_audit_log_plugin_example_09.txt"): ("percona", 1, 1, 0),
}
# Logstash DEBUG lines of a Guardium filter that embed a syslog message unescaped inside their
# own JSON-ish text (the same record three times): a debugging trace of another tool, not an
# audit log. Ingesting it would invent three events from one.
NOT_AUDIT_LOGS = {("percona", "ibm_uc_percona_syslog_json_wrapped_in_logstash_debug.log")}


def _parse(folder: str, name: str, **options):
    return read_file(corpus_dir(folder) / name, **options)


def _row(parsed, line: int) -> dict:
    return parsed.events.filter(pl.col("raw_ref").str.ends_with(f":{line}")).row(0, named=True)


@pytest.mark.parametrize(("key", "expected"), sorted(EXPECTED.items()), ids=lambda v: str(v))
def test_counts(key, expected):
    name, parsed = _parse(*key)
    assert (name, parsed.records, parsed.events.height, parsed.quarantine.height) == expected
    assert parsed.events.height + parsed.quarantine.height == parsed.records
    assert parsed.events["event_id"].is_unique().all()
    assert parsed.events["time"].null_count() == (4 if key[1].endswith("placeholders.csv") else 0)
    assert set(parsed.events["source"]) <= {name}


@pytest.mark.parametrize("key", sorted(NOT_AUDIT_LOGS))
def test_not_audit_logs_are_not_recognised(key):
    with pytest.raises(UnknownFormatError):
        _parse(*key)


@pytest.mark.parametrize("folder", ["mysql_enterprise", "percona"])
def test_every_corpus_file_is_covered(folder):
    root = corpus_dir(folder)
    files = {
        (folder, str(p.relative_to(root)))
        for p in root.rglob("*")
        if p.is_file() and p.name != "PROVENANCE.md"
    }
    assert files == {k for k in EXPECTED | dict.fromkeys(NOT_AUDIT_LOGS) if k[0] == folder}


def test_beats_sample_rows():
    _, parsed = _parse("mysql_enterprise", "beats_mysqlenterprise_audit_test.log")
    startup = _row(parsed, 1)
    assert (startup["category"], startup["action"], startup["actor_type"]) == (
        "audit_config", "AUDIT START", "system")
    assert json.loads(startup["extra"])["mysql_version"] == "8.0.22-commercial"
    grant = _row(parsed, 10)
    assert (grant["outcome"], grant["error"], grant["actor"], grant["session_id"]) == (
        "failure", "1410", "root", "1:15")
    assert grant["statement"] == "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%'"
    typographic = _row(parsed, 13)
    assert "‘audit_test_user2’@’hades.home’" in typographic["statement"]
    init_db = _row(parsed, 21)
    assert (init_db["category"], init_db["action"], init_db["statement"]) == ("other", "USE", None)
    insert = _row(parsed, 25)
    assert (insert["category"], insert["action"], insert["object"], insert["object_type"],
            insert["outcome"], insert["src_ip"]) == (
        "write", "INSERT", "audit_test.audit_test_table", "table", "success", "192.168.2.5")
    assert json.loads(insert["extra"])["stmt_group"] == json.loads(_row(parsed, 26)["extra"])[
        "stmt_group"]
    shutdown = _row(parsed, 31)
    assert (shutdown["action"], shutdown["time"].isoformat()) == (
        "AUDIT STOP", "2020-10-19T19:32:16+00:00")


def test_ibm_mysql_sample_rows():
    _, parsed = _parse("mysql_enterprise", "ibm_uc_mysql_audit_json.log")
    failed_login = _row(parsed, 2)
    assert (failed_login["category"], failed_login["action"], failed_login["outcome"],
            failed_login["error"], failed_login["actor"]) == (
        "auth", "LOGIN", "failure", "1045", "guardium_qa")
    read = _row(parsed, 5)
    assert read["statement"] == ("/* ApplicationName=DBeaver 7.1.4 - SQLEditor <Script.sql> */ "
                                 "select * from pet\nLIMIT 0, 200")
    assert (read["object"], read["database"], read["client_app"]) == ("guardium_qa.pet",
                                                                      "guardium_qa", None)
    assert _row(parsed, 1)["client_app"] == "MySQL Connector/J"


def test_percona_charmed_sample_rows():
    _, parsed = _parse("percona", "canonical_charmed_mysql_k8s_docs_audit_json_excerpt.log")
    failed = _row(parsed, 1)
    assert (failed["action"], failed["outcome"], failed["error"], failed["actor"],
            failed["src_ip"], failed["time"].isoformat()) == (
        "LOGIN", "failure", "1156", None, "10.207.85.214", "2024-09-03T01:53:14+00:00")
    quit_ = _row(parsed, 3)
    assert (quit_["action"], quit_["outcome"], quit_["actor"], quit_["session_id"]) == (
        "LOGOUT", "success", "serverconfig", "989")


def test_percona_csv_placeholders_and_layouts():
    _, parsed = _parse(
        "percona", "github_issue_excerpts/percona_server_pr_649_csv_format_excerpt_placeholders.csv"
    )
    assert parsed.notes == ["4 records with an unreadable time"]
    quit_ = _row(parsed, 2)
    assert (quit_["action"], quit_["actor"], quit_["database"]) == ("LOGOUT", "root", "test")
    assert _row(parsed, 4)["statement"] == "use  `db1`"


@pytest.mark.parametrize(
    "name",
    ["psmysql_docs_audit_log_filter_json_example_01.txt",
     "psmysql_docs_audit_log_filter_newxml_example_01.txt",
     "psmysql_docs_audit_log_filter_oldxml_example_01.txt"],
)
def test_audit_log_filter_files_read_as_percona_when_forced(name):
    _, detected = _parse("percona", name)
    fmt, forced = _parse("percona", name, format="percona")
    assert fmt == "percona" and set(forced.events["source"]) == {"percona"}
    assert forced.events.drop("source").equals(detected.events.drop("source"))
