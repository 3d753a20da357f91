"""pgaudit: ``AUDIT:`` records inside PostgreSQL logs (stderr with any prefix, csvlog, jsonlog).

The record is pgaudit's CSV line inside the log message::

    AUDIT: <type>,<statement_id>,<substatement_id>,<class>,<command>,<object_type>,<object_name>,
           <statement>,<parameter>[,<rows>]

A field is quoted only when it holds ``,`` ``"`` CR or LF (``"`` doubled inside); PARAMETER is
CSV inside that CSV. Old records have 8 fields (no PARAMETER); ``log_rows`` adds the 10th.
Everything else in the file (connections, failed logins, errors) is mapped by the postgres
source, and ``correlate_outcomes`` turns an ERROR after a record into that record's failure.
"""

from __future__ import annotations

import re

import polars as pl

from auditkit.schema import extra_json, object_name
from auditkit.sources import FileContext, Parsed, Source, register
from auditkit.sources.pg_log import detect_container, read_entries
from auditkit.sources.postgres import (
    base_columns,
    correlate_outcomes,
    events_by_process,
    plain_events,
    to_parsed,
)

_FIELD = r'(?:"(?:[^"]|"")*"|[^,"]*)'
RECORD_RE = (
    r"(?s)^AUDIT: (?P<audit_type>[A-Z]+),(?P<statement_id>\d+),(?P<substatement_id>\d+),"
    rf"(?P<klass>{_FIELD}),(?P<command>{_FIELD}),(?P<object_type>{_FIELD}),"
    rf"(?P<object_name>{_FIELD}),(?P<statement>{_FIELD})"
    rf"(?:,(?P<parameter>{_FIELD}))?(?:,(?P<rows>-?\d*))?$"
)
# a record cut by a line-based shipper: the statement's opening quote is never closed
TRUNCATED_RE = (
    r"(?s)^AUDIT: (?P<audit_type>[A-Z]+),(?P<statement_id>\d+),(?P<substatement_id>\d+),"
    rf"(?P<klass>{_FIELD}),(?P<command>{_FIELD}),(?P<object_type>{_FIELD}),"
    rf'(?P<object_name>{_FIELD}),(?P<statement>"(?:[^"]|"")*)$'
)
# a record whose statement holds commas but was written unquoted (hand-edited exports): the
# statement is everything up to a recognisable PARAMETER field at the end
LENIENT_RE = (
    r"(?s)^AUDIT: (?P<audit_type>[A-Z]+),(?P<statement_id>\d+),(?P<substatement_id>\d+),"
    rf"(?P<klass>{_FIELD}),(?P<command>{_FIELD}),(?P<object_type>{_FIELD}),"
    r"(?P<object_name>" + _FIELD + r"),(?P<statement>.*),"
    r'(?P<parameter><none>|<not logged>|<previously logged>|"(?:[^"]|"")*")'
    r"(?:,(?P<rows>-?\d*))?$"
)
RECORD_FIELDS = (
    "audit_type", "statement_id", "substatement_id", "klass", "command", "object_type",
    "object_name", "statement", "parameter", "rows",
)

# pgaudit class -> event category; refined by COMMAND_CATEGORY and audit settings below
CLASS_CATEGORY = {
    "READ": "read",
    "WRITE": "write",
    "DDL": "schema",
    "ROLE": "permission",
    "FUNCTION": "other",
    "MISC": "other",
    "MISC_SET": "config",
}
# (class, command) pairs whose category differs from the class's
COMMAND_CATEGORY = {
    ("READ", "COPY"): "export",  # COPY ... TO: a relation or query leaves the database
    ("MISC", "ALTER SYSTEM"): "config",
    ("MISC", "SET"): "config",
    ("MISC", "RESET"): "config",
}
AUDIT_SETTING = r"(?i)\bpgaudit\.|\blog_(?:statement|connections|disconnections|min_\w+)\b"
AUDIT_CONFIG_COMMANDS = ("SET", "RESET", "ALTER SYSTEM", "ALTER ROLE", "ALTER DATABASE")


