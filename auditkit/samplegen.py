"""Deterministic PostgreSQL 16 + pgaudit sample logs (pure standard library).

What a PostgreSQL 16 server with pgaudit 16.x writes, byte for byte, in the three log
containers (``stderr`` with a ``log_line_prefix``, ``csvlog``, ``jsonlog``):

* :class:`LogEntry` is one server-log entry (one ``ereport``), i.e. the fields PostgreSQL keeps
  for a message before a container formats it.
* :func:`pgaudit_message` builds the ``AUDIT: ...`` message exactly like pgaudit's
  ``log_audit_event``/``append_valid_csv``.
* :func:`render_stderr`, :func:`render_csvlog`, :func:`render_jsonlog` follow ``elog.c``
  (``log_line_prefix``, ``send_message_to_server_log``, ``append_with_tabs``), ``csvlog.c``
  and ``jsonlog.c`` of PostgreSQL 16.
* :func:`scenario` is a one-week story (2026-11-02 .. 2026-11-08 UTC) with planted incidents;
  :func:`expected_story` is its ground truth; :func:`write_sample_logs` writes the demo folder.
* :func:`bulk_entries` / :func:`write_bulk` make large realistic files for benchmarks.

Behaviour that surprises people and is reproduced on purpose (sources: pgaudit.c, elog.c):

* pgaudit < 17 puts the *whole* query string in every record of a multi-statement string and
  keeps the terminating ``;`` that psql/pgAdmin send; DBeaver (pgjdbc) and drivers send single
  statements without ``;``.
* ``SET`` statements are logged under class ``MISC`` even when only ``misc_set`` is enabled.
* Utility statements are logged *after* they ran, so ``SET pgaudit.log = 'none'`` can never
  appear in the audit trail; ``pgaudit.log`` is ``PGC_SUSET``, so a non-superuser gets
  ``ERROR:  permission denied to set parameter "pgaudit.log"`` instead (that is what bob gets).
* Statements rejected by the permission check never reach pgaudit (no AUDIT record, only the
  ``ERROR`` + ``STATEMENT`` lines); statements failing later were audited first.
* With ``pgaudit.log_rows = on`` (database ``billing`` here) SELECT/DML records are written at
  executor end, carry a 10th field and are *not* written at all when the statement fails.
* Catalog-only queries are not logged with ``pgaudit.log_catalog = off``.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from json.encoder import encode_basestring as _json_str  # same escaping as PG escape_json
from pathlib import Path

__all__ = [
    "CONTAINERS",
    "DEFAULT_PREFIX",
    "LogEntry",
    "bulk_entries",
    "expected_story",
    "pgaudit_message",
    "render",
    "render_csvlog",
    "render_jsonlog",
    "render_stderr",
    "scenario",
    "write_bulk",
    "write_sample_logs",
    "write_scenario",
]

SEED = 20261102
SIDE_SEED = 20261113  # the gateway's traffic and the bypass (see _Session.extra)
DEFAULT_PREFIX = "%m [%p] %q%u@%d "  # Debian/Ubuntu packaging default
CONTAINERS = {"stderr": ".log", "csvlog": ".csv", "jsonlog": ".json"}
WEEK = [date(2026, 11, d) for d in range(2, 9)]

# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class LogEntry:
    """One PostgreSQL server-log entry, container independent.

    ``remote_host is None`` means a process without a client connection (``MyProcPort ==
    NULL``: postmaster, checkpointer...): no user/database/ps columns and ``%q`` stops the
    prefix. For client backends ``remote_host`` is an address or ``[local]`` and ``user`` /
    ``database`` are ``None`` only before the startup packet was read (``connection received``).
    ``command_tag`` is the ps display (``idle``, ``authentication``, ``SELECT``...).
    ``statement`` is the ``query`` column / ``STATEMENT:`` line: set only when PostgreSQL prints
    it (errors at or above ``log_min_error_statement``; pgaudit hides it for its records).
    """

    time: datetime
    pid: int
    user: str | None = None
    database: str | None = None
    remote_host: str | None = None
    remote_port: int | None = None
    application_name: str = ""
    session_id: str = ""
    session_line_num: int = 0
    session_start: datetime | None = None
    command_tag: str | None = None
    vxid: str | None = None
    txid: int = 0
    severity: str = "LOG"
    sqlstate: str = "00000"
    message: str = ""
    detail: str | None = None
    hint: str | None = None
    statement: str | None = None
    backend_type: str = "client backend"
    query_id: int = 0


def session_id_for(start: datetime, pid: int) -> str:
    """``%c`` / csvlog ``session_id``: hex(backend start epoch).hex(pid)."""
    return f"{int(start.timestamp()):x}.{pid:x}"


# --------------------------------------------------------------------------------------------
# pgaudit record
# --------------------------------------------------------------------------------------------


def _audit_csv(value: object) -> str:
    """pgaudit ``append_valid_csv``: quote only if the text has , " CR or LF; NULL -> empty."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if "," in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def _audit_params(parameter: object) -> str:
    if parameter is None:
        return "<none>"
    if isinstance(parameter, str):  # a sentinel such as <not logged> / <previously logged>
        return parameter
    values = list(parameter)  # type: ignore[call-overload]
    if not values:
        return "<none>"
    inner = ",".join("" if v is None else _audit_csv(v) for v in values)
    return _audit_csv(inner)


def pgaudit_message(
    audit_type: str,
    statement_id: int,
    substatement_id: int,
    klass: str,
    command: str,
    object_type: str | None,
    object_name: str | None,
    statement: str | None,
    parameter: Sequence[object | None] | str | None,
    rows: int | None = None,
) -> str:
    """The message text of one pgaudit record (``AUDIT: ...``), as ``log_audit_event`` builds it.

    ``parameter``: ``None`` or an empty sequence -> ``<none>`` (log_parameter on, no bind
    parameters); a sequence of bind values (``None`` = SQL NULL) -> double CSV encoding; a
    string -> written verbatim (``<not logged>``, ``<previously logged>``).
    ``rows`` is the optional 10th field (``pgaudit.log_rows = on``).
    """
    msg = (
        f"AUDIT: {audit_type},{statement_id},{substatement_id},{klass},{_audit_csv(command)},"
        f"{_audit_csv(object_type)},{_audit_csv(object_name)},{_audit_csv(statement)},"
        f"{_audit_params(parameter)}"
    )
    if rows is not None:
        msg += f",{rows}"
    return msg


# --------------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------------


class _TimeFormat:
    """``get_formatted_log_time`` / ``get_formatted_start_time`` with a per-second cache."""

    __slots__ = ("tz", "_cache")

    def __init__(self, tz: tzinfo | None) -> None:
        self.tz = tz or UTC
        self._cache: dict[datetime, tuple[str, str]] = {}

    def _parts(self, dt: datetime) -> tuple[str, str]:
        key = dt.replace(microsecond=0)
        hit = self._cache.get(key)
        if hit is None:
            local = key.astimezone(self.tz)
            hit = (local.strftime("%Y-%m-%d %H:%M:%S"), " " + (local.tzname() or ""))
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def log_time(self, dt: datetime) -> str:
        base, zone = self._parts(dt)
        return f"{base}.{dt.microsecond // 1000:03d}{zone}"

    def seconds(self, dt: datetime) -> str:
        base, zone = self._parts(dt)
        return base + zone


def _pad(s: str, padding: int) -> str:
    if padding > 0:
        return s.rjust(padding)
    if padding < 0:
        return s.ljust(-padding)
    return s


def _spaces(p: int) -> str:
    return " " * abs(p)


def _compile_prefix(prefix: str):
    """Compile a ``log_line_prefix`` into (head, tail) lists of ``f(entry, lineno, tf)``.

    ``head`` is everything before the first ``%q``; non-session processes stop there.
    """
    head: list = []
    tail: list = []
    ops = head
    i, n = 0, len(prefix)
    while i < n:
        c = prefix[i]
        if c != "%":
            ops.append(c)
            i += 1
            continue
        i += 1
        if i >= n:
            break
        if prefix[i] == "%":
            ops.append("%")
            i += 1
            continue
        padding = 0
        if prefix[i] <= "9":  # process_log_prefix_padding
            sign = 1
            if prefix[i] == "-":
                sign = -1
                i += 1
                if i >= n:
                    break
            while i < n and "0" <= prefix[i] <= "9":
                padding = padding * 10 + ord(prefix[i]) - 48
                i += 1
            if i >= n:
                break
            padding *= sign
        esc = prefix[i]
        i += 1
        p = padding
        if esc == "q":
            if ops is head:
                ops = tail
            continue
        if esc == "a":
            ops.append(
                lambda e, ln, tf, p=p: (
                    _pad(e.application_name or "[unknown]", p)
                    if e.remote_host is not None
                    else _spaces(p)
                )
            )
        elif esc == "b":
            ops.append(lambda e, ln, tf, p=p: _pad(e.backend_type, p))
        elif esc == "u":
            ops.append(
                lambda e, ln, tf, p=p: (
                    _pad(e.user or "[unknown]", p) if e.remote_host is not None else _spaces(p)
                )
            )
        elif esc == "d":
            ops.append(
                lambda e, ln, tf, p=p: (
                    _pad(e.database or "[unknown]", p) if e.remote_host is not None else _spaces(p)
                )
            )
        elif esc == "c":
            ops.append(lambda e, ln, tf, p=p: _pad(_sid(e), p))
        elif esc == "p":
            ops.append(lambda e, ln, tf, p=p: _pad(str(e.pid), p))
        elif esc == "P":
            ops.append(lambda e, ln, tf, p=p: _spaces(p))
        elif esc == "l":
            ops.append(lambda e, ln, tf, p=p: _pad(str(ln), p))
        elif esc == "m":
            ops.append(lambda e, ln, tf, p=p: _pad(tf.log_time(e.time), p))
        elif esc == "t":
            ops.append(lambda e, ln, tf, p=p: _pad(tf.seconds(e.time), p))
        elif esc == "n":
            ops.append(
                lambda e, ln, tf, p=p: _pad(
                    f"{int(e.time.timestamp())}.{e.time.microsecond // 1000:03d}", p
                )
            )
        elif esc == "s":
            ops.append(lambda e, ln, tf, p=p: _pad(tf.seconds(e.session_start or e.time), p))
        elif esc == "i":
            ops.append(
                lambda e, ln, tf, p=p: (
                    _pad(e.command_tag or "", p) if e.remote_host is not None else _spaces(p)
                )
            )
        elif esc == "r":
            ops.append(
                lambda e, ln, tf, p=p: (
                    _pad(e.remote_host + (f"({e.remote_port})" if e.remote_port else ""), p)
                    if e.remote_host is not None
                    else _spaces(p)
                )
            )
        elif esc == "h":
            ops.append(
                lambda e, ln, tf, p=p: (
                    _pad(e.remote_host, p) if e.remote_host is not None else _spaces(p)
                )
            )
        elif esc == "v":
            ops.append(lambda e, ln, tf, p=p: _pad(e.vxid, p) if e.vxid is not None else _spaces(p))
        elif esc == "x":
            ops.append(lambda e, ln, tf, p=p: _pad(str(e.txid), p))
        elif esc == "e":
            ops.append(lambda e, ln, tf, p=p: _pad(e.sqlstate, p))
        elif esc == "Q":
            ops.append(lambda e, ln, tf, p=p: _pad(str(e.query_id), p))
        # anything else: "format error - ignore it"
    return _merge_literals(head), _merge_literals(tail)


def _merge_literals(ops: list) -> list:
    out: list = []
    for op in ops:
        if isinstance(op, str) and out and isinstance(out[-1], str):
            out[-1] += op
        else:
            out.append(op)
    return out


def _sid(e: LogEntry) -> str:
    return e.session_id or session_id_for(e.session_start or e.time, e.pid)


class _StderrRenderer:
    __slots__ = ("head", "tail", "tf", "counters")

    def __init__(self, prefix: str, tz: tzinfo | None, counters: dict[int, int] | None) -> None:
        self.head, self.tail = _compile_prefix(prefix)
        self.tf = _TimeFormat(tz)
        self.counters = {} if counters is None else counters

    def _prefix(self, e: LogEntry) -> str:
        # log_line_prefix() increments %l on *every* call (DETAIL/STATEMENT lines included).
        ln = self.counters.get(e.pid)
        ln = (e.session_line_num if ln is None else ln + 1) or 1
        self.counters[e.pid] = ln
        tf = self.tf
        parts = [op if op.__class__ is str else op(e, ln, tf) for op in self.head]
        if e.remote_host is not None:
            parts += [op if op.__class__ is str else op(e, ln, tf) for op in self.tail]
        return "".join(parts)

    def entry(self, e: LogEntry) -> str:
        out = [self._prefix(e), e.severity, ":  ", e.message.replace("\n", "\n\t"), "\n"]
        if e.detail is not None:
            out += [self._prefix(e), "DETAIL:  ", e.detail.replace("\n", "\n\t"), "\n"]
        if e.hint is not None:
            out += [self._prefix(e), "HINT:  ", e.hint.replace("\n", "\n\t"), "\n"]
        if e.statement is not None:
            out += [self._prefix(e), "STATEMENT:  ", e.statement.replace("\n", "\n\t"), "\n"]
        return "".join(out)


