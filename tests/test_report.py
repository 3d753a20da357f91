"""Reports: analysis helpers, escaped tables, offline HTML, manifest, notebooks end to end."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import textwrap
from pathlib import Path

import nbformat
import polars as pl
import pytest
import vl_convert as vlc
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import auditkit
from auditkit import charts, report
from auditkit.errors import ReportError
from auditkit.schema import ACCESS_SCHEMA, DERIVED_SCHEMA, EVENT_SCHEMA, conform

HOSTILE = "SELECT '<script>alert(1)</script>' FROM t"
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def events_frame() -> pl.DataFrame:
    """Six events: two people, one unresolved account, a failure, an export, a sensitive read."""
    rows = [
        # hour, person, actor, object, category, outcome, sensitive, rows
        (0, "ann@corp.com", "app_ro", "public.customers", "read", "success", True, 10),
        (1, "ann@corp.com", "app_ro", "public.orders", "read", "success", False, 5),
        (2, None, "svc_etl", "public.customers", "write", "success", True, 3),
        (3, "bob@corp.com", "bob", "public.customers", "read", "failure", True, None),
        (25, "bob@corp.com", "bob", "public.orders", "export", "success", False, 1000),
        (26, None, "svc_etl", None, "auth", "failure", False, None),
    ]
    frame = pl.DataFrame(
        rows,
        schema=["hour", "person", "actor", "object", "category", "outcome", "sensitive", "rows"],
        orient="row",
    ).with_columns(
        time=pl.lit(T0) + pl.duration(hours=pl.col("hour")),
        source=pl.lit("pgaudit"),
        error=pl.when(pl.col("outcome") == "failure").then(pl.lit("42501 permission denied")),
        statement=pl.lit(HOSTILE),
        src_ip=pl.lit("10.0.0.7"),
        event_id=pl.format("e{}", pl.col("hour")),
    )
    return conform(frame, {**EVENT_SCHEMA, **DERIVED_SCHEMA})


def access_frame(events: pl.DataFrame) -> pl.DataFrame:
    """The access table of :func:`events_frame` as ``auditkit.access_table`` would build it."""
    rows = events.filter(pl.col("object").is_not_null()).with_columns(
        access=pl.col("category"),
        column=pl.when(pl.col("sensitive")).then(pl.lit("ssn")),
    )
    return conform(rows, ACCESS_SCHEMA)


@pytest.fixture
def events() -> pl.DataFrame:
    return events_frame()


@pytest.fixture
def access(events) -> pl.DataFrame:
    return access_frame(events)


# --------------------------------------------------------------------------- analysis helpers


def test_filter_access_by_object_person_and_time(access):
    assert report.filter_access(access).height == access.height
    assert "who" in report.filter_access(access).columns
    orders = report.filter_access(access, r"\.orders$")
    assert orders["object"].unique().to_list() == ["public.orders"]
    # person matches the person or, when unresolved, the account
    assert report.filter_access(access, person="svc_etl")["who"].to_list() == ["svc_etl"]
    assert report.filter_access(access, person="bob@corp.com").height == 2
    # a date-only end includes the whole day; start is inclusive
    assert report.filter_access(access, end="2024-03-01").height == 4
    assert report.filter_access(access, start="2024-03-01T03:00:00Z").height == 2
    assert report.filter_access(access, start="2024-03-01T03:00:00+01:00").height == 3
    assert report.filter_access(access, sensitive_only=True)["sensitive"].all()


def test_parse_time_rejects_garbage():
    with pytest.raises(ReportError, match="not an ISO"):
        report.parse_time("yesterday")


def test_pick_object_prefers_sensitive_then_busiest(access):
    assert report.pick_object(access) == "public.customers"
    assert report.pick_object(access, "public.orders") == "public.orders"
    assert report.pick_object(access.clear()) is None


def test_sections_join_event_context(events, access):
    sensitive = report.sensitive_reads(access, events)
    assert sensitive.select("who", "column", "rows", "src_ip").rows() == [
        ("ann@corp.com", "ssn", 10, "10.0.0.7"),
        ("bob@corp.com", "ssn", None, "10.0.0.7"),
    ]
    failed = report.failed_attempts(events)
    assert failed["event_id"].to_list() == ["e3", "e26"]  # the failed login is included
    assert failed["error"].to_list() == ["42501 permission denied"] * 2
    assert report.failed_attempts(events, "customers")["event_id"].to_list() == ["e3"]
    assert report.exports(access, events).select("who", "rows").rows() == [("bob@corp.com", 1000)]
    text, counts = report.access_summary(access, sensitive, failed, report.exports(access, events))
    assert counts == {
        "accesses": 5,
        "people": 3,
        "objects": 2,
        "sensitive_reads": 2,
        "failed": 2,
        "exports": 1,
    }
    assert text.startswith("5 accesses by 3 people")


def test_summaries_of_empty_frames():
    events = events_frame().clear()
    files = pl.DataFrame(schema={"path": pl.String, "format": pl.String})
    text, counts = report.ingest_summary(events, files, pl.DataFrame(schema={"file": pl.String}))
    assert counts["events"] == 0 and text.startswith("0 events from 0 file(s)")


# --------------------------------------------------------------------------- tables


def test_table_html_escapes_and_limits(events):
    many = pl.concat([events] * 20)  # 120 rows
    page = report.table_html(many, max_rows=50, csv_name="events.csv")
    assert page.count("<tr>") == 51  # header + 50 rows
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "first 50 of 120 rows" in page
    assert '<a href="events.csv">' in page
    assert "2024-03-01 00:00:00<" in page  # times as UTC text, no empty fraction


def test_show_table_writes_full_csv(tmp_path, events):
    many = pl.concat([events] * 20)
    report.show_table(many, "events", max_rows=5, folder=tmp_path)
    written = pl.read_csv(tmp_path / "events.csv")
    assert written.height == 120
    assert written["statement"][0] == HOSTILE
    assert written["objects_read"].dtype == pl.String  # lists flattened for CSV


def test_output_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv(report.OUTPUT_DIR_ENV, str(tmp_path / "env"))
    monkeypatch.setattr(report, "_output_dir", None)
    assert report.output_dir() == tmp_path / "env"
    monkeypatch.setattr(report, "_output_dir", tmp_path / "given")
    assert report.output_dir() == tmp_path / "given"


# --------------------------------------------------------------------------- HTML


def executed_notebook(path: Path) -> Path:
    """A small notebook that looks executed: a heading, a chart as SVG, an escaped table."""
    chart = charts.access_matrix(access_frame(events_frame()))
    code = new_code_cell("SOURCE_MARKER = 1  # must not reach the page", execution_count=1)
    code.outputs = [
        new_output("display_data", data={"image/svg+xml": vlc.vegalite_to_svg(chart.to_dict())}),
        new_output("display_data", data={"text/html": report.table_html(events_frame())}),
    ]
    nb = new_notebook(cells=[new_markdown_cell("# Tiny report\n\nOne line."), code])
    nbformat.write(nb, path)
    return path


def assert_offline_and_escaped(page: str) -> None:
    assert "<svg" in page
    assert "cdn.jsdelivr" not in page and "cdnjs" not in page and "unpkg" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_render_html_is_offline_without_code(tmp_path):
    page_path = report.render_html(executed_notebook(tmp_path / "tiny.ipynb"), tmp_path / "t.html")
    page = page_path.read_text()
    assert_offline_and_escaped(page)
    assert "SOURCE_MARKER" not in page
    assert "<title>Tiny report</title>" in page
    with_code = report.render_html(tmp_path / "tiny.ipynb", tmp_path / "c.html", include_input=True)
    assert "SOURCE_MARKER" in with_code.read_text()


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook whose first cell is the parameters cell."""
    nb = new_notebook(
        cells=[new_code_cell(source) for source in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


def test_run_notebook_then_render(tmp_path):
    source = write_notebook(
        tmp_path / "nb.ipynb",
        'statement = "nothing"\noutput_dir = "."',
        textwrap.dedent(
            """
            import polars as pl
            from auditkit import charts, report
            report.setup_notebook(output_dir)
            frame = pl.DataFrame({"time": [None], "statement": [statement]})
            report.show_table(frame, "statements")
            report.show_chart(charts.counts_chart(pl.DataFrame(
                {"source": ["pgaudit", "mysql"], "outcome": ["success", "failure"]}), "source"))
            """
        ),
    )
    out = tmp_path / "out"
    executed = report.run_notebook(
        source, out / "nb.ipynb", {"statement": HOSTILE, "output_dir": str(out)}
    )
    page = report.render_html(executed, out / "nb.html").read_text()
    assert_offline_and_escaped(page)
    assert pl.read_csv(out / "statements.csv")["statement"].to_list() == [HOSTILE]


def test_run_notebook_failure_names_notebook_and_cell(tmp_path):
    source = write_notebook(tmp_path / "broken.ipynb", "x = 1", "y = 2", "1 / 0  # boom")
    with pytest.raises(ReportError) as caught:
        report.run_notebook(source, tmp_path / "out.ipynb", {"x": 3})
    message = str(caught.value)
    assert "\n" not in message
    assert "broken.ipynb" in message and "1 / 0" in message and "ZeroDivisionError" in message
    with pytest.raises(ReportError, match="no such notebook"):
        report.run_notebook(tmp_path / "missing.ipynb", tmp_path / "o.ipynb", {})


# --------------------------------------------------------------------------- manifest and paths


def test_manifest_hashes_inputs(tmp_path):
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    (logs / "a.log").write_bytes(b"first\n")
    (logs / "sub" / "b.log.gz").write_bytes(b"\x1f\x8bsecond")
    (logs / ".hidden").write_text("skip me")
    manifest = report.write_manifest(tmp_path / "manifest.json", [str(logs)], {"tz": "UTC"})
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    files = {Path(f["path"]).name: f for f in on_disk["files"]}
    assert set(files) == {"a.log", "b.log.gz"}
    assert files["a.log"]["sha256"] == hashlib.sha256(b"first\n").hexdigest()
    assert files["b.log.gz"]["size"] == 8
    assert on_disk["parameters"] == {"tz": "UTC"}
    assert {"auditkit", "python", "polars", "sqlglot", "papermill", "altair"} <= set(
        on_disk["versions"]
    )
    assert dt.datetime.fromisoformat(on_disk["created_utc"]).utcoffset() == dt.timedelta(0)


def test_resolve_paths_falls_back_to_notebook_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.log").write_text("x")
    assert report.resolve_paths("here.log") == [str(tmp_path / "here.log")]
    expected = str((report.notebook_dir() / "../sample_logs").resolve())
    assert report.resolve_paths(["../sample_logs"]) == [expected]


def test_notebooks_are_shipped_clean():
    for name in report.DEFAULT_NOTEBOOKS:
        nb = nbformat.read(report.notebook_dir() / f"{name}.ipynb", as_version=4)
        assert nb.cells[0].metadata.get("tags") == ["parameters"]
        assert nb.metadata.kernelspec.name == "python3"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code)
        assert report.first_heading(nb)


def test_unknown_parameter_is_refused(tmp_path):
    with pytest.raises(ReportError, match="object_patern"):
        report.build_report([str(tmp_path)], tmp_path / "out", {"object_patern": "x"})


# --------------------------------------------------------------------------- end to end

# Loaded into the notebook kernels (sitecustomize) so the shipped notebooks run before the real
# loader exists: auditkit.load and auditkit.access_table over a small synthetic trail.
STUB_LOADER = """
import datetime as dt
import types

import polars as pl

import auditkit
from auditkit.schema import (
    ACCESS_SCHEMA, DERIVED_SCHEMA, EVENT_SCHEMA, QUARANTINE_SCHEMA, conform,
)


def load(paths, *, format=None, pg_prefix=None, tz="UTC", classification=None, progress=False):
    i = pl.col("i")
    events = pl.DataFrame({"i": pl.int_range(3000, eager=True)}).with_columns(
        time=pl.lit(dt.datetime(2024, 3, 1, tzinfo=dt.UTC)) + pl.duration(minutes=i * 7),
        source=pl.lit("pgaudit"),
        category=pl.when(i % 5 == 0).then(pl.lit("write")).otherwise(pl.lit("read")),
        outcome=pl.when(i % 13 == 0).then(pl.lit("failure")).otherwise(pl.lit("success")),
        error=pl.when(i % 13 == 0).then(pl.lit("42501 permission denied")),
        actor=pl.format("user{}", i % 7),
        person=pl.when(i % 7 < 4).then(pl.format("person{}@corp.com", i % 7)),
        object=pl.format("public.t{}", i % 17),
        statement=pl.lit("SELECT '<script>alert(1)</script>' FROM t"),
        rows=i % 100,
        event_id=pl.format("e{}", i),
        sensitive=i % 17 == 3,
    )
    events = conform(events, {**EVENT_SCHEMA, **DERIVED_SCHEMA})
    files = pl.DataFrame({
        "path": [str(p) for p in paths], "format": "pgaudit", "records": 3001, "events": 3000,
        "quarantined": 1, "first_time": events["time"].min(), "last_time": events["time"].max(),
    })
    quarantine = pl.DataFrame(
        [(str(paths[0]), 7, "pgaudit", "unterminated quote", "<script>alert(2)</script>")],
        schema=QUARANTINE_SCHEMA, orient="row",
    )
    return types.SimpleNamespace(events=events, quarantine=quarantine, files=files)


def access_table(events, classification=None):
    return conform(events.with_columns(
        access=pl.when(pl.col("rows") == 42).then(pl.lit("export"))
        .otherwise(pl.col("category")),
        column=pl.when(pl.col("sensitive")).then(pl.lit("ssn")),
    ), ACCESS_SCHEMA)


auditkit.load, auditkit.access_table = load, access_table
"""


def check_report_site(index: Path, inputs: list[Path]) -> dict:
    out = index.parent
    manifest = json.loads((out / "manifest.json").read_text())
    for name in report.DEFAULT_NOTEBOOKS:
        assert (out / f"{name}.ipynb").is_file()
        page = (out / f"{name}.html").read_text()
        assert "<svg" in page
        assert not re.search(r"<script[^>]*\bsrc=", page)
        assert "<script>alert" not in page
        assert f'href="{name}.html"' in index.read_text()
    hashed = {f["path"]: f["sha256"] for f in manifest["files"]}
    for path in inputs:
        assert hashed[str(path.resolve())] == hashlib.sha256(path.read_bytes()).hexdigest()
    return manifest


def test_build_report_with_stub_loader(tmp_path, monkeypatch):
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "sitecustomize.py").write_text(STUB_LOADER)
    # the kernels inherit the environment, so they import the stub at start-up
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(stub), os.environ.get("PYTHONPATH")]))
    )
    log = tmp_path / "logs" / "audit.log"
    log.parent.mkdir()
    log.write_text(
        "2024-03-01 00:00:00 UTC LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,x,<not logged>\n"
    )

    index = report.build_report(
        [str(log.parent)], tmp_path / "site", {"person": "person1@corp.com", "tz": "UTC"}
    )
    manifest = check_report_site(index, [log])
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;"
        in (index.parent / "who_accessed_what.html").read_text()
    )
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in (index.parent / "overview.html").read_text()
    pages = {p["name"]: p for p in manifest["pages"]}
    # each notebook gets only the parameters it declares
    assert "person" in pages["who_accessed_what"]["parameters"]
    assert "person" not in pages["overview"]["parameters"]
    assert pages["overview"]["counts"]["events"] == 3000
    assert pages["who_accessed_what"]["counts"]["people"] == 1
    assert (index.parent / "quarantine.csv").is_file()
    assert (index.parent / "sensitive_reads.csv").is_file()
    assert not (index.parent / report.SUMMARY_FILE).exists()  # set aside per page