def unquote(field: pl.Expr) -> pl.Expr:
    """CSV-unquote one field: strip the surrounding quotes, undouble inner quotes; '' -> null."""
    quoted = field.str.starts_with('"') & field.str.ends_with('"') & (field.str.len_chars() >= 2)
    return (
        pl.when(quoted)
        .then(
            field.str.slice(1, field.str.len_chars() - 2).str.replace_all('""', '"', literal=True)
        )
        .otherwise(field)
        .replace("", None)
    )


def parse_records(message: pl.Expr) -> pl.Expr:
    """Struct of the record's fields (unquoted), with ``truncated`` set for cut records."""
    exact = message.str.extract_groups(RECORD_RE)
    lenient = message.str.extract_groups(LENIENT_RE)
    cut = message.str.extract_groups(TRUNCATED_RE)
    is_exact = exact.struct.field("audit_type").is_not_null()
    complete = is_exact | lenient.struct.field("audit_type").is_not_null()
    fields = {}
    for name in RECORD_FIELDS:
        strict_field = pl.when(is_exact).then(exact.struct.field(name)).otherwise(
            lenient.struct.field(name)
        )
        if name in ("parameter", "rows"):
            fields[name] = unquote(strict_field)
        elif name == "statement":
            partial = cut.struct.field(name).str.strip_prefix('"').str.replace_all(
                '""', '"', literal=True
            )
            fields[name] = pl.when(complete).then(unquote(strict_field)).otherwise(partial)
        else:
            fields[name] = unquote(
                pl.when(complete).then(strict_field).otherwise(cut.struct.field(name))
            )
    fields["truncated"] = ~complete & cut.struct.field("audit_type").is_not_null()
    fields["unquoted_statement"] = complete & ~is_exact
    return pl.struct(**fields)


_QQ = "\x01\x01"  # stands for a doubled quote while fields are split (same length as '""')


def _split_field(frame: pl.DataFrame, text: str, name: str) -> pl.DataFrame:
    """Split the CSV field at the start of column ``text`` into ``name`` (doubled quotes still
    encoded as ``_QQ``), ``name_rest`` and ``name_ok``.

    After the opening quote, doubled quotes are encoded as ``_QQ`` so the field ends at the next
    quote; the rest is decoded again (its own quotes pair up from its own opening quote). Each
    step is materialised: one expression tree would recompute shared parts.
    """
    col = pl.col(text)
    frame = frame.with_columns(
        _quoted=col.str.starts_with('"'),
        _inside=col.str.slice(1).str.replace_all('""', _QQ, literal=True).str.splitn('"', 2),
        _plain=col.str.splitn(",", 2),
    ).with_columns(
        _after=pl.col("_inside").struct.field("field_1").str.replace_all(_QQ, '""', literal=True)
    )
    quoted = pl.col("_quoted")
    after = pl.col("_after")
    return frame.with_columns(
        pl.when(quoted)
        .then(pl.col("_inside").struct.field("field_0"))
        .otherwise(pl.col("_plain").struct.field("field_0"))
        .alias(name),
        pl.when(quoted)
        .then(after.str.strip_prefix(","))
        .otherwise(pl.col("_plain").struct.field("field_1"))
        .alias(f"{name}_rest"),
        # a quoted field must be closed, and followed by a comma or the end
        (~quoted | (after.is_not_null() & ((after == "") | after.str.starts_with(","))))
        .fill_null(False)
        .alias(f"{name}_ok"),
    ).drop("_quoted", "_inside", "_plain", "_after")


