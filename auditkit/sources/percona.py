"""Percona Server ``audit_log`` plugin: ``audit_log_format`` OLD, NEW, JSON and CSV.

Every format writes the same fields in the same order, which depends on the record's NAME
(``CSV_LAYOUTS``; from the plugin's source). OLD is ``<AUDIT_RECORD NAME="Query" RECORD="…"
…/>``, NEW the same as child elements, JSON one ``{"audit_record":{…}}`` per line (also as
syslog messages, ``… percona-audit: {"audit_record":…}``, with ``audit_log_handler=SYSLOG``) and
CSV one row per record with no header, every field quoted except the numeric status, ``"``
doubled and newlines written raw (a record spans lines when its SQL does)::

    "Query","22567_2021-06-30T16:10:09","2021-06-30T16:19:00 UTC","select","2",0,"select 1",
    "root[root] @ localhost []","localhost","","",""

Times are UTC (``… UTC`` or ``…Z``). ``Audit``/``NoAudit`` records (logging started/stopped)
are ``audit_config`` events. The mapping to events is ``mysql_common.RECORD_MAPPING``, shared with
MySQL Enterprise; Percona's ``audit_log_filter`` writes the MySQL Enterprise formats, which this
reader also reads when the format is forced (they are detected as ``mysql_enterprise``).
"""

from __future__ import annotations

import re

import polars as pl

from auditkit.sources import FileContext, Parsed, Source, register
from auditkit.sources.mysql_common import (
    conform_records,
    decode_json,
    lines_frame,
    quarantine_rows,
    to_parsed,
    xml_records,
)
from auditkit.sources.mysql_enterprise import detect as detect_enterprise
from auditkit.sources.mysql_enterprise import read_any

# fields after NAME, RECORD, TIMESTAMP by record layout (identical order in all four formats)
CSV_LAYOUTS: dict[str, tuple[str, ...]] = {
    "audit": ("mysql_version", "startup_options", "os_version"),
    "general": ("command_class", "connection_id", "status", "sqltext", "user", "host", "os_user",
                "ip", "db"),
    "connection": ("connection_id", "status", "user", "priv_user", "os_login", "proxy_user",
                   "host", "ip", "db"),
}
# record NAME -> layout; other names are general records, except that "Change user" is written
# by both the general and the connection code: the unquoted status field's position decides
NAME_LAYOUT = {"Audit": "audit", "NoAudit": "audit", "Connect": "connection", "Quit": "connection"}

JSON_FIELDS = (
    "name", "record", "timestamp", "command_class", "connection_id", "status", "sqltext",
    "user", "host", "os_user", "ip", "db", "priv_user", "os_login", "proxy_user",
    "mysql_version", "startup_options", "startup_optionsi", "os_version",
)
PERCONA_JSON = pl.Struct({"audit_record": pl.Struct({f: pl.String for f in JSON_FIELDS})})

SYSLOG_PREFIX = (
    r"^(?:<\d+>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (?P<host>\S+) "
    r"percona-audit(?:\[\d+\])?: "
)
_CSV_FIELD = r'"(?:[^"]|"")*"|-?\d*'
CSV_RECORD = rf"^(?:{_CSV_FIELD})(?:,(?:{_CSV_FIELD}))*$"
TRUNCATED = "truncated record: the file ends inside it (still being written?)"


def unquote(field: pl.Expr) -> pl.Expr:
    """A CSV field's value: surrounding quotes removed, doubled quotes undoubled."""
    quoted = field.str.starts_with('"') & field.str.ends_with('"') & (field.str.len_chars() >= 2)
    return pl.when(quoted).then(
        field.str.slice(1, field.str.len_chars() - 2).str.replace_all('""', '"', literal=True)
    ).otherwise(field)


