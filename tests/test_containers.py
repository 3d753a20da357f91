"""The same scenario written as stderr, csvlog and jsonlog parses to the same events."""

from __future__ import annotations

import polars as pl
import pytest

from auditkit.samplegen import write_scenario
from auditkit.sources import read_file

SAME = ["time", "source", "category", "action", "outcome", "actor", "database", "src_ip",
        "client_app", "object", "object_type", "statement", "statement_id", "rows"]


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("containers")
    result = {}
    for container in ("stderr", "csvlog", "jsonlog"):
        path = write_scenario(folder / f"week.{container}", container)
        name, result[container] = read_file(path)
        assert name == "pgaudit"
    return result


def _comparable(events: pl.DataFrame) -> pl.DataFrame:
    # stderr without %e has no SQLSTATE: compare the error message itself
    return events.select(*SAME, error=pl.col("error").str.replace(r"^[0-9A-Z]{5}: ", ""))


@pytest.mark.parametrize("container", ["csvlog", "jsonlog"])
def test_same_events_as_stderr(parsed, container):
    stderr, other = parsed["stderr"], parsed[container]
    assert other.quarantine.height == 0 and stderr.quarantine.height == 0
    assert other.records == stderr.records
    left, right = _comparable(stderr.events), _comparable(other.events)
    for column in left.columns:
        assert left[column].to_list() == right[column].to_list(), column


def test_nothing_is_quarantined_and_every_record_is_an_event(parsed):
    for result in parsed.values():
        assert result.events.height == result.records


def test_grouping_by_process_changes_nothing(monkeypatch, tmp_path):
    """Mapping entries in groups of processes (to bound memory) gives the same events."""
    from auditkit.sources import postgres

    path = write_scenario(tmp_path / "week.log", "stderr")
    whole = read_file(path)[1].events
    monkeypatch.setattr(postgres, "ENTRIES_PER_GROUP", 50)
    grouped = read_file(path)[1].events
    assert grouped.equals(whole)

