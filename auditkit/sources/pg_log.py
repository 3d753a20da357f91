"""PostgreSQL server-log containers: stderr (any ``log_line_prefix``), csvlog and jsonlog.

All three are turned into one *entries* frame (``ENTRY_SCHEMA``): one row per log entry, with
the auxiliary ``DETAIL``/``HINT``/``CONTEXT``/``STATEMENT``/``QUERY``/``LOCATION`` lines of stderr
folded into the entry they belong to, exactly as csvlog and jsonlog carry them in columns. The
pgaudit and postgres sources map entries to events; this module knows nothing about AUDIT records.

Record framing in stderr: an entry starts with a line matching the prefix + ``SEVERITY:``; a line
starting with TAB continues it (the logger's TAB is stripped); for AUDIT entries, a line is also a
continuation while the record's CSV quotes are unbalanced (shippers and psql transcripts drop the
TAB). Any other line is quarantined with its line number.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import polars as pl

from auditkit.errors import InputError
from auditkit.schema import QUARANTINE_SCHEMA

ENTRY_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "part": pl.Int64(),  # n-th entry of an envelope line that carries several (Azure batches)
    "time_text": pl.String(),
    "epoch": pl.String(),
    "user": pl.String(),
    "database": pl.String(),
    "pid": pl.String(),
    "remote_host": pl.String(),
    "remote_port": pl.String(),
    "session_id": pl.String(),
    "session_line": pl.Int64(),
    "command_tag": pl.String(),
    "severity": pl.String(),
    "sqlstate": pl.String(),
    "message": pl.String(),
    "detail": pl.String(),
    "hint": pl.String(),
    "context": pl.String(),
    "query": pl.String(),
    "location": pl.String(),
    "application_name": pl.String(),
    "backend_type": pl.String(),
    "query_id": pl.String(),
}

MAIN_SEVERITIES = (
    "LOG", "ERROR", "FATAL", "PANIC", "WARNING", "NOTICE", "INFO",
    "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5",
)
AUX_SEVERITIES = ("DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION")
AUX_COLUMN = {
    "DETAIL": "detail", "HINT": "hint", "CONTEXT": "context",
    "STATEMENT": "query", "QUERY": "query", "LOCATION": "location",
}
# five characters with at least one digit: every SQLSTATE, never a word such as "AUDIT"
SQLSTATE = (
    r"(?:\d[0-9A-Z]{4}|[A-Z]\d[0-9A-Z]{3}|[A-Z]{2}\d[0-9A-Z]{2}|[A-Z]{3}\d[0-9A-Z]|[A-Z]{4}\d)"
)
SEVERITY_RE = "(?P<severity>" + "|".join(MAIN_SEVERITIES + AUX_SEVERITIES) + r"):[ \t]*"

_TIME = (
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?"
    r"(?: ?(?:[A-Za-z]{1,6}|[+-]\d{2}(?::?\d{2})?))?"
)
# log_line_prefix escape -> (group name, pattern). Order of alternatives matters for %r.
PREFIX_ESCAPES: dict[str, tuple[str, str]] = {
    "a": ("application_name", r".*?"),
    "u": ("user", r".*?"),
    "d": ("database", r".*?"),
    "r": ("remote_host", r"[^\s()]*?)(?:\((?P<remote_port>\d+)\))?(?:"),
    "h": ("remote_host", r"[^\s]*?"),
    "L": ("local_address", r"[^\s]*?"),
    "b": ("backend_type", r".*?"),
    "p": ("pid", r"\d+"),
    "P": ("leader_pid", r"\d*"),
    "t": ("time_text", _TIME),
    "m": ("time_text", _TIME),
    "n": ("epoch", r"\d+(?:\.\d+)?"),
    "i": ("command_tag", r".*?"),
    "e": ("sqlstate", r"[0-9A-Z]{5}"),
    "c": ("session_id", r"[0-9a-f]+\.[0-9a-f]+"),
    "l": ("session_line", r"\d+"),
    "s": ("session_start", _TIME),
    "v": ("vxid", r"\d*/\d*|"),
    "x": ("txid", r"\d+"),
    "Q": ("query_id", r"-?\d+"),
}

# Prefixes recognised without --pg-prefix, most specific first.
GENERIC = "<generic>"
PRESET_PREFIXES: dict[str, str] = {
    "azure": "%t:%r:%u@%d:[%p]:%a:%e",
    "rds": "%t:%r:%u@%d:[%p]:",
    "cloudsql": "%m [%p]: [%l-1] db=%d,user=%u ",
    "ibm_cloud": "%t [%a] [%e] [%p]: [%l-1] user=%u,db=%d,client=%h ",
    "pgbadger": "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "pgbadger_short": "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "logtofile": "%t [%p] user=%u db=%d app=%a client=%h ",
    "debian": "%m [%p] %q%u@%d ",
    "default": "%m [%p] ",
    "bare": "",
}
# Last resort for unknown prefixes: a timestamp first, maybe a pid, then anything up to the
# severity. Keeps every entry (time, pid, severity, message); user/database then come from the
# session's `connection authorized` line or need --pg-prefix.
GENERIC_PREFIX_RE = rf"(?P<time_text>{_TIME})\W*(?:(?P<pid>\d+)\b)?.*?"


def prefix_regex(prefix: str) -> str:
    """Compile a ``log_line_prefix`` into a regex with named groups (ENTRY_SCHEMA names).

    >>> bool(re.match(prefix_regex("%m [%p] "), "2024-01-02 03:04:05.678 UTC [42] "))
    True
    """
    parts: list[str] = []
    seen: set[str] = set()
    optional_from: int | None = None
    i = 0
    while i < len(prefix):
        char = prefix[i]
        if char != "%" or i + 1 >= len(prefix):
            parts.append(re.escape(char))
            i += 1
            continue
        match = re.match(r"%(-?\d+)?([A-Za-z%])", prefix[i:])
        if not match:
            parts.append(re.escape(char))
            i += 1
            continue
        padding, escape = match.groups()
        i += match.end()
        if escape == "%":
            parts.append("%")
            continue
        if escape == "q":
            optional_from = len(parts)
            continue
        if escape not in PREFIX_ESCAPES:
            parts.append(r".*?")
            continue
        name, pattern = PREFIX_ESCAPES[escape]
        # a repeated escape (or %h after %r) can only be captured once
        if name in seen or (name == "remote_host" and "remote_host" in seen):
            parts.append(f"(?:{pattern.replace('(?P<remote_port>', '(?:')})")
        else:
            seen.add(name)
            if escape == "r":
                seen.add("remote_port")
            parts.append(f"(?P<{name}>{pattern})")
        if padding:
            parts[-1] = r"\s*" + parts[-1] + r"\s*"
    if optional_from is not None:
        parts = parts[:optional_from] + ["(?:" + "".join(parts[optional_from:]) + ")?"]
    return "".join(parts)


def head_regex(prefix: str) -> str:
    """Regex for the head of an entry-start line: prefix and severity (not the message)."""
    compiled = GENERIC_PREFIX_RE if prefix == GENERIC else prefix_regex(prefix)
    return "^" + compiled + SEVERITY_RE


def line_regex(prefix: str) -> str:
    """Regex for a whole entry-start line: prefix, severity, message."""
    return head_regex(prefix) + "(?P<message>.*)$"


def choose_prefix(lines: list[str], given: str | None) -> tuple[str, str]:
    """The prefix to use: the user's, else the preset matching most of the first lines."""
    if given is not None:
        return "given", given
    sample = [line for line in lines[:400] if line and not line.startswith("\t")]
    best = ("bare", PRESET_PREFIXES["bare"], 0)
    # specific presets first: the generic one wins only when it matches strictly more lines
    for name, prefix in [*PRESET_PREFIXES.items(), ("generic", GENERIC)]:
        pattern = re.compile(line_regex(prefix))
        hits = sum(1 for line in sample if pattern.match(line))
        if hits > best[2]:
            best = (name, prefix, hits)
    return best[0], best[1]


