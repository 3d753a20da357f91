"""Coverage: what went through the gateway, what went around it, and where the trail is blind.

- **Paths.** Each engine statement is matched to the gateway event that submitted it (same
  statement, same database, within a tolerance; :func:`auditkit.identity.match_gateway`). A
  statement is ``gateway`` when matched, ``gateway_account`` when it comes from the gateway's own
  account and host but has no gateway record (the gateway's housekeeping, or a statement it did
  not log), ``direct`` otherwise, and ``not_fronted`` when its database never appears at the
  gateway (nothing to bypass). :func:`gateway_share` reports the shares per database.
- **Bypasses.** Direct sessions are grouped by their path (account, client address, client
  program). A path seen on fewer than ``min_days`` days is a *bypass*: who (the account and the
  likely person with the identity evidence), from where, with what, and which statements.
  Established direct paths (an application's pool, a DBA's daily psql) are reported in
  :func:`direct_paths`, not as findings.
- **Blind spots.** :func:`stream_gaps`: a source that stops for much longer than its usual gaps.
  :func:`silenced`: a change to auditing itself (``SET pgaudit.log``, ``ALTER SYSTEM``,
  parameter groups, ``StopLogging``) followed by silence of the streams it can switch off.

Detectors ``gateway_bypass``, ``log_gap`` and ``audit_silenced`` register with
:mod:`auditkit.findings`; their settings are under ``detectors:`` in ``data/findings.yml``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from auditkit import identity
from auditkit.findings import Context, detector, empty_findings
from auditkit.identity import GATEWAY_SOURCES, GATEWAY_TOLERANCE

PATHS = ("gateway", "gateway_account", "direct", "not_fronted")
MAX_EVIDENCE = 50


def _seconds(value: float | int | dt.timedelta) -> dt.timedelta:
    return value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=float(value))


def app_family(client_app: pl.Expr) -> pl.Expr:
    """The client program without per-window details (``DBeaver 24.1.3 - SQLEditor <...>`` ->
    ``DBeaver``): what stays the same from one session of a tool to the next."""
    return client_app.str.extract(r"^\s*([A-Za-z][\w.]*)", 1).fill_null("")


def statements(events: pl.DataFrame) -> pl.DataFrame:
    """Engine statements (one row per statement, not per audit record): the workflow-layer
    events with SQL, from sources other than the gateway, except authentication."""
    engine = events.filter(
        (pl.col("layer") == "workflow")
        & ~pl.col("source").is_in(GATEWAY_SOURCES)
        & pl.col("statement").is_not_null()
        & (pl.col("category").fill_null("other") != "auth")
    )
    unit = pl.when(pl.col("session_id").is_not_null() & pl.col("statement_id").is_not_null()).then(
        pl.concat_str("source", "session_id", "statement_id", separator="|")
    ).otherwise("event_id")
    sensitive = pl.col("sensitive") if "sensitive" in events.columns else pl.lit(False)
    return (
        engine.with_columns(_unit=unit, _sensitive=sensitive.fill_null(False))
        .sort("time")
        .group_by("_unit", maintain_order=True)
        .agg(
            pl.col("time").first(),
            *(pl.col(c).first() for c in ("source", "actor", "person", "src_ip", "client_app",
                                          "database", "session_id", "statement", "category",
                                          "outcome")),
            objects=pl.col("object").drop_nulls().unique(maintain_order=True),
            sensitive=pl.col("_sensitive").any(),
            event_ids=pl.col("event_id"),
        )
        .drop("_unit")
    )


def classify_paths(events: pl.DataFrame, tolerance: dt.timedelta = GATEWAY_TOLERANCE
                   ) -> pl.DataFrame:
    """:func:`statements` with ``path`` (one of ``PATHS``), ``gateway_event_id`` and
    ``gateway_person`` (who submitted it at the gateway)."""
    units = statements(events)
    matched = identity.match_gateway(events, tolerance).select(
        "event_id", "gateway_event_id", "gateway_person"
    )
    fronted = (
        events.filter(pl.col("source").is_in(GATEWAY_SOURCES))
        .get_column("database").drop_nulls().unique().implode()
    )
    units = units.with_row_index("_u")
    hits = (
        units.select("_u", "event_ids").explode("event_ids")
        .join(matched, left_on="event_ids", right_on="event_id")
        .group_by("_u").agg(pl.col("gateway_event_id").first(), pl.col("gateway_person").first())
    )
    units = units.join(hits, on="_u", how="left")
    gateway_hosts = units.filter(pl.col("gateway_event_id").is_not_null()).select(
        "actor", "src_ip"
    ).unique().with_columns(_gw=pl.lit(True))
    units = units.join(gateway_hosts, on=["actor", "src_ip"], how="left", nulls_equal=True)
    path = (
        pl.when(pl.col("gateway_event_id").is_not_null()).then(pl.lit("gateway"))
        .when(~pl.col("database").is_in(fronted).fill_null(False)).then(pl.lit("not_fronted"))
        .when(pl.col("_gw").fill_null(False)).then(pl.lit("gateway_account"))
        .otherwise(pl.lit("direct"))
    )
    return units.with_columns(path=path).drop("_u", "_gw").sort("time")


def gateway_share(events: pl.DataFrame, tolerance: dt.timedelta = GATEWAY_TOLERANCE,
                  *, paths: pl.DataFrame | None = None, by: tuple[str, ...] = ("database",)
                  ) -> pl.DataFrame:
    """Per database (or ``by`` other columns of :func:`classify_paths`, e.g. ``("database",
    "person")``): engine statements by path and the share that went through the gateway."""
    paths = classify_paths(events, tolerance) if paths is None else paths
    counts = paths.group_by(*by).agg(
        statements=pl.len(),
        **{p: (pl.col("path") == p).sum() for p in PATHS},
        accounts_direct=pl.col("actor").filter(pl.col("path") == "direct").unique().sort(),
    )
    return counts.with_columns(
        fronted=pl.col("not_fronted") == 0,
        gateway_share=pl.when(pl.col("not_fronted") == 0).then(
            (pl.col("gateway") / pl.col("statements")).round(4)
        ),
    ).sort(*by, nulls_last=True)


def _path_days(paths: pl.DataFrame) -> pl.DataFrame:
    keys = ["actor", "src_ip", "_app"]
    return paths.group_by(keys).agg(
        path_days=pl.col("time").dt.date().n_unique(),
        path_first=pl.col("time").min(),
        path_statements=pl.len(),
    )


def direct_paths(events: pl.DataFrame, tolerance: dt.timedelta = GATEWAY_TOLERANCE,
                 *, paths: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every direct path into a database the gateway fronts: account, address, program, the days
    it was used, its statements and sessions, first and last use."""
    paths = classify_paths(events, tolerance) if paths is None else paths
    direct = paths.filter(pl.col("path") == "direct").with_columns(_app=app_family(
        pl.col("client_app")))
    return direct.group_by("actor", "src_ip", "_app").agg(
        databases=pl.col("database").unique().sort(),
        days=pl.col("time").dt.date().n_unique(),
        sessions=pl.col("session_id").n_unique(),
        statements=pl.len(),
        first=pl.col("time").min(),
        last=pl.col("time").max(),
    ).rename({"_app": "client"}).sort("days", "statements")


