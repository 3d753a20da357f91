"""Coverage on tiny frames: gateway paths and shares, bypasses (and what is not one), stream
gaps, audit changes followed by silence, and the detectors' findings."""

from __future__ import annotations

import polars as pl
import pytest

from auditkit import coverage as C
from auditkit import findings as F
from tests.test_identity import T0, at, frame, gw, pg

SQL = "SELECT id, email FROM public.customers WHERE id = 7"


def day(n: int, seconds: float = 0) -> float:
    return n * 86_400 + seconds


def _week() -> pl.DataFrame:
    rows = []
    for d in range(3):
        # alice through the gateway (engine sees the gateway's role from its host)
        rows += [gw(f"g{d}", day(d, 100), "alice@shop.example", SQL),
                 pg(f"p{d}", day(d, 100.3), "bytebase", SQL, f"bb{d}")]
        # shop-api's pool: direct, every day, the same path
        rows += [{**pg(f"a{d}", day(d, 500), "app_user", "SELECT 1", f"app{d}", ip="10.0.1.5"),
                  "client_app": "shop-api"}]
    rows += [
        # the gateway's own housekeeping: its account and host, no gateway record
        pg("sync", day(1, 900), "bytebase", "SELECT version()", "bbsync"),
        # the night: app_user from a new address with psql, on sensitive data
        {**pg("n1", day(2, 7000), "app_user", "SELECT card_number, cvv FROM payments.cards",
              "night", ip="198.51.100.77", db="shop"), "client_app": "psql",
         "object": "payments.cards", "category": "read"},
        gw("login", day(2, 6800), "dave@shop.example", None, ip="198.51.100.77",
           action="/bytebase.v1.AuthService/Login"),
        # a database the gateway does not front
        pg("r1", day(2, 100), "alice", "SELECT 1", "rep", ip="10.20.0.11", db="reporting"),
    ]
    events = frame(rows)
    return events.with_columns(
        category=pl.col("category").fill_null("read"), outcome=pl.lit("success"),
        sensitive=pl.col("event_id") == "n1",
    )


def test_paths_and_share_per_database():
    paths = C.classify_paths(_week())
    by_id = dict(zip(paths["event_ids"].list.first(), paths["path"], strict=True))
    assert by_id["p0"] == by_id["p2"] == "gateway"
    assert by_id["sync"] == "gateway_account"
    assert by_id["a0"] == by_id["n1"] == "direct"
    assert by_id["r1"] == "not_fronted"
    share = C.gateway_share(_week()).row(1, named=True)  # [reporting, shop]
    assert (share["database"], share["statements"], share["gateway"], share["direct"]) == (
        "shop", 8, 3, 4)
    assert share["gateway_share"] == pytest.approx(3 / 8)
    assert share["accounts_direct"] == ["app_user"]
    reporting = C.gateway_share(_week()).row(0, named=True)
    assert not reporting["fronted"] and reporting["gateway_share"] is None


def test_bypass_names_who_from_where_what_and_the_likely_person():
    found = C.bypasses(_week())
    assert found.height == 1
    row = found.row(0, named=True)
    assert (row["actor"], row["src_ip"], row["client_app"], row["database"]) == (
        "app_user", "198.51.100.77", "psql", "shop")
    assert row["objects"] == ["payments.cards"] and row["sensitive"]
    assert (row["person"], row["person_method"], row["person_evidence"]) == (
        "dave@shop.example", "same_ip", ["login"])
    assert row["event_ids"] == ["n1"]


def test_established_paths_gateway_housekeeping_and_unfronted_are_not_bypasses():
    found = C.bypasses(_week())
    assert set(found["actor"]) == {"app_user"} and "10.0.1.5" not in set(found["src_ip"])
    paths = C.direct_paths(_week())
    pool = paths.filter(pl.col("src_ip") == "10.0.1.5").row(0, named=True)
    assert (pool["actor"], pool["client"], pool["days"]) == ("app_user", "shop", 3)


def test_without_gateway_records_the_night_has_no_person_and_no_gateway_nothing_bypassed():
    week = _week().filter(pl.col("event_id") != "login")
    row = C.bypasses(week).row(0, named=True)
    assert row["person"] is None and row["person_method"] is None
    no_gateway = _week().filter(pl.col("source") != "bytebase")
    assert F.find(no_gateway, only=["gateway_bypass"]).is_empty()


def test_a_new_path_through_the_gateway_is_not_a_bypass():
    # dave queries through the gateway from a new address: the engine sees the gateway
    week = pl.concat([_week(), frame([
        gw("gd", day(2, 9000), "dave@shop.example", "SELECT 42", ip="203.0.113.9"),
        pg("pd", day(2, 9000.5), "bytebase", "SELECT 42", "bbd"),
    ]).with_columns(category=pl.lit("read"), outcome=pl.lit("success"),
                    sensitive=pl.lit(False))], how="diagonal_relaxed")
    assert set(C.bypasses(week)["session_id"]) == {"night"}


def test_gateway_bypass_finding():
    found = F.find(_week(), only=["gateway_bypass"])
    assert found.height == 1
    row = found.row(0, named=True)
    assert (row["detector"], row["severity"], row["actor"], row["person"], row["src_ip"]) == (
        "gateway_bypass", "high", "app_user", "dave@shop.example", "198.51.100.77")
    assert "around the gateway" in row["reason"] and "dave@shop.example" in row["reason"]
    assert "payments.cards" in row["reason"]
    assert row["event_ids"] == ["n1", "login"]  # the statement, then what names the person


