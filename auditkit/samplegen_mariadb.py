"""Deterministic MariaDB 10.11 ``server_audit`` sample log for the sample week (standard library).

A second server of the :mod:`auditkit.samplegen` story: ``reports-db`` (MariaDB 10.11, database
``reporting``) with ``server_audit_events='CONNECT,QUERY,TABLE'`` and file output
``server_audit.log``. Lines are written like ``server_audit.c`` (``log_header``,
``escape_string``, ``log_table``) of 10.11, as checked against a real 10.11.19 server:

* ``<yyyymmdd hh:mm:ss>,<serverhost>,<user>,<host>,<connectionid>,<queryid>,<operation>,<db>,
  <object>,<retcode>``; the sample writes UTC times (the server's ``TZ`` is UTC, see README).
* TABLE events (``READ``/``WRITE``) come before their ``QUERY`` with the same query id, and
  their retcode field is empty; ``CONNECT``/``DISCONNECT``/``FAILED_CONNECT`` have query id 0.
* The query is single-quoted with ``'`` ``\\`` and control characters backslash-escaped;
  passwords after ``IDENTIFIED BY`` would be ``*****``.
* A ``FAILED_CONNECT`` (1045) is followed by a ``DISCONNECT`` of the same connection with
  retcode 0 and an empty database, whatever database the client asked for.
* In a session without a default database, statements that write the privilege tables
  (``GRANT``, ``REVOKE``, ``ALTER USER``) show database ``mysql`` on their QUERY event: the
  plugin keeps the database of the last table it saw.
* Connection ids and query ids are server-wide counters; query ids have gaps (statements the
  plugin does not log, such as the ``mariadb`` client's ``select @@version_comment``).

:func:`scenario` returns the records, :func:`render` the file text, :func:`expected_story` the
ground truth and :func:`write_sample_logs` writes ``outdir/mariadb/server_audit.log`` and the
README section.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from auditkit.samplegen import set_readme_section

__all__ = [
    "FILENAME",
    "SERVERHOST",
    "AuditRecord",
    "expected_story",
    "readme_section",
    "render",
    "scenario",
    "write_sample_logs",
]

SEED = 20261106
SERVERHOST = "reports-db"
FILENAME = "server_audit.log"
WEEKDAYS = [date(2026, 11, d) for d in range(2, 7)]  # Mon 11-02 .. Fri 11-06
README_MARKER = "# Sample logs: MariaDB reports-db (server_audit)"
FIRST_CONNECTION_ID = 3817  # the server has been up for a while
FIRST_QUERY_ID = 1_204_466

APP_HOSTS = ("10.0.1.5", "10.0.1.6")
ALICE_HOST = "10.20.0.11"
CAROL_HOST = "10.20.0.5"
NIGHT_HOST = "198.51.100.77"

CAROL_GRANT = "GRANT FILE ON *.* TO 'dave'@'%'"
CAROL_GRANT_TIME = datetime(2026, 11, 5, 16, 2, 41)
CAROL_REVOKE = "REVOKE FILE ON *.* FROM 'dave'@'%'"
CAROL_LOCK = "ALTER USER 'dave'@'%' ACCOUNT LOCK"
CAROL_REVOKE_TIME = datetime(2026, 11, 7, 9, 15, 12)
ROOT_FAIL_TIME = datetime(2026, 11, 6, 2, 20, 44)
DAVE_CONNECT_TIME = datetime(2026, 11, 6, 2, 21, 3)
EXPORT_SQL = "SELECT * FROM reporting.customer_export INTO OUTFILE '/tmp/ce.csv'"
EXPORT_START = datetime(2026, 11, 6, 2, 21, 37)  # READ event: the table is opened
EXPORT_END = datetime(2026, 11, 6, 2, 21, 39)  # QUERY event: written when it finished

_SKUS = [f"SKU-{n:05d}" for n in (1042, 1177, 2210, 2291, 3005, 3318, 4470, 5102, 5566, 7001)]
_PRICES = dict(zip(_SKUS, (19.90, 4.50, 129.00, 74.95, 9.99, 15.00, 249.00, 32.50, 7.25, 59.00),
                   strict=True))

# alice's reports (DBeaver, default database reporting); {day}/{start}/{end} are dates
_REPORTS = [
    (
        "SELECT s.sku, SUM(s.qty) AS units, SUM(s.revenue) AS revenue\n"
        "FROM daily_sales s\nWHERE s.day = '{day}'\nGROUP BY s.sku\nORDER BY revenue DESC",
        ("daily_sales",),
    ),
    (
        "SELECT c.name, c.email, COUNT(*) AS order_lines, SUM(s.revenue) AS revenue\n"
        "FROM daily_sales s\nJOIN customer_export c ON c.customer_id = s.customer_id\n"
        "WHERE s.day BETWEEN '{start}' AND '{end}'\nGROUP BY c.customer_id, c.name, c.email\n"
        "ORDER BY revenue DESC\nLIMIT 20",
        ("daily_sales", "customer_export"),
    ),
    (
        "SELECT s.day, COUNT(DISTINCT s.customer_id) AS customers,\n"
        "       SUM(c.exported_at >= s.day - INTERVAL 7 DAY) AS new_customers\n"
        "FROM reporting.daily_sales s\n"
        "LEFT JOIN reporting.customer_export c ON c.customer_id = s.customer_id\n"
        "WHERE s.day >= '{start}'\nGROUP BY s.day\nORDER BY s.day",
        ("daily_sales", "customer_export"),
    ),
    (
        "SELECT s.sku, s.qty, s.revenue, c.name\nFROM daily_sales s, customer_export c\n"
        "WHERE c.customer_id = s.customer_id AND s.revenue > 200 AND s.day = '{day}'",
        ("daily_sales", "customer_export"),
    ),
]


@dataclass(slots=True)
class AuditRecord:
    """One server_audit line (``connection`` and ``query_id`` are filled in by :func:`scenario`)."""

    time: datetime
    user: str
    host: str
    operation: str
    database: str
    object: str
    retcode: str
    connection: int = 0
    query_id: int = 0


def escape_query(sql: str) -> str:
    """The query field as ``escape_string`` of server_audit.c writes it (without the quotes)."""
    table = {"'": "\\'", "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
             "\r": "\\r"}
    return "".join(table.get(ch, ch) for ch in sql)


def _line(r: AuditRecord) -> str:
    return (
        f"{r.time:%Y%m%d %H:%M:%S},{SERVERHOST},{r.user},{r.host},{r.connection},{r.query_id},"
        f"{r.operation},{r.database},{r.object},{r.retcode}\n"
    )


def render(records: list[AuditRecord]) -> str:
    """The ``server_audit.log`` text of ``records`` (one line each, LF-terminated)."""
    return "".join(_line(r) for r in records)


@dataclass(slots=True)
class _Item:
    """A unit that is numbered as a whole: a connect, a statement or a disconnect."""

    time: datetime
    conn: _Conn
    records: list[AuditRecord]
    new_connection: bool = False
    statement: bool = False


@dataclass(slots=True)
class _Conn:
    user: str
    host: str
    database: str
    items: list[_Item] = field(default_factory=list)
    id: int = 0


class _Builder:
    """Collects the story's connections; :meth:`records` numbers them in time order."""

    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.rng = random.Random(SEED)

    def connect(self, t: datetime, user: str, host: str, database: str = "") -> _Conn:
        conn = _Conn(user, host, database)
        rec = AuditRecord(t, user, host, "CONNECT", database, "", "0")
        self._add(_Item(t, conn, [rec], new_connection=True))
        return conn

    def failed_connect(self, t: datetime, user: str, host: str, retcode: int = 1045) -> None:
        conn = _Conn(user, host, "")
        recs = [AuditRecord(t, user, host, "FAILED_CONNECT", "", "", str(retcode)),
                AuditRecord(t, user, host, "DISCONNECT", "", "", "0")]
        self._add(_Item(t, conn, recs, new_connection=True))

    def query(
        self,
        conn: _Conn,
        start: datetime,
        sql: str,
        tables: tuple[tuple[str, str, str], ...] = (),
        *,
        end: datetime | None = None,
        retcode: int = 0,
    ) -> None:
        """TABLE events ``(operation, db, table)`` at ``start``, the QUERY at ``end``."""
        recs = [AuditRecord(start, conn.user, conn.host, op, db, table, "")
                for op, db, table in tables]
        db = conn.database or (tables[-1][1] if tables else "")
        recs.append(AuditRecord(end or start, conn.user, conn.host, "QUERY", db,
                                f"'{escape_query(sql)}'", str(retcode)))
        self._add(_Item(start, conn, recs, statement=True))

    def disconnect(self, conn: _Conn, t: datetime) -> None:
        rec = AuditRecord(t, conn.user, conn.host, "DISCONNECT", conn.database, "", "0")
        self._add(_Item(t, conn, [rec]))

    def _add(self, item: _Item) -> None:
        item.conn.items.append(item)
        self.items.append(item)

    def records(self) -> list[AuditRecord]:
        """All records in file order, with server-wide connection and query ids."""
        items = sorted(self.items, key=lambda i: i.time)  # stable: ties keep story order
        next_conn, next_query = FIRST_CONNECTION_ID, FIRST_QUERY_ID
        gaps = random.Random(SEED + 1)
        out: list[AuditRecord] = []
        for item in items:
            if item.new_connection:
                item.conn.id = next_conn
                next_conn += 1
                next_query += 1  # the client's first statement is not logged
            if item.statement:
                next_query += gaps.choice((1, 1, 1, 2, 3))
            for rec in item.records:
                rec.connection = item.conn.id
                rec.query_id = next_query if item.statement else 0
            out.extend(item.records)
        # a statement's QUERY may be written after other sessions' records (end > start)
        return sorted(out, key=lambda r: r.time)


