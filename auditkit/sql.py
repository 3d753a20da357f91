"""SQL analysis: what a statement is, which objects it reads and writes, and its fingerprint.

One statement in, one :class:`StatementAnalysis` out::

    a = analyze_statement("UPDATE customers c SET email = o.email FROM orders o WHERE o.cid = c.id")
    a.statement_class, a.category          # ('UPDATE', 'write')
    a.objects_read, a.objects_written      # (['public.orders'], ['public.customers'])
    a.columns    # ['public.customers.email', 'public.customers.id', 'public.orders.cid', ...]

On frames, sqlglot runs once per *distinct* statement and the results are joined back::

    events = enrich_sql(events)    # + statement_class, objects_read, ..., sql_category, is_export

Conventions downstream code and analysts rely on:

- Objects are ``schema.name``. Identifiers follow PostgreSQL rules, whatever the dialect:
  unquoted ones are lower-cased; quoted ones keep their case
  and are re-quoted only when needed, as PostgreSQL's ``quote_ident`` does
  (``public."Weird Name"``). Unqualified names get ``default_schema``: we assume the default
  ``search_path`` and track neither ``SET search_path`` nor temporary tables. A leading
  database name (``db.schema.table``) is dropped.
- Objects that are not relations carry a kind prefix: ``role:alice``, ``schema:sales``,
  ``function:public.f``, ``database:shop``, ``extension:pgaudit``.
- Views are reported under their own name; their definitions are not expanded.
- A DML target is written, not read, unless the statement reads it elsewhere too or returns
  rows from it (``RETURNING``).
- Columns are ``schema.table.column`` (``schema.table.*`` for a star); ``?.column`` when the
  table cannot be told. Columns of CTEs and derived tables are not listed: the base-table
  columns they are built from are.
- Statements sqlglot cannot parse, or parses only as an opaque command, are analysed from their
  leading keywords and a few cheap regular expressions, and ``sql_error`` says so. Statement
  kinds whose keywords say everything there is to say (``SET``, ``BEGIN``, ``CREATE ROLE``, ...)
  get no error. To bound time, statements over ``MAX_PARSE_CHARS`` or with many JOINs lacking
  ON (on which sqlglot backtracks exponentially) skip sqlglot too.
- ``EXPLAIN``, ``PREPARE`` and ``DECLARE ... CURSOR`` report the objects of the statement they
  wrap; their category is the wrapped statement's when it runs (``EXPLAIN ANALYZE``,
  ``DECLARE``), else ``other``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from auditkit.schema import FUNCTION_KINDS, RELATION_KINDS

_SQLGLOT_LOGGER = logging.getLogger("sqlglot")
if _SQLGLOT_LOGGER.level == logging.NOTSET:
    # sqlglot warns once per statement it can only parse as an opaque Command; on an audit log
    # that is thousands of lines of noise. A level the application set explicitly is respected.
    _SQLGLOT_LOGGER.setLevel(logging.ERROR)

NOT_LOGGED = frozenset({"<not logged>", "<previously logged>"})
"""pgaudit's placeholders for statement text it did not write; lower-case."""

MAX_PARSE_CHARS = 100_000
"""Longer statements get the keyword analysis only, to bound time."""

MAX_UNMATCHED_JOINS = 8
"""Statements with more JOINs lacking ON/USING get the keyword analysis only, to bound time."""

CATEGORY_PRECEDENCE = (
    "export", "permission", "schema", "write", "read", "audit_config", "config", "other",
)
"""Strongest first: the category of a multi-statement string is its strongest statement's."""

ANALYSIS_SCHEMA: dict[str, pl.DataType] = {
    "statement": pl.String(),
    "statement_class": pl.String(),
    "sql_category": pl.String(),
    "objects_read": pl.List(pl.String()),
    "objects_written": pl.List(pl.String()),
    "columns": pl.List(pl.String()),
    "fingerprint": pl.String(),
    "sql_error": pl.String(),
    "is_export": pl.Boolean(),
}
"""Columns of :func:`analyze_frame`; all but ``statement`` are added by :func:`enrich_sql`."""


@dataclass(frozen=True)
class StatementAnalysis:
    """What one SQL string does. Lists are sorted and free of duplicates."""

    statement_class: str | None
    category: str | None
    objects_read: list[str]
    objects_written: list[str]
    columns: list[str]
    fingerprint: str | None
    sql_error: str | None
    is_export: bool


# --------------------------------------------------------------------------------------------
# Tables: statement classes, categories and settings
# --------------------------------------------------------------------------------------------

_MODIFIERS = (
    r"(?:(?:OR\s+REPLACE|GLOBAL|LOCAL|TEMP|TEMPORARY|UNLOGGED|UNIQUE|RECURSIVE|TRUSTED"
    r"|PROCEDURAL|CONSTRAINT|DEFAULT)\s+)*"
)
_OBJECT_KINDS = (
    r"MATERIALIZED\s+VIEW|FOREIGN\s+TABLE|FOREIGN\s+DATA\s+WRAPPER|EVENT\s+TRIGGER"
    r"|USER\s+MAPPING|TEXT\s+SEARCH\s+\w+|ACCESS\s+METHOD|TABLESPACE|TABLE|VIEW|INDEX|SCHEMA"
    r"|FUNCTION|PROCEDURE|ROUTINE|AGGREGATE|SEQUENCE|DATABASE|TRIGGER|TYPE|DOMAIN|EXTENSION"
    r"|POLICY|RULE|OPERATOR|CAST|COLLATION|CONVERSION|LANGUAGE|PUBLICATION|SUBSCRIPTION|SERVER"
    r"|STATISTICS|OWNED"
)

# Leading keywords (upper-cased, single-spaced) -> PostgreSQL command tag. First match wins.
_CLASS_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), tag)
    for pattern, tag in (
        (r"(?:SELECT|VALUES|TABLE)\b", "SELECT"),
        (r"(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|COPY)\b", r"\1"),
        (r"(CREATE|ALTER|DROP) (?:ROLE|USER|GROUP)\b(?! MAPPING)", r"\1 ROLE"),
        (r"ALTER (SYSTEM|DEFAULT PRIVILEGES)\b", r"ALTER \1"),
        (rf"CREATE {_MODIFIERS}TABLE (?:IF NOT EXISTS )?[^\s(]+ ?(?:\([^()]*\) ?)?AS\b",
         "CREATE TABLE AS"),
        (rf"(CREATE|ALTER|DROP) {_MODIFIERS}({_OBJECT_KINDS})\b", r"\1 \2"),
        (r"(PREPARE TRANSACTION|COMMIT PREPARED|ROLLBACK PREPARED)\b", r"\1"),
        (r"(?:COMMIT|END)\b", "COMMIT"),
        (r"(?:ROLLBACK|ABORT)\b", "ROLLBACK"),
        (r"(?:ANALYZE|ANALYSE)\b", "ANALYZE"),
        (r"LOCK\b", "LOCK TABLE"),
        (r"DECLARE\b", "DECLARE CURSOR"),
        (r"(GRANT|REVOKE|SET|RESET|SHOW|BEGIN|START TRANSACTION|SAVEPOINT|RELEASE|PREPARE"
         r"|EXECUTE|DEALLOCATE|DO|CALL|VACUUM|EXPLAIN|COMMENT|LISTEN|UNLISTEN|NOTIFY|DISCARD"
         r"|CHECKPOINT|LOAD|FETCH|MOVE|CLOSE|REINDEX|CLUSTER|REASSIGN OWNED|SECURITY LABEL"
         r"|IMPORT FOREIGN SCHEMA|REFRESH MATERIALIZED VIEW)\b", r"\1"),
    )
)