def split_records(entries: pl.DataFrame) -> pl.DataFrame:
    """The record's fields as columns, using literal splits only (the hot path).

    ``ok`` is false where the record needs the regex path: a quoted field among the first
    seven, an unclosed quote (truncated record), or a statement written unquoted with commas.
    """
    head = [f"_f{i}" for i in range(7)]
    frame = entries.with_columns(
        _h=pl.col("message").str.strip_prefix("AUDIT: ").str.splitn(",", 8)
    ).with_columns(
        *[pl.col("_h").struct.field(f"field_{i}").alias(head[i]) for i in range(7)],
        _rest=pl.col("_h").struct.field("field_7"),
    ).drop("_h")
    frame = _split_field(frame, "_rest", "_stmt")
    frame = _split_field(frame, "_stmt_rest", "_param")
    after = pl.col("_param_rest")
    ok = (
        pl.col("message").str.starts_with("AUDIT: ")
        & pl.all_horizontal(pl.col(h).is_not_null() for h in head)
        & pl.col("_f1").str.contains(r"^\d+$")
        & pl.col("_f2").str.contains(r"^\d+$")
        & ~pl.any_horizontal(pl.col(h).str.starts_with('"') for h in head)
        & pl.col("_rest").is_not_null()
        & pl.col("_stmt_ok")
        & (pl.col("_stmt_rest").is_null() | pl.col("_param_ok"))
        & (after.is_null() | after.str.contains(r"^-?\d*$"))
    ).fill_null(False)
    frame = frame.with_columns(
        *[pl.col(h).replace("", None).alias(n) for h, n in zip(head, RECORD_FIELDS, strict=False)],
        statement=pl.col("_stmt").str.replace_all(_QQ, '"', literal=True).replace("", None),
        parameter=pl.col("_param").str.replace_all(_QQ, '"', literal=True).replace("", None),
        rows=after.replace("", None),
        truncated=pl.lit(False),
        unquoted_statement=pl.lit(False),
        ok=ok,
    )
    return frame.drop(c for c in frame.columns if c.startswith(("_f", "_rest", "_stmt", "_param")))


def parse_frame(entries: pl.DataFrame) -> pl.DataFrame:
    """Entries with the record's fields as columns: literal splits first, regexes for the rest."""
    fast = split_records(entries)
    if fast.get_column("ok").all():
        return fast.drop("ok")  # the usual case: entries keep their order, nothing to merge
    slow = fast.filter(~pl.col("ok")).select(entries.columns).with_columns(
        _rec=parse_records(pl.col("message"))
    ).unnest("_rec")
    done = pl.concat([fast.filter(pl.col("ok")).drop("ok"), slow], how="diagonal_relaxed")
    return done.sort("line", "part", nulls_last=False)


def category(klass: pl.Expr, command: pl.Expr, statement: pl.Expr) -> pl.Expr:
    """Event category of a record (declarative: CLASS_CATEGORY, COMMAND_CATEGORY)."""
    expr = pl.when(
        command.is_in(AUDIT_CONFIG_COMMANDS) & statement.str.contains(AUDIT_SETTING)
    ).then(pl.lit("audit_config"))
    for (cls, cmd), cat in COMMAND_CATEGORY.items():
        expr = expr.when((klass == cls) & (command == cmd)).then(pl.lit(cat))
    return expr.otherwise(klass.replace_strict(CLASS_CATEGORY, default="other"))