def csv_records(text: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records of a CSV-format file: (record frame, quarantine rows).

    A record ends at a line break outside quotes (an even number of quotes so far); its fields
    are then mapped by the record's layout.
    """
    lines = lines_frame(text)
    quotes = pl.col("text").str.count_matches('"').cum_sum()
    lines = lines.with_columns(_closed=quotes % 2 == 0)
    lines = lines.with_columns(
        _record=pl.col("_closed").shift(1).fill_null(True).cum_sum()
    )
    records = (
        lines.group_by("_record", maintain_order=True)
        .agg(line=pl.col("line").first(), raw=pl.col("text").str.join("\n"),
             _closed=pl.col("_closed").last())
        .filter(pl.col("raw").str.strip_chars() != "")
    )
    truncated = quarantine_rows(records.filter(~pl.col("_closed")), TRUNCATED)
    records = records.filter(pl.col("_closed")).with_columns(
        _ok=pl.col("raw").str.contains(CSV_RECORD),
        _fields=pl.col("raw").str.extract_all(r'"(?:[^"]|"")*"|-?\d+'),
    )
    malformed = quarantine_rows(
        records.filter(~pl.col("_ok")), "not a CSV audit record (unbalanced quotes or text "
        "outside quoted fields)"
    )
    records = records.filter(pl.col("_ok"))
    fields = pl.col("_fields")
    name = unquote(fields.list.get(0, null_on_oob=True))
    status_at_4 = fields.list.get(4, null_on_oob=True).str.contains(r"^-?\d+$")
    records = records.with_columns(
        _layout=name.replace_strict(NAME_LAYOUT, default=None).fill_null(
            pl.when(status_at_4).then(pl.lit("connection")).otherwise(pl.lit("general"))
        ),
        _n=fields.list.len(),
    )
    frames, bad = [], []
    for layout, names in CSV_LAYOUTS.items():
        part = records.filter(pl.col("_layout") == layout)
        columns = ("name", "record", "timestamp", *names)
        fits = pl.col("_n") == len(columns)
        bad.append(quarantine_rows(
            part.filter(~fits),
            pl.format("{} fields where a {} record has {}", pl.col("_n"), pl.lit(layout),
                      pl.lit(len(columns))),
        ))
        frames.append(part.filter(fits).select(
            "line", "raw",
            *[unquote(fields.list.get(i)).alias(c) for i, c in enumerate(columns)],
        ))
    return conform_records(pl.concat(frames, how="diagonal_relaxed")), pl.concat(
        [truncated, malformed, *bad]
    )


def json_records(text: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records of a JSON-format file (one ``{"audit_record":…}`` per line, maybe as syslog
    messages): (record frame, quarantine rows)."""
    lines = lines_frame(text).filter(pl.col("text").str.strip_chars() != "")
    last_line = lines.get_column("line").max()
    lines = lines.with_columns(
        syslog_host=pl.col("text").str.extract(SYSLOG_PREFIX, 1),
        raw=pl.col("text").str.replace(SYSLOG_PREFIX, "").str.strip_chars(),
    )
    is_record = pl.col("raw").str.starts_with('{"audit_record":')
    other = quarantine_rows(lines.filter(~is_record), "not a Percona audit_log JSON record")
    decoded, bad = decode_json(lines.filter(is_record), PERCONA_JSON)
    bad = bad.with_columns(
        reason=pl.when(pl.col("line") == last_line).then(pl.lit(TRUNCATED)).otherwise("reason")
    )
    rec = pl.col("_json").struct.field("audit_record").struct
    frame = decoded.select(
        "line", "raw", "syslog_host",
        *[rec.field(f) for f in JSON_FIELDS if f != "startup_optionsi"],
    ).with_columns(
        # the plugin's JSON writer misspells the key (``startup_optionsi``)
        startup_options=pl.coalesce(
            "startup_options", decoded.get_column("_json").struct.field("audit_record")
            .struct.field("startup_optionsi")
        )
    )
    null_records = frame.filter(pl.col("name").is_null())
    frame = frame.filter(pl.col("name").is_not_null())
    no_name = quarantine_rows(null_records, "audit_record without a name")
    return conform_records(frame), pl.concat([other, bad, no_name])


def _first_line(text: str) -> str:
    stripped = text.lstrip("\ufeff \t\r\n")
    return stripped.split("\n", 1)[0]


def read(text: str, ctx: FileContext) -> Parsed:
    """Read a Percona audit_log file in any of its formats (or an audit_log_filter file)."""
    first = _first_line(text)
    if "<AUDIT_RECORD" in text[:65536] and not first.startswith(("{", "[")):
        records, quarantine = xml_records(text)
    elif re.search(r'\{"audit_record":', first):
        records, quarantine = json_records(text)
    elif first.startswith('"'):
        records, quarantine = csv_records(text)
    else:  # audit_log_filter: MySQL Enterprise's JSON
        return read_any(text, ctx, "percona")
    return to_parsed(records, quarantine, ctx, "percona")


_XML_RECORD = re.compile(rb"<AUDIT_RECORD\b")
_XML_PERCONA = re.compile(rb'\sRECORD="|<RECORD>')
_JSON_LINE = re.compile(rb'^\{"audit_record":\{"name":"|' + SYSLOG_PREFIX.encode()
                        + rb'\{"audit_record":')
_CSV_LINE = re.compile(
    rb'^"(?:Audit|NoAudit|Connect|Quit|Change user|Query|Execute|Prepare|Init DB|Close stmt|'
    rb'Reset stmt|Long Data|Fetch|Field List|Create DB|Drop DB|Refresh|Shutdown|Statistics|'
    rb'Processlist|Kill|Debug|Ping|Set option|Binlog Dump|Table Dump|Register Slave|'
    rb'Reset Connection|Clone|Daemon|Error)","[^"\n]*","[^"\n]*",'
)


def detect(head: bytes) -> bool:
    """The plugin's own formats: XML records with ``RECORD`` (MySQL Enterprise and
    audit_log_filter write ``RECORD_ID``), ``{"audit_record":`` lines (plain or syslog), or CSV
    rows starting with a quoted record name, record id and timestamp."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if _XML_RECORD.search(head):
        return bool(_XML_PERCONA.search(head)) and not detect_enterprise(head)
    first = head.lstrip(b" \t\r\n").split(b"\n", 1)[0]
    return bool(_JSON_LINE.match(first) or _CSV_LINE.match(first))


register(
    Source(
        "percona",
        "Percona Server audit_log plugin (audit_log_format OLD, NEW, JSON, CSV; file or syslog)",
        detect,
        read,
        example="audit_log_format=JSON; audit_log_policy=ALL",
        priority=20,
    )
)