def _at(d: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, ss)


def _sales_values(rng: random.Random, day: date, order_id: int) -> tuple[str, int]:
    rows = []
    for _ in range(rng.randint(2, 5)):
        sku = rng.choice(_SKUS)
        qty = rng.choice((1, 1, 1, 2, 2, 3, 5))
        customer = rng.randint(1001, 48_000)
        revenue = f"{qty * _PRICES[sku]:.2f}"
        rows.append(f"('{day}', {order_id}, {customer}, '{sku}', {qty}, {revenue})")
        order_id += 1
    return ", ".join(rows), order_id


def _app_user(b: _Builder) -> None:
    """shop-api's sales loader: two pooled connections per weekday, a batch every ~30 min."""
    rng = b.rng
    order_id = 100_412
    for day in WEEKDAYS:
        pool = [b.connect(_at(day, 6, 59, 51 + i), "app_user", host, "reporting")
                for i, host in enumerate(APP_HOSTS)]
        t = _at(day, 7, 0, 0)
        n = 0
        while t < _at(day, 21, 45):
            t += timedelta(minutes=rng.randint(24, 36), seconds=rng.randint(0, 59))
            values, order_id = _sales_values(rng, day, order_id)
            sql = ("INSERT INTO daily_sales (day, order_id, customer_id, sku, qty, revenue) "
                   f"VALUES {values}")
            b.query(pool[n % 2], t, sql, (("WRITE", "reporting", "daily_sales"),))
            n += 1
        for i, conn in enumerate(pool):
            b.disconnect(conn, _at(day, 22, 0, 3 + i))