_CATEGORY_BY_CLASS: dict[str, str] = {
    "SELECT": "read",
    "DECLARE CURSOR": "read",
    "INSERT": "write",
    "UPDATE": "write",
    "DELETE": "write",
    "MERGE": "write",
    "TRUNCATE": "write",
    "COPY": "write",
    "REFRESH MATERIALIZED VIEW": "write",
    "GRANT": "permission",
    "REVOKE": "permission",
    "CREATE ROLE": "permission",
    "ALTER ROLE": "permission",
    "DROP ROLE": "permission",
    "ALTER DEFAULT PRIVILEGES": "permission",
    "REASSIGN OWNED": "permission",
    "DROP OWNED": "permission",
    "SET": "config",
    "RESET": "config",
    "ALTER SYSTEM": "config",
    "COMMENT": "schema",
    "SECURITY LABEL": "schema",
}
_SCHEMA_VERBS = frozenset({"CREATE", "ALTER", "DROP"})

# Classes whose keywords tell everything there is to know: no sql_error when sqlglot could only
# parse them as an opaque Command.
_KEYWORD_COMPLETE = frozenset({
    "SET", "RESET", "SHOW", "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT",
    "RELEASE", "PREPARE TRANSACTION", "COMMIT PREPARED", "ROLLBACK PREPARED", "DEALLOCATE",
    "DISCARD", "LISTEN", "UNLISTEN", "NOTIFY", "CHECKPOINT", "LOAD", "FETCH", "MOVE", "CLOSE",
    "EXECUTE", "CALL", "VACUUM", "ANALYZE", "LOCK TABLE", "REINDEX", "CLUSTER", "CREATE ROLE",
    "ALTER ROLE", "DROP ROLE", "ALTER SYSTEM", "REFRESH MATERIALIZED VIEW", "CREATE EXTENSION",
    "ALTER EXTENSION", "DROP EXTENSION", "DROP OWNED", "REASSIGN OWNED",
})

# Classes that wrap another statement: the regex finds where it starts; the flag says whether
# the wrapped statement runs (and so lends its category).
_WRAPPERS: dict[str, tuple[re.Pattern[str], bool]] = {
    "EXPLAIN": (
        re.compile(r"\s*EXPLAIN\s*(?:\([^()]*\)\s*|(?:ANALYZE|ANALYSE|VERBOSE)\b\s*)*", re.I),
        False,
    ),
    "PREPARE": (
        re.compile(r"\s*PREPARE\s+(?:\"[^\"]*\"|\w+)\s*(?:\([^()]*\))?\s*AS\b\s*", re.I),
        False,
    ),
    "DECLARE CURSOR": (re.compile(r"\s*DECLARE\b.*?\bCURSOR\b.*?\bFOR\b\s*", re.I | re.S), True),
}
_EXPLAIN_ANALYZE = re.compile(
    r"\s*EXPLAIN\s*(?:ANALY[SZ]E\b|\((?:[^()]*,)?\s*ANALY[SZ]E\b(?!\s+(?:FALSE|OFF|0)\b))", re.I
)

# Settings that control what is audited or logged (also reached through ALTER ROLE/DATABASE/
# SYSTEM ... SET, and set_config()): changing them is audit configuration, not plain config.
_AUDIT_SETTING = re.compile(
    r"(?:pgaudit\.|log_|logging_collector$|shared_preload_libraries$|session_preload_libraries$)",
    re.I,
)
_SETTING_CLASSES = frozenset({"SET", "RESET", "ALTER SYSTEM", "ALTER ROLE", "ALTER DATABASE"})
_SETTING_NAME = re.compile(r"\b(?:SET|RESET)\s+(?:SESSION\s+|LOCAL\s+)?(\"[^\"]+\"|[\w.]+)", re.I)
_SET_CONFIG_AUDIT = re.compile(r"\bset_config\s*\(\s*'\s*(?:pgaudit\.|log_)", re.I)

# one naming convention with the sources (auditkit.schema.object_name)
_RELATION_KINDS = RELATION_KINDS
_FUNCTION_KINDS = FUNCTION_KINDS

# --------------------------------------------------------------------------------------------
# Lexing helpers (regex): comments, strings, identifiers
# --------------------------------------------------------------------------------------------

# One lexeme at a time, so a quote inside a comment (or `--` inside a string) cannot confuse us.
# Unterminated strings and comments (truncated log lines) run to the end of the text.
_LEXEME = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<string>(?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z)"  # E'...' has backslash escapes
    r"|'(?:[^']|'')*(?:'|\Z)"
    r"|\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z))"
    r"|(?P<ident>\"(?:[^\"]|\"\")*(?:\"|\Z))"
    r"|(?P<semicolon>;)",
    re.S,
)
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_NAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}}"
_NAMES = rf"{_NAME}(?:\s*,\s*{_NAME})*"
_PLAIN_IDENT = re.compile(r"[a-z_][a-z0-9_$]*")
_PLACEHOLDER = re.compile(r"<[A-Za-z][\w ]{0,30}>")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _strip_sql(text: str, string: str = "''") -> str:
    """Comments blanked, string literals replaced by ``string``; identifiers kept."""

    def replace(match: re.Match[str]) -> str:
        if match.group("comment") is not None:
            return " "
        if match.group("string") is not None:
            return string
        return match.group()

    return _LEXEME.sub(replace, text)


def _split_statements(text: str) -> list[str]:
    """Split on semicolons outside strings, identifiers and comments (regex, no sqlglot)."""
    pieces, start = [], 0
    for match in _LEXEME.finditer(text):
        if match.group("semicolon") is not None:
            pieces.append(text[start : match.start()])
            start = match.end()
    pieces.append(text[start:])
    return [piece for piece in pieces if _strip_sql(piece).strip()]


def _unquote(identifier: str) -> str:
    """Normalize one identifier as PostgreSQL does: quoted verbatim, unquoted lower-cased."""
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()


def _quote(name: str) -> str:
    """Render a normalized identifier, quoting it only when needed (like ``quote_ident``)."""
    return name if _PLAIN_IDENT.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def _name_parts(text: str) -> list[str]:
    """``'db."My Schema".t'`` -> ``['db', 'My Schema', 't']``."""
    return [_unquote(part) for part in re.findall(_IDENT, text)]


def _split_names(text: str) -> list[list[str]]:
    """A comma-separated name list, each as its parts."""
    return [_name_parts(name) for name in re.findall(_NAME, text)]


# --------------------------------------------------------------------------------------------
# Object names
# --------------------------------------------------------------------------------------------


def _relation(parts: list[str], default_schema: str) -> str:
    """``schema.name`` from ``[..., schema, name]``; a database prefix is dropped."""
    schema = parts[-2] if len(parts) >= 2 else default_schema
    return f"{_quote(schema)}.{_quote(parts[-1])}"


def _named_object(kind: str, parts: list[str], default_schema: str) -> str:
    """The reported name of an object of ``kind`` (``TABLE``, ``SCHEMA``, ``ROLE``, ...)."""
    kind = " ".join(kind.upper().split())
    if kind in _RELATION_KINDS:
        return _relation(parts, default_schema)
    if kind in _FUNCTION_KINDS:
        return "function:" + _relation(parts, default_schema)
    if kind in {"ROLE", "USER", "GROUP"}:
        return "role:" + ("*" if parts[-1] == "all" else _quote(parts[-1]))
    return f"{kind.lower().replace(' ', '_')}:{_quote(parts[-1])}"


