"""A throwaway PostgreSQL + pgaudit server, and a workload whose answer is known in advance.

``Cluster`` runs ``initdb``/``pg_ctl`` from Debian's packages (``postgresql``,
``postgresql-NN-pgaudit``) in a temp dir, on 127.0.0.1 and a free port, logging to stderr, csvlog
and jsonlog at once. As root, the server runs as the ``postgres`` OS user (``runuser``).

``WORKLOAD`` is a list of steps played by several roles (the superuser, a DBA, two humans, a
shared ``app_user``). Each step opens its own connection with ``application_name`` = the step's
name, so every event in the logs can be traced back to the step that caused it. ``run_workload``
records what each step did (role, database, objects and access kinds, success); the ``*_mismatches``
functions compare an ingested log with that record and describe every difference.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
DEFAULT_PREFIX = "%m [%p] %q%u@%d "
RDS_PREFIX = "%t:%r:%u@%d:[%p]:"
LOG_FILES = {"stderr": "postgresql.log", "csvlog": "postgresql.csv", "jsonlog": "postgresql.json"}
# server settings of each variant, on top of Cluster.base_settings()
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "rds": {"log_line_prefix": f"'{RDS_PREFIX}'"},
    # log_rows adds a 10th field; a non-UTC log_timezone makes every container print "IST"
    "log_rows": {"pgaudit.log_rows": "on", "log_timezone": "'Asia/Kolkata'"},
}


def in_ci() -> bool:
    """True under CI (``CI=true``): a missing server is then a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_bindir() -> tuple[Path | None, str]:
    """The newest PostgreSQL (>= 15, for jsonlog) bin dir whose server has pgaudit; else why not."""
    if not PG_ROOT.is_dir():
        return None, f"no PostgreSQL server under {PG_ROOT} (apt install postgresql)"
    versions = sorted((p for p in PG_ROOT.iterdir() if p.name.isdigit()),
                      key=lambda p: int(p.name), reverse=True)
    for version in versions:
        if int(version.name) < 15 or not (version / "bin" / "initdb").exists():
            continue
        if not (version / "lib" / "pgaudit.so").exists():
            return None, (f"pgaudit is not installed for PostgreSQL {version.name} "
                          f"(apt install postgresql-{version.name}-pgaudit)")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SUPERUSER)
            except KeyError:
                return None, f"running as root and there is no {SUPERUSER!r} OS user to run it"
            if shutil.which("runuser") is None:
                return None, "running as root and runuser is missing"
        return version / "bin", ""
    return None, f"no PostgreSQL >= 15 server (initdb) under {PG_ROOT} (jsonlog needs 15)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a container's PID 1 may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _temp_parent() -> str | None:
    """Where to make the cluster's dir: the postgres user must be able to reach it."""
    if os.geteuid() != 0:
        return None
    parents = [Path(tempfile.gettempdir()), *Path(tempfile.gettempdir()).parents]
    return None if all(p.stat().st_mode & 0o001 for p in parents) else "/tmp"


