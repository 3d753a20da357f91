"""Enrichment: derived columns on events (SQL analysis, fallback category/action/object,
sensitivity). Sources leave ``category``/``action`` null where SQL analysis must decide."""

from __future__ import annotations

import polars as pl

from auditkit import sql
from auditkit.classify import Classification, load_classification
from auditkit.schema import DERIVED_SCHEMA, EVENT_SCHEMA

# which sqlglot dialect reads each source's statements; other sources carry no SQL
SOURCE_DIALECT: dict[str, str] = {
    "pgaudit": "postgres",
    "postgres": "postgres",
    "mysql_enterprise": "mysql",
    "percona": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
    "azure_sql": "tsql",
    "oracle": "oracle",
    # Bytebase does not log the engine behind an instance: read as PostgreSQL (the most common
    # Bytebase target; sqlglot's postgres dialect also reads plain MySQL DML)
    "bytebase": "postgres",
}
ANALYSIS_COLUMNS = ("statement_class", "sql_category", "objects_read", "objects_written",
                    "columns", "fingerprint", "sql_error", "is_export")


# Statements that differ only in literal values share their analysis: sqlglot runs once per key.
# String literals and numbers are replaced; $$-quoted bodies and identifiers are kept.
LITERAL_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"'(?:[^']|'')*'", "?"),
    (r"\b\d+(?:\.\d+)?\b", "0"),
    (r"\s+", " "),
)


def literal_key(statement: pl.Expr) -> pl.Expr:
    """The statement with literals replaced: the unit SQL analysis runs on."""
    for pattern, replacement in LITERAL_PATTERNS:
        statement = statement.str.replace_all(pattern, replacement)
    return statement.str.strip_chars()


def sensitivity(analysis: pl.DataFrame, classification: Classification) -> pl.Expr:
    """Whether each analysed statement touches a sensitive column (or a table with declared
    sensitive columns). Evaluated on the small per-statement table, not per event."""
    by_column = (
        pl.col("columns").list.eval(classification.label(pl.element()).is_not_null()).list.any()
    )
    objects = classification.sensitive_objects()
    if not objects:
        return by_column.fill_null(False)
    by_table = (
        pl.concat_list("objects_read", "objects_written")
        .list.eval(pl.element().is_in(objects))
        .list.any()
    )
    return (by_column | by_table).fill_null(False)


# The schema unqualified names belong to: PostgreSQL's default search_path, MySQL's current
# database (MySQL databases are schemas: `shop.orders`, as the server's own table events say).
DIALECT_DEFAULT_SCHEMA: dict[str, str | None] = {"postgres": "public", "mysql": None}


def analyze_sql(events: pl.DataFrame, classification: Classification | None = None,
                cache: dict | None = None) -> pl.DataFrame:
    """Join SQL analysis onto events.

    sqlglot runs once per distinct literal-normalized statement (per dialect and default
    schema), never per event: a million executions of one prepared statement cost one parse.
    ``cache`` (a dict the caller keeps) carries analyses from one call to the next, for events
    enriched in parts (``auditkit.stream``).
    """
    classification = classification or load_classification()
    dialect = (
        pl.when((pl.col("source") == "gcp_audit") & (pl.col("layer") == "workflow"))
        .then(pl.lit("mysql"))  # Cloud SQL for MySQL audit entries; GCP API events hold JSON
        .otherwise(pl.col("source").replace_strict(SOURCE_DIALECT, default=None))
    )
    events = events.with_columns(_dialect=dialect).with_columns(
        _schema=pl.col("_dialect").replace_strict(
            DIALECT_DEFAULT_SCHEMA, default="public", return_dtype=pl.String
        ).fill_null(pl.col("database").fill_null("?"))
    )
    units = events.filter(pl.col("_dialect").is_not_null()).select(
        "_dialect", "_schema", "statement"
    ).drop_nulls().unique()
    analyses = []
    for (name, schema), distinct in units.group_by("_dialect", "_schema"):
        distinct = distinct.with_columns(_key=literal_key(pl.col("statement")))
        representatives = distinct.unique("_key", keep="first", maintain_order=True)
        known = cache.get((name, schema)) if cache is not None else None
        if known is not None:
            representatives = representatives.join(known.select("_key"), on="_key", how="anti")
        analysis = sql.analyze_frame(
            representatives.get_column("statement"), dialect=name, default_schema=schema
        )
        analysis = analysis.with_columns(sensitive=sensitivity(analysis, classification))
        by_key = representatives.select("statement", "_key").join(
            analysis, on="statement", how="inner"
        ).drop("statement")
        if cache is not None:
            if known is not None:
                by_key = pl.concat([known, by_key], how="vertical_relaxed")
            cache[(name, schema)] = by_key
        analyses.append(distinct.join(by_key, on="_key", how="left").drop("_key"))
    if analyses:
        joined = events.join(
            pl.concat(analyses, how="diagonal_relaxed"),
            on=["_dialect", "_schema", "statement"],
            how="left",
            nulls_equal=False,
        )
    else:
        joined = events
    for col in (*ANALYSIS_COLUMNS, "sensitive"):
        if col not in joined.columns:
            dtype = DERIVED_SCHEMA.get(col, pl.Boolean() if col == "is_export" else pl.String())
            joined = joined.with_columns(pl.lit(None, dtype).alias(col))
    return joined.drop("_dialect", "_schema")


def enrich(events: pl.DataFrame, classification: Classification | None = None,
           cache: dict | None = None) -> pl.DataFrame:
    """Events with the derived columns of ``DERIVED_SCHEMA`` (plus ``sql_category``/``is_export``).

    Category and action that a source left null come from SQL analysis (a failed statement the
    audit log never recorded, a ``log_statement`` line); the primary ``object`` falls back to the
    first object written, then read (``object_type`` stays what the source said, so the source's
    own per-object rows remain recognisable).
    """
    classification = classification or load_classification()
    analysed = analyze_sql(events, classification, cache)
    empty = pl.lit([], pl.List(pl.String))
    enriched = analysed.with_columns(
        objects_read=pl.col("objects_read").fill_null(empty),
        objects_written=pl.col("objects_written").fill_null(empty),
        columns=pl.col("columns").fill_null(empty),
        category=pl.coalesce("category", "sql_category", pl.lit("other")),
        action=pl.coalesce("action", "statement_class", pl.lit("UNKNOWN")),
        object=pl.coalesce(
            "object", pl.col("objects_written").list.first(), pl.col("objects_read").list.first()
        ),
        sensitive=pl.col("sensitive").fill_null(False),
    )
    order = [*EVENT_SCHEMA, *DERIVED_SCHEMA, "sql_category", "is_export"]
    return enriched.select(order).with_columns(
        pl.col(c).cast(t) for c, t in (EVENT_SCHEMA | DERIVED_SCHEMA).items()
    )