def _ident(node: exp.Expr | None) -> str | None:
    """Normalized text of an identifier node."""
    if isinstance(node, exp.Identifier):
        return node.this if node.quoted else node.this.lower()
    if isinstance(node, exp.Expr) and node.name:
        return node.name.lower()
    return None


def _table_parts(table: exp.Table) -> list[str]:
    """``[schema, name]`` (or fewer) of a table node; the catalog is dropped."""
    parts = [_ident(table.args.get("db")), _ident(table.this)]
    return [part for part in parts if part]


def _kind(node: exp.Expr) -> str:
    """The object kind of a DDL/GRANT node, upper-cased (``TABLE`` when absent)."""
    kind = node.args.get("kind")
    text = kind.name if isinstance(kind, exp.Expr) else kind
    if isinstance(node, (exp.Create, exp.Drop)) and text == "VIEW":
        materialized = node.args.get("materialized") or node.find(exp.MaterializedProperty)
        return "MATERIALIZED VIEW" if materialized else "VIEW"
    return str(text).upper() if text else "TABLE"


# --------------------------------------------------------------------------------------------
# Statement class and category
# --------------------------------------------------------------------------------------------


def _tree_class(node: exp.Expr | None) -> str | None:
    """The command tag when the tree says more than the leading keywords (``WITH``, ``AS``)."""
    if isinstance(node, (exp.Query, exp.Values)):
        return "SELECT"
    if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        return type(node).__name__.upper()
    if isinstance(node, exp.Create) and isinstance(node.expression, exp.Query):
        return "CREATE TABLE AS" if _kind(node) == "TABLE" else None
    return None


def _main_verb(stripped: str) -> str:
    """The statement after a ``WITH`` clause: first DML keyword outside parentheses."""
    depth = 0
    for match in re.finditer(r"[()]|\b(SELECT|INSERT|UPDATE|DELETE|MERGE|VALUES|TABLE)\b",
                             stripped, re.I):
        if match.group() == "(":
            depth += 1
        elif match.group() == ")":
            depth -= 1
        elif depth == 0:
            verb = match.group().upper()
            return "SELECT" if verb in {"VALUES", "TABLE"} else verb
    return "SELECT"


def _classify(stripped: str, node: exp.Expr | None = None) -> str:
    """PostgreSQL-like command tag from the tree, else the leading keywords; ``OTHER``."""
    tree_class = _tree_class(node)
    if tree_class:
        return tree_class
    body = re.sub(r"^[\s(]+", "", stripped)
    head = " ".join(body[:2000].split()).upper()
    if re.match(r"WITH\b", head):
        return _main_verb(body)
    for pattern, tag in _CLASS_RULES:
        match = pattern.match(head)
        if match:
            return match.expand(tag)
    return "OTHER"


def _copy_direction(node: exp.Expr | None, stripped: str) -> str | None:
    """``'to'`` or ``'from'`` for a COPY, from the tree if parsed, else the text."""
    if isinstance(node, exp.Copy):
        return "from" if node.args.get("kind") else "to"
    if re.search(r"\bTO\s+(?:STDOUT\b|PROGRAM\b|'')", stripped, re.I):
        return "to"
    if re.search(r"\bFROM\s+(?:STDIN\b|PROGRAM\b|'')", stripped, re.I):
        return "from"
    # COPY (query) can only go TO somewhere.
    return "to" if re.match(r"\s*COPY\s*\(", stripped, re.I) else None


def _settings(stripped: str) -> list[str]:
    """Names of the settings a SET/RESET/ALTER ... SET statement touches."""
    return [_unquote(name) for name in _SETTING_NAME.findall(stripped)]


_INTO_FILE = re.compile(r"\bINTO\s+(?:OUTFILE|DUMPFILE)\b", re.I)


def _category(cls: str, stripped: str, text: str, node: exp.Expr | None, writes: bool) -> str:
    """The event category of one statement of class ``cls`` (``writes``: it writes objects,
    as ``SELECT ... INTO`` and data-modifying CTEs do)."""
    verb = cls.split(" ", 1)[0]
    category = _CATEGORY_BY_CLASS.get(cls) or ("schema" if verb in _SCHEMA_VERBS else "other")
    if cls == "COPY":
        direction = _copy_direction(node, stripped)
        return {"to": "export", "from": "write"}.get(direction or "", "other")
    if cls == "SELECT":
        if _SET_CONFIG_AUDIT.search(text):
            return "audit_config"
        if _INTO_FILE.search(stripped):  # MySQL: rows leave the database into a server file
            return "export"
        return "write" if writes else category
    if cls.endswith(" EXTENSION") and re.search(r"\bpgaudit\b", stripped, re.I):
        return "audit_config"
    if cls in _SETTING_CLASSES:
        settings = _settings(stripped)
        if any(_AUDIT_SETTING.match(name) for name in settings):
            return "audit_config"
        if settings and cls in {"ALTER ROLE", "ALTER DATABASE"}:
            return "config"
    return category


# --------------------------------------------------------------------------------------------
# Objects from the tree
# --------------------------------------------------------------------------------------------

_DML = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
# Trees we analyse; anything else (Command, or a misparse such as `LISTEN x` read as an alias)
# gets the keyword analysis.
_STATEMENTS = (
    exp.Query, exp.Values, *_DML, exp.TruncateTable, exp.Copy, exp.Create, exp.Alter, exp.Drop,
    exp.Grant, exp.Revoke, exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.Analyze,
    exp.Comment,
)


def _is_relation(table: exp.Table) -> bool:
    """A named table/view reference, not a table function such as ``generate_series(...)``, nor
    the alias a locking clause names (``FOR KEY SHARE OF x``)."""
    return isinstance(table.this, exp.Identifier) and not isinstance(
        table.parent, (exp.JoinHint, exp.Lock)
    )


def _is_cte_reference(table: exp.Table) -> bool:
    """Whether an unqualified table name refers to a CTE visible at that point.

    From the body of a ``WITH``, every CTE is visible; from inside CTE number i, only the ones
    before it, unless the ``WITH`` is ``RECURSIVE``.
    """
    if table.args.get("db") or not isinstance(table.this, exp.Identifier):
        return False
    name = _ident(table.this)
    node: exp.Expr = table
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.With):
            index = next(i for i, cte in enumerate(parent.expressions) if cte is node)
            visible = parent.expressions if parent.recursive else parent.expressions[:index]
        elif isinstance(parent.args.get("with_"), exp.With) and node is not parent.args["with_"]:
            visible = parent.args["with_"].expressions
        else:
            visible = []
        if any(_ident(cte.args["alias"].this) == name for cte in visible):
            return True
        node = parent
    return False


def _unwrap_schema(node: exp.Expr | None) -> exp.Expr | None:
    """``t (a, b)`` (a Schema) -> ``t``."""
    return node.this if isinstance(node, exp.Schema) else node


def _dml_target(node: exp.Expr) -> exp.Table | None:
    """The table an INSERT/UPDATE/DELETE/MERGE/COPY writes (or COPY TO reads)."""
    target = _unwrap_schema(node.this)
    if isinstance(node, exp.Update) and target is None:  # MERGE ... WHEN ... THEN UPDATE
        merge = node.find_ancestor(exp.Merge)
        target = merge.this if merge else None
    return target if isinstance(target, exp.Table) and _is_relation(target) else None


