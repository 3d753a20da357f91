"""PostgreSQL plain server log: connections, authentication, disconnections, statements, errors.

Reads the three containers of ``pg_log`` and maps each entry to an event through ``MESSAGE_RULES``,
a table of (kind, message pattern, category, action, outcome). Statement text logged by
``log_statement``/``log_min_duration_statement`` and statements of failed queries (``STATEMENT:``)
get their category from SQL analysis (category left null here, filled by enrichment).

Outcome of a statement: PostgreSQL logs a statement *before* it runs; an ``ERROR`` from the same
process whose ``STATEMENT`` is that statement marks it ``failure`` (``correlate_outcomes``).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from auditkit.schema import extra_json
from auditkit.sources import FileContext, Parsed, Source, register
from auditkit.sources.pg_log import Entries, detect_container, read_entries
from auditkit.timezones import with_utc_time

# kind, message regex, category (None = from SQL analysis), action, outcome
MESSAGE_RULES: list[tuple[str, str, str | None, str | None, str]] = [
    ("conn_received", r"^connection received: ", "auth", "CONNECT", "unknown"),
    ("conn_authorized", r"^(?:replication )?connection authorized: ", "auth", "LOGIN", "success"),
    ("conn_authenticated", r"^connection authenticated: ", "auth", "AUTHENTICATE", "success"),
    ("auth_failed", r"^\w[\w ]* authentication failed for user ", "auth", "LOGIN", "failure"),
    ("auth_failed", r"^no pg_hba\.conf entry for ", "auth", "LOGIN", "failure"),
    ("auth_failed", r'^role ".*" does not exist', "auth", "LOGIN", "failure"),
    ("auth_failed", r'^database ".*" does not exist', "auth", "LOGIN", "failure"),
    ("auth_failed", r"^pg_hba\.conf rejects connection", "auth", "LOGIN", "failure"),
    ("disconnection", r"^disconnection: session time: ", "auth", "LOGOUT", "success"),
    ("statement", r"^(?:duration: [\d.]+ ms\s+)?statement: ", None, None, "success"),
    ("statement", r"^(?:duration: [\d.]+ ms\s+)?execute [^:]*: ", None, None, "success"),
    ("protocol", r"^(?:duration: [\d.]+ ms\s+)?(?:parse|bind) [^:]*: ", "other", None, "unknown"),
    ("duration", r"^duration: [\d.]+ ms$", "other", "DURATION", "unknown"),
    ("config", r"^parameter \".*\" (?:changed|cannot be changed)", "config", "CONFIG", "success"),
    ("config", r"^received SIGHUP, reloading configuration files", "config", "RELOAD", "success"),
]
FAILURE_SEVERITIES = ("ERROR", "FATAL", "PANIC")
AUTH_FAILURE_STATES = ("28P01", "28000", "3D000")


def classify_messages(message: pl.Expr, severity: pl.Expr) -> pl.Expr:
    """The rule kind of each entry (``error``/``log`` when no rule matches)."""
    kind = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for name, pattern, *_ in MESSAGE_RULES:
        kind = kind.when(message.str.contains(pattern)).then(pl.lit(name))
    return kind.when(severity.is_in(FAILURE_SEVERITIES)).then(pl.lit("error")).otherwise(
        pl.lit("log")
    )


def _rule_column(kind: pl.Expr, index: int, default: pl.Expr) -> pl.Expr:
    mapping = {rule[0]: rule[index] for rule in MESSAGE_RULES}
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for name, value in mapping.items():
        expr = expr.when(kind == name).then(pl.lit(value, pl.String))
    return expr.otherwise(default)


def entry_times(entries: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    """Add ``time`` (UTC) and ``tz_assumed`` from the entry's logged time (or ``%n`` epoch)."""
    timed = with_utc_time(entries, "time_text", ctx.tz, ctx.tz_abbrevs)
    if timed.get_column("epoch").null_count() == timed.height:
        return timed
    from_epoch = (pl.col("epoch").cast(pl.Float64, strict=False) * 1_000_000).cast(
        pl.Int64
    ).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return timed.with_columns(time=pl.coalesce("time", from_epoch))