def render_stderr(
    entries: Iterable[LogEntry],
    prefix: str = DEFAULT_PREFIX,
    *,
    log_timezone: tzinfo | None = None,
    line_counters: dict[int, int] | None = None,
) -> str:
    """The stderr (logging collector) text: ``<prefix>SEVERITY:  message`` lines.

    Continuation lines of multi-line texts start with a TAB; DETAIL/HINT/STATEMENT are lines of
    their own with the prefix. ``line_counters`` (pid -> last ``%l``) lets several calls continue
    the per-process line numbers, as when one log is split into daily files.
    """
    r = _StderrRenderer(prefix, log_timezone, line_counters)
    return "".join([r.entry(e) for e in entries])


def _csv_lit(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if '"' in s else '"' + s + '"'


class _CsvRenderer:
    __slots__ = ("tf",)

    def __init__(self, tz: tzinfo | None) -> None:
        self.tf = _TimeFormat(tz)

    def entry(self, e: LogEntry) -> str:
        tf = self.tf
        session = e.remote_host is not None
        if session:
            conn = e.remote_host + (f":{e.remote_port}" if e.remote_port else "")
            conn = f'"{conn}"'
            ps = _csv_lit(e.command_tag or "")
        else:
            conn = ps = ""
        return (
            ",".join(
                (
                    tf.log_time(e.time),
                    _csv_lit(e.user) if e.user is not None else "",
                    _csv_lit(e.database) if e.database is not None else "",
                    str(e.pid),
                    conn,
                    _sid(e),
                    str(e.session_line_num),
                    ps,
                    tf.seconds(e.session_start or e.time),
                    e.vxid or "",
                    str(e.txid),
                    e.severity,
                    e.sqlstate,
                    _csv_lit(e.message),
                    _csv_lit(e.detail) if e.detail is not None else "",
                    _csv_lit(e.hint) if e.hint is not None else "",
                    "",  # internal_query
                    "",  # internal_query_pos
                    "",  # context
                    _csv_lit(e.statement) if e.statement is not None else "",
                    "",  # query_pos
                    "",  # location (log_error_verbosity = default)
                    _csv_lit(e.application_name),
                    _csv_lit(e.backend_type),
                    "",  # leader_pid
                    str(e.query_id),
                )
            )
            + "\n"
        )


def render_csvlog(entries: Iterable[LogEntry], *, log_timezone: tzinfo | None = None) -> str:
    """csvlog text, PostgreSQL 14-17 layout (26 columns), quoting exactly like csvlog.c."""
    r = _CsvRenderer(log_timezone)
    return "".join([r.entry(e) for e in entries])


class _JsonRenderer:
    __slots__ = ("tf",)

    def __init__(self, tz: tzinfo | None) -> None:
        self.tf = _TimeFormat(tz)

    def entry(self, e: LogEntry) -> str:
        tf = self.tf
        out = ['{"timestamp":', _json_str(tf.log_time(e.time))]
        session = e.remote_host is not None
        if session and e.user is not None:
            out += [',"user":', _json_str(e.user)]
        if session and e.database is not None:
            out += [',"dbname":', _json_str(e.database)]
        out += [',"pid":', str(e.pid)]
        if session:
            out += [',"remote_host":', _json_str(e.remote_host)]
            if e.remote_port:
                out += [',"remote_port":', str(e.remote_port)]
        out += [',"session_id":"', _sid(e), '","line_num":', str(e.session_line_num)]
        if session:
            out += [',"ps":', _json_str(e.command_tag or "")]
        out += [',"session_start":', _json_str(tf.seconds(e.session_start or e.time))]
        if e.vxid is not None:
            out += [',"vxid":"', e.vxid, '"']
        out += [',"txid":', str(e.txid), ',"error_severity":"', e.severity, '"']
        if e.sqlstate != "00000":  # sqlerrcode 0 (successful completion) is omitted
            out += [',"state_code":"', e.sqlstate, '"']
        out += [',"message":', _json_str(e.message)]
        if e.detail is not None:
            out += [',"detail":', _json_str(e.detail)]
        if e.hint is not None:
            out += [',"hint":', _json_str(e.hint)]
        if e.statement is not None:
            out += [',"statement":', _json_str(e.statement)]
        if e.application_name:
            out += [',"application_name":', _json_str(e.application_name)]
        out += [
            ',"backend_type":',
            _json_str(e.backend_type),
            ',"query_id":',
            str(e.query_id),
            "}\n",
        ]
        return "".join(out)


def render_jsonlog(entries: Iterable[LogEntry], *, log_timezone: tzinfo | None = None) -> str:
    """jsonlog text (PostgreSQL 15+): one object per line, keys in jsonlog.c order.

    Keys are omitted when PostgreSQL has a NULL (``user`` before authentication, ``vxid``
    outside a PGPROC, ``detail``...), ``state_code`` for code 00000 and ``application_name``
    when empty; ``ps`` is kept even when empty, ``txid``/``query_id`` are always there.
    """
    r = _JsonRenderer(log_timezone)
    return "".join([r.entry(e) for e in entries])


def render(entries: Iterable[LogEntry], container: str, **kwargs) -> str:
    """Dispatch to :func:`render_stderr` / :func:`render_csvlog` / :func:`render_jsonlog`."""
    if container == "stderr":
        return render_stderr(entries, **kwargs)
    if container == "csvlog":
        return render_csvlog(entries, **kwargs)
    if container == "jsonlog":
        return render_jsonlog(entries, **kwargs)
    raise ValueError(f"unknown container {container!r}; expected one of {sorted(CONTAINERS)}")


def _renderer(container: str, prefix: str = DEFAULT_PREFIX):
    if container == "stderr":
        return _StderrRenderer(prefix, None, None)
    if container == "csvlog":
        return _CsvRenderer(None)
    if container == "jsonlog":
        return _JsonRenderer(None)
    raise ValueError(f"unknown container {container!r}; expected one of {sorted(CONTAINERS)}")


# --------------------------------------------------------------------------------------------
# Scenario: the server, the people, the week
# --------------------------------------------------------------------------------------------

HBA_FILE = "/etc/postgresql/16/main/pg_hba.conf"
HBA_ALL_LINE = 12
HBA_ALL_RAW = "host all all 0.0.0.0/0 scram-sha-256"
SSL_LIBPQ = "SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)"
LOG_ROWS_DATABASES = ("billing",)  # ALTER DATABASE billing SET pgaudit.log_rows = on
NBUFFERS = 16384  # shared_buffers = 128MB

SERVER = {
    "version": "PostgreSQL 16.4 (Debian 16.4-1.pgdg120+2) with pgaudit 16.0",
    "host": "db1.shop.internal",
    "log_line_prefix": DEFAULT_PREFIX,
    "log_timezone": "Etc/UTC",
    "settings": {
        "shared_preload_libraries": "pgaudit",
        "pgaudit.log": "read, write, ddl, role, misc_set",
        "pgaudit.log_relation": "on",
        "pgaudit.log_parameter": "on",
        "pgaudit.log_catalog": "off",
        "pgaudit.log_rows": "off (on for database billing)",
        "log_connections": "on",
        "log_disconnections": "on",
        "log_statement": "none",
        "log_min_error_statement": "error",
        "log_checkpoints": "on",
        "checkpoint_timeout": "1h",
        "logging_collector": "on",
        "log_filename": "postgresql-%Y-%m-%d.log",
        "log_rotation_age": "1d",
        "ssl": "on",
    },
    "postmaster_pid": 812,
    "checkpointer_pid": 814,
    "postmaster_start": datetime(2026, 10, 26, 4, 12, 33, 581204, tzinfo=UTC),
}

PEOPLE = {
    "alice": {
        "role": "analyst",
        "src_ip": "10.20.0.11",
        "client_app": "DBeaver 24.1.3 - Main <shop> / DBeaver 24.1.3 - SQLEditor <Script-N.sql>",
        "hours_utc": "09-18 Mon-Fri",
    },
    "bob": {"role": "developer", "src_ip": "10.20.0.17", "client_app": "psql"},
    "carol": {"role": "DBA", "src_ip": "10.20.0.5 and [local]", "client_app": "psql"},
    "dave": {"role": "support", "src_ip": "10.20.0.24", "client_app": "pgAdmin 4 - DB:shop"},
    "app_user": {
        "role": "service account of shop-api",
        "src_ip": "10.0.1.5, 10.0.1.6",
        "client_app": "shop-api",
    },
    "bytebase": {
        "role": "data-source role of the Bytebase gateway (runs the people's SQL Editor queries)",
        "src_ip": "10.0.3.10",
        "client_app": "bytebase",
    },
}

_FIRST = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofia", "Lucas", "Mia", "Ethan", "Amara",
    "Kenji", "Priya", "Jonas", "Chloé", "Tomás", "Ingrid", "Yusuf", "Hannah", "Diego",
]  # fmt: skip
_LAST = [
    "Nguyen", "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Okafor", "Tanaka", "Dubois",
    "Johansson", "Patel", "Silva", "Cohen", "Murphy", "Novak", "Haddad", "Larsen", "Moreau",
]  # fmt: skip
_ODD_NAMES = ["O'Neil, Jr., Patrick", 'Zoë "Zo" Martin', "de la Cruz, María"]
_SKUS = [f"SKU-{n:05d}" for n in (1042, 1177, 2210, 2291, 3005, 3318, 4470, 5102, 5566, 7001)]


def _at(d: date, hh: int, mm: int = 0, ss: float = 0.0) -> datetime:
    sec = int(ss)
    return datetime(d.year, d.month, d.day, hh, mm, sec, int(round((ss - sec) * 1e6)), UTC)


def _us(n: float) -> timedelta:
    return timedelta(microseconds=int(n))


def _ms(n: float) -> timedelta:
    return timedelta(microseconds=int(n * 1000))


