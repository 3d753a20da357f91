"""Findings: the one shape every detector returns, the settings they read, and the registry.

A *detector* is a small pure function ``(ctx: Context) -> pl.DataFrame`` returning rows of
``FINDING_SCHEMA``. Detectors live in the analysis modules (``anomalies.py``, ``coverage.py``)
and register themselves with ``@detector("name")``; ``find(events)`` runs them all.

Settings come from one mapping (YAML file) with a section per detector, merged over the
defaults in ``auditkit/data/findings.yml``::

    working_hours: {start: 8, end: 19, tz: Europe/Berlin}   # shared by every detector
    detectors:
      off_hours: {enabled: true, min_events: 3}
      volume: {z_threshold: 4}

A finding's ``reason`` is one human sentence; ``event_ids`` are the events that are its evidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from auditkit.errors import ConfigError
from auditkit.schema import UTC_TIME

FINDING_SCHEMA: dict[str, pl.DataType] = {
    "detector": pl.String(),
    "severity": pl.String(),
    "time": UTC_TIME,
    "person": pl.String(),
    "actor": pl.String(),
    "reason": pl.String(),
    "event_ids": pl.List(pl.String()),
    # Not in the CLI contract's minimum, useful to sort and filter: what it is about.
    "source": pl.String(),
    "database": pl.String(),
    "object": pl.String(),
    "src_ip": pl.String(),
}

SEVERITIES = ("low", "medium", "high")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

DEFAULT_SETTINGS = Path(__file__).resolve().parent / "data" / "findings.yml"

Detector = Callable[["Context"], pl.DataFrame]
DETECTORS: dict[str, Detector] = {}


def detector(name: str) -> Callable[[Detector], Detector]:
    """Register a detector under ``name`` (its settings section and its ``detector`` value)."""

    def register(fn: Detector) -> Detector:
        DETECTORS[name] = fn
        return fn

    return register


def empty_findings() -> pl.DataFrame:
    """An empty frame with the finding schema."""
    return pl.DataFrame(schema=FINDING_SCHEMA)


def conform_findings(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Exactly the finding schema's columns, missing ones null; checks severities."""
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if frame.height == 0:  # (selecting only literals would make one row)
        return empty_findings()
    present = set(frame.columns)
    frame = frame.select(
        (pl.col(name) if name in present else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in FINDING_SCHEMA.items()
    )
    bad = frame.filter(~pl.col("severity").is_in(SEVERITIES))
    if bad.height:
        raise ValueError(f"finding severity must be one of {SEVERITIES}: {bad['severity'][0]!r}")
    return frame


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read settings ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: settings must be a mapping")
    return data


def load_settings(path: str | Path | dict[str, Any] | None = None) -> dict[str, Any]:
    """Default settings, overridden by a user YAML file (or mapping)."""
    settings = _read_yaml(DEFAULT_SETTINGS) if DEFAULT_SETTINGS.exists() else {}
    if path is None:
        return settings
    _import_detectors()  # so that every detector's name is known
    override = path if isinstance(path, dict) else _read_yaml(path)
    unknown = set(override.get("detectors", {}) or {}) - set(DETECTORS) - set(
        settings.get("detectors", {}) or {}
    )
    if unknown:
        raise ConfigError(f"settings name unknown detector(s): {', '.join(sorted(unknown))}")
    return _merge(settings, override)


@dataclass
class Context:
    """What detectors see: the enriched events, the settings and the detection window.

    ``detect_from``: findings are reported only for events at or after it; events before it are
    the baseline (``None``: the anomaly detectors learn from the first ``baseline.days`` of the
    data and compare each day or hour with the person's other days; see ``docs/findings.md``).
    """

    events: pl.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    detect_from: dt.datetime | None = None

    def config(self, name: str) -> dict[str, Any]:
        """The settings section of detector ``name`` (shared keys included under their names)."""
        section = (self.settings.get("detectors", {}) or {}).get(name, {}) or {}
        shared = {k: v for k, v in self.settings.items() if k != "detectors"}
        return _merge(shared, section)

    def enabled(self, name: str) -> bool:
        return bool(self.config(name).get("enabled", True))

    @cached_property
    def access(self) -> pl.DataFrame:
        """The access table of the events (computed once, shared by detectors)."""
        from auditkit.access import access_table
        from auditkit.classify import load_classification

        return access_table(self.events, load_classification(self.settings.get("classification")))


def find(
    events: pl.DataFrame,
    settings: str | Path | dict[str, Any] | None = None,
    *,
    detect_from: dt.datetime | None = None,
    only: list[str] | None = None,
) -> pl.DataFrame:
    """Every finding of every enabled detector, most severe first, then by time."""
    _import_detectors()
    ctx = Context(events, load_settings(settings), detect_from)
    frames = []
    for name, fn in DETECTORS.items():
        if (only and name not in only) or not ctx.enabled(name):
            continue
        found = conform_findings(fn(ctx)).with_columns(detector=pl.lit(name))
        if detect_from is not None:
            found = found.filter(pl.col("time") >= detect_from)
        frames.append(found)
    if not frames:
        return empty_findings()
    return (
        pl.concat(frames)
        .with_columns(_rank=pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int8))
        .sort(["_rank", "time"], descending=[True, False], nulls_last=True)
        .drop("_rank")
    )