def session_columns(entries: pl.DataFrame) -> pl.DataFrame:
    """Fill session id, user, database, host and application from the session's connection lines.

    Prefixes such as the default ``'%m [%p] '`` print no user: the ``connection authorized``
    line of the same process names it, so later entries of the session inherit it.
    """
    msg = pl.col("message")
    pid = pl.col("pid").fill_null("")
    received = msg.str.starts_with("connection received: ")
    authorized = msg.str.contains(r"^(?:replication )?connection authorized: ")
    # a session starts at `connection received`, or (log lines lost, or log_connections turned
    # on mid-session) at an authentication line that does not follow one
    handshake = received | msg.str.starts_with("connection authenticated: ")
    starts = received | (
        (authorized | msg.str.starts_with("connection authenticated: "))
        & ~handshake.shift(1).over(pid).fill_null(False)
    )
    entries = entries.with_columns(
        _pid=pid,
        _session_no=starts.cast(pl.Int32).cum_sum().over(pid),
        _auth_user=pl.when(authorized).then(msg.str.extract(r"\buser=(\S+)", 1)),
        _auth_db=pl.when(authorized).then(msg.str.extract(r"\bdatabase=(\S+)", 1)),
        _auth_app=pl.when(authorized).then(
            msg.str.extract(r"\bapplication_name=(.+?)(?: SSL enabled| GSS|$)", 1)
        ),
        _recv_host=pl.when(received).then(msg.str.extract(r"\bhost=(\S+)", 1)),
        _recv_port=pl.when(received).then(msg.str.extract(r"\bport=(\d+)", 1)),
    )
    session = pl.coalesce(
        pl.col("session_id"),
        pl.when(pl.col("pid").is_not_null()).then(
            pl.concat_str(pl.lit("pid"), pl.col("pid"), pl.lit("."), pl.col("_session_no"))
        ),
    )
    entries = entries.with_columns(session_id=session)
    by_session = "session_id"
    fill = {
        "user": "_auth_user",
        "database": "_auth_db",
        "application_name": "_auth_app",
        "remote_host": "_recv_host",
        "remote_port": "_recv_port",
    }
    # stderr prints "[unknown]" for %u/%d before authentication; csvlog/jsonlog print nothing
    return entries.with_columns(
        pl.coalesce(
            pl.col(col).replace(["", "[unknown]"], None),
            pl.col(src).forward_fill().over(by_session),
        ).alias(col)
        for col, src in fill.items()
    )


def base_columns(ctx: FileContext) -> dict[str, pl.Expr]:
    """Columns every PostgreSQL-log event shares, whatever its kind."""
    line = pl.concat_str(
        pl.col("line").cast(pl.String),
        pl.lit(".") + pl.col("part").cast(pl.String),
        ignore_nulls=True,
    )
    backend = pl.col("backend_type").fill_null("client backend")
    user = pl.col("user")
    return {
        "time": pl.col("time"),
        "layer": pl.lit("workflow"),
        "actor": user,
        "actor_type": pl.when(user.is_not_null() & (user != ""))
        .then(pl.lit("db_user"))
        .when(backend != "client backend")
        .then(pl.lit("system"))
        .otherwise(pl.lit("unknown")),
        "src_ip": pl.col("remote_host"),
        "client_app": pl.col("application_name").replace("", None),
        "database": pl.col("database"),
        "session_id": pl.col("session_id"),
        "event_id": pl.lit(ctx.digest + ":") + line,
        "raw_ref": pl.lit(ctx.display + ":") + line,
        "_sub": pl.col("part"),
    }


