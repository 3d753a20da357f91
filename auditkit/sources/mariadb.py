"""MariaDB server_audit plugin logs (file and syslog output; AWS RDS and Aurora MySQL variants).

One record per line::

    <timestamp>,<serverhost>,<username>,<host>,<connectionid>,<queryid>,<operation>,<database>,
    <object>,<retcode>

- ``timestamp``: ``20220121 11:12:26`` in server-local time without a zone (read in ``ctx.tz``,
  flagged ``extra.tz_assumed``), Aurora epoch microseconds (``1679569000492494``), or a custom
  ``server_audit_timestamp_format`` (a ``YYYY-MM-DD HH:MM:SS[ +ZZZZ]`` inside it is found).
  Syslog output has no timestamp field: the syslog header's time is used instead, and the line
  after ``<ident>: `` is ``[<server_audit_syslog_info> ]<serverhost>,<username>,...``.
- ``host`` may carry ``:port`` (MariaDB 12); IPv6 addresses are unbracketed, so only a host with
  exactly one ``:`` (or ``[v6]:port``) is split.
- QUERY object: the query in single quotes with ``'`` ``\\`` and control characters escaped by a
  backslash; commas inside are not escaped, so the field ends at the first unescaped quote.
  Older plugins wrote raw newlines: a line that does not start a record continues an open query.
- TABLE events (READ/WRITE/CREATE/ALTER/DROP/RENAME) are logged *before* their QUERY event and
  have no retcode; they share (serverhost, connectionid, queryid) with it. RENAME's object is
  ``old|newdb.newtable``.

Every TABLE event names its table as ``db.table`` with ``object_type="table"`` (per-object
evidence for the access table) and carries ``extra.stmt_group``, shared with the QUERY event(s)
of the same statement; it takes the statement's outcome and session database from its QUERY.
Reads and writes of the server's own bookkeeping tables (``INTERNAL_TABLES``: statistics
tables read when a table is opened, ``mysql.proc`` for stored routines) are kept as events with
category ``other`` and ``extra.internal``: the user's statement did not ask for them. So are
the READ/WRITE events of a table that the same statement creates, alters, drops or renames
(``ALTER TABLE`` copies the table it alters).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import polars as pl

from auditkit.schema import QUARANTINE_SCHEMA, UTC_TIME, extra_json
from auditkit.sources import FileContext, Parsed, Source, register
from auditkit.timezones import with_utc_time

# operation -> (kind, category, action); category None: SQL analysis decides (QUERY events)
OPERATIONS: dict[str, tuple[str, str | None, str | None]] = {
    "CONNECT": ("connection", "auth", "LOGIN"),
    "FAILED_CONNECT": ("connection", "auth", "LOGIN"),
    "PROXY_CONNECT": ("connection", "auth", "LOGIN"),
    "DISCONNECT": ("connection", "auth", "LOGOUT"),
    "CHANGEUSER": ("connection", "auth", "CHANGE USER"),
    "CHANGE_USER": ("connection", "auth", "CHANGE USER"),
    "CHANGE_USER_DONE": ("connection", "auth", "CHANGE USER"),
    "QUERY": ("query", None, None),
    "QUERY_DDL": ("query", None, None),  # Aurora advanced auditing: the filter that matched
    "QUERY_DML": ("query", None, None),
    "QUERY_DCL": ("query", None, None),
    "QUERY_DML_NO_SELECT": ("query", None, None),
    "READ": ("table", "read", "READ"),
    "WRITE": ("table", "write", "WRITE"),
    "CREATE": ("table", "schema", "CREATE"),
    "ALTER": ("table", "schema", "ALTER"),
    "DROP": ("table", "schema", "DROP"),
    "RENAME": ("table", "schema", "RENAME"),
}
ALWAYS_FAILED = ("FAILED_CONNECT",)
DDL_OPERATIONS = ("CREATE", "ALTER", "DROP", "RENAME")
OUTCOME_RANK = {"failure": 0, "unknown": 1, "success": 2}
# tables the server reads or writes on its own while running a user's statement
INTERNAL_TABLES = ("mysql.table_stats", "mysql.column_stats", "mysql.index_stats", "mysql.proc")

_OPS = "|".join(sorted(OPERATIONS, key=len, reverse=True))
_FIELDS = (
    r"(?P<serverhost>[^,]*),(?P<user>[^,]*),(?P<host>[^,]*),(?P<conn>[^,]*),(?P<qid>[^,]*),"
    rf"(?P<op>{_OPS}),(?P<db>[^,]*),(?P<rest>.*)$"
)
FILE_RE = r"(?s)^(?P<ts>[^,\n]*)," + _FIELDS
SYSLOG_RE = (
    r"(?s)^(?:<(?P<pri>\d{1,3})>)?(?:1 )?"
    r"(?P<ts>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T[^ ]+) +"
    r"(?:(?P<loghost>[^ :]+) +)?(?P<ident>[^ :\[]+)(?:\[\d+\])?: *(?:(?P<info>[^,\n]*) )?"
    r"(?P<sh>[^ ,\n]*),"
) + _FIELDS.replace("(?P<serverhost>[^,]*),", "")
# the object+retcode part (``rest``) by kind of operation
QUERY_RE = r"(?s)^'(?P<obj>(?:[^'\\]|\\.)*)',(?P<ret>[^,]*)(?:,(?P<more>.*))?$"
# a query whose last escape was cut by server_audit_query_log_limit: quote, text, quote, retcode
QUERY_LENIENT_RE = r"(?s)^'(?P<obj>.*)',(?P<ret>-?\d+|[A-Z]+)$"
TABLE_RE = r"(?s)^(?P<obj>.*),(?P<ret>[^,]*)$"
CONNECTION_RE = r"(?s)^(?P<obj>[^,]*),(?P<ret>[^,]*)(?:,(?P<more>.*))?$"
# a continuation line (old plugins, raw newline in a query) that closes the open query
CLOSING_LINE_RE = r"^(?:[^'\\]|\\.)*',(?:-?\d+|[A-Z]+)$"
# escapes of the query field (server_audit.c escape_string), applied after ``\\``
ESCAPES = {r"\'": "'", r"\n": "\n", r"\t": "\t", r"\r": "\r", r"\b": "\b", r"\f": "\f"}
_BACKSLASH = "\x00"  # stands for an escaped backslash while the other escapes are replaced

# file layout (timestamp first) or syslog (header, ident and serverhost in the first field)
DETECT_RE = re.compile(
    rf"^(?:[^,\n]*,)?[^,\n]*,[^,\n]*,[^,\n]*,\d+,\d+,(?:{_OPS}),[^,\n]*,".encode()
)


def unescape(query: pl.Expr) -> pl.Expr:
    """The query as the client sent it: ``\\'`` -> ``'``, ``\\n`` -> LF, ``\\\\`` -> ``\\``."""
    text = query.str.replace_all("\\\\", _BACKSLASH, literal=True)
    for escaped, char in ESCAPES.items():
        text = text.str.replace_all(escaped, char, literal=True)
    return text.str.replace_all(_BACKSLASH, "\\", literal=True)


def _lines(text: str) -> pl.DataFrame:
    """Physical lines with their number, CR stripped, and whether each starts a record."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    frame = pl.DataFrame({"text": lines}, schema={"text": pl.String}).with_row_index(
        "line", offset=1
    )
    return frame.with_columns(
        line=pl.col("line").cast(pl.Int64),
        text=pl.col("text").str.strip_suffix("\r"),
    )


