"""The event schema: the one contract between sources and everything downstream.

Every source maps its raw records onto ``EVENT_SCHEMA``; enrichment adds ``DERIVED_SCHEMA``;
records that cannot become events become rows of ``QUARANTINE_SCHEMA``. See ``docs/schema.md``.
"""

from __future__ import annotations

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "time": UTC_TIME,
    "source": pl.String(),
    "layer": pl.String(),
    "category": pl.String(),
    "action": pl.String(),
    "outcome": pl.String(),
    "error": pl.String(),
    "actor": pl.String(),
    "actor_type": pl.String(),
    "person": pl.String(),
    "src_ip": pl.String(),
    "client_app": pl.String(),
    "target": pl.String(),
    "database": pl.String(),
    "object": pl.String(),
    "object_type": pl.String(),
    "statement": pl.String(),
    "session_id": pl.String(),
    "statement_id": pl.String(),
    "rows": pl.Int64(),
    "event_id": pl.String(),
    "raw_ref": pl.String(),
    "extra": pl.String(),
}

DERIVED_SCHEMA: dict[str, pl.DataType] = {
    "statement_class": pl.String(),
    "objects_read": pl.List(pl.String()),
    "objects_written": pl.List(pl.String()),
    "columns": pl.List(pl.String()),
    "fingerprint": pl.String(),
    "sql_error": pl.String(),
    "sensitive": pl.Boolean(),
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "line": pl.Int64(),
    "format": pl.String(),
    "reason": pl.String(),
    "raw": pl.String(),
}

ACCESS_SCHEMA: dict[str, pl.DataType] = {
    "time": UTC_TIME,
    "person": pl.String(),
    "actor": pl.String(),
    "source": pl.String(),
    "database": pl.String(),
    "object": pl.String(),
    "column": pl.String(),
    "access": pl.String(),
    "outcome": pl.String(),
    "sensitive": pl.Boolean(),
    "event_id": pl.String(),
}

# How objects are named across sources (and by SQL analysis): relations schema-qualified and bare
# (`public.customers`), functions `function:schema.name` (no argument list), roles `role:name`,
# anything else `<kind>:<name>` (`schema:payments`, `extension:pgaudit`).
RELATION_KINDS = frozenset(
    {"TABLE", "VIEW", "MATERIALIZED VIEW", "INDEX", "SEQUENCE", "FOREIGN TABLE", "TOAST TABLE",
     "COMPOSITE TYPE", "PARTITIONED TABLE", "PARTITIONED INDEX"}
)
FUNCTION_KINDS = frozenset({"FUNCTION", "PROCEDURE", "ROUTINE", "AGGREGATE"})
ROLE_KINDS = frozenset({"ROLE", "USER", "GROUP"})


def object_name(kind: pl.Expr, name: pl.Expr) -> pl.Expr:
    """The object naming convention above, as an expression over a kind and a raw name."""
    kind = kind.str.to_uppercase()
    return (
        pl.when(name.is_null() | kind.is_null() | (kind == "") | (kind == "UNKNOWN"))
        .then(name)
        .when(kind.is_in(sorted(RELATION_KINDS)))
        .then(name)
        .when(kind.is_in(sorted(FUNCTION_KINDS)))
        .then(pl.lit("function:") + name.str.replace(r"\(.*\)$", ""))
        .when(kind.is_in(sorted(ROLE_KINDS)))
        .then(pl.lit("role:") + name)
        .otherwise(kind.str.to_lowercase().str.replace_all(" ", "_") + pl.lit(":") + name)
    )


CATEGORIES = (
    "read", "write", "schema", "permission", "export", "approval", "auth",
    "config", "provisioning", "network", "backup", "audit_config", "other",
)
OUTCOMES = ("success", "failure", "unknown")
ACCESS_KINDS = ("read", "write", "schema", "permission", "export")


def extra_json(**fields: pl.Expr) -> pl.Expr:
    """The ``extra`` column: JSON of the given fields, null-valued keys left out.

    Keys must be snake_case; a key's own null is removed with its comma, never text inside a
    string value (there a quote is escaped, so the patterns cannot match).
    """
    encoded = pl.struct(**fields).struct.json_encode()
    return (
        encoded.str.replace_all(r',"[a-z_]+":null', "")
        .str.replace(r'^\{"[a-z_]+":null,?', "{")
    )


MAX_KEY_SETS = 64  # extra_json_rows: beyond this many distinct sets of present keys, regexes


def extra_json_rows(frame: pl.DataFrame, **fields: pl.Expr) -> pl.Series:
    """``extra_json`` of scalar ``fields`` over ``frame``: the same text, row for row, made
    without the null-key regexes. Rows are encoded in groups sharing the same present keys, each
    group's struct holding only those (2-3x faster: removing keys from the text is the costly
    part). Many distinct key sets fall back to ``extra_json``."""
    names = list(fields)
    if len(names) > 63:  # one bit per field in a UInt64
        return frame.select(extra=extra_json(**fields)).get_column("extra")
    values = frame.select(**fields).with_columns(
        _keys=pl.sum_horizontal(
            pl.col(name).is_not_null().cast(pl.UInt64) * (1 << bit)
            for bit, name in enumerate(names)
        ),
        _row=pl.int_range(pl.len(), dtype=pl.UInt32),
    )
    key_sets = values.get_column("_keys").unique()
    if key_sets.len() > MAX_KEY_SETS:
        return frame.select(extra=extra_json(**fields)).get_column("extra")
    parts = []
    for keys, rows in values.partition_by("_keys", as_dict=True).items():
        present = [name for bit, name in enumerate(names) if keys[0] >> bit & 1]
        text = pl.struct(present).struct.json_encode() if present else pl.lit("{}")
        parts.append(rows.select("_row", extra=text))
    if not parts:
        return pl.Series("extra", [], dtype=pl.String)
    return pl.concat(parts).sort("_row").get_column("extra")


def empty_events() -> pl.DataFrame:
    """An empty frame with the event schema."""
    return pl.DataFrame(schema=EVENT_SCHEMA)


def empty_quarantine() -> pl.DataFrame:
    """An empty frame with the quarantine schema."""
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def conform(frame: pl.DataFrame | pl.LazyFrame, schema: dict[str, pl.DataType] = EVENT_SCHEMA):
    """Select exactly the schema's columns in order, adding missing ones as nulls and casting."""
    present = set(frame.collect_schema().names())
    return frame.select(
        [
            (pl.col(name) if name in present else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
