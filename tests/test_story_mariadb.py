"""The MariaDB reports-db part of sample_logs/ (auditkit.samplegen_mariadb ground truth)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import auditkit
from auditkit import samplegen_mariadb
from auditkit.sources import read_file
from tests.conftest import REPO

SAMPLES = REPO / "sample_logs"
LOG = SAMPLES / samplegen_mariadb.expected_story()["file"]
STORY = samplegen_mariadb.expected_story()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def loaded() -> tuple[pl.DataFrame, pl.DataFrame]:
    result = auditkit.load([SAMPLES])
    events = result.events.filter(pl.col("source") == "mariadb")
    access = auditkit.access_table(result.events).filter(pl.col("source") == "mariadb")
    return events, access


def test_file_is_what_the_generator_writes() -> None:
    records = samplegen_mariadb.scenario()
    assert LOG.read_bytes() == samplegen_mariadb.render(records).encode("utf-8")


def test_every_record_is_an_event() -> None:
    fmt, parsed = read_file(LOG)
    assert fmt == "mariadb"
    assert parsed.quarantine.height == 0
    assert parsed.records == parsed.events.height == len(samplegen_mariadb.scenario())


def test_night_export_of_customer_export(loaded) -> None:
    events, access = loaded
    night = STORY["night_export"]
    rows = access.filter(
        (pl.col("actor") == night["user"]) & (pl.col("object") == night["object"])
    )
    # SELECT ... INTO OUTFILE is an export; the COUNT(*) before it is a plain read
    assert set(rows["access"]) == {"read", "export"}
    exported = rows.filter(pl.col("access") == "export")
    assert exported["time"].to_list() == [_utc(night["read_time"])]  # the statement's first event
    query = events.filter(pl.col("statement") == night["statement"])
    assert query.select("actor", "src_ip", "outcome", "category").rows() == [
        (night["user"], night["src_ip"], "success", "export")
    ]
    assert query["time"][0] == _utc(night["time"])
    # dave never used this address before: every event from it is in the night session or root's
    from_night = events.filter(pl.col("src_ip") == night["src_ip"])
    assert set(from_night["actor"]) == {"dave", "root"}
    assert from_night["time"].min() == _utc(STORY["failed_root_login"]["time"])


def test_failed_root_login_just_before(loaded) -> None:
    events, _ = loaded
    fail = STORY["failed_root_login"]
    failed = events.filter(pl.col("outcome") == "failure")
    assert failed.select("actor", "src_ip", "action", "error", "time").rows() == [
        (fail["user"], fail["src_ip"], "LOGIN", fail["error"], _utc(fail["time"]))
    ]
    assert fail["time"] < STORY["night_export"]["connect_time"]


def test_carol_grants_file_to_dave(loaded) -> None:
    events, access = loaded
    grant = STORY["grant_file"]
    stmt = events.filter(pl.col("statement") == grant["statement"])
    assert stmt.select("actor", "src_ip", "category", "action", "outcome").rows() == [
        (grant["user"], grant["src_ip"], "permission", "GRANT", "success")
    ]
    assert stmt["time"][0] == _utc(grant["time"])
    # GRANT ... ON *.* is a global privilege; the server also logs the privilege tables it wrote
    carol = access.filter(pl.col("time") == _utc(grant["time"]))
    assert set(zip(carol["object"], carol["access"], strict=True)) == {
        ("global:*", "permission"), ("mysql.db", "write"), ("mysql.global_priv", "write")}


def test_weekday_traffic(loaded) -> None:
    events, access = loaded
    people = STORY["people"]
    app = access.filter(pl.col("actor") == "app_user")
    assert set(app["object"]) == set(people["app_user"]["writes"])
    assert set(app["access"]) == {"write"}
    assert set(events.filter(pl.col("actor") == "app_user")["src_ip"]) == set(
        people["app_user"]["hosts"])
    alice = access.filter(pl.col("actor") == "alice")
    assert set(alice["object"]) == set(people["alice"]["reads"])
    assert set(alice["access"]) == {"read"}
    hours = alice["time"].dt.hour()
    assert hours.min() >= 9 and hours.max() < 18
    assert set(alice["time"].dt.weekday()) <= {1, 2, 3, 4, 5}
