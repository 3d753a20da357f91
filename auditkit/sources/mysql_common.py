"""What MySQL Enterprise Audit and Percona's audit_log share: record framing, XML fields, mapping.

Every variant is first turned into one *record frame*: one row per audit record, with the
record's fields under the names the XML formats print (lower-cased: ``name``, ``record_id``,
``timestamp``, ``connection_id``, ``status``, ``sqltext``, ``user``, ...) plus ``line``/``part``
(where the record starts) and ``raw`` (its text). ``to_events`` maps that frame to the event
schema through ``RECORD_MAPPING``; the readers only differ in how they fill the frame:

- ``xml_records``: old-style (attributes) and new-style (child elements) ``<AUDIT_RECORD>``s,
  with or without the ``<AUDIT>`` root, ``</AUDIT>`` missing while the file is written;
- ``json_array_records``: MySQL's JSON array (one record per line or pretty-printed), ``]``
  missing while the file is written.

Records that cannot be read are returned as quarantine rows (line, reason, raw text).

The ``USER`` of statement records is ``priv_user[user] @ host [ip]`` (MySQL's
``make_user_name``, the same string as the slow log's ``User@Host``): the bracketed name is the
user the client logged in as, the first the account whose privileges apply (they differ for
proxy users and anonymous accounts). ``actor`` is the login user; the account goes to
``extra.account``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import polars as pl

from auditkit.schema import QUARANTINE_SCHEMA, UTC_TIME, extra_json, object_name
from auditkit.sources import FileContext, Parsed

# ---------------------------------------------------------------------------------------------
# The record frame

# every field of the record frame (all strings); XML element/attribute name = upper-case
FIELDS = (
    "name", "record", "record_id", "timestamp", "command_class", "connection_id",
    "connection_type", "status", "status_code", "sqltext", "user", "priv_user", "proxy_user",
    "os_login", "os_user", "host", "ip", "db", "table", "server_id", "mysql_version",
    "startup_options", "os_version", "version",
    # JSON-only (MySQL Enterprise JSON, see json_array_records)
    "klass", "event", "account_host", "unix_time", "program_name", "client_name",
    "query_time", "rows_sent", "rows_examined", "message",
    # transport: the host of a syslog line
    "syslog_host",
)
XML_FIELDS = FIELDS[:24]

# record name -> (category, action); category None = SQL analysis decides (enrichment)
RECORD_MAPPING: dict[str, tuple[str | None, str | None]] = {
    "Connect": ("auth", "LOGIN"),
    "Quit": ("auth", "LOGOUT"),
    "Change user": ("auth", "CHANGE USER"),
    "Query": (None, None),
    "Execute": (None, None),
    "Query Status End": (None, None),
    "Query Nested Status End": (None, None),
    "Prepare": ("other", "PREPARE"),
    "Init DB": ("other", "USE"),
    "TableRead": ("read", "READ"),
    "TableInsert": ("write", "INSERT"),
    "TableUpdate": ("write", "UPDATE"),
    "TableDelete": ("write", "DELETE"),
    "Audit": ("audit_config", "AUDIT START"),
    "NoAudit": ("audit_config", "AUDIT STOP"),
    "Shutdown": ("config", "SHUTDOWN"),
}
GENERAL_RECORDS = ("Query", "Execute")
TABLE_RECORDS = ("TableRead", "TableInsert", "TableUpdate", "TableDelete")
AUDIT_RECORDS = ("Audit", "NoAudit")
# records written before the statement runs (audit_log_filter): their status is not an outcome
START_RECORDS = ("Query Start", "Query Nested Start", "Command Start")
START_EVENTS = ("log", "query_start", "query_nested_start", "command_start")

# JSON (class, event) -> the record name the XML formats print for it
JSON_NAMES: dict[tuple[str, str | None], str] = {
    ("connection", "connect"): "Connect",
    ("connection", "disconnect"): "Quit",
    ("connection", "change_user"): "Change user",
    ("audit", "startup"): "Audit",
    ("audit", "shutdown"): "NoAudit",
    ("audit", None): "Audit",  # audit_log_filter: a bare {"class": "audit", "server_id": 1}
    ("table_access", "read"): "TableRead",
    ("table_access", "insert"): "TableInsert",
    ("table_access", "update"): "TableUpdate",
    ("table_access", "delete"): "TableDelete",
    ("query", "query_start"): "Query Start",
    ("query", "query_nested_start"): "Query Nested Start",
    ("query", "query_status_end"): "Query Status End",
    ("query", "query_nested_status_end"): "Query Nested Status End",
    ("command", "command_start"): "Command Start",
    ("command", "command_end"): "Command End",
}

_S = pl.String
ENTERPRISE_JSON = pl.Struct({
    "timestamp": _S, "id": _S, "class": _S, "event": _S, "connection_id": _S, "time": _S,
    "server_id": _S,
    "account": pl.Struct({"user": _S, "host": _S}),
    "login": pl.Struct({"user": _S, "os": _S, "ip": _S, "proxy": _S}),
    "connection_data": pl.Struct({
        "connection_type": _S, "status": _S, "db": _S,
        "connection_attributes": pl.Struct({"program_name": _S, "_client_name": _S}),
    }),
    "general_data": pl.Struct({"command": _S, "sql_command": _S, "query": _S, "status": _S}),
    "table_access_data": pl.Struct({"db": _S, "table": _S, "query": _S, "sql_command": _S}),
    "startup_data": pl.Struct({
        "server_id": _S, "os_version": _S, "mysql_version": _S, "args": pl.List(_S),
    }),
    "shutdown_data": pl.Struct({"server_id": _S}),
    "query_statistics": pl.Struct({"query_time": _S, "rows_sent": _S, "rows_examined": _S}),
    "command_data": pl.Struct({"name": _S, "status": _S, "command": _S}),
    "query_data": pl.Struct({"query": _S, "status": _S, "sql_command": _S}),
    "message_data": pl.Struct({"component": _S, "producer": _S, "message": _S}),
})


def lines_frame(text: str) -> pl.DataFrame:
    """The file's lines (``line`` 1-based, ``text`` without the line break)."""
    lines = pl.Series("text", [text]).str.split("\n").explode()
    if text.endswith("\n"):
        lines = lines.head(lines.len() - 1)
    return pl.DataFrame({"text": lines.str.strip_suffix("\r")}).with_row_index(
        "line", offset=1
    ).with_columns(pl.col("line").cast(pl.Int64))