def test_build_report_with_real_loader(tmp_path):
    if not hasattr(auditkit, "load"):
        pytest.skip("loader not landed")
    sample_logs = report.notebook_dir().parent / "sample_logs"
    inputs = sorted(p for p in sample_logs.rglob("*") if p.is_file())
    if not inputs:
        pytest.skip("sample_logs/ is empty (make samples)")
    index = report.build_report([str(sample_logs)], tmp_path / "site")
    check_report_site(index, [p for p in inputs if not p.name.startswith(".")])


def test_report_findings_judge_the_window_and_learn_from_the_history(monkeypatch):
    """The Anomalies page: --since/--until is the detection window, the history before it the
    baseline (dave's first night-time export is still first-seen with a window on that day)."""
    import auditkit
    from auditkit import report as R
    from tests.conftest import REPO

    events = auditkit.load([REPO / "sample_logs"]).events
    monkeypatch.setenv(R.SINCE_ENV, "2026-11-06T00:00:00+00:00")
    monkeypatch.setenv(R.UNTIL_ENV, "2026-11-07T00:00:00+00:00")
    found = R.report_findings(events)
    day = (dt.datetime(2026, 11, 6, tzinfo=dt.UTC), dt.datetime(2026, 11, 7, tzinfo=dt.UTC))
    assert found.height and found["time"].min() >= day[0] and found["time"].max() < day[1]
    exported = found.filter(pl.col("detector") == "exports")["reason"].str.contains(
        "dave exported 48,210 rows")
    assert exported.any()
    # a window given to the page wins over the report's
    monkeypatch.delenv(R.UNTIL_ENV)
    later = R.report_findings(events, detect_from="2026-11-07")
    assert later.height and later["time"].min() >= day[1]
