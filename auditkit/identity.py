"""Identity: who is the person behind an account, and on what evidence.

Engine logs name a database role; a shared role (``app_user``) hides the person. ``person`` is
filled from, in this order (the first that applies wins, nothing is overwritten):

1. **map**: an identity map the user supplies (person -> accounts, e-mails, IP addresses);
2. **source**: the source itself names the person (SSO session names and IAM users in
   CloudTrail, principal e-mails in GCP/Azure, ``users/<email>`` at the Bytebase gateway);
3. **inferred links**, each with its evidence event ids and a confidence:
   - ``gateway_statement`` (event): the same statement was submitted at the gateway by a named
     user within ``gateway_tolerance`` of the engine recording it (``high``; ``low`` when two
     people sent the same text at the same moment);
   - ``same_ip`` (session): a named person used the session's client address within
     ``ip_window`` of the session, and nobody else did (``medium``; ``low`` when the address is
     seen with several people over the data, e.g. an office NAT);
   - ``source_account`` (account): the account's own source names one person for it on
     some of its events and never another (a Bytebase sign-in names the e-mail behind
     ``users/101``) (``high``);
   - ``consistent_sessions`` (account): most sessions of an account link to one and the same
     person and none to anybody else (``medium``).

Links below ``min_confidence`` (default ``medium``) are reported but not applied. A shared
account's sessions are attributed one by one, never as a whole. Example::

    resolution = resolve_identities(events)
    resolution.events        # person filled where the evidence allows
    resolution.links         # LINK_SCHEMA: account, scope, key, person, method, confidence, ...
    resolution.attribution   # per account: events, attributed, rate, persons, shared

Identity map, YAML::

    alice: [alice, alice@corp.com, "arn:aws:iam::123456789012:user/alice"]
    bob:   {accounts: [bob, bob_admin], ips: [10.20.0.17]}

or CSV with columns ``person,account`` (an IP address as ``account`` links that address).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from auditkit.errors import ConfigError
from auditkit.schema import UTC_TIME

GATEWAY_SOURCES = ("bytebase",)
"""Sources that record the person at a gateway in front of the engines."""

CONFIDENCES = ("low", "medium", "high")
CONFIDENCE_RANK = {name: rank for rank, name in enumerate(CONFIDENCES)}

GATEWAY_TOLERANCE = dt.timedelta(seconds=2)
IP_WINDOW = dt.timedelta(minutes=10)
MAX_EVIDENCE = 10
LOCAL_ADDRESSES = ("[local]", "local", "localhost", "127.0.0.1", "::1")

LINK_SCHEMA: dict[str, pl.DataType] = {
    "account": pl.String(),
    "scope": pl.String(),  # account | session | event | ip
    "key": pl.String(),  # session id (session), event id (event), address (ip), null (account)
    "person": pl.String(),
    "method": pl.String(),  # map, source_account, gateway_statement, same_ip, consistent_sessions
    "confidence": pl.String(),
    "evidence": pl.List(pl.String()),
    "reason": pl.String(),
    "time": UTC_TIME,  # first event of the linked activity
}

_IP = r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)$"
_EMAIL = r"^[^@\s/:]+@[^@\s/:]+\.[A-Za-z]{2,}$"  # a TLD: not user@10.0.1.5 (MySQL user@host)


# --------------------------------------------------------------------------- explicit map


def load_identity_map(path: str | Path) -> dict[str, str]:
    """account (or IP address) -> person, from a YAML or CSV identity map."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read identity map ({exc})") from None
    links: dict[str, str] = {}
    if path.suffix.lower() == ".csv":
        for row in csv.DictReader(text.splitlines()):
            if not row.get("person") or not row.get("account"):
                raise ConfigError(f"{path}: CSV identity map needs columns person,account")
            links[row["account"].strip()] = row["person"].strip()
        return links
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: identity map must map person -> accounts")
    for person, accounts in data.items():
        if isinstance(accounts, dict):
            accounts = [
                *_as_list(accounts.get("accounts")), *_as_list(accounts.get("emails")),
                *_as_list(accounts.get("principals")), *_as_list(accounts.get("ips")),
            ]
        for account in _as_list(accounts):
            links[str(account)] = str(person)
    return links


