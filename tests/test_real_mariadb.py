"""A real MariaDB server with server_audit: the access table equals what the workload did.

A session fixture starts a throwaway server (``tests/realmariadb.py``), plays the workload and
reads the audit log. Skips with the reason when no server is installed; under ``CI=true`` a
missing server fails instead (``.ci/install-mariadb`` installs it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
import pytest

import auditkit.sources.mariadb  # noqa: F401  (importing registers the source)
from auditkit.access import access_table
from auditkit.enrich import enrich
from auditkit.sources import Parsed, read_file
from tests import realmariadb

pytestmark = pytest.mark.slow
ROLES = ("alice", "bob", "carol")


@dataclass
class Run:
    format: str
    parsed: Parsed
    results: list[bool]

    @property
    def events(self) -> pl.DataFrame:
        return self.parsed.events


@pytest.fixture(scope="session")
def run() -> Iterator[Run]:
    mariadbd, why = realmariadb.find_server()
    if mariadbd is None:
        if realmariadb.in_ci():
            pytest.fail(f"CI=true but no MariaDB server: {why}")
        pytest.skip(why)
    server = realmariadb.Server(mariadbd)
    try:
        server.start()
        results = realmariadb.run_workload(server)
        name, parsed = read_file(server.audit_log)  # detected by content
        yield Run(name, parsed, results)
    finally:
        server.stop()


def test_the_workload_ran_as_planned(run: Run):
    assert run.results == [step.ok for step in realmariadb.WORKLOAD] + [False]


def test_the_log_is_read_whole(run: Run):
    assert run.format == "mariadb"
    assert run.parsed.quarantine.height == 0, run.parsed.quarantine.to_dicts()
    assert run.parsed.events.height == run.parsed.records > 0
    assert run.events["time"].null_count() == 0
    assert run.events["event_id"].is_unique().all()


def test_access_matches_the_workload(run: Run):
    access = access_table(enrich(run.events)).filter(pl.col("actor").is_in(ROLES))
    got = set(access.filter(pl.col("outcome") == "success")
              .select("actor", "object", "access").unique().rows())
    expected = {(step.user, obj, kind) for step in realmariadb.WORKLOAD if step.ok
                for obj, kind in step.access}
    assert got == expected
    # each table once per statement: as many rows as the workload's (statement, object) pairs
    per_statement = access.filter(pl.col("outcome") == "success").unique(
        ["event_id", "object", "access"])
    assert per_statement.height == sum(len(s.access) for s in realmariadb.WORKLOAD if s.ok)


def test_denied_statement_is_a_failed_write(run: Run):
    denied = run.events.filter(pl.col("statement") == "DELETE FROM orders WHERE id = 10")
    assert denied.select("actor", "outcome", "error", "database").rows() == [
        ("alice", "failure", "1142", "shop")]
    access = access_table(enrich(run.events)).filter(pl.col("outcome") == "failure")
    # the server opened no table: the object comes from SQL analysis of the statement
    bare = access.select(pl.col("object").str.extract(r"([^.]+)$", 1), "access", "actor").rows()
    assert bare == [("orders", "write", "alice")]


def test_logins(run: Run):
    auth = run.events.filter(pl.col("category") == "auth", pl.col("actor").is_in(ROLES))
    logins = auth.filter(pl.col("action") == "LOGIN")
    assert logins.filter(pl.col("outcome") == "failure").select("actor", "error").rows() == [
        ("alice", "1045")]
    assert logins.filter(pl.col("outcome") == "success").height == len(realmariadb.WORKLOAD)
    assert set(auth["src_ip"]) == {"127.0.0.1"}
    sessions = auth.filter(pl.col("outcome") == "success")["session_id"]
    assert sessions.str.contains(r"^[^/]+/\d+$").all()


def test_table_events_join_their_query(run: Run):
    tables = run.events.filter(pl.col("object_type") == "table", pl.col("actor").is_in(ROLES))
    queries = run.events.filter(pl.col("action").is_null(), pl.col("actor").is_in(ROLES))
    groups = set(queries["extra"].map_elements(lambda e: json.loads(e)["stmt_group"],
                                               return_dtype=pl.String))
    for extra in tables["extra"]:
        assert json.loads(extra)["stmt_group"] in groups