@dataclass
class Cluster:
    """A throwaway cluster: ``start()``, connect, ``stop()`` (flushes every log file)."""

    bindir: Path
    settings: dict[str, str] = field(default_factory=dict)
    base: Path | None = field(init=False, default=None)
    port: int = field(init=False, default=0)
    running: bool = field(init=False, default=False)

    @property
    def data(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def log_dir(self) -> Path:
        assert self.base is not None
        return self.base / "log"

    def log_file(self, container: str) -> Path:
        return self.log_dir / LOG_FILES[container]

    def _run(self, *args: str | Path) -> None:
        command = [str(a) for a in args]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> Cluster:
        """initdb in a fresh temp dir, configure, start (a new port if the first was taken)."""
        self.base = Path(tempfile.mkdtemp(prefix="auditkit-realpg-", dir=_temp_parent()))
        self.log_dir.mkdir()
        password_file = self.base / "pw"
        password_file.write_text(PASSWORDS[SUPERUSER] + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SUPERUSER)
            for path in (self.base, self.log_dir, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(self.bindir / "initdb", "-D", self.data, "-U", SUPERUSER, "--pwfile",
                  password_file, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C",
                  "--no-sync", "--no-instructions")
        (self.data / "pg_hba.conf").write_text(
            "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        for attempt in range(3):
            self.port = free_port()
            conf = self.base_settings() | self.settings
            (self.data / "postgresql.auto.conf").write_text(
                "".join(f"{key} = {value}\n" for key, value in conf.items())
            )
            try:
                self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.base / "start.log",
                          "-w", "-t", "60", "start")
                break
            except RuntimeError:
                if attempt == 2:
                    start_log = (self.base / "start.log").read_text(errors="replace")
                    raise RuntimeError(f"the server did not start:\n{start_log}") from None
        self.running = True
        return self

    def base_settings(self) -> dict[str, str]:
        """The settings every variant shares (values as written in postgresql.conf)."""
        return {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "shared_preload_libraries": "'pgaudit'",
            "pgaudit.log": "'read,write,ddl,role,misc'",
            "pgaudit.log_relation": "on",
            "pgaudit.log_parameter": "on",
            "log_connections": "on",
            "log_disconnections": "on",
            "log_destination": "'stderr,csvlog,jsonlog'",
            "logging_collector": "on",
            "log_directory": f"'{self.log_dir}'",
            "log_filename": f"'{LOG_FILES['stderr']}'",
            "log_rotation_age": "0",
            "log_rotation_size": "0",
            "log_line_prefix": f"'{DEFAULT_PREFIX}'",
            "log_timezone": "'UTC'",
            "lc_messages": "'C'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
        }

    def _server_pids(self) -> list[int]:
        """The postmaster and its children (the logging collector among them)."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return []
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return pids

    def stop(self) -> None:
        """Fast shutdown; returns once every server process (the logger too) has exited."""
        if not self.running:
            return
        pids = self._server_pids()
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")
        self.running = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.02)

    def cleanup(self) -> None:
        """Stop (if running) and delete the temp dir."""
        try:
            self.stop()
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)

    def connect(self, user: str, password: str, dbname: str, app: str):
        """A psycopg connection (autocommit) over TCP."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, dbname=dbname,
            application_name=app, sslmode="disable", gssencmode="disable", autocommit=True,
            connect_timeout=10,
        )


# ------------------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class Sql:
    """One client call: a query (maybe several statements), its parameters, how it is sent."""

    text: str
    params: tuple | None = None
    prepare: bool | None = None  # True: a named server-side prepared statement
    copy: bool = False  # COPY ... TO STDOUT, read through the copy protocol


@dataclass(frozen=True)
class Step:
    """One connection of one role doing one thing, and the accesses that thing is."""

    name: str
    role: str
    database: str
    sql: tuple[Sql, ...]
    expect: frozenset[tuple[str, str]]  # (object, access kind)
    fails: bool = False  # the last call fails
    login_fails: bool = False
    sensitive: frozenset[str] = frozenset()  # "object.column:access" flagged sensitive


@dataclass
class Record:
    """What a step did, as the driver saw it."""

    step: Step
    success: bool
    error: str | None = None
    rowcounts: list[int] = field(default_factory=list)  # per call that succeeded
    started: float = 0.0  # time.time() before connecting
    ended: float = 0.0  # time.time() after disconnecting

    def expected(self) -> set[tuple[str, str, str, str, str]]:
        """(actor, database, object, access, outcome) rows the access table must hold."""
        outcome = "success" if self.success else "failure"
        s = self.step
        return {(s.role, s.database, obj, access, outcome) for obj, access in s.expect}


PASSWORDS = {
    SUPERUSER: "Super-pw-0",
    "dba": "Dba-pw-1",
    "alice": "Alice-pw-1",
    "bob": "Bob-pw-1",
    "app_user": "App-pw-1",
}
NEW_APP_PASSWORD = "App-pw-rotated-2"
SECRETS = (*PASSWORDS.values(), NEW_APP_PASSWORD)


def _e(*pairs: str) -> frozenset[tuple[str, str]]:
    """``_e("public.orders:read", ...)`` -> {("public.orders", "read"), ...}."""
    return frozenset((p.rsplit(":", 1)[0], p.rsplit(":", 1)[1]) for p in pairs)


def _s(*texts: str) -> tuple[Sql, ...]:
    return tuple(Sql(t) for t in texts)


# literals with commas, doubled quotes, double quotes and newlines; a statement over 8 KB
TRICKY_NAME = 'O\'\'Neil, "Ann"\nsecond line, with comma'
TRICKY_NOTE = 'gift, "wrapped"\n\tfragile; it\'s 50% off'
LONG_QUERY = (
    "SELECT i.order_id, i.sku, i.qty\nFROM order_items i\nWHERE i.sku IN ("
    + ", ".join(f"'SKU-{i:05d}-padding-to-make-it-long'" for i in range(260))
    + ")"
)

WORKLOAD: tuple[Step, ...] = (
    # the server's superuser sets up a DBA and a database
    Step("boot-role", SUPERUSER, "postgres", _s(
        f"CREATE ROLE dba WITH LOGIN CREATEROLE CREATEDB PASSWORD '{PASSWORDS['dba']}'"),
        _e("role:dba:permission")),
    Step("boot-db", SUPERUSER, "postgres", _s("CREATE DATABASE shop OWNER dba"),
         _e("database:shop:schema")),
    Step("boot-ext", SUPERUSER, "shop", _s("CREATE EXTENSION pgaudit"),
         _e("extension:pgaudit:schema")),
    # the DBA builds the schema, the roles and their grants, and loads data
    Step("dba-create-schema", "dba", "shop", _s("CREATE SCHEMA payments"),
         _e("schema:payments:schema")),
    # a primary key creates an index: pgaudit names it
    Step("dba-tables", "dba", "shop", _s(
        "CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text,"
        " phone text)",
        "CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers,"
        " total numeric(10,2), note text, created_at timestamptz DEFAULT now())",
        "CREATE TABLE order_items (order_id int, sku text, qty int,"
        " PRIMARY KEY (order_id, sku))",
        "CREATE TABLE payments.cards (id int PRIMARY KEY, customer_id int, card_number text,"
        " expiry text)",
    ), _e("public.customers:schema", "public.customers_pkey:schema", "public.orders:schema",
          "public.orders_pkey:schema", "public.order_items:schema",
          "public.order_items_pkey:schema", "payments.cards:schema",
          "payments.cards_pkey:schema"),
        sensitive=frozenset({"public.customers.email:schema", "public.customers.ssn:schema",
                             "public.customers.phone:schema",
                             "payments.cards.card_number:schema"})),
    # auditkit's convention: an index is a schema change of its table too
    Step("dba-index", "dba", "shop", _s("CREATE INDEX orders_customer_idx ON orders (customer_id)"),
         _e("public.orders_customer_idx:schema", "public.orders:schema")),
    Step("dba-view", "dba", "shop", _s(
        "CREATE VIEW customer_summary AS SELECT c.id, c.name, count(o.id) AS orders,"
        " sum(o.total) AS spent FROM customers c LEFT JOIN orders o ON o.customer_id = c.id"
        " GROUP BY c.id, c.name"),
        _e("public.customer_summary:schema")),
    Step("dba-function", "dba", "shop", _s(
        "CREATE FUNCTION public.mask_card(t text) RETURNS text LANGUAGE sql IMMUTABLE"
        " AS $$ SELECT '**** ' || right(t, 4) $$"),
        _e("function:public.mask_card:schema")),
    Step("dba-roles", "dba", "shop", _s(
        f"CREATE ROLE alice LOGIN PASSWORD '{PASSWORDS['alice']}'",
        f"CREATE ROLE bob LOGIN PASSWORD '{PASSWORDS['bob']}'",
        f"CREATE ROLE app_user LOGIN PASSWORD '{PASSWORDS['app_user']}'",
    ), _e("role:alice:permission", "role:bob:permission", "role:app_user:permission")),
    Step("dba-grants", "dba", "shop", _s(
        "GRANT SELECT ON customers, orders, order_items, customer_summary TO alice",
        "GRANT SELECT ON customers TO bob",
        "GRANT USAGE ON SCHEMA payments TO app_user",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON orders, order_items TO app_user",
        "GRANT SELECT ON customers, payments.cards TO app_user",
    ), _e("public.customers:permission", "public.orders:permission",
          "public.order_items:permission", "public.customer_summary:permission",
          "payments.cards:permission", "schema:payments:permission")),
    Step("dba-seed-customers", "dba", "shop", _s(
        "INSERT INTO customers VALUES\n"
        " (1, 'Ann Smith', 'ann@example.com', '123-45-6789', '+1 555 0100'),\n"
        f" (2, '{TRICKY_NAME}', 'o,neil@example.com', '987-65-4321', NULL),\n"
        " (3, 'Carl', 'carl@example.com', '111-22-3333', '+44 20 7946 0000')"),
        _e("public.customers:write")),
    # the foreign key makes the server read customers (pgaudit logs its check as substatements)
    Step("dba-seed-orders", "dba", "shop", _s(
        "INSERT INTO orders (id, customer_id, total, note) VALUES"
        " (1, 1, 120.00, 'first, order'), (2, 2, 35.50, 'a \"quoted\" note'),"
        " (3, 1, 99.99, NULL)"),
        _e("public.orders:write", "public.customers:read")),
    Step("dba-seed-more", "dba", "shop", _s(
        "INSERT INTO order_items VALUES (1, 'SKU-00001-padding-to-make-it-long', 2),"
        " (1, 'B', 1), (2, 'C', 5), (3, 'A', 1)",
        "INSERT INTO payments.cards VALUES (1, 1, '4111111111111111', '12/29'),"
        " (2, 2, '5500000000000004', '01/30')",
    ), _e("public.order_items:write", "payments.cards:write")),
    # a human analyst reads
    Step("alice-join", "alice", "shop", _s(
        "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id"),
        _e("public.orders:read", "public.customers:read"),
        sensitive=frozenset({"public.customers.email:read"})),
    Step("alice-cte", "alice", "shop", _s(
        "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day')\n"
        "SELECT r.id, i.sku FROM recent r JOIN order_items i ON i.order_id = r.id"),
        _e("public.orders:read", "public.order_items:read")),
    Step("alice-subquery", "alice", "shop", _s(
        "SELECT name FROM customers WHERE id IN"
        " (SELECT customer_id FROM orders WHERE total > 100)"),
        _e("public.customers:read", "public.orders:read")),
    # the server checks (and pgaudit logs) the view's tables too
    Step("alice-view", "alice", "shop", _s("SELECT * FROM customer_summary ORDER BY spent"),
         _e("public.customer_summary:read", "public.customers:read", "public.orders:read")),
    Step("alice-long", "alice", "shop", _s(LONG_QUERY), _e("public.order_items:read")),
    Step("alice-misc", "alice", "shop", _s(
        "SET statement_timeout = 5000", "SHOW work_mem", "SELECT 1"), _e()),
    Step("alice-denied-write", "alice", "shop", _s(
        "UPDATE customers SET email = 'x@example.com' WHERE id = 1"),
        _e("public.customers:write"), fails=True,
        sensitive=frozenset({"public.customers.email:write"})),
    Step("alice-bad-password", "alice", "shop", (), _e(), login_fails=True),
    # the shared application account
    Step("app-prepared", "app_user", "shop", (
        Sql("UPDATE orders SET total = %s, note = %s WHERE id = %s",
            (Decimal("12.50"), TRICKY_NOTE, 1), prepare=True),
        Sql("UPDATE orders SET total = %s, note = %s WHERE id = %s",
            (Decimal("7.25"), "plain", 3), prepare=True),
    ), _e("public.orders:write")),
    Step("app-insert", "app_user", "shop", (
        Sql("INSERT INTO orders (id, customer_id, total, note) VALUES (%s, %s, %s, %s)",
            (4, 3, Decimal("15.00"), 'line one\nline "two", three')),
        Sql("INSERT INTO order_items (order_id, sku, qty) VALUES (%s, %s, %s)", (4, "D,E", 3)),
    ), _e("public.orders:write", "public.order_items:write")),
    Step("app-update-join", "app_user", "shop", _s(
        "UPDATE orders o SET note = c.name FROM customers c"
        " WHERE c.id = o.customer_id AND o.id = 4"),
        _e("public.orders:write", "public.customers:read")),
    Step("app-delete", "app_user", "shop", (
        Sql("DELETE FROM order_items WHERE order_id IN"
            " (SELECT id FROM orders WHERE total < %s)", (Decimal("10"),)),
    ), _e("public.order_items:write", "public.orders:read")),
    Step("app-multi", "app_user", "shop", _s(
        "UPDATE orders SET note = 'rush, priority' WHERE id = 2;"
        " INSERT INTO order_items VALUES (2, 'Z', 1);"
        " SELECT count(*) FROM customers"),
        _e("public.orders:write", "public.order_items:write", "public.customers:read")),
    Step("app-cards", "app_user", "shop", (
        Sql("SELECT public.mask_card(card_number), expiry FROM payments.cards"
            " WHERE customer_id = %s", (1,)),
    ), _e("payments.cards:read"), sensitive=frozenset({"payments.cards.card_number:read"})),
    Step("app-duplicate", "app_user", "shop", _s(
        "INSERT INTO order_items VALUES (1, 'B', 9)"),
        _e("public.order_items:write"), fails=True),
    # a support engineer exports, and is refused what they may not see
    Step("bob-denied", "bob", "shop", _s("SELECT card_number FROM payments.cards"),
         _e("payments.cards:read"), fails=True,
         sensitive=frozenset({"payments.cards.card_number:read"})),
    Step("bob-export-query", "bob", "shop", (
        Sql("COPY (SELECT name, email, ssn FROM customers) TO STDOUT WITH (FORMAT csv)",
            copy=True),
    ), _e("public.customers:export"),
        sensitive=frozenset({"public.customers.email:export", "public.customers.ssn:export"})),
    Step("bob-export-table", "bob", "shop", (Sql("COPY customers TO STDOUT", copy=True),),
         _e("public.customers:export")),
    # the DBA changes the schema and takes a grant back; bob then fails to export
    Step("dba-ddl", "dba", "shop", _s(
        "ALTER TABLE customers ADD COLUMN loyalty_tier text",
        "CREATE TABLE orders_archive AS SELECT * FROM orders WHERE total < 50",
    ), _e("public.customers:schema", "public.orders_archive:schema", "public.orders:read")),
    Step("dba-cleanup", "dba", "shop", _s(
        "TRUNCATE orders_archive", "DROP TABLE orders_archive"),
        _e("public.orders_archive:write", "public.orders_archive:schema")),
    Step("dba-revoke", "dba", "shop", _s(
        "REVOKE SELECT ON customers FROM bob",
        f"ALTER ROLE app_user PASSWORD '{NEW_APP_PASSWORD}'",
    ), _e("public.customers:permission", "role:app_user:permission")),
    Step("bob-export-denied", "bob", "shop", (Sql("COPY customers TO STDOUT", copy=True),),
         _e("public.customers:export"), fails=True),
)
STEP_NAMES = frozenset(step.name for step in WORKLOAD)


def _password(step: Step) -> str:
    if step.login_fails:
        return "wrong-password"
    rotated = any(s.name == "dba-revoke" for s in WORKLOAD[: WORKLOAD.index(step)])
    if step.role == "app_user" and rotated:
        return NEW_APP_PASSWORD
    return PASSWORDS[step.role]


def run_step(cluster: Cluster, step: Step) -> Record:
    """Connect as the step's role and run its calls, stopping at the first error."""
    import psycopg

    record = Record(step, success=True, started=time.time())
    try:
        conn = cluster.connect(step.role, _password(step), step.database, step.name)
    except psycopg.OperationalError as exc:
        record.success, record.error, record.ended = False, str(exc).strip(), time.time()
        return record
    with conn:
        for call in step.sql:
            try:
                with conn.cursor() as cur:
                    if call.copy:
                        with cur.copy(call.text) as copy:
                            for _ in copy:
                                pass
                    else:
                        cur.execute(call.text, call.params, prepare=call.prepare)
                    record.rowcounts.append(cur.rowcount)
            except psycopg.Error as exc:
                record.success, record.error = False, f"{exc.sqlstate}: {exc}".strip()
                break
    record.ended = time.time()
    return record


def run_workload(cluster: Cluster, steps: tuple[Step, ...] = WORKLOAD) -> list[Record]:
    """Play every step; raise if a step's success is not the one it was written to have."""
    records = [run_step(cluster, step) for step in steps]
    wrong = [
        f"{r.step.name}: success={r.success} ({r.error})"
        for r in records
        if r.success == (r.step.fails or r.step.login_fails)
    ]
    if wrong:
        raise RuntimeError("the workload did not behave as written:\n" + "\n".join(wrong))
    return records


# ------------------------------------------------------------------------------- comparisons

Row = tuple[str, str, str, str, str]  # actor, database, object, access, outcome


def access_by_step(events: pl.DataFrame) -> dict[str, set[Row]]:
    """The access table's (actor, database, object, access, outcome) rows per step.

    The step is the event's ``client_app``; rows of events with no known step go under
    ``"<no step>"``.
    """
    import auditkit

    table = auditkit.access_table(events).join(
        events.select("event_id", "client_app"), on="event_id", how="left"
    )
    found: dict[str, set[Row]] = {}
    for app, *row in table.select(
        "client_app", "actor", "database", "object", "access", "outcome"
    ).iter_rows():
        key = app if app in STEP_NAMES else "<no step>"
        found.setdefault(key, set()).add(tuple(row))  # type: ignore[arg-type]
    return found


def access_mismatches(
    records: list[Record], events: pl.DataFrame, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Every step whose access rows differ from the record (missing, invented), one line each."""
    found = access_by_step(events)
    problems = []
    for record in records:
        if record.step.name in skip:
            continue
        expected, got = record.expected(), found.get(record.step.name, set())
        if expected != got:
            problems.append(f"{record.step.name}: missing {sorted(expected - got)}, "
                            f"invented {sorted(got - expected)}")
    if "<no step>" in found:
        problems.append(f"rows of no step: {sorted(found['<no step>'])}")
    return problems


def sensitive_by_step(events: pl.DataFrame) -> dict[str, set[str]]:
    """``object.column:access`` of the rows flagged sensitive, per step."""
    import auditkit

    table = auditkit.access_table(events).join(
        events.select("event_id", "client_app"), on="event_id", how="left"
    )
    found: dict[str, set[str]] = {}
    for app, obj, column, access in table.filter(pl.col("sensitive")).select(
        "client_app", "object", "column", "access"
    ).iter_rows():
        found.setdefault(app or "<no step>", set()).add(f"{obj}.{column}:{access}")
    return found


def logged_text(call: Sql) -> str:
    """The statement text as the server logs it: ``$n`` placeholders, passwords redacted."""
    text = call.text
    if call.params is not None:
        counter = iter(range(1, len(call.params) + 1))
        text = re.sub(r"%s", lambda _: f"${next(counter)}", text)
    return re.sub(r"PASSWORD '[^']*'", "PASSWORD <REDACTED>", text)


def statement_mismatches(records: list[Record], events: pl.DataFrame) -> list[str]:
    """Calls whose text is not found, exactly, among the statements of their step's events."""
    texts: dict[str, set[str]] = {}
    for app, statement in events.select("client_app", "statement").iter_rows():
        texts.setdefault(app, set()).add(statement)
    problems = []
    for record in records:
        calls = record.step.sql[: len(record.rowcounts) + (0 if record.success else 1)]
        for call in calls:
            if logged_text(call) not in texts.get(record.step.name, set()):
                problems.append(f"{record.step.name}: statement not found verbatim: "
                                f"{logged_text(call)[:120]!r}")
    return problems


def parameter_mismatches(records: list[Record], events: pl.DataFrame) -> list[str]:
    """Calls with bind parameters whose values pgaudit's PARAMETER field does not give back."""
    found: dict[str, list[list[str]]] = {}
    audit = events.filter(pl.col("source") == "pgaudit")
    for app, extra in audit.select("client_app", "extra").iter_rows():
        parameter = json.loads(extra).get("parameter")
        if parameter and not parameter.startswith("<"):
            values = next(csv.reader(io.StringIO(parameter, newline="")))
            found.setdefault(app, []).append(values)
    problems = []
    for record in records:
        for call in record.step.sql:
            if call.params and [str(p) for p in call.params] not in found.get(
                record.step.name, []
            ):
                problems.append(f"{record.step.name}: parameters {call.params!r} not found")
    return problems


def all_mismatches(
    records: list[Record], events: pl.DataFrame, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Access (steps in ``skip`` aside), statement text and parameter differences together."""
    return (
        access_mismatches(records, events, skip)
        + statement_mismatches(records, events)
        + parameter_mismatches(records, events)
    )