def _header(text: pl.Expr) -> pl.Expr:
    """Struct of the record's fields from the file or the syslog layout (null when neither)."""
    file = text.str.extract_groups(FILE_RE)
    syslog = text.str.extract_groups(SYSLOG_RE)
    is_file = file.struct.field("op").is_not_null()
    names = ("ts", "user", "host", "conn", "qid", "op", "db", "rest")
    fields = {
        name: pl.when(is_file).then(file.struct.field(name)).otherwise(syslog.struct.field(name))
        for name in names
    }
    fields["serverhost"] = pl.when(is_file).then(file.struct.field("serverhost")).otherwise(
        syslog.struct.field("sh")
    )
    fields["syslog"] = ~is_file & syslog.struct.field("op").is_not_null()
    fields["syslog_info"] = pl.when(~is_file).then(syslog.struct.field("info").replace("", None))
    return pl.struct(**fields)


def _kind(op: pl.Expr) -> pl.Expr:
    return op.replace_strict({k: v[0] for k, v in OPERATIONS.items()}, default=None)


def _frame_records(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per record: a start line plus the continuation lines of an open query.

    A line continues the record before it only when that record's query quote is still open
    and no earlier continuation closed it; any other line that does not start a record stands
    alone (and is quarantined).
    """
    text = pl.col("text")
    lines = lines.with_columns(_h=_header(text)).with_columns(
        _start=pl.col("_h").struct.field("op").is_not_null()
    )
    rest = pl.col("_h").struct.field("rest")
    is_query = _kind(pl.col("_h").struct.field("op")) == "query"
    closed = rest.str.contains(QUERY_RE) | rest.str.contains(QUERY_LENIENT_RE)
    lines = lines.with_columns(
        _open=(pl.col("_start") & is_query & rest.str.starts_with("'") & ~closed).fill_null(False),
        _record=pl.col("_start").cum_sum(),
    )
    if not lines.get_column("_open").any():
        return lines.with_columns(_lines=pl.lit(1, pl.Int64))
    closes = (~pl.col("_start") & text.str.contains(CLOSING_LINE_RE)).cast(pl.Int64)
    lines = lines.with_columns(
        _cont=~pl.col("_start")
        & (pl.col("_record") > 0)
        & pl.col("_open").first().over("_record")
        & ((closes.cum_sum().over("_record") - closes) == 0)
    )
    owner = pl.when(pl.col("_cont")).then(pl.lit(None, pl.Int64)).otherwise(pl.col("line"))
    merged = (
        lines.with_columns(_owner=owner.forward_fill())
        .group_by("_owner", maintain_order=True)
        .agg(line=pl.col("line").first(), text=text.str.join("\n"), _lines=pl.len())
        .drop("_owner")
    )
    return merged.with_columns(_h=_header(text)).with_columns(
        _start=pl.col("_h").struct.field("op").is_not_null()
    )


def _split_rest(records: pl.DataFrame) -> pl.DataFrame:
    """``object``/``retcode``/trailing field from ``rest``, by operation kind, and ``ok``."""
    h = pl.col("_h")
    rest = h.struct.field("rest")
    kind = _kind(h.struct.field("op"))
    strict = rest.str.extract_groups(QUERY_RE)
    lenient = rest.str.extract_groups(QUERY_LENIENT_RE)
    table = rest.str.extract_groups(TABLE_RE)
    conn = rest.str.extract_groups(CONNECTION_RE)
    is_strict = strict.struct.field("ret").is_not_null()

    def pick(name: str) -> pl.Expr:
        query = pl.when(is_strict).then(strict.struct.field(name))
        if name != "more":
            query = query.otherwise(lenient.struct.field(name))
        by_kind = pl.when(kind == "query").then(query)
        if name != "more":
            by_kind = by_kind.when(kind == "table").then(table.struct.field(name))
        return by_kind.when(kind == "connection").then(conn.struct.field(name))

    records = records.with_columns(
        _kind=kind, _obj=pick("obj"), _ret=pick("ret"), _more=pick("more"),
        _lenient=(kind == "query") & ~is_strict,
    )
    ok = pl.col("_start") & pl.col("_ret").is_not_null()
    reason = (
        pl.when(~pl.col("_start"))
        .then(pl.lit("not a server_audit record (no known operation in the 7th field)"))
        .when(kind == "query")
        .then(pl.lit("query field is not a quoted string followed by a retcode"))
        .otherwise(pl.lit("object and retcode fields missing"))
    )
    return records.with_columns(_ok=ok.fill_null(False), _reason=reason)


def _syslog_time(ts: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(UTC time, year assumed) of a syslog header time: RFC 3164 has no year.

    The year is the current one, or the previous one when that would put the time more than a
    day in the future (the usual syslog reading).
    """
    now = datetime.now(UTC)
    stamp = ts.str.replace_all(r" +", " ")
    this_year = (pl.lit(f"{now.year} ") + stamp).str.to_datetime(
        "%Y %b %d %H:%M:%S", time_unit="us", strict=False
    )
    last_year = (pl.lit(f"{now.year - 1} ") + stamp).str.to_datetime(
        "%Y %b %d %H:%M:%S", time_unit="us", strict=False
    )
    limit = (now + timedelta(days=1)).replace(tzinfo=None)
    local = pl.when(this_year > limit).then(last_year).otherwise(this_year)
    return local, local.is_not_null()


def _with_times(records: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    """Add ``time`` (UTC), ``tz_assumed`` and ``year_assumed`` from the record's timestamp."""
    ts = pl.col("_ts").str.strip_chars()
    epoch = ts.str.contains(r"^\d{15,17}$")
    default = ts.str.replace(r"^(\d{4})(\d{2})(\d{2}) ", "$1-$2-$3 ")
    iso = default.str.extract(
        r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?: ?(?:Z|[+-]\d{2}:?\d{2}))?)", 1
    ).str.replace(r"(\d)(Z|[+-]\d{2}:?\d{2})$", "$1 $2").str.replace(r" Z$", " UTC")
    rfc3164, year_assumed = _syslog_time(ts)
    records = records.with_columns(
        _iso=pl.when(~epoch).then(
            pl.coalesce(iso, rfc3164.dt.strftime("%Y-%m-%d %H:%M:%S"))
        ),
        year_assumed=year_assumed & iso.is_null(),
    )
    records = with_utc_time(records, "_iso", ctx.tz, ctx.tz_abbrevs)
    from_epoch = ts.cast(pl.Int64, strict=False).cast(pl.Datetime("us")).dt.replace_time_zone(
        "UTC"
    )
    return records.with_columns(
        time=pl.when(epoch).then(from_epoch).otherwise(pl.col("time")).cast(UTC_TIME),
        tz_assumed=pl.col("tz_assumed").fill_null(False) & ~epoch,
    )