def _session_time(delta: timedelta) -> str:
    total_us = delta.days * 86400_000_000 + delta.seconds * 1_000_000 + delta.microseconds
    secs, usecs = divmod(total_us, 1_000_000)
    hours, rem = divmod(secs, 3600)
    minutes, seconds = divmod(rem, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{usecs // 1000:03d}"


def _redact_password(sql: str) -> str:
    """pgaudit: for CREATE/ALTER ROLE, everything after the token ``password`` (any case)."""
    m = re.search("password", sql, re.IGNORECASE | re.ASCII)
    return sql if m is None else sql[: m.end()] + " <REDACTED>"


def _pg_timestamptz(dt: datetime) -> str:
    """timestamptz_out with DateStyle ISO, TimeZone UTC, ms precision (a JS Date)."""
    ms = dt.microsecond // 1000
    frac = f".{ms:03d}".rstrip("0") if ms else ""
    return dt.strftime("%Y-%m-%d %H:%M:%S") + frac + "+00"


class _Tx:
    __slots__ = ("lxid", "xid", "write_time")

    def __init__(self) -> None:
        self.lxid = 0
        self.xid = 0
        self.write_time: datetime | None = None

    def writes(self, t: datetime) -> None:
        if self.write_time is None or t < self.write_time:
            self.write_time = t


class _Session:
    """One client backend: its log entries, transactions and pgaudit statement counter."""

    def __init__(
        self,
        world: _World,
        start: datetime,
        user: str,
        database: str,
        host: str,
        app: str,
        *,
        ssl: bool = True,
        hba_line: int = HBA_ALL_LINE,
        method: str = "scram-sha-256",
        person: str | None = None,
        extra: bool = False,
    ) -> None:
        self.w = world
        # built from the side random stream (gateway traffic, the shared-account bypass): kept
        # out of the main stream's pid/slot draws so the rest of the week stays byte-identical
        self.extra = extra
        self.start = start
        self.user = user
        self.database = database
        self.host = host
        self.port = None if host == "[local]" else world.next_port(host)
        self.app = app
        self.ssl = ssl and host != "[local]"
        self.hba_line = hba_line
        self.method = method
        self.person = person or user
        self.log_rows = database in LOG_ROWS_DATABASES
        self.records: list[tuple[LogEntry, _Tx | None, bool]] = []
        self.txs: list[_Tx] = []
        self.stmt_id = 0
        self.cur_app = ""
        self.end: datetime | None = None
        self.pid = 0
        self.slot = 0
        self.audits: list[tuple[str, str, str]] = []  # (klass, object_type, object_name)
        world.sessions.append(self)

    # -- low level ---------------------------------------------------------------------------
    def emit(
        self,
        t: datetime,
        message: str,
        *,
        tag: str,
        tx: _Tx | None = None,
        proc: bool = True,
        known: bool = True,
        severity: str = "LOG",
        sqlstate: str = "00000",
        detail: str | None = None,
        statement: str | None = None,
        backend: str = "client backend",
    ) -> LogEntry:
        e = LogEntry(
            time=t,
            pid=0,
            user=self.user if known else None,
            database=self.database if known else None,
            remote_host=self.host,
            remote_port=self.port,
            application_name=self.cur_app,
            session_start=self.start,
            command_tag=tag,
            severity=severity,
            sqlstate=sqlstate,
            message=message,
            detail=detail,
            statement=statement,
            backend_type=backend,
        )
        self.records.append((e, tx, proc))
        return e

    def new_tx(self) -> _Tx:
        tx = _Tx()
        self.txs.append(tx)
        return tx

    def idle_tx(self, n: int) -> None:
        """Transactions pgaudit does not log (catalog reads, SHOW, BEGIN/COMMIT...)."""
        for _ in range(n):
            self.new_tx()

    def next_stmt(self) -> int:
        self.stmt_id += 1
        return self.stmt_id

    def _audit(
        self,
        t: datetime,
        tx: _Tx,
        tag: str,
        stmt_id: int,
        items: Sequence[tuple[int, str, str, str | None, str | None, int]],
        statement: str,
        params: Sequence[object | None] | None,
    ) -> None:
        for sub, klass, command, otype, oname, rows in items:
            msg = pgaudit_message(
                "SESSION",
                stmt_id,
                sub,
                klass,
                command,
                otype,
                oname,
                statement,
                params,
                rows if self.log_rows else None,
            )
            self.emit(t, msg, tag=tag, tx=tx)
            t += _us(self.w.rng.randint(8, 60))
            self.audits.append((klass, otype or "", oname or ""))

    # -- connection life cycle -----------------------------------------------------------------
    def received(self) -> datetime:
        rng = self.w.rng
        t = self.start + _us(rng.randint(250, 1400))
        if self.port is None:
            msg = f"connection received: host={self.host}"
        else:
            msg = f"connection received: host={self.host} port={self.port}"
        self.emit(t, msg, tag="", proc=False, known=False, backend="not initialized")
        return t

    def connect(self) -> datetime:
        rng = self.w.rng
        t = self.received()
        tx = self.new_tx()  # InitPostgres' transaction
        t += _ms(rng.uniform(0.4, 1.2) if self.method == "peer" else rng.uniform(4.0, 16.0))
        identity = self.user
        self.emit(
            t,
            f'connection authenticated: identity="{identity}" method={self.method} '
            f"({HBA_FILE}:{self.hba_line})",
            tag="authentication",
            tx=tx,
        )
        t += _us(rng.randint(150, 700))
        msg = f"connection authorized: user={self.user} database={self.database}"
        if self.app:
            msg += f" application_name={self.app}"
        if self.ssl:
            msg += " " + SSL_LIBPQ
        self.emit(t, msg, tag="authentication", tx=tx)
        self.cur_app = self.app  # applied after authentication (process_startup_options)
        return t + _ms(rng.uniform(1.0, 3.5))

    def fail_password(self) -> datetime:
        rng = self.w.rng
        t = self.received()
        tx = self.new_tx()
        t += _ms(rng.uniform(6.0, 22.0))
        self.emit(
            t,
            f'password authentication failed for user "{self.user}"',
            tag="authentication",
            tx=tx,
            severity="FATAL",
            sqlstate="28P01",
            detail=f'Connection matched file "{HBA_FILE}" line {self.hba_line}: "{HBA_ALL_RAW}"',
        )
        self.end = t + _us(rng.randint(200, 900))
        return t

    def disconnect(self, t: datetime) -> datetime:
        last = max(e.time for e, _, _ in self.records)
        t = max(t, last + _ms(1))
        host = self.host + ("" if self.port is None else f" port={self.port}")
        self.emit(
            t,
            f"disconnection: session time: {_session_time(t - self.start)} "
            f"user={self.user} database={self.database} host={host}",
            tag="idle",
            proc=False,
        )
        self.end = t
        return t

    # -- statements ----------------------------------------------------------------------------
    def select(
        self,
        t: datetime,
        sql: str,
        tables: Sequence[tuple[str, str]],
        rows: int,
        *,
        params: Sequence[object | None] | None = None,
        dur_ms: float | None = None,
        tx: _Tx | None = None,
    ) -> datetime:
        """A SELECT; with log_relation one record per relation (empty object if none)."""
        rng = self.w.rng
        tx = tx or self.new_tx()
        dur = _ms(dur_ms if dur_ms is not None else rng.uniform(0.4, 30.0))
        stmt = self.next_stmt()
        items = [(1, "READ", "SELECT", ot, on, rows) for ot, on in tables] or [
            (1, "READ", "SELECT", None, None, rows)
        ]
        at = t + dur if self.log_rows else t + _us(rng.randint(90, 600))
        self._audit(at, tx, "SELECT", stmt, items, sql, params)
        return t + dur + _ms(rng.uniform(0.1, 2.0))

    def dml(
        self,
        t: datetime,
        sql: str,
        command: str,
        target: str,
        reads: Sequence[tuple[str, str]] = (),
        *,
        params: Sequence[object | None] | None = None,
        rows: int = 1,
        tx: _Tx | None = None,
        dur_ms: float | None = None,
    ) -> datetime:
        """INSERT/UPDATE/DELETE: WRITE record for the target, READ records for other relations."""
        rng = self.w.rng
        tx = tx or self.new_tx()
        dur = _ms(dur_ms if dur_ms is not None else rng.uniform(0.3, 6.0))
        stmt = self.next_stmt()
        start = t + _us(rng.randint(90, 500))
        tx.writes(start + _us(40))
        items = [(1, "WRITE", command, "TABLE", target, rows)]
        items += [(1, "READ", "SELECT", ot, on, rows) for ot, on in reads]
        self._audit(t + dur if self.log_rows else start, tx, command, stmt, items, sql, params)
        return t + dur + _ms(rng.uniform(0.1, 1.5))

    def utility(
        self,
        t: datetime,
        sql: str,
        klass: str,
        tag: str,
        objects: Sequence[tuple[str, str | None, str | None]] = (),
        *,
        writes: bool = True,
        tx: _Tx | None = None,
        dur_ms: float | None = None,
    ) -> datetime:
        """DDL/ROLE/SET...: logged after execution; ``objects`` = (command, type, name)."""
        rng = self.w.rng
        tx = tx or self.new_tx()
        dur = _ms(dur_ms if dur_ms is not None else rng.uniform(0.5, 12.0))
        if writes:
            tx.writes(t + dur / 2)
        stmt = self.next_stmt()
        items = [(1, klass, c, ot, on, 0) for c, ot, on in objects] or [
            (1, klass, tag, None, None, 0)
        ]
        if tag in ("CREATE ROLE", "ALTER ROLE") and " SET " not in sql.upper():
            sql = _redact_password(sql)  # CreateRoleStmt / AlterRoleStmt only
        self._audit(t + dur, tx, tag, stmt, items, sql, None)
        return t + dur + _ms(rng.uniform(0.1, 1.0))

    def error(
        self,
        t: datetime,
        message: str,
        sqlstate: str,
        statement: str,
        tag: str,
        *,
        detail: str | None = None,
        tx: _Tx | None = None,
    ) -> datetime:
        tx = tx or self.new_tx()
        self.emit(
            t,
            message,
            tag=tag,
            tx=tx,
            severity="ERROR",
            sqlstate=sqlstate,
            detail=detail,
            statement=statement,
        )
        return t + _ms(self.w.rng.uniform(0.2, 1.0))


class _Aux:
    """A process without a client connection (postmaster, checkpointer)."""

    def __init__(self, pid: int, start: datetime, backend: str, base_line: int) -> None:
        self.pid = pid
        self.start = start
        self.backend = backend
        self.line = base_line
        self.entries: list[LogEntry] = []

    def log(self, t: datetime, message: str) -> LogEntry:
        self.line += 1
        e = LogEntry(
            time=t,
            pid=self.pid,
            session_id=session_id_for(self.start, self.pid),
            session_line_num=self.line,
            session_start=self.start,
            message=message,
            backend_type=self.backend,
        )
        self.entries.append(e)
        return e


class _World:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.sessions: list[_Session] = []
        self.ports: dict[str, int] = {}
        self.facts: dict = {}

    def next_port(self, host: str) -> int:
        rng = self.rng
        windows = host in ("10.20.0.11", "10.20.0.24")  # Windows clients: 49152-65535
        lo, hi = (49152, 65535) if windows else (32768, 60999)
        port = self.ports.get(host)
        port = rng.randint(lo, hi) if port is None else port + rng.randint(1, 40)
        if port > hi:
            port = lo + (port - hi)
        self.ports[host] = port
        return port


# -- SQL the people and the application send ----------------------------------------------------

_T_CUSTOMERS = ("TABLE", "public.customers")
_T_ORDERS = ("TABLE", "public.orders")
_T_ITEMS = ("TABLE", "public.order_items")
_T_NOTES = ("TABLE", "public.order_notes")
_V_SUMMARY = ("VIEW", "public.customer_summary")
_T_CARDS = ("TABLE", "payments.cards")

_APP_HISTORY_SQL = """
      SELECT o.id, o.total, o.created_at, count(i.sku) AS items
        FROM public.orders o
        LEFT JOIN public.order_items i ON i.order_id = o.id
       WHERE o.customer_id = $1
       GROUP BY o.id
       ORDER BY o.created_at DESC
       LIMIT 20
    """
_APP_LOOKUP_SQL = "SELECT id, name, email FROM public.customers WHERE id = $1"
_APP_ORDER_SQL = (
    "INSERT INTO public.orders (id, customer_id, total, created_at) VALUES ($1, $2, $3, $4)"
)
_APP_ITEM_SQL = (
    "INSERT INTO public.order_items (order_id, sku, qty, unit_price) VALUES ($1, $2, $3, $4)"
)
_APP_PROFILE_SQL = "UPDATE public.customers SET email = $1, phone = $2 WHERE id = $3"
_APP_SIGNUP_SQL = (
    "INSERT INTO public.customers (name, email, phone, ssn, created_at) "
    "VALUES ($1, $2, $3, $4, now()) RETURNING id"
)
_APP_STATUS_SQL = "UPDATE public.orders SET status = $1 WHERE id = $2"
_APP_CARDS_SQL = (
    "SELECT id, right(card_number, 4) AS last4, expiry FROM payments.cards WHERE customer_id = $1"
)
_APP_CARD_UPDATE_SQL = "UPDATE payments.cards SET expiry = $1 WHERE id = $2"

_ALICE_QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "SELECT date_trunc('day', o.created_at) AS day,\n"
        "       count(*) AS orders,\n"
        "       sum(o.total) AS revenue\n"
        "FROM public.orders o\n"
        "WHERE o.created_at >= now() - interval '30 days'\n"
        "GROUP BY 1\n"
        "ORDER BY 1",
        [_T_ORDERS],
    ),
    (
        "SELECT c.id, c.name, count(o.id) AS orders, sum(o.total) AS revenue\n"
        "FROM public.customers c\n"
        "JOIN public.orders o ON o.customer_id = c.id\n"
        "WHERE o.created_at >= DATE '2026-10-01'\n"
        "GROUP BY c.id, c.name\n"
        "ORDER BY revenue DESC\n"
        "LIMIT 50",
        [_T_CUSTOMERS, _T_ORDERS],
    ),
    (
        "SELECT i.sku, sum(i.qty) AS units, sum(i.qty * i.unit_price) AS revenue\n"
        "FROM public.order_items i\n"
        "JOIN public.orders o ON o.id = i.order_id\n"
        "WHERE o.created_at >= DATE '2026-11-01'\n"
        "GROUP BY i.sku\n"
        "ORDER BY revenue DESC\n"
        "LIMIT 25",
        [_T_ITEMS, _T_ORDERS],
    ),
    (
        "SELECT * FROM public.customer_summary ORDER BY lifetime_value DESC LIMIT 100",
        [_V_SUMMARY, _T_CUSTOMERS, _T_ORDERS],
    ),
    (
        "SELECT avg(total) AS avg_basket,\n"
        "       percentile_cont(0.5) WITHIN GROUP (ORDER BY total) AS median_basket\n"
        "FROM public.orders\n"
        "WHERE created_at >= date_trunc('week', now())",
        [_T_ORDERS],
    ),
    (
        "SELECT count(*) FILTER (WHERE c.created_at >= DATE '2026-11-01') AS new_customers,\n"
        "       count(DISTINCT o.customer_id) AS buyers\n"
        "FROM public.customers c\n"
        "LEFT JOIN public.orders o ON o.customer_id = c.id",
        [_T_CUSTOMERS, _T_ORDERS],
    ),
]

_PGADMIN_INIT = (
    "SET DateStyle=ISO; SET client_min_messages=notice; "
    "SELECT set_config('bytea_output','hex',false) FROM pg_show_all_settings() "
    "WHERE name = 'bytea_output'; SET client_encoding='utf-8';"
)

_MIGRATION_COMMENT = "/* CHG-1187 order notes + order status. Approved-by: carol (OPS-4412) */"