def looks_like_stderr_log(head: bytes) -> bool:
    """At least one of the first lines is an entry under some known prefix (or the generic one),
    and such lines are not rare (a JSON or rubydebug dump quoting log lines is not a log)."""
    lines = head.decode("utf-8", errors="replace").split("\n")[:200]
    sample = [line for line in lines if line.strip() and not line.startswith("\t")]
    if not sample:
        return False
    _, prefix = choose_prefix(sample, None)
    pattern = re.compile(line_regex(prefix))
    hits = sum(1 for line in sample if pattern.match(line))
    return hits > 0 and hits * 10 >= len(sample)


@dataclass
class Entries:
    """A container's entries plus what could not be framed."""

    entries: pl.DataFrame
    quarantine: pl.DataFrame
    records: int
    container: str
    notes: list[str]


# --------------------------------------------------------------------------------- detection

_CSV_HEAD = re.compile(rb'^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: \S+)?,("[^"]*"|[^,]*),')
_STDERR_HEAD = re.compile(
    rb"(?m)^.{0,200}?\b(?:LOG|ERROR|FATAL|WARNING|NOTICE|INFO|PANIC|DEBUG[1-5]?):  "
)


def detect_container(head: bytes) -> str | None:
    """'csvlog', 'jsonlog', 'stderr', 'envelope' or None, from the first bytes of a file."""
    if is_envelope(head):
        return "envelope"
    first = head.lstrip()[:4096]
    if first.startswith(b"{") and b'"error_severity"' in head:
        return "jsonlog"
    if _CSV_HEAD.match(first):
        return "csvlog"
    if _STDERR_HEAD.search(head) and looks_like_stderr_log(head[:16384]):
        return "stderr"
    return None