def bypasses(
    events: pl.DataFrame,
    *,
    tolerance: dt.timedelta = GATEWAY_TOLERANCE,
    min_days: int = 2,
    resolution: identity.Resolution | None = None,
) -> pl.DataFrame:
    """Direct sessions on a path (account, address, program) used on fewer than ``min_days``
    days, into a database the gateway fronts: one row per session.

    ``person`` is the likely person from identity resolution (``person_method``,
    ``person_confidence``, ``person_evidence``, ``person_reason`` say why); null when nothing
    names one.
    """
    resolution = resolution or identity.resolve_identities(events)
    paths = classify_paths(resolution.events, tolerance).with_columns(
        _app=app_family(pl.col("client_app"))
    )
    direct = paths.filter(pl.col("path") == "direct").join(
        _path_days(paths.filter(pl.col("path") == "direct")), on=["actor", "src_ip", "_app"],
        nulls_equal=True,
    ).filter(pl.col("path_days") < min_days)
    if direct.is_empty():
        return _empty_bypasses()
    per_session = direct.with_columns(
        _session=pl.coalesce("session_id", pl.col("event_ids").list.first())
    ).group_by("actor", "_session").agg(
        start=pl.col("time").min(),
        end=pl.col("time").max(),
        src_ip=pl.col("src_ip").first(),
        client_app=pl.col("client_app").first(),
        database=pl.col("database").unique().sort().str.join(", "),
        source=pl.col("source").first(),
        person=pl.col("person").drop_nulls().first(),
        statements=pl.len(),
        categories=pl.col("category").unique().sort(),
        objects=pl.col("objects").list.explode(keep_nulls=False, empty_as_null=False)
        .unique().sort(),
        sensitive=pl.col("sensitive").any(),
        failed=(pl.col("outcome") == "failure").sum(),
        sample=pl.col("statement").head(3),
        event_ids=pl.col("event_ids").list.explode(keep_nulls=False, empty_as_null=False)
        .head(MAX_EVIDENCE),
        first_event=pl.col("event_ids").list.first().first(),
    ).rename({"_session": "session_id"})
    why = resolution.attributed.select(
        pl.col("event_id").alias("first_event"),
        person_method="method", person_confidence="confidence",
        person_evidence="evidence", person_reason="reason",
    )
    return per_session.join(why, on="first_event", how="left").drop("first_event").sort("start")