def _alice(b: _Builder) -> None:
    """alice's reports in office hours: one or two DBeaver sessions per weekday."""
    rng = b.rng
    for day in WEEKDAYS:
        starts = [_at(day, 9, rng.randint(12, 50), rng.randint(0, 59))]
        if rng.random() < 0.6:
            starts.append(_at(day, 14, rng.randint(0, 40), rng.randint(0, 59)))
        for start in starts:
            conn = b.connect(start, "alice", ALICE_HOST, "reporting")
            t = start + timedelta(seconds=rng.randint(2, 6))
            b.query(conn, t, "SHOW FULL TABLES FROM `reporting`")
            for _ in range(rng.randint(2, 5)):
                t += timedelta(minutes=rng.randint(3, 25), seconds=rng.randint(0, 59))
                template, tables = rng.choice(_REPORTS)
                sql = template.format(day=day - timedelta(days=1),
                                      start=day - timedelta(days=7), end=day)
                took = timedelta(seconds=rng.choice((0, 0, 1)))
                b.query(conn, t, sql, tuple(("READ", "reporting", x) for x in tables),
                        end=t + took)
            b.disconnect(conn, t + timedelta(minutes=rng.randint(1, 20)))


def _carol(b: _Builder) -> None:
    """carol (DBA, mariadb client without a default database) grants FILE, later revokes it."""
    conn = b.connect(CAROL_GRANT_TIME - timedelta(seconds=19), "carol", CAROL_HOST)
    b.query(conn, CAROL_GRANT_TIME, CAROL_GRANT,
            (("WRITE", "mysql", "db"), ("WRITE", "mysql", "global_priv")))
    b.disconnect(conn, CAROL_GRANT_TIME + timedelta(seconds=8))
    conn = b.connect(CAROL_REVOKE_TIME - timedelta(seconds=25), "carol", CAROL_HOST)
    b.query(conn, CAROL_REVOKE_TIME, CAROL_REVOKE,
            (("WRITE", "mysql", "db"), ("WRITE", "mysql", "global_priv")))
    b.query(conn, CAROL_REVOKE_TIME + timedelta(seconds=14), CAROL_LOCK,
            (("WRITE", "mysql", "global_priv"),))
    b.disconnect(conn, CAROL_REVOKE_TIME + timedelta(seconds=31))