def quarantine_rows(frame: pl.DataFrame, reason: pl.Expr | str) -> pl.DataFrame:
    """Quarantine rows (file filled later) from a frame with ``line`` and ``raw``."""
    if isinstance(reason, str):
        reason = pl.lit(reason)
    return frame.select(
        file=pl.lit(None, pl.String),
        line=pl.col("line").cast(pl.Int64),
        format=pl.lit(None, pl.String),
        reason=reason,
        raw=pl.col("raw"),
    )


def empty_records() -> pl.DataFrame:
    """A record frame with no rows."""
    schema = {"line": pl.Int64(), "part": pl.Int64(), "raw": pl.String()}
    return pl.DataFrame(schema=schema | {f: pl.String() for f in FIELDS})


def conform_records(frame: pl.DataFrame) -> pl.DataFrame:
    """Every record-frame column present (missing fields null); '' read as null."""
    have = set(frame.columns)
    cols = [
        pl.col("line").cast(pl.Int64),
        (pl.col("part") if "part" in have else pl.lit(None)).cast(pl.Int64).alias("part"),
        pl.col("raw"),
    ]
    cols += [
        (pl.col(f).cast(pl.String).replace("", None) if f in have else pl.lit(None, pl.String))
        .alias(f)
        for f in FIELDS
    ]
    return frame.select(cols)


# ---------------------------------------------------------------------------------------------
# XML (old style: attributes; new style: child elements)

OLD_RECORD = r"<AUDIT_RECORD\s[^>]*/>"
NEW_RECORD = r"<AUDIT_RECORD>.*?</AUDIT_RECORD>"
RECORD_RE = rf"(?s){OLD_RECORD}|{NEW_RECORD}"
FRAMING_RE = r"(?s)<\?xml[^>]*\?>|</?AUDIT>|\s+"
ATTRIBUTES_RE = r"(?s)<CONNECTION_ATTRIBUTES>.*?</CONNECTION_ATTRIBUTES>|<CONNECTION_ATTRIBUTES/>"
# what a well-formed record consists of (anything else left over makes it malformed)
OLD_PARTS = r'^<AUDIT_RECORD|/>$|\b[A-Z_]+="[^"]*"|\s+'
NEW_PARTS = r"^<AUDIT_RECORD>|</AUDIT_RECORD>$|<([A-Z_]+)>[^<]*</[A-Z_]+>|<[A-Z_]+\s*/>|\s+"

