"""Cross-layer timeline on tiny frames: gateway + engine records of one statement are one
action with both identities; shared-account activity appears only with evidence."""

from __future__ import annotations

import datetime as dt

import polars as pl

from auditkit import timeline as TL
from tests.test_identity import at, frame, gw, pg

SQL = "SELECT card_number FROM payments.cards LIMIT 10"


def _events(with_login: bool = True) -> pl.DataFrame:
    rows = [
        # cloud: dave's SSO session names him
        {"time": at(-600), "source": "cloudtrail", "layer": "infrastructure",
         "action": "ModifyDBParameterGroup", "category": "audit_config",
         "actor": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Support/dave@shop.example",
         "actor_type": "assumed_role", "person": "dave@shop.example",
         "src_ip": "198.51.100.77", "event_id": "ct1"},
        # gateway query and its engine records (two relations, one statement)
        gw("g1", 0.0, "dave@shop.example", SQL, ip="198.51.100.77", db="billing"),
        {**pg("p1", 0.3, "bytebase", f"WITH result AS ({SQL}) SELECT * FROM result LIMIT 1000;",
              "bb1", db="billing"), "statement_id": "1", "object": "payments.cards"},
        {**pg("p2", 0.3, "bytebase", f"WITH result AS ({SQL}) SELECT * FROM result LIMIT 1000;",
              "bb1", db="billing"), "statement_id": "1", "object": "payments.customers"},
        # the shared account from his address, minutes later
        pg("n1", 240, "app_user", "SELECT card_number, cvv FROM payments.cards", "night",
           ip="198.51.100.77", db="billing"),
        # someone else's gateway query: not in his timeline
        gw("g2", 30, "alice@shop.example", "SELECT 1", ip="10.20.0.11"),
        pg("p3", 30.2, "bytebase", "SELECT 1", "bb2"),
    ]
    if with_login:
        rows.append(gw("login", -30, "dave@shop.example", None, ip="198.51.100.77",
                       action="/bytebase.v1.AuthService/Login"))
    return frame(rows)


def test_one_action_per_statement_with_both_identities():
    tl = TL.person_timeline(_events(), "Dave@shop.example")
    assert tl["event_ids"].to_list() == [["ct1"], ["login"], ["g1", "p1", "p2"], ["n1"]]
    q = tl.row(2, named=True)
    assert q["identities"] == ["users/dave@shop.example", "bytebase"]
    assert q["sources"] == ["bytebase", "pgaudit"] and q["through_gateway"]
    assert q["statement"] == SQL and q["action"] == "/bytebase.v1.SQLService/Query"
    assert q["records"] == 3 and q["how"] == "source"
    night = tl.row(3, named=True)
    assert night["identities"] == ["app_user"] and night["how"] == "same_ip"
    assert not night["through_gateway"]
    assert tl["layers"].to_list()[0] == ["infrastructure"]


def test_without_evidence_the_shared_account_is_not_in_his_timeline():
    # every event that placed him on 198.51.100.77 near the night session is evidence
    events = _events(with_login=False).filter(~pl.col("event_id").is_in(["ct1", "g1"]))
    tl = TL.person_timeline(events, "dave@shop.example")
    assert tl.is_empty()
    assert TL.person_timeline(events, actor="app_user")["person"].to_list() == [None]


def test_actor_and_window_filters_and_bursts():
    events = _events()
    assert TL.person_timeline(events, actor="app_user")["event_ids"].to_list() == [["n1"]]
    tl = TL.person_timeline(events, "dave@shop.example", since=at(-60), until=at(100))
    assert tl["event_ids"].to_list() == [["login"], ["g1", "p1", "p2"]]
    bursts = TL.activity_sessions(TL.person_timeline(events, "dave@shop.example"),
                                  gap=dt.timedelta(minutes=5))
    assert bursts["actions"].to_list() == [1, 3]
    assert bursts.row(1, named=True)["identities"] == [
        "app_user", "bytebase", "users/dave@shop.example"]