def plain_events(entries: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    """Map non-AUDIT entries to events (plus the ``_`` columns ``correlate_outcomes`` needs)."""
    msg = pl.col("message")
    kind = classify_messages(msg, pl.col("severity"))
    entries = entries.with_columns(_kind=kind)
    k = pl.col("_kind")
    auth_failure = (k == "auth_failed") | (
        pl.col("severity").is_in(("FATAL",)) & pl.col("sqlstate").is_in(AUTH_FAILURE_STATES)
    )
    error_text = pl.when(pl.col("severity").is_in(FAILURE_SEVERITIES)).then(
        pl.concat_str(pl.col("sqlstate") + pl.lit(": "), msg, ignore_nulls=True)
    )
    statement = (
        pl.when(k == "statement")
        .then(msg.str.replace(r"(?s)^(?:duration: [\d.]+ ms\s+)?(?:statement|execute [^:]*): ", ""))
        .when(k == "error")
        .then(pl.col("query"))
    )
    failed_user = msg.str.extract(r'for user "([^"]*)"', 1)
    session_secs = msg.str.extract_groups(
        r"session time: (?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)"
    )
    seconds = (
        session_secs.struct.field("h").cast(pl.Float64) * 3600
        + session_secs.struct.field("m").cast(pl.Float64) * 60
        + session_secs.struct.field("s").cast(pl.Float64)
    )
    extra = extra_json(
        severity=pl.col("severity"),
        sqlstate=pl.col("sqlstate"),
        pid=pl.col("pid"),
        message=pl.when(k != "statement").then(msg),
        detail=pl.col("detail"),
        hint=pl.col("hint"),
        context=pl.col("context"),
        session_seconds=pl.when(k == "disconnection").then(seconds),
        duration_ms=msg.str.extract(r"^duration: ([\d.]+) ms", 1).cast(pl.Float64),
        tz_assumed=pl.when(pl.col("tz_assumed")).then(True),
    )
    columns = base_columns(ctx) | {
        "source": pl.lit("postgres"),
        "category": pl.when(auth_failure)
        .then(pl.lit("auth"))
        .when(k == "error")
        .then(pl.lit(None, pl.String))  # failed statement: SQL analysis decides; no text: other
        .when(k == "log")
        .then(pl.lit("other"))
        .otherwise(_rule_column(k, 2, pl.lit("other"))),
        "action": pl.when(auth_failure)
        .then(pl.lit("LOGIN"))
        .when(k.is_in(("log", "error")))
        .then(pl.col("severity"))
        .otherwise(_rule_column(k, 3, pl.lit(None, pl.String))),
        "outcome": pl.when(auth_failure | pl.col("severity").is_in(FAILURE_SEVERITIES))
        .then(pl.lit("failure"))
        .when(k.is_in(("log",)))
        .then(pl.lit("unknown"))
        .otherwise(_rule_column(k, 4, pl.lit("unknown"))),
        "error": error_text,
        "actor": pl.coalesce(pl.when(auth_failure).then(failed_user), pl.col("user")),
        "statement": statement,
        "extra": extra,
        "_line": pl.col("line"),
        "_pid": pl.col("_pid"),
        "_is_stmt": k == "statement",
        "_stmt_key": pl.when(k == "statement").then(pl.lit("L") + pl.col("line").cast(pl.String)),
        "_is_error": (k == "error") & ~auth_failure,
    }
    return entries.select(**columns)


SENTINELS = ("<not logged>", "<previously logged>")


def correlate_outcomes(events: pl.DataFrame) -> pl.DataFrame:
    """Mark statements followed by their ERROR as failures; reconstruct unaudited failures.

    An ERROR belongs to the last statement its process logged when the ERROR's STATEMENT text
    contains that statement (or, when the statement text is not logged, when the ERROR comes right
    after it and is not a permission check, SQLSTATE 42501, which fails before auditing). ERRORs
    that belong to no logged statement but carry the statement text become failed attempts whose
    category comes from SQL analysis; the others stay ``other``.
    """
    events = events.sort("_line", "_sub", nulls_last=False)
    pid = pl.col("_pid")
    last_key = pl.when(pl.col("_is_stmt")).then(pl.col("_stmt_key")).forward_fill().over(pid)
    last_text = pl.when(pl.col("_is_stmt")).then(pl.col("_stmt_text")).forward_fill().over(pid)
    prev_is_stmt = pl.col("_is_stmt").shift(1).over(pid).fill_null(False)
    err_text = pl.col("statement")
    # a permission check fails before pgaudit logs anything (SQLSTATE 42501)
    permission_error = pl.col("error").str.contains(r"^(?:42501: |permission denied)")
    events = events.with_columns(_last_key=last_key, _last_text=last_text, _prev=prev_is_stmt)
    known_text = pl.col("_last_text").is_not_null() & ~pl.col("_last_text").is_in(SENTINELS)
    matched = (
        pl.col("_is_error")
        & pl.col("_last_key").is_not_null()
        & pl.when(err_text.is_not_null() & known_text)
        .then(
            (err_text == pl.col("_last_text"))
            | err_text.str.contains(pl.col("_last_text"), literal=True)
        )
        .when(err_text.is_not_null())
        .then(pl.col("_prev") & ~permission_error)
        .otherwise(pl.col("_prev"))
    )
    events = events.with_columns(_matched=matched.fill_null(False))
    failures = (
        events.filter(pl.col("_matched"))
        .group_by("_last_key")
        .agg(_fail_error=pl.col("error").first(), _fail_event=pl.col("event_id").first())
        .rename({"_last_key": "_stmt_key"})
    )
    statement_event = (
        events.filter(pl.col("_is_stmt"))
        .group_by("_stmt_key")
        .agg(_outcome_of=pl.col("event_id").first())
        .rename({"_stmt_key": "_last_key"})
    )
    events = events.join(failures, on="_stmt_key", how="left", coalesce=True).join(
        statement_event, on="_last_key", how="left", coalesce=True
    )
    is_stmt = pl.col("_is_stmt")
    # the ERROR that explains a failure says whose outcome it is (extra.outcome_of)
    explained = pl.concat_str(
        pl.col("extra").str.strip_suffix("}"),
        pl.when(pl.col("extra") == "{}").then(pl.lit('"outcome_of":"')).otherwise(
            pl.lit(',"outcome_of":"')
        ),
        pl.col("_outcome_of"),
        pl.lit('"}'),
    )
    return events.with_columns(
        extra=pl.when(pl.col("_matched") & pl.col("_outcome_of").is_not_null())
        .then(explained)
        .otherwise(pl.col("extra")),
        outcome=pl.when(is_stmt & pl.col("_fail_error").is_not_null())
        .then(pl.lit("failure"))
        .otherwise(pl.col("outcome")),
        error=pl.when(is_stmt).then(pl.col("_fail_error")).otherwise(pl.col("error")),
        category=pl.when(pl.col("_matched"))
        .then(pl.lit("other"))
        .when(pl.col("_is_error") & pl.col("statement").is_null())
        .then(pl.lit("other"))
        .otherwise(pl.col("category")),
        action=pl.when(
            pl.col("_is_error") & ~pl.col("_matched") & pl.col("statement").is_not_null()
        )
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col("action")),
    ).sort("_line", "_sub", nulls_last=False)