def _empty_bypasses() -> pl.DataFrame:
    from auditkit.schema import UTC_TIME

    s = pl.String
    return pl.DataFrame(schema={
        "actor": s, "session_id": s, "start": UTC_TIME, "end": UTC_TIME, "src_ip": s,
        "client_app": s, "database": s, "source": s, "person": s, "statements": pl.UInt32,
        "categories": pl.List(s), "objects": pl.List(s), "sensitive": pl.Boolean,
        "failed": pl.UInt32, "sample": pl.List(s), "event_ids": pl.List(s),
        "person_method": s, "person_confidence": s, "person_evidence": pl.List(s),
        "person_reason": s,
    })


# --------------------------------------------------------------------------- blind spots


def _stream() -> pl.Expr:
    return pl.concat_str(pl.col("source"), pl.col("target").fill_null(""), separator="@")


def _gaps(events: pl.DataFrame) -> pl.DataFrame:
    """Every gap between consecutive events of a stream (source @ target)."""
    return events.select(
        "time", "event_id", "source", "target", stream=_stream()
    ).sort("stream", "time").with_columns(
        prev_time=pl.col("time").shift(1).over("stream"),
        prev_event=pl.col("event_id").shift(1).over("stream"),
    ).with_columns(gap=(pl.col("time") - pl.col("prev_time")).dt.total_seconds())


def usual_gaps(events: pl.DataFrame, *, factor: float = 2.0, min_gap: dt.timedelta
               = dt.timedelta(hours=3), min_events: int = 20) -> pl.DataFrame:
    """Per stream and day: the longest silence that is still usual there, in seconds.

    A stream's quiet hours (a reporting server at night, a gateway at weekends) come back every
    day, so the yardstick is the longest gap of each *other* day: ``factor`` times their median,
    at least ``min_gap``. With a single day there is nothing to compare with and the rule falls
    back to ``factor * 2.5`` times the stream's 95th-percentile gap. Streams with fewer than
    ``min_events`` events have no rhythm to speak of (``threshold`` null).
    """
    gaps = _gaps(events).filter(pl.col("gap").is_not_null()).with_columns(
        day=pl.col("time").dt.date()
    )
    per_day = gaps.group_by("stream", "day").agg(longest=pl.col("gap").max())
    days = gaps.select("stream", "day").unique()
    others = days.join(per_day.rename({"day": "other"}), on="stream").filter(
        pl.col("other") != pl.col("day")
    ).group_by("stream", "day").agg(others=pl.col("longest").median())
    stats = gaps.group_by("stream").agg(n=pl.len() + 1, p95=pl.col("gap").quantile(0.95))
    return days.join(others, on=["stream", "day"], how="left").join(stats, on="stream").select(
        "stream", "day",
        threshold=pl.when(pl.col("n") >= min_events).then(pl.max_horizontal(
            pl.lit(min_gap.total_seconds()),
            pl.coalesce(pl.col("others") * factor, pl.col("p95") * factor * 2.5),
        )),
        usual_longest=pl.coalesce("others", "p95"),
    )