def audit_events(entries: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    """Map AUDIT entries to events; records that do not parse keep their entry, flagged."""
    rec = parse_frame(entries)
    parsed_ok = pl.col("audit_type").is_not_null()
    klass, command, stmt = pl.col("klass"), pl.col("command"), pl.col("statement")
    # rows of one statement (log_relation) are consecutive in their process; number the runs so
    # statement ids that restart in a new session never collide
    stmt_sub = pl.concat_str(pl.col("statement_id"), pl.lit("."), pl.col("substatement_id"))
    top = pl.col("statement_id")
    # per session, not per process: PostgreSQL reuses a pid for a later connection whose
    # statement ids restart at 1, which must not continue the previous session's statement
    session = ["_pid", pl.col("session_id").fill_null("")]
    rec = rec.with_columns(
        _run=(stmt_sub != stmt_sub.shift(1)).fill_null(True).cum_sum().over(session),
        _top_run=(top != top.shift(1)).fill_null(True).cum_sum().over(session),
    )
    stmt_key = pl.concat_str(
        pl.lit("S"), pl.col("session_id").fill_null(""), pl.lit("/"), stmt_sub, pl.lit("#"),
        pl.col("_run"),
    )
    # all substatements of one top-level statement: the access table counts them once
    stmt_group = pl.lit(ctx.digest + ":") + pl.col("line").first().over(
        *session, "_top_run"
    ).cast(pl.String)
    extra = extra_json(
        stmt_group=pl.when(parsed_ok).then(stmt_group),
        audit_type=pl.col("audit_type"),
        audit_class=klass,
        substatement_id=pl.col("substatement_id").cast(pl.Int64, strict=False),
        parameter=pl.col("parameter"),
        severity=pl.col("severity"),
        pid=pl.col("pid"),
        truncated=pl.when(pl.col("truncated")).then(True),
        unquoted_statement=pl.when(pl.col("unquoted_statement")).then(True),
        unparsed_record=pl.when(~parsed_ok).then(pl.col("message")),
        tz_assumed=pl.when(pl.col("tz_assumed")).then(True),
    )
    columns = base_columns(ctx) | {
        "source": pl.lit("pgaudit"),
        "category": pl.when(parsed_ok).then(category(klass, command, stmt)).otherwise(
            pl.lit("other")
        ),
        "action": pl.when(parsed_ok).then(command).otherwise(pl.lit("AUDIT")),
        "outcome": pl.when(parsed_ok).then(pl.lit("success")).otherwise(pl.lit("unknown")),
        "error": pl.lit(None, pl.String),
        # the naming convention of auditkit.schema (schema:payments, function:public.f)
        "object": object_name(pl.col("object_type"), pl.col("object_name")),
        "object_type": pl.col("object_type").str.to_lowercase(),
        "statement": stmt,
        "statement_id": pl.concat_str(pl.col("statement_id"), pl.lit("."),
                                      pl.col("substatement_id")),
        "rows": pl.col("rows").cast(pl.Int64, strict=False),
        "extra": extra,
        "_line": pl.col("line"),
        "_pid": pl.col("_pid"),
        "_is_stmt": parsed_ok,
        "_stmt_key": pl.when(parsed_ok).then(stmt_key),
        "_is_error": pl.lit(False),
        "_stmt_text": stmt,
    }
    return rec.select(**columns)


AUDIT_MESSAGE = r"^(?:[0-9A-Z]{5}: )?AUDIT: "


def entries_to_events(entries: pl.DataFrame, ctx: FileContext) -> pl.DataFrame:
    """Events of whole processes' entries: AUDIT records and the server's own entries."""
    is_audit = pl.col("message").str.contains(AUDIT_MESSAGE)
    entries = entries.with_columns(message=pl.col("message").str.replace(r"^\d{5}: ", ""))
    audit = audit_events(entries.filter(is_audit), ctx)
    plain = plain_events(entries.filter(~is_audit), ctx).with_columns(
        _stmt_text=pl.col("statement")
    )
    return correlate_outcomes(pl.concat([audit, plain], how="diagonal_relaxed"))


def read(text: str, ctx: FileContext) -> Parsed:
    """Read a PostgreSQL log holding pgaudit records (and the server's own entries)."""
    framed = read_entries(text, ctx.display, ctx.pg_prefix)
    events = events_by_process(framed, ctx, lambda entries: entries_to_events(entries, ctx))
    return to_parsed(framed, events, ctx)


_AUDIT_HEAD = re.compile(rb"AUDIT: (?:SESSION|OBJECT),\d+,\d+,")


def detect(head: bytes) -> bool:
    """A PostgreSQL log whose first 64 KB hold a pgaudit record."""
    return bool(_AUDIT_HEAD.search(head)) and detect_container(head) is not None


register(
    Source(
        "pgaudit",
        "pgaudit AUDIT records in PostgreSQL stderr/csvlog/jsonlog logs (SESSION and OBJECT)",
        detect,
        read,
        example="shared_preload_libraries='pgaudit' pgaudit.log='read,write,ddl,role' "
        "pgaudit.log_relation=on",
        priority=10,
    )
)