def _of_type(nodes: list[exp.Expr], *types: type[exp.Expr]) -> Iterator[exp.Expr]:
    """The nodes of a pre-walked tree that are of one of ``types`` (one walk serves all)."""
    return (node for node in nodes if isinstance(node, types))


def _write_targets(
    node: exp.Expr, nodes: list[exp.Expr], schema: str
) -> Iterator[tuple[exp.Expr | None, str]]:
    """(node, object name) for each object the statement writes or changes, including the
    targets of data-modifying CTEs (``WITH d AS (DELETE FROM t RETURNING *) SELECT ...``)."""
    if isinstance(node, exp.Copy) and node.args.get("kind"):
        target = _dml_target(node)
        if target is not None:
            yield target, _relation(_table_parts(target), schema)
    for dml in _of_type(nodes, *_DML):
        target = _dml_target(dml)
        if target is not None:
            yield target, _relation(_table_parts(target), schema)
    for into in _of_type(nodes, exp.Into):
        if isinstance(into.parent, exp.Select) and isinstance(into.this, exp.Table):
            yield into.this, _relation(_table_parts(into.this), schema)
    if isinstance(node, exp.TruncateTable):
        for table in node.expressions:
            yield table, _relation(_table_parts(table), schema)
    elif isinstance(node, exp.Create):
        yield from _created(node, schema)
    elif isinstance(node, exp.Alter) and isinstance(node.this, exp.Table):
        parts = _table_parts(node.this)
        yield node.this, _named_object(_kind(node), parts, schema)
        for rename in node.find_all(exp.AlterRename):
            if isinstance(rename.this, exp.Table):  # an unqualified new name stays in its schema
                new_parts = parts[:-1] + _table_parts(rename.this)[-1:]
                yield rename.this, _named_object(_kind(node), new_parts, schema)
    elif isinstance(node, exp.Drop):
        for table in node.args.get("tables") or []:
            if isinstance(table, exp.Table):
                yield table, _named_object(_kind(node), _table_parts(table), schema)
    elif isinstance(node, (exp.Grant, exp.Revoke, exp.Comment)):
        securable = node.args.get("securable") or node.this
        if isinstance(securable, exp.Table):
            yield securable, _named_object(_kind(node), _table_parts(securable), schema)


def _created(node: exp.Create, schema: str) -> Iterator[tuple[exp.Expr | None, str]]:
    """The object a CREATE makes; for an index, the table it is built on."""
    this = _unwrap_schema(node.this)
    if isinstance(this, exp.Index):
        table = this.args.get("table")
        if isinstance(table, exp.Table):
            yield table, _relation(_table_parts(table), schema)
    elif isinstance(this, exp.UserDefinedFunction) and isinstance(this.this, exp.Table):
        yield this.this, _named_object(_kind(node), _table_parts(this.this), schema)
    elif isinstance(this, exp.Table) and _table_parts(this):
        yield this, _named_object(_kind(node), _table_parts(this), schema)


def _read_root(node: exp.Expr) -> exp.Expr | None:
    """The part of a statement whose tables are read."""
    if isinstance(node, (exp.Query, exp.Values, exp.Copy, *_DML)):
        return node
    if isinstance(node, exp.Create) and isinstance(node.expression, exp.Query):
        # CREATE VIEW only stores the query: no data is read (CREATE TABLE AS and
        # CREATE MATERIALIZED VIEW run it)
        if _kind(node) == "VIEW" and not _is_materialized(node):
            return None
        return node.expression
    return None


def _is_materialized(node: exp.Create) -> bool:
    properties = node.args.get("properties")
    return bool(properties) and any(
        isinstance(p, exp.MaterializedProperty) for p in properties.expressions
    )


def _tree_objects(node: exp.Expr, nodes: list[exp.Expr], schema: str) -> tuple[set[str], set[str]]:
    """(objects read, objects written) of a parsed statement."""
    targets = list(_write_targets(node, nodes, schema))
    written = {name for _, name in targets}
    target_ids = {id(target) for target, _ in targets}
    read: set[str] = set()
    root = _read_root(node)
    if root is not None:
        tables = _of_type(nodes, exp.Table) if root is node else root.find_all(exp.Table)
        for table in tables:
            if id(table) not in target_ids and _is_relation(table) and not _is_cte_reference(table):
                read.add(_relation(_table_parts(table), schema))
    for dml in _of_type(nodes, *_DML):
        target = _dml_target(dml)
        if target is not None and dml.args.get("returning"):
            read.add(_relation(_table_parts(target), schema))
    return read, written


# --------------------------------------------------------------------------------------------
# Columns from the tree
# --------------------------------------------------------------------------------------------

# Nodes that bring tables into scope for the column references below them.
_SCOPES = (
    exp.Select, exp.Update, exp.Delete, exp.Merge, exp.Insert, exp.Copy, exp.Create, exp.Alter,
    exp.Grant, exp.Revoke,
)
_COLUMN_STATEMENTS = (exp.Query, exp.Values, *_SCOPES)

_Sources = dict[str, str | None]
"""Name visible in a scope -> relation, or None for a CTE, derived table or table function."""


def _source_entry(relation: exp.Expr, schema: str) -> tuple[str, str | None]:
    """(visible name, relation) for one FROM/JOIN/USING item."""
    if isinstance(relation, exp.Table) and _is_relation(relation):
        alias = _ident(relation.args["alias"].this) if relation.args.get("alias") else None
        name = alias or _ident(relation.this) or ""
        if _is_cte_reference(relation):
            return name, None
        return name, _relation(_table_parts(relation), schema)
    return (relation.alias or "").lower(), None


def _scope_relations(scope: exp.Expr) -> list[exp.Expr]:
    """The FROM/JOIN/USING/target items a scope node makes visible."""
    relations: list[exp.Expr | None] = []
    if isinstance(scope, (exp.Update, exp.Delete, exp.Merge, exp.Insert, exp.Copy, exp.Alter)):
        relations.append(_unwrap_schema(scope.this))
    elif isinstance(scope, exp.Create):
        this = _unwrap_schema(scope.this)
        relations.append(this.args.get("table") if isinstance(this, exp.Index) else this)
    elif isinstance(scope, (exp.Grant, exp.Revoke)) and _kind(scope) in _RELATION_KINDS:
        relations.append(scope.args.get("securable"))
    from_ = scope.args.get("from_")
    if isinstance(from_, exp.From):
        relations.append(from_.this)
    relations.extend(join.this for join in scope.args.get("joins") or [])
    using = scope.args.get("using")
    relations.extend(using if isinstance(using, list) else [using])
    return [relation for relation in relations if isinstance(relation, exp.Expr)]


def _scope_sources(scope: exp.Expr, schema: str) -> _Sources:
    """Visible name -> relation for one scope node."""
    return dict(_source_entry(relation, schema) for relation in _scope_relations(scope))


def _enclosing_scopes(node: exp.Expr) -> Iterator[exp.Expr]:
    """Scope nodes from the innermost outwards (correlated references look outwards)."""
    parent = node.parent
    while parent is not None:
        if isinstance(parent, _SCOPES):
            yield parent
        parent = parent.parent


