"""Views: altair charts of event, access and file frames. They compute nothing new.

Every chart aggregates in Polars first and hands altair a small frame (at most
:data:`MAX_POINTS` rows, whatever the input size), so a million events still make a chart of a
few hundred marks. Times are drawn on UTC scales. A chart function returns ``None`` when its
input has nothing to draw.

    from auditkit import charts
    charts.access_matrix(access)                    # who x object heatmap
    charts.object_history(access, "public.customers")
"""

from __future__ import annotations

import datetime as dt
import math
import os

import altair as alt
import polars as pl

from auditkit.schema import ACCESS_KINDS, CATEGORIES, OUTCOMES

MAX_POINTS = 5000
"""Upper bound on rows handed to a chart (altair's own default limit)."""

# Candidate time buckets, finest first: (polars duration, label, approximate seconds).
TIME_BUCKETS: tuple[tuple[str, str, int], ...] = (
    ("1m", "minute", 60),
    ("5m", "5 minutes", 300),
    ("15m", "15 minutes", 900),
    ("1h", "hour", 3600),
    ("6h", "6 hours", 21600),
    ("1d", "day", 86400),
    ("1w", "week", 604800),
    ("1mo", "month", 2629800),
    ("1q", "quarter", 7889400),
    ("1y", "year", 31557600),
)

OUTCOME_COLORS = alt.Scale(domain=list(OUTCOMES), range=["#4c9a2a", "#d62728", "#9e9e9e"])
ACCESS_COLORS = alt.Scale(domain=list(ACCESS_KINDS), scheme="category10")
CATEGORY_COLORS = alt.Scale(domain=list(CATEGORIES), scheme="tableau20")
UTC_SCALE = alt.Scale(type="utc")
COUNT_AXIS = alt.Axis(tickMinStep=1, format="d")
TIME_WIDTH = 640
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

WHO = pl.coalesce("person", "actor", pl.lit("(unknown)")).alias("who")


def time_x(times: pl.Series, field: str = "time") -> alt.X:
    """A UTC time axis whose labels carry the year or the hour as the span of ``times`` needs
    (Vega's default shows month names without years over multi-year spans)."""
    first, last = times.min(), times.max()
    span = (last - first).total_seconds() if first is not None and last is not None else 0
    # labels without the hour get ticks on whole days/months: Vega's default 12-hour ticks
    # would print each date twice
    if span >= 60 * 86400:
        fmt, ticks = "%b %Y", {"interval": "month", "step": max(1, math.ceil(span / 86400 / 365))}
    elif span >= 2 * 86400:
        fmt, ticks = "%Y-%m-%d", {"interval": "day", "step": max(1, math.ceil(span / 86400 / 12))}
    else:
        fmt, ticks = "%Y-%m-%d %H:%M", None
    axis = alt.Axis(format=fmt, tickCount=ticks) if ticks else alt.Axis(format=fmt)
    return alt.X(f"{field}:T", scale=UTC_SCALE, title="time (UTC)", axis=axis)


def pick_bucket(first: dt.datetime | None, last: dt.datetime | None, max_buckets: int) -> int:
    """Index in :data:`TIME_BUCKETS` of the finest bucket giving at most ``max_buckets``."""
    if first is None or last is None:
        return 0
    span = (last - first).total_seconds()
    for index, (_, _, seconds) in enumerate(TIME_BUCKETS):
        if span / seconds + 2 <= max_buckets:  # +2: a span rarely starts on a boundary
            return index
    return len(TIME_BUCKETS) - 1


def _per_bucket(frame: pl.DataFrame, keys: list[str], max_buckets: int, *aggs: pl.Expr):
    """Group ``frame`` by a time bucket (column ``time``) and ``keys``; returns (frame, label)."""
    timed = frame.filter(pl.col("time").is_not_null())
    index = pick_bucket(timed["time"].min(), timed["time"].max(), max_buckets)
    every, label, _ = TIME_BUCKETS[index]
    grouped = (
        timed.group_by(pl.col("time").dt.truncate(every), *keys)
        .agg(pl.len().alias("count"), *aggs)
        .sort("time", *keys)
    )
    return grouped, label