def stream_gaps(
    events: pl.DataFrame,
    *,
    min_gap: dt.timedelta = dt.timedelta(hours=3),
    factor: float = 2.0,
    min_events: int = 20,
) -> pl.DataFrame:
    """Silences inside a source's stream (source @ target) longer than is usual there (see
    :func:`usual_gaps`): one row per gap with the events on both sides as evidence."""
    usual = usual_gaps(events, factor=factor, min_gap=min_gap, min_events=min_events)
    return _gaps(events).with_columns(day=pl.col("time").dt.date()).join(
        usual, on=["stream", "day"]
    ).filter(pl.col("gap") > pl.col("threshold")).select(
        "stream", "source", "target",
        start=pl.col("prev_time"), end=pl.col("time"),
        hours=(pl.col("gap") / 3600).round(2),
        usual_hours=(pl.col("usual_longest") / 3600).round(2),
        event_ids=pl.concat_list("prev_event", "event_id"),
    ).sort("start")


SESSION_SET = r"(?is)^\s*(?:/\*.*?\*/\s*)*SET\s"
GLOBAL_SET = r"(?i)\bSET\s+(?:GLOBAL|PERSIST)\b|@@global\."
TRAIL_ACTIONS = ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors")


def audit_changes(events: pl.DataFrame) -> pl.DataFrame:
    """Changes to auditing itself that did not fail (category ``audit_config``), with their
    ``scope``: ``session`` (a session-level SET), ``own`` (the trail that records them, e.g.
    ``StopLogging``) or ``engines`` (server settings, parameter groups: the engine streams)."""
    statement = pl.col("statement").fill_null("")
    scope = (
        pl.when(pl.col("action").is_in(TRAIL_ACTIONS)).then(pl.lit("own"))
        .when((pl.col("layer") == "workflow") & statement.str.contains(SESSION_SET)
              & ~statement.str.contains(GLOBAL_SET) & pl.col("session_id").is_not_null())
        .then(pl.lit("session"))
        .otherwise(pl.lit("engines"))
    )
    return events.filter(
        (pl.col("category") == "audit_config") & (pl.col("outcome").fill_null("") != "failure")
    ).with_columns(scope=scope, stream=_stream())


