"""Access reconstruction: person/role x object x access kind for each statement in a log."""

from __future__ import annotations

import polars as pl
import pytest

import auditkit
from auditkit.classify import load_classification

PREFIX = "2024-05-01 10:00:{sec:02d}.000 UTC [{pid}] {user}@shop "


def audit(stmt_id: int, klass: str, command: str, statement: str, obj: str = "",
          obj_type: str = "", user: str = "alice", pid: int = 10, sub: int = 1,
          param: str = "<none>") -> str:
    """One pgaudit line the way the logger writes it (quoted when needed, TAB-continued)."""
    field = statement
    if any(c in field for c in ',"\n'):
        field = '"' + field.replace('"', '""') + '"'
    record = f"AUDIT: SESSION,{stmt_id},{sub},{klass},{command},{obj_type},{obj},{field},{param}"
    return PREFIX.format(sec=stmt_id % 60, pid=pid, user=user) + "LOG:  " + record.replace(
        "\n", "\n\t") + "\n"


def error(message: str, statement: str, user: str = "alice", pid: int = 10) -> str:
    head = PREFIX.format(sec=59, pid=pid, user=user)
    return f"{head}ERROR:  {message}\n{head}STATEMENT:  {statement}\n"


def access_of(write_log, text: str) -> set[tuple]:
    result = auditkit.load([write_log(text)])
    table = auditkit.access_table(result.events)
    return set(table.select("actor", "object", "access", "outcome").unique().iter_rows())


JOIN = "select o.id, c.email from orders o join customers c on c.id = o.customer_id"
CTE = ("with recent as (select * from orders where created_at > now() - interval '1 day') "
       "select r.id, i.sku from recent r join order_items i on i.order_id = r.id")