def _utc_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A time column as UTC text, for tooltips (Vega would show the viewer's local time)."""
    expr = pl.col(column)
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime) and dtype.time_zone not in (None, "UTC"):
        expr = expr.dt.convert_time_zone("UTC")
    return expr.dt.to_string(TIME_FORMAT)


def _with_when(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``when``: ``time`` as UTC text."""
    return frame.with_columns(_utc_text(frame, "time").alias("when"))


def _top(frame: pl.DataFrame, column: str, limit: int) -> list[str]:
    """The ``limit`` most frequent non-null values of ``column``, most frequent first."""
    return (
        frame.filter(pl.col(column).is_not_null())
        .group_by(column)
        .len()
        .sort(["len", column], descending=[True, False])
        .head(limit)[column]
        .to_list()
    )


def access_matrix(
    access: pl.DataFrame, max_who: int = 40, max_objects: int = 40
) -> alt.Chart | None:
    """Heatmap of access counts, who (person, else account) × object, busiest first.

    Tooltips give the access kinds, failures and whether sensitive data was touched. Only the
    ``max_who`` busiest people and ``max_objects`` busiest objects are drawn.
    """
    rows = access.filter(pl.col("object").is_not_null()).with_columns(WHO)
    if rows.is_empty():
        return None
    who, objects = _top(rows, "who", max_who), _top(rows, "object", max_objects)
    cells = (
        rows.filter(pl.col("who").is_in(who) & pl.col("object").is_in(objects))
        .group_by("who", "object")
        .agg(
            # statements, not rows: one statement naming three columns is one access
            pl.col("event_id").n_unique().alias("count"),
            pl.col("access").drop_nulls().unique().sort().str.join(", ").alias("kinds"),
            pl.col("event_id").filter(pl.col("outcome") == "failure").n_unique().alias("failures"),
            pl.col("sensitive").fill_null(False).any().alias("sensitive"),
        )
        .sort("who", "object")
    )
    title = "Accesses: who × object"
    all_who, all_objects = rows["who"].n_unique(), rows["object"].n_unique()  # no nulls left
    if len(who) < all_who or len(objects) < all_objects:
        title += (
            f" (busiest {len(who)} of {all_who} people, {len(objects)} of {all_objects} objects)"
        )
    return (
        alt.Chart(cells, title=title)
        .mark_rect()
        .encode(
            x=alt.X(
                "object:N",
                sort=objects,
                title="object",
                axis=alt.Axis(labelAngle=-45, labelLimit=220),
            ),
            y=alt.Y("who:N", sort=who, title="who", axis=alt.Axis(labelLimit=220)),
            color=alt.Color(
                "count:Q", scale=alt.Scale(scheme="blues", zero=True), title="accesses"
            ),
            tooltip=["who:N", "object:N", "count:Q", "kinds:N", "failures:Q", "sensitive:N"],
        )
    )


def object_history(
    access: pl.DataFrame, obj: str, max_points: int = 2000, max_who: int = 30
) -> alt.Chart | None:
    """Timeline of accesses to one object: one row per who, color by access kind, shape by
    outcome. Points are exact times when few, else counts per time bucket (size = count)."""
    rows = access.filter((pl.col("object") == obj) & pl.col("time").is_not_null())
    if rows.is_empty():
        return None
    rows = rows.with_columns(WHO)
    who = _top(rows, "who", max_who)
    rows = rows.with_columns(
        pl.when(pl.col("who").is_in(who)).then(pl.col("who")).otherwise(pl.lit("(others)"))
    )
    keys = ["who", "access", "outcome"]
    columns = pl.col("column").drop_nulls().unique().sort().head(10).str.join(", ")
    points = rows.group_by("time", *keys).agg(pl.len().alias("count"), columns.alias("columns"))
    label: str | None = None
    if points.height > max_points:
        # Too many instants: count per time bucket, coarser buckets until the points fit.
        for buckets in (max_points // 10, max_points // 40, max_points // 200, 1):
            points, label = _per_bucket(rows, keys, buckets, columns.alias("columns"))
            if points.height <= max_points:
                break
    points = _with_when(points.sort("time", *keys))
    title = f"Accesses to {obj}" + (f" (per {label})" if label else "")
    return (
        alt.Chart(points, title=title, width=TIME_WIDTH)
        .mark_point(filled=True, opacity=0.8)
        .encode(
            x=time_x(points["time"]),
            y=alt.Y("who:N", sort=[*who, "(others)"], title="who", axis=alt.Axis(labelLimit=220)),
            color=alt.Color("access:N", scale=ACCESS_COLORS, title="access"),
            shape=alt.Shape("outcome:N", scale=alt.Scale(domain=list(OUTCOMES)), title="outcome"),
            size=alt.Size(
                "count:Q", title="accesses", scale=alt.Scale(range=[30, 300], zero=False)
            ),
            tooltip=["when:N", "who:N", "access:N", "outcome:N", "count:Q", "columns:N"],
        )
    )


def activity_timeline(events: pl.DataFrame, max_buckets: int = 300) -> alt.Chart | None:
    """Events per time bucket (the finest of minute … year giving ≤ ``max_buckets``), stacked
    by category."""
    if events.filter(pl.col("time").is_not_null()).is_empty():
        return None
    counts, label = _per_bucket(events, ["category"], max_buckets)
    counts = _with_when(counts)
    return (
        alt.Chart(counts, title=f"Events per {label} by category", width=TIME_WIDTH)
        .mark_bar()
        .encode(
            x=time_x(counts["time"]),
            y=alt.Y("count:Q", stack=True, title="events", axis=COUNT_AXIS),
            color=alt.Color("category:N", scale=CATEGORY_COLORS, title="category"),
            tooltip=["when:N", "category:N", "count:Q"],
        )
    )


def failures_chart(events: pl.DataFrame, max_buckets: int = 200) -> alt.Chart | None:
    """Failed events per time bucket, stacked by category; tooltips name the commonest error."""
    failed = events.filter((pl.col("outcome") == "failure") & pl.col("time").is_not_null())
    if failed.is_empty():
        return None
    top_error = pl.col("error").drop_nulls().mode().sort().first().alias("top_error")
    counts, label = _per_bucket(failed, ["category"], max_buckets, top_error)
    counts = _with_when(counts)
    return (
        alt.Chart(counts, title=f"Failures per {label} by category", width=TIME_WIDTH)
        .mark_bar(color="#d62728")
        .encode(
            x=time_x(counts["time"]),
            y=alt.Y("count:Q", stack=True, title="failed events", axis=COUNT_AXIS),
            color=alt.Color("category:N", scale=CATEGORY_COLORS, title="category"),
            tooltip=["when:N", "category:N", "count:Q", "top_error:N"],
        )
    )


def counts_chart(
    frame: pl.DataFrame, by: str, color: str = "outcome", max_bars: int = 30
) -> alt.Chart | None:
    """Horizontal bars: rows per value of ``by`` (the ``max_bars`` largest), split by ``color``."""
    if frame.is_empty():
        return None
    values = _top(frame, by, max_bars)
    counts = frame.filter(pl.col(by).is_in(values)).group_by(by, color).len("count").sort(by, color)
    scale = OUTCOME_COLORS if color == "outcome" else alt.Undefined
    return (
        alt.Chart(counts, title=f"Events by {by}")
        .mark_bar()
        .encode(
            y=alt.Y(f"{by}:N", sort=values, title=by),
            x=alt.X("count:Q", stack=True, title="events", axis=COUNT_AXIS),
            color=alt.Color(f"{color}:N", scale=scale, title=color),
            tooltip=[f"{by}:N", f"{color}:N", "count:Q"],
        )
    )


def ingest_span_chart(
    files: pl.DataFrame, by: str = "path", max_rows: int = 50
) -> alt.Chart | alt.LayerChart | None:
    """Time span covered by each input file (``by="path"``) or each format (``by="format"``),
    from first to last event; the ``max_rows`` with the most events are drawn."""
    spans = files.filter(pl.col("first_time").is_not_null() & pl.col("last_time").is_not_null())
    if spans.is_empty():
        return None
    if by == "format":
        spans = (
            spans.group_by("format")
            .agg(
                pl.col("first_time").min(),
                pl.col("last_time").max(),
                pl.col("events").sum(),
                pl.len().alias("files"),
            )
            .with_columns(pl.col("format").alias("label"), pl.col("format").alias("path"))
        )
    else:
        prefix = _common_folder(spans["path"].to_list())
        spans = spans.with_columns(
            pl.col("path").str.strip_prefix(prefix).str.strip_prefix("/").alias("label"),
            pl.lit(1).alias("files"),
        )
    total = spans.height
    spans = spans.sort(["events", "label"], descending=[True, False], nulls_last=True).head(
        max_rows
    )
    spans = spans.select(
        "label",
        "path",
        "format",
        "events",
        "files",
        "first_time",
        "last_time",
        _utc_text(spans, "first_time").alias("from"),
        _utc_text(spans, "last_time").alias("to"),
    )
    title = "Time covered per " + ("file" if by != "format" else "format")
    if total > spans.height:
        title += f" (the {spans.height} of {total} with most events)"
    base = alt.Chart(spans, title=title, width=TIME_WIDTH).encode(
        y=alt.Y("label:N", sort=spans["label"].to_list(), title=by, axis=alt.Axis(labelLimit=260)),
        color=alt.Color("format:N", title="format"),
        tooltip=["path:N", "format:N", "events:Q", "files:Q", "from:N", "to:N"],
    )
    x = time_x(pl.concat([spans["first_time"], spans["last_time"]]), "first_time")
    # A rule plus end points, so a file whose events share one instant still shows.
    return alt.layer(
        base.mark_rule(strokeWidth=6).encode(x=x, x2="last_time:T"),
        base.mark_point(filled=True, size=40).encode(x=x),
        base.mark_point(filled=True, size=40).encode(x=alt.X("last_time:T", scale=UTC_SCALE)),
    )


def _common_folder(paths: list[str]) -> str:
    """The folder all ``paths`` share ('' when none); used to shorten labels."""
    try:
        common = os.path.commonpath(paths)
    except ValueError:
        return ""
    return os.path.dirname(common) if common in paths else common


SEVERITY_COLORS = alt.Scale(
    domain=["low", "medium", "high"], range=["#9e9e9e", "#ff7f0e", "#d62728"]
)


def findings_timeline(
    events: pl.DataFrame, findings: pl.DataFrame, max_buckets: int = 300, max_findings: int = 500
) -> alt.LayerChart | alt.Chart | None:
    """Events per time bucket (grey bars) with the findings marked: one rule per finding at its
    time, coloured by severity, the reason in the tooltip (the ``max_findings`` most severe)."""
    timed = events.filter(pl.col("time").is_not_null())
    if timed.is_empty() and findings.is_empty():
        return None
    counts, label = _per_bucket(timed, [], max_buckets)
    counts = _with_when(counts)
    x = time_x(pl.concat([timed["time"], findings["time"].drop_nulls()]))
    bars = alt.Chart(counts, title=f"Events per {label}, findings marked",
                     width=TIME_WIDTH).mark_bar(color="#c7c7c7").encode(
        x=x, y=alt.Y("count:Q", title="events", axis=COUNT_AXIS),
        tooltip=["when:N", "count:Q"],
    )
    if findings.is_empty():
        return bars
    rank = pl.col("severity").replace_strict({"high": 0, "medium": 1, "low": 2}, default=3)
    marks = _with_when(
        findings.filter(pl.col("time").is_not_null())
        .sort(rank, "time").head(max_findings)
        .sort(rank, descending=True)  # drawn last, on top: the most severe
        .select("time", "severity", "detector", WHO,
                reason=pl.col("reason").str.slice(0, 200))
    )
    base = alt.Chart(marks).encode(
        x=alt.X("time:T", scale=UTC_SCALE),
        color=alt.Color("severity:N", scale=SEVERITY_COLORS, title="finding"),
        tooltip=["when:N", "severity:N", "detector:N", "who:N", "reason:N"],
    )
    return alt.layer(
        bars,
        base.mark_rule(strokeWidth=1.5, opacity=0.7),
        base.mark_point(filled=True, size=60).encode(y=alt.value(6)),
    )


def person_timeline_chart(actions: pl.DataFrame, max_points: int = MAX_POINTS
                          ) -> alt.Chart | None:
    """One mark per logical action of a timeline (``auditkit.timeline``): time across, the
    identity it used down (gateway user, database role, cloud session), colour the category,
    hollow when the engine record was reached around the gateway with no person of its own."""
    if actions.is_empty():
        return None
    marks = _with_when(actions.head(max_points).select(
        "time", "category", "outcome",
        identity=pl.col("identities").list.first().str.slice(0, 60),
        how=pl.col("how").fill_null("-"),
        sources=pl.col("sources").list.join(" + "),
        what=pl.coalesce(pl.col("statement").str.slice(0, 160), "action"),
    ))
    return alt.Chart(marks, title="Actions by the identity they used", width=TIME_WIDTH).mark_point(
        filled=True, size=70
    ).encode(
        x=time_x(marks["time"]),
        y=alt.Y("identity:N", title=None, sort=_top(marks, "identity", 50)),
        color=alt.Color("category:N", scale=CATEGORY_COLORS),
        shape=alt.Shape("outcome:N"),
        tooltip=["when:N", "identity:N", "sources:N", "category:N", "outcome:N", "how:N",
                 "what:N"],
    )


def gateway_share_chart(share: pl.DataFrame) -> alt.Chart | None:
    """Engine statements per database by path (``auditkit.coverage.gateway_share``): through the
    gateway, the gateway's own account, direct, or a database the gateway does not front."""
    if share.is_empty():
        return None
    paths = ["gateway", "gateway_account", "direct", "not_fronted"]
    long = share.select(pl.col("database").fill_null("(none)"), *paths).unpivot(
        index="database", on=paths, variable_name="path", value_name="statements"
    ).filter(pl.col("statements") > 0)
    return alt.Chart(long, title="Engine statements by path", width=TIME_WIDTH).mark_bar().encode(
        y=alt.Y("database:N", title=None),
        x=alt.X("statements:Q", stack="normalize", title="share of statements",
                axis=alt.Axis(format="%")),
        color=alt.Color("path:N", scale=alt.Scale(
            domain=paths, range=["#4c9a2a", "#9ecae1", "#d62728", "#c7c7c7"])),
        tooltip=["database:N", "path:N", "statements:Q"],
    )


def stream_activity_chart(events: pl.DataFrame, max_buckets: int = 200,
                          max_streams: int = 30) -> alt.Chart | None:
    """Events per time bucket of each stream (source @ target): a blank stretch in a row is a
    time that stream recorded nothing (``auditkit.coverage`` says which ones are unusual)."""
    timed = events.filter(pl.col("time").is_not_null()).with_columns(
        stream=pl.concat_str(pl.col("source").fill_null("?"), pl.col("target").fill_null(""),
                             separator="@")
    )
    if timed.is_empty():
        return None
    keep = _top(timed, "stream", max_streams)
    counts, label = _per_bucket(timed.filter(pl.col("stream").is_in(keep)), ["stream"],
                                max_buckets)
    counts = _with_when(counts)
    return alt.Chart(counts, title=f"Events per {label} of each stream",
                     width=TIME_WIDTH).mark_rect().encode(
        x=time_x(counts["time"]),
        y=alt.Y("stream:N", title=None, sort=keep),
        color=alt.Color("count:Q", scale=alt.Scale(type="log", scheme="greens"), title="events"),
        tooltip=["when:N", "stream:N", "count:Q"],
    )