def _assignment_target(column: exp.Column, schema: str) -> str | None:
    """The table an assigned column belongs to: ``UPDATE t SET c``, ``ON CONFLICT ... SET c``,
    ``MERGE ... INSERT (c)``."""
    parent = column.parent
    if isinstance(parent, exp.EQ) and column.arg_key == "this":
        owner = parent.parent
        if isinstance(owner, exp.Update):
            target = _dml_target(owner)
        elif isinstance(owner, exp.OnConflict) and isinstance(owner.parent, exp.Insert):
            target = _dml_target(owner.parent)
        else:
            return None
        return _relation(_table_parts(target), schema) if target is not None else None
    if isinstance(parent, exp.Tuple) and parent.arg_key == "this":
        merge = parent.find_ancestor(exp.Merge)
        if isinstance(parent.parent, exp.Insert) and merge is not None:
            target = _dml_target(merge)
            return _relation(_table_parts(target), schema) if target is not None else None
    return None


def _is_output_name(column: exp.Column, scope: exp.Expr) -> bool:
    """An ORDER BY reference to an output column, or a GROUP BY reference to a select-list
    alias: the column behind it is counted where the select list names it."""
    if not isinstance(scope, exp.Select):
        return False
    node: exp.Expr = column
    while node.parent is not scope:
        node = node.parent
    name = _ident(column.this)
    if node.arg_key == "order":
        return name in {output.lower() for output in scope.named_selects}
    if node.arg_key == "group":  # PostgreSQL prefers an input column of that name
        return name in {_ident(e.args["alias"]) for e in scope.expressions
                        if isinstance(e, exp.Alias) and not isinstance(e.this, exp.Column)}
    return False


def _resolve_column(column: exp.Column, sources: dict[int, _Sources], schema: str) -> str | None:
    """``schema.table.column``, ``?.column``, or None for a column of a CTE/derived table."""
    name = "*" if isinstance(column.this, exp.Star) else _quote(_ident(column.this) or "")
    if column.args.get("db"):
        parts = [_ident(column.args["db"]) or "", _ident(column.args.get("table")) or ""]
        return f"{_relation(parts, schema)}.{name}"
    assigned = _assignment_target(column, schema)
    if assigned:
        return f"{assigned}.{name}"
    qualifier = _ident(column.args.get("table"))
    for scope in _enclosing_scopes(column):
        visible = sources[id(scope)]
        if qualifier == "excluded" and isinstance(scope, exp.Insert):
            relation = next(iter(visible.values()), None)
            return f"{relation}.{name}" if relation else None
        if qualifier:
            if qualifier in visible:
                return f"{visible[qualifier]}.{name}" if visible[qualifier] else None
            continue
        if _is_output_name(column, scope):
            return None
        if len(visible) == 1:
            relation = next(iter(visible.values()))
            return f"{relation}.{name}" if relation else None
        if len(visible) > 1:
            return f"?.{name}"
    return f"?.{name}"


def _listed_columns(
    node: exp.Expr, nodes: list[exp.Expr], sources: dict[int, _Sources], schema: str
) -> Iterator[str]:
    """Columns named in lists rather than as references: INSERT/COPY column lists, column
    definitions, ``COPY t TO`` (all columns), ``SELECT *`` and ``RETURNING *``."""
    if isinstance(node, (exp.Insert, exp.Copy, exp.Create, exp.Alter)):
        target = _unwrap_schema(node.this)
        if isinstance(target, exp.Table) and _is_relation(target):
            relation = _relation(_table_parts(target), schema)
            names: list[exp.Expr] = []
            if isinstance(node.this, exp.Schema):
                names.extend(node.this.expressions)
            names.extend(_of_type(nodes, exp.ColumnDef, exp.AlterColumn))
            for item in names:
                if isinstance(item, (exp.Identifier, exp.ColumnDef, exp.AlterColumn)):
                    yield f"{relation}.{_quote(_ident(item) or '')}"
            if isinstance(node, exp.Copy) and not isinstance(node.this, exp.Schema):
                yield f"{relation}.*"
    for star in _of_type(nodes, exp.Star):
        if isinstance(star.parent, exp.Select) and star.arg_key == "expressions":
            visible = sources[id(star.parent)].values()
            yield from (f"{relation}.*" for relation in visible if relation)
        elif isinstance(star.parent, exp.Returning) and isinstance(star.parent.parent, _DML):
            target = _dml_target(star.parent.parent)
            if target is not None:
                yield f"{_relation(_table_parts(target), schema)}.*"


def _tree_columns(node: exp.Expr, nodes: list[exp.Expr], schema: str) -> set[str]:
    """Columns a parsed statement names."""
    if not isinstance(node, _COLUMN_STATEMENTS):
        return set()
    sources = {id(scope): _scope_sources(scope, schema) for scope in _of_type(nodes, *_SCOPES)}
    columns = _of_type(nodes, exp.Column)
    resolved = {_resolve_column(column, sources, schema) for column in columns}
    return {name for name in resolved if name} | set(_listed_columns(node, nodes, sources, schema))


# --------------------------------------------------------------------------------------------
# Objects from the text (fallback)
# --------------------------------------------------------------------------------------------

_READ_REF = re.compile(
    rf"(\bDELETE\s+|\bDISTINCT\s+)?\b(?:FROM|JOIN|USING)\s+(?:ONLY\s+)?({_NAME})", re.I
)
_NOT_TABLES = frozenset({"select", "lateral", "stdin", "stdout", "program", "values", "unnest",
                         "rows", "only", "with"})
_CTE_NAME = re.compile(
    rf"(?:\bWITH\s+(?:RECURSIVE\s+)?|,\s*)({_IDENT})\s*(?:\([^()]*\)\s*)?AS\s+"
    r"(?:NOT\s+)?(?:MATERIALIZED\s*)?\(",
    re.I,
)
_IN_FUNCTION_ARGS = re.compile(r"\b(?:EXTRACT|SUBSTRING|TRIM|OVERLAY|POSITION)\s*\([^()]*$", re.I)
_WRITE_REFS = tuple(
    re.compile(pattern, re.I)
    for pattern in (
        rf"\bINSERT\s+INTO\s+({_NAME})",
        rf"\bUPDATE\s+(?:ONLY\s+)?({_NAME})\s+(?:(?:AS\s+)?{_IDENT}\s+)?SET\b",
        rf"\bDELETE\s+FROM\s+(?:ONLY\s+)?({_NAME})",
        rf"\bMERGE\s+INTO\s+({_NAME})",
        rf"\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?({_NAMES})",
    )
)
_SELECT_INTO = re.compile(
    rf"^\s*SELECT\b(?:(?!\bFROM\b).)*?\bINTO\s+(?:(?:TEMP|TEMPORARY|UNLOGGED|TABLE)\s+)*({_NAME})",
    re.I | re.S,
)
_ROLE_STATEMENT = re.compile(
    rf"^\s*(?:CREATE|ALTER|DROP)\s+(?:ROLE|USER|GROUP)\s+(?:IF\s+EXISTS\s+)?({_NAMES})"
    rf"(?:.*?\bRENAME\s+TO\s+({_IDENT}))?",
    re.I | re.S,
)
_GRANT_ON = re.compile(
    r"\bON\s+(?:(TABLE|SEQUENCE|SCHEMA|FUNCTION|PROCEDURE|ROUTINE|DATABASE|FOREIGN\s+TABLE"
    r"|ALL\s+(?:TABLES|SEQUENCES|FUNCTIONS|PROCEDURES|ROUTINES)\s+IN\s+SCHEMA)\s+)?"
    rf"({_NAME}(?:\s*\([^()]*\))?(?:\s*,\s*{_NAME}(?:\s*\([^()]*\))?)*)\s+(?:TO|FROM)\b",
    re.I,
)
_GRANT_ON_MYSQL_SCOPE = re.compile(r"\bON\s+(\*|`[^`]+`|\w+)\.\*\s+(?:TO|FROM)\b", re.I)
_GRANT_ROLE = re.compile(
    rf"^\s*(?:GRANT|REVOKE)\s+(?:(?:ADMIN|INHERIT|SET)\s+OPTION\s+FOR\s+)?({_NAMES})\s+(?:TO|FROM)\b",
    re.I,
)
_DDL_OBJECT = re.compile(
    rf"^\s*(?:CREATE|ALTER|DROP)\s+{_MODIFIERS}({_OBJECT_KINDS})"
    rf"\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:CONCURRENTLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    rf"(?:ONLY\s+)?({_NAMES})",
    re.I,
)
_INDEX_TABLE = re.compile(rf"\bON\s+(?:ONLY\s+)?({_NAME})", re.I)
_COPY_TABLE = re.compile(rf"^\s*COPY\s+(?:BINARY\s+)?({_NAME})", re.I)
_REFRESH = re.compile(rf"^\s*REFRESH\s+MATERIALIZED\s+VIEW\s+(?:CONCURRENTLY\s+)?({_NAME})", re.I)
_DEFAULT_PRIVILEGES = re.compile(rf"\bIN\s+SCHEMA\s+({_NAMES})", re.I)
_DO_BODY = re.compile(
    r"^\s*DO\s+(?:LANGUAGE\s+\w+\s+)?"
    r"(?:\$(?P<tag>(?:[A-Za-z_]\w*)?)\$(?P<dollar>.*?)(?:\$(?P=tag)\$|\Z)|'(?P<quoted>(?:[^']|'')*))",
    re.I | re.S,
)
_DML_CLASSES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})
_OWNED_BY = re.compile(rf"\bBY\s+({_NAMES})(?:\s+TO\s+({_IDENT}))?", re.I)


