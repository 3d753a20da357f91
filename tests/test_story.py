"""The demo report surfaces the story planted in sample_logs/ (auditkit.samplegen ground truth)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import auditkit
from auditkit.report import build_report
from auditkit.samplegen import expected_story
from tests.conftest import REPO

SAMPLES = REPO / "sample_logs"
STORY = expected_story()


def _time(value: str | dt.datetime) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    index = build_report([str(SAMPLES)], out)
    return out, index


@pytest.fixture(scope="module")
def loaded():
    result = auditkit.load([SAMPLES])
    return result, auditkit.access_table(result.events)


def test_every_record_is_an_event(loaded):
    result, _ = loaded
    assert result.quarantine.height == 0
    assert int(result.files["records"].sum()) == result.events.height


def test_night_reader_export_is_in_the_report(report):
    out, _ = report
    night = STORY["night_reader"]
    exports = pl.read_csv(out / "exports.csv", try_parse_dates=True)
    # one export statement all week on each server: the COPY here, INTO OUTFILE on reports-db
    assert exports["source"].sort().to_list() == ["mariadb", "pgaudit"]
    row = exports.filter(pl.col("source") == "pgaudit").row(0, named=True)
    assert (row["who"], row["object"], row["rows"], row["src_ip"]) == (
        night["user"], night["object"], night["rows"], night["src_ip"])
    assert abs(row["time"] - _time(night["copy_time"])) < dt.timedelta(milliseconds=1)
    page = (out / "who_accessed_what.html").read_text()
    assert night["src_ip"] in page and "payments.cards" in page


def test_failed_attempts_tell_the_login_burst_and_the_denied_read(report):
    out, _ = report
    failed = pl.read_csv(out / "failed_attempts.csv")
    burst = STORY["failed_logins"]
    logins = failed.filter((pl.col("action") == "LOGIN") & (pl.col("source") == "postgres"))
    assert logins.height == burst["count"]
    assert set(logins["who"]) == {burst["user"]} and set(logins["src_ip"]) == {burst["src_ip"]}
    denied = failed.filter(pl.col("error").str.contains("permission denied for table cards"))
    assert denied.select("who", "object", "src_ip").rows() == [
        ("dave", "payments.cards", STORY["night_reader"]["src_ip"])]
    # the duplicate-key failure is one attempt, not two (its ERROR entry is evidence)
    assert failed.filter(pl.col("error").str.contains("orders_pkey")).height == 1


def test_sensitive_reads_include_the_denied_card_read(report):
    out, _ = report
    reads = pl.read_csv(out / "sensitive_reads.csv")
    denied = reads.filter((pl.col("who") == "dave") & (pl.col("outcome") == "failure"))
    assert set(denied["column"]) == {"card_number", "cvv"}


def test_access_matrix_names_each_person(loaded):
    _, access = loaded
    who = set(access["actor"].drop_nulls())
    assert set(STORY["people"]) <= who


def test_index_links_both_pages(report):
    out, index = report
    html = index.read_text()
    assert "overview.html" in html and "who_accessed_what.html" in html
    assert (out / "manifest.json").exists()


def test_coverage_and_person_pages_tell_the_shared_account_bypass(report):
    from auditkit.samplegen_bytebase import expected_story as gateway_story

    out, index = report
    html = index.read_text()
    assert "coverage_gaps.html" in html and "person_timeline.html" in html
    bypass = gateway_story()["bypass"]
    rows = pl.read_csv(out / "bypasses.csv").filter(pl.col("actor") == bypass["actor"])
    assert rows.select("src_ip", "client_app", "database", "person").rows() == [
        (bypass["src_ip"], "psql", bypass["database"], bypass["likely_person"])]
    # the person page defaults to the likely person of the most severe bypass: his night
    timeline = pl.read_csv(out / "person_timeline.csv")
    shared = timeline.filter(pl.col("identities").str.contains(bypass["actor"]))
    assert shared["statement"].drop_nulls().to_list() == [bypass["statement"]]
    assert bypass["likely_person"] in (out / "person_timeline.html").read_text()
