"""Anomaly detectors: findings that explain themselves.

Each detector is a small function ``(ctx: Context) -> findings`` registered with
``@detector(name)`` (see ``auditkit/findings.py``); ``auditkit.findings.find(events)`` runs them
all. A finding names who (``person``/``actor``), when, how severe, one human sentence saying why
(numbers and times in UTC), and the ``event_ids`` that are its evidence::

    from auditkit.findings import find
    find(events)            # every detector, settings from auditkit/data/findings.yml
    find(events, "my.yml")  # thresholds, working hours, allow-lists overridden

Detectors and what they look at (settings and severity rules: ``docs/findings.md``):

- ``first_seen``: a person/account touching an object or sensitive column for the first time;
- ``exports``: exports (``COPY TO``, ``INTO OUTFILE``, gateway and cloud exports) and bulk reads;
- ``volume``: a day's statements or rows far above the person's own days (robust z-score);
- ``off_hours``: activity outside working hours *and* outside the person's own usual hours;
- ``privilege``: GRANTs, superuser attributes, new roles, IAM policy changes;
- ``failed_logins``: bursts of failed logins from one address, then a success from it;
- ``schema_change``: DDL outside change windows or without an approval;
- ``audit_tampering``: auditing switched off or changed (pgaudit, server_audit, cloud);
- ``cloud_risk``: the high-risk cloud actions the catalogue marks (``extra.risk``);
- ``new_source``: a new source address or client application for an account.

Learning: findings that compare with a person's past (first seen, new source, volume, usual hours)
learn from the *baseline*: events before ``detect_from`` when it is given, else the first
``baseline.days`` of the data. Everything is computed over whole columns (group_by, joins, list
expressions); reasons are assembled with ``pl.format`` over columns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from auditkit.classify import load_classification
from auditkit.findings import Context, detector
from auditkit.schema import CATEGORIES

WHO = pl.coalesce("person", "actor")
ANOMALY_DETECTORS = ("first_seen", "exports", "volume", "off_hours", "privilege", "failed_logins",
                     "schema_change", "audit_tampering", "cloud_risk", "new_source")
"""The detectors this module registers (coverage.py registers the others)."""
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# events that are somebody's doing (system processes and unattributed lines are not)
PEOPLE_TYPES_EXCLUDED = ("system",)

# ---------------------------------------------------------------------------- text helpers


def thousands(value: pl.Expr) -> pl.Expr:
    """An integer as text with thousands separators: 48210 -> ``48,210``."""
    return (
        value.cast(pl.Int64).cast(pl.String).str.reverse()
        .str.replace_all(r"(\d{3})", "$1,").str.reverse()
        .str.strip_chars_start(",").str.replace(r"^-,", "-")
    )


def rows_text(rows: pl.Expr) -> pl.Expr:
    """``1 row``, ``48,210 rows``."""
    return pl.when(rows == 1).then(pl.lit("1 row")).otherwise(thousands(rows) + pl.lit(" rows"))


def short_error(error: pl.Expr, max_chars: int = 80) -> pl.Expr:
    """The head of an error message (``AccessDenied: User: arn:… is not…`` → ``AccessDenied``)."""
    return clip(error.str.split(": ").list.first(), max_chars)


def hhmm(time: pl.Expr) -> pl.Expr:
    """``02:14 UTC``."""
    return time.dt.convert_time_zone("UTC").dt.to_string("%H:%M UTC")


def at_time(time: pl.Expr) -> pl.Expr:
    """``02:14 UTC on 2026-11-06``."""
    return time.dt.convert_time_zone("UTC").dt.to_string("%H:%M UTC on %Y-%m-%d")


def clip(text: pl.Expr, max_chars: int = 160) -> pl.Expr:
    """A statement for a sentence: leading comments dropped, whitespace collapsed, cut."""
    flat = (
        text.str.replace_all(r"(?s)^\s*(/\*.*?\*/\s*)+", "")
        .str.replace_all(r"\s+", " ").str.strip_chars().str.strip_chars_end(";")
    )
    return (
        pl.when(flat.str.len_chars() > max_chars)
        .then(flat.str.slice(0, max_chars) + pl.lit("…"))
        .otherwise(flat)
    )


def clauses(*parts: pl.Expr) -> pl.Expr:
    """Optional clauses (null when absent) joined by ``, ``; empty text when none."""
    if not parts:
        return pl.lit("")
    return pl.concat_str(list(parts), separator=", ", ignore_nulls=True).fill_null("")


def sentence(base: pl.Expr, *notes: pl.Expr) -> pl.Expr:
    """``base`` + ``, note, note`` + ``.``."""
    joined = clauses(*notes)
    return base + pl.when(joined != "").then(pl.lit(", ") + joined).otherwise(pl.lit("")) + "."


def _hours_text(start: int, end: int, tz: str) -> str:
    zone = "UTC" if tz in ("UTC", "Etc/UTC") else tz
    return f"{start:02d}–{end:02d} {zone}"


def _days_text(days: list[int]) -> str:
    days = sorted(set(days))
    if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{DAY_NAMES[days[0]]}–{DAY_NAMES[days[-1]]}"
    return ", ".join(DAY_NAMES[d] for d in days)


# ---------------------------------------------------------------------------- shared context


def statement_group() -> pl.Expr:
    """The logical statement an event belongs to: the source's statement group
    (``extra.stmt_group``: pgaudit's substatements, MariaDB's TABLE rows and QUERY) within its
    session, else the event itself. (A group never spans sessions; keying by session too keeps
    two sessions apart when a source's group key repeats, as pgaudit's does when PostgreSQL
    reuses a backend pid.)"""
    return pl.concat_str(
        pl.col("session_id").fill_null(""), pl.lit("|"),
        pl.coalesce(pl.col("extra").str.json_path_match("$.stmt_group"), pl.col("event_id")),
    )


def _memo(ctx: Context, key: str, build: Any) -> Any:
    """Compute a shared frame once per Context (detectors run on the same one)."""
    store = ctx.__dict__.setdefault("_anomaly_memo", {})
    if key not in store:
        store[key] = build()
    return store[key]


def baseline_end(ctx: Context) -> dt.datetime | None:
    """End of the learning window: ``detect_from``, else the first event + ``baseline.days``."""
    if ctx.detect_from is not None:
        return ctx.detect_from
    first = ctx.events["time"].min() if ctx.events.height else None
    if first is None:
        return None
    days = float((ctx.settings.get("baseline") or {}).get("days", 1))
    return first + dt.timedelta(days=days)


def _allowed(cfg: dict[str, Any]) -> pl.Expr:
    """Not on the allow-lists (``allow_actors``, ``allow_src_ips``) of a detector's settings."""
    keep = pl.lit(True)
    if cfg.get("allow_actors"):
        names = [str(a) for a in cfg["allow_actors"]]
        keep = keep & ~(pl.col("actor").is_in(names).fill_null(False)
                        | pl.col("person").is_in(names).fill_null(False))
    if cfg.get("allow_src_ips"):
        keep = keep & ~pl.col("src_ip").is_in([str(a) for a in cfg["allow_src_ips"]]).fill_null(
            False)
    return keep