def _night(b: _Builder) -> None:
    """The night reader: root refused, then dave exports customer_export into a file."""
    b.failed_connect(ROOT_FAIL_TIME, "root", NIGHT_HOST)
    conn = b.connect(DAVE_CONNECT_TIME, "dave", NIGHT_HOST, "reporting")
    b.query(conn, DAVE_CONNECT_TIME + timedelta(seconds=9), "SHOW TABLES")
    b.query(conn, DAVE_CONNECT_TIME + timedelta(seconds=21),
            "SELECT COUNT(*) FROM customer_export", (("READ", "reporting", "customer_export"),))
    b.query(conn, EXPORT_START, EXPORT_SQL, (("READ", "reporting", "customer_export"),),
            end=EXPORT_END)
    b.disconnect(conn, EXPORT_END + timedelta(seconds=12))


def scenario() -> list[AuditRecord]:
    """The reports-db week: every server_audit record in file order."""
    b = _Builder()
    _app_user(b)
    _alice(b)
    _carol(b)
    _night(b)
    return b.records()


def expected_story() -> dict:
    """Ground truth of the reports-db part of the story (times are naive UTC)."""
    return {
        "server": SERVERHOST,
        "file": f"mariadb/{FILENAME}",
        "people": {
            "app_user": {"hosts": list(APP_HOSTS), "writes": ["reporting.daily_sales"]},
            "alice": {"hosts": [ALICE_HOST],
                      "reads": ["reporting.customer_export", "reporting.daily_sales"]},
            "carol": {"hosts": [CAROL_HOST]},
            "dave": {"hosts": [NIGHT_HOST]},
        },
        "night_export": {
            "user": "dave",
            "src_ip": NIGHT_HOST,
            "object": "reporting.customer_export",
            "statement": EXPORT_SQL,
            "time": EXPORT_END,
            "read_time": EXPORT_START,
            "connect_time": DAVE_CONNECT_TIME,
        },
        "failed_root_login": {"user": "root", "src_ip": NIGHT_HOST, "time": ROOT_FAIL_TIME,
                              "error": "1045"},
        "grant_file": {"user": "carol", "src_ip": CAROL_HOST, "time": CAROL_GRANT_TIME,
                       "statement": CAROL_GRANT},
        "revoke_file": {"user": "carol", "src_ip": CAROL_HOST, "time": CAROL_REVOKE_TIME,
                        "statements": [CAROL_REVOKE, CAROL_LOCK]},
    }