class _Story:
    """Builds the week. All randomness comes from ``world.rng`` in a fixed order."""

    def __init__(self, world: _World) -> None:
        self.w = world
        self.rng = world.rng
        self.next_order_id = 100_000
        self.orders: list[tuple[int, int]] = []  # (order id, customer id)
        self.script_no = 1
        self.migrated_at: datetime | None = None
        self.card_ids = list(range(1, 48_211))

    # -- helpers -----------------------------------------------------------------------------
    def rand_time(self, d: date, h0: float, h1: float) -> datetime:
        secs = self.rng.uniform(h0 * 3600, h1 * 3600)
        return _at(d, 0) + timedelta(seconds=secs)

    def think(self, t: datetime, lo: float, hi: float) -> datetime:
        return t + timedelta(seconds=self.rng.uniform(lo, hi))

    def customer(self) -> int:
        return int(self.rng.triangular(1, 5200, 800))

    @staticmethod
    def email_local(name: str) -> str:
        first = name.replace(",", " ").split()[0].lower()
        return unicodedata.normalize("NFKD", first).encode("ascii", "ignore").decode()

    def person_name(self) -> str:
        if self.rng.random() < 0.2:
            return self.rng.choice(_ODD_NAMES)
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    # -- shop-api ----------------------------------------------------------------------------
    def app_day(self, d: date, pools: dict, incidents: list[tuple]) -> None:
        rng = self.rng
        weekend = d.weekday() >= 5
        hourly = [
            0.15, 0.1, 0.08, 0.08, 0.1, 0.15, 0.3, 0.5, 0.7, 0.85, 0.9, 1.0,
            1.0, 1.0, 0.95, 0.9, 0.9, 0.95, 1.0, 1.0, 0.9, 0.7, 0.45, 0.25,
        ]  # fmt: skip
        requests: list[tuple[datetime, int, str, str, object]] = []
        for hour, weight in enumerate(hourly):
            n = int(round(9 * weight * (0.65 if weekend else 1.0) * rng.uniform(0.8, 1.2)))
            for _ in range(n):
                t = _at(d, hour) + timedelta(seconds=rng.uniform(0, 3600))
                if t < _at(d, 0, 1) or t > _at(d, 23, 59, 30):
                    continue
                kinds = ["lookup", "order", "history", "profile", "signup", "cards", "card_upd"]
                weights = [28, 20, 24, 5, 3, 12, 2]
                if self.migrated_at is not None and t > self.migrated_at:
                    kinds.append("status")
                    weights.append(9)
                kind = rng.choices(kinds, weights)[0]
                host = rng.choice(("10.0.1.5", "10.0.1.6"))
                requests.append((t, len(requests), kind, host, None))
        for t, kind, host, payload in incidents:
            requests.append((t, len(requests), kind, host, payload))
        requests.sort(key=lambda r: (r[0], r[1]))
        for t, _, kind, host, payload in requests:
            db = "billing" if kind in ("cards", "card_upd") else "shop"
            conns = pools[(host, db)]
            conn = conns[0] if payload is not None else rng.choice(conns)
            self.app_request(conn, t, kind, host, db, payload)
        deploy = _at(d, 23, 59, 50.0)
        for conns in pools.values():
            for conn in conns:
                if conn["session"] is not None:
                    end = min(conn["expires"], deploy + _ms(rng.uniform(0, 900)))
                    conn["session"].disconnect(end)
                    conn["session"] = None

    def app_session(self, conn: dict, t: datetime, host: str, db: str) -> _Session:
        rng = self.rng
        s = conn["session"]
        if s is not None and t >= conn["expires"]:
            s.disconnect(conn["expires"])
            s = None
        if s is None:
            s = _Session(
                self.w,
                t - _ms(rng.uniform(18, 30)),
                "app_user",
                db,
                host,
                "shop-api",
                ssl=False,
                hba_line=10 if db == "shop" else 11,
            )
            s.connect()
            conn["session"] = s
            conn["expires"] = t + timedelta(hours=8, minutes=rng.uniform(-45, 45))
        return s

    def app_request(self, conn: dict, t: datetime, kind: str, host: str, db: str, payload) -> None:
        rng = self.rng
        t = max(t, conn["busy"] + _ms(rng.uniform(1, 5)))
        s = self.app_session(conn, t, host, db)
        last = max(e.time for e, _, _ in s.records)
        t = max(t, last + _ms(2))
        cid = self.customer()
        if kind == "lookup":
            t = s.select(t, _APP_LOOKUP_SQL, [_T_CUSTOMERS], 1, params=[cid])
        elif kind == "history":
            t = s.select(t, _APP_HISTORY_SQL, [_T_ORDERS, _T_ITEMS], rng.randint(0, 20),
                         params=[cid])  # fmt: skip
        elif kind == "profile":
            email = f"{self.email_local(self.person_name())}.{cid}@example.net"
            phone = f"+1 415 555 {rng.randint(0, 9999):04d}"
            t = s.dml(t, _APP_PROFILE_SQL, "UPDATE", "public.customers",
                      params=[email, phone, cid])  # fmt: skip
        elif kind == "signup":
            name = self.person_name()
            email = f"{self.email_local(name)}{rng.randint(1, 999)}@example.com"
            phone = None if rng.random() < 0.3 else f"+44 20 7946 {rng.randint(0, 999):04d}"
            ssn = f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
            t = s.dml(t, _APP_SIGNUP_SQL, "INSERT", "public.customers",
                      params=[name, email, phone, ssn])  # fmt: skip
        elif kind == "status" and self.orders:
            oid = rng.choice(self.orders[-60:])[0]
            t = s.dml(t, _APP_STATUS_SQL, "UPDATE", "public.orders",
                      params=[rng.choice(["paid", "shipped", "delivered"]), oid])  # fmt: skip
        elif kind == "cards":
            t = s.select(t, _APP_CARDS_SQL, [_T_CARDS], rng.choice([0, 1, 1, 1, 2]),
                         params=[cid], dur_ms=rng.uniform(0.3, 2.0))  # fmt: skip
        elif kind == "card_upd":
            expiry = f"{rng.randint(1, 12):02d}/{rng.randint(27, 31)}"
            t = s.dml(t, _APP_CARD_UPDATE_SQL, "UPDATE", "payments.cards",
                      params=[expiry, rng.choice(self.card_ids)])  # fmt: skip
        elif kind in ("order", "order_dup"):
            t = self.app_order(s, t, kind, payload)
        conn["busy"] = t

    def app_order(self, s: _Session, t: datetime, kind: str, payload) -> datetime:
        rng = self.rng
        if payload is None:
            oid = self.next_order_id
            self.next_order_id += rng.randint(1, 3)
            cid = self.customer()
            items = [
                (rng.choice(_SKUS), rng.randint(1, 3), f"{rng.uniform(4, 180):.2f}")
                for _ in range(rng.choice([1, 1, 2, 2, 3]))
            ]
            created = t - _ms(rng.uniform(3, 40))
        else:  # the planted retry: both attempts share one (mutable) payload
            if payload[0] is None:
                payload[0] = self.next_order_id
                self.next_order_id += 1
            oid, cid, items, created = payload
        total = f"{sum(q * float(p) for _, q, p in items):.2f}"
        order_params = [oid, cid, total, _pg_timestamptz(created)]
        if kind == "order" and payload is not None:
            self.w.facts["dup_original"] = {"time": t, "order_id": oid, "src_ip": s.host}
        t = s.select(t, _APP_LOOKUP_SQL, [_T_CUSTOMERS], 1, params=[cid])
        t += _ms(rng.uniform(0.5, 3))
        tx = s.new_tx()  # BEGIN (not audited)
        if kind == "order_dup":
            stmt_time = t + _ms(rng.uniform(0.3, 1.0))
            end = s.dml(stmt_time, _APP_ORDER_SQL, "INSERT", "public.orders",
                        params=order_params, tx=tx)  # fmt: skip
            audit = s.records[-1][0]
            err_t = audit.time + _ms(rng.uniform(0.2, 0.6))
            s.error(
                err_t,
                'duplicate key value violates unique constraint "orders_pkey"',
                "23505",
                _APP_ORDER_SQL,
                "INSERT",
                detail=f"Key (id)=({oid}) already exists.",
                tx=tx,
            )
            self.w.facts["dup"] = {
                "audit_time": audit.time,
                "error_time": err_t,
                "order_id": oid,
                "src_ip": s.host,
                "session": s,
                "statement_id": s.stmt_id,
            }
            return max(end, err_t) + _ms(rng.uniform(1, 3))  # ROLLBACK (not audited)
        t = s.dml(t + _ms(0.4), _APP_ORDER_SQL, "INSERT", "public.orders", params=order_params,
                  tx=tx)  # fmt: skip
        for sku, qty, price in items:
            t = s.dml(t, _APP_ITEM_SQL, "INSERT", "public.order_items",
                      params=[oid, sku, qty, price], tx=tx)  # fmt: skip
        self.orders.append((oid, cid))
        return t + _ms(rng.uniform(0.5, 2.5))  # COMMIT (not audited)

    # -- people ------------------------------------------------------------------------------
    def alice_block(self, d: date, start: datetime, end: datetime, big_query: bool = False):
        rng = self.rng
        main = _Session(self.w, start, "alice", "shop", "10.20.0.11",
                        "DBeaver 24.1.3 - Main <shop>")  # fmt: skip
        t = main.connect()
        t = main.select(t + _ms(rng.uniform(20, 60)), "SELECT current_schema(),session_user", [],
                        1)  # fmt: skip
        main.idle_tx(rng.randint(4, 9))  # metadata reads on pg_catalog: not audited
        self.script_no += 1
        editor_app = f"DBeaver 24.1.3 - SQLEditor <Script-{self.script_no}.sql>"
        ed = _Session(self.w, t + timedelta(seconds=rng.uniform(3, 25)), "alice", "shop",
                      "10.20.0.11", editor_app)  # fmt: skip
        t = ed.connect()
        t = ed.select(t + _ms(rng.uniform(15, 40)), "SELECT current_schema(),session_user", [], 1)
        n = rng.randint(4, 8)
        big_at = rng.randint(1, n - 1) if big_query else -1
        for i in range(n):
            t = self.think(t, 60, 1500)
            if t > end - timedelta(minutes=3):
                break
            if i == big_at:
                sql = self.big_in_list_query()
                t = ed.select(t, sql, [_T_ORDERS, _T_CUSTOMERS], 1312, dur_ms=rng.uniform(40, 90))
                self.w.facts["big_statement"] = {"time": ed.records[-1][0].time,
                                                 "length": len(sql), "user": "alice"}  # fmt: skip
                continue
            sql, tables = rng.choice(_ALICE_QUERIES)
            t = ed.select(t, sql, tables, rng.randint(1, 100), dur_ms=rng.uniform(5, 400))
            ed.idle_tx(rng.randint(0, 2))
        t = ed.disconnect(max(end, t + timedelta(seconds=30)))
        main.disconnect(t + _ms(rng.uniform(20, 80)))

    def big_in_list_query(self) -> str:
        rng = self.rng
        ids = sorted(rng.sample(range(100_000, 101_600), 1312))
        lines = []
        for k in range(0, len(ids), 12):
            lines.append("    " + ", ".join(str(i) for i in ids[k : k + 12]))
        return (
            "SELECT o.id, o.customer_id, o.total, o.created_at, c.email\n"
            "FROM public.orders o\n"
            "JOIN public.customers c ON c.id = o.customer_id\n"
            "WHERE o.id IN (\n" + ",\n".join(lines) + "\n)\n"
            "ORDER BY o.created_at"
        )

    def pgadmin_session(self, start: datetime) -> tuple[_Session, datetime]:
        rng = self.rng
        s = _Session(self.w, start, "dave", "shop", "10.20.0.24", "pgAdmin 4 - DB:shop")
        t = s.connect() + _ms(rng.uniform(5, 20))
        tx = s.new_tx()  # the four statements share one implicit transaction block
        t = s.utility(t, _PGADMIN_INIT, "MISC", "SET", writes=False, tx=tx, dur_ms=0.2)
        t = s.utility(t, _PGADMIN_INIT, "MISC", "SET", writes=False, tx=tx, dur_ms=0.2)
        t = s.select(t, _PGADMIN_INIT, [], 1, tx=tx, dur_ms=0.6)
        t = s.utility(t, _PGADMIN_INIT, "MISC", "SET", writes=False, tx=tx, dur_ms=0.2)
        s.idle_tx(rng.randint(6, 14))  # pgAdmin browser tree: catalog queries, not audited
        return s, t

    def dave_block(self, start: datetime, n: int, compound: bool = False) -> None:
        rng = self.rng
        s, t = self.pgadmin_session(start)
        for i in range(n):
            t = self.think(t, 30, 400)
            cid = self.customer()
            pick = rng.randint(0, 3)
            if compound and i == n - 1:
                sql = (
                    f"SELECT id, name, email, phone FROM public.customers WHERE id = {cid};\n"
                    f"SELECT id, total, created_at FROM public.orders WHERE customer_id = {cid} "
                    "ORDER BY created_at DESC LIMIT 10;"
                )
                tx = s.new_tx()  # implicit transaction block of the multi-statement string
                first = len(s.records)
                t = s.select(t, sql, [_T_CUSTOMERS], 1, tx=tx, dur_ms=0.8)
                t = s.select(t, sql, [_T_ORDERS], 4, tx=tx, dur_ms=1.5)
                self.w.facts["compound"] = {
                    "time": s.records[first][0].time,
                    "user": "dave",
                    "statement_ids": [s.stmt_id - 1, s.stmt_id],
                    "statement": sql,
                }
            elif pick == 0:
                name = rng.choice(_LAST).lower()
                sql = (
                    "SELECT id, name, email, phone FROM public.customers "
                    f"WHERE email ILIKE '%{name}%';"
                )
                t = s.select(t, sql, [_T_CUSTOMERS], rng.randint(0, 12))
            elif pick == 1:
                phone = f"+1 415 555 {rng.randint(0, 9999):04d}"
                sql = (
                    "SELECT id, name, email, phone, created_at\n"
                    "  FROM public.customers\n"
                    f" WHERE phone = '{phone}';"
                )
                t = s.select(t, sql, [_T_CUSTOMERS], rng.randint(0, 1))
            elif pick == 2:
                sql = (
                    "SELECT o.id, o.total, o.created_at\n"
                    "  FROM public.orders o\n"
                    f" WHERE o.customer_id = {cid}\n"
                    " ORDER BY o.created_at DESC;"
                )
                t = s.select(t, sql, [_T_ORDERS], rng.randint(0, 9))
            else:
                sql = (
                    "SELECT c.name, c.email, c.phone, o.id AS order_id, o.total\n"
                    "  FROM public.customers c\n"
                    "  JOIN public.orders o ON o.customer_id = c.id\n"
                    f" WHERE o.id = {rng.randint(100_000, self.next_order_id)};"
                )
                t = s.select(t, sql, [_T_CUSTOMERS, _T_ORDERS], 1)
            s.idle_tx(rng.randint(0, 3))
        s.disconnect(self.think(t, 20, 300))

    def psql(self, user: str, db: str, start: datetime, host: str = "", **kw) -> tuple:
        hosts = {"bob": "10.20.0.17", "carol": "10.20.0.5", "dave": "10.20.0.24"}
        s = _Session(self.w, start, user, db, host or hosts[user], "psql", **kw)
        return s, s.connect()

    def bob_reads(self, d: date, start: datetime, fix: bool) -> None:
        rng = self.rng
        s, t = self.psql("bob", "shop", start)
        for _ in range(rng.randint(2, 4)):
            t = self.think(t, 20, 240)
            oid = rng.randint(100_000, self.next_order_id)
            t = s.select(
                t,
                f"SELECT id, customer_id, total, created_at FROM public.orders WHERE id = {oid};",
                [_T_ORDERS],
                1,
            )
            s.idle_tx(rng.randint(0, 1))
        if fix:
            t = self.think(t, 30, 120)
            oid = rng.randint(100_000, self.next_order_id)
            price = f"{rng.uniform(10, 150):.2f}"
            t = s.dml(t, f"UPDATE public.orders SET total = {price} WHERE id = {oid};", "UPDATE",
                      "public.orders")  # fmt: skip
        s.disconnect(self.think(t, 10, 200))

    # -- the week ----------------------------------------------------------------------------
    def build(self) -> None:
        rng = self.rng
        pools = {
            (h, db): [{"session": None, "expires": None, "busy": _at(WEEK[0], 0)}
                      for _ in range(2 if db == "shop" else 1)]
            for h in ("10.0.1.5", "10.0.1.6") for db in ("shop", "billing")
        }  # fmt: skip
        for d in WEEK:
            incidents: list[tuple] = []
            weekday = d.weekday() < 5
            if d == date(2026, 11, 3):
                t0 = _at(d, 14, 22, 10.512)
                payload = [None, 4821, [("SKU-02291", 1, "119.00"), ("SKU-01042", 2, "5.45")],
                           t0 - _ms(31)]  # fmt: skip
                incidents.append((t0, "order", "10.0.1.5", payload))
                incidents.append((_at(d, 14, 22, 13.047), "order_dup", "10.0.1.6", payload))
            # people (weekdays), planted incidents
            if weekday:
                self.alice_block(d, self.rand_time(d, 9.0, 9.4), self.rand_time(d, 11.8, 12.3),
                                 big_query=False)  # fmt: skip
                self.alice_block(d, self.rand_time(d, 13.3, 13.8), self.rand_time(d, 17.4, 17.9),
                                 big_query=d == date(2026, 11, 3))  # fmt: skip
                self.dave_block(self.rand_time(d, 10.2, 10.6), rng.randint(2, 4))
                self.dave_block(self.rand_time(d, 15.0, 15.4), rng.randint(1, 3),
                                compound=d == date(2026, 11, 5))  # fmt: skip
            getattr(self, f"day_{d.day:02d}")(d)
            self.app_day(d, pools, incidents)
        main = self.w.rng
        self.w.rng = random.Random(SIDE_SEED)  # the side stream: see _Session.extra
        try:
            self.gateway_week()
            self.shared_account_bypass()
        finally:
            self.w.rng = main

    # -- the Bytebase gateway and the bypass (side random stream) ----------------------------
    def gateway_week(self) -> None:
        """db1's side of every query the people run through Bytebase (samplegen_bytebase)."""
        from auditkit import samplegen_bytebase as bb

        rng = self.w.rng
        done = self.w.facts.setdefault("gateway", {})
        for item in bb.plan():
            if item["kind"] != "query":
                continue
            s = _Session(self.w, item["time"] + _ms(rng.uniform(2.5, 9.0)), bb.ROLE,
                         item["database"], bb.HOST, bb.APP, extra=True)  # fmt: skip
            t = s.connect()
            dur = rng.uniform(1.5, 90.0)
            t = s.select(t + _ms(rng.uniform(0.3, 1.5)), item["engine_statement"],
                         item["tables"], item["rows"], dur_ms=dur)  # fmt: skip
            done[item["id"]] = {"audit_time": s.records[-1][0].time, "done": t, "engine_ms": dur}
            s.disconnect(t + _ms(rng.uniform(0.4, 3.0)))

    def shared_account_bypass(self) -> None:
        """11-06 night: app_user (shop-api's account) with psql from dave's home address."""
        from auditkit import samplegen_bytebase as bb

        s = _Session(self.w, _at(date(2026, 11, 6), 2, 44, 12.418), "app_user", "billing",
                     bb.NIGHT_IP, "psql", extra=True)  # fmt: skip
        t = s.connect()
        s.idle_tx(2)  # \dt payments.*, \d payments.cards: catalog, not audited
        sql = "SELECT card_number, cvv FROM payments.cards;"
        rng = self.w.rng  # not self.think: that draws from the main stream
        t = s.select(t + timedelta(seconds=rng.uniform(40, 70)), sql, [_T_CARDS], 48_210,
                     dur_ms=2311.6)  # fmt: skip
        self.w.facts["bypass"] = {"session": s, "connect_time": s.records[2][0].time,
                                  "statement": sql, "statement_time": s.records[-1][0].time,
                                  "rows": 48_210}  # fmt: skip
        s.disconnect(t + timedelta(seconds=rng.uniform(30, 60)))

    def day_02(self, d: date) -> None:
        rng = self.rng
        self.bob_reads(d, self.rand_time(d, 11.0, 11.3), fix=True)
        s, t = self.psql("carol", "shop", _at(d, 16, 4, 41.2))
        t = self.think(t, 20, 60)
        t = s.utility(
            t,
            "CREATE ROLE support_3 LOGIN PASSWORD 'Welcome-Nov-2026' "
            "VALID UNTIL '2027-01-31' IN ROLE support;",
            "ROLE",
            "CREATE ROLE",
        )  # logged as "CREATE ROLE support_3 LOGIN PASSWORD <REDACTED>"
        self.w.facts["create_role"] = {"time": s.records[-1][0].time, "user": "carol"}
        t = self.think(t, 15, 50)
        t = s.utility(t, "ALTER ROLE support_3 CONNECTION LIMIT 3;", "ROLE", "ALTER ROLE")
        t = self.think(t, 20, 90)
        t = s.utility(
            t,
            "GRANT SELECT (id, name, email, phone) ON public.customers TO support;",
            "ROLE",
            "GRANT",
            [("GRANT", "TABLE", None)],
        )
        s.idle_tx(rng.randint(1, 3))  # \du, \dp
        s.disconnect(self.think(t, 30, 200))

    def day_03(self, d: date) -> None:
        rng = self.rng
        s, t = self.psql("carol", "shop", self.rand_time(d, 9.5, 9.8))
        t = s.utility(self.think(t, 10, 40), "ALTER ROLE dave SET statement_timeout = '60s';",
                      "ROLE", "ALTER ROLE")  # fmt: skip
        s.disconnect(self.think(t, 20, 120))
        # bob's migration: psql -X -1 -v ON_ERROR_STOP=1 -f V42__order_notes.sql
        s, t = self.psql("bob", "shop", _at(d, 10, 31, 7.4))
        t += _ms(rng.uniform(2, 5))
        tx = s.new_tx()  # BEGIN sent by psql -1
        stmts = [
            (
                _MIGRATION_COMMENT + "\nCREATE TABLE public.order_notes (\n"
                "    order_id   bigint      NOT NULL,\n"
                "    note       text        NOT NULL,\n"
                "    created_by name        NOT NULL DEFAULT current_user,\n"
                "    created_at timestamptz NOT NULL DEFAULT now()\n"
                ");",
                "DDL", "CREATE TABLE", [("CREATE TABLE", "TABLE", "public.order_notes")],
            ),
            (
                "ALTER TABLE public.orders\n    ADD COLUMN status text NOT NULL DEFAULT 'new';",
                "DDL", "ALTER TABLE", [("ALTER TABLE", "TABLE", "public.orders")],
            ),
            (
                "CREATE INDEX order_notes_order_id_idx\n    ON public.order_notes (order_id);",
                "DDL", "CREATE INDEX",
                [("CREATE INDEX", "INDEX", "public.order_notes_order_id_idx")],
            ),
            (
                "GRANT SELECT, INSERT ON public.order_notes TO app_user;",
                "ROLE", "GRANT", [("GRANT", "TABLE", None)],
            ),
        ]  # fmt: skip
        first = None
        for sql, klass, tag, objects in stmts:
            t = s.utility(t + _ms(rng.uniform(0.3, 1.5)), sql, klass, tag, objects, tx=tx,
                          dur_ms=rng.uniform(2, 40))  # fmt: skip
            first = first or s.records[-1][0].time
        self.migrated_at = t + _ms(rng.uniform(1, 4))  # COMMIT
        self.w.facts["migration"] = {"time": first, "user": "bob", "comment": _MIGRATION_COMMENT}
        s.disconnect(t + _ms(rng.uniform(5, 20)))
        self.bob_reads(d, self.rand_time(d, 15.5, 16.0), fix=False)

    def day_04(self, d: date) -> None:
        rng = self.rng
        s, t = self.psql("bob", "shop", _at(d, 13, 12, 48.3))
        s.idle_tx(1)
        t = self.think(t, 25, 70)
        sql = "SET pgaudit.log = 'none';"
        t = s.error(t, 'permission denied to set parameter "pgaudit.log"', "42501", sql, "SET")
        self.w.facts["tamper"] = {"time": s.records[-1][0].time, "user": "bob", "statement": sql,
                                  "src_ip": s.host}  # fmt: skip
        t = self.think(t, 35, 60)
        oid = rng.choice(self.orders)[0]
        note = (
            "INSERT INTO public.order_notes (order_id, note)\n"
            f'VALUES ({oid}, \'Refund approved, customer wrote: "box arrived crushed".\n'
            "Ticket ZD-88213');"
        )
        t = s.dml(t, note, "INSERT", "public.order_notes")
        self.w.facts["tricky_literal"] = {"time": s.records[-1][0].time, "statement": note}
        t = self.think(t, 40, 120)
        t = s.dml(t, f"UPDATE public.orders SET total = 0.00 WHERE id = {oid};", "UPDATE",
                  "public.orders")  # fmt: skip
        s.disconnect(self.think(t, 15, 90))
        s, t = self.psql("carol", "billing", _at(d, 15, 36, 2.9))
        t = self.think(t, 30, 80)
        grant = (
            "/* OPS-4420: support needs card details for payment-failure tickets */\n"
            "GRANT SELECT (id, customer_id, card_number, expiry, cardholder)\n"
            "   ON payments.cards TO dave;"
        )
        t = s.utility(t, grant, "ROLE", "GRANT", [("GRANT", "TABLE", None)])
        self.w.facts["grant_cards"] = {"time": s.records[-1][0].time, "user": "carol",
                                       "statement": grant}  # fmt: skip
        s.idle_tx(rng.randint(1, 2))
        s.disconnect(self.think(t, 20, 90))

    def day_05(self, d: date) -> None:
        rng = self.rng
        # brute force on carol from 203.0.113.50, then a successful login
        t = _at(d, 3, 41, 2.318)
        fails = []
        for _ in range(6):
            s = _Session(self.w, t, "carol", "shop", "203.0.113.50", "")
            fails.append(s.fail_password())
            t += timedelta(seconds=rng.uniform(14, 24))
        s = _Session(self.w, t, "carol", "shop", "203.0.113.50", "")
        ok = s.connect()
        s.disconnect(ok + _ms(rng.uniform(30, 90)))
        self.w.facts["bruteforce"] = {"fail_times": fails, "success_time": ok, "session": s}
        s, t = self.psql("carol", "shop", _at(d, 3, 45, 40.77), host="203.0.113.50")
        t = s.select(self.think(t, 8, 20), "SELECT current_user, inet_server_addr(), version();",
                     [], 1)  # fmt: skip
        s.idle_tx(3)  # \du, \l, \dt: catalog only, not audited (log_catalog = off)
        t = self.think(t, 60, 100)
        t = s.select(t, "SELECT id, name, email, phone, ssn FROM public.customers ORDER BY id "
                        "LIMIT 50;", [_T_CUSTOMERS], 50)  # fmt: skip
        self.w.facts["attacker_read"] = {"time": s.records[-1][0].time, "session": s}
        s.disconnect(self.think(t, 40, 90))
        # carol's own day, unaware
        s, t = self.psql("carol", "shop", self.rand_time(d, 11.0, 11.5))
        sql = "ALTER ROLE support_3 VALID UNTIL '2027-03-31';"
        t = s.utility(self.think(t, 10, 30), sql, "ROLE", "ALTER ROLE")
        s.idle_tx(rng.randint(1, 2))
        s.disconnect(self.think(t, 30, 100))
        self.bob_reads(d, self.rand_time(d, 14.0, 14.5), fix=False)

    def day_06(self, d: date) -> None:
        rng = self.rng
        s, t = self.psql("dave", "billing", _at(d, 2, 13, 7.221), host="198.51.100.77")
        t = s.select(self.think(t, 25, 40), "SELECT count(*) FROM payments.cards;", [_T_CARDS], 1,
                     dur_ms=11.3)  # fmt: skip
        s.idle_tx(2)  # \d payments.cards, \dp payments.cards
        t = self.think(t, 30, 45)
        copy = (
            "COPY (SELECT c.card_number, c.expiry, c.cardholder FROM payments.cards c) "
            "TO STDOUT WITH CSV;"
        )
        tx = s.new_tx()
        stmt = s.next_stmt()
        end = t + _ms(1873.4)
        s._audit(end, tx, "COPY", stmt, [(1, "READ", "SELECT", *_T_CARDS, 48_210)], copy, None)
        s._audit(end + _us(140), tx, "COPY", stmt, [(2, "READ", "COPY", None, None, 0)], copy,
                 None)  # fmt: skip
        copy_time = end
        t = self.think(end, 25, 40)
        denied = "SELECT card_number, cvv FROM payments.cards;"
        t = s.error(t, "permission denied for table cards", "42501", denied, "SELECT")
        denied_time = s.records[-1][0].time
        s.disconnect(self.think(t, 20, 40))
        self.w.facts["night"] = {"session": s, "copy_time": copy_time, "copy": copy,
                                 "denied_time": denied_time, "denied": denied}  # fmt: skip
        self.bob_reads(d, self.rand_time(d, 10.5, 11.0), fix=rng.random() < 0.5)

    def day_07(self, d: date) -> None:
        rng = self.rng
        s, t = self.psql("carol", "billing", _at(d, 9, 12, 15.08), host="[local]", hba_line=7,
                         method="peer")  # fmt: skip
        s.idle_tx(2)
        t = self.think(t, 40, 90)
        t = s.utility(
            t,
            "REVOKE SELECT (id, customer_id, card_number, expiry, cardholder)\n"
            "    ON payments.cards FROM dave;",
            "ROLE",
            "REVOKE",
            [("REVOKE", "TABLE", None)],
        )
        revoke_time = s.records[-1][0].time
        t = self.think(t, 20, 40)
        t = s.utility(t, "ALTER ROLE dave NOLOGIN;", "ROLE", "ALTER ROLE")
        self.w.facts["response"] = {"revoke_time": revoke_time,
                                    "nologin_time": s.records[-1][0].time}  # fmt: skip
        s.idle_tx(rng.randint(1, 3))
        s.disconnect(self.think(t, 60, 180))

    def day_08(self, d: date) -> None:
        return None


