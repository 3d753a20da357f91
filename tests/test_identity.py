"""Identity resolution on tiny frames: explicit map, persons the sources name, inferred links
with evidence, and the cases that must not link."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from auditkit import identity as I
from auditkit.errors import ConfigError
from auditkit.schema import EVENT_SCHEMA, conform

T0 = dt.datetime(2026, 11, 6, 2, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def frame(rows: list[dict]) -> pl.DataFrame:
    keys = {k for row in rows for k in row}
    return conform(pl.DataFrame(rows, schema={k: t for k, t in EVENT_SCHEMA.items() if k in keys}))


def gw(eid: str, t: float, who: str, sql: str | None = None, ip: str = "10.20.0.11",
       db: str = "shop", action: str = "/bytebase.v1.SQLService/Query") -> dict:
    return {"time": at(t), "source": "bytebase", "layer": "workflow", "action": action,
            "actor": f"users/{who}", "actor_type": "gateway_user", "person": who,
            "src_ip": ip, "database": db, "statement": sql, "event_id": eid}


def pg(eid: str, t: float, actor: str, sql: str | None, session: str, ip: str = "10.0.3.10",
       db: str = "shop") -> dict:
    return {"time": at(t), "source": "pgaudit", "layer": "workflow", "action": "SELECT",
            "actor": actor, "actor_type": "db_user", "person": None, "src_ip": ip,
            "database": db, "statement": sql, "session_id": session, "event_id": eid}


SQL = "SELECT id, email FROM public.customers WHERE id = 7"
WRAPPED = f"WITH result AS ({SQL}) SELECT * FROM result LIMIT 1000;"


# --------------------------------------------------------------------------- map and sources


def test_identity_map_yaml_and_csv(tmp_path):
    y = tmp_path / "ids.yml"
    y.write_text("alice: [alice, alice@corp.com]\nbob: {accounts: [bob], ips: [10.20.0.17]}\n")
    assert I.load_identity_map(y) == {"alice": "alice", "alice@corp.com": "alice",
                                      "bob": "bob", "10.20.0.17": "bob"}
    c = tmp_path / "ids.csv"
    c.write_text("person,account\ncarol,carol_admin\n")
    assert I.load_identity_map(c) == {"carol_admin": "carol"}
    bad = tmp_path / "bad.yml"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError):
        I.load_identity_map(bad)


def test_map_fills_by_account_then_address_and_never_overwrites():
    events = frame([pg("e1", 0, "bob", "SELECT 1", "s1", ip="10.20.0.17"),
                    pg("e2", 1, "app_user", "SELECT 1", "s2", ip="10.20.0.17"),
                    {**pg("e3", 2, "x", "SELECT 1", "s3"), "person": "already"}])
    out = I.apply_identity_map(events, {"bob": "Bob", "10.20.0.17": "ip-owner", "x": "X"})
    assert out["person"].to_list() == ["Bob", "ip-owner", "already"]


@pytest.mark.parametrize(("actor", "actor_type", "person"), [
    ("users/Alice@Shop.Example", "gateway_user", "alice@shop.example"),
    ("dave@example.com", "iam_user", "dave@example.com"),
    ("svc@proj.iam.gserviceaccount.com", "service_account", None),
    ("users/101", "gateway_user", None),  # an old Bytebase build's numeric uid names nobody
    ("app_user", "db_user", None),
    ("app@10.0.1.5", "db_user", None),  # MySQL user@host
])
def test_named_person(actor, actor_type, person):
    out = pl.DataFrame({"actor": [actor], "actor_type": [actor_type]}).select(I.named_person())
    assert out.item() == person


# --------------------------------------------------------------------------- gateway statement


def test_same_statement_at_gateway_and_engine_links_the_event():
    events = frame([gw("g1", 0.0, "alice@shop.example", SQL),
                    pg("p1", 0.4, "bytebase", WRAPPED, "s1")])
    res = I.resolve_identities(events)
    links = res.links.filter(pl.col("method") == "gateway_statement")
    link = links.filter(pl.col("scope") == "event").row(0, named=True)
    assert (link["account"], link["key"], link["person"], link["confidence"], link["evidence"]) \
        == ("bytebase", "p1", "alice@shop.example", "high", ["g1"])
    # every statement of session s1 came from alice: the session (its connection records) too
    whole = links.filter(pl.col("scope") == "session").row(0, named=True)
    assert (whole["key"], whole["person"]) == ("s1", "alice@shop.example")
    assert res.events.filter(pl.col("event_id") == "p1")["person"].item() == "alice@shop.example"
    why = res.attributed.filter(pl.col("event_id") == "p1").row(0, named=True)
    assert why["method"] == "gateway_statement" and why["evidence"] == ["g1"]


@pytest.mark.parametrize("engine", [
    pg("p1", 5.0, "bytebase", WRAPPED, "s1"),  # too late: outside the tolerance
    pg("p1", 0.4, "bytebase", SQL.replace("7", "8"), "s1"),  # another statement
    pg("p1", 0.4, "bytebase", WRAPPED, "s1", db="billing"),  # another database
])
def test_no_gateway_link_without_matching_evidence(engine):
    res = I.resolve_identities(frame([gw("g1", 0.0, "alice@shop.example", SQL), engine]))
    assert res.links.filter(pl.col("method") == "gateway_statement").is_empty()
    assert res.events.filter(pl.col("event_id") == "p1")["person"].item() is None


def test_two_people_same_statement_same_moment_is_low_and_not_applied():
    events = frame([gw("g1", 0.0, "alice@shop.example", SQL),
                    gw("g2", 0.3, "dave@shop.example", SQL, ip="10.20.0.24"),
                    pg("p1", 0.5, "bytebase", SQL, "s1")])
    res = I.resolve_identities(events)
    assert res.links.filter(pl.col("method") == "gateway_statement")["confidence"].to_list() \
        == ["low"]
    assert res.events.filter(pl.col("event_id") == "p1")["person"].item() is None


# --------------------------------------------------------------------------- same address


def _night(extra: list[dict] | None = None) -> pl.DataFrame:
    rows = [
        gw("login", 0, "dave@shop.example", None, ip="198.51.100.77",
           action="/bytebase.v1.AuthService/Login"),
        pg("b1", 240, "app_user", "SELECT card_number, cvv FROM payments.cards", "night",
           ip="198.51.100.77", db="billing"),
        pg("b2", 300, "app_user", None, "night", ip="198.51.100.77", db="billing"),
        pg("a1", 3000, "app_user", "SELECT 1", "day", ip="10.0.1.5"),
    ]
    return frame(rows + (extra or []))


def test_shared_account_session_named_by_address_with_evidence():
    res = I.resolve_identities(_night())
    link = res.links.filter(pl.col("method") == "same_ip").row(0, named=True)
    assert (link["account"], link["key"], link["person"], link["confidence"], link["evidence"]) \
        == ("app_user", "night", "dave@shop.example", "medium", ["login"])
    assert "198.51.100.77" in link["reason"]
    persons = dict(res.events.select("event_id", "person").iter_rows())
    assert persons["b1"] == persons["b2"] == "dave@shop.example"
    assert persons["a1"] is None  # the account's other session stays unattributed
    row = res.attribution.filter(pl.col("account") == "app_user").row(0, named=True)
    assert (row["events"], row["attributed"], row["unresolved"]) == (3, 2, 1)
    assert not row["shared"]


def test_removing_the_evidence_removes_the_attribution():
    events = _night().filter(pl.col("event_id") != "login")
    res = I.resolve_identities(events)
    assert res.links.filter(pl.col("account") == "app_user").is_empty()
    assert res.events.filter(pl.col("actor") == "app_user")["person"].null_count() == 3


def test_min_confidence_high_reports_but_does_not_apply_address_links():
    res = I.resolve_identities(_night(), min_confidence="high")
    assert res.links.filter(pl.col("method") == "same_ip").height == 1
    assert res.events.filter(pl.col("actor") == "app_user")["person"].null_count() == 3


@pytest.mark.parametrize("extra", [
    # another person on the same address in the window: ambiguous, no link
    [gw("other", 200, "erin@shop.example", None, ip="198.51.100.77",
        action="/bytebase.v1.AuthService/Login")],
])
def test_two_people_on_one_address_do_not_link(extra):
    res = I.resolve_identities(_night(extra))
    assert res.links.filter(pl.col("method") == "same_ip").is_empty()


def test_address_shared_over_the_data_gives_low_confidence_only():
    later = gw("later", 90_000, "erin@shop.example", None, ip="198.51.100.77",
               action="/bytebase.v1.AuthService/Login")
    res = I.resolve_identities(_night([later]))
    assert res.links.filter(pl.col("method") == "same_ip")["confidence"].to_list() == ["low"]
    assert res.events.filter(pl.col("event_id") == "b1")["person"].item() is None


def test_outside_the_window_or_local_no_link():
    far = _night().with_columns(
        time=pl.when(pl.col("event_id") == "login").then(pl.col("time") - dt.timedelta(hours=1))
        .otherwise("time"))
    assert I.resolve_identities(far).links.is_empty()
    local = frame([{**gw("l", 0, "carol@shop.example", None, ip="[local]")},
                   pg("p", 10, "postgres", "SELECT 1", "s", ip="[local]")])
    assert I.resolve_identities(local).links.is_empty()


def test_inferred_person_never_vouches_for_another():
    # dave's address names session "night"; a later session on the same address must not be
    # named through the inferred person (only map/source persons are evidence)
    chained = _night([pg("c1", 1200, "app_user", "SELECT 2", "next", ip="198.51.100.77")])
    res = I.resolve_identities(chained)
    assert res.events.filter(pl.col("event_id") == "c1")["person"].item() is None


# --------------------------------------------------------------------------- accounts


def test_account_linked_when_its_sessions_point_to_one_person():
    rows = []
    for day in range(3):
        base = day * 86_400
        rows += [gw(f"g{day}", base, "alice@shop.example", "SELECT 1", ip="10.20.0.11"),
                 pg(f"p{day}", base + 120, "alice", "SELECT 2", f"s{day}", ip="10.20.0.11")]
    rows.append(pg("p9", 5 * 86_400, "alice", "SELECT 3", "s9", ip="10.20.0.99"))
    res = I.resolve_identities(frame(rows))
    acct = res.links.filter(pl.col("scope") == "account").row(0, named=True)
    assert (acct["account"], acct["person"], acct["method"]) == (
        "alice", "alice@shop.example", "consistent_sessions")
    # the session from an unknown address is attributed through the account link
    assert res.events.filter(pl.col("event_id") == "p9")["person"].item() == "alice@shop.example"
    assert res.attributed.filter(pl.col("event_id") == "p9")["method"].item() \
        == "consistent_sessions"


def test_account_with_sessions_of_several_people_is_shared_not_linked():
    rows = [gw("g1", 0, "alice@shop.example", SQL), pg("p1", 0.2, "bytebase", SQL, "s1"),
            gw("g2", 600, "dave@shop.example", "SELECT 2", ip="10.20.0.24"),
            pg("p2", 600.3, "bytebase", "SELECT 2", "s2"),
            gw("g3", 900, "dave@shop.example", "SELECT 3", ip="10.20.0.24"),
            pg("p3", 900.3, "bytebase", "SELECT 3", "s3")]
    res = I.resolve_identities(frame(rows))
    assert res.links.filter(pl.col("scope") == "account").is_empty()
    row = res.attribution.filter(pl.col("account") == "bytebase").row(0, named=True)
    assert row["shared"] and row["persons"] == ["alice@shop.example", "dave@shop.example"]
    assert row["rate"] == 1.0


def test_schema_kept_and_bad_confidence_rejected():
    events = _night()
    assert I.resolve_identities(events).events.schema == events.schema
    with pytest.raises(ConfigError):
        I.resolve_identities(events, min_confidence="certain")


def test_session_with_statements_not_from_the_gateway_is_linked_statement_by_statement_only():
    events = frame([gw("g1", 0.0, "alice@shop.example", SQL),
                    pg("p1", 0.4, "bytebase", WRAPPED, "s1"),
                    pg("p2", 30.0, "bytebase", "DELETE FROM public.orders", "s1"),
                    {**pg("c1", -0.1, "bytebase", None, "s1"), "action": "LOGIN"}])
    res = I.resolve_identities(events)
    assert res.links.filter(pl.col("scope") == "session").is_empty()
    persons = dict(res.events.select("event_id", "person").iter_rows())
    assert persons == {"g1": "alice@shop.example", "p1": "alice@shop.example", "p2": None,
                       "c1": None}


def test_an_account_its_source_names_once_is_that_person():
    """A Bytebase sign-in names the e-mail behind a numeric user id: its queries are theirs."""
    import datetime as _dt

    from auditkit.identity import resolve_identities
    from auditkit.schema import EVENT_SCHEMA

    t = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
    rows = [
        {"actor": "users/101", "person": "demo@example.com", "actor_type": "gateway_user",
         "event_id": "login", "source": "bytebase"},
        {"actor": "users/101", "actor_type": "gateway_user", "event_id": "q1",
         "source": "bytebase"},
        {"actor": "users/104", "actor_type": "gateway_user", "event_id": "q2",
         "source": "bytebase"},
        # a service account named once (impersonation) is not that person's account
        {"actor": "sa@p.iam.gserviceaccount.com", "person": "eve@example.com",
         "actor_type": "service_account", "event_id": "s1", "source": "gcp_audit"},
        {"actor": "sa@p.iam.gserviceaccount.com", "actor_type": "service_account",
         "event_id": "s2", "source": "gcp_audit"},
    ]
    events = pl.DataFrame([r | {"time": t} for r in rows]).select(
        (pl.col(c) if c in {"actor", "person", "actor_type", "event_id", "source", "time"}
         else pl.lit(None)).cast(dt).alias(c) for c, dt in EVENT_SCHEMA.items())
    res = resolve_identities(events)
    person = dict(res.events.select("event_id", "person").iter_rows())
    assert person == {"login": "demo@example.com", "q1": "demo@example.com", "q2": None,
                      "s1": "eve@example.com", "s2": None}
    link = res.links.filter(pl.col("method") == "source_account").row(0, named=True)
    assert link["account"] == "users/101" and link["evidence"] == ["login"]
    assert link["confidence"] == "high"