def _counts(records: list[AuditRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.operation] = counts.get(r.operation, 0) + 1
    return dict(sorted(counts.items()))


_README_PEOPLE = [
    ("app_user", "shop-api's sales loader: two pooled connections 06:59-22:00 UTC Mon-Fri, an "
     "`INSERT INTO daily_sales` batch every ~30 min", ", ".join(APP_HOSTS), "MariaDB Connector/J"),
    ("alice", "reports in office hours (Mon-Fri 09-18 UTC): SELECTs over `daily_sales`, most "
     "joined with `customer_export`", ALICE_HOST, "DBeaver"),
    ("carol", "DBA: grants and revokes", CAROL_HOST, "mariadb client, no default database"),
    ("dave", "only the night session below (he does not use reports-db otherwise)", NIGHT_HOST,
     "mariadb client"),
]


def readme_section(records: list[AuditRecord]) -> str:
    """The README section on reports-db (appended to the PostgreSQL README)."""
    s = expected_story()
    ops = ", ".join(f"{op} {n}" for op, n in _counts(records).items())
    night, grant = s["night_export"], s["grant_file"]
    people = "\n".join("| " + " | ".join(row) + " |" for row in _README_PEOPLE)
    return f"""
{README_MARKER}

Written by the same `python scripts/make_sample_logs.py sample_logs` (module
`auditkit.samplegen_mariadb`, seed {SEED}); identical bytes on every run.
The ground truth is `auditkit.samplegen_mariadb.expected_story()`.

## Server

`{SERVERHOST}`: MariaDB 10.11 (checked against 10.11.19), database `reporting` with tables
`reporting.customer_export(customer_id, name, email, phone, card_number, expiry, exported_at)`
(a PCI copy of the shop's customers) and
`reporting.daily_sales(day, order_id, customer_id, sku, qty, revenue)`:

    plugin_load_add = server_audit
    server_audit_logging = ON
    server_audit_events = 'CONNECT,QUERY,TABLE'
    server_audit_output_type = file
    server_audit_file_path = server_audit.log
    skip_name_resolve = ON

**Time zone assumption**: server_audit writes server-local time without a zone. The operator runs
`reports-db` with `TZ=UTC` (the office is in Europe/Berlin, UTC+1 in November, but the servers
are UTC), so the times in `mariadb/{FILENAME}` are UTC and `auditkit demo` reads them right
without options. A file from a server on local time must be read with the zone, e.g.
`--tz Europe/Berlin`.

| file | records |
|---|---|
| `mariadb/{FILENAME}` | {len(records)} |

Records by operation: {ops}.

Connection ids and query ids are server-wide counters (query ids have gaps: the `mariadb`
client's `select @@version_comment` is not logged). Reproduced as a real 10.11 writes it:
TABLE events before their QUERY (same query id, empty retcode), the QUERY of a long
statement written when it finished (after other sessions' records), `FAILED_CONNECT`
followed by a `DISCONNECT` with retcode 0, and database `mysql` on the QUERY of a `GRANT` /
`REVOKE` / `ALTER USER` run without a default database.

What auditkit makes of it today: `SELECT ... INTO OUTFILE` is analysed as a `read` of
`reporting.customer_export` (not an `export`); `GRANT FILE ON *.*` and `ALTER USER` are events
of category `permission` but name no object, so the access table shows only carol's writes of
`mysql.db` / `mysql.global_priv`.

## People on reports-db

| who | what | from | client |
|---|---|---|---|
{people}

## Planted incidents (continuing the PostgreSQL story)

5. **FILE privilege** - {grant["time"]} UTC: carol runs `{CAROL_GRANT}` from {CAROL_HOST}
   (TABLE events `WRITE mysql.db`, `WRITE mysql.global_priv`; QUERY database `mysql`). It lets
   dave write query results to files on the database host.
6. **The night reader, part two** - seven minutes after the `payments.cards` COPY on db1:
   {s["failed_root_login"]["time"]} UTC a `FAILED_CONNECT` for `root` from {NIGHT_HOST} (retcode
   1045, access denied), then {night["connect_time"]} UTC dave connects to `reporting` from the
   same address, runs `SHOW TABLES`, `SELECT COUNT(*) FROM customer_export` and at
   {night["read_time"]} UTC `{EXPORT_SQL}` (READ `reporting.customer_export`; the QUERY, retcode
   0, is written when it finished at {night["time"]} UTC).
7. **Clean-up** - {CAROL_REVOKE_TIME} UTC: carol runs `{CAROL_REVOKE}` and
   `{CAROL_LOCK}`.
"""


def write_sample_logs(outdir: str | Path) -> dict[str, int]:
    """Write ``outdir/mariadb/server_audit.log`` and append (or replace) the reports-db
    section of ``outdir/README.md``. Returns records per file."""
    outdir = Path(outdir)
    logdir = outdir / "mariadb"
    logdir.mkdir(parents=True, exist_ok=True)
    records = scenario()
    (logdir / FILENAME).write_bytes(render(records).encode("utf-8"))
    set_readme_section(outdir / "README.md", README_MARKER, readme_section(records))
    return {f"mariadb/{FILENAME}": len(records)}