# --------------------------------------------------------------------------------- stderr


def split_lines(text: str) -> pl.DataFrame:
    """One row per physical line with its 1-based number (CRLF line ends tolerated)."""
    # Python's split: Polars' split + explode is faster on 100 MB (0.34 s against 0.46 s CPU)
    # but peaked ~700 MB higher over a whole file and ~30 MB higher in auditkit/stream.py's chunks
    pieces = text.split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    lines = pl.Series("text", pieces, dtype=pl.String)
    del pieces
    if "\r" in text:  # a scan of the text is far cheaper than rewriting every line
        lines = lines.str.strip_suffix("\r")
    return pl.DataFrame({"text": lines}).with_columns(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )


def stderr_entries(text: str, display: str, prefix: str | None = None) -> Entries:
    """Frame the entries of a stderr/syslog-style log written with ``log_line_prefix``."""
    return framed_entries(split_lines(text), display, prefix, container="stderr")


def framed_entries(
    lines: pl.DataFrame, display: str, prefix: str | None, container: str
) -> Entries:
    """Frame entries from physical lines (``line``, ``text``, optional ``part``)."""
    preset, chosen = choose_prefix(lines.get_column("text").head(400).to_list(), prefix)
    notes = [] if prefix is not None else [f"log_line_prefix recognised as {preset!r}: {chosen!r}"]
    fields, quarantine = frame_lines(lines, display, chosen)
    entries, orphans = fold_aux_lines(fields, display)
    if orphans.height:
        quarantine = pl.concat([quarantine, orphans]).sort("line")
    notes.extend(prefix_mismatch_note(quarantine.height, entries.height, chosen))
    return Entries(
        entries=entries,
        quarantine=quarantine,
        records=entries.height + quarantine.height,
        container=container,
        notes=notes,
    )


def prefix_mismatch_note(quarantined: int, entries: int, prefix: str) -> list[str]:
    """A note when most records of a file do not match the prefix (probably the wrong one)."""
    if quarantined <= entries:
        return []
    return [
        f"{quarantined} of {quarantined + entries} records do not match "
        f"log_line_prefix {prefix!r}: check --pg-prefix (SHOW log_line_prefix on the server)"
    ]