def _working(cfg: dict[str, Any]) -> tuple[pl.Expr, pl.Expr, str]:
    """(local hour, is a working day, description) under the ``working_hours`` settings."""
    hours = cfg.get("working_hours") or {}
    start, end = int(hours.get("start", 8)), int(hours.get("end", 19))
    tz = str(hours.get("tz", "UTC"))
    days = [int(d) for d in hours.get("days", [0, 1, 2, 3, 4])]
    local = pl.col("time").dt.convert_time_zone(tz)
    weekday = local.dt.weekday() - 1  # polars: Monday = 1
    text = f"working hours {_hours_text(start, end, tz)} {_days_text(days)}"
    return local.dt.hour(), weekday.is_in(days), text


def activity(ctx: Context) -> pl.DataFrame:
    """Events done by someone, with per-event context shared by the detectors.

    Columns added: ``who`` (person, else account), ``local_hour``, ``local_day``, ``workday``,
    ``in_configured`` (inside working hours on a working day), ``usual_hour`` (the hour is one
    ``who`` was active in on at least ``off_hours.usual_min_days`` other days, and on a
    non-working day only if ``who`` was active on another non-working day), ``off_hours``
    (outside both), ``ip_first``/``new_ip`` (first time ``who`` used this address, after the
    baseline, with earlier history, within a day of it). The usual hours as text:
    :func:`usual_hours`.
    """
    return _memo(ctx, "activity", lambda: _activity(ctx))


def _activity(ctx: Context) -> pl.DataFrame:
    cfg = ctx.config("off_hours")
    hour, workday, _ = _working(cfg)
    hours = cfg.get("working_hours") or {}
    start, end = int(hours.get("start", 8)), int(hours.get("end", 19))
    tz = str(hours.get("tz", "UTC"))
    min_days = int(cfg.get("usual_min_days", 1))
    in_learn = pl.lit(True) if ctx.detect_from is None else pl.col("time") < ctx.detect_from
    ev = ctx.events.filter(
        WHO.is_not_null() & ~pl.col("actor_type").is_in(PEOPLE_TYPES_EXCLUDED).fill_null(False)
    ).with_columns(
        who=WHO,
        local_hour=hour,
        local_day=pl.col("time").dt.convert_time_zone(tz).dt.date(),
        workday=workday,
        _learn=in_learn,
    ).with_columns(in_configured=pl.col("workday") & pl.col("local_hour").is_between(
        start, end, closed="left"))
    # usual hours: days active in the hour (in the baseline), the event's own day discounted;
    # a day off is usual only when who was active on another day off
    learn_day = pl.col("local_day").filter(pl.col("_learn"))
    rest_day = pl.col("local_day").filter(pl.col("_learn") & ~pl.col("workday"))
    own = pl.col("_learn").cast(pl.Int32)
    ev = ev.with_columns(
        hour_usual=learn_day.n_unique().over("who", "local_hour") - own >= min_days,
        _other_rest=rest_day.n_unique().over("who") - (own * (~pl.col("workday")).cast(pl.Int32)),
    ).with_columns(
        off_hours=~pl.col("in_configured") & ~(
            pl.col("hour_usual") & (pl.col("workday") | (pl.col("_other_rest") >= 1)))
    )
    # addresses: first use per who, and whether who had history before it
    end_baseline = baseline_end(ctx)
    window = dt.timedelta(hours=float(ctx.config("new_source").get("new_for_hours", 24)))
    ip_first = pl.col("time").min().over("who", "src_ip")
    new_ip = (
        pl.col("src_ip").is_not_null()
        & (pl.col("ip_first") > pl.col("time").min().over("who"))
        & (pl.col("time") - pl.col("ip_first") <= window)
    )
    if end_baseline is not None:
        new_ip = new_ip & (pl.col("ip_first") >= end_baseline)
    return ev.with_columns(ip_first=ip_first).with_columns(
        new_ip=new_ip.fill_null(False)).drop("_learn", "_other_rest")


def usual_hours(ctx: Context) -> pl.DataFrame:
    """``who`` → ``usual_hours`` (text) from the baseline; small, joined onto findings."""
    def build() -> pl.DataFrame:
        cfg = ctx.config("off_hours")
        tz = str((cfg.get("working_hours") or {}).get("tz", "UTC"))
        act = activity(ctx)
        learn = act if ctx.detect_from is None else act.filter(pl.col("time") < ctx.detect_from)
        return _usual_hours_text(learn, int(cfg.get("usual_min_days", 1)) + 1, tz)

    return _memo(ctx, "usual_hours", build)