def _finalize(world: _World) -> list[LogEntry]:
    rng = world.rng
    every = sorted(world.sessions, key=lambda s: s.start)
    sessions = [s for s in every if not s.extra]
    extras = [s for s in every if s.extra]
    # pids: forks of autovacuum workers etc. keep the counter moving between our sessions
    pid = 214_377
    prev = _at(WEEK[0], 0)
    for s in sessions:
        gap = (s.start - prev).total_seconds()
        pid += 1 + int(gap / 20) + rng.randint(0, 3)
        prev = s.start
        s.pid = pid
    # backend slots (lowest free ProcState slot; 1-2 are autovacuum/logical replication launchers)
    events = []
    for s in sessions:
        assert s.end is not None, "every session must end inside the week"
        events.append((s.start, 1, id(s), s))
        events.append((s.end, 0, id(s), s))
    events.sort(key=lambda ev: (ev[0], ev[1]))
    free: list[int] = []
    top = 2
    for _, kind, _, s in events:
        if kind == 1:
            if free:
                free.sort()
                s.slot = free.pop(0)
            else:
                top += 1
                s.slot = top
        else:
            free.append(s.slot)
    _place_extras(sessions, extras)
    next_lxid = {slot: 90_000 // slot + rng.randint(0, 999) for slot in range(3, top + 1)}
    for s in sessions:
        for tx in s.txs:
            tx.lxid = next_lxid[s.slot]
            next_lxid[s.slot] += 1
    for s in extras:
        next_lxid.setdefault(s.slot, 90_000 // s.slot)
        for tx in s.txs:
            tx.lxid = next_lxid[s.slot]
            next_lxid[s.slot] += 1
    sessions = sorted(every, key=lambda s: s.start)
    # xids in the order the transactions first wrote
    all_txs = [tx for s in sessions for tx in s.txs]
    writers = sorted(
        (tx.write_time, i, tx) for i, tx in enumerate(all_txs) if tx.write_time is not None
    )
    xid = 2_381_904
    for _, _, tx in writers:
        xid += 1 + (rng.randint(1, 3) if rng.random() < 0.1 else 0)
        tx.xid = xid
    entries: list[LogEntry] = []
    for s in sessions:
        sid = session_id_for(s.start, s.pid)
        recs = sorted(s.records, key=lambda r: r[0].time)
        for n, (e, tx, proc) in enumerate(recs, 1):
            e.pid = s.pid
            e.session_id = sid
            e.session_line_num = n
            if proc:
                e.vxid = f"{s.slot}/{tx.lxid if tx is not None else 0}"
            if tx is not None and tx.xid and tx.write_time is not None and tx.write_time <= e.time:
                e.txid = tx.xid
            entries.append(e)
    entries += _checkpoints(world, writers)
    entries.sort(key=lambda e: (e.time, e.pid, e.session_line_num))
    return entries


def _place_extras(sessions: list[_Session], extras: list[_Session]) -> None:
    """pid and backend slot of the side-stream sessions, after the main ones got theirs: the pid
    just after the previous session's (free among those running), the lowest slot free."""
    side = random.Random(SIDE_SEED + 1)
    placed: list[_Session] = []
    used = {m.pid for m in sessions}
    for s in extras:
        before = [m.pid for m in (*sessions, *placed) if m.start <= s.start]
        pid = max(before, default=214_377) + 1 + side.randint(0, 2)
        while pid in used:  # never two sessions with one pid in the week
            pid += 1
        used.add(pid)
        s.pid = pid
        running = [m for m in (*sessions, *placed) if m.start < s.end and s.start < m.end]
        busy = {m.slot for m in running if m.slot}
        s.slot = next(n for n in range(3, 1000) if n not in busy)
        placed.append(s)


def _lsn(v: int) -> str:
    return f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


def _checkpoints(world: _World, writers: list) -> list[LogEntry]:
    rng = world.rng
    start = SERVER["postmaster_start"] + _ms(41.7)
    ckpt = _Aux(SERVER["checkpointer_pid"], start, "checkpointer", 252)
    write_times = [w[0] for w in writers]
    t = datetime(2026, 11, 1, 23, 13, 4, 0, UTC) + _ms(rng.uniform(0, 999))
    redo = 0x3_1A2B3C48
    estimate = 410 * 1024
    end = _at(WEEK[-1], 23, 59, 59.999)
    k = 0
    prev = t
    while True:
        t = prev + timedelta(seconds=3600 + rng.uniform(0.0, 0.999))
        if t > end:
            break
        nwrites = sum(1 for w in write_times if prev < w <= t)
        prev = t
        if nwrites == 0:
            continue  # "checkpoint skipped because system is idle" is DEBUG1
        k += 1
        ckpt.log(t, "checkpoint starting: time")
        bufs = 6 + int(nwrites * rng.uniform(0.9, 1.6)) + rng.randint(0, 9)
        write_ms = int(bufs * rng.uniform(99.0, 103.0)) + rng.randint(0, 40)
        files = min(bufs, rng.randint(4, 14))
        longest = rng.randint(1, 9)
        avg = max(1, longest // 2 - rng.randint(0, 1))
        sync_ms = files * avg + rng.randint(0, 3)
        total_ms = write_ms + sync_ms + rng.randint(3, 30)
        distance = bufs * 8192 * 6 // 10 + nwrites * rng.randint(300, 900) + rng.randint(0, 4096)
        distance -= distance % 8  # WAL record pointers are MAXALIGNed
        recycled = ((redo + distance) >> 24) - (redo >> 24)
        redo += distance
        estimate = distance if distance > estimate else int(0.9 * estimate + 0.1 * distance)
        lsn = redo + 0x28 + 8 * rng.randint(0, 200)
        done = t + _ms(total_ms) + _us(rng.randint(100, 900))
        ckpt.log(
            done,
            f"checkpoint complete: wrote {bufs} buffers ({bufs * 100 / NBUFFERS:.1f}%); "
            f"0 WAL file(s) added, 0 removed, {recycled} recycled; "
            f"write={write_ms // 1000}.{write_ms % 1000:03d} s, "
            f"sync={sync_ms // 1000}.{sync_ms % 1000:03d} s, "
            f"total={total_ms // 1000}.{total_ms % 1000:03d} s; "
            f"sync files={files}, longest=0.{longest:03d} s, average=0.{avg:03d} s; "
            f"distance={distance // 1024} kB, estimate={estimate // 1024} kB; "
            f"lsn={_lsn(lsn)}, redo lsn={_lsn(redo)}",
        )
    world.facts["checkpoints"] = k
    return ckpt.entries


def _build() -> tuple[list[LogEntry], _World]:
    world = _World(SEED)
    _Story(world).build()
    return _finalize(world), world


def scenario() -> list[LogEntry]:
    """The whole week as one PostgreSQL server would log it with a single log destination.

    Deterministic (``random.Random(20261102)``); ordered as written to the log.
    """
    return _build()[0]


def _person_objects(world: _World) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, set[str]]] = {}
    for s in world.sessions:
        slot = out.setdefault(s.person, {"read": set(), "write": set(), "ddl": set()})
        for klass, _otype, oname in s.audits:
            if not oname:
                continue
            name = f"{s.database}:{oname}"
            if klass == "READ":
                slot["read"].add(name)
            elif klass == "WRITE":
                slot["write"].add(name)
            elif klass == "DDL":
                slot["ddl"].add(name)
    return {p: {k: sorted(v) for k, v in kinds.items()} for p, kinds in sorted(out.items())}


def expected_story() -> dict:
    """Ground truth of :func:`scenario` for tests and notebooks (times are aware UTC datetimes).

    Object names are ``database:schema.object``.
    """
    entries, world = _build()
    f = world.facts
    night = f["night"]["session"]
    brute = f["bruteforce"]
    dup = f["dup"]
    audit = [e for e in entries if e.message.startswith("AUDIT: ")]
    sessions = [s for s in world.sessions if any(e.message.startswith("connection authorized")
                                                   for e, _, _ in s.records)]  # fmt: skip
    return {
        "server": {k: v for k, v in SERVER.items() if k != "settings"}
        | {"settings": dict(SERVER["settings"])},
        "window": (_at(WEEK[0], 0), _at(WEEK[-1], 23, 59, 59.999999)),
        "databases": ["shop", "billing"],
        "people": {k: dict(v) for k, v in PEOPLE.items()},
        "failed_logins": {
            "user": "carol",
            "database": "shop",
            "src_ip": "203.0.113.50",
            "count": len(brute["fail_times"]),
            "times": list(brute["fail_times"]),
            "first": brute["fail_times"][0],
            "last": brute["fail_times"][-1],
            "sqlstate": "28P01",
            "hba_line": HBA_ALL_LINE,
            "success_time": brute["success_time"],
            "success_session_id": session_id_for(brute["session"].start, brute["session"].pid),
            "followup_read_time": f["attacker_read"]["time"],
            "followup_read_object": "shop:public.customers",
        },
        "night_reader": {
            "user": "dave",
            "database": "billing",
            "src_ip": "198.51.100.77",
            "src_port": night.port,
            "client_app": "psql",
            "connect_time": night.records[0][0].time,
            "disconnect_time": night.end,
            "session_id": session_id_for(night.start, night.pid),
            "pid": night.pid,
            "copy_time": f["night"]["copy_time"],
            "copy_statement": f["night"]["copy"],
            "object": "payments.cards",
            "rows": 48_210,
            "denied_time": f["night"]["denied_time"],
            "denied_statement": f["night"]["denied"],
            "denied_sqlstate": "42501",
            "denied_audited": False,
            "usual_src_ip": "10.20.0.24",
        },
        "failed_after_audit": {
            "user": "app_user",
            "database": "shop",
            "src_ip": dup["src_ip"],
            "audit_time": dup["audit_time"],
            "error_time": dup["error_time"],
            "statement_id": dup["statement_id"],
            "session_id": session_id_for(dup["session"].start, dup["session"].pid),
            "object": "public.orders",
            "order_id": dup["order_id"],
            "sqlstate": "23505",
            "constraint": "orders_pkey",
            "original_insert_time": f["dup_original"]["time"],
        },
        "audit_tampering": {
            "user": "bob",
            "time": f["tamper"]["time"],
            "src_ip": f["tamper"]["src_ip"],
            "statement": f["tamper"]["statement"],
            "outcome": "failure",
            "sqlstate": "42501",
            "audit_record": False,
            "note": "pgaudit.log is PGC_SUSET: bob's SET is rejected (ERROR + STATEMENT, no AUDIT "
            "record); a successful SET pgaudit.log = 'none' would not be audited either "
            "because pgaudit logs SET after it ran.",
        },
        "card_grant": {
            "user": "carol",
            "time": f["grant_cards"]["time"],
            "statement": f["grant_cards"]["statement"],
            "revoked_time": f["response"]["revoke_time"],
            "dave_nologin_time": f["response"]["nologin_time"],
        },
        "migration": dict(f["migration"]),
        "create_role": dict(f["create_role"]) | {"redacted": True},
        "compound_statement": dict(f["compound"]),
        "big_statement": dict(f["big_statement"]),
        "tricky_literal": dict(f["tricky_literal"]),
        "objects": _person_objects(world),
        "role_statements": [
            {"time": e.time, "user": e.user, "database": e.database, "command": e.command_tag}
            for e in entries
            if e.message.startswith("AUDIT: ") and e.message.split(",")[3] == "ROLE"
        ],
        "demo_files": {name: len(items) for name, items in _demo_files().items()},
        "counts": {
            "entries": len(entries),
            "audit_records": len(audit),
            "sessions": len(sessions),
            "failed_connections": len(brute["fail_times"]),
            "errors": sum(1 for e in entries if e.severity == "ERROR"),
            "checkpoints": f["checkpoints"],
            "by_day": {d.isoformat(): sum(1 for e in entries if e.time.date() == d) for d in WEEK},
        },
    }


# --------------------------------------------------------------------------------------------
# Writing files
# --------------------------------------------------------------------------------------------


def _gzip_bytes(data: bytes, name: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        data = _gzip_bytes(data, path.name[: -len(".gz")])
    path.write_bytes(data)


def write_scenario(path: str | Path, container: str, *, prefix: str = DEFAULT_PREFIX) -> Path:
    """Write the whole week in one container to ``path`` (``.gz`` suffix -> gzip, mtime 0)."""
    path = Path(path)
    entries = scenario()
    kwargs = {"prefix": prefix} if container == "stderr" else {}
    _write(path, render(entries, container, **kwargs))
    return path


# The operator switched log_destination twice with a reload right after midnight. Messages are
# written by the postmaster (the first to the old destination, the second to the new one); the
# csv/json line counters of processes start at 1 when a destination is first used.
_DEST_SWITCHES = (
    (datetime(2026, 11, 5, 0, 0, 41, 377120, UTC), "stderr", "csvlog"),
    (datetime(2026, 11, 7, 0, 0, 37, 901443, UTC), "csvlog", "jsonlog"),
)
_DEMO_LAYOUT = {
    date(2026, 11, 2): "stderr",
    date(2026, 11, 3): "stderr",
    date(2026, 11, 4): "stderr",
    date(2026, 11, 5): "csvlog",
    date(2026, 11, 6): "csvlog",
    date(2026, 11, 7): "jsonlog",
    date(2026, 11, 8): "jsonlog",
}
_GZIPPED_DAY = date(2026, 11, 4)
_FILE_RE = re.compile(r"^postgresql-\d{4}-\d{2}-\d{2}\.(log|log\.gz|csv|json)$")


def _demo_files(reload_race: bool = False) -> dict[str, list[tuple[str, LogEntry]]]:
    """File name -> [(container the entry is formatted in, entry)] for the demo folder.

    The postmaster writes ``parameter "log_destination" changed`` already in the *new* format
    and only then signals the logging collector. If the collector reads that line before it
    handles its own SIGHUP it has no csv/json file open yet and writes the line into the
    stderr file (``write_syslogger_file`` fallback): ``reload_race=True`` reproduces that
    (a csvlog line inside a .log file); the default is the other ordering.
    """
    entries, _ = _build()
    pm = SERVER["postmaster_pid"]
    pm_start = SERVER["postmaster_start"]
    # (time, file the message lands in, format it is written in, entry)
    routed: list[tuple[datetime, str, str, LogEntry]] = []
    pm_line = {"stderr": 6, "csvlog": 0, "jsonlog": 0}
    for t, old, new in _DEST_SWITCHES:
        for fmt, into, msg, dt in (
            (old, old, "received SIGHUP, reloading configuration files", _us(0)),
            (
                new,
                "stderr" if reload_race else new,
                f'parameter "log_destination" changed to "{new}"',
                _us(612),
            ),
        ):
            pm_line[fmt] += 1
            routed.append(
                (t + dt, into, fmt, LogEntry(
                    time=t + dt, pid=pm, session_id=session_id_for(pm_start, pm),
                    session_line_num=pm_line[fmt], session_start=pm_start, message=msg,
                    backend_type="postmaster",
                ))
            )  # fmt: skip

    def destination(t: datetime) -> str:
        dest = "stderr"
        for when, _, new in _DEST_SWITCHES:
            if t >= when:
                dest = new
        return dest

    aux_counter: dict[tuple[int, str], int] = {}
    session_dest: dict[int, str] = {}
    for e in entries:
        dest = destination(e.time)
        if e.remote_host is not None and session_dest.setdefault(e.pid, dest) != dest:
            raise AssertionError(f"session of pid {e.pid} spans a log_destination change")
        if e.remote_host is None and dest != "stderr":
            # csvlog.c / jsonlog.c count their own lines per process, from 1
            key = (e.pid, dest)
            aux_counter[key] = aux_counter.get(key, 0) + 1
            e.session_line_num = aux_counter[key]
        routed.append((e.time, dest, dest, e))
    routed.sort(key=lambda r: (r[0], r[3].pid, r[3].session_line_num))
    files: dict[str, list[tuple[str, LogEntry]]] = {}
    for t, into, fmt, e in routed:
        name = f"postgresql-{t.date().isoformat()}{CONTAINERS[into]}"
        if into == "stderr" and t.date() == _GZIPPED_DAY:
            name += ".gz"
        files.setdefault(name, []).append((fmt, e))
    return {name: files[name] for name in sorted(files)}


def set_readme_section(readme: Path, marker: str, section: str) -> None:
    """Put ``section`` (starting with ``marker``) at the end of ``readme``, replacing the
    previous one and whatever followed it (the generators run in a fixed order)."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    cut = text.find("\n" + marker)
    if cut >= 0:
        text = text[:cut]
    readme.write_bytes((text.rstrip("\n") + "\n" + section).encode("utf-8"))


def write_sample_logs(outdir: str | Path, *, reload_race: bool = False) -> dict[str, int]:
    """Write the demo folder: ``outdir/postgresql/*`` (the week, split by day and container as
    the operator's server wrote it) and ``outdir/README.md``. Returns entries per file.
    ``reload_race``: see :func:`_demo_files` (puts one csvlog line into a stderr file).

    Previously generated ``postgresql-YYYY-MM-DD.*`` files in ``outdir/postgresql`` are removed
    first so that no event can appear twice.
    """
    outdir = Path(outdir)
    logdir = outdir / "postgresql"
    logdir.mkdir(parents=True, exist_ok=True)
    for old in sorted(logdir.iterdir()):
        if old.is_file() and _FILE_RE.match(old.name):
            old.unlink()
    stderr = _StderrRenderer(DEFAULT_PREFIX, None, {})  # %l continues across the days
    renderers = {"stderr": stderr, "csvlog": _CsvRenderer(None), "jsonlog": _JsonRenderer(None)}
    counts: dict[str, int] = {}
    for name, items in _demo_files(reload_race).items():
        _write(logdir / name, "".join(renderers[fmt].entry(e) for fmt, e in items))
        counts[name] = len(items)
    (outdir / "README.md").write_bytes(_readme(counts, reload_race).encode("utf-8"))
    return counts


_README_PEOPLE = [
    (
        "alice",
        "analyst, reads orders/customers/order_items and the view, Mon-Fri 09-18 UTC",
        "10.20.0.11",
        "DBeaver 24.1.3 (a `Main <shop>` and a `SQLEditor <Script-N.sql>` connection)",
    ),
    ("bob", "developer: reads and fixes orders, migration on 11-03", "10.20.0.17", "psql"),
    ("carol", "DBA: roles and grants", "10.20.0.5, `[local]` on 11-07", "psql"),
    (
        "dave",
        "support: looks up customers (email, phone) and orders",
        "10.20.0.24",
        "pgAdmin 4",
    ),
    (
        "app_user",
        "shared service account of `shop-api` (pooled connections, prepared statements with "
        "`$n` parameters, redeployed nightly at 23:59:50)",
        "10.0.1.5, 10.0.1.6",
        "shop-api",
    ),
    (
        "bytebase",
        "the Bytebase gateway's data-source role: the queries alice, dave and bob run in its SQL "
        "Editor, one connection each (see the Bytebase section)",
        "10.0.3.10",
        "bytebase",
    ),
]


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} UTC"


def _readme(counts: dict[str, int], reload_race: bool = False) -> str:
    st = expected_story()
    fl, nr, fa, tp, cg = (
        st["failed_logins"], st["night_reader"], st["failed_after_audit"],
        st["audit_tampering"], st["card_grant"],
    )  # fmt: skip
    files = "\n".join(f"| `postgresql/{n}` | {counts[n]} |" for n in sorted(counts))
    settings = "\n".join(f"    {k} = '{v}'" for k, v in SERVER["settings"].items())
    people = "\n".join("| " + " | ".join(row) + " |" for row in _README_PEOPLE)
    race_note = " This folder was written with `reload_race=True`." if reload_race else ""
    objects = "\n".join(
        f"| {p} | {', '.join(o['read']) or '-'} | {', '.join(o['write']) or '-'} "
        f"| {', '.join(o['ddl']) or '-'} |"
        for p, o in st["objects"].items()
    )
    return f"""# Sample logs: one week of a PostgreSQL 16 server with pgaudit

Generated by `python scripts/make_sample_logs.py sample_logs` (module `auditkit.samplegen`,
seed {SEED}); running it again produces identical bytes. Nothing here is real data.
The ground truth below is also available as `auditkit.samplegen.expected_story()`.

## Server

One server (`{SERVER["host"]}`, {SERVER["version"]}), databases `shop` and `billing`,
log timezone UTC, `log_line_prefix = '{DEFAULT_PREFIX}'`:

{settings}

`ALTER DATABASE billing SET pgaudit.log_rows = on` (PCI scope): records from `billing` have a
10th field (rows) and are written when the statement finished. pg_hba.conf line 7 is
`local all all peer`, lines 10-11 admit `app_user` from 10.0.1.0/24, line 12 is
`{HBA_ALL_RAW}`.

Tables: `shop`: `public.customers(id, name, email, phone, ssn, created_at)`,
`public.orders(id, customer_id, total, created_at)` (+ `status` after bob's migration),
`public.order_items(order_id, sku, qty, unit_price)`, view `public.customer_summary`
(customers + orders), `public.order_notes` (created by bob on 11-03); `billing`:
`payments.cards(id, customer_id, card_number, expiry, cardholder, cvv)`.

## Files

The operator logged to stderr until a reload at {_fmt(_DEST_SWITCHES[0][0])} switched
`log_destination` to `csvlog`, and to `jsonlog` at {_fmt(_DEST_SWITCHES[1][0])}. Each reload
leaves two postmaster lines: `received SIGHUP, reloading configuration files` in the old
destination and `parameter "log_destination" changed to ...` in the new one, hence the one-line
`postgresql-2026-11-05.log` and `postgresql-2026-11-07.csv`. (PostgreSQL can also put the
second line, already in the new format, into the stderr file when the logging collector reads
it before handling its own SIGHUP; `write_sample_logs(..., reload_race=True)` writes that
variant.) csv/json line numbers of the postmaster and checkpointer restart at 1 with each new
destination. The collector also creates empty `.log` files for the later days; they are left
out. The 11-04 file is gzipped. Every entry is in exactly one file.{race_note}

| file | entries |
|---|---|
{files}

## People

| who | role | from | client |
|---|---|---|---|
{people}

Objects touched (from the AUDIT records; `database:schema.object`):

| who | read | write | ddl |
|---|---|---|---|
{objects}

## Planted incidents

1. **Password guessing on carol** - {fl["count"]} × `FATAL:  password authentication failed for
   user "carol"` (28P01, DETAIL `Connection matched file "{HBA_FILE}" line 12: ...`) from
   {fl["src_ip"]} between {_fmt(fl["first"])} and {_fmt(fl["last"])}, then
   `connection authorized: user=carol database=shop` from the same address at
   {_fmt(fl["success_time"])} (session `{fl["success_session_id"]}`). A psql session from the
   same address follows and reads `public.customers` including `ssn` at
   {_fmt(fl["followup_read_time"])}; its catalog queries (`\\du`, `\\l`) are not audited
   (`pgaudit.log_catalog = off`).
2. **The night reader** - {_fmt(nr["connect_time"])}: dave connects to `billing` from
   {nr["src_ip"]} (never seen before; he works from {nr["usual_src_ip"]}) with psql, session
   `{nr["session_id"]}`. At {_fmt(nr["copy_time"])} `{nr["copy_statement"]}` exports
   {nr["rows"]:,} rows of `payments.cards` (records `READ,SELECT,TABLE,payments.cards,...,48210`
   and `READ,COPY,,,...,0`). At {_fmt(nr["denied_time"])} `{nr["denied_statement"]}` fails:
   `ERROR:  permission denied for table cards` (42501) + `STATEMENT:` line and **no AUDIT
   record** (pgaudit never sees statements rejected by the permission check). dave could read
   the card columns because of carol's column GRANT at {_fmt(cg["time"])}; carol revokes it
   and sets dave `NOLOGIN` from the database host (`[local]`) at {_fmt(cg["revoked_time"])} /
   {_fmt(cg["dave_nologin_time"])}.
3. **Audited, then failed** - {_fmt(fa["audit_time"])}: app_user (shop-api, {fa["src_ip"]})
   retries an order insert: AUDIT record (statement {fa["statement_id"]}, WRITE INSERT
   public.orders, with parameters) followed by `ERROR:  duplicate key value violates unique
   constraint "orders_pkey"` (23505, DETAIL `Key (id)=({fa["order_id"]}) already exists.`) at
   {_fmt(fa["error_time"])}. The first attempt succeeded at {_fmt(fa["original_insert_time"])}
   from 10.0.1.5.
4. **Audit tampering attempt** - {_fmt(tp["time"])}: bob runs `{tp["statement"]}` and gets
   `ERROR:  permission denied to set parameter "pgaudit.log"` (42501) + `STATEMENT:` line.
   There is no AUDIT/MISC_SET record: `pgaudit.log` is superuser-only, and pgaudit logs `SET`
   only *after* it ran, so even a successful `SET pgaudit.log = 'none'` never shows up. The
   `SET` records that do exist (pgAdmin's connection setup) carry class `MISC`, as pgaudit
   prints it for `misc_set`.

Also in the week: bob's migration on 11-03 (psql `-1 -f`, a `/* ... Approved-by: carol ... */`
comment, CREATE TABLE / ALTER TABLE / CREATE INDEX / GRANT in one transaction), carol's
`CREATE ROLE support_3 LOGIN PASSWORD ...` logged as `PASSWORD <REDACTED>`, a
{st["big_statement"]["length"]:,}-byte statement (alice, 11-03), a literal with a comma,
double quotes and a newline (bob, 11-04), a two-statement string from pgAdmin with
consecutive statement ids (dave, 11-05), hourly checkpoints, and `log_statement = none`
(no `statement:` lines).
"""


# --------------------------------------------------------------------------------------------
# Bulk generator (benchmarks)
# --------------------------------------------------------------------------------------------

_BULK_USERS = [
    ("app_user", "shop", "10.0.1.5", "shop-api", 10),
    ("app_user", "shop", "10.0.1.6", "shop-api", 11),
    ("app_user", "billing", "10.0.1.5", "shop-api", 11),
    ("alice", "shop", "10.20.0.11", "DBeaver 24.1.3 - SQLEditor <Script-2.sql>", 12),
    ("bob", "shop", "10.20.0.17", "psql", 12),
    ("dave", "shop", "10.20.0.24", "pgAdmin 4 - DB:shop", 12),
    ("carol", "billing", "10.20.0.5", "psql", 12),
]


def bulk_entries(n: int, seed: int = 0) -> Iterator[LogEntry]:
    """Yield ``n`` realistic entries (connections, pgaudit records, errors, disconnections).

    Sessions interleave; statement ids, line numbers, vxids and xids are consistent. Time
    starts at 2026-11-02 00:00 UTC and advances a few ms per statement.
    """
    rng = random.Random(seed)
    t = datetime(2026, 11, 2, tzinfo=UTC)
    pid = 300_000
    xid = 5_000_000
    lxid = {slot: 1000 * slot for slot in range(3, 40)}
    free_slots = list(range(3, 40))
    active: list[dict] = []
    emitted = 0
    tricky = (
        "INSERT INTO public.order_notes (order_id, note)\n"
        'VALUES ({oid}, \'Called customer, she said "leave it at the door".\n'
        "Gate code {code}, ring twice');"
    )

    def new_session(now: datetime) -> dict:
        nonlocal pid
        pid += rng.randint(1, 30)
        user, db, host, app, line = rng.choice(_BULK_USERS)
        free_slots.sort()
        slot = free_slots.pop(0)
        return {
            "user": user, "db": db, "host": host, "app": app, "hba": line, "pid": pid,
            "start": now, "sid": session_id_for(now, pid), "line": 0, "stmt": 0, "slot": slot,
            "port": rng.randint(32768, 60999), "left": rng.randint(5, 400), "state": 0,
            "rows": db in LOG_ROWS_DATABASES,
        }  # fmt: skip

    def entry(s: dict, now: datetime, message: str, **kw) -> LogEntry:
        s["line"] += 1
        state = s["state"]
        return LogEntry(
            time=now,
            pid=s["pid"],
            user=s["user"] if state else None,
            database=s["db"] if state else None,
            remote_host=s["host"],
            remote_port=s["port"],
            application_name=s["app"] if state > 1 else "",
            session_id=s["sid"],
            session_line_num=s["line"],
            session_start=s["start"],
            message=message,
            **kw,
        )

    def bulk_statement(s: dict, now: datetime, r: float, cid: int, vx: str) -> list[LogEntry]:
        nonlocal xid
        log_rows = s["rows"]
        dup = None
        if s["db"] == "billing":
            sql, params, tables, klass, cmd = _APP_CARDS_SQL, [cid], [_T_CARDS], "READ", "SELECT"
            if r < 0.1:
                sql, params, klass, cmd = (
                    _APP_CARD_UPDATE_SQL, [f"{rng.randint(1, 12):02d}/29", cid], "WRITE",
                    "UPDATE",
                )  # fmt: skip
        elif s["user"] != "app_user" and r < 0.8:  # people: ad-hoc multi-line SQL, no params
            sql, tables = _ALICE_QUERIES[int(r * 100) % len(_ALICE_QUERIES)]
            params, klass, cmd = None, "READ", "SELECT"
            if s["app"] == "psql":
                sql += ";"
        elif r < 0.35:
            sql, params, tables, klass, cmd = (
                _APP_LOOKUP_SQL, [cid], [_T_CUSTOMERS], "READ", "SELECT",
            )  # fmt: skip
        elif r < 0.6:
            sql, params, tables, klass, cmd = (
                _APP_HISTORY_SQL, [cid], [_T_ORDERS, _T_ITEMS], "READ", "SELECT",
            )  # fmt: skip
        elif r < 0.85:
            oid = 100_000 + rng.randint(0, 10_000_000)
            params = [oid, cid, f"{rng.uniform(5, 400):.2f}", _pg_timestamptz(now)]
            sql, tables, klass, cmd = _APP_ORDER_SQL, [_T_ORDERS], "WRITE", "INSERT"
            if rng.random() < 0.01:
                dup = oid
        elif r < 0.95:
            name = rng.choice(_ODD_NAMES) if rng.random() < 0.3 else rng.choice(_FIRST)
            params = [name, f"u{cid}@example.com", None, f"{rng.randint(100, 899)}-12-3456"]
            sql, tables, klass, cmd = _APP_SIGNUP_SQL, [_T_CUSTOMERS], "WRITE", "INSERT"
        else:
            sql = tricky.format(oid=100_000 + cid, code=rng.randint(1000, 9999))
            params, tables, klass, cmd = None, [_T_NOTES], "WRITE", "INSERT"
        s["stmt"] += 1
        stmt = s["stmt"]
        rows = (rng.randint(0, 40) if klass == "READ" else 1) if log_rows else None
        txid = 0
        if klass == "WRITE":
            xid += 1
        if log_rows and klass == "WRITE":
            txid = xid  # logged at executor end: the xid exists
        out = [
            entry(
                s, now, pgaudit_message("SESSION", stmt, 1, klass if k == 0 else "READ",
                                        cmd if k == 0 else "SELECT", ot, on, sql, params, rows),
                command_tag=cmd, vxid=vx, txid=txid,
            )
            for k, (ot, on) in enumerate(tables)
        ]  # fmt: skip
        if dup is not None:
            out.append(entry(
                s, now + _us(100), 'duplicate key value violates unique constraint "orders_pkey"',
                command_tag=cmd, vxid=vx, txid=xid, severity="ERROR", sqlstate="23505",
                detail=f"Key (id)=({dup}) already exists.", statement=sql,
            ))  # fmt: skip
        return out

    while emitted < n:
        while len(active) < 24:
            active.append(new_session(t))
        s = active[rng.randrange(len(active))]
        t += timedelta(microseconds=rng.randint(200, 6000))
        out: list[LogEntry] = []
        if s["state"] == 0:
            out.append(entry(s, t, f"connection received: host={s['host']} port={s['port']}",
                             command_tag="", backend_type="not initialized"))  # fmt: skip
            s["state"] = 1
        elif s["state"] == 1:  # SCRAM exchange done (a later step: entries stay time-ordered)
            lxid[s["slot"]] += 1
            vx = f"{s['slot']}/{lxid[s['slot']]}"
            out.append(entry(s, t, f'connection authenticated: identity="{s["user"]}" '
                             f"method=scram-sha-256 ({HBA_FILE}:{s['hba']})",
                             command_tag="authentication", vxid=vx))  # fmt: skip
            msg = f"connection authorized: user={s['user']} database={s['db']}"
            msg += f" application_name={s['app']}"
            if s["app"] != "shop-api":
                msg += " " + SSL_LIBPQ
            out.append(entry(s, t + _us(100), msg, command_tag="authentication", vxid=vx))
            s["state"] = 2
        elif s["left"] <= 0:
            out.append(entry(s, t, f"disconnection: session time: {_session_time(t - s['start'])} "
                             f"user={s['user']} database={s['db']} host={s['host']} "
                             f"port={s['port']}", command_tag="idle"))  # fmt: skip
            active.remove(s)
            free_slots.append(s["slot"])
        else:
            s["left"] -= 1
            lxid[s["slot"]] += 1
            vx = f"{s['slot']}/{lxid[s['slot']]}"
            r = rng.random()
            cid = rng.randint(1, 250_000)
            if s["user"] != "app_user" and rng.random() < 0.01:  # denied: no AUDIT record
                out.append(entry(
                    s, t, "permission denied for table cards", command_tag="SELECT", vxid=vx,
                    severity="ERROR", sqlstate="42501",
                    statement="SELECT card_number, cvv FROM payments.cards;",
                ))  # fmt: skip
            else:
                out.extend(bulk_statement(s, t, r, cid, vx))
        for e in out:
            yield e
            emitted += 1
            if emitted >= n:
                return


def write_bulk(
    path: str | Path,
    container: str,
    target_bytes: int,
    *,
    seed: int = 0,
    prefix: str = DEFAULT_PREFIX,
) -> int:
    """Write at least ``target_bytes`` (uncompressed) of bulk entries; returns entries written.

    ``.gz`` paths are gzip-compressed (mtime 0).
    """
    path = Path(path)
    r = _renderer(container, prefix)
    written = 0
    count = 0
    raw = path.open("wb")
    try:
        sink = (
            gzip.GzipFile(
                filename=path.name[:-3], mode="wb", fileobj=raw, mtime=0, compresslevel=6
            )  # fmt: skip
            if path.suffix == ".gz"
            else raw
        )
        try:
            chunk: list[str] = []
            for e in bulk_entries(1 << 62, seed):
                text = r.entry(e)
                chunk.append(text)
                written += len(text)
                count += 1
                if len(chunk) >= 4096:
                    sink.write("".join(chunk).encode("utf-8"))
                    chunk = []
                if written >= target_bytes:
                    break
            if chunk:
                sink.write("".join(chunk).encode("utf-8"))
        finally:
            if sink is not raw:
                sink.close()
    finally:
        raw.close()
    return count