# Entries are mapped to events in groups of whole processes: every cross-entry rule (sessions,
# outcomes, statement groups, aux lines) looks only within one process, so groups of processes
# give the same events as the whole file while bounding the memory of intermediate columns.
ENTRIES_PER_GROUP = 100_000


def events_by_process(
    framed: Entries,
    ctx: FileContext,
    to_events: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """Events of a file's entries, mapped by ``to_events`` in groups of whole processes.

    ``to_events`` receives entries with UTC times and session columns filled, and returns events
    carrying ``_line``/``_sub``; the result is in file order.
    """
    entries, framed.entries = framed.entries, None
    groups_wanted = max(1, entries.height // ENTRIES_PER_GROUP)
    if groups_wanted == 1:
        groups = [entries]
    else:
        process = pl.col("pid").fill_null("").hash(seed=20261126) % groups_wanted
        groups = entries.with_columns(_group=process).partition_by(
            "_group", include_key=False, maintain_order=True
        )
    del entries
    mapped: list[pl.DataFrame] = []
    unreadable_times = 0
    while groups:
        events, unreadable = map_processes(groups.pop(0), ctx, to_events)
        unreadable_times += unreadable
        mapped.append(events)
        del events
    if unreadable_times:
        framed.notes.append(f"{unreadable_times} entries with an unreadable time")
    events = pl.concat(mapped, how="diagonal_relaxed") if len(mapped) > 1 else mapped[0]
    return events.sort("_line", "_sub", nulls_last=False, maintain_order=True)


def map_processes(
    entries: pl.DataFrame,
    ctx: FileContext,
    to_events: Callable[[pl.DataFrame], pl.DataFrame],
) -> tuple[pl.DataFrame, int]:
    """Events of the entries of whole processes (in file order), and how many entries had an
    unreadable time."""
    group = session_columns(entry_times(entries, ctx))
    unreadable = group.get_column("time").null_count()
    return to_events(group), unreadable


def entries_to_events(entries: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    """The postgres source's mapping of whole processes' entries (see ``events_by_process``)."""
    events = plain_events(entries, ctx).with_columns(_stmt_text=pl.col("statement"))
    return correlate_outcomes(events)


def to_parsed(framed: Entries, events: pl.DataFrame, ctx: FileContext) -> Parsed:
    """Drop the working columns and package a file's result."""
    events = events.drop([c for c in events.columns if c.startswith("_")])
    quarantine = framed.quarantine.with_columns(file=pl.lit(ctx.display))
    return Parsed(events=events, records=framed.records, quarantine=quarantine,
                  notes=framed.notes)


def read(text: str, ctx: FileContext) -> Parsed:
    """Read a PostgreSQL server log (stderr with any prefix, csvlog or jsonlog)."""
    framed = read_entries(text, ctx.display, ctx.pg_prefix)
    events = events_by_process(framed, ctx, lambda entries: entries_to_events(entries, ctx))
    return to_parsed(framed, events, ctx)


def detect(head: bytes) -> bool:
    """Any PostgreSQL log container."""
    return detect_container(head) is not None


register(
    Source(
        "postgres",
        "PostgreSQL server log (stderr with any log_line_prefix, csvlog, jsonlog): connections, "
        "authentication, log_statement, errors",
        detect,
        read,
        example="log_connections=on log_disconnections=on log_statement=ddl "
        "log_destination='csvlog'",
    )
)