def _regex_reads(stripped: str, schema: str) -> set[str]:
    """Tables after FROM/JOIN/USING, skipping DELETE targets, functions, ``IS DISTINCT FROM``
    and CTE names."""
    ctes = {_unquote(name) for name in _CTE_NAME.findall(stripped)}
    read = set()
    for match in _READ_REF.finditer(stripped):
        parts = _name_parts(match.group(2))
        follows = stripped[match.end():].lstrip()[:1]
        if (match.group(1) or follows == "(" or parts[-1] in _NOT_TABLES
                or (len(parts) == 1 and parts[0] in ctes)
                or _IN_FUNCTION_ARGS.search(stripped[max(0, match.start() - 200):match.start()])):
            continue
        read.add(_relation(parts, schema))
    return read


def _regex_writes(stripped: str, schema: str, select_into: bool = True) -> set[str]:
    """Tables after INSERT INTO / UPDATE / DELETE FROM / MERGE INTO / TRUNCATE / SELECT INTO."""
    written = set()
    for pattern in _WRITE_REFS:
        for match in pattern.finditer(stripped):
            written.update(_relation(parts, schema) for parts in _split_names(match.group(1)))
    into = _SELECT_INTO.search(stripped) if select_into else None
    if into:
        written.add(_relation(_name_parts(into.group(1)), schema))
    return written


def _regex_objects(cls: str, stripped: str, text: str, schema: str) -> tuple[set[str], set[str]]:
    """Best-effort (objects read, objects written) of a statement sqlglot could not parse."""
    verb = cls.split(" ", 1)[0]
    if cls in {"CREATE ROLE", "ALTER ROLE", "DROP ROLE"}:
        match = _ROLE_STATEMENT.search(stripped)
        names = _split_names(match.group(1)) if match else []
        if match and match.group(2):
            names.append(_name_parts(match.group(2)))
        return set(), {_named_object("ROLE", parts, schema) for parts in names}
    if cls in {"GRANT", "REVOKE"}:
        return set(), _regex_grant_objects(stripped, schema)
    if cls in {"DROP OWNED", "REASSIGN OWNED"}:
        match = _OWNED_BY.search(stripped)
        names = [name for name in match.groups() if name] if match else []
        return set(), {_named_object("ROLE", parts, schema)
                       for name in names for parts in _split_names(name)}
    if cls == "COPY":
        match = _COPY_TABLE.search(stripped)
        if match is None:  # COPY (query) TO ...
            return _regex_reads(stripped, schema), set()
        table = {_relation(_name_parts(match.group(1)), schema)}
        return (set(), table) if _copy_direction(None, stripped) == "from" else (table, set())
    if cls == "REFRESH MATERIALIZED VIEW":
        match = _REFRESH.search(stripped)
        return set(), {_relation(_name_parts(match.group(1)), schema)} if match else set()
    if cls == "ALTER DEFAULT PRIVILEGES":
        match = _DEFAULT_PRIVILEGES.search(stripped)
        names = _split_names(match.group(1)) if match else []
        return set(), {_named_object("SCHEMA", parts, schema) for parts in names}
    if cls == "DO":
        body = _DO_BODY.search(text)
        inner = _strip_sql(body.group("dollar") or body.group("quoted") or "") if body else ""
        # SELECT ... INTO in PL/pgSQL assigns variables, so it is no write.
        return _regex_reads(inner, schema), _regex_writes(inner, schema, select_into=False)
    if verb in _SCHEMA_VERBS:
        return _regex_ddl_objects(cls, stripped, schema)
    if cls in _DML_CLASSES:
        return _regex_reads(stripped, schema), _regex_writes(stripped, schema)
    return set(), set()


def _regex_grant_objects(stripped: str, schema: str) -> set[str]:
    """Objects a GRANT/REVOKE changes access to: ``ON`` objects, else granted roles."""
    mysql_scope = _GRANT_ON_MYSQL_SCOPE.search(stripped)
    if mysql_scope:  # MySQL global (*.*) or database-wide (db.*) privileges
        database = mysql_scope.group(1)
        return {"global:*" if database == "*" else f"database:{_unquote(database)}"}
    match = _GRANT_ON.search(stripped)
    if match is None:
        role = _GRANT_ROLE.search(stripped)
        names = _split_names(role.group(1)) if role else []
        return {_named_object("ROLE", parts, schema) for parts in names}
    kind = " ".join((match.group(1) or "TABLE").upper().split())
    names = _split_names(re.sub(r"\([^()]*\)", "", match.group(2)))
    if kind.startswith("ALL "):
        prefix = "function:" if kind.split()[1] in {"FUNCTIONS", "PROCEDURES", "ROUTINES"} else ""
        return {f"{prefix}{_quote(parts[-1])}.*" for parts in names}
    return {_named_object(kind, parts, schema) for parts in names}


def _regex_ddl_objects(cls: str, stripped: str, schema: str) -> tuple[set[str], set[str]]:
    """CREATE/ALTER/DROP: the object changed; for an index, its table; for AS, the sources."""
    if cls == "CREATE INDEX":
        match = _INDEX_TABLE.search(stripped)
        return set(), {_relation(_name_parts(match.group(1)), schema)} if match else set()
    match = _DDL_OBJECT.search(stripped)
    if match is None:
        return set(), set()
    names = _split_names(match.group(2))
    names = names if cls.startswith("DROP") else names[:1]
    written = {_named_object(match.group(1), parts, schema) for parts in names}
    as_query = re.search(r"\bAS\b(.*)", stripped, re.I | re.S)
    read_kinds = {"CREATE TABLE AS", "CREATE VIEW", "CREATE MATERIALIZED VIEW"}
    read = _regex_reads(as_query.group(1), schema) if cls in read_kinds and as_query else set()
    return read, written


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------

