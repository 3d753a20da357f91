"""pgaudit records: the nested CSV, sentinels, field counts, and outcome correlation."""

from __future__ import annotations

import json

import polars as pl
import pytest

from auditkit.sources import read_file

P = "2024-05-01 10:00:00.000 UTC [{pid}] {user}@shop "


def line(message: str, pid: int = 10, user: str = "alice", severity: str = "LOG") -> str:
    return P.format(pid=pid, user=user) + f"{severity}:  {message}\n"


# record text -> expected (command, object, statement, parameter, rows, audit_type)
RECORDS = [
    ("AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>",
     ("SELECT", None, "select 1", "<none>", None, "SESSION")),
    ('AUDIT: SESSION,2,1,READ,SELECT,TABLE,public.t,"select a, ""b"" from t",<not logged>',
     ("SELECT", "public.t", 'select a, "b" from t', "<not logged>", None, "SESSION")),
    ('AUDIT: SESSION,3,1,WRITE,INSERT,TABLE,public.t,"insert into t values (\'x\ny\')",<none>,1',
     ("INSERT", "public.t", "insert into t values ('x\ny')", "<none>", 1, "SESSION")),
    ("AUDIT: OBJECT,4,1,READ,SELECT,TABLE,public.account,select password from account",
     ("SELECT", "public.account", "select password from account", None, None, "OBJECT")),
    ('AUDIT: SESSION,5,1,WRITE,UPDATE,TABLE,public.t,update t set a = $1 where b = $2,'
     '"a,""b,c"""',
     ("UPDATE", "public.t", "update t set a = $1 where b = $2", 'a,"b,c"', None, "SESSION")),
    ("AUDIT: SESSION,27,1,WRITE,DELETE,,,DELETE FROM employee WHERE emp_id  = 101,<none>,",
     ("DELETE", None, "DELETE FROM employee WHERE emp_id  = 101", "<none>", None, "SESSION")),
    ("AUDIT: SESSION,6,1,ROLE,CREATE ROLE,,,CREATE USER u1 password <REDACTED>,<not logged>",
     ("CREATE ROLE", None, "CREATE USER u1 password <REDACTED>", "<not logged>", None,
      "SESSION")),
    # a bind value that starts with a quote: the field opens with three quotes
    ('AUDIT: SESSION,8,1,WRITE,INSERT,TABLE,public.c,"insert into c values ($1, $2)",'
     '"""O\'Neil, """"Pat"""""",x@example.com"',
     ("INSERT", "public.c", "insert into c values ($1, $2)", '"O\'Neil, ""Pat""",x@example.com',
      None, "SESSION")),
    ('AUDIT: SESSION,9,1,READ,SELECT,,,"select \'""quoted""\'",<none>',
     ("SELECT", None, "select '\"quoted\"'", "<none>", None, "SESSION")),
    ("AUDIT: SESSION,7,1,READ,SELECT,,,select 1,<none>,42",
     ("SELECT", None, "select 1", "<none>", 42, "SESSION")),
]


@pytest.mark.parametrize(("record", "expected"), RECORDS)
def test_record_fields(write_log, record, expected):
    text = line(record.replace("\n", "\n\t"))  # the logger TABs continuation lines
    events = read_file(write_log(text))[1].events
    assert events.height == 1
    row = events.row(0, named=True)
    extra = json.loads(row["extra"])
    got = (row["action"], row["object"], row["statement"], extra.get("parameter"), row["rows"],
           extra["audit_type"])
    assert got == expected
    assert row["source"] == "pgaudit" and row["outcome"] == "success"


def test_truncated_record_is_kept_and_flagged(write_log):
    text = line('AUDIT: SESSION,1,1,DDL,CREATE TABLE,,,"create table x(a int,') + line(
        "connection authorized: user=bob database=shop", pid=11)
    parsed = read_file(write_log(text))[1]
    first = parsed.events.row(0, named=True)
    assert first["statement"] == "create table x(a int,"
    assert json.loads(first["extra"])["truncated"] is True
    assert parsed.quarantine.height == 0


