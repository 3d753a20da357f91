"""Charts build from tiny frames, return None on empty input, and hand altair small data."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import vl_convert as vlc

from auditkit import charts
from auditkit.schema import ACCESS_SCHEMA, DERIVED_SCHEMA, EVENT_SCHEMA, conform

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def synthetic_events(n: int, minutes_apart: int = 7) -> pl.DataFrame:
    """``n`` events spread ``minutes_apart`` apart, 7 accounts, 17 tables, some failures."""
    i = pl.col("i")
    frame = pl.DataFrame({"i": pl.int_range(n, eager=True)}).with_columns(
        time=pl.lit(T0) + pl.duration(minutes=i * minutes_apart),
        source=pl.when(i % 3 == 0).then(pl.lit("pgaudit")).otherwise(pl.lit("mysql_enterprise")),
        category=pl.when(i % 5 == 0).then(pl.lit("write")).otherwise(pl.lit("read")),
        outcome=pl.when(i % 13 == 0).then(pl.lit("failure")).otherwise(pl.lit("success")),
        error=pl.when(i % 13 == 0).then(pl.lit("42501 permission denied")),
        actor=pl.format("user{}", i % 7),
        person=pl.when(i % 7 < 4).then(pl.format("person{}@corp.com", i % 7)),
        object=pl.format("public.t{}", i % 17),
        event_id=pl.format("e{}", i),
        sensitive=i % 17 == 3,
    )
    return conform(frame, {**EVENT_SCHEMA, **DERIVED_SCHEMA})


def synthetic_access(events: pl.DataFrame) -> pl.DataFrame:
    """One access row per event, a sensitive column on sensitive ones."""
    return conform(
        events.with_columns(
            access=pl.when(pl.col("category") == "write")
            .then(pl.lit("write"))
            .otherwise(pl.lit("read")),
            column=pl.when(pl.col("sensitive")).then(pl.lit("ssn")),
        ),
        ACCESS_SCHEMA,
    )


def synthetic_files(events: pl.DataFrame, n_files: int = 3) -> pl.DataFrame:
    """A files frame as ``ReadResult.files`` has it, one file per source format and index."""
    return pl.DataFrame(
        {
            "path": [f"/logs/host{k}/audit.log" for k in range(n_files)],
            "format": ["pgaudit" if k % 2 else "mysql_enterprise" for k in range(n_files)],
            "records": [100] * n_files,
            "events": [100 - k for k in range(n_files)],
            "quarantined": [k for k in range(n_files)],
            "first_time": [events["time"].min()] * n_files,
            "last_time": [events["time"].max()] * n_files,
        }
    )


def chart_rows(chart) -> list[int]:
    """Row counts of every inline dataset of a chart spec."""
    spec = chart.to_dict()
    return [len(values) for values in spec.get("datasets", {}).values()]


@pytest.fixture(scope="module")
def small():
    events = synthetic_events(200)
    return events, synthetic_access(events), synthetic_files(events)


@pytest.fixture(scope="module")
def large():
    events = synthetic_events(100_000)
    return events, synthetic_access(events), synthetic_files(events, 500)


def test_every_chart_renders_to_svg(small):
    events, access, files = small
    built = [
        charts.access_matrix(access),
        charts.object_history(access, "public.t3"),
        charts.activity_timeline(events),
        charts.failures_chart(events),
        charts.counts_chart(events, "category"),
        charts.ingest_span_chart(files),
        charts.ingest_span_chart(files, by="format"),
    ]
    for chart in built:
        assert chart is not None
        assert vlc.vegalite_to_svg(chart.to_dict()).lstrip().startswith("<svg")


def test_empty_inputs_give_none():
    events = synthetic_events(0)
    access = synthetic_access(events)
    assert charts.access_matrix(access) is None
    assert charts.object_history(access, "public.t1") is None
    assert charts.activity_timeline(events) is None
    assert charts.failures_chart(events) is None
    assert charts.counts_chart(events, "source") is None
    assert charts.ingest_span_chart(synthetic_files(events).clear()) is None


@pytest.mark.parametrize("limit", [charts.MAX_POINTS, 2000])
def test_large_inputs_are_aggregated(large, limit):
    events, access, files = large
    assert access.height == 100_000
    built = {
        "matrix": charts.access_matrix(access),
        "history": charts.object_history(access, "public.t3", max_points=limit),
        "timeline": charts.activity_timeline(events),
        "failures": charts.failures_chart(events),
        "counts": charts.counts_chart(events, "source"),
        "spans": charts.ingest_span_chart(files),
    }
    for name, chart in built.items():
        rows = chart_rows(chart)
        assert rows and max(rows) <= limit, (name, rows)
    assert max(chart_rows(built["spans"])) == 50


def test_access_matrix_counts_and_limits(small):
    _, access, _ = small
    full = charts.access_matrix(access)
    cells = next(iter(full.to_dict()["datasets"].values()))
    assert sum(cell["count"] for cell in cells) == access.height
    # who is the person when known, else the account
    assert {c["who"] for c in cells} == {f"person{k}@corp.com" for k in range(4)} | {
        "user4",
        "user5",
        "user6",
    }
    cut = charts.access_matrix(access, max_who=2, max_objects=3)
    cells = next(iter(cut.to_dict()["datasets"].values()))
    assert len({c["who"] for c in cells}) == 2 and len({c["object"] for c in cells}) == 3
    assert "busiest 2 of 7 people" in cut.to_dict()["title"]


def test_object_history_exact_when_few_bucketed_when_many(small, large):
    _, access, _ = small
    exact = charts.object_history(access, "public.t3")
    points = next(iter(exact.to_dict()["datasets"].values()))
    assert len(points) == access.filter(pl.col("object") == "public.t3").height
    assert exact.to_dict()["title"] == "Accesses to public.t3"

    _, big, _ = large
    bucketed = charts.object_history(big, "public.t3", max_points=500)
    points = next(iter(bucketed.to_dict()["datasets"].values()))
    assert len(points) <= 500
    assert sum(p["count"] for p in points) == big.filter(pl.col("object") == "public.t3").height
    assert "(per " in bucketed.to_dict()["title"]


def test_pick_bucket_is_finest_that_fits():
    day = dt.timedelta(days=1)
    assert charts.TIME_BUCKETS[charts.pick_bucket(T0, T0 + day, 300)][1] == "5 minutes"
    assert charts.TIME_BUCKETS[charts.pick_bucket(T0, T0 + 10 * day, 300)][1] == "hour"
    assert charts.TIME_BUCKETS[charts.pick_bucket(T0, T0 + 200 * day, 300)][1] == "day"
    assert charts.pick_bucket(None, None, 300) == 0


def test_ingest_span_by_format_aggregates(small):
    events, _, files = small
    chart = charts.ingest_span_chart(files, by="format")
    rows = next(iter(chart.to_dict()["datasets"].values()))
    assert sorted(r["label"] for r in rows) == ["mysql_enterprise", "pgaudit"]
    assert sum(r["files"] for r in rows) == files.height
    per_file = next(iter(charts.ingest_span_chart(files).to_dict()["datasets"].values()))
    assert {r["label"] for r in per_file} == {f"host{k}/audit.log" for k in range(3)}


def test_log_content_is_escaped_in_svg(small):
    _, access, _ = small
    hostile = access.with_columns(object=pl.lit("<script>alert(1)</script>"))
    svg = vlc.vegalite_to_svg(charts.access_matrix(hostile).to_dict())
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