def _host_port(host: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(client host, port) from ``host``, ``host:port`` or ``[v6]:port`` (bare IPv6 kept whole)."""
    bracketed = host.str.extract_groups(r"^\[(?P<h>[^\]]*)\](?::(?P<p>.*))?$")
    single = host.str.count_matches(":") == 1
    name = (
        pl.when(bracketed.struct.field("h").is_not_null())
        .then(bracketed.struct.field("h"))
        .when(single)
        .then(host.str.split(":").list.first())
        .otherwise(host)
    )
    port = (
        pl.when(bracketed.struct.field("h").is_not_null())
        .then(bracketed.struct.field("p"))
        .when(single)
        .then(host.str.split(":").list.last())
    )
    return name.replace("", None), port.replace("", None)


def _statement_columns(records: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    """Statement groups, and what TABLE events take from their statement's QUERY event."""
    session = pl.concat_str(pl.col("_serverhost"), pl.lit("/"), pl.col("_conn"))
    qid = pl.col("_qid")
    in_statement = pl.col("_kind").is_in(("query", "table")) & (qid != "0")
    # a statement is a run of TABLE events closed by its QUERY event, all with one query id,
    # consecutive within their connection (other connections may interleave); numbering runs
    # also keeps apart query ids reused after a server restart, and the inner statements of a
    # stored procedure (which share the CALL's query id) become statements of their own
    prev_closes = (pl.col("_kind") == "query") | ~pl.col("_in_stmt")
    records = records.with_columns(_session=session, _in_stmt=in_statement).with_columns(
        _run=((qid != qid.shift(1)) | ~pl.col("_in_stmt") | prev_closes.shift(1))
        .fill_null(True)
        .cum_sum()
        .over("_session")
    )
    by_stmt = ("_session", "_run")
    is_query = pl.col("_kind") == "query"
    # the statement's outcome: its QUERY event's (the worst, should there be several)
    rank = pl.when(is_query).then(
        pl.col("_outcome").replace_strict(OUTCOME_RANK, default=1, return_dtype=pl.Int8)
    )
    return records.with_columns(
        _group=pl.when(pl.col("_in_stmt")).then(
            pl.lit(ctx.digest + ":") + pl.col("line").first().over(by_stmt).cast(pl.String)
        ),
        _stmt_outcome=rank.min().over(by_stmt).replace_strict(
            {v: k for k, v in OUTCOME_RANK.items()}, default=None, return_dtype=pl.String
        ),
        _stmt_error=pl.col("_error").filter(is_query).drop_nulls().first().over(by_stmt),
        _stmt_db=pl.col("_db").filter(is_query).drop_nulls().first().over(by_stmt),
        # ALTER TABLE copies the table it alters: that READ/WRITE is the DDL's own work
        _ddl_work=pl.col("_op").is_in(("READ", "WRITE"))
        & pl.col("_op").is_in(DDL_OPERATIONS).any().over(*by_stmt, "_object"),
    )


def _fields(records: pl.DataFrame) -> pl.DataFrame:
    """The record's raw fields as working columns (``_user``, ``_db``, ``_outcome``, ...)."""
    h = pl.col("_h")
    op = h.struct.field("op")
    ret = pl.col("_ret")
    numeric = ret.str.contains(r"^-?\d+$")
    outcome = (
        pl.when(op.is_in(ALWAYS_FAILED))
        .then(pl.lit("failure"))
        .when(pl.col("_kind") == "table")
        .then(pl.lit("unknown"))  # replaced by the statement's outcome
        .when(ret == "0")
        .then(pl.lit("success"))
        .when(numeric)
        .then(pl.lit("failure"))
        .otherwise(pl.lit("unknown"))
    )
    host, port = _host_port(h.struct.field("host"))
    obj = pl.col("_obj")
    rename = obj.str.split_exact("|", 1)
    return records.with_columns(
        _ts=h.struct.field("ts"),
        _serverhost=h.struct.field("serverhost"),
        _user=h.struct.field("user").replace("", None),
        _host=host,
        _port=port,
        _conn=h.struct.field("conn"),
        _qid=h.struct.field("qid"),
        _op=op,
        _db=h.struct.field("db").replace("", None),
        _outcome=outcome,
        _error=pl.when(numeric & (ret != "0")).then(ret),
        _query=pl.when(pl.col("_kind") == "query").then(unescape(obj)),
        _table=pl.when(pl.col("_kind") == "table").then(
            pl.when(op == "RENAME").then(rename.struct.field("field_0")).otherwise(obj)
        ),
        _renamed_to=pl.when(op == "RENAME").then(rename.struct.field("field_1")),
    ).with_columns(
        _object=pl.when(pl.col("_db").is_null())
        .then(pl.col("_table"))
        .otherwise(pl.concat_str(pl.col("_db"), pl.lit("."), pl.col("_table"))),
    )


def _mapping(ctx: FileContext) -> dict[str, pl.Expr]:
    """Schema column -> expression over the working columns: how server_audit maps to events."""
    kind, op, user = pl.col("_kind"), pl.col("_op"), pl.col("_user")
    is_table = kind == "table"
    table_name = pl.col("_object")
    internal = is_table & (table_name.is_in(INTERNAL_TABLES) | pl.col("_ddl_work"))
    category = op.replace_strict({k: v[1] for k, v in OPERATIONS.items()}, default=None)
    action = op.replace_strict({k: v[2] for k, v in OPERATIONS.items()}, default=None)
    line = pl.col("line").cast(pl.String)
    return {
        "time": pl.col("time"),
        "source": pl.lit("mariadb"),
        "layer": pl.lit("workflow"),
        "category": pl.when(internal).then(pl.lit("other")).otherwise(category),
        "action": action,
        "outcome": pl.when(is_table)
        .then(pl.col("_stmt_outcome").fill_null("unknown"))
        .otherwise(pl.col("_outcome")),
        "error": pl.when(is_table).then(pl.col("_stmt_error")).otherwise(pl.col("_error")),
        "actor": user,
        "actor_type": pl.when(user.str.starts_with("<")).then(pl.lit("system"))
        .when(user.is_not_null()).then(pl.lit("db_user"))
        .otherwise(pl.lit("unknown")),
        "src_ip": pl.col("_host"),
        "target": pl.col("_serverhost").replace("", None),
        # the session's database: a TABLE event's own field is the table's schema
        "database": pl.when(is_table)
        .then(pl.coalesce(pl.col("_stmt_db"), pl.col("_db")))
        .otherwise(pl.col("_db")),
        "object": pl.when(is_table).then(table_name),
        "object_type": pl.when(is_table).then(pl.lit("table")),
        "statement": pl.col("_query"),
        "session_id": pl.col("_session"),
        "statement_id": pl.when(pl.col("_qid") != "0").then(pl.col("_qid")),
        "event_id": pl.lit(ctx.digest + ":") + line,
        "raw_ref": pl.lit(ctx.display + ":") + line,
        "extra": extra_json(
            stmt_group=pl.col("_group"),
            operation=op,
            client_port=pl.col("_port"),
            connection_id=pl.col("_conn"),
            retcode=pl.when(~pl.col("_ret").str.contains(r"^-?\d*$")).then(pl.col("_ret")),
            connection_info=pl.when(kind == "connection").then(pl.col("_obj").replace("", None)),
            connection_type=pl.col("_more"),
            table_database=pl.when(is_table).then(pl.col("_db")),
            renamed_to=pl.col("_renamed_to"),
            internal=pl.when(internal).then(True),
            query_lenient=pl.when(pl.col("_lenient")).then(True),
            raw_lines=pl.when(pl.col("_lines") > 1).then(pl.col("_lines")),
            syslog_info=pl.col("_h").struct.field("syslog_info"),
            time_text=pl.when(pl.col("time").is_null()).then(pl.col("_ts")),
            tz_assumed=pl.when(pl.col("tz_assumed")).then(True),
            year_assumed=pl.when(pl.col("year_assumed")).then(True),
        ),
    }


def read(text: str, ctx: FileContext) -> Parsed:
    """Read a server_audit log (file or syslog output, RDS/Aurora variants)."""
    records = _frame_records(_lines(text))
    # blank lines outside a record carry nothing: not a record, not quarantined
    records = _split_rest(
        records.filter(pl.col("_start") | (pl.col("text").str.strip_chars() != ""))
    )
    quarantine = records.filter(~pl.col("_ok")).select(
        file=pl.lit(ctx.display),
        line=pl.col("line"),
        format=pl.lit("mariadb"),
        reason=pl.col("_reason"),
        raw=pl.col("text"),
    ).cast(QUARANTINE_SCHEMA)
    good = _fields(records.filter(pl.col("_ok")))
    good = _statement_columns(_with_times(good, ctx), ctx)
    events = good.select(**_mapping(ctx))
    notes = []
    unreadable = events.get_column("time").null_count()
    if unreadable:
        notes.append(f"{unreadable} records with an unreadable time (kept in extra.time_text)")
    return Parsed(events=events, records=records.height, quarantine=quarantine, notes=notes)


def detect(head: bytes) -> bool:
    """At least half of the first ten non-blank lines are server_audit records."""
    lines = head.split(b"\n")
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines.pop()  # the head may end inside a line
    lines = [line for line in lines if line.strip()][:10]
    hits = sum(bool(DETECT_RE.match(line)) for line in lines)
    return hits > 0 and hits * 2 >= len(lines)


register(
    Source(
        "mariadb",
        "MariaDB server_audit plugin log (file or syslog; AWS RDS MariaDB/MySQL, Aurora MySQL "
        "advanced auditing): connections, queries, table access",
        detect,
        read,
        example="plugin_load_add=server_audit; server_audit_logging=ON; "
        "server_audit_events='CONNECT,QUERY,TABLE'",
    )
)