CASES = {
    "join, no log_relation": (
        audit(1, "READ", "SELECT", JOIN),
        {("alice", "public.orders", "read", "success"),
         ("alice", "public.customers", "read", "success")}),
    "join with log_relation rows: counted once": (
        audit(1, "READ", "SELECT", JOIN, "public.orders", "TABLE")
        + audit(1, "READ", "SELECT", JOIN, "public.customers", "TABLE"),
        {("alice", "public.orders", "read", "success"),
         ("alice", "public.customers", "read", "success")}),
    "server-resolved schema wins over sqlglot's public assumption": (
        audit(1, "READ", "SELECT", "select * from cards", "payments.cards", "TABLE"),
        {("alice", "payments.cards", "read", "success")}),
    "CTE: tables inside, not the CTE name": (
        audit(1, "READ", "SELECT", CTE),
        {("alice", "public.orders", "read", "success"),
         ("alice", "public.order_items", "read", "success")}),
    "subquery in WHERE": (
        audit(1, "READ", "SELECT", "select name from customers where id in "
              "(select customer_id from orders where total > 100)"),
        {("alice", "public.customers", "read", "success"),
         ("alice", "public.orders", "read", "success")}),
    "view as named": (
        audit(1, "READ", "SELECT", "select * from customer_summary", "public.customer_summary",
              "VIEW"),
        {("alice", "public.customer_summary", "read", "success")}),
    "INSERT ... SELECT": (
        audit(1, "WRITE", "INSERT", "insert into archive select * from orders",
              "public.archive", "TABLE")
        + audit(1, "READ", "SELECT", "insert into archive select * from orders",
                "public.orders", "TABLE"),
        {("alice", "public.archive", "write", "success"),
         ("alice", "public.orders", "read", "success")}),
    "COPY ... TO STDOUT is an export, not also a read": (
        audit(1, "READ", "SELECT", "COPY (SELECT card_number FROM payments.cards) TO STDOUT",
              "payments.cards", "TABLE")
        + audit(1, "READ", "COPY", "COPY (SELECT card_number FROM payments.cards) TO STDOUT",
                sub=2),
        {("alice", "payments.cards", "export", "success")}),
    "GRANT": (
        audit(1, "ROLE", "GRANT", "GRANT SELECT ON customers TO dave", obj_type="TABLE"),
        {("alice", "public.customers", "permission", "success")}),
    "CREATE ROLE with a redacted password": (
        audit(1, "ROLE", "CREATE ROLE", "CREATE ROLE support_3 LOGIN PASSWORD <REDACTED>"),
        {("alice", "role:support_3", "permission", "success")}),
    "DDL": (
        audit(1, "DDL", "ALTER TABLE", "ALTER TABLE orders ADD COLUMN status text",
              "public.orders", "TABLE"),
        {("alice", "public.orders", "schema", "success")}),
    "CREATE TABLE AS: schema on the new table, read on the source": (
        audit(1, "READ", "SELECT", "create table t2 as select * from orders")
        + audit(1, "DDL", "CREATE TABLE AS", "create table t2 as select * from orders",
                "public.t2", "TABLE", sub=2),
        {("alice", "public.t2", "schema", "success"),
         ("alice", "public.orders", "read", "success")}),
    "CREATE VIEW reads no data": (
        audit(1, "DDL", "CREATE VIEW", "create view v as select * from customers c join orders o "
              "on o.customer_id = c.id", "public.v", "VIEW"),
        {("alice", "public.v", "schema", "success")}),
    "CREATE SCHEMA: one name for pgaudit and SQL analysis": (
        audit(1, "DDL", "CREATE SCHEMA", "create schema payments", "payments", "SCHEMA"),
        {("alice", "schema:payments", "schema", "success")}),
    "CREATE FUNCTION: pgaudit's signature dropped": (
        audit(1, "DDL", "CREATE FUNCTION", "create function public.mask_card(t text) returns "
              "text language sql as $$ select right(t, 4) $$", "public.mask_card(pg_catalog.text)",
              "FUNCTION"),
        {("alice", "function:public.mask_card", "schema", "success")}),
    "foreign-key check: the lock clause's alias is not a table": (
        audit(1, "WRITE", "INSERT", "insert into orders values (1, 2)", "public.orders", "TABLE")
        + audit(1, "READ", "SELECT", 'SELECT 1 FROM ONLY "public"."customers" x WHERE "id" '
                "OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x", sub=2),
        {("alice", "public.orders", "write", "success"),
         ("alice", "public.customers", "read", "success")}),
    "multi-statement string: one record per statement": (
        audit(1, "WRITE", "INSERT", "insert into t values (1)", "public.t", "TABLE")
        + audit(2, "WRITE", "UPDATE", "update u set a = 2", "public.u", "TABLE"),
        {("alice", "public.t", "write", "success"), ("alice", "public.u", "write", "success")}),
    "prepared statement with parameters": (
        audit(1, "WRITE", "UPDATE", "update orders set total = $1 where id = $2",
              "public.orders", "TABLE", param='12.50,"a,b"'),
        {("alice", "public.orders", "write", "success")}),
    "failed statement: audited, then ERROR": (
        audit(1, "WRITE", "INSERT", "insert into orders values (1)", "public.orders", "TABLE")
        + error('duplicate key value violates unique constraint "orders_pkey"',
                "insert into orders values (1)"),
        {("alice", "public.orders", "write", "failure")}),
    "permission denied: no AUDIT record, a failed attempt": (
        error("permission denied for table cards", "select card_number from payments.cards",
              user="dave"),
        {("dave", "payments.cards", "read", "failure")}),
    "not logged statement, object named by log_relation": (
        audit(1, "READ", "SELECT", "<not logged>", "public.customers", "TABLE",
              param="<not logged>"),
        {("alice", "public.customers", "read", "success")}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_access_kinds(write_log, case):
    text, expected = CASES[case]
    assert access_of(write_log, text) == expected


def test_sensitive_columns_default_and_override(write_log, tmp_path):
    text = audit(1, "READ", "SELECT", "select name, ssn, loyalty_tier from customers")
    events = auditkit.load([write_log(text)]).events
    table = auditkit.access_table(events)
    flagged = dict(table.select("column", "sensitive").iter_rows())
    assert flagged == {"name": False, "ssn": True, "loyalty_tier": False}
    custom = tmp_path / "classification.yml"
    custom.write_text("columns:\n  public.customers.loyalty_tier: business\n"
                      "not_sensitive: [public.customers.ssn]\n")
    table = auditkit.access_table(events, load_classification(custom))
    assert dict(table.select("column", "sensitive").iter_rows()) == {
        "name": False, "ssn": False, "loyalty_tier": True}


def test_select_star_on_a_table_with_declared_sensitive_columns(write_log, tmp_path):
    custom = tmp_path / "classification.yml"
    custom.write_text("columns:\n  public.customers.ssn: ssn\n")
    events = auditkit.load([write_log(audit(1, "READ", "SELECT", "select * from customers"))]
                           ).events
    table = auditkit.access_table(events, load_classification(custom))
    assert table.select("column", "sensitive").rows() == [("*", True)]


def test_each_access_row_points_at_a_real_event(write_log):
    text = audit(1, "READ", "SELECT", JOIN, "public.orders", "TABLE") + audit(
        1, "READ", "SELECT", JOIN, "public.customers", "TABLE")
    events = auditkit.load([write_log(text)]).events
    table = auditkit.access_table(events)
    assert set(table["event_id"]) <= set(events["event_id"])
    by_object = dict(table.select("object", "event_id").unique().iter_rows())
    assert by_object["public.orders"] != by_object["public.customers"]  # its own AUDIT row


def test_access_table_schema(write_log):
    events = auditkit.load([write_log(audit(1, "READ", "SELECT", "select 1"))]).events
    table = auditkit.access_table(events)
    assert table.schema["time"] == pl.Datetime("us", "UTC")
    assert list(table.columns) == ["time", "person", "actor", "source", "database", "object",
                                   "column", "access", "outcome", "sensitive", "event_id"]


def test_a_reused_pid_starts_a_new_statement_group(write_log):
    """PostgreSQL reuses pids: a later session's statement 1 is not the earlier session's."""
    head = "2024-05-01 10:00:{sec:02d}.000 UTC [10] {user}@shop LOG:  "
    text = (
        head.format(sec=0, user="[unknown]").replace("[unknown]@shop", "[unknown]@[unknown]")
        + "connection received: host=10.0.0.1 port=1\n"
        + audit(1, "READ", "SELECT", "select * from orders", "public.orders", "TABLE")
        + head.format(sec=2, user="alice") + "disconnection: session time: 0:00:02.000 user=alice "
        "database=shop host=10.0.0.1 port=1\n"
        + head.format(sec=3, user="[unknown]").replace("[unknown]@shop", "[unknown]@[unknown]")
        + "connection received: host=10.0.0.2 port=2\n"
        + audit(1, "READ", "SELECT", "select * from cards", "public.cards", "TABLE", user="bob")
    )
    assert access_of(write_log, text) == {
        ("alice", "public.orders", "read", "success"),
        ("bob", "public.cards", "read", "success"),
    }