_LITERALS = (
    exp.Literal, exp.Parameter, exp.Placeholder, exp.HexString, exp.ByteString, exp.BitString,
    exp.National, exp.RawString, exp.UnicodeString,
)


def _is_literal(node: exp.Expr) -> bool:
    """A constant whose value does not change what the statement does."""
    if isinstance(node, (exp.Neg, exp.Cast)):
        return _is_literal(node.this)
    return isinstance(node, _LITERALS)


def _is_constant(node: exp.Expr) -> bool:
    """A literal, NULL/boolean, or a tuple/array of constants."""
    if isinstance(node, (exp.Tuple, exp.Array)):
        return all(_is_constant(item) for item in node.expressions)
    return _is_literal(node) or isinstance(node, (exp.Null, exp.Boolean))


def _normalized_tree_sql(node: exp.Expr, nodes: list[exp.Expr], dialect: Dialect) -> str:
    """The statement with constants as ``?`` and lists of constants as one item.

    Mutates ``node`` (``nodes`` is its walk, parents first); call it last.
    """
    for sequence in _of_type(nodes, exp.In, exp.Values, exp.Array):
        items = sequence.expressions
        if len(items) > 1 and all(_is_constant(item) for item in items):
            sequence.set("expressions", items[:1])
    for literal in list(_of_type(nodes, *_LITERALS, exp.Neg)):
        # Parents come first: a replaced -1 or $1 leaves its inner literal detached.
        if _is_literal(literal) and not isinstance(literal.parent, (exp.Neg, exp.Parameter)):
            literal.replace(exp.Placeholder())
    return node.sql(dialect=dialect, copy=False, comments=False, normalize=True)


def _normalized_text(text: str) -> str:
    """Regex normalization for what sqlglot cannot parse: constants as ``?``, lower case."""
    normalized = _strip_sql(text, string="?")
    normalized = re.sub(r"\$\d+|(?<![\w.])\d+(?:\.\d*)?(?:e[+-]?\d+)?\b", "?", normalized,
                        flags=re.I)
    normalized = re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?)", normalized)
    return " ".join(normalized.split()).lower()


def _fingerprint(normalized: Iterable[str]) -> str:
    """First 16 hex digits of the SHA-1 of the normalized statements."""
    return hashlib.sha1("; ".join(normalized).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# One statement of a string -> _Piece; pieces -> StatementAnalysis
# --------------------------------------------------------------------------------------------


@dataclass
class _Piece:
    """The analysis of one statement of a (possibly multi-statement) string."""

    statement_class: str
    category: str
    read: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)
    error: str | None = None
    normalized: str = ""


def _sqlglot_error(error: Exception) -> str:
    """A short message; never quotes the SQL, which may hold secrets."""
    if isinstance(error, ParseError) and error.errors:
        first = error.errors[0]
        # "... but got <Token token_type: TokenType.X, text: ...>": keep X, drop the text.
        description = re.sub(r"<Token token_type: TokenType\.(\w+).*", r"\1",
                             str(first.get("description")))
        description = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", description)
        detail = f"{description} (line {first.get('line')}, col {first.get('col')})"
    elif isinstance(error, TokenError):
        detail = "cannot tokenize (unterminated string, quote or comment?)"
    else:
        detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return _ANSI.sub("", f"sqlglot: {detail}")[:200]


def _fallback_error(cls: str, stripped: str, parse_error: str | None) -> str | None:
    """sql_error for a statement sqlglot rejected or parsed only as an opaque command: none
    when the keywords tell all there is to know, unless the text holds a placeholder."""
    placeholder = _PLACEHOLDER.search(stripped)
    if placeholder:
        return f"sqlglot: cannot parse placeholder {placeholder.group()}; keyword analysis only"
    if cls in _KEYWORD_COMPLETE:
        return None
    return parse_error or "sqlglot: unsupported syntax; keyword analysis only"


def _keyword_piece(cls: str, text: str, stripped: str, schema: str, error: str | None) -> _Piece:
    """Analysis from keywords and regular expressions only."""
    read, written = _regex_objects(cls, stripped, text, schema)
    category = _category(cls, stripped, text, None, bool(written))
    return _Piece(cls, category, read, written, set(), error, _normalized_text(text))


def _tree_piece(
    node: exp.Expr, cls: str, text: str, stripped: str, dialect: Dialect, schema: str
) -> _Piece:
    """Analysis of a statement sqlglot parsed into a tree."""
    nodes = list(node.walk())
    read, written = _tree_objects(node, nodes, schema)
    columns = _tree_columns(node, nodes, schema)
    category = _category(cls, stripped, text, node, bool(written))
    try:
        normalized = _normalized_tree_sql(node, nodes, dialect)
    except Exception:  # sqlglot cannot generate every tree it parses
        normalized = _normalized_text(text)
    return _Piece(cls, category, read, written, columns, None, normalized)


def _wrapper_piece(
    cls: str, text: str, stripped: str, dialect: Dialect, schema: str, error: str | None
) -> _Piece:
    """EXPLAIN / PREPARE / DECLARE: the wrapped statement's objects, this statement's class."""
    pattern, runs = _WRAPPERS[cls]
    match = pattern.match(text)
    inner_text = text[match.end():] if match else ""
    inner = _pieces(inner_text, dialect, schema) if inner_text.strip() else []
    if not inner:
        return _keyword_piece(cls, text, stripped, schema, error)
    runs = runs or (cls == "EXPLAIN" and _EXPLAIN_ANALYZE.match(text) is not None)
    merged = _merge(inner)
    return _Piece(
        cls,
        merged.category if runs and merged.category else "other",
        merged.read,
        merged.written,
        merged.columns,
        merged.error,
        _normalized_text(text[: match.end()]) + " " + merged.normalized,
    )


def _piece(
    text: str,
    dialect: Dialect,
    schema: str,
    node: exp.Expr | None = None,
    parse_error: str | None = None,
    error: str | None = None,
) -> _Piece:
    """Analyse one statement: from its tree when sqlglot produced a meaningful one, else from
    keywords. ``parse_error``: sqlglot rejected this statement; ``error``: the whole string
    (too long, or not tokenizable) was analysed by keywords."""
    stripped = _strip_sql(text)
    cls = _classify(stripped, node)
    if cls in _WRAPPERS:
        return _wrapper_piece(cls, text, stripped, dialect, schema, error or parse_error)
    if isinstance(node, _STATEMENTS):
        try:
            return _tree_piece(node, cls, text, stripped, dialect, schema)
        except Exception as failure:  # a sqlglot tree shape we did not foresee
            error = f"analysis failed ({type(failure).__name__}); keyword analysis only"
    elif node is not None or parse_error:
        error = _fallback_error(cls, stripped, parse_error)
    return _keyword_piece(cls, text, stripped, schema, error)


