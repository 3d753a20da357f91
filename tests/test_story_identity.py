"""The identity and coverage story of sample_logs/ (ground truth: auditkit.samplegen_bytebase):
who is behind the gateway's role, the shared-account bypass at night and the evidence that
names its likely person, the gateway's share per database, one cross-layer timeline."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import auditkit
from auditkit import coverage, identity, timeline
from auditkit.findings import find
from auditkit.samplegen_bytebase import expected_story
from auditkit.sources import REGISTRY
from tests.conftest import REPO

pytestmark = pytest.mark.skipif("bytebase" not in REGISTRY, reason="no bytebase source yet")

SAMPLES = REPO / "sample_logs"
STORY = expected_story()
BYPASS = STORY["bypass"]
DAVE = BYPASS["likely_person"]


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return auditkit.load([SAMPLES]).events


@pytest.fixture(scope="module")
def resolution(events) -> identity.Resolution:
    return identity.resolve_identities(events)


def _night_gateway(events: pl.DataFrame) -> pl.DataFrame:
    return events.filter((pl.col("source") == "bytebase") & (pl.col("src_ip") == BYPASS["src_ip"]))


def test_the_gateway_role_is_shared_and_every_statement_has_its_person(resolution):
    row = resolution.attribution.filter(pl.col("account") == STORY["gateway_role"]).row(
        0, named=True)
    assert row["shared"] and row["rate"] == 1.0
    assert row["persons"] == sorted(STORY["queries_by_user"])  # alice, bob, dave
    statement_links = resolution.links.filter(
        (pl.col("method") == "gateway_statement") & (pl.col("scope") == "event"))
    assert set(statement_links["confidence"]) == {"high"}
    assert set(statement_links["account"]) == {STORY["gateway_role"]}


def test_gateway_share_per_database(events):
    share = coverage.gateway_share(events).filter(pl.col("fronted"))
    by_db = {r["database"]: r for r in share.iter_rows(named=True)}
    assert set(by_db) == {"shop", "billing"}
    for db, queries in STORY["queries_by_database"].items():
        assert by_db[db]["gateway"] == queries, db  # each gateway query found once at db1
        assert by_db[db]["gateway_account"] == 0
    assert "app_user" in by_db["billing"]["accounts_direct"]
    assert 0 < by_db["shop"]["gateway_share"] < 1
    assert coverage.gateway_share(events).filter(pl.col("database") == "reporting").row(
        0, named=True)["fronted"] is False  # reports-db is not behind the gateway


def test_the_bypass_who_from_where_what(events, resolution):
    found = coverage.bypasses(events, resolution=resolution)
    row = found.filter(pl.col("actor") == BYPASS["actor"]).row(0, named=True)
    assert (row["src_ip"], row["client_app"], row["database"]) == (
        BYPASS["src_ip"], BYPASS["client_app"], BYPASS["database"])
    assert row["objects"] == [BYPASS["object"]] and row["sensitive"]
    assert row["session_id"] == BYPASS["session_id"]
    assert abs(row["start"] - BYPASS["statement_time"]) < dt.timedelta(milliseconds=1)
    # the likely person, with the gateway's sign-in and query from that address as evidence
    night = _night_gateway(events)
    assert (row["person"], row["person_method"], row["person_confidence"]) == (
        DAVE, "same_ip", "medium")
    assert sorted(row["person_evidence"]) == sorted(night["event_id"])
    assert sorted(night["action"].str.extract(r"(\w+Service/\w+)$")) == [
        "AuthService/Login", "SQLService/Query"]
    # the established paths (shop-api's pool, the people's office clients) are not bypasses
    assert not found.filter(pl.col("src_ip").is_in(["10.0.1.5", "10.0.1.6", "10.20.0.11"])).height


def test_bypass_finding_names_the_likely_person_with_evidence(events):
    found = find(events, only=["gateway_bypass"])
    row = found.filter(pl.col("actor") == BYPASS["actor"]).row(0, named=True)
    assert (row["severity"], row["person"], row["src_ip"]) == ("high", DAVE, BYPASS["src_ip"])
    assert "around the gateway" in row["reason"] and f"likely {DAVE}" in row["reason"]
    assert set(_night_gateway(events)["event_id"]) <= set(row["event_ids"])
    evidence = events.filter(pl.col("event_id").is_in(row["event_ids"]))
    assert BYPASS["statement"] in evidence["statement"].to_list()


def test_removing_the_evidence_removes_the_attribution(events):
    # without the sign-in only, dave's gateway query from the address still names him
    login = _night_gateway(events).filter(pl.col("action").str.ends_with("AuthService/Login"))
    assert login.height == 1
    no_login = events.filter(~pl.col("event_id").is_in(login["event_id"].implode()))
    row = coverage.bypasses(no_login).filter(pl.col("actor") == BYPASS["actor"]).row(0, named=True)
    assert row["person"] == DAVE and len(row["person_evidence"]) == 1
    # without both gateway records from the address, nothing names him
    blind = events.filter(~pl.col("event_id").is_in(_night_gateway(events)["event_id"].implode()))
    res = identity.resolve_identities(blind)
    assert res.links.filter(pl.col("account") == BYPASS["actor"]).is_empty()
    row = coverage.bypasses(blind, resolution=res).filter(
        pl.col("actor") == BYPASS["actor"]).row(0, named=True)
    assert row["person"] is None
    finding = find(blind, only=["gateway_bypass"]).filter(pl.col("actor") == BYPASS["actor"])
    assert finding["person"].to_list() == [None]
    assert "no evidence names the person" in finding["reason"][0]


def test_the_shared_account_is_reported_unresolved(resolution):
    row = resolution.attribution.filter(pl.col("account") == "app_user").row(0, named=True)
    assert row["persons"] == [DAVE] and row["unresolved"] > 1000 and row["rate"] < 0.01
    assert resolution.links.filter(
        (pl.col("account") == "app_user") & (pl.col("scope") == "account")).is_empty()


def test_daves_night_in_one_timeline(events, resolution):
    night = timeline.person_timeline(
        events, DAVE, since=dt.datetime(2026, 11, 6, 2, 0, tzinfo=dt.UTC),
        until=dt.datetime(2026, 11, 6, 3, 0, tzinfo=dt.UTC), resolution=resolution)
    layers = set(night["layers"].list.explode())
    assert layers == {"workflow", "infrastructure"}
    sources = set(night["sources"].list.explode())
    assert {"cloudtrail", "bytebase", "pgaudit", "mariadb"} <= sources
    # the gateway query and its db1 record: one action, both identities
    query = night.filter(pl.col("through_gateway")).row(0, named=True)
    assert query["identities"] == [f"users/{DAVE}", STORY["gateway_role"]]
    assert query["src_ips"][0] == BYPASS["src_ip"]
    # the shared account's read, placed in his night by the address evidence
    shared = night.filter(pl.col("identities").list.contains(BYPASS["actor"]))
    assert shared["how"].unique().to_list() == ["same_ip"]
    assert BYPASS["statement"] in shared["statement"].to_list()
    assert night["time"].is_sorted()