def _as_list(value: object) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _split_map(links: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(account -> person, address -> person)."""
    import re

    ips = {k: v for k, v in links.items() if re.match(_IP, k)}
    return {k: v for k, v in links.items() if k not in ips}, ips


def apply_identity_map(events: pl.DataFrame, links: dict[str, str]) -> pl.DataFrame:
    """Fill ``person`` where the actor (or, failing that, the client address) is in the map."""
    if not links:
        return events
    accounts, ips = _split_map(links)
    by_actor = pl.col("actor").replace_strict(accounts, default=None, return_dtype=pl.String)
    by_ip = pl.col("src_ip").replace_strict(ips, default=None, return_dtype=pl.String)
    return events.with_columns(person=pl.coalesce("person", by_actor, by_ip))


def map_links(events: pl.DataFrame, links: dict[str, str]) -> pl.DataFrame:
    """The identity map as rows of ``LINK_SCHEMA`` (only entries the events use)."""
    accounts, ips = _split_map(links)
    frames = []
    for scope, column, table, confidence in (
        ("account", "actor", accounts, "high"),
        ("ip", "src_ip", ips, "medium"),
    ):
        if not table:
            continue
        used = (
            events.filter(pl.col(column).is_in(list(table)))
            .group_by(column)
            .agg(pl.col("time").min(), pl.col("actor").first().alias("_actor"))
        )
        frames.append(used.select(
            account=pl.col("_actor") if scope == "ip" else pl.col(column),
            scope=pl.lit(scope),
            key=pl.col(column) if scope == "ip" else pl.lit(None, pl.String),
            person=pl.col(column).replace_strict(table, return_dtype=pl.String),
            method=pl.lit("map"),
            confidence=pl.lit(confidence),
            evidence=pl.lit([], pl.List(pl.String)),
            reason=pl.format("the identity map links {} to this person", pl.col(column)),
            time="time",
        ))
    return _links(frames)


# --------------------------------------------------------------------------- named by the source


def named_person() -> pl.Expr:
    """The person an actor names by itself: ``users/<email>`` (gateway) or a human e-mail.

    Sources fill ``person`` where their records name one; this catches actors they left
    unfilled. Service accounts are never persons.
    """
    actor = pl.col("actor").str.strip_chars()
    email = actor.str.strip_prefix("users/")
    human = pl.col("actor_type").is_null() | ~pl.col("actor_type").is_in(
        ["service_account", "system"]
    )
    return pl.when(human & email.str.contains(_EMAIL)).then(email.str.to_lowercase())


# --------------------------------------------------------------------------- inferred links


def statement_key(statement: pl.Expr) -> pl.Expr:
    """A statement as both ends of a gateway see it: Bytebase's result-limit wrapper
    (``WITH result AS (...) SELECT * FROM result LIMIT n``) removed, whitespace collapsed,
    trailing semicolons dropped."""
    unwrapped = statement.str.replace(
        r"(?is)^\s*WITH result AS \((.*?);?\s*\)\s*SELECT \* FROM result LIMIT \d+\s*;?\s*$",
        "${1}",
    )
    return unwrapped.str.replace_all(r"\s+", " ").str.strip_chars(" ;")


def _gateway_side(events: pl.DataFrame) -> pl.DataFrame:
    return events.filter(
        pl.col("source").is_in(GATEWAY_SOURCES) & pl.col("statement").is_not_null()
    ).select(
        _key=statement_key(pl.col("statement")),
        _db=pl.col("database").fill_null(""),
        gateway_time="time",
        gateway_event_id="event_id",
        gateway_actor="actor",
        gateway_person=pl.coalesce("person", named_person()),
    )


def _engine_side(events: pl.DataFrame) -> pl.DataFrame:
    return events.filter(
        ~pl.col("source").is_in(GATEWAY_SOURCES)
        & (pl.col("layer") == "workflow")
        & pl.col("statement").is_not_null()
    ).select(
        _key=statement_key(pl.col("statement")),
        _db=pl.col("database").fill_null(""),
        time="time",
        event_id="event_id",
        actor="actor",
        session_id="session_id",
        src_ip="src_ip",
    )


def match_gateway(
    events: pl.DataFrame, tolerance: dt.timedelta = GATEWAY_TOLERANCE
) -> pl.DataFrame:
    """Engine events paired with the gateway event that submitted the same statement.

    One row per matched engine event: ``event_id``, ``actor``, ``session_id``, ``src_ip``,
    ``time`` and the gateway's ``gateway_event_id``, ``gateway_actor``, ``gateway_person``,
    ``gateway_time``, plus ``ambiguous`` (another person's gateway event with the same statement
    lies within twice the tolerance). Matching is a ``join_asof`` on time, by statement key and
    database, nearest within ``tolerance``.
    """
    gateway = _gateway_side(events).sort("gateway_time")
    engine = _engine_side(events).sort("time")
    if gateway.is_empty() or engine.is_empty():
        return pl.DataFrame(schema={
            "event_id": pl.String, "actor": pl.String, "session_id": pl.String,
            "src_ip": pl.String, "time": UTC_TIME, "gateway_event_id": pl.String,
            "gateway_actor": pl.String, "gateway_person": pl.String, "gateway_time": UTC_TIME,
            "ambiguous": pl.Boolean,
        })
    near = 2 * tolerance
    group = ["_key", "_db"]
    gateway = gateway.sort([*group, "gateway_time"]).with_columns(
        ambiguous=(
            (
                (pl.col("gateway_time") - pl.col("gateway_time").shift(1).over(group) <= near)
                & (pl.col("gateway_person").shift(1).over(group) != pl.col("gateway_person"))
            ).fill_null(False)
            | (
                (pl.col("gateway_time").shift(-1).over(group) - pl.col("gateway_time") <= near)
                & (pl.col("gateway_person").shift(-1).over(group) != pl.col("gateway_person"))
            ).fill_null(False)
        )
    ).sort("gateway_time")
    matched = engine.join_asof(
        gateway,
        left_on="time",
        right_on="gateway_time",
        by=group,
        strategy="nearest",
        tolerance=tolerance,
        coalesce=False,
        check_sortedness=False,  # sorted by time above; groups need no other order
    )
    return matched.filter(pl.col("gateway_event_id").is_not_null()).drop(group)


def gateway_links(events: pl.DataFrame, tolerance: dt.timedelta = GATEWAY_TOLERANCE
                  ) -> pl.DataFrame:
    """``gateway_statement`` links: one per engine event the gateway submitted for a person,
    and one per engine session all of whose statements the gateway submitted for that person
    (so the session's connection records are theirs too)."""
    matched = match_gateway(events, tolerance).filter(pl.col("gateway_person").is_not_null())
    statements = _engine_side(events).filter(pl.col("session_id").is_not_null()).group_by(
        "actor", "session_id"
    ).agg(n=pl.len())
    whole = matched.filter(~pl.col("ambiguous")).group_by("actor", "session_id").agg(
        persons=pl.col("gateway_person").unique(),
        evidence=pl.col("gateway_event_id").unique(maintain_order=True).head(MAX_EVIDENCE),
        matched=pl.len(),
        time=pl.col("time").min(),
    ).join(statements, on=["actor", "session_id"]).filter(
        (pl.col("persons").list.len() == 1) & (pl.col("matched") == pl.col("n"))
    )
    by_session = whole.select(
        account="actor",
        scope=pl.lit("session"),
        key="session_id",
        person=pl.col("persons").list.first(),
        method=pl.lit("gateway_statement"),
        confidence=pl.lit("high"),
        evidence="evidence",
        reason=pl.format(
            "every statement of this session ({}) was submitted at the gateway by {}",
            "n", pl.col("persons").list.first(),
        ),
        time="time",
    )
    return _links([by_session, matched.select(
        account="actor",
        scope=pl.lit("event"),
        key="event_id",
        person="gateway_person",
        method=pl.lit("gateway_statement"),
        confidence=pl.when("ambiguous").then(pl.lit("low")).otherwise(pl.lit("high")),
        evidence=pl.concat_list("gateway_event_id"),
        reason=pl.format(
            "{} submitted the same statement at the gateway ({}) {} ms before the engine "
            "recorded it",
            "gateway_person", "gateway_actor",
            ((pl.col("time") - pl.col("gateway_time")).dt.total_milliseconds()),
        ),
        time="time",
    )])


def sessions(events: pl.DataFrame) -> pl.DataFrame:
    """One row per session of an account (events without a session id are their own session):
    ``account``, ``session``, ``src_ip``, ``source``, ``start``, ``end``, ``events``,
    ``attributed`` (events with a person)."""
    return (
        events.filter(pl.col("actor").is_not_null())
        .with_columns(session=pl.coalesce("session_id", "event_id"))
        .group_by("actor", "session")
        .agg(
            src_ip=pl.col("src_ip").drop_nulls().first(),
            source=pl.col("source").first(),
            start=pl.col("time").min(),
            end=pl.col("time").max(),
            events=pl.len(),
            attributed=pl.col("person").is_not_null().sum(),
        )
        .rename({"actor": "account"})
    )


def ip_links(
    events: pl.DataFrame, window: dt.timedelta = IP_WINDOW
) -> pl.DataFrame:
    """``same_ip`` links: a session nobody is named in, whose client address a named person
    used within ``window`` of it (and no other person did)."""
    named = events.filter(
        pl.col("person").is_not_null() & pl.col("src_ip").is_not_null()
        & ~pl.col("src_ip").is_in(LOCAL_ADDRESSES)
    ).select("src_ip", pl.col("time").alias("e_time"), pl.col("person").alias("e_person"),
             pl.col("event_id").alias("e_id"), pl.col("source").alias("e_source"))
    people_per_ip = named.group_by("src_ip").agg(ip_people=pl.col("e_person").n_unique())
    open_sessions = sessions(events).filter(
        (pl.col("attributed") == 0) & pl.col("src_ip").is_in(named["src_ip"].unique().implode())
    )
    # pair sessions with named events only in the time buckets (window wide) they overlap:
    # an equality join on the address alone would pair every session with every event there
    width = int(max(window, dt.timedelta(minutes=1)).total_seconds() * 1_000_000)
    named = named.with_columns(_b=pl.col("e_time").dt.epoch("us") // width)
    open_sessions = open_sessions.with_columns(_b=pl.int_ranges(
        (pl.col("start") - window).dt.epoch("us") // width,
        (pl.col("end") + window).dt.epoch("us") // width + 1,
    )).explode("_b")
    pairs = open_sessions.join(named, on=["src_ip", "_b"]).filter(
        pl.col("e_time").is_between(pl.col("start") - window, pl.col("end") + window)
    ).with_columns(
        distance=pl.min_horizontal(
            (pl.col("e_time") - pl.col("start")).abs(), (pl.col("e_time") - pl.col("end")).abs()
        )
    )
    per_session = pairs.sort("distance").group_by("account", "session").agg(
        pl.col("src_ip").first(),
        pl.col("start").first(),
        persons=pl.col("e_person").unique(),
        person=pl.col("e_person").first(),
        evidence=pl.col("e_id").head(MAX_EVIDENCE),
        n_evidence=pl.len(),
        sources=pl.col("e_source").unique().sort().str.join(", "),
        nearest=pl.col("distance").first(),
    ).filter(pl.col("persons").list.len() == 1)
    per_session = per_session.join(people_per_ip, on="src_ip", how="left")
    return _links([per_session.select(
        account="account",
        scope=pl.lit("session"),
        key="session",
        person="person",
        method=pl.lit("same_ip"),
        confidence=pl.when(pl.col("ip_people") > 1).then(pl.lit("low")).otherwise(
            pl.lit("medium")
        ),
        evidence="evidence",
        reason=pl.format(
            "{} used {} ({}) {} min from this session, and no one else used that address "
            "then ({} evidence events)",
            "person", "src_ip", "sources",
            (pl.col("nearest").dt.total_seconds() / 60).round(1), "n_evidence",
        ),
        time="start",
    )])


def account_links(events: pl.DataFrame, links: pl.DataFrame, min_sessions: int = 2
                  ) -> pl.DataFrame:
    """``consistent_sessions`` links: an account whose sessions, at least ``min_sessions`` and
    half of them, link to one person, with no session linked to anybody else."""
    usable = links.filter(
        pl.col("scope").is_in(["session", "event"])
        & (pl.col("confidence").replace_strict(CONFIDENCE_RANK, return_dtype=pl.Int8)
           >= CONFIDENCE_RANK["medium"])
    )
    if usable.is_empty():
        return _links([])
    keyed = events.select(
        "event_id", session=pl.coalesce("session_id", "event_id")
    )
    session_of_link = usable.join(
        keyed, left_on="key", right_on="event_id", how="left"
    ).with_columns(session=pl.when(pl.col("scope") == "session").then("key").otherwise("session"))
    per_account = session_of_link.group_by("account").agg(
        persons=pl.col("person").unique(),
        linked=pl.col("session").n_unique(),
        evidence=pl.col("evidence").list.explode(keep_nulls=False, empty_as_null=False)
        .unique(maintain_order=True).head(MAX_EVIDENCE),
        time=pl.col("time").min(),
    )
    totals = sessions(events).group_by("account").agg(total=pl.len())
    return _links([per_account.join(totals, on="account").filter(
        (pl.col("persons").list.len() == 1)
        & (pl.col("linked") >= min_sessions)
        & (pl.col("linked") * 2 >= pl.col("total"))
    ).select(
        account="account",
        scope=pl.lit("account"),
        key=pl.lit(None, pl.String),
        person=pl.col("persons").list.first(),
        method=pl.lit("consistent_sessions"),
        confidence=pl.lit("medium"),
        evidence="evidence",
        reason=pl.format(
            "{} of {} sessions of {} link to {} and none to anybody else",
            "linked", "total", "account", pl.col("persons").list.first(),
        ),
        time="time",
    )])


def source_account_links(events: pl.DataFrame) -> pl.DataFrame:
    """``source_account`` links: an account whose own source names one person on some of its
    events (a Bytebase sign-in says ``users/101`` is ``demo@example.com``) and never another.

    ``events`` carry ``_p0``, the person as the sources gave it. Service accounts, assumed
    roles and system actors are left out: one person named on one call does not make the
    account theirs.
    """
    personal = ~pl.col("actor_type").is_in(["service_account", "assumed_role", "system"])
    candidates = events.filter(
        pl.col("actor").is_not_null() & personal.fill_null(True) & named_person().is_null()
    )
    is_named = pl.col("_p0").is_not_null()
    per_account = candidates.group_by("actor").agg(
        persons=pl.col("_p0").drop_nulls().unique(),
        sources=pl.col("source").filter(is_named).unique().sort().str.join(", "),
        named=is_named.sum(),
        unresolved=(~is_named).sum(),
        evidence=pl.col("event_id").filter(is_named).head(MAX_EVIDENCE),
        time=pl.col("time").filter(is_named).min(),
    ).filter((pl.col("persons").list.len() == 1) & (pl.col("unresolved") > 0))
    if per_account.is_empty():
        return _links([])
    return _links([per_account.select(
        account="actor",
        scope=pl.lit("account"),
        key=pl.lit(None, pl.String),
        person=pl.col("persons").list.first(),
        method=pl.lit("source_account"),
        confidence=pl.lit("high"),
        evidence="evidence",
        reason=pl.format(
            "{} names {} as {} on {} event(s) and nobody else",
            "sources", pl.col("persons").list.first(), "actor", "named",
        ),
        time="time",
    )])


def _links(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f.select(pl.col(c).cast(t) for c, t in LINK_SCHEMA.items()) for f in frames]
    if not frames:
        return pl.DataFrame(schema=LINK_SCHEMA)
    return pl.concat(frames)


# --------------------------------------------------------------------------- resolution


@dataclass
class Resolution:
    """What :func:`resolve_identities` found."""

    events: pl.DataFrame
    """The events with ``person`` filled where the evidence allows (same columns as given)."""
    links: pl.DataFrame
    """Every link found (``LINK_SCHEMA``), applied or not."""
    attributed: pl.DataFrame
    """Per event whose person is known: ``event_id``, ``person``, ``method``, ``confidence``,
    ``evidence``, ``reason``."""
    attribution: pl.DataFrame
    """Per account: ``account``, ``events``, ``attributed``, ``rate``, ``persons``,
    ``shared``, ``unresolved`` (events with no person)."""


def resolve_identities(
    events: pl.DataFrame,
    identity_map: dict[str, str] | str | Path | None = None,
    *,
    gateway_tolerance: dt.timedelta = GATEWAY_TOLERANCE,
    ip_window: dt.timedelta = IP_WINDOW,
    min_confidence: str = "medium",
    shared_accounts: tuple[str, ...] | list[str] = (),
) -> Resolution:
    """Fill ``person`` from the map, the sources and inferred links (see the module docstring).

    Only persons from the map and the sources serve as evidence for inference: an inferred
    person never vouches for another.
    """
    if min_confidence not in CONFIDENCE_RANK:
        raise ConfigError(f"min_confidence must be one of {CONFIDENCES}: {min_confidence!r}")
    if isinstance(identity_map, (str, Path)):
        identity_map = load_identity_map(identity_map)
    identity_map = identity_map or {}
    columns = events.columns
    before = events.with_columns(_p0=pl.col("person"))
    mapped = apply_identity_map(before, identity_map)
    mapped = mapped.with_columns(
        _method=pl.when(pl.col("_p0").is_not_null()).then(pl.lit("source"))
        .when(pl.col("person").is_not_null()).then(pl.lit("map")),
    ).with_columns(
        _method=pl.when(pl.col("_method").is_null() & named_person().is_not_null())
        .then(pl.lit("source")).otherwise("_method"),
        person=pl.coalesce("person", named_person()),
    )
    event_links = gateway_links(mapped, gateway_tolerance)
    session_links = ip_links(mapped, ip_window)
    inferred = pl.concat([event_links, session_links])
    links = pl.concat([
        map_links(events, identity_map), source_account_links(mapped), inferred,
        account_links(mapped, inferred),
    ])
    applied = links.filter(
        pl.col("confidence").replace_strict(CONFIDENCE_RANK, return_dtype=pl.Int8)
        >= CONFIDENCE_RANK[min_confidence]
    ).with_row_index("_link")
    resolved = mapped.with_columns(_session=pl.coalesce("session_id", "event_id"))
    for scope, left in (("event", "event_id"), ("session", "_session"), ("account", "actor")):
        chosen = applied.filter(pl.col("scope") == scope)
        right = "account" if scope == "account" else "key"
        on_left = [left] if scope == "account" else ["actor", left]
        on_right = [right] if scope == "account" else ["account", right]
        chosen = chosen.unique(on_right, keep="first").select(
            *on_right, _lp="person", _lm="method", _lid="_link"
        )
        resolved = resolved.join(chosen, left_on=on_left, right_on=on_right, how="left")
        fill = pl.col("person").is_null() & pl.col("_lp").is_not_null()
        resolved = resolved.with_columns(
            _method=pl.when(fill).then("_lm").otherwise("_method"),
            _link=pl.when(fill).then("_lid").otherwise(
                pl.col("_link") if "_link" in resolved.columns else pl.lit(None, pl.UInt32)
            ),
            person=pl.coalesce("person", "_lp"),
        ).drop("_lp", "_lm", "_lid")
    attributed = resolved.filter(pl.col("person").is_not_null()).select(
        "event_id", "person", method="_method", _link="_link"
    ).join(
        applied.select("_link", "confidence", "evidence", "reason"), on="_link", how="left"
    ).with_columns(
        confidence=pl.col("confidence").fill_null(
            pl.when(pl.col("method").is_in(["source", "map"])).then(pl.lit("high"))
        ),
        evidence=pl.col("evidence").fill_null(pl.lit([], pl.List(pl.String))),
    ).drop("_link")
    out = resolved.select(columns)
    return Resolution(
        events=out,
        links=links,
        attributed=attributed,
        attribution=attribution(out, shared_accounts),
    )


def attribution(events: pl.DataFrame, shared_accounts: tuple[str, ...] | list[str] = ()
                ) -> pl.DataFrame:
    """Per account: how much of its activity has a person, which persons, whether it is shared
    (several persons behind it, or declared shared). Accounts with unresolved events first."""
    return (
        events.filter(pl.col("actor").is_not_null())
        .group_by("actor")
        .agg(
            source=pl.col("source").unique().sort().str.join(", "),
            events=pl.len(),
            attributed=pl.col("person").is_not_null().sum(),
            persons=pl.col("person").drop_nulls().unique().sort(),
        )
        .rename({"actor": "account"})
        .with_columns(
            unresolved=pl.col("events") - pl.col("attributed"),
            rate=(pl.col("attributed") / pl.col("events")).round(4),
            shared=(pl.col("persons").list.len() > 1)
            | pl.col("account").is_in(list(shared_accounts)),
        )
        .sort(["unresolved", "account"], descending=[True, False])
    )