# --------------------------------------------------------------------------- blind spots


def _stream(n: int, every: float, source: str = "pgaudit", start: float = 0) -> list[dict]:
    return [{**pg(f"{source}{i}", start + i * every, "app_user", "SELECT 1", "s"),
             "source": source} for i in range(n)]


def test_stream_gap_found_and_usual_rhythm_is_not_a_gap():
    rows = _stream(30, 60) + _stream(30, 60, start=30 * 60 + 5 * 3600)
    rows = [{**r, "event_id": f"e{i}"} for i, r in enumerate(rows)]
    gaps = C.stream_gaps(frame(rows))
    assert gaps.height == 1
    g = gaps.row(0, named=True)
    assert g["hours"] == pytest.approx(5 + 1 / 60, abs=0.01) and g["event_ids"] == ["e29", "e30"]
    steady = frame([{**r, "event_id": f"e{i}"} for i, r in enumerate(_stream(60, 600))])
    assert C.stream_gaps(steady).is_empty()
    few = frame(_stream(5, 6 * 3600))  # too few events to know the rhythm
    assert C.stream_gaps(few).is_empty()
    found = F.find(frame(rows), only=["log_gap"])
    assert found["severity"].to_list() == ["medium"] and "recorded nothing" in found["reason"][0]


def _change(action: str, source: str, layer: str, statement: str | None, t: float,
            outcome: str = "success", session: str | None = None) -> dict:
    return {"time": at(t), "source": source, "layer": layer, "category": "audit_config",
            "action": action, "outcome": outcome, "actor": "dave", "person": "dave@x",
            "statement": statement, "session_id": session, "event_id": f"chg-{action}"}


def test_stop_logging_followed_by_silence_of_its_own_trail():
    trail = [{**_change("DescribeDBInstances", "cloudtrail", "infrastructure", None, i * 300),
              "category": "config", "event_id": f"ct{i}"} for i in range(10)]
    stop = _change("StopLogging", "cloudtrail", "infrastructure", None, 3000)
    engine = _stream(40, 600)  # the engines keep logging: the data goes on
    found = C.silenced(frame(trail + [stop] + engine))
    assert found.height == 1 and found.row(0, named=True)["stream"] == "cloudtrail@"
    # failed StopLogging: nothing switched off
    assert C.silenced(frame(trail + [{**stop, "outcome": "failure"}] + engine)).is_empty()
    # trail records again 5 minutes later: no silence
    back = {**trail[0], "time": at(3300), "event_id": "back"}
    assert C.silenced(frame(trail + [stop, back] + engine)).is_empty()


def test_alter_system_followed_by_engine_silence_and_session_set():
    before = _stream(10, 60)
    change = _change("ALTER SYSTEM", "pgaudit", "workflow",
                     "ALTER SYSTEM SET pgaudit.log = 'none'", 700, session="adm")
    cloud = [{**_change("X", "cloudtrail", "infrastructure", None, 700 + i * 600),
              "category": "config", "event_id": f"c{i}"} for i in range(12)]
    found = C.silenced(frame(before + [change] + cloud))
    assert found["stream"].to_list() == ["pgaudit@"]
    f = F.find(frame(before + [change] + cloud), only=["audit_silenced"]).row(0, named=True)
    assert f["severity"] == "high" and "ALTER SYSTEM" in f["reason"]
    # a session-level SET: the session goes on, its audit records stop
    set_none = _change("SET", "mysql_enterprise", "workflow", "SET pgaudit.log = 'none';", 100,
                       session="s9")
    bye = {**pg("bye", 400, "dave", None, "s9"), "source": "postgres", "action": "LOGOUT",
           "category": "auth"}
    session = C.silenced(frame([set_none, bye] + _stream(30, 600, source="cloudtrail")))
    assert session["stream"].to_list() == ["s9"]
    audited = {**pg("more", 200, "dave", "SELECT 1", "s9"), "source": "mysql_enterprise"}
    assert "s9" not in C.silenced(frame([set_none, audited, bye])).get_column("stream").to_list()


def test_silence_at_the_end_of_the_data_is_not_claimed():
    change = _change("StopLogging", "cloudtrail", "infrastructure", None, 0)
    assert C.silenced(frame([change] + _stream(3, 60, source="x"))).is_empty()
    assert T0.tzinfo is not None


def _days(skip: int | None = None) -> pl.DataFrame:
    rows = []
    for d in range(5):
        if d == skip:
            continue
        rows += [{**pg(f"d{d}-{i}", day(d, 7 * 3600 + i * 600), "app_user", "SELECT 1", "s"),
                  "source": "mariadb"} for i in range(90)]  # 07:00-22:00 every 10 min
    return frame(rows)


def test_quiet_nights_that_come_back_every_day_are_not_gaps_a_lost_day_is():
    assert C.stream_gaps(_days()).is_empty()
    gaps = C.stream_gaps(_days(skip=2))
    assert gaps.height == 1 and gaps.row(0, named=True)["hours"] == pytest.approx(33.0, abs=0.2)
