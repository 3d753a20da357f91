"""Access reconstruction: who read, wrote, changed the schema of, granted on, or exported what.

One row per logical statement × object (× column where the statement names columns), from two
kinds of evidence that must agree on one answer:

- the source's own per-object rows (any event whose source set ``object`` and ``object_type``:
  pgaudit with ``log_relation`` gives one AUDIT row per relation, its class giving the access
  kind, its name resolved by the server), and
- SQL analysis of the statement text (objects read and written, columns).

A logical statement is the source's statement group (pgaudit: all rows and substatements of one
top-level statement, ``extra.stmt_group``) or else the single event. Within a group, an object is
counted once per access kind; where both kinds of evidence name the same table, the server's
resolved name wins (sqlglot assumes the ``public`` schema for unqualified names).
"""

from __future__ import annotations

import polars as pl

from auditkit.classify import Classification, load_classification
from auditkit.schema import ACCESS_KINDS, ACCESS_SCHEMA

# precedence of a group's categories for the objects it writes (strongest first)
WRITE_KIND_RANK = {"permission": 0, "schema": 1, "write": 2}
OUTCOME_RANK = {"failure": 0, "unknown": 1, "success": 2}


def statement_groups(events: pl.DataFrame) -> pl.DataFrame:
    """Access-relevant events with their logical statement ``group``."""
    group = pl.coalesce(pl.col("extra").str.json_path_match("$.stmt_group"), pl.col("event_id"))
    return events.filter(pl.col("category").is_in(ACCESS_KINDS)).with_columns(_group=group)


def _group_facts(grouped: pl.DataFrame) -> pl.DataFrame:
    """One row per group: who/when/outcome and the union of SQL-analysed objects and columns."""
    write_rank = pl.col("category").replace_strict(WRITE_KIND_RANK, default=None,
                                                   return_dtype=pl.Int8)
    return grouped.group_by("_group", maintain_order=True).agg(
        time=pl.col("time").first(),
        person=pl.col("person").first(),
        actor=pl.col("actor").first(),
        source=pl.col("source").first(),
        database=pl.col("database").first(),
        outcome=pl.col("outcome")
        .sort_by(pl.col("outcome").replace_strict(OUTCOME_RANK, default=1))
        .first(),
        first_event=pl.col("event_id").first(),
        first_category=pl.col("category").first(),
        # objects unknowable: statement not logged, or not parsed; else "no object" is an answer
        objects_unknown=(
            pl.col("statement").is_null()
            | pl.col("statement").str.starts_with("<")
            | pl.col("sql_error").is_not_null()
        ).any(),
        is_export=(pl.col("is_export").fill_null(False) | (pl.col("category") == "export")).any(),
        write_kind=pl.col("category").sort_by(write_rank, nulls_last=True).first(),
        write_rank=write_rank.min(),
        read_objs=_all_items("objects_read"),
        written_objs=_all_items("objects_written"),
        cols=_all_items("columns"),
    )


def _all_items(list_column: str) -> pl.Expr:
    """The distinct items of a list column across a group's rows."""
    items = pl.col(list_column).list.explode(keep_nulls=False, empty_as_null=False)
    return items.drop_nulls().unique(maintain_order=True)


def _bare(name: pl.Expr) -> pl.Expr:
    return name.str.extract(r"([^.]+)$", 1).str.to_lowercase()