# entities the writers emit: <>"& and the control characters as numeric references
ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&",
            "&#9;": "\t", "&#10;": "\n", "&#13;": "\r"}


_ENTITY = re.compile(r"&(?:#(\d+)|#x([0-9a-fA-F]+)|(lt|gt|quot|apos|amp));")
_NAMED = {"lt": "<", "gt": ">", "quot": '"', "apos": "'", "amp": "&"}


def _decode_entities(value: str) -> str:
    def one(match: re.Match) -> str:
        dec, hexa, name = match.groups()
        return _NAMED[name] if name else chr(int(dec) if dec else int(hexa, 16))

    return _ENTITY.sub(one, value)


def unescape_xml(values: pl.Expr, frame: pl.DataFrame, name: str) -> pl.Series:
    """Decode XML entities of one column: a literal table for the usual ones, Python once per
    distinct value for other numeric references (rare: control characters other than TAB/LF/CR).
    """
    raw = frame.select(values.alias(name)).to_series()
    fast = raw.str.replace_many(list(ENTITIES), list(ENTITIES.values()))
    rare = raw.str.replace_all(r"&#(?:9|10|13);", "").str.contains("&#", literal=True)
    if not rare.any():
        return fast
    decoded = {value: _decode_entities(value) for value in raw.filter(rare).unique().to_list()}
    return pl.select(
        pl.when(rare).then(raw.replace_strict(decoded, default=None)).otherwise(fast)
    ).to_series().alias(name)


def _xml_field(record: pl.Expr, field: str, new_style: bool) -> pl.Expr:
    tag = field.upper()
    if new_style:
        return pl.coalesce(
            record.str.extract(rf"<{tag}>([^<]*)</{tag}>", 1),
            pl.when(record.str.contains(rf"<{tag}\s*/>")).then(pl.lit("")),
        )
    return record.str.extract(rf'(?:\s){tag}="([^"]*)"', 1)


