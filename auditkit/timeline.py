"""Cross-layer reconstruction: one person's cloud actions, gateway actions and engine statements
in one timeline.

A statement submitted at the gateway and recorded again by the engine is one *logical action*:
its row carries both identities (``users/alice@...`` at the gateway, the gateway's role at the
engine) and both events as evidence. Persons come from :func:`auditkit.identity.resolve_identities`,
so a shared account's session appears in a person's timeline only where evidence names them
(``how`` says which method did)::

    actions = person_timeline(events, person="dave@example.com",
                              since=datetime(2026, 11, 6, 1, tzinfo=UTC))
    activity = activity_sessions(actions)      # bursts of activity, gaps of 30 min split them
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from auditkit import identity
from auditkit.identity import GATEWAY_TOLERANCE


def logical_actions(
    events: pl.DataFrame,
    *,
    tolerance: dt.timedelta = GATEWAY_TOLERANCE,
    resolution: identity.Resolution | None = None,
) -> pl.DataFrame:
    """Events folded into logical actions: a gateway event with the engine records of the same
    statement; the audit records of one engine statement (one per relation); every other event
    on its own. Persons resolved; ``how`` is the attribution method of the action."""
    resolution = resolution or identity.resolve_identities(events)
    resolved = resolution.events
    matched = identity.match_gateway(resolved, tolerance).filter(~pl.col("ambiguous")).select(
        "event_id", "gateway_event_id"
    )
    unit = pl.when(pl.col("session_id").is_not_null() & pl.col("statement_id").is_not_null()).then(
        pl.concat_str("source", "session_id", "statement_id", separator="|")
    ).otherwise("event_id")
    keyed = (
        resolved.join(matched, on="event_id", how="left")
        .join(resolution.attributed.select("event_id", how="method"), on="event_id", how="left")
        .with_columns(_unit=unit)
    )
    # an engine statement belongs to the gateway event any of its records matched
    by_unit = keyed.filter(pl.col("gateway_event_id").is_not_null()).group_by("_unit").agg(
        _gw=pl.col("gateway_event_id").first()
    )
    keyed = keyed.join(by_unit, on="_unit", how="left").with_columns(
        _action=pl.coalesce("_gw", "_unit"),
        _gateway=pl.col("source").is_in(identity.GATEWAY_SOURCES),
        _how_rank=pl.col("how").replace_strict(_HOW_RANK, default=9, return_dtype=pl.Int8)
        .fill_null(10),
    )
    return (
        keyed.sort("time")
        .group_by("_action", maintain_order=True)
        .agg(
            time=pl.col("time").min(),
            end=pl.col("time").max(),
            person=pl.col("person").drop_nulls().first(),
            layers=pl.col("layer").unique(maintain_order=True),
            sources=pl.col("source").unique(maintain_order=True),
            # the gateway's (the person's own) view first where there is one
            action=pl.col("action").sort_by("_gateway", descending=True).first(),
            category=pl.col("category").sort_by("_gateway", descending=True).first(),
            outcome=pl.col("outcome").sort_by("_gateway", descending=True).first(),
            identities=pl.col("actor").sort_by("_gateway", descending=True, maintain_order=True)
            .drop_nulls().unique(maintain_order=True),
            src_ips=pl.col("src_ip").sort_by("_gateway", descending=True, maintain_order=True)
            .drop_nulls().unique(maintain_order=True),
            client_app=pl.col("client_app").drop_nulls().first(),
            database=pl.col("database").drop_nulls().first(),
            object=pl.col("object").drop_nulls().first(),
            statement=pl.col("statement").sort_by("_gateway", descending=True).drop_nulls()
            .first(),
            how=pl.col("how").sort_by("_how_rank").first(),
            event_ids=pl.col("event_id"),
            records=pl.len(),
        )
        .with_columns(
            through_gateway=pl.col("sources").list.eval(
                pl.element().is_in(identity.GATEWAY_SOURCES)
            ).list.any()
            & (pl.col("sources").list.len() > 1),
        )
        .drop("_action")
        .sort("time")
    )


# the strongest attribution of an action's events names it
_HOW_RANK = {"source": 0, "map": 1, "source_account": 2, "gateway_statement": 3, "same_ip": 4,
             "consistent_sessions": 5}


def person_timeline(
    events: pl.DataFrame,
    person: str | None = None,
    *,
    actor: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    tolerance: dt.timedelta = GATEWAY_TOLERANCE,
    resolution: identity.Resolution | None = None,
) -> pl.DataFrame:
    """One person's (or one account's) logical actions across layers, oldest first.

    ``person`` matches the resolved person case-insensitively; ``actor`` matches any identity of
    the action (the account as the source recorded it). Give one of them, or neither for all.
    """
    actions = logical_actions(events, tolerance=tolerance, resolution=resolution)
    keep = pl.lit(True)
    if person:
        keep &= pl.col("person").str.to_lowercase() == person.lower()
    if actor:
        keep &= pl.col("identities").list.contains(actor)
    if since is not None:
        keep &= pl.col("end") >= since
    if until is not None:
        keep &= pl.col("time") < until
    return actions.filter(keep)


def activity_sessions(actions: pl.DataFrame, gap: dt.timedelta = dt.timedelta(minutes=30)
                      ) -> pl.DataFrame:
    """Bursts of a timeline's actions (a pause longer than ``gap`` starts a new one): per
    person, start, end, actions, layers, sources, identities and addresses used."""
    return (
        actions.sort("time")
        .with_columns(
            _new=(pl.col("time") - pl.col("end").shift(1).over("person") > gap).fill_null(True)
        )
        .with_columns(_burst=pl.col("_new").cum_sum().over("person"))
        .group_by("person", "_burst", maintain_order=True)
        .agg(
            start=pl.col("time").min(),
            end=pl.col("end").max(),
            actions=pl.len(),
            layers=pl.col("layers").list.explode().unique().sort(),
            sources=pl.col("sources").list.explode().unique().sort(),
            identities=pl.col("identities").list.explode().unique().sort(),
            src_ips=pl.col("src_ips").list.explode(keep_nulls=False, empty_as_null=False)
            .unique().sort(),
            categories=pl.col("category").drop_nulls().unique().sort(),
        )
        .drop("_burst")
    )


def pick_person(events: pl.DataFrame, person: str | None = None, *,
                prefer: list[str | None] | tuple[str | None, ...] = ()) -> str | None:
    """``person`` when given; else the first named one in ``prefer`` (e.g. the likely persons of
    the bypasses, most severe first); else the person with the most events; ``None`` if none."""
    if person:
        return person
    for candidate in prefer:
        if candidate:
            return candidate
    named = events.filter(pl.col("person").is_not_null())
    if named.is_empty():
        return None
    return named.group_by("person").len().sort(["len", "person"], descending=[True, False])[
        "person"][0]