def silenced(events: pl.DataFrame, *, after: dt.timedelta = dt.timedelta(hours=1)
             ) -> pl.DataFrame:
    """Audit changes followed by silence: the streams the change can switch off record nothing
    for at least ``after`` (and for a session-level SET: nothing more from that session, which
    went on for at least a minute), while the data goes on past that time."""
    changes = audit_changes(events)
    if changes.is_empty():
        return _empty_silenced()
    data_end = events["time"].max()
    streams = events.select(
        "time", "event_id", "source", "layer", "session_id", stream=_stream()
    )
    engine_streams = streams.filter(
        (pl.col("layer") == "workflow") & ~pl.col("source").is_in(GATEWAY_SOURCES)
    ).get_column("stream").unique()
    change_cols = changes.select(
        c_time="time", c_event="event_id", c_actor="actor", c_person="person",
        c_action="action", c_stream="stream", c_session="session_id", scope="scope",
    ).with_row_index("_c")
    # which streams each change can silence
    own = change_cols.filter(pl.col("scope") == "own").with_columns(stream=pl.col("c_stream"))
    eng = change_cols.filter(pl.col("scope") == "engines").join(
        pl.DataFrame({"stream": engine_streams}), how="cross"
    )
    targets = pl.concat([own, eng], how="diagonal_relaxed")
    out = []
    if not targets.is_empty():
        nxt = targets.sort("c_time").join_asof(
            streams.filter(pl.col("stream").is_in(targets["stream"].unique().implode()))
            .select("stream", n_time="time", n_event="event_id").sort("n_time"),
            left_on="c_time", right_on="n_time", by="stream", strategy="forward",
            allow_exact_matches=False, check_sortedness=False,
        )
        # silence: until the stream's next record (or the end of the data), longer than
        # ``after`` and than what is usual for that stream on other days
        usual = usual_gaps(events).select("stream", "day", "threshold")
        quiet = nxt.with_columns(day=pl.col("c_time").dt.date()).join(
            usual, on=["stream", "day"], how="left"
        ).with_columns(
            silence=(pl.coalesce("n_time", pl.lit(data_end)) - pl.col("c_time")).dt.total_seconds(),
            needed=pl.max_horizontal(pl.lit(after.total_seconds()), pl.col("threshold")),
        ).filter(
            (pl.col("silence") >= pl.col("needed"))
            & (pl.lit(data_end) - pl.col("c_time") >= after)
        )
        out.append(quiet.select(
            "c_time", "c_event", "c_actor", "c_person", "c_action", "stream",
            silent_until=pl.col("n_time"),
            event_ids=pl.concat_list("c_event", pl.col("n_event")).list.drop_nulls(),
        ))
    session = change_cols.filter(pl.col("scope") == "session")
    if not session.is_empty():
        rest = session.join(
            streams.select(c_session="session_id", stream="stream", n_time="time",
                           n_event="event_id"),
            on="c_session",
        ).filter(pl.col("n_time") > pl.col("c_time")).group_by("_c").agg(
            pl.col("c_time", "c_event", "c_actor", "c_person", "c_action").first(),
            stream=pl.col("c_session").first(),
            audited_after=(pl.col("stream") == pl.col("c_stream").first()).sum(),
            last=pl.col("n_time").max(),
            last_event=pl.col("n_event").sort_by("n_time").last(),
        )
        quiet = rest.filter(
            (pl.col("audited_after") == 0)
            & (pl.col("last") - pl.col("c_time") >= dt.timedelta(minutes=1))
        )
        out.append(quiet.select(
            "c_time", "c_event", "c_actor", "c_person", "c_action", "stream",
            silent_until=pl.col("last"),
            event_ids=pl.concat_list("c_event", "last_event"),
        ))
    if not out:
        return _empty_silenced()
    return pl.concat(out).rename({
        "c_time": "time", "c_event": "event_id", "c_actor": "actor", "c_person": "person",
        "c_action": "action",
    }).sort("time")


def _empty_silenced() -> pl.DataFrame:
    from auditkit.schema import UTC_TIME

    s = pl.String
    return pl.DataFrame(schema={
        "time": UTC_TIME, "event_id": s, "actor": s, "person": s, "action": s, "stream": s,
        "silent_until": UTC_TIME, "event_ids": pl.List(s),
    })


# --------------------------------------------------------------------------- detectors


def _severity(sensitive: pl.Expr, categories: pl.Expr) -> pl.Expr:
    serious = categories.list.eval(pl.element().is_in(["export", "permission"])).list.any()
    changes = categories.list.eval(pl.element().is_in(["write", "schema"])).list.any()
    return (
        pl.when(sensitive | serious).then(pl.lit("high"))
        .when(changes).then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )


def _reportable(found: pl.DataFrame, cfg: dict) -> pl.DataFrame:
    """Without the accounts/addresses the settings allow, evidence capped at ``max_evidence``."""
    keep = pl.lit(True)
    if cfg.get("allow_actors") and "actor" in found.columns:
        keep &= ~pl.col("actor").is_in(list(cfg["allow_actors"])).fill_null(False)
    if cfg.get("allow_src_ips") and "src_ip" in found.columns:
        keep &= ~pl.col("src_ip").is_in(list(cfg["allow_src_ips"])).fill_null(False)
    found = found.filter(keep)
    if cfg.get("max_evidence") and "event_ids" in found.columns:
        found = found.with_columns(pl.col("event_ids").list.head(int(cfg["max_evidence"])))
    return found