def access_table(
    events: pl.DataFrame, classification: Classification | None = None
) -> pl.DataFrame:
    """The access table (``ACCESS_SCHEMA``) of enriched events."""
    classification = classification or load_classification()
    grouped = statement_groups(events)
    facts = _group_facts(grouped)
    # evidence 1: the source's own per-object rows
    # (a source names an object together with its type: pgaudit log_relation rows, MariaDB
    # TABLE events; enrichment's fallback object has no type)
    named = grouped.filter(pl.col("object").is_not_null() & pl.col("object_type").is_not_null())
    # in an export (COPY ... TO), what the statement reads leaves the database
    group_exports = facts.select("_group", _group_export="is_export")
    named_rows = named.join(group_exports, on="_group").select(
        "_group",
        "object",
        access=pl.when(pl.col("_group_export") & (pl.col("category") == "read"))
        .then(pl.lit("export"))
        .otherwise(pl.col("category")),
        event_id=pl.col("event_id"),
        _rank=pl.lit(0),
    )
    # evidence 2: SQL analysis of the statement text
    read_rows = facts.explode("read_objs").filter(pl.col("read_objs").is_not_null()).select(
        "_group",
        object=pl.col("read_objs"),
        access=pl.when(pl.col("is_export")).then(pl.lit("export")).otherwise(pl.lit("read")),
        event_id=pl.col("first_event"),
        _rank=pl.lit(1),
    )
    write_rows = facts.explode("written_objs").filter(pl.col("written_objs").is_not_null()).select(
        "_group",
        object=pl.col("written_objs"),
        access=pl.when(pl.col("write_rank").is_not_null())
        .then(pl.col("write_kind"))
        .otherwise(pl.lit("write")),
        event_id=pl.col("first_event"),
        _rank=pl.lit(1),
    )
    analysed = pl.concat([read_rows, write_rows]).with_columns(_bare=_bare(pl.col("object")))
    # the server's resolved name wins over sqlglot's schema assumption for the same table
    analysed = analysed.join(
        named_rows.select("_group", _bare=_bare(pl.col("object"))).unique(),
        on=["_group", "_bare"],
        how="anti",
    ).drop("_bare")
    rows = (
        pl.concat([named_rows, analysed])
        .sort("_rank", maintain_order=True)
        .unique(["_group", "object", "access"], keep="first", maintain_order=True)
    )
    # an export reads what it exports: within one statement, export subsumes read
    exported = rows.filter(pl.col("access") == "export").select("_group", "object")
    rows = pl.concat([
        rows.filter(pl.col("access") != "read"),
        rows.filter(pl.col("access") == "read").join(exported, on=["_group", "object"],
                                                     how="anti", nulls_equal=True),
    ]).sort("_rank", maintain_order=True)
    # groups with access but no object known (statement not logged, nothing named)
    unnamed = facts.join(rows.select("_group").unique(), on="_group", how="anti").filter(
        pl.col("objects_unknown")
    ).select(
        "_group",
        object=pl.lit(None, pl.String),
        access=pl.col("first_category"),
        event_id=pl.col("first_event"),
        _rank=pl.lit(2),
    )
    rows = pl.concat([rows, unnamed]).drop("_rank")
    rows = _with_columns_named(rows, facts)
    table = rows.join(facts.drop("cols", "read_objs", "written_objs"), on="_group", how="left")
    qualified = pl.concat_str(pl.col("object"), pl.lit("."), pl.col("column"))
    on_sensitive_table = pl.col("object").is_in(classification.sensitive_objects())
    table = table.with_columns(
        sensitive=classification.label(qualified).is_not_null().fill_null(False)
        | ((pl.col("column").is_null() | (pl.col("column") == "*")) & on_sensitive_table)
    )
    return table.select(
        (pl.col(c) if c in table.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in ACCESS_SCHEMA.items()
    ).sort("time", maintain_order=True)


def _with_columns_named(rows: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """Expand each (group, object) row into one row per column the statement names on it.

    Columns sqlglot could not tie to a table (``?.col``) go to the group's first object read,
    else its first object. Columns meet their table by bare, case-folded name, as the evidence
    is merged (the server's ``payments.Cards`` is sqlglot's ``public.cards``).
    """
    first_object = (
        rows.filter(pl.col("object").is_not_null())
        .group_by("_group", maintain_order=True)
        .agg(
            _fallback=pl.col("object")
            .sort_by(pl.col("access") != "read", maintain_order=True)
            .first()
        )
    )
    cols = (
        facts.select("_group", "cols")
        .explode("cols")
        .filter(pl.col("cols").is_not_null())
        .join(first_object, on="_group", how="left")
        .with_columns(
            _table=pl.when(pl.col("cols").str.starts_with("?."))
            .then(pl.col("_fallback"))
            .otherwise(pl.col("cols").str.replace(r"\.[^.]+$", "")),
            column=pl.col("cols").str.extract(r"([^.]+)$", 1),
        )
        .select("_group", _table=_bare(pl.col("_table")), column="column")
        .unique(maintain_order=True)
    )
    rows = rows.with_columns(_table=_bare(pl.col("object")))
    with_cols = rows.join(cols, on=["_group", "_table"], how="inner")
    without = rows.join(
        cols.select("_group", "_table").unique(), on=["_group", "_table"], how="anti"
    ).with_columns(column=pl.lit(None, pl.String))
    return pl.concat([with_cols, without], how="diagonal_relaxed").drop("_table")
