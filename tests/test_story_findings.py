"""The findings over sample_logs/ tell the planted story, with the right reasons, and nothing in
the week's normal activity is high (ground truth: the samplegen ``expected_story()``s)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import auditkit
from auditkit import samplegen, samplegen_cloud, samplegen_mariadb
from auditkit.anomalies import ANOMALY_DETECTORS
from auditkit.findings import find
from tests.conftest import REPO

SAMPLES = REPO / "sample_logs"
PG = samplegen.expected_story()
MARIA = samplegen_mariadb.expected_story()
CLOUD = samplegen_cloud.expected_story()
try:  # the gateway part of the story (sample_logs/bytebase/)
    from auditkit import samplegen_bytebase

    GATEWAY = samplegen_bytebase.expected_story()
except ImportError:
    GATEWAY = None
needs_gateway = pytest.mark.skipif(
    GATEWAY is None or not (SAMPLES / "bytebase").is_dir(), reason="no Bytebase part in the story")


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _hhmm(value: dt.datetime) -> str:
    return f"{_utc(value):%H:%M} UTC"


@pytest.fixture(scope="module")
def findings() -> pl.DataFrame:
    return find(auditkit.load([SAMPLES]).events)


def _one(findings: pl.DataFrame, detector: str, *fragments: str) -> dict:
    """The single finding of ``detector`` whose reason holds every fragment."""
    hits = findings.filter(pl.col("detector") == detector)
    for fragment in fragments:
        hits = hits.filter(pl.col("reason").str.contains(fragment, literal=True))
    assert hits.height == 1, (detector, fragments, findings.filter(
        pl.col("detector") == detector)["reason"].to_list())
    return hits.row(0, named=True)


def test_password_guessing_on_carol_then_success(findings):
    burst = PG["failed_logins"]
    row = _one(findings, "failed_logins", f"{burst['count']} failed logins for carol",
               f"from {burst['src_ip']}", "then a successful login as carol from the same address",
               _hhmm(burst["success_time"]))
    assert row["severity"] == "high" and len(row["event_ids"]) == burst["count"] + 1


def test_carol_reads_ssn_for_the_first_time_from_the_guessing_address(findings):
    burst = PG["failed_logins"]
    row = _one(findings, "first_seen", "carol read public.customers.", "ssn",
               "for the first time", _hhmm(burst["followup_read_time"]),
               f"from {burst['src_ip']}, an address never seen for carol")
    assert row["severity"] == "high"
    assert _one(findings, "off_hours", "carol was active at 03:41")["severity"] == "high"


def test_the_night_reader_exports_cards_from_a_new_address(findings):
    night = PG["night_reader"]
    row = _one(findings, "exports", f"dave exported 48,210 rows of {night['object']}",
               _hhmm(night["copy_time"]), "with COPY TO STDOUT",
               f"from {night['src_ip']}, an address never seen for dave", "card_number")
    assert row["severity"] == "high" and row["src_ip"] == night["src_ip"]
    assert _one(findings, "first_seen", "dave exported payments.cards.card_number",
                "48,210 rows")["severity"] == "high"
    new = _one(findings, "new_source", f"dave connected from {night['src_ip']}",
               f"before: {night['usual_src_ip']}")
    assert new["severity"] == "medium"
    assert _one(findings, "off_hours", "dave was active at 02:13")["severity"] == "high"


def test_the_card_grant_that_made_it_possible(findings):
    grant = PG["card_grant"]
    row = _one(findings, "privilege", "carol granted access to sensitive columns (card_number) "
               "of payments.cards", _hhmm(grant["time"]))
    assert row["severity"] == "high"


def test_bobs_attempt_to_switch_pgaudit_off(findings):
    tamper = PG["audit_tampering"]
    row = _one(findings, "audit_tampering", "bob tried to switch auditing off",
               tamper["statement"].rstrip(";"), _hhmm(tamper["time"]), "was refused",
               f"from {tamper['src_ip']}")
    assert row["severity"] == "high"


def test_mariadb_file_privilege_and_outfile_export(findings):
    grant = MARIA["grant_file"]
    row = _one(findings, "privilege", "carol granted administrative or server-wide privileges",
               grant["statement"], _hhmm(grant["time"]))
    assert row["severity"] == "high"
    export = MARIA["night_export"]
    row = _one(findings, "exports", f"dave exported {export['object']}",
               "SELECT INTO OUTFILE '/tmp/ce.csv'", f"from {export['src_ip']}")
    assert row["severity"] == "high"


def test_cloudtrail_night_actions(findings):
    night = CLOUD["night"]
    risky = findings.filter(pl.col("detector") == "cloud_risk")
    assert risky.height == 3 and set(risky["severity"]) == {"high"}
    assert set(risky["person"]) == {night["person"]}
    _one(findings, "cloud_risk", "ModifyDBParameterGroup on db1-shop-params",
         "auditing may be disabled")
    _one(findings, "cloud_risk", "ModifyDBSnapshotAttribute on db1-shop-manual-1106",
         "shared with another account")
    _one(findings, "cloud_risk", "tried StopLogging on management-events",
         "was refused (AccessDenied)")


@needs_gateway
def test_the_shared_account_read_from_the_night_readers_address(findings):
    bypass = GATEWAY["bypass"]
    row = _one(findings, "exports", f"{bypass['actor']} read 48,210 rows of {bypass['object']}",
               _hhmm(bypass["statement_time"]),
               f"from {bypass['src_ip']}, an address never seen for {bypass['actor']}")
    assert row["severity"] == "high"
    row = _one(findings, "new_source", f"{bypass['actor']} connected from {bypass['src_ip']}",
               "before: 10.0.1.5, 10.0.1.6")
    assert row["severity"] == "medium"
    volume = _one(findings, "volume", "app_user's statements returned or changed")
    assert abs(volume["time"] - _utc(bypass["statement_time"])) < dt.timedelta(seconds=1)


def test_approved_migration_and_duplicate_insert_raise_nothing(findings):
    assert findings.filter(pl.col("detector") == "schema_change").is_empty()
    insert = PG["failed_after_audit"]
    near = findings.filter(
        pl.col("time").is_between(_utc(insert["original_insert_time"]) - dt.timedelta(minutes=1),
                                  _utc(insert["error_time"]) + dt.timedelta(minutes=1)))
    assert near.is_empty(), near["reason"].to_list()


def test_normal_activity_raises_no_high_finding(findings):
    # every high finding is one of the planted moments (who, time)
    planted = [
        ("carol", _utc(PG["failed_logins"]["first"]), _utc(PG["failed_logins"]["last"])
         + dt.timedelta(minutes=10)),
        ("carol", _utc(PG["card_grant"]["time"]), _utc(PG["card_grant"]["time"])),
        ("carol", _utc(MARIA["grant_file"]["time"]), _utc(MARIA["grant_file"]["time"])),
        ("bob", _utc(PG["audit_tampering"]["time"]), _utc(PG["audit_tampering"]["time"])),
        ("dave", _utc(PG["night_reader"]["connect_time"]), _utc(MARIA["night_export"]["time"])),
        (CLOUD["night"]["person"], _utc(CLOUD["night"]["session_start"]),
         _utc(CLOUD["night"]["session_start"]) + dt.timedelta(minutes=15)),
    ]
    if GATEWAY is not None:
        bypass = GATEWAY["bypass"]
        # dave's gateway query at 02:40 reaches db1 as the gateway's role, then the bypass
        planted += [
            (who, _utc(bypass["evidence"]["login_time"]), _utc(bypass["evidence"]["query_time"]))
            for who in (GATEWAY["gateway_role"], bypass["likely_person"])
        ] + [
            (bypass["actor"], _utc(bypass["connect_time"]), _utc(bypass["statement_time"])),
        ]
    # (the coverage detectors have their own story tests)
    high = findings.filter(
        (pl.col("severity") == "high") & pl.col("detector").is_in(ANOMALY_DETECTORS)
    ).with_columns(
        who=pl.coalesce("person", "actor"))
    slack = dt.timedelta(seconds=1)
    unexplained = [
        row for row in high.iter_rows(named=True)
        if not any(row["who"] == who and start - slack <= row["time"] <= end + slack
                   for who, start, end in planted)
    ]
    assert not unexplained, [row["reason"] for row in unexplained]
    assert high.height >= 10


def test_the_night_is_one_incident_across_identities(findings):
    """dave's night, as dave, as dave@example.com (cloud, gateway) and as app_user from the
    same address, is one high incident; carol's password guessing is another."""
    from auditkit.findings import incidents

    grouped = incidents(findings)
    night = grouped.filter(pl.col("addresses").list.contains(PG["night_reader"]["src_ip"]))
    assert night.height == 1
    row = night.row(0, named=True)
    assert row["severity"] == "high"
    assert {"dave", "dave@example.com", "app_user"} <= set(row["who"])
    assert {"exports", "gateway_bypass", "cloud_risk"} <= set(row["detectors"])
    guessing = grouped.filter(pl.col("detectors").list.contains("failed_logins"))
    assert guessing.height == 1 and guessing["who"].to_list() == [["carol"]]
    assert grouped.height < findings.height / 2