def _unmatched_joins(tokens: list[Token]) -> int:
    """JOINs needing ON/USING minus the ON/USING present (> 0 means invalid SQL).

    sqlglot backtracks exponentially through runs of JOINs lacking ON (20 take seconds), so
    statements with many of them skip sqlglot.
    """
    counts = {kind: 0 for kind in (TokenType.JOIN, TokenType.CROSS, TokenType.NATURAL,
                                   TokenType.ON, TokenType.USING)}
    for token in tokens:
        if token.token_type in counts:
            counts[token.token_type] += 1
    free = counts[TokenType.CROSS] + counts[TokenType.NATURAL]
    return counts[TokenType.JOIN] - free - counts[TokenType.ON] - counts[TokenType.USING]


def _token_chunks(tokens: list[Token]) -> Iterator[list[Token]]:
    """Tokens of each statement, split at semicolons (which never occur inside literals)."""
    chunk: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if chunk:
                yield chunk
            chunk = []
        else:
            chunk.append(token)
    if chunk:
        yield chunk


def _pieces(text: str, dialect: Dialect, schema: str) -> list[_Piece]:
    """Analyse each statement of ``text``; a failure affects only its own statement."""
    if len(text) > MAX_PARSE_CHARS:
        error = f"statement longer than {MAX_PARSE_CHARS} characters; keyword analysis only"
        return [_piece(part, dialect, schema, error=error) for part in _split_statements(text)]
    try:
        tokens = dialect.tokenize(text)
    except Exception as failure:  # TokenError, but any failure means: fall back
        error = _sqlglot_error(failure)
        return [_piece(part, dialect, schema, error=error) for part in _split_statements(text)]
    pieces = []
    for chunk in _token_chunks(tokens):
        chunk_text = text[chunk[0].start : chunk[-1].end + 1]
        if _unmatched_joins(chunk) > MAX_UNMATCHED_JOINS:
            error = "sqlglot skipped: JOINs without ON/USING; keyword analysis only"
            pieces.append(_piece(chunk_text, dialect, schema, parse_error=error))
            continue
        try:
            node = dialect.parser().parse(chunk, text)[0]
        except Exception as failure:  # ParseError, but also sqlglot bugs (RecursionError, ...)
            pieces.append(_piece(chunk_text, dialect, schema, parse_error=_sqlglot_error(failure)))
        else:
            pieces.append(_piece(chunk_text, dialect, schema, node=node))
    return pieces


def _merge(pieces: list[_Piece]) -> _Piece:
    """Combine the statements of one string: first class, strongest category, unions."""
    rank = {category: i for i, category in enumerate(CATEGORY_PRECEDENCE)}
    errors = [(i, piece.error) for i, piece in enumerate(pieces, 1) if piece.error]
    if len(pieces) > 1:
        error = "; ".join(f"statement {i}: {message}" for i, message in errors) or None
    else:
        error = errors[0][1] if errors else None
    return _Piece(
        pieces[0].statement_class,
        min((piece.category for piece in pieces), key=lambda c: rank.get(c, len(rank))),
        set().union(*(piece.read for piece in pieces)),
        set().union(*(piece.written for piece in pieces)),
        set().union(*(piece.columns for piece in pieces)),
        error,
        "; ".join(piece.normalized for piece in pieces),
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def analyze_statement(
    sql: str, dialect: str = "postgres", default_schema: str = "public"
) -> StatementAnalysis:
    """Classify one SQL string and list the objects and columns it touches; never raises.

    >>> analyze_statement("COPY (SELECT * FROM customers) TO STDOUT").category
    'export'
    """
    text = sql.strip()
    if text.lower() in NOT_LOGGED:
        return StatementAnalysis(None, None, [], [], [], None, "statement not logged", False)
    pieces = _pieces(text, Dialect.get_or_raise(dialect), default_schema)
    if not pieces:
        return StatementAnalysis(None, None, [], [], [], None, "empty statement", False)
    merged = _merge(pieces)
    return StatementAnalysis(
        statement_class=merged.statement_class,
        category=merged.category,
        objects_read=sorted(merged.read),
        objects_written=sorted(merged.written),
        columns=sorted(merged.columns),
        fingerprint=_fingerprint(piece.normalized for piece in pieces),
        sql_error=merged.error,
        is_export=any(piece.category == "export" for piece in pieces),
    )


def analyze_frame(
    statements: pl.Series, dialect: str = "postgres", default_schema: str = "public"
) -> pl.DataFrame:
    """One row per distinct non-null statement, with its analysis (:data:`ANALYSIS_SCHEMA`).

    Each distinct statement is analysed exactly once, whatever its number of occurrences.
    """
    distinct = statements.cast(pl.String).drop_nulls().unique(maintain_order=True)
    analyses = [analyze_statement(sql, dialect, default_schema) for sql in distinct]
    return pl.DataFrame(
        {
            "statement": distinct,
            "statement_class": [a.statement_class for a in analyses],
            "sql_category": [a.category for a in analyses],
            "objects_read": [a.objects_read for a in analyses],
            "objects_written": [a.objects_written for a in analyses],
            "columns": [a.columns for a in analyses],
            "fingerprint": [a.fingerprint for a in analyses],
            "sql_error": [a.sql_error for a in analyses],
            "is_export": [a.is_export for a in analyses],
        },
        schema=ANALYSIS_SCHEMA,
    )


def enrich_sql(
    events: pl.DataFrame, dialect: str = "postgres", default_schema: str = "public"
) -> pl.DataFrame:
    """``events`` with the SQL analysis of its ``statement`` column joined on, order kept.

    Rows whose statement is null get nulls. Analysis columns already present are replaced.
    """
    analysis = analyze_frame(events.get_column("statement"), dialect, default_schema)
    derived = [name for name in ANALYSIS_SCHEMA if name != "statement"]
    return events.drop(derived, strict=False).join(
        analysis, on="statement", how="left", maintain_order="left"
    )


_STRING_LITERAL = (
    r"(?:[Ee]'(?:[^'\\]|\\.|'')*'?|'(?:[^']|'')*'?|\$\$.*?(?:\$\$|$)|\"(?:[^\"]|\"\")*\"?)"
)
# (pattern, replacement): group 1 keeps what precedes the secret. Unterminated literals
# (truncated log lines) are masked to the end of the text.
_SECRET_RULES: tuple[tuple[str, str], ...] = (
    (rf"(?is)(\b(?:ENCRYPTED\s+|UNENCRYPTED\s+)?PASSWORD\s*(?:=\s*)?(?:\(\s*)?){_STRING_LITERAL}",
     "${1}'***'"),
    (rf"(?is)(\bIDENTIFIED\s+(?:WITH\s+\w+\s+)?BY\s+(?:PASSWORD\s+)?){_STRING_LITERAL}",
     "${1}'***'"),
    (rf"(?is)((?:^|[^'\w.])[\w.]*(?:key|secret|token|password|passwd|pwd|credential)\w*"
     rf"\s*(?:=|\bTO\b)?\s*){_STRING_LITERAL}", "${1}'***'"),
)


def mask_secrets(sql: pl.Expr) -> pl.Expr:
    """Replace password and secret literals in SQL text by ``'***'``.

    Covers ``[ENCRYPTED] PASSWORD '...'``, ``IDENTIFIED BY '...'`` and string literals after
    names containing key/secret/token/password/pwd/credential (``SET app.api_key = '...'``).
    Errs on the side of masking: ``WHERE token = 'x'`` is masked too.

    >>> pl.select(mask_secrets(pl.lit("CREATE ROLE a PASSWORD 'hunter2'"))).item()
    "CREATE ROLE a PASSWORD '***'"
    """
    for pattern, replacement in _SECRET_RULES:
        sql = sql.str.replace_all(pattern, replacement)
    return sql
