"""The findings contract: schema, settings merge, registry, CLI."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from auditkit import findings as F
from auditkit.errors import ConfigError
from auditkit.schema import EVENT_SCHEMA

UTC = dt.UTC


def _events() -> pl.DataFrame:
    return pl.DataFrame(
        {"time": [dt.datetime(2026, 1, 1, h, tzinfo=UTC) for h in (1, 12)],
         "actor": ["a", "b"], "event_id": ["e1", "e2"]}
    ).pipe(lambda f: f.select(
        (pl.col(c) if c in f.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in EVENT_SCHEMA.items()))


@pytest.fixture
def night_detector(monkeypatch):
    F._import_detectors()  # the real ones register on first import: not into the test's registry
    monkeypatch.setattr(F, "DETECTORS", {})

    @F.detector("night")
    def night(ctx: F.Context) -> pl.DataFrame:
        hour = ctx.config("night").get("before", 6)
        hits = ctx.events.filter(pl.col("time").dt.hour() < hour)
        return hits.select(
            "time", "actor", severity=pl.lit("high"),
            reason=pl.format("{} acted at night", "actor"),
            event_ids=pl.concat_list("event_id"),
        )

    return night


def test_find_runs_registered_detectors_and_keeps_the_schema(night_detector):
    found = F.find(_events())
    assert found.schema == pl.Schema(F.FINDING_SCHEMA)
    assert found.select("detector", "actor", "reason", "event_ids").to_dicts() == [
        {"detector": "night", "actor": "a", "reason": "a acted at night", "event_ids": ["e1"]}
    ]


def test_settings_merge_over_defaults_and_can_disable(night_detector):
    assert F.find(_events(), {"detectors": {"night": {"before": 13}}}).height == 2
    assert F.find(_events(), {"detectors": {"night": {"enabled": False}}}).height == 0
    settings = F.load_settings({"working_hours": {"start": 9}})
    assert settings["working_hours"]["start"] == 9 and settings["working_hours"]["end"] == 19


def test_unknown_detector_in_settings_is_a_config_error(night_detector):
    with pytest.raises(ConfigError, match="unknown detector"):
        F.load_settings({"detectors": {"nigth": {}}})


def test_detection_window_filters_findings(night_detector):
    later = dt.datetime(2026, 1, 1, 2, tzinfo=UTC)
    assert F.find(_events(), detect_from=later).height == 0


def test_bad_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        F.conform_findings(pl.DataFrame({"severity": ["urgent"]}))


def test_evidence_joins_events(night_detector):
    events = _events()
    ev = F.evidence(events, F.find(events))
    assert ev["event_id"].to_list() == ["e1"] and ev["finding"].to_list() == [0]


def _found(rows: list[dict]) -> pl.DataFrame:
    base = {"detector": "d", "severity": "low", "person": None, "actor": None, "src_ip": None,
            "reason": "r", "event_ids": []}
    return F.conform_findings(pl.DataFrame([base | r for r in rows]))


def test_incidents_join_findings_by_who_and_by_address():
    t = dt.datetime(2026, 11, 6, 2, tzinfo=UTC)
    found = _found([
        # dave's night: as dave, as app_user from his address, as dave@example.com there too
        {"time": t, "actor": "dave", "src_ip": "198.51.100.77", "severity": "high",
         "reason": "dave exported", "event_ids": ["e1"], "detector": "exports"},
        {"time": t + dt.timedelta(minutes=30), "actor": "app_user", "src_ip": "198.51.100.77",
         "severity": "high", "event_ids": ["e2"], "detector": "gateway_bypass"},
        {"time": t + dt.timedelta(minutes=40), "actor": "app_user", "src_ip": "10.0.1.5",
         "event_ids": ["e3"]},
        # the same account hours later: another incident
        {"time": t + dt.timedelta(hours=9), "actor": "app_user", "src_ip": "10.0.1.5",
         "severity": "medium", "reason": "later", "event_ids": ["e4"]},
        # a local connection is no shared address
        {"time": t, "actor": "carol", "src_ip": "[local]", "event_ids": ["e5"]},
    ])
    got = F.incidents(found)
    assert got.schema == pl.Schema(F.INCIDENT_SCHEMA)
    rows = got.select("severity", "who", "findings", "headline", "event_ids").rows()
    assert rows == [
        ("high", ["dave", "app_user"], 3, "dave exported", ["e1", "e2", "e3"]),
        ("medium", ["app_user"], 1, "later", ["e4"]),
        ("low", ["carol"], 1, "r", ["e5"]),
    ]
    assert got["incident"].to_list() == [1, 2, 3]
    assert F.incidents(found.head(0)).is_empty()