@pytest.mark.parametrize(
    ("klass", "command", "statement", "category"),
    [
        ("READ", "SELECT", "select 1", "read"),
        ("READ", "COPY", "copy t to stdout", "export"),
        ("WRITE", "COPY", "copy t from stdin", "write"),
        ("DDL", "CREATE TABLE", "create table t()", "schema"),
        ("ROLE", "GRANT", "grant select on t to x", "permission"),
        ("MISC_SET", "SET", "set search_path = x", "config"),
        ("MISC_SET", "SET", "SET pgaudit.log = 'none'", "audit_config"),
        ("ROLE", "ALTER ROLE", "ALTER ROLE u SET pgaudit.log = 'none'", "audit_config"),
        ("MISC", "ALTER SYSTEM", "ALTER SYSTEM SET pgaudit.log TO 'none'", "audit_config"),
        ("FUNCTION", "EXECUTE", "select f()", "other"),
    ],
)
def test_category_mapping(write_log, klass, command, statement, category):
    text = line(f"AUDIT: SESSION,1,1,{klass},{command},,,{statement},<none>")
    assert read_file(write_log(text))[1].events["category"][0] == category


def test_error_after_record_marks_all_its_rows_failed(write_log):
    text = (
        line("AUDIT: SESSION,1,1,WRITE,INSERT,TABLE,public.orders,insert into orders "
             "select * from staging,<none>")
        + line("AUDIT: SESSION,1,1,WRITE,INSERT,TABLE,public.staging,insert into orders "
               "select * from staging,<none>")
        + line("AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>", pid=11, user="bob")
        + line('duplicate key value violates unique constraint "orders_pkey"', severity="ERROR")
        + line("Key (id)=(1) already exists.", severity="DETAIL")
        + line("insert into orders select * from staging", severity="STATEMENT")
    )
    events = read_file(write_log(text))[1].events
    audit = events.filter(pl.col("source") == "pgaudit")
    assert audit["outcome"].to_list() == ["failure", "failure", "success"]
    assert audit["error"][0] == 'duplicate key value violates unique constraint "orders_pkey"'
    error = events.filter(pl.col("source") == "postgres").row(0, named=True)
    assert error["category"] == "other"  # the ERROR is the outcome, not a second access
    assert json.loads(error["extra"])["detail"] == "Key (id)=(1) already exists."


def test_permission_denied_leaves_no_record_and_becomes_a_failed_attempt(write_log):
    text = (
        line("AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>", user="dave")
        + line("permission denied for table cards", user="dave", severity="ERROR")
        + line("SELECT card_number FROM payments.cards", user="dave", severity="STATEMENT")
    )
    events = read_file(write_log(text))[1].events
    assert events["outcome"].to_list() == ["success", "failure"]
    attempt = events.row(1, named=True)
    assert attempt["category"] is None and attempt["action"] is None  # SQL analysis decides
    assert attempt["statement"] == "SELECT card_number FROM payments.cards"
    assert attempt["actor"] == "dave"


def test_not_logged_statement_fails_by_adjacency_but_not_on_permission_errors(write_log):
    text = (
        line("AUDIT: SESSION,1,1,WRITE,INSERT,,,<not logged>,<not logged>")
        + line("boom", severity="ERROR")
        + line("AUDIT: SESSION,2,1,READ,SELECT,,,<not logged>,<not logged>")
        + line("permission denied for table cards", severity="ERROR")
        + line("select * from cards", severity="STATEMENT")
    )
    events = read_file(write_log(text))[1].events
    audit = events.filter(pl.col("source") == "pgaudit")
    assert audit["outcome"].to_list() == ["failure", "success"]


def test_statements_in_an_aborted_transaction_are_failed_attempts(write_log):
    text = (
        line("AUDIT: SESSION,1,1,WRITE,UPDATE,,,update t set a = 1,<none>")
        + line("division by zero", severity="ERROR")
        + line("update t set a = 1", severity="STATEMENT")
        + line("current transaction is aborted, commands ignored until end of transaction "
               "block", severity="ERROR")
        + line("select * from customers", severity="STATEMENT")
    )
    events = read_file(write_log(text))[1].events
    attempts = events.filter(pl.col("category").is_null())
    assert attempts["statement"].to_list() == ["select * from customers"]
    assert attempts["outcome"].to_list() == ["failure"]


def test_statement_ids_restart_per_session_without_collisions(write_log):
    text = (
        line("AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>", pid=10)
        + line("connection received: host=10.0.0.1 port=1", pid=10)
        + line("AUDIT: SESSION,1,1,READ,SELECT,,,select 2,<none>", pid=10)
        + line("boom", severity="ERROR", pid=10)
        + line("select 2", severity="STATEMENT", pid=10)
    )
    events = read_file(write_log(text))[1].events.filter(pl.col("source") == "pgaudit")
    assert events["outcome"].to_list() == ["success", "failure"]
    assert events["session_id"].n_unique() == 2
