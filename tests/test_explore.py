"""The explore app (auditkit/explore.py): filters, bounded timeline, paged table, drill-down."""

from __future__ import annotations

import datetime as dt
import gzip

import polars as pl
import pytest

import auditkit
from auditkit.explore import Explorer, filter_events, raw_line, record_html, time_steps
from auditkit.schema import DERIVED_SCHEMA, EVENT_SCHEMA, conform

pytest.importorskip("ipywidgets")

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SECRET_STATEMENT = "ALTER ROLE app PASSWORD 'hunter2' -- <script>alert(1)</script>"


def synthetic_events(n: int) -> pl.DataFrame:
    """``n`` events over about a year (one every 31 s), five categories of activity."""
    i = pl.col("i")
    frame = pl.DataFrame({"i": pl.int_range(n, eager=True)}).with_columns(
        time=pl.lit(T0) + pl.duration(seconds=i * 31),
        source=pl.when(i % 3 == 0).then(pl.lit("pgaudit")).otherwise(pl.lit("mariadb")),
        category=pl.when(i % 5 == 0).then(pl.lit("write")).otherwise(pl.lit("read")),
        outcome=pl.when(i % 11 == 0).then(pl.lit("failure")).otherwise(pl.lit("success")),
        actor=pl.format("user{}", i % 50),
        person=pl.when(i % 50 < 10).then(pl.format("person{}@corp.com", i % 50)),
        object=pl.format("public.t{}", i % 100),
        statement=pl.lit(SECRET_STATEMENT),
        event_id=pl.format("e{}", i),
        raw_ref=pl.format("audit.log:{}", i + 1),
    )
    return conform(frame, {**EVENT_SCHEMA, **DERIVED_SCHEMA})


@pytest.fixture(scope="module")
def million() -> pl.DataFrame:
    return synthetic_events(1_000_000)


def test_filter_events_each_filter():
    events = synthetic_events(1000)
    assert filter_events(events).height == 1000
    assert filter_events(events, category=["write"]).height == 200
    assert filter_events(events, outcome=["failure"], source=["pgaudit"]).height == len(
        [i for i in range(1000) if i % 11 == 0 and i % 3 == 0]
    )
    # person matches the person or the account
    assert filter_events(events, person="person3@corp.com").height == 20
    assert filter_events(events, person="user42").height == 20
    assert filter_events(events, object_pattern=r"\.t7$").height == 10
    assert filter_events(events, since=T0 + dt.timedelta(seconds=31 * 990)).height == 10
    assert filter_events(events, until=T0 + dt.timedelta(seconds=31 * 10)).height == 10


def test_time_steps_cover_the_span():
    events = synthetic_events(1000)
    steps = time_steps(events["time"], 50)
    assert len(steps) <= 50
    assert steps[0] <= events["time"].min() and steps[-1] > events["time"].max()
    assert time_steps(pl.Series("time", [], dtype=pl.Datetime("us", "UTC"))) == []


def test_explore_a_million_events_draws_buckets_and_pages(million):
    widget = auditkit.explore(million)
    app = widget.explorer
    assert isinstance(app, Explorer)
    # aggregated before drawing: one bar per time bucket and category, not a point per event
    assert app.chart.data.height <= 2 * app.max_buckets
    assert app.page.height == 50
    assert "<tr>" in app.table.value and app.table.value.count("<tr>") == 51  # header + page
    assert app.page_label.value == "rows 1–50 of 1,000,000"

    app.filters["category"].value = ("write",)
    assert app.matching.height == 200_000
    assert "200,000" in app.status.value
    first_page = app.table.value
    app.filters["object_pattern"].value = r"^public\.t1\d$"
    assert app.matching.height == 20_000
    assert app.table.value != first_page
    assert set(app.page["object"].unique()) <= {f"public.t{n}" for n in range(10, 20)}

    app.next_button.click()
    assert app.page_number == 1 and app.page_label.value == "rows 51–100 of 20,000"
    steps = [value for _, value in app.filters["time"].options]
    app.filters["time"].value = (steps[0], steps[1])
    assert app.matching.height < 20_000 and app.page_number == 0


def test_bad_regex_is_a_message_not_an_error():
    app = Explorer(synthetic_events(100))
    app.filters["object_pattern"].value = "["
    assert app.matching.height == 0 and "object pattern" in app.status.value
    app.filters["object_pattern"].value = ""
    assert app.matching.height == 100


def test_table_and_record_escape_and_mask(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.log").write_text("first line\nsecond <b>line</b> PASSWORD 'pw'\n")
    app = Explorer(synthetic_events(10))
    for shown in (app.table.value,):
        assert "hunter2" not in shown and "<script>" not in shown
        assert "PASSWORD &#x27;***&#x27;" in shown
    app.chooser.value = 1
    assert app.record["event_id"] == "e1"
    assert "hunter2" not in app.record_view.value and "<script>" not in app.record_view.value
    assert "second &lt;b&gt;line&lt;/b&gt; PASSWORD &#x27;***&#x27;" in app.record_view.value
    assert app.record["statement"] == SECRET_STATEMENT  # the events keep the raw text


def test_raw_line_reads_text_and_gzip(tmp_path):
    (tmp_path / "a.log").write_text("one\ntwo\n")
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(b"uno\ndos\n"))
    assert raw_line(f"{tmp_path / 'a.log'}:2") == "two"
    assert raw_line(f"{tmp_path / 'b.log.gz'}:1") == "uno"
    assert raw_line(f"{tmp_path / 'a.log'}:3") is None
    assert raw_line(f"{tmp_path / 'gone.log'}:1") is None
    assert raw_line(None) is None
    assert "The source file is not readable" in record_html({"raw_ref": "gone.log:1"})


def test_explore_notebook_is_shipped_clean_and_thin():
    import nbformat

    from auditkit.report import notebook_dir

    nb = nbformat.read(notebook_dir() / "explore.ipynb", as_version=4)
    assert nb.cells[0].metadata.get("tags") == ["parameters"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "auditkit.explore(" in code[-1].source and len(code) <= 3