def _with_usual(ctx: Context, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (with ``who``) with the ``usual_hours`` text column."""
    return frame.join(usual_hours(ctx), on="who", how="left")


def _with_usual_of(ctx: Context) -> Any:
    return lambda frame: _with_usual(ctx, frame)


def _usual_hours_text(learn: pl.DataFrame, min_days: int, tz: str) -> pl.DataFrame:
    """Per who, the usual hours as ranges (``09–18 UTC``); ``min_days`` distinct days needed."""
    zone = "UTC" if tz in ("UTC", "Etc/UTC") else tz
    hours = (
        learn.group_by("who", "local_hour").agg(_days=pl.col("local_day").n_unique())
        .filter(pl.col("_days") >= min_days)
        .sort("who", "local_hour")
        .with_columns(_run=pl.col("local_hour") - pl.col("local_hour").rank("ordinal").over("who"))
    )
    runs = hours.group_by("who", "_run").agg(
        _from=pl.col("local_hour").min(), _to=pl.col("local_hour").max() + 1
    ).sort("who", "_from").with_columns(
        _text=pl.format("{}–{}", pl.col("_from").cast(pl.String).str.zfill(2),
                        pl.col("_to").cast(pl.String).str.zfill(2))
    )
    return runs.group_by("who").agg(
        usual_hours=pl.col("_text").str.join(", ") + pl.lit(f" {zone}")
    )


def _high_label_events(ctx: Context, frame: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    """``event_id`` → ``labels`` (sorted distinct sensitivity labels of the columns it names)."""
    classification = load_classification(ctx.settings.get("classification"))
    exploded = frame.select("event_id", "columns").filter(pl.col("columns").list.len() > 0)
    exploded = exploded.explode("columns").with_columns(
        label=classification.label(pl.col("columns"))
    ).filter(pl.col("label").is_not_null())
    agg = exploded.group_by("event_id").agg(labels=pl.col("label").unique().sort())
    return agg.with_columns(
        high_label=pl.col("labels").list.eval(pl.element().is_in(labels)).list.any()
    )


def _notes(who_col: str = "who") -> dict[str, pl.Expr]:
    """Reusable clauses from :func:`activity` columns (null when they do not apply)."""
    return {
        "new_ip": pl.when(pl.col("new_ip")).then(pl.format(
            "from {}, an address never seen for {} before {}",
            "src_ip", who_col, pl.col("ip_first").dt.to_string("%Y-%m-%d %H:%M UTC"))),
        "ip": pl.when(~pl.col("new_ip") & pl.col("src_ip").is_not_null()).then(
            pl.format("from {}", "src_ip")),
        "off_hours": pl.when(pl.col("off_hours")).then(_unusual(who_col)),
    }


def _unusual(who_col: str = "who") -> pl.Expr:
    """Why the time is unusual for ``who`` (see :func:`activity`)."""
    return (
        pl.when(pl.col("usual_hours").is_null())
        .then(pl.format("with no usual hours of {} known yet", who_col))
        .when(~pl.col("hour_usual"))
        .then(pl.format("outside {}'s usual hours ({})", who_col, "usual_hours"))
        .otherwise(pl.format("on a day off, when {} is not otherwise active", who_col))
    )


def _finish(frame: pl.DataFrame, ctx: Context, name: str) -> pl.DataFrame:
    """Cap evidence lists at ``max_evidence`` (shared setting)."""
    cap = int(ctx.config(name).get("max_evidence", 1000))
    if "event_ids" in frame.columns:
        frame = frame.with_columns(pl.col("event_ids").list.head(cap))
    return frame


# ---------------------------------------------------------------------------- detectors


def _first_touch_access(ctx: Context) -> pl.DataFrame:
    """The access table of just the statements that can hold someone's first touch of
    something: the first statement of each (who, fingerprint, object, category, outcome), since
    a later statement with the same five makes the same access rows."""
    from auditkit.access import access_table
    from auditkit.schema import ACCESS_KINDS

    group = statement_group()
    events = ctx.events.with_columns(_group=group)
    if "is_export" not in events.columns:  # events enriched elsewhere (a stored .parquet)
        events = events.with_columns(is_export=pl.lit(None, pl.Boolean))
    firsts = (
        events.filter(pl.col("category").is_in(ACCESS_KINDS))
        .group_by(WHO.alias("_who"), pl.coalesce("fingerprint", "statement").alias("_fp"),
                  "object", "category", "outcome")
        .agg(pl.col("_group").sort_by("time").first())
    )
    subset = events.filter(pl.col("_group").is_in(firsts["_group"].unique().implode())).drop(
        "_group").with_columns(  # the access table groups by stmt_group: qualify it the same way
        extra=pl.col("extra").str.replace(
            '"stmt_group":"', pl.format('"stmt_group":"{}|', pl.col("session_id").fill_null("")),
            literal=True))
    return access_table(subset, load_classification(ctx.settings.get("classification")))


@detector("first_seen")
def first_seen(ctx: Context) -> pl.DataFrame:
    """First read, write or export of an object (or a sensitive column) by a person/account
    after the baseline. One finding per statement and object."""
    cfg = ctx.config("first_seen")
    end = baseline_end(ctx)
    access = _first_touch_access(ctx).filter(
        pl.col("access").is_in(cfg.get("access", ["read", "write", "export"]))
        & (pl.col("outcome") == "success") & pl.col("object").is_not_null()
    ).with_columns(who=WHO)
    if access.is_empty() or end is None:
        return access.head(0)
    classification = load_classification(ctx.settings.get("classification"))
    # columns count only when sensitive; everything else is judged at table level
    access = access.with_columns(
        label=classification.label(pl.concat_str("object", pl.lit("."), "column")),
    ).with_columns(
        column=pl.when(pl.col("label").is_not_null()).then(pl.col("column")),
    )
    ignore = list(cfg.get("ignore_objects", []))
    if ignore:
        access = access.filter(~pl.col("object").str.contains("|".join(f"(?:{p})" for p in ignore)))
    who_first = activity(ctx).group_by("who").agg(_who_first=pl.col("time").min())
    firsts = (
        access.group_by("who", "object", "column")
        .agg(pl.all().sort_by("time").first())
        .join(who_first, on="who")
        .filter((pl.col("time") >= end) & (pl.col("time") > pl.col("_who_first")))
    )
    # one finding per statement (event) and object: its new columns together
    high_labels = list(cfg.get("high_labels", []))
    grouped = firsts.group_by("event_id", "object").agg(
        pl.col("who", "person", "actor", "source", "database", "time", "access").first(),
        new_columns=pl.col("column").drop_nulls().sort(),
        labels=pl.col("label").drop_nulls().unique().sort(),
    )
    act = activity(ctx).filter(pl.col("event_id").is_in(grouped["event_id"].implode())).select(
        "event_id", "src_ip", "rows", "new_ip", "ip_first", "off_hours", "hour_usual")
    found = grouped.join(act.unique("event_id"), on="event_id", how="left").with_columns(
        pl.col("new_ip", "off_hours").fill_null(False)).pipe(_with_usual_of(ctx))
    bulk = int(cfg.get("bulk_rows", 10000))
    high_label = pl.col("labels").list.eval(pl.element().is_in(high_labels)).list.any()
    risky_context = pl.col("new_ip") | pl.col("off_hours") | (pl.col("rows") >= bulk).fill_null(
        False)
    what = (
        pl.when(pl.col("new_columns").list.len() > 0)
        .then(pl.format("{}.{}", "object", pl.col("new_columns").list.join(", ")))
        .otherwise(pl.col("object"))
    )
    verb = pl.col("access").replace_strict(
        {"read": "read", "write": "wrote to", "export": "exported"}, default="touched")
    notes = _notes()
    details = clauses(
        pl.when(pl.col("rows").is_not_null()).then(rows_text(pl.col("rows"))),
        pl.when(pl.col("labels").list.len() > 0).then(
            pl.format("sensitive data ({})", pl.col("labels").list.join(", "))),
        notes["off_hours"], notes["new_ip"],
    )
    reason = pl.format("{} {} {} for the first time at {}", "who", verb, what,
                       at_time(pl.col("time"))) + pl.when(details != "").then(
        pl.lit(": ") + details).otherwise(pl.lit("")) + pl.lit(".")
    out = found.select(
        "time", "person", "actor", "source", "database", "object", "src_ip",
        severity=pl.when(high_label & risky_context).then(pl.lit("high"))
        .when(pl.col("labels").list.len() > 0).then(pl.lit("medium"))
        .otherwise(pl.lit("low")),
        reason=reason,
        event_ids=pl.concat_list("event_id"),
    )
    return _finish(out, ctx, "first_seen")


_EXPORT_HOW = (
    (r"(?is)\bCOPY\b.*\bTO\s+STDOUT", pl.lit("COPY TO STDOUT")),
    (r"(?is)\bCOPY\b.*\bTO\s+PROGRAM", pl.lit("COPY TO PROGRAM")),
    (r"(?is)\bCOPY\b.*\bTO\s+'", pl.format(
        "COPY TO '{}'", pl.col("statement").str.extract(r"(?is)\bTO\s+'([^']*)'", 1))),
    (r"(?is)\bINTO\s+(OUT|DUMP)FILE\s+'", pl.format(
        "SELECT INTO OUTFILE '{}'",
        pl.col("statement").str.extract(r"(?is)\bINTO\s+(?:OUT|DUMP)FILE\s+'([^']*)'", 1))),
)


def _export_how() -> pl.Expr:
    expr = pl.when(pl.col("source") == "bytebase").then(
        pl.format("a Bytebase export ({})", "action"))
    for pattern, text in _EXPORT_HOW:
        expr = expr.when(pl.col("statement").str.contains(pattern)).then(text)
    return expr.otherwise(pl.col("action"))


@detector("exports")
def exports(ctx: Context) -> pl.DataFrame:
    """Exports (``COPY … TO``, ``INTO OUTFILE``, gateway exports, cloud snapshot exports) and
    bulk reads (``rows`` ≥ ``bulk_rows`` in one statement). One finding per statement."""
    cfg = ctx.config("exports")
    bulk = int(cfg.get("bulk_rows", 10000))
    ev = activity(ctx).filter(_allowed(cfg))
    group = statement_group()
    is_export = (pl.col("category") == "export") | pl.col("is_export").fill_null(False) if (
        "is_export" in ev.columns) else (pl.col("category") == "export")
    candidates = ev.filter(
        pl.col("category").is_in(["read", "export"]) & (pl.col("outcome") != "failure")
    ).with_columns(_group=group, _export=is_export)
    # only statements with an export record or a bulk row count (most reads are neither)
    hits = candidates.filter(pl.col("_export") | (pl.col("rows") >= bulk).fill_null(False))
    candidates = candidates.filter(pl.col("_group").is_in(hits["_group"].unique().implode()))
    per = candidates.group_by("_group").agg(
        pl.col("time").min(),
        pl.col("who", "person", "actor", "source", "database", "src_ip", "new_ip", "ip_first",
               "off_hours", "hour_usual").first(),
        object=pl.col("object").drop_nulls().first(),
        statement=pl.col("statement").drop_nulls().first(),
        action=pl.col("action").filter(pl.col("category") == "export").first(),
        rows=pl.col("rows").max(),
        exported=pl.col("_export").any(),
        sensitive=pl.col("sensitive").fill_null(False).any(),
        event_ids=pl.col("event_id"),
    ).filter(pl.col("exported") | (pl.col("rows") >= bulk).fill_null(False))
    if per.is_empty():
        return per
    flagged = candidates.filter(pl.col("_group").is_in(per["_group"].implode()))
    labels = _high_label_events(
        ctx, flagged.select("_group", "event_id", "columns"), []
    ).join(flagged.select("_group", "event_id"), on="event_id").group_by("_group").agg(
        labels=pl.col("labels").list.explode().unique().sort())
    per = per.join(labels, on="_group", how="left").with_columns(
        pl.col("labels").fill_null(pl.lit([], pl.List(pl.String)))).pipe(
        lambda f: _with_usual(ctx, f))
    how = _export_how()
    rows_text = pl.when(pl.col("rows").is_not_null() & (pl.col("rows") > 0)).then(
        pl.format("{} rows of {}", thousands(pl.col("rows")), pl.col("object").fill_null("data"))
    ).otherwise(pl.format("{} (row count not recorded)", pl.col("object").fill_null("data")))
    notes = _notes()
    base = pl.when(pl.col("exported")).then(
        pl.format("{} exported {} at {} with {}", "who", rows_text, at_time(pl.col("time")),
                  how.fill_null("an export"))
    ).otherwise(
        pl.format("{} read {} in one statement at {}", "who", rows_text, at_time(pl.col("time")))
    )
    reason = sentence(
        base, notes["new_ip"], notes["ip"],
        pl.when(pl.col("labels").list.len() > 0).then(
            pl.format("including sensitive columns ({})", pl.col("labels").list.join(", "))),
        notes["off_hours"],
    )
    risky = (
        pl.col("sensitive") | pl.col("new_ip") | pl.col("off_hours")
        | (pl.col("rows") >= bulk).fill_null(False)
    )
    out = per.with_columns(statement=pl.col("statement").fill_null(""), action=pl.coalesce(
        "action", pl.lit("export"))).select(
        "time", "person", "actor", "source", "database", "object", "src_ip", "event_ids",
        severity=pl.when(risky).then(pl.lit("high")).otherwise(pl.lit("medium")),
        reason=reason,
    )
    return _finish(out, ctx, "exports")


@detector("volume")
def volume(ctx: Context) -> pl.DataFrame:
    """A day's statement count (or rows) per person far above that person's own days.

    Robust z-score: (day − median) / (1.4826 × MAD), the scale floored at ``min_scale_fraction``
    of the median (and 1); the baseline days are those before ``detect_from`` (else all days:
    the median and MAD barely move for one outlier)."""
    cfg = ctx.config("volume")
    z_min = float(cfg.get("z_threshold", 4.0))
    ratio = float(cfg.get("min_ratio", 3.0))
    min_days = int(cfg.get("min_baseline_days", 3))
    floors = {"statements": int(cfg.get("min_statements", 50)), "rows": int(cfg.get("min_rows",
                                                                                    10000))}
    ev = activity(ctx).filter(
        _allowed(cfg) & pl.col("category").is_in(["read", "write", "export", "schema",
                                                  "permission"]))
    group = statement_group()
    statements = ev.with_columns(_group=group).group_by("_group").agg(
        pl.col("who", "person", "actor", "local_day", "time").first(),
        rows=pl.col("rows").max(), event_id=pl.col("event_id").first())
    keys = ("who", "local_day")
    # statements: the day's first statement is its time, its statements in order the evidence;
    # rows: the statement moving the most rows is its time, the biggest ones first the evidence
    by_statements = statements.group_by(keys).agg(
        pl.col("person", "actor").first(), time=pl.col("time").min(), value=pl.len(),
        event_ids=pl.col("event_id").sort_by("time"), metric=pl.lit("statements"))
    by_rows = statements.filter(pl.col("rows").is_not_null()).group_by(keys).agg(
        pl.col("person", "actor").first(), time=pl.col("time").sort_by("rows").last(),
        value=pl.col("rows").sum(),
        event_ids=pl.col("event_id").sort_by("rows", descending=True), metric=pl.lit("rows"))
    long = pl.concat([by_statements, by_rows], how="vertical_relaxed").with_columns(
        pl.col("value").cast(pl.Float64))
    learn = long if ctx.detect_from is None else long.filter(pl.col("time") < ctx.detect_from)
    stats = learn.group_by("who", "metric").agg(
        median=pl.col("value").median(), n_days=pl.len(),
        mad=(pl.col("value") - pl.col("value").median()).abs().median(),
    )
    frac = float(cfg.get("min_scale_fraction", 0.1))
    scored = long.join(stats, on=["who", "metric"], how="inner").with_columns(
        scale=pl.max_horizontal(1.4826 * pl.col("mad"), frac * pl.col("median"), pl.lit(1.0))
    ).with_columns(z=(pl.col("value") - pl.col("median")) / pl.col("scale"))
    floor = pl.col("metric").replace_strict(floors, return_dtype=pl.Float64)
    hits = scored.filter(
        (pl.col("n_days") >= min_days) & (pl.col("z") >= z_min)
        & (pl.col("value") >= floor) & (pl.col("value") >= ratio * pl.col("median"))
    )
    noun = pl.when(pl.col("metric") == "rows").then(pl.lit("rows")).otherwise(
        pl.lit("statements"))
    verb = pl.when(pl.col("metric") == "rows").then(pl.lit("'s statements returned or changed"))\
        .otherwise(pl.lit(" ran"))
    reason = pl.format(
        "{}{} {} {} on {}, {}× the median of {}'s days ({}; robust z-score {} over {} days).",
        "who", verb, thousands(pl.col("value")), noun, pl.col("local_day").cast(pl.String),
        (pl.col("value") / pl.col("median").clip(lower_bound=1)).round(1).cast(pl.String),
        "who", thousands(pl.col("median").round(0)), pl.col("z").round(1).cast(pl.String),
        pl.col("n_days").cast(pl.String),
    )
    out = hits.select(
        "time", "person", "actor", "event_ids",
        severity=pl.when(pl.col("value") >= float(cfg.get("high_ratio", 10.0)) * pl.col("median"))
        .then(pl.lit("high")).otherwise(pl.lit(str(cfg.get("severity", "medium")))),
        reason=reason,
    )
    return _finish(out, ctx, "volume")


@detector("off_hours")
def off_hours(ctx: Context) -> pl.DataFrame:
    """Activity outside the configured working hours *and* outside the person's own usual
    hours; one finding per person and local day."""
    cfg = ctx.config("off_hours")
    _, _, hours_text = _working(cfg)
    min_events = int(cfg.get("min_events", 1))
    ev = activity(ctx).filter(pl.col("off_hours") & _allowed(cfg))
    if ev.is_empty():
        return ev.head(0)
    kinds = list(CATEGORIES)
    per = ev.sort("time").group_by("who", "local_day").agg(
        pl.col("person", "actor", "hour_usual").first(),
        source=pl.col("source").first(), database=pl.col("database").drop_nulls().first(),
        src_ip=pl.col("src_ip").drop_nulls().first(),
        time=pl.col("time").min(), last=pl.col("time").max(), n=pl.len(),
        sensitive=(pl.col("sensitive").fill_null(False)
                   & pl.col("category").is_in(["read", "export"])).any(),
        exported=(pl.col("category") == "export").any(),
        new_ip=pl.col("new_ip").any(),
        workday=pl.col("workday").first(),
        event_ids=pl.col("event_id"),
        **{f"n_{k}": (pl.col("category") == k).sum() for k in kinds},
    ).filter(pl.col("n") >= min_events).pipe(_with_usual_of(ctx))
    counts = clauses(*[
        pl.when(pl.col(f"n_{k}") > 0).then(pl.format(f"{{}} {k}", pl.col(f"n_{k}"))) for k in kinds
    ])
    span = pl.when(hhmm(pl.col("time")) == hhmm(pl.col("last"))).then(hhmm(pl.col("time")))\
        .otherwise(pl.format("{}–{}", pl.col("time").dt.convert_time_zone("UTC").dt.to_string(
            "%H:%M"), hhmm(pl.col("last"))))
    day = pl.col("time").dt.convert_time_zone("UTC").dt.to_string("%a %Y-%m-%d")
    reason = sentence(
        pl.format("{} was active at {} on {} ({} events: {}), outside {}", "who", span, day, "n",
                  counts, pl.lit(hours_text)),
        _unusual(),
        pl.when(pl.col("exported")).then(pl.lit("including an export")),
        pl.when(pl.col("sensitive") & ~pl.col("exported")).then(
            pl.lit("including reads of sensitive data")),
        pl.when(pl.col("new_ip")).then(pl.lit("from a new address")),
    )
    severity = (
        pl.when(pl.col("sensitive") | pl.col("exported")).then(pl.lit("high"))
        .when(pl.col("new_ip") | (pl.col("n") - pl.col("n_auth") > 0)).then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )
    out = per.select("time", "person", "actor", "source", "database", "src_ip", "event_ids",
                     severity=severity, reason=reason)
    return _finish(out, ctx, "off_hours")


# privilege changes: (name, regex on the statement, severity, what it does)
_ESCALATION = r"(?i)(^|[^A-Z])(SUPERUSER|BYPASSRLS|CREATEROLE|REPLICATION)\b"
_ADMIN_ROLES = (r"(?i)\bGRANT\b.*\b(rds_superuser|cloudsqlsuperuser|azure_pg_admin|pg_read_all_data"
                r"|pg_write_all_data|pg_execute_server_program|pg_write_server_files"
                r"|pg_read_server_files|db_owner|sysadmin|securityadmin|dba)\b")
_GLOBAL_GRANT = (r"(?is)\bGRANT\b.*\b(ALL(\s+PRIVILEGES)?|SUPER|FILE|PROCESS|SHUTDOWN|CREATE USER"
                 r"|RELOAD)\b.*\bON\s+\*\.\*")
_GRANT_OPTION = r"(?i)\bWITH\s+(GRANT|ADMIN)\s+OPTION\b"


@detector("privilege")
def privilege(ctx: Context) -> pl.DataFrame:
    """Permission changes: superuser-level attributes, administrative or global grants, grants
    of sensitive columns, new roles, other grants, revokes and role changes, cloud IAM
    changes (catalogued risky cloud actions are left to ``cloud_risk``)."""
    cfg = ctx.config("privilege")
    ev = activity(ctx).filter(
        (pl.col("category") == "permission") & _allowed(cfg)
        & pl.col("extra").str.json_path_match("$.risk").is_null())
    if ev.is_empty():
        return ev.head(0)
    group = statement_group()
    ev = ev.with_columns(_group=group).unique("_group", keep="first", maintain_order=True)
    labels = _high_label_events(ctx, ev, list(cfg.get("high_labels", [])))
    ev = _with_usual(ctx, ev).join(labels, on="event_id", how="left").with_columns(
        pl.col("high_label").fill_null(False))
    stmt = pl.col("statement").fill_null("")
    action = pl.col("action").fill_null("").str.to_uppercase()
    is_db = pl.col("layer").fill_null("workflow") == "workflow"
    target = pl.col("object").fill_null("").str.replace(r"^role:", "")
    ev = ev.with_columns(object=pl.col("object").replace({"global:*": "all databases (*.*)"}))
    kind = (
        pl.when(is_db & action.str.contains("ROLE|USER") & stmt.str.contains(_ESCALATION)
                & ~action.str.starts_with("DROP"))
        .then(pl.lit("superuser"))
        .when(is_db & (stmt.str.contains(_ADMIN_ROLES) | stmt.str.contains(_GLOBAL_GRANT)))
        .then(pl.lit("admin_grant"))
        .when(is_db & stmt.str.contains(_GRANT_OPTION)).then(pl.lit("grant_option"))
        .when(is_db & action.str.starts_with("GRANT") & pl.col("high_label")).then(
            pl.lit("sensitive_grant"))
        .when(is_db & action.str.contains(r"^CREATE (ROLE|USER|GROUP)")).then(pl.lit("new_role"))
        .when(is_db & action.str.starts_with("GRANT")).then(pl.lit("grant"))
        .when(~is_db).then(pl.lit("cloud_iam"))
        .otherwise(pl.lit("other"))
    )
    ev = ev.with_columns(_kind=kind)
    what = (
        pl.when(pl.col("_kind") == "superuser").then(pl.format(
            "gave superuser-level attributes ({})",
            stmt.str.extract_all(r"(?i)\b(SUPERUSER|BYPASSRLS|CREATEROLE|REPLICATION)\b")
            .list.eval(pl.element().str.to_uppercase()).list.unique().list.sort().list.join(", ")))
        .when(pl.col("_kind") == "admin_grant").then(pl.lit(
            "granted administrative or server-wide privileges"))
        .when(pl.col("_kind") == "grant_option").then(pl.lit(
            "granted privileges that can be passed on (WITH GRANT/ADMIN OPTION)"))
        .when(pl.col("_kind") == "sensitive_grant").then(pl.format(
            "granted access to sensitive columns ({}) of {}",
            pl.col("labels").list.join(", "), "object"))
        .when(pl.col("_kind") == "new_role").then(pl.format("created role {}", target))
        .when(pl.col("_kind") == "grant").then(pl.format(
            "granted privileges on {}", pl.col("object").fill_null("an object")))
        .when(pl.col("_kind") == "cloud_iam").then(pl.format(
            "changed cloud permissions ({} on {})", "action",
            pl.coalesce("object", "target", pl.lit("?"))))
        .when(action.str.starts_with("REVOKE")).then(pl.format(
            "revoked privileges on {}", pl.col("object").fill_null("an object")))
        .when(action.str.contains("ROLE|USER") & (target != "")).then(
            pl.format("changed role {}", target))
        .when(action.str.contains("ROLE|USER")).then(pl.lit("changed a role or user"))
        .otherwise(pl.format("ran {}", "action"))
    )
    failed = pl.col("outcome") == "failure"
    base = pl.when(failed).then(pl.format(
        "{} tried to change privileges and was refused ({}): {} at {}", "who",
        short_error(pl.col("error")).fill_null("refused"), what, at_time(pl.col("time")))
    ).otherwise(pl.format("{} {} at {}", "who", what, at_time(pl.col("time"))))
    notes = _notes()
    reason = sentence(
        base, notes["new_ip"], notes["ip"],
        pl.when(is_db & (stmt != "")).then(pl.format("with “{}”", clip(stmt, 140))),
        notes["off_hours"],
    )
    levels = {k: str(v) for k, v in (cfg.get("severity") or {}).items()}
    severity = pl.col("_kind").replace_strict(levels, default="low", return_dtype=pl.String)
    out = ev.select("time", "person", "actor", "source", "database", "object", "src_ip",
                    severity=severity, reason=reason, event_ids=pl.concat_list("event_id"))
    return _finish(out, ctx, "privilege")


@detector("failed_logins")
def failed_logins(ctx: Context) -> pl.DataFrame:
    """Bursts of failed logins from one address (``min_failures`` within ``window_minutes`` of
    each other), and whether a login from that address then succeeded."""
    cfg = ctx.config("failed_logins")
    min_failures = int(cfg.get("min_failures", 5))
    gap = dt.timedelta(minutes=float(cfg.get("window_minutes", 10)))
    within = dt.timedelta(minutes=float(cfg.get("success_within_minutes", 30)))
    auth = ctx.events.filter(
        (pl.col("category") == "auth") & pl.col("src_ip").is_not_null() & _allowed(cfg)
        & ~pl.col("action").fill_null("").str.to_uppercase().is_in(["LOGOUT", "DISCONNECT",
                                                                    "CONNECT"]))
    failures = auth.filter(pl.col("outcome") == "failure").sort("src_ip", "time").with_columns(
        _new=(pl.col("time").diff().over("src_ip") > gap).fill_null(True)
    ).with_columns(_burst=pl.col("_new").cum_sum().over("src_ip"))
    bursts = failures.group_by("src_ip", "_burst").agg(
        first=pl.col("time").min(), time=pl.col("time").max(), n=pl.len(),
        accounts=pl.col("actor").drop_nulls().unique().sort(),
        source=pl.col("source").first(), database=pl.col("database").drop_nulls().first(),
        event_ids=pl.col("event_id"),
    ).filter(pl.col("n") >= min_failures).sort("time")
    if bursts.is_empty():
        return bursts
    successes = auth.filter(pl.col("outcome") == "success").select(
        "src_ip", _ok_time="time", _ok_actor="actor", _ok_person="person", _ok_event="event_id",
        _ok_session="session_id").sort("_ok_time")
    joined = bursts.join_asof(
        successes, left_on="time", right_on="_ok_time", by="src_ip", strategy="forward",
        tolerance=within, check_sortedness=False)
    accounts = pl.col("accounts").list.join(", ")
    base = pl.format("{} failed logins for {} from {} between {} and {}", "n", accounts, "src_ip",
                     hhmm(pl.col("first")), at_time(pl.col("time")))
    then = pl.when(pl.col("_ok_time").is_not_null()).then(pl.format(
        "then a successful login as {} from the same address at {}",
        pl.col("_ok_actor").fill_null("?"), hhmm(pl.col("_ok_time"))))
    reason = sentence(base, then)
    out = joined.select(
        time=pl.coalesce("_ok_time", "time"),
        person=pl.col("_ok_person"),
        actor=pl.coalesce("_ok_actor", pl.col("accounts").list.first()),
        source="source", database="database", src_ip="src_ip",
        severity=pl.when(pl.col("_ok_time").is_not_null()).then(pl.lit("high"))
        .otherwise(pl.lit("medium")),
        reason=reason,
        event_ids=pl.when(pl.col("_ok_event").is_not_null())
        .then(pl.concat_list("event_ids", "_ok_event")).otherwise(pl.col("event_ids")),
    )
    return _finish(out, ctx, "failed_logins")


def _in_windows(cfg: dict[str, Any]) -> pl.Expr:
    """Whether ``time`` falls in a change window (``change_windows``; default: working hours)."""
    windows = cfg.get("change_windows")
    if not windows:
        hour, workday, _ = _working(cfg)
        hours = cfg.get("working_hours") or {}
        return workday & hour.is_between(int(hours.get("start", 8)), int(hours.get("end", 19)),
                                          closed="left")
    inside = pl.lit(False)
    for window in windows:
        tz = str(window.get("tz", (cfg.get("working_hours") or {}).get("tz", "UTC")))
        local = pl.col("time").dt.convert_time_zone(tz)
        days = [int(d) for d in window.get("days", range(7))]
        inside = inside | (
            (local.dt.weekday() - 1).is_in(days)
            & local.dt.hour().is_between(int(window.get("start", 0)), int(window.get("end", 24)),
                                         closed="left")
        )
    return inside


@detector("schema_change")
def schema_change(ctx: Context) -> pl.DataFrame:
    """DDL outside the change windows, or with no approval: an approval marker
    (``approval_patterns``) in a statement of the same session shortly before, or an
    ``approval`` event for the same database within ``approval_within_hours`` before."""
    cfg = ctx.config("schema_change")
    within = dt.timedelta(hours=float(cfg.get("approval_within_hours", 24)))
    patterns = list(cfg.get("approval_patterns", []))
    ev = activity(ctx).filter(
        (pl.col("category") == "schema") & (pl.col("outcome") != "failure") & _allowed(cfg))
    if ev.is_empty():
        return ev.head(0)
    group = statement_group()
    ev = ev.with_columns(_group=group).unique("_group", keep="first", maintain_order=True)
    marker = pl.lit(False)
    for pattern in patterns:
        marker = marker | pl.col("statement").fill_null("").str.contains(pattern)
    markers = ctx.events.filter(marker & pl.col("session_id").is_not_null()).select(
        "session_id", _m_time="time").sort("_m_time")
    approvals = ctx.events.filter(
        (pl.col("category") == "approval") & (pl.col("outcome") != "failure")
    ).select(_db=pl.col("database").fill_null(""), _a_time="time", _approver=WHO).sort("_a_time")
    ev = ev.sort("time").join_asof(
        markers, left_on="time", right_on="_m_time", by="session_id", strategy="backward",
        tolerance=within, check_sortedness=False,
    ).with_columns(_db=pl.col("database").fill_null("")).join_asof(
        approvals, left_on="time", right_on="_a_time", by="_db", strategy="backward",
        tolerance=within, check_sortedness=False,
    ).with_columns(
        approved=pl.col("_m_time").is_not_null() | pl.col("_a_time").is_not_null(),
        in_window=_in_windows(cfg),
    ).filter(~pl.col("approved") | ~pl.col("in_window"))
    destructive = pl.col("action").fill_null("").str.to_uppercase().str.contains(
        r"^(DROP|TRUNCATE)")
    windows_text = "the change windows" if cfg.get("change_windows") else _working(cfg)[2]
    problems = clauses(
        pl.when(~pl.col("in_window")).then(pl.lit(f"outside {windows_text}")),
        pl.when(~pl.col("approved")).then(pl.lit("with no approval found")),
    )
    reason = sentence(pl.format("{} ran {} on {} at {} {}", "who", "action",
                                pl.coalesce("object", "database", pl.lit("?")),
                                at_time(pl.col("time")), problems.str.replace(", ", " and ")),
                      pl.format("“{}”", clip(pl.col("statement").fill_null(""), 120)))
    severity = (
        pl.when(destructive & ~pl.col("approved")).then(pl.lit("high"))
        .when(~pl.col("approved") & ~pl.col("in_window")).then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )
    out = ev.select("time", "person", "actor", "source", "database", "object", "src_ip",
                    severity=severity, reason=reason, event_ids=pl.concat_list("event_id"))
    return _finish(out, ctx, "schema_change")


# statements that change what is audited; the captured value says whether it switches it off
_AUDIT_SETTING = (
    r"(?is)(\bSET\s+(SESSION\s+|LOCAL\s+|GLOBAL\s+|PERSIST\s+)?@*(pgaudit\.\w+|server_audit_\w+"
    r"|audit_log_\w+)"
    r"|\bALTER\s+SYSTEM\s+(SET|RESET)\s+(pgaudit\.|log_statement|log_connections|server_audit)"
    r"|\bALTER\s+(DATABASE|ROLE|USER)\b.*\b(SET|RESET)\s+pgaudit\."
    r"|\b(DROP|ALTER)\s+EXTENSION\s+(IF\s+EXISTS\s+)?pgaudit\b"
    r"|\bUNINSTALL\s+(PLUGIN|COMPONENT)\s+\S*audit"
    r"|\bALTER\s+(SERVER|DATABASE)\s+AUDIT\b|\bNOAUDIT\b|\bAUDIT\s+POLICY\b)"
)
_AUDIT_OFF = (
    r"(?is)(=|\bTO\b)\s*'?\s*(none|off|0|false|'')\s*'?\s*;?\s*$"
    r"|\bRESET\s+pgaudit|\bDROP\s+EXTENSION|\bUNINSTALL\b|\bNOAUDIT\b|STATE\s*=\s*OFF"
)


@detector("audit_tampering")
def audit_tampering(ctx: Context) -> pl.DataFrame:
    """Auditing switched off, reduced or changed: ``SET pgaudit.log``, ``ALTER SYSTEM``,
    ``ALTER DATABASE … SET pgaudit.*``, MariaDB ``server_audit_logging=OFF``, and events of
    category ``audit_config`` (cloud ones the catalogue rates are left to ``cloud_risk``).
    Attempts that failed count: someone tried."""
    cfg = ctx.config("audit_tampering")
    stmt = pl.col("statement").fill_null("")
    ev = ctx.events.filter(
        ((pl.col("category") == "audit_config") | stmt.str.contains(_AUDIT_SETTING))
        & pl.col("extra").fill_null("").str.json_path_match("$.risk").is_null()
        & _allowed(cfg)
    ).with_columns(who=pl.coalesce(WHO, pl.lit("(unknown)")))
    if ev.is_empty():
        return ev.head(0)
    off = stmt.str.contains(_AUDIT_OFF) & stmt.str.contains(_AUDIT_SETTING)
    failed = pl.col("outcome") == "failure"
    sql = (stmt != "") & (pl.col("layer").fill_null("workflow") == "workflow")
    what = pl.when(sql).then(pl.format("“{}”", clip(stmt, 120))).otherwise(
        pl.format("{} on {}", "action", pl.coalesce("object", "target", pl.lit("?"))))
    verb = pl.when(off).then(pl.lit("switch auditing off")).otherwise(
        pl.lit("change the audit configuration"))
    base = pl.when(failed).then(pl.format(
        "{} tried to {} with {} at {} and was refused ({})", "who", verb, what,
        at_time(pl.col("time")), short_error(pl.col("error")).fill_null("failed"))
    ).otherwise(pl.format(
        "{} {} with {} at {}", "who",
        pl.when(off).then(pl.lit("switched auditing off")).otherwise(
            pl.lit("changed the audit configuration")),
        what, at_time(pl.col("time"))))
    reason = sentence(base, pl.when(pl.col("src_ip").is_not_null()).then(
        pl.format("from {}", "src_ip")))
    out = ev.select(
        "time", "person", "actor", "source", "database", "object", "src_ip",
        severity=pl.when(off).then(pl.lit("high")).otherwise(pl.lit("medium")),
        reason=reason, event_ids=pl.concat_list("event_id"),
    )
    return _finish(out, ctx, "audit_tampering")


@detector("cloud_risk")
def cloud_risk(ctx: Context) -> pl.DataFrame:
    """The cloud actions the catalogue rates risky (``extra.risk``, reasons in
    ``extra.risks``; ``auditkit/data/cloud_actions_*.yml``)."""
    cfg = ctx.config("cloud_risk")
    ev = ctx.events.filter(pl.col("extra").str.contains('"risk"').fill_null(False)).with_columns(
        _risk=pl.col("extra").str.json_path_match("$.risk"),
        _risks=pl.col("extra").str.json_decode(pl.Struct({"risks": pl.List(pl.String)}))
        .struct.field("risks").list.join("; "),
    ).filter(pl.col("_risk").is_in(["high", "medium"]) & _allowed(cfg)).with_columns(
        who=pl.coalesce(WHO, pl.lit("(unknown)")))
    if ev.is_empty():
        return ev.head(0)
    failed = pl.col("outcome") == "failure"
    on = pl.coalesce("object", "target")
    call = pl.when(on.is_not_null()).then(pl.format("{} on {}", "action", on)).otherwise(
        pl.col("action"))
    base = pl.when(failed).then(pl.format(
        "{} tried {} at {} and was refused ({}): {}", "who", call, at_time(pl.col("time")),
        short_error(pl.col("error")).fill_null("failed"), "_risks")
    ).otherwise(pl.format("{} called {} at {}: {}", "who", call, at_time(pl.col("time")),
                          "_risks"))
    reason = sentence(base, pl.when(pl.col("src_ip").is_not_null()).then(
        pl.format("from {}", "src_ip")))
    out = ev.select("time", "person", "actor", "source", "database", "object", "src_ip",
                    severity="_risk", reason=reason, event_ids=pl.concat_list("event_id"))
    return _finish(out, ctx, "cloud_risk")


def _app_family(app: pl.Expr) -> pl.Expr:
    """The client's name without versions or per-window suffixes (``DBeaver 24.1.3 - Main``
    → ``DBeaver``, ``aws-cli/2.18.4 …`` → ``aws-cli``)."""
    return app.str.extract(r"^\s*([A-Za-z][A-Za-z0-9_.+-]*(?:\s+[A-Za-z][A-Za-z]+)?)", 1)\
        .str.replace(r"\s+(?:[Dd]ata|[Ss]tudio|SQL|Workbench)?$", "")


@detector("new_source")
def new_source(ctx: Context) -> pl.DataFrame:
    """A person/account using a source address or client application for the first time
    after the baseline, having used others before."""
    cfg = ctx.config("new_source")
    end = baseline_end(ctx)
    ev = activity(ctx).filter(_allowed(cfg))
    if ev.is_empty() or end is None:
        return ev.head(0)
    window = dt.timedelta(hours=float(cfg.get("new_for_hours", 24)))
    # the client's family, worked out once per distinct client string
    apps = ev.select("client_app").unique().with_columns(_family=_app_family(pl.col("client_app")))
    ev = ev.join(apps, on="client_app", how="left", nulls_equal=True)
    kinds = {"address": pl.col("src_ip"), "client": pl.col("_family")}
    ignored = {"address": cfg.get("ignore_addresses") or [],
               "client": cfg.get("ignore_clients") or []}
    frames = []
    for kind in cfg.get("kinds", ["address", "client"]):
        keep = pl.col("value").is_not_null()
        if ignored[kind]:  # platform-written values are no one's new source
            keep = keep & ~pl.col("value").str.contains("|".join(ignored[kind]))
        frames.append(ev.select("who", "time", "event_id", kind=pl.lit(kind), value=kinds[kind])
                      .filter(keep))
    values = pl.concat(frames)
    firsts = values.group_by("who", "kind", "value").agg(
        _first=pl.col("time").min(), _n=pl.len())
    who_first = values.group_by("who", "kind").agg(_who_first=pl.col("time").min())
    new = firsts.join(who_first, on=["who", "kind"]).filter(
        (pl.col("_first") >= end) & (pl.col("_first") > pl.col("_who_first")))
    if new.is_empty():
        return new
    # what it used before: the most used earlier values
    before = new.select("who", "kind", "value", "_first").join(
        firsts.select("who", "kind", _old="value", _old_first="_first", _old_n="_n"),
        on=["who", "kind"],
    ).filter(pl.col("_old_first") < pl.col("_first")).sort("_old_n", descending=True).group_by(
        "who", "kind", "value").agg(_before=pl.col("_old").head(3).str.join(", "))
    evidence = values.join(new.select("who", "kind", "value", "_first"),
                           on=["who", "kind", "value"]).filter(
        pl.col("time") - pl.col("_first") <= window).sort("time").group_by(
        "who", "kind", "value").agg(n=pl.len(), event_ids=pl.col("event_id"),
                                    _first_event=pl.col("event_id").first())
    context = ev.select(_first_event="event_id", person="person", actor="actor", source="source",
                        database="database").filter(
        pl.col("_first_event").is_in(evidence["_first_event"].implode())).unique("_first_event")
    evidence = evidence.join(context, on="_first_event", how="left")
    found = new.join(before, on=["who", "kind", "value"], how="left").join(
        evidence, on=["who", "kind", "value"])
    noun = pl.when(pl.col("kind") == "address").then(pl.lit("connected from")).otherwise(
        pl.lit("used the client"))
    reason = sentence(pl.format(
        "{} {} {} for the first time at {} (before: {}); {} events from it within {} hours",
        "who", noun, "value", at_time(pl.col("_first")), pl.col("_before").fill_null("nothing"),
        "n", pl.lit(f"{window.total_seconds() / 3600:g}")))
    levels = {k: str(v) for k, v in (cfg.get("severity") or {}).items()}
    out = found.select(
        "person", "actor", "source", "database", "event_ids", reason=reason,
        time="_first",
        src_ip=pl.when(pl.col("kind") == "address").then(pl.col("value")),
        severity=pl.col("kind").replace_strict(levels, default="medium", return_dtype=pl.String),
    )
    return _finish(out, ctx, "new_source")