def xml_fields(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fields of ``records`` (``line``, ``part``, ``raw``): (record frame, malformed records).

    Fields are pulled with one regex per field over the whole column; a record with text that
    is neither a field nor framing goes to Python's XML parser, and is malformed if that fails.
    """
    out, malformed = [], []
    new = pl.col("raw").str.starts_with("<AUDIT_RECORD>")
    for new_style, part in ((False, records.filter(~new)), (True, records.filter(new))):
        if not part.height:
            continue
        body = pl.col("raw").str.replace_all(ATTRIBUTES_RE, "")
        attrs = pl.col("raw").str.extract(
            r"(?s)<CONNECTION_ATTRIBUTES>(.*?)</CONNECTION_ATTRIBUTES>", 1
        )
        part = part.with_columns(
            _body=body,
            _ok=body.str.replace_all(NEW_PARTS if new_style else OLD_PARTS, "") == "",
            program_name=attrs.str.extract(
                r"<NAME>program_name</NAME>\s*<VALUE>([^<]*)</VALUE>", 1
            ),
            client_name=attrs.str.extract(r"<NAME>_client_name</NAME>\s*<VALUE>([^<]*)</VALUE>", 1),
        )
        fields = part.filter(pl.col("_ok")).with_columns(
            _xml_field(pl.col("_body"), f, new_style).alias(f) for f in XML_FIELDS
        )
        fields = fields.with_columns(
            unescape_xml(pl.col(f), fields, f)
            for f in (*XML_FIELDS, "program_name", "client_name")
        )
        out.append(fields.drop("_body", "_ok"))
        malformed.append(part.filter(~pl.col("_ok")).drop("_body", "_ok"))
    fields = pl.concat(out, how="diagonal_relaxed") if out else records.clear()
    bad = pl.concat(malformed, how="diagonal_relaxed") if malformed else records.clear()
    recovered, quarantined = _xml_fallback(bad)
    fields = pl.concat([conform_records(fields), recovered])
    return fields.sort("line", "part", nulls_last=False), quarantined


def _xml_fallback(bad: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records the regexes could not vouch for, through Python's XML parser (rare: CDATA,
    comments, single-quoted attributes); those it rejects are quarantined with its message."""
    rows, rejected = [], []
    for line, part, raw in bad.select("line", "part", "raw").iter_rows():
        try:
            element = ET.fromstring(raw)
        except ET.ParseError as exc:
            rejected.append({"line": line, "raw": raw, "reason": f"malformed XML record: {exc}"})
            continue
        values = {k.lower(): v for k, v in element.attrib.items()}
        values |= {child.tag.lower(): child.text or "" for child in element if len(child) == 0}
        rows.append({"line": line, "part": part, "raw": raw} | {
            f: values.get(f) for f in XML_FIELDS
        })
    recovered = conform_records(
        pl.DataFrame(rows, schema=empty_records().select("line", "part", "raw", *XML_FIELDS)
                     .schema)
    )
    quarantined = pl.DataFrame(rejected, schema={"line": pl.Int64, "raw": pl.String,
                                                 "reason": pl.String})
    return recovered, quarantine_rows(quarantined, pl.col("reason"))


def xml_records(text: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split an XML audit file into records: (record frame, quarantine rows).

    Lines are grouped into chunks that start at a line opening with ``<AUDIT_RECORD``; each chunk's
    complete records are extracted with one regex. Text left in a chunk that opens a record
    is a truncated record (the file is still being written) or a malformed one.
    """
    lines = lines_frame(text)
    chunks = (
        lines.with_columns(
            # a record continued on the next line never starts it with `<AUDIT_RECORD`
            _chunk=pl.col("text").str.contains(r"^\s*(?:<AUDIT>\s*)?<AUDIT_RECORD").cum_sum()
        )
        .group_by("_chunk", maintain_order=True)
        .agg(line=pl.col("line").first(), raw=pl.col("text").str.join("\n"))
    )
    last_chunk = chunks.get_column("_chunk").max()
    chunks = chunks.with_columns(
        _records=pl.col("raw").str.extract_all(RECORD_RE),
        _left=pl.col("raw").str.replace_all(RECORD_RE, "").str.replace_all(FRAMING_RE, ""),
    )
    records = (
        chunks.select("line", "_records")
        .with_columns(_n=pl.col("_records").list.len())
        .explode("_records")
        .filter(pl.col("_records").is_not_null())
        .with_columns(
            part=pl.when(pl.col("_n") > 1).then(pl.int_range(1, pl.len() + 1).over("line")),
            raw=pl.col("_records"),
        )
        .select("line", "part", "raw")
    )
    left = chunks.filter(pl.col("_left") != "").with_columns(
        raw=pl.col("raw").str.replace_all(RECORD_RE, "").str.strip_chars()
    )
    opens = pl.col("_left").str.contains("<AUDIT_RECORD", literal=True)
    reason = (
        pl.when(opens & (pl.col("_chunk") == last_chunk))
        .then(pl.lit("truncated record: no closing </AUDIT_RECORD> or /> before the end of the "
                     "file (still being written?)"))
        .when(opens)
        .then(pl.lit("malformed record: <AUDIT_RECORD> not closed before the next record"))
        .otherwise(pl.lit("text outside <AUDIT_RECORD> elements"))
    )
    fields, malformed = xml_fields(records)
    return fields, pl.concat([quarantine_rows(left, reason), malformed])


# ---------------------------------------------------------------------------------------------
# JSON (MySQL Enterprise / audit_log_filter: an array of objects)

_JSON_STRING = r'"(?:[^"\\]|\\.)*"'


def json_array_records(text: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a JSON-array audit file into records and decode them: (record frame, quarantine).

    Braces outside strings are counted per line (a JSON string never spans lines), so records
    may be one per line or pretty-printed; the array's ``[``, ``,`` and ``]`` are framing, and a
    missing ``]`` (file still being written) is normal. An unclosed last object is quarantined.
    """
    lines = lines_frame(text)
    # strings emptied first (materialised once: the regex is the costly step)
    lines = lines.with_columns(_bare=pl.col("text").str.replace_all(_JSON_STRING, '""'))
    bare = pl.col("_bare")
    delta = bare.str.count_matches("{", literal=True) - bare.str.count_matches("}", literal=True)
    lines = lines.with_columns(_delta=delta).with_columns(
        _after=pl.col("_delta").cum_sum()
    ).with_columns(_before=pl.col("_after") - pl.col("_delta"))
    opens = pl.col("_bare").str.contains("{", literal=True)
    in_record = (pl.col("_before") > 0) | opens
    lines = lines.with_columns(_record=((pl.col("_before") <= 0) & opens).cum_sum())
    records = (
        lines.filter(in_record)
        .group_by("_record", maintain_order=True)
        .agg(
            line=pl.col("line").first(),
            raw=pl.col("text").str.join("\n"),
            _depth=pl.col("_after").last(),
        )
        .with_columns(raw=pl.col("raw").str.replace(r"^[\s\[,]+", "").str.replace(r"[\s,\]]+$", ""))
    )
    stray = lines.filter(
        ~in_record & ~pl.col("text").str.contains(r"^[\s\[\],]*$")
    ).select("line", raw=pl.col("text"))
    quarantined = [quarantine_rows(stray, "text outside the JSON array's records")]
    truncated = records.filter(pl.col("_depth") > 0)
    quarantined.append(quarantine_rows(
        truncated,
        "truncated record: JSON object not closed before the end of the file "
        "(still being written?)",
    ))
    records = records.filter(pl.col("_depth") <= 0).drop("_depth")
    decoded, bad = decode_json(records, ENTERPRISE_JSON)
    quarantined.append(bad)
    return enterprise_fields(decoded), pl.concat(quarantined)


def decode_json(records: pl.DataFrame, dtype: pl.Struct) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``records`` with ``_json`` decoded from ``raw`` as ``dtype``; rows that are not JSON
    objects are found (Python's json, only when the column as a whole fails) and quarantined."""
    try:
        return records.with_columns(_json=pl.col("raw").str.json_decode(dtype)), _no_rows()
    except pl.exceptions.PolarsError:
        pass

    def is_object(raw: str) -> bool:
        try:
            return isinstance(json.loads(raw), dict)
        except ValueError:
            return False

    ok = pl.Series([is_object(raw) for raw in records.get_column("raw")], dtype=pl.Boolean)
    good = records.filter(ok).with_columns(_json=pl.col("raw").str.json_decode(dtype))
    return good, quarantine_rows(records.filter(~ok), "not a JSON object (malformed record)")


def _no_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def enterprise_fields(decoded: pl.DataFrame) -> pl.DataFrame:
    """The record frame of decoded MySQL Enterprise JSON records (``_json`` column)."""
    j = pl.col("_json").struct
    conn, gen, tab = (j.field(k).struct for k in
                      ("connection_data", "general_data", "table_access_data"))
    query, cmd, start = (j.field(k).struct for k in ("query_data", "command_data", "startup_data"))
    klass, event = j.field("class"), j.field("event")
    name = pl.lit(None, pl.String)
    for (cls, evt), label in JSON_NAMES.items():
        cond = (klass == cls) & (event.is_null() if evt is None else event == evt)
        name = pl.when(cond).then(pl.lit(label)).otherwise(name)
    name = (
        pl.when(klass == "general").then(gen.field("command"))
        .when(klass == "message").then(pl.lit("Message"))
        .otherwise(name)
    )
    name = pl.coalesce(name, pl.concat_str(klass, pl.lit("/"), event, ignore_nulls=True))
    stats = j.field("query_statistics").struct
    frame = decoded.select(
        "line",
        "raw",
        name=name,
        klass=klass,
        event=event,
        record_id=j.field("id"),
        timestamp=j.field("timestamp"),
        unix_time=j.field("time"),
        connection_id=j.field("connection_id"),
        connection_type=conn.field("connection_type"),
        status=pl.coalesce(conn.field("status"), gen.field("status"), query.field("status"),
                           cmd.field("status")),
        command_class=pl.coalesce(gen.field("sql_command"), tab.field("sql_command"),
                                  query.field("sql_command"), cmd.field("command")),
        sqltext=pl.coalesce(gen.field("query"), tab.field("query"), query.field("query")),
        user=j.field("login").struct.field("user"),
        os_login=j.field("login").struct.field("os"),
        ip=j.field("login").struct.field("ip"),
        proxy_user=j.field("login").struct.field("proxy"),
        priv_user=j.field("account").struct.field("user"),
        account_host=j.field("account").struct.field("host"),
        db=pl.coalesce(tab.field("db"), conn.field("db")),
        table=tab.field("table"),
        server_id=pl.coalesce(start.field("server_id"),
                              j.field("shutdown_data").struct.field("server_id"),
                              j.field("server_id")),
        mysql_version=start.field("mysql_version"),
        os_version=start.field("os_version"),
        startup_options=start.field("args").list.join(" "),
        program_name=conn.field("connection_attributes").struct.field("program_name"),
        client_name=conn.field("connection_attributes").struct.field("_client_name"),
        query_time=stats.field("query_time"),
        rows_sent=stats.field("rows_sent"),
        rows_examined=stats.field("rows_examined"),
        message=j.field("message_data").struct.field("message"),
    )
    return conform_records(frame)


# ---------------------------------------------------------------------------------------------
# Record frame -> events

USER_RE = r"^(?P<account>[^\[]*)\[(?P<login>[^\]]*)\] @ (?P<host>[^\[]*?) ?\[(?P<ip>[^\]]*)\]$"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"


def utc_time(timestamp: pl.Expr, unix_time: pl.Expr) -> pl.Expr:
    """Record time: every variant writes UTC ('... UTC', '...Z', or no marker in JSON and the
    audit_log_filter formats), or Unix seconds (``audit_log_format_unix_timestamp``)."""
    text = timestamp.str.strip_chars().str.replace(r"(?:\s*UTC|Z)$", "").str.replace("T", " ")
    parsed = text.str.to_datetime(TIME_FORMAT, time_unit="us", time_zone="UTC", strict=False)
    epoch = (unix_time.cast(pl.Float64, strict=False) * 1_000_000).cast(pl.Int64).cast(
        pl.Datetime("us")
    ).dt.replace_time_zone("UTC")
    return pl.coalesce(parsed, epoch).cast(UTC_TIME)


def _mapped(name: pl.Expr, index: int, default: pl.Expr) -> pl.Expr:
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for record, values in RECORD_MAPPING.items():
        expr = expr.when(name == record).then(pl.lit(values[index], pl.String))
    return expr.otherwise(default)


def _statement_groups(records: pl.DataFrame) -> pl.DataFrame:
    """``_group``: the records of one statement in one connection.

    A statement's records are consecutive in its connection and carry the same SQL text:
    TableRead/... records, then the general record (classic plugin); the general ``log`` record,
    query start/end records, then the general ``status`` record (audit_log_filter). A general
    or table record right after a completed general record is the next statement, even with
    the same text.
    """
    conn = pl.coalesce(pl.col("session_id"), pl.lit(""))
    text = pl.col("sqltext")
    general = pl.col("name").is_in(GENERAL_RECORDS)
    ends = general & (pl.col("event").is_null() | (pl.col("event") == "status")).fill_null(False)
    new = (
        text.is_null()
        | (text != text.shift(1).over(conn)).fill_null(True)
        | (ends.shift(1).over(conn).fill_null(True)
           & (general | pl.col("name").is_in(TABLE_RECORDS)))
    )
    return records.with_columns(_group=new.cum_sum().over(conn)).with_columns(
        _group=pl.concat_str(pl.lit("c"), conn, pl.lit("#"), pl.col("_group"))
    )


def to_events(records: pl.DataFrame, ctx: FileContext, source: str) -> pl.DataFrame:
    """Events of a record frame (``RECORD_MAPPING``; see the module docstring for identities)."""
    name = pl.col("name")
    status = pl.col("status").cast(pl.Int64, strict=False)
    user = pl.col("user").str.extract_groups(USER_RE)
    login = user.struct.field("login").replace("", None)
    account = user.struct.field("account").replace("", None)
    start = (name.is_in(START_RECORDS) | pl.col("event").is_in(START_EVENTS)).fill_null(False)
    server = pl.coalesce(pl.col("syslog_host"), pl.col("server_id").forward_fill())
    session = pl.when(pl.col("connection_id").is_not_null()).then(
        pl.concat_str(server + pl.lit(":"), pl.col("connection_id"), ignore_nulls=True)
    )
    ref = pl.concat_str(pl.col("line").cast(pl.String), pl.lit(".") + pl.col("part").cast(
        pl.String), ignore_nulls=True)
    records = records.with_columns(
        _start=start,
        _status=status,
        _actor=pl.coalesce(login, account, pl.col("user").replace("", None)),
        _account=pl.when(pl.col("user").str.contains(USER_RE)).then(account).otherwise(
            pl.col("priv_user")
        ),
        _server=server,
        session_id=session,
        _ref=ref,
    )
    records = _statement_groups(records)
    failed = (pl.col("_status") > 0) | (pl.col("status_code") == "1")
    # TableRead/... records have no status: they share their statement's
    group_status = pl.col("_status").filter(~pl.col("_start")).drop_nulls().last().over("_group")
    is_table = name.is_in(TABLE_RECORDS)
    outcome = (
        pl.when(pl.col("_start")).then(pl.lit("unknown"))
        .when(failed).then(pl.lit("failure"))
        .when(pl.col("_status") == 0).then(pl.lit("success"))
        .when(name.is_in(AUDIT_RECORDS)).then(pl.lit("success"))
        .when(is_table & (group_status > 0)).then(pl.lit("failure"))
        .when(is_table & (group_status == 0)).then(pl.lit("success"))
        .otherwise(pl.lit("unknown"))
    )
    category = pl.when(pl.col("_start")).then(pl.lit("other")).otherwise(
        _mapped(name, 0, pl.lit("other"))
    )
    action = pl.when(pl.col("_start")).then(name.str.to_uppercase()).otherwise(
        _mapped(name, 1, name.str.to_uppercase())
    )
    actor = pl.col("_actor")
    in_group = pl.len().over("_group") > 1
    extra = extra_json(
        stmt_group=pl.when(in_group).then(
            pl.lit(ctx.digest + ":") + pl.col("_ref").first().over("_group")
        ),
        record_name=name,
        record_id=pl.coalesce("record_id", "record"),
        audit_class=pl.col("klass"),
        audit_event=pl.col("event"),
        command_class=pl.col("command_class"),
        status=pl.col("_status"),
        status_code=pl.col("status_code").cast(pl.Int64, strict=False),
        account=pl.col("_account"),
        account_host=pl.col("account_host"),
        priv_user=pl.col("priv_user"),
        proxy_user=pl.col("proxy_user"),
        os_login=pl.coalesce("os_login", "os_user"),
        host=pl.coalesce("host", user.struct.field("host").replace("", None)),
        connection_type=pl.col("connection_type"),
        client_name=pl.col("client_name"),
        server_id=pl.col("server_id"),
        mysql_version=pl.coalesce("mysql_version", "version"),
        os_version=pl.col("os_version"),
        startup_options=pl.col("startup_options"),
        query_time=pl.col("query_time").cast(pl.Float64, strict=False),
        rows_sent=pl.col("rows_sent").cast(pl.Int64, strict=False),
        rows_examined=pl.col("rows_examined").cast(pl.Int64, strict=False),
        message=pl.col("message"),
    )
    return records.select(
        time=utc_time(pl.col("timestamp"), pl.col("unix_time")),
        source=pl.lit(source),
        layer=pl.lit("workflow"),
        category=category,
        action=action,
        outcome=outcome,
        error=pl.when(failed).then(pl.col("status")),
        actor=actor,
        actor_type=pl.when(actor.is_not_null()).then(pl.lit("db_user"))
        .when((pl.col("connection_id") == "0") | name.is_in(AUDIT_RECORDS))
        .then(pl.lit("system"))
        .otherwise(pl.lit("unknown")),
        src_ip=pl.coalesce(pl.col("ip"), pl.col("host"),
                           user.struct.field("ip").replace("", None),
                           user.struct.field("host").replace("", None)),
        client_app=pl.coalesce("program_name", "client_name"),
        target=pl.col("_server"),
        database=pl.col("db"),
        object=pl.when(is_table).then(object_name(
            pl.lit("TABLE"),
            pl.concat_str(pl.col("db") + pl.lit("."), pl.col("table"), ignore_nulls=True),
        )),
        object_type=pl.when(is_table & pl.col("table").is_not_null()).then(pl.lit("table")),
        statement=pl.col("sqltext"),
        session_id=pl.col("session_id"),
        statement_id=pl.lit(None, pl.String),
        rows=pl.lit(None, pl.Int64),
        event_id=pl.lit(ctx.digest + ":") + pl.col("_ref"),
        raw_ref=pl.lit(ctx.display + ":") + pl.col("_ref"),
        extra=extra,
    )


def to_parsed(
    records: pl.DataFrame, quarantine: pl.DataFrame, ctx: FileContext, source: str
) -> Parsed:
    """Package a file's result: events in file order, quarantine with the file name."""
    events = to_events(records.sort("line", "part", nulls_last=False), ctx, source)
    quarantine = quarantine.with_columns(file=pl.lit(ctx.display)).sort("line")
    notes = []
    unreadable = events.get_column("time").null_count()
    if unreadable:
        notes.append(f"{unreadable} records with an unreadable time")
    return Parsed(events=events, records=events.height + quarantine.height,
                  quarantine=quarantine, notes=notes)