def is_entry_start(head_re: str) -> pl.Expr:
    """Whether a line starts an entry (the rule framing cuts records at)."""
    return pl.col("text").str.contains(head_re) & ~pl.col("text").str.starts_with("\t")


def frame_lines(
    lines: pl.DataFrame, display: str, prefix: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Entries *before* auxiliary lines are folded (one row per entry-start line, ``record``
    numbering them), and the lines no entry takes (quarantined).

    Framing looks at line order only locally: lines may be framed in pieces cut before any entry
    start (``is_entry_start``); ``record`` then only numbers the records within a piece.
    """
    if "part" not in lines.columns:
        lines = lines.with_columns(part=pl.lit(None, pl.Int64))
    head_re = head_regex(prefix)
    framed = lines.with_columns(
        is_start=is_entry_start(head_re),
        is_tab=pl.col("text").str.starts_with("\t"),
        quotes=pl.col("text").str.count_matches('"', literal=True),
    ).with_columns(record=pl.col("is_start").cum_sum())
    # quote parity of the record up to (excluding) this line: odd = inside a quoted CSV field.
    # Running sums minus their value at the record's first line: no per-record windows.
    before = pl.col("quotes").cum_sum() - pl.col("quotes")
    audit_start = pl.col("text").str.contains(
        r"(?:LOG|NOTICE|WARNING|INFO|DEBUG\d?):\s+(?:\d{5}: )?AUDIT: "
    )
    framed = framed.with_columns(
        _at_start=pl.when(pl.col("is_start")).then(before).forward_fill(),
        is_audit=pl.when(pl.col("is_start")).then(audit_start).forward_fill().fill_null(False),
    ).with_columns(
        open_quote=((before - pl.col("_at_start").fill_null(0)) % 2 == 1),
    ).with_columns(
        is_cont=~pl.col("is_start")
        & (pl.col("record") > 0)
        # an AUDIT record only continues inside a quoted field (pgaudit quotes any field with
        # a newline); other entries continue on TAB lines
        & pl.when(pl.col("is_audit")).then(pl.col("open_quote")).otherwise(pl.col("is_tab"))
    )
    # blank lines outside a record carry nothing: not a record, not quarantined
    orphan = framed.filter(~pl.col("is_start") & ~pl.col("is_cont")).filter(
        pl.col("text").str.strip_chars() != ""
    )
    quarantine = orphan.select(
        file=pl.lit(display),
        line=pl.col("line"),
        format=pl.lit(None, pl.String),
        reason=pl.when(pl.col("record") == 0)
        .then(pl.lit("line before the first log entry (file starts mid-record?)"))
        .otherwise(
            pl.lit("line does not start with the log_line_prefix and is not a TAB continuation")
        ),
        raw=pl.col("text"),
    )
    continuation = (
        framed.filter(pl.col("is_cont"))
        .group_by("record", maintain_order=True)
        .agg(more=pl.col("text").str.strip_prefix("\t").str.join("\n"))
    )
    starts = framed.filter(pl.col("is_start")).select("record", "line", "part", "text")
    # capture groups only over the short head: the message is everything after it
    fields = (
        starts.with_columns(
            parsed=pl.col("text").str.extract_groups("^(?P<_head>" + head_re[1:] + ")")
        )
        .unnest("parsed")
        .with_columns(message=pl.col("text").str.slice(pl.col("_head").str.len_chars()))
        .drop("_head", "text")
    )
    if continuation.height:
        fields = fields.join(continuation, on="record", how="left").with_columns(
            message=pl.when(pl.col("more").is_not_null())
            .then(pl.col("message") + "\n" + pl.col("more"))
            .otherwise(pl.col("message"))
        )
    # the server log appends " at character N" where csvlog/jsonlog have a cursor column
    fields = fields.with_columns(
        message=pl.when(pl.col("severity").is_in(("ERROR", "WARNING", "FATAL", "PANIC")))
        .then(pl.col("message").str.replace(r" at character \d+$", ""))
        .otherwise(pl.col("message"))
    )
    return fields, quarantine


def fold_aux_lines(fields: pl.DataFrame, display: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Attach DETAIL/HINT/STATEMENT/... lines to the previous main entry of the same process.

    Returns the entries and, as quarantine rows, the auxiliary lines no entry of their process
    precedes (a file cut mid-entry): never dropped. Looks within one process only, so any
    partition of ``fields`` into groups of whole processes (in file order) gives the same result.
    """
    entries, orphans = _fold_aux_lines(fields)
    return entries, orphans.select(
        file=pl.lit(display),
        line="line",
        format=pl.lit(None, pl.String),
        reason=pl.lit("DETAIL/HINT/STATEMENT line with no earlier entry of its process "
                      "(file starts mid-entry?)"),
        raw="raw",
    )


def _fold_aux_lines(fields: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    cols = fields.columns
    fields = fields.with_columns(
        pid_key=pl.col("pid").fill_null("") if "pid" in cols else pl.lit(""),
        is_aux=pl.col("severity").is_in(AUX_SEVERITIES),
    ).with_columns(
        owner=pl.when(~pl.col("is_aux")).then(pl.col("record")).forward_fill().over("pid_key")
    )
    main = fields.filter(~pl.col("is_aux"))
    aux = fields.filter(pl.col("is_aux"))
    # verbose mode: "00000: message" carries the SQLSTATE inside the message
    state = pl.col("message").str.extract(f"^({SQLSTATE}): ", 1)
    main = main.with_columns(
        sqlstate=pl.coalesce(pl.col("sqlstate"), state) if "sqlstate" in cols else state,
        message=pl.col("message").str.replace(f"^{SQLSTATE}: ", ""),
    )
    if aux.height:
        folded = (
            aux.filter(pl.col("owner").is_not_null())
            .with_columns(column=pl.col("severity").replace_strict(AUX_COLUMN))
            .group_by("owner", "column", maintain_order=True)
            .agg(pl.col("message").str.join("\n"))
            .pivot(on="column", index="owner", values="message")
        )
        main = main.join(folded, left_on="record", right_on="owner", how="left")
    main = main.with_columns(
        (pl.col(c).cast(dtype) if c in main.columns else pl.lit(None, dtype)).alias(c)
        for c, dtype in ENTRY_SCHEMA.items()
    )
    orphans = aux.filter(pl.col("owner").is_null()).select(
        "line", raw=pl.col("severity") + pl.lit(":  ") + pl.col("message")
    )
    return main.select(list(ENTRY_SCHEMA)), orphans


# --------------------------------------------------------------------------------- csvlog

CSVLOG_COLUMNS = [
    "time_text", "user", "database", "pid", "connection_from", "session_id", "session_line",
    "command_tag", "session_start", "vxid", "txid", "severity", "sqlstate", "message", "detail",
    "hint", "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
    "application_name", "backend_type", "leader_pid", "query_id",
]
CSVLOG_WIDTHS = (22, 23, 24, 26)


def csvlog_entries(text: str, display: str) -> Entries:
    """Parse a csvlog file (PG 9.0–12: 23 columns, 13: 24, 14–17: 26; by column count)."""
    fast = csvlog_rows(text.encode(), display)
    if isinstance(fast, tuple):
        return fast[0]
    return _csvlog_slow(text, display, reason=fast)


def csvlog_rows(
    data: bytes, display: str, first_line: int = 1
) -> tuple[Entries, int, int] | str | None:
    """The fast csvlog parse of whole rows starting at line ``first_line``: the entries, the
    line the next row would start at, and the column count; when the reader rejects the rows,
    the reason (``str`` or ``None``) instead, for the row-by-row reader.

    Rows are independent: a file may be parsed in pieces cut between rows (outside quotes), each
    piece starting at the line the previous one ends at.
    """
    try:
        raw = pl.read_csv(
            io.BytesIO(data),
            has_header=False,
            infer_schema=False,
            quote_char='"',
            truncate_ragged_lines=False,
        )
        bad = None
    except pl.exceptions.PolarsError as exc:
        raw, bad = None, exc
    if raw is None or raw.width not in CSVLOG_WIDTHS:
        return str(bad).splitlines()[0] if bad else None
    raw.columns = CSVLOG_COLUMNS[: raw.width]
    newlines = pl.sum_horizontal(
        pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in raw.columns
    )
    raw = raw.with_columns(_lines=newlines + 1).with_columns(
        line=(first_line + pl.col("_lines").cum_sum().shift(1, fill_value=0)).cast(pl.Int64)
    )
    next_line = first_line + int(raw.get_column("_lines").sum())
    raw = raw.drop("_lines")
    width = raw.width - 1  # without `line`
    # a short row is padded with nulls by the reader: every real entry has a known severity
    valid = pl.col("severity").is_in(MAIN_SEVERITIES).fill_null(False)
    quarantine = raw.filter(~valid).select(
        file=pl.lit(display),
        line="line",
        format=pl.lit(None, pl.String),
        reason=pl.lit("not a csvlog entry (missing columns or no error_severity)"),
        raw=pl.concat_str(pl.all().exclude("line").fill_null(""), separator=","),
    )
    return Entries(
        entries=_csvlog_to_entries(raw.filter(valid)),
        quarantine=quarantine,
        records=raw.height,
        container="csvlog",
        notes=[],
    ), next_line, width


def _csvlog_to_entries(raw: pl.DataFrame) -> pl.DataFrame:
    conn = pl.col("connection_from")
    return raw.with_columns(
        remote_host=conn.str.replace(r":\d+$", ""),
        remote_port=conn.str.extract(r":(\d+)$", 1),
        session_line=pl.col("session_line").cast(pl.Int64, strict=False),
    ).select(
        (pl.col(c).cast(dtype, strict=False) if c in raw.columns or c in (
            "remote_host", "remote_port") else pl.lit(None, dtype)).alias(c)
        for c, dtype in ENTRY_SCHEMA.items()
    )


def _csvlog_slow(text: str, display: str, reason: str | None) -> Entries:
    """Row-by-row csv parse, only for files the fast reader rejects: quarantines bad rows."""
    import csv

    good: list[list[str]] = []
    lines: list[int] = []
    quarantined: list[dict] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    width = None
    while True:
        start = line
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # the reader cannot go on: the rest of the file is quarantined line by line
            rest = text.split("\n")[start - 1:]
            if rest and rest[-1] == "":
                rest.pop()
            quarantined.extend(
                _q(display, start + offset, f"csv error at line {start}: {exc}", raw[:2000])
                for offset, raw in enumerate(rest)
            )
            break
        line = reader.line_num + 1
        if not row:
            continue
        if width is None and len(row) in CSVLOG_WIDTHS:
            width = len(row)
        if len(row) != width:
            quarantined.append(
                _q(display, start, f"csvlog row has {len(row)} columns, expected {width}",
                   ",".join(row)[:2000])
            )
            continue
        good.append(row)
        lines.append(start)
    if width is None:
        raise InputError(display, f"not a PostgreSQL csvlog ({reason or 'no valid row'})", "1")
    raw = pl.DataFrame(good, schema=CSVLOG_COLUMNS[:width], orient="row").with_columns(
        line=pl.Series(lines, dtype=pl.Int64)
    )
    return Entries(
        entries=_csvlog_to_entries(raw),
        quarantine=pl.DataFrame(quarantined, schema=QUARANTINE_SCHEMA),
        records=raw.height + len(quarantined),
        container="csvlog",
        notes=[],
    )


def _q(file: str, line: int, reason: str, raw: str) -> dict:
    return {"file": file, "line": line, "format": None, "reason": reason, "raw": raw}


# --------------------------------------------------------------------------------- jsonlog

JSONLOG_SCHEMA = pl.Struct(
    {
        "timestamp": pl.String, "user": pl.String, "dbname": pl.String, "pid": pl.Int64,
        "remote_host": pl.String, "remote_port": pl.Int64, "session_id": pl.String,
        "line_num": pl.Int64, "ps": pl.String, "session_start": pl.String, "vxid": pl.String,
        "txid": pl.Int64, "error_severity": pl.String, "state_code": pl.String,
        "message": pl.String, "detail": pl.String, "hint": pl.String,
        "internal_query": pl.String, "context": pl.String, "statement": pl.String,
        "func_name": pl.String, "file_name": pl.String, "file_line_num": pl.Int64,
        "application_name": pl.String, "backend_type": pl.String, "leader_pid": pl.Int64,
        "query_id": pl.Int64,
    }
)
JSONLOG_RENAME = {
    "timestamp": "time_text", "dbname": "database", "line_num": "session_line",
    "ps": "command_tag", "error_severity": "severity", "state_code": "sqlstate",
    "statement": "query",
}


def jsonlog_entries(text: str, display: str, first_line: int = 1) -> Entries:
    """Parse a jsonlog file (PG 15+): one JSON object per line, null keys omitted.

    Lines are independent: a file may be parsed in pieces of whole lines, each with the number
    of its first line.
    """
    lines = split_lines(text)
    if first_line != 1:
        lines = lines.with_columns(line=pl.col("line") + (first_line - 1))
    lines = lines.filter(pl.col("text").str.strip_chars() != "")
    try:
        decoded = lines.with_columns(rec=pl.col("text").str.json_decode(JSONLOG_SCHEMA))
        quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    except pl.exceptions.PolarsError:
        decoded, quarantine = _jsonlog_slow(lines, display)
    missing = decoded.filter(pl.col("rec").struct.field("error_severity").is_null())
    if missing.height:
        quarantine = pl.concat(
            [
                quarantine,
                missing.select(
                    file=pl.lit(display), line="line", format=pl.lit(None, pl.String),
                    reason=pl.lit("JSON object is not a jsonlog entry (no error_severity)"),
                    raw="text",
                ),
            ]
        ).sort("line")
        decoded = decoded.filter(pl.col("rec").struct.field("error_severity").is_not_null())
    flat = decoded.select("line", pl.col("rec").struct.unnest()).rename(JSONLOG_RENAME)
    entries = flat.select(
        (pl.col(c).cast(dtype) if c in flat.columns else pl.lit(None, dtype)).alias(c)
        for c, dtype in ENTRY_SCHEMA.items()
    )
    return Entries(
        entries=entries,
        quarantine=quarantine,
        records=entries.height + quarantine.height,
        container="jsonlog",
        notes=[],
    )


def _jsonlog_slow(lines: pl.DataFrame, display: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Find the lines that are not valid JSON (only when the fast decode failed)."""
    valid: list[bool] = []
    reasons: list[str | None] = []
    for text in lines.get_column("text"):
        try:
            ok = isinstance(json.loads(text), dict)
            reasons.append(None if ok else "JSON value is not an object")
        except ValueError as exc:
            ok = False
            reasons.append(f"invalid JSON: {exc}")
        valid.append(ok)
    flagged = lines.with_columns(
        ok=pl.Series(valid, dtype=pl.Boolean), reason=pl.Series(reasons, dtype=pl.String)
    )
    quarantine = flagged.filter(~pl.col("ok")).select(
        file=pl.lit(display), line="line", format=pl.lit(None, pl.String), reason="reason",
        raw="text",
    )
    good = flagged.filter(pl.col("ok")).with_columns(
        rec=pl.col("text").str.json_decode(JSONLOG_SCHEMA)
    )
    return good.select("line", "text", "rec"), quarantine


# ------------------------------------------------------------------------- transport envelopes

ENVELOPE_SCHEMA = pl.Struct(
    {
        "records": pl.List(
            pl.Struct(
                {"properties": pl.Struct(
                    {"prefix": pl.String, "message": pl.String, "errorLevel": pl.String})}
            )
        ),
        "message": pl.String,
        "data": pl.Struct({"message": pl.Struct({"message": pl.String})}),
    }
)
CONTAINERD = r"^\d{4}-\d{2}-\d{2}T[\d:.]+Z (?:stdout|stderr) [FP] "


def is_envelope(head: bytes) -> bool:
    """PostgreSQL log lines shipped inside JSON: Azure diagnostic records, IBM Cloud syslog."""
    return b'"PostgreSQLLogs"' in head or (
        b'"message"' in head and b" stderr F " in head
    )


def unwrap_envelopes(lines: pl.DataFrame, display: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The PostgreSQL log lines inside JSON envelopes, keeping each envelope's line number.

    Azure Database for PostgreSQL: ``{"records": [{"properties": {"message": ...}}]}`` where the
    message is the whole prefixed line (flexible server) or ``prefix`` + ``errorLevel`` +
    ``message`` must be put back together (single server). IBM Cloud Databases: a syslog header,
    then JSON whose ``message`` is a containerd line (``<time> stderr F <log line>``); IBM Cloud
    Logs exports escape that JSON once more (``\\"``).
    """
    raw_json = pl.col("text").str.extract(r"(\{.*\})\s*$", 1)
    unescaped = pl.when(raw_json.str.starts_with('{\\"')).then(
        raw_json.str.replace_all('\\"', '"', literal=True)
    ).otherwise(raw_json)
    candidates = lines.with_columns(_json=unescaped)
    try:
        decoded = candidates.with_columns(_env=pl.col("_json").str.json_decode(ENVELOPE_SCHEMA))
        bad = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    except pl.exceptions.PolarsError:
        ok = [_is_json(t) for t in candidates.get_column("_json")]
        flagged = candidates.with_columns(_ok=pl.Series(ok, dtype=pl.Boolean))
        bad = flagged.filter(pl.col("_json").is_not_null() & ~pl.col("_ok")).select(
            file=pl.lit(display), line="line", format=pl.lit(None, pl.String),
            reason=pl.lit("invalid JSON envelope"), raw="text",
        )
        decoded = flagged.with_columns(
            _json=pl.when(pl.col("_ok")).then(pl.col("_json"))
        ).with_columns(_env=pl.col("_json").str.json_decode(ENVELOPE_SCHEMA)).drop("_ok")
        candidates = candidates.join(bad.select("line"), on="line", how="anti")
        decoded = decoded.join(bad.select("line"), on="line", how="anti")
    env = pl.col("_env")
    records = (
        decoded.with_columns(_rec=env.struct.field("records"))
        .explode("_rec")
        .with_columns(part=pl.int_range(pl.len()).over("line"))
        .with_columns(
            part=pl.when(pl.len().over("line") > 1).then(pl.col("part") + 1),
        )
    )
    props = pl.col("_rec").struct.field("properties")
    azure = pl.when(props.struct.field("prefix").is_not_null()).then(
        pl.concat_str(
            props.struct.field("prefix"), props.struct.field("errorLevel"), pl.lit(":  "),
            props.struct.field("message"),
        )
    ).otherwise(props.struct.field("message"))
    ibm = pl.coalesce(
        env.struct.field("message"), env.struct.field("data").struct.field("message")
        .struct.field("message")
    ).str.replace(CONTAINERD, "")
    unwrapped = records.select(
        "line", "part", text=pl.coalesce(azure, ibm, pl.col("text"))
    )
    return unwrapped, bad


def _is_json(text: str | None) -> bool:
    if text is None:
        return True
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def read_entries(text: str, display: str, prefix: str | None = None) -> Entries:
    """Entries of a PostgreSQL log in any of the three containers."""
    container = detect_container(text[:65536].encode())
    if container == "envelope":
        lines, bad = unwrap_envelopes(split_lines(text), display)
        framed = framed_entries(lines, display, prefix, container="envelope")
        framed.quarantine = pl.concat([bad, framed.quarantine])
        framed.records = framed.entries.height + framed.quarantine.height
        return framed
    if container == "csvlog":
        return csvlog_entries(text, display)
    if container == "jsonlog":
        return jsonlog_entries(text, display)
    return stderr_entries(text, display, prefix)