def _import_detectors() -> None:
    """Detector modules register on import; missing ones are simply not there yet."""
    import importlib

    for module in ("auditkit.anomalies", "auditkit.coverage"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def evidence(events: pl.DataFrame, findings: pl.DataFrame) -> pl.DataFrame:
    """The evidence events of ``findings`` (one row per finding × event, finding index kept)."""
    pairs = findings.with_row_index("finding").select("finding", "detector", "event_ids").explode(
        "event_ids"
    ).rename({"event_ids": "event_id"})
    return pairs.join(events, on="event_id", how="inner").sort("finding", "time")


INCIDENT_SCHEMA: dict[str, pl.DataType] = {
    "incident": pl.Int64(),
    "severity": pl.String(),
    "start": UTC_TIME,
    "end": UTC_TIME,
    "who": pl.List(pl.String()),
    "addresses": pl.List(pl.String()),
    "detectors": pl.List(pl.String()),
    "findings": pl.Int64(),
    "headline": pl.String(),
    "event_ids": pl.List(pl.String()),
}


def _bursts(frame: pl.DataFrame, key: str, gap: dt.timedelta) -> pl.Expr:
    """An id per run of findings with the same ``key`` no more than ``gap`` apart (null keys:
    each finding alone)."""
    ordered = frame.select("_i", key, "time").sort(key, "time", nulls_last=True)
    new_run = (
        (pl.col(key) != pl.col(key).shift(1)).fill_null(True)
        | ((pl.col("time") - pl.col("time").shift(1)) > gap).fill_null(True)
        | pl.col(key).is_null()
    )
    runs = ordered.with_columns(_run=new_run.cum_sum()).select("_i", "_run")
    return pl.col("_i").replace_strict(runs["_i"], runs["_run"], default=None)


def incidents(findings: pl.DataFrame, gap: dt.timedelta = dt.timedelta(hours=2)) -> pl.DataFrame:
    """Findings grouped into incidents: findings of the same person/account, or from the same
    client address, each within ``gap`` of the next, are one incident (transitively: dave's
    night as dave, as dave@example.com and as app_user from one address is one incident).

    One row per incident (``INCIDENT_SCHEMA``), most severe first: its span, who, from where,
    which detectors, how many findings, the reason of its most severe first finding as the
    headline, and the evidence event ids of all its findings.
    """
    if findings.is_empty():
        return pl.DataFrame(schema=INCIDENT_SCHEMA)
    frame = findings.with_row_index("_i").with_columns(
        _who=pl.coalesce("person", "actor"),
        _ip=pl.col("src_ip").replace(["", "[local]", "local"], None),
        _rank=pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int8),
    )
    frame = frame.with_columns(
        _by_who=_bursts(frame, "_who", gap), _by_ip=_bursts(frame, "_ip", gap),
        _id=pl.col("_i"),
    )
    # connected components: spread the smallest id over both kinds of runs until stable
    for _ in range(50):
        spread = frame.with_columns(_id=pl.col("_id").min().over("_by_who")).with_columns(
            _id=pl.col("_id").min().over("_by_ip")
        )
        if spread["_id"].equals(frame["_id"]):
            break
        frame = spread
    grouped = (
        frame.sort("_rank", "time", descending=[True, False], nulls_last=True)
        .group_by("_id", maintain_order=True)
        .agg(
            _rank=pl.col("_rank").max(),
            start=pl.col("time").min(),
            end=pl.col("time").max(),
            who=pl.col("_who").drop_nulls().unique(maintain_order=True),
            addresses=pl.col("_ip").drop_nulls().unique(maintain_order=True),
            detectors=pl.col("detector").unique(maintain_order=True),
            findings=pl.len().cast(pl.Int64),
            headline=pl.col("reason").first(),
            event_ids=pl.col("event_ids").explode().drop_nulls().unique(maintain_order=True),
        )
        .sort(["_rank", "start"], descending=[True, False], nulls_last=True)
    )
    return grouped.with_columns(
        incident=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        severity=pl.col("_rank").replace_strict(
            {rank: name for name, rank in SEVERITY_RANK.items()}, return_dtype=pl.String
        ),
    ).select(list(INCIDENT_SCHEMA))