@detector("gateway_bypass")
def gateway_bypass_findings(ctx: Context) -> pl.DataFrame:
    """Sessions that reached a gateway-fronted database directly on a path not used before."""
    cfg = ctx.config("gateway_bypass")
    if not ctx.events.filter(pl.col("source").is_in(GATEWAY_SOURCES)).height:
        return empty_findings()  # no gateway in the data: nothing can be bypassed
    found = bypasses(
        ctx.events,
        tolerance=_seconds(cfg.get("tolerance_seconds", 2)),
        min_days=int(cfg.get("min_days", 2)),
        resolution=identity.resolve_identities(
            ctx.events, ip_window=dt.timedelta(minutes=float(cfg.get("ip_window_minutes", 10)))
        ),
    )
    if found.is_empty():
        return empty_findings()
    likely = pl.when(pl.col("person").is_not_null()).then(pl.format(
        "; likely {} ({}, {} confidence)", "person", "person_method", "person_confidence"
    )).otherwise(pl.lit("; no evidence names the person"))
    return _reportable(found, cfg).select(
        "person", "actor", "src_ip", "database",
        # the statements, then what names the person
        event_ids=pl.concat_list("event_ids", pl.col("person_evidence").fill_null([]))
        .list.unique(maintain_order=True),
        time="start",
        source="source",
        object=pl.col("objects").list.first(),
        severity=_severity(pl.col("sensitive"), pl.col("categories")),
        reason=pl.format(
            "{} connected to {} directly from {} with {}, around the gateway, on a path not "
            "used on other days: {} statement(s) ({} of {}){}",
            "actor", "database", pl.col("src_ip").fill_null("?"),
            pl.col("client_app").fill_null("an unnamed client"), "statements",
            pl.col("categories").list.join("/"),
            pl.when(pl.col("objects").list.len() > 0).then(pl.col("objects").list.join(", "))
            .otherwise(pl.lit("no named object")),
            likely,
        ),
    )


@detector("log_gap")
def log_gap_findings(ctx: Context) -> pl.DataFrame:
    """A source that went quiet for much longer than usual."""
    cfg = ctx.config("log_gap")
    gaps = stream_gaps(
        ctx.events,
        min_gap=dt.timedelta(hours=float(cfg.get("min_gap_hours", 3))),
        factor=float(cfg.get("factor", 2)),
        min_events=int(cfg.get("min_events", 20)),
    )
    return _reportable(gaps, cfg).select(
        time="start", source="source", event_ids="event_ids",
        severity=pl.lit(cfg.get("severity", "medium")),
        reason=pl.format(
            "{} recorded nothing for {} h (from {} to {}); its longest silence on other days "
            "is about {} h",
            "stream", "hours", pl.col("start").dt.strftime("%Y-%m-%d %H:%M:%S"),
            pl.col("end").dt.strftime("%Y-%m-%d %H:%M:%S"), "usual_hours",
        ),
    )


@detector("audit_silenced")
def audit_silenced_findings(ctx: Context) -> pl.DataFrame:
    """A change to auditing followed by silence of what it can switch off."""
    cfg = ctx.config("audit_silenced")
    found = silenced(ctx.events, after=dt.timedelta(minutes=float(cfg.get("after_minutes", 60))))
    return _reportable(found, cfg).select(
        "time", "person", "actor", "event_ids",
        severity=pl.lit("high"),
        reason=pl.format(
            "{} by {} was followed by silence of {} (next record: {})",
            "action", pl.coalesce("person", "actor"), "stream",
            pl.col("silent_until").dt.strftime("%Y-%m-%d %H:%M:%S").fill_null("none"),
        ),
    )
