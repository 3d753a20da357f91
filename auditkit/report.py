"""Reports: run the shipped notebooks with papermill and render them as a self-contained HTML site.

    from auditkit.report import build_report
    index = build_report(["sample_logs/"], Path("reports"))   # reports/index.html

A report folder holds, per notebook, the executed ``<name>.ipynb``, the page ``<name>.html`` and
the full tables behind it as CSV; plus ``manifest.json`` (input hashes, parameters, versions) and
``index.html``. Pages need no network: charts are inline SVG, code cells are hidden, every
piece of log content is HTML-escaped, and secrets in it (passwords, keys, tokens) are masked in
pages and CSVs (:mod:`auditkit.redact`). Scheduling (dated folders, skipping unchanged inputs)
is :mod:`auditkit.schedule`.

This module also holds the helpers the notebooks call (``setup_notebook``, ``load_logs``,
``show_table``, ``write_summary``) and, for now, the analysis helpers behind the who-accessed-what
notebook (``filter_access``, ``pick_object``, ``sensitive_reads``, ``failed_attempts``,
``exports``); those are pure frame -> frame functions that belong with the other analyses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import os
import platform
import re
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from auditkit.errors import ReportError

OUTPUT_DIR_ENV = "AUDITKIT_OUTPUT_DIR"
"""Folder for tables and summaries when a notebook gives none (see :func:`output_dir`)."""
SINCE_ENV, UNTIL_ENV = "AUDITKIT_SINCE", "AUDITKIT_UNTIL"
"""Time window :func:`load_logs` applies when its caller gives none: how ``--since/--until``
reach every notebook of a report (see :func:`build_report`)."""

DEFAULT_NOTEBOOKS = (
    "overview", "who_accessed_what", "anomalies", "coverage_gaps", "person_timeline"
)
SUMMARY_FILE = "summary.json"
TABLE_MAX_ROWS = 50
CELL_MAX_CHARS = 300

_output_dir: Path | None = None


# --------------------------------------------------------------------------- notebook helpers


def notebook_dir() -> Path:
    """The folder holding the report notebooks: the repo's ``notebooks/`` in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "notebooks", package / "notebooks"):
        if candidate.is_dir():
            return candidate
    raise ReportError(f"no notebooks folder next to {package}")


def setup_notebook(folder: str | Path | None = None) -> Path:
    """Prepare a notebook kernel for reporting; returns the folder tables are written to.

    Charts render as SVG through vl-convert, so executed notebooks carry static images that an
    HTML page shows without loading any script.
    """
    import altair as alt

    global _output_dir
    alt.renderers.enable("svg")
    _output_dir = Path(folder) if folder is not None else None
    return output_dir()


def output_dir() -> Path:
    """Where tables go: the folder given to :func:`setup_notebook`, else ``$AUDITKIT_OUTPUT_DIR``,
    else the current folder. Created on demand."""
    folder = _output_dir or Path(os.environ.get(OUTPUT_DIR_ENV) or ".")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resolve_paths(logs: str | Sequence[str]) -> list[str]:
    """Input paths as absolute paths; a relative one that does not exist from the current folder
    is tried from the notebooks folder (so ``"../sample_logs"`` works from anywhere)."""
    resolved = []
    for item in [logs] if isinstance(logs, str | os.PathLike) else logs:
        path = Path(item).expanduser()
        if not path.is_absolute() and not path.exists():
            try:
                beside_notebooks = notebook_dir() / path
            except ReportError:
                beside_notebooks = path
            if beside_notebooks.exists():
                path = beside_notebooks
        resolved.append(str(path.resolve()))
    return resolved


def load_logs(
    logs: str | Sequence[str],
    *,
    format: str | None = None,
    pg_prefix: str | None = None,
    tz: str = "UTC",
    classification: str | None = None,
    since: str | dt.datetime | None = None,
    until: str | dt.datetime | None = None,
    window: bool = True,
) -> Any:
    """``auditkit.load`` over :func:`resolve_paths` of ``logs``; returns its ``ReadResult``.

    Only events with ``since <= time < until`` are kept (a date-only ``until`` includes that
    day); without them, ``$AUDITKIT_SINCE`` and ``$AUDITKIT_UNTIL`` apply when set.
    ``window=False`` keeps every event (pages that need the history before the window, such
    as the anomaly baseline, apply :func:`report_window` themselves).
    """
    import auditkit  # late: the loader lives above this module

    result = auditkit.load(
        resolve_paths(logs),
        format=format,
        pg_prefix=pg_prefix,
        tz=tz,
        classification=classification,
    )
    if not window:
        return result
    since, until = report_window(since, until)
    if since is not None or until is not None:
        before = result.events.height
        result.events = result.events.filter(time_window(since, until))
        if isinstance(getattr(result, "notes", None), list):
            result.notes.append(
                f"time window {since or '…'} to {until or '…'} (UTC, end excluded): "
                f"{result.events.height:,} of {before:,} events kept"
            )
    return result


def report_window(
    since: str | dt.datetime | None = None, until: str | dt.datetime | None = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The report's time window: the arguments, else ``$AUDITKIT_SINCE``/``$AUDITKIT_UNTIL``."""
    return (
        parse_time(since if since is not None else os.environ.get(SINCE_ENV)),
        parse_time(until if until is not None else os.environ.get(UNTIL_ENV), end=True),
    )


def time_window(since: dt.datetime | None, until: dt.datetime | None) -> pl.Expr:
    """``since <= time < until`` (either bound optional); events without a time are dropped
    when a bound is given."""
    condition = pl.lit(True)
    if since is not None:
        condition &= pl.col("time") >= since
    if until is not None:
        condition &= pl.col("time") < until
    return condition.fill_null(False)


def show_table(
    frame: pl.DataFrame,
    name: str,
    max_rows: int = TABLE_MAX_ROWS,
    *,
    folder: str | Path | None = None,
) -> None:
    """Display the first ``max_rows`` rows as an escaped HTML table and write all rows to
    ``<name>.csv`` in :func:`output_dir` (or ``folder``), linked from under the table. Secrets
    in text (passwords, keys) are masked in both (:func:`auditkit.redact.redact`)."""
    from IPython.display import HTML, display

    csv_path = Path(folder or output_dir()) / f"{name}.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    _flat_for_csv(frame).write_csv(csv_path)
    # a report writes tables beside its page (an absolute folder): link the name; a notebook run
    # by hand writes them to a folder of its own (``output/``): link that path
    link = csv_path.name if csv_path.is_absolute() else csv_path.as_posix()
    display(HTML(table_html(frame, max_rows=max_rows, csv_name=link)))


def show_chart(chart: Any, empty_message: str = "Nothing to draw.") -> None:
    """Display an altair chart, or a one-line note when it is ``None`` (no data)."""
    from IPython.display import HTML, display

    if chart is None:
        display(HTML(f"<p><em>{html.escape(empty_message)}</em></p>"))
    else:
        display(chart)


def show_notes(notes: Sequence[str]) -> None:
    """Display the loader's notes (assumptions it made, files it skipped) as an escaped list."""
    from IPython.display import HTML, display

    if notes:
        items = "".join(f"<li>{html.escape(str(note))}</li>" for note in notes)
        display(HTML(f"<ul>{items}</ul>"))


def show_text(text: str) -> None:
    """Display a line of text that may contain log content, escaped."""
    from IPython.display import HTML, display

    display(HTML(f"<p>{html.escape(text)}</p>"))


def write_summary(text: str, counts: dict[str, int] | None = None) -> Path:
    """Write the one-line summary the report index shows for this page (``summary.json``)."""
    path = output_dir() / SUMMARY_FILE
    path.write_text(json.dumps({"text": text, "counts": counts or {}}, indent=2) + "\n")
    return path


def table_html(
    frame: pl.DataFrame,
    *,
    max_rows: int = TABLE_MAX_ROWS,
    csv_name: str | None = None,
    max_chars: int = CELL_MAX_CHARS,
) -> str:
    """An HTML table of the first ``max_rows`` rows; every cell escaped, secrets masked, long
    cells cut."""
    from auditkit.redact import redact

    shown = _as_text(redact(frame.head(max_rows)), max_chars)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v or '')}</td>" for v in row) + "</tr>"
        for row in shown.iter_rows()  # at most max_rows rows: display only
    )
    note = (
        f"{frame.height:,} rows"
        if frame.height <= max_rows
        else (f"first {max_rows:,} of {frame.height:,} rows")
    )
    if csv_name:
        note += f' — full table: <a href="{html.escape(csv_name)}">{html.escape(csv_name)}</a>'
    return (
        f'<table class="auditkit"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"<p><small>{note}</small></p>"
    )


def _as_text(frame: pl.DataFrame, max_chars: int | None = None) -> pl.DataFrame:
    """Every column as text: lists joined, times in UTC to the second (fraction when present),
    long values cut to ``max_chars``."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List | pl.Array):
            col = col.cast(pl.List(pl.String)).list.join(", ")
        elif isinstance(dtype, pl.Struct):
            col = col.struct.json_encode()
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC")
            col = col.dt.to_string("%Y-%m-%d %H:%M:%S%.f").str.replace(r"\.0+$", "")
        col = col.cast(pl.String)
        if max_chars is not None:
            col = (
                pl.when(col.str.len_chars() > max_chars)
                .then(col.str.slice(0, max_chars) + pl.lit(" …"))
                .otherwise(col)
            )
        exprs.append(col.alias(name))
    return frame.select(exprs)


def _flat_for_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame ready for a report's CSV: secrets masked (:func:`auditkit.redact.redact`), and
    list columns joined as CSV cannot hold nested values; everything else as is."""
    from auditkit.redact import redact

    frame = redact(frame)
    nested = [n for n, t in frame.schema.items() if isinstance(t, pl.List | pl.Array | pl.Struct)]
    if not nested:
        return frame
    return frame.with_columns(_as_text(frame.select(nested)))


# --------------------------------------------------------------------------- analysis helpers
# Pure frame -> frame functions used by the who-accessed-what notebook. They live here until
# the analyses modules settle.

WHO = pl.coalesce("person", "actor").alias("who")


def with_who(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``who``: the person when known, else the account as recorded (kept if present)."""
    return frame if "who" in frame.columns else frame.with_columns(WHO)


def parse_time(value: str | dt.datetime | None, *, end: bool = False) -> dt.datetime | None:
    """An ISO time as UTC (naive means UTC). A bare date as ``end`` means the end of that day."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ReportError(f"not an ISO date or time: {text!r}") from exc
        if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            parsed += dt.timedelta(days=1)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def filter_access(
    access: pl.DataFrame,
    object_pattern: str | None = ".*",
    person: str | None = None,
    start: str | dt.datetime | None = None,
    end: str | dt.datetime | None = None,
    *,
    sensitive_only: bool = False,
) -> pl.DataFrame:
    """Access rows (plus ``who``) whose object matches the regex, whose person or account is
    ``person``, with ``start <= time < end`` (a date-only ``end`` includes that day).

    Works on any frame with ``time``, ``person``, ``actor``, ``object`` (events too); with a
    pattern other than ``.*``, rows without an object are dropped.
    """
    frame = with_who(access)
    conditions: list[pl.Expr] = []
    if object_pattern not in (None, "", ".*"):
        conditions.append(pl.col("object").str.contains(object_pattern).fill_null(False))
    if person:
        conditions.append((pl.col("who") == person) | (pl.col("actor") == person))
    if (since := parse_time(start)) is not None:
        conditions.append(pl.col("time") >= since)
    if (until := parse_time(end, end=True)) is not None:
        conditions.append(pl.col("time") < until)
    if sensitive_only:
        conditions.append(pl.col("sensitive").fill_null(False))
    return frame.filter(*conditions) if conditions else frame


def filter_text(
    object_pattern: str | None = ".*",
    person: str | None = None,
    start: str | None = None,
    end: str | None = None,
    sensitive_only: bool = False,
) -> str:
    """The filters in words, for the top of a page."""
    parts = []
    if object_pattern not in (None, "", ".*"):
        parts.append(f"objects matching {object_pattern!r}")
    if person:
        parts.append(f"person or account {person!r}")
    if start:
        parts.append(f"from {start}")
    if end:
        parts.append(f"until {end}")
    if sensitive_only:
        parts.append("sensitive data only")
    return "Filters: " + ", ".join(parts) + "." if parts else "No filters: every access."


def pick_object(access: pl.DataFrame, obj: str | None = None) -> str | None:
    """``obj`` when given, else the object with the most sensitive accesses, then the most
    accesses overall (ties by name); ``None`` when there is no object."""
    if obj:
        return obj
    ranked = (
        access.filter(pl.col("object").is_not_null())
        .group_by("object")
        .agg(
            pl.col("sensitive").fill_null(False).sum().alias("sensitive_accesses"),
            pl.len().alias("accesses"),
        )
        .sort(["sensitive_accesses", "accesses", "object"], descending=[True, True, False])
    )
    return ranked.item(0, "object") if ranked.height else None


_EVENT_CONTEXT = ("rows", "src_ip", "client_app", "statement", "error", "category", "action")


def _with_event_context(access: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Join the event fields an auditor needs (rows, address, app, statement, error)."""
    context = events.select("event_id", *_EVENT_CONTEXT).unique("event_id", keep="first")
    return access.join(context, on="event_id", how="left")


def object_accesses(access: pl.DataFrame, events: pl.DataFrame, obj: str) -> pl.DataFrame:
    """Every access to ``obj``, oldest first: one row per statement and kind of access, with
    the columns it named, rows, address and application."""
    rows = (
        access.filter(pl.col("object") == obj)
        .group_by("event_id", "access", maintain_order=True)
        .agg(
            pl.col("time", "person", "actor", "source", "outcome", "sensitive").first(),
            pl.col("column").drop_nulls().unique().sort().str.join(", ").alias("columns"),
        )
    )
    columns = ("time", "who", "actor", "access", "columns", "sensitive", "outcome", "rows")
    context = ("src_ip", "client_app", "source", "event_id")
    return _with_event_context(with_who(rows), events).select(*columns, *context).sort("time")


def sensitive_reads(access: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Reads of sensitive data: who, when, which object and column, rows, from where."""
    reads = access.filter((pl.col("access") == "read") & pl.col("sensitive").fill_null(False))
    return (
        _with_event_context(with_who(reads), events)
        .select(
            "time",
            "who",
            "actor",
            "database",
            "object",
            "column",
            "rows",
            "outcome",
            "src_ip",
            "client_app",
            "source",
            "event_id",
        )
        .sort("time")
    )


def failed_attempts(
    events: pl.DataFrame,
    object_pattern: str | None = ".*",
    person: str | None = None,
    start: str | dt.datetime | None = None,
    end: str | dt.datetime | None = None,
    *,
    sensitive_only: bool = False,
) -> pl.DataFrame:
    """Failed events (any category, logins included) within the same filters, with the error."""
    # an ERROR entry that explains another event's failure is that event's evidence, not a
    # second attempt (extra.outcome_of)
    explained = pl.col("extra").str.json_path_match("$.outcome_of").is_not_null()
    failed = filter_access(
        events.filter((pl.col("outcome") == "failure") & ~explained.fill_null(False)),
        object_pattern,
        person,
        start,
        end,
        sensitive_only=sensitive_only,
    )
    columns = ("time", "who", "actor", "source", "category", "action", "object", "outcome")
    context = ("error", "src_ip", "client_app", "statement", "event_id")
    return failed.select(*columns, *context).sort("time")


def exports(access: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Exports of data (dumps, COPY TO, snapshots shared out) with rows and destination."""
    # one row per exported object per statement, whatever the columns
    exported = access.filter(pl.col("access") == "export").unique(
        ["event_id", "object"], keep="first", maintain_order=True
    )
    columns = ("time", "who", "actor", "source", "database", "object", "action", "rows")
    context = ("outcome", "src_ip", "client_app", "statement", "event_id")
    return _with_event_context(with_who(exported), events).select(*columns, *context).sort("time")


def access_by_who_object(access: pl.DataFrame) -> pl.DataFrame:
    """One row per who × object: accesses, kinds, failures, sensitive, first and last time."""
    return (
        with_who(access)
        .group_by("who", "object")
        .agg(
            # statements, not rows: a statement naming three columns is one access
            pl.col("event_id").n_unique().alias("accesses"),
            pl.col("access").drop_nulls().unique().sort().str.join(", ").alias("kinds"),
            pl.col("event_id").filter(pl.col("outcome") == "failure").n_unique().alias("failures"),
            pl.col("sensitive").fill_null(False).any().alias("sensitive"),
            pl.col("time").min().alias("first"),
            pl.col("time").max().alias("last"),
        )
        .sort(["accesses", "who", "object"], descending=[True, False, False], nulls_last=True)
    )


def count_by(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Rows per combination of ``columns``, largest first."""
    return (
        frame.group_by(columns)
        .len("count")
        .sort(["count", *columns], descending=[True, *[False] * len(columns)], nulls_last=True)
    )


def _span_text(times: pl.Series) -> str:
    """'from A to B UTC' for a time column, '' when it has no values."""
    first, last = times.min(), times.max()
    if first is None or last is None:
        return ""
    fmt = "%Y-%m-%d %H:%M"
    return f" from {first.astimezone(dt.UTC):{fmt}} to {last.astimezone(dt.UTC):{fmt}} UTC"


def ingest_summary(
    events: pl.DataFrame, files: pl.DataFrame, quarantine: pl.DataFrame
) -> tuple[str, dict[str, int]]:
    """One line on what was ingested, and its counts (for :func:`write_summary`)."""
    formats = sorted(f for f in files["format"].unique().to_list() if f)
    counts = {
        "files": files.height,
        "events": events.height,
        "quarantined": quarantine.height,
        "sources": events["source"].n_unique(),
    }
    text = (
        f"{counts['events']:,} events from {counts['files']:,} file(s)"
        + (f" ({', '.join(formats)})" if formats else "")
        + _span_text(events["time"])
        + f"; {counts['quarantined']:,} record(s) quarantined."
    )
    return text, counts


def access_summary(
    access: pl.DataFrame, sensitive: pl.DataFrame, failed: pl.DataFrame, exported: pl.DataFrame
) -> tuple[str, dict[str, int]]:
    """One line on who accessed what (filtered access and its sections), and its counts."""
    who = with_who(access)
    counts = {
        "accesses": access["event_id"].n_unique(),
        "people": who["who"].n_unique(),
        "objects": access["object"].drop_nulls().n_unique(),
        "sensitive_reads": sensitive["event_id"].n_unique(),
        "failed": failed["event_id"].n_unique(),
        "exports": exported["event_id"].n_unique(),
    }
    text = (
        f"{counts['accesses']:,} accesses by {counts['people']:,} people or accounts to "
        f"{counts['objects']:,} objects{_span_text(access['time'])}; "
        f"{counts['sensitive_reads']:,} sensitive reads, {counts['failed']:,} failed attempts, "
        f"{counts['exports']:,} exports."
    )
    return text, counts


# --------------------------------------------------------------------------- run and render


def _local_kernel_manager(env: dict[str, str] | None = None) -> type:
    """A kernel manager talking to the kernel over local IPC sockets rather than loopback TCP:
    nothing listens on the network, and the kernel has no reason to warn about it. ``env`` is
    added to the kernel's environment.

    Each kernel's sockets get a unique name in the temp folder: by default they are
    ``kernel-ipc-<n>`` in the current folder, and two runs there at once (a cron job and a
    person, parallel CI jobs) pick the same ``n`` and read each other's messages."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager

    extra_env = dict(env or {})

    class LocalKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            if kwargs["transport"] == "ipc":
                unique = f"auditkit-kernel-{uuid.uuid4().hex[:16]}"
                kwargs.setdefault("ip", os.path.join(tempfile.gettempdir(), unique))
            super().__init__(**kwargs)

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            if extra_env:
                kw["env"] = {**kw.get("env", os.environ), **extra_env}
            return await super()._async_pre_start_kernel(**kw)

    return LocalKernelManager


def run_notebook(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    kernel: str | None = None,
    *,
    env: dict[str, str] | None = None,
) -> Path:
    """Execute ``notebook`` (a path, or the name of a shipped one) with papermill into
    ``output``; raise :class:`ReportError` naming the notebook and the failing cell.

    The kernel runs in the caller's folder, so relative paths in ``parameters`` mean what the
    caller typed; the shipped notebooks also find their default inputs from anywhere. ``env``
    is added to the kernel's environment (e.g. :data:`SINCE_ENV`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook, output = Path(notebook), Path(output)
    if not notebook.is_file():
        try:
            notebook = find_notebook(str(notebook))
        except ReportError:
            raise ReportError(f"{notebook}: no such notebook") from None
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            notebook,
            output,
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=False,
            kernel_manager_class=_local_kernel_manager(env),
        )
    except PapermillExecutionError as exc:
        first_line = next((s for s in exc.source.splitlines() if s.strip()), "").strip()
        reason = (str(exc.evalue).strip().splitlines() or [""])[0]
        raise ReportError(
            f"{notebook.name}: cell In [{exc.exec_count}] ({first_line[:80]}) failed: "
            f"{exc.ename}: {reason}"
        ) from exc
    except Exception as exc:  # kernel missing, bad notebook, I/O: all one-line report errors
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ReportError(f"{notebook.name}: cannot run: {reason}") from exc
    return output


# Lab template minus everything fetched from a CDN (require.js, MathJax, mermaid, widgets), and
# with SVG outputs inlined as markup: nbconvert's own inlining passes SVG through an HTML
# sanitizer that escapes the <svg> element itself. SVG outputs come from vl-convert, which
# escapes the text it draws.
_TEMPLATE_NAME = "auditkit_report.html.j2"
_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block extra_css -%}
<style>
table.auditkit { border-collapse: collapse; font-size: 12px; margin: 0.5em 0; }
table.auditkit th, table.auditkit td { border: 1px solid #ccc; padding: 2px 6px;
  text-align: left; vertical-align: top; }
table.auditkit th { background: #f3f3f3; }
</style>
{%- endblock extra_css -%}
{% block data_svg scoped -%}
<div class="jp-RenderedSVG jp-OutputArea-output {{ extra_class }}" data-mime-type="image/svg+xml">
{{ output.data['image/svg+xml'] | auditkit_svg }}
</div>
{%- endblock data_svg %}
"""


def _inline_svg(svg: str) -> str:
    """SVG markup fit to sit inside HTML: no XML prolog, no scripts."""
    svg = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", svg)
    return re.sub(r"<script\b.*?</script\s*>", "", svg, flags=re.IGNORECASE | re.DOTALL)


def render_html(executed_ipynb: Path, html_path: Path, *, include_input: bool = False) -> Path:
    """Render an executed notebook to one self-contained HTML page (code cells hidden unless
    ``include_input``)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    executed_ipynb, html_path = Path(executed_ipynb), Path(html_path)
    try:
        nb = nbformat.read(executed_ipynb, as_version=4)
    except (OSError, ValueError) as exc:
        raise ReportError(f"{executed_ipynb}: cannot read notebook: {exc}") from exc
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
        exclude_input=not include_input,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        exclude_anchor_links=True,
    )
    exporter.register_filter("auditkit_svg", _inline_svg)
    title = first_heading(nb) or executed_ipynb.stem
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def first_heading(nb: Any) -> str | None:
    """The text of the first markdown heading in a notebook (node or path)."""
    if isinstance(nb, str | Path):
        import nbformat

        nb = nbformat.read(nb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if match := re.match(r"^#{1,6}\s+(.*\S)", line):
                return match.group(1)
    return None


# --------------------------------------------------------------------------- the report site


def build_report(
    paths: list[str],
    out_dir: Path,
    parameters: dict[str, Any] | None = None,
    notebooks: list[str] | None = None,
    *,
    kernel: str | None = None,
    since: str | dt.datetime | None = None,
    until: str | dt.datetime | None = None,
) -> Path:
    """Run each report notebook over ``paths`` into ``out_dir`` and write the index.

    For each notebook name (default: overview, who_accessed_what): ``<name>.ipynb`` (executed),
    ``<name>.html`` and its CSV tables; then ``manifest.json`` and ``index.html``, whose path is
    returned. ``parameters`` go to every notebook that declares them; the time window
    ``since``/``until`` to every notebook, through :func:`load_logs`.
    """
    import papermill

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = resolve_paths(paths)
    parameters = dict(parameters or {})
    sources = [find_notebook(name) for name in (notebooks or DEFAULT_NOTEBOOKS)]

    declared = {src: set(papermill.inspect_notebook(src)) for src in sources}
    unknown = set(parameters) - set().union(*declared.values())
    if unknown:
        raise ReportError(f"no report notebook takes parameter(s): {', '.join(sorted(unknown))}")

    window = {
        key: parsed.isoformat()
        for key, parsed in (("since", parse_time(since)), ("until", parse_time(until, end=True)))
        if parsed is not None
    }
    env = {SINCE_ENV: window.get("since", ""), UNTIL_ENV: window.get("until", "")}
    pages = []
    for src in sources:
        given = {**parameters, "logs": inputs, "output_dir": str(out_dir)}
        own = {k: v for k, v in given.items() if k in declared[src]}
        executed = run_notebook(src, out_dir / f"{src.stem}.ipynb", own, kernel=kernel, env=env)
        page = render_html(executed, out_dir / f"{src.stem}.html")
        summary = _take_summary(out_dir, src.stem)
        pages.append(
            {
                "name": src.stem,
                "page": page.name,
                "title": first_heading(src) or src.stem,
                "summary": summary.get("text", ""),
                "counts": summary.get("counts", {}),
                "parameters": own,
            }
        )

    manifest = write_manifest(out_dir / "manifest.json", inputs, {**parameters, **window}, pages)
    return write_index(out_dir / "index.html", pages, manifest)


def find_notebook(name: str) -> Path:
    """A report notebook by path, or by name (``overview``) in :func:`notebook_dir`."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    candidate = notebook_dir() / f"{path.stem}.ipynb"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in notebook_dir().glob("*.ipynb")))
        raise ReportError(f"no report notebook named {name!r} (known: {known})")
    return candidate


def _take_summary(out_dir: Path, name: str) -> dict[str, Any]:
    """Move the notebook's ``summary.json`` to ``<name>.summary.json`` and return its content;
    notebooks share the folder, so each one's summary is set aside before the next runs."""
    written = out_dir / SUMMARY_FILE
    if not written.is_file():
        return {}
    kept = written.replace(out_dir / f"{name}.summary.json")
    try:
        return json.loads(kept.read_text())
    except ValueError:
        return {}


def input_files(paths: Iterable[str]) -> list[Path]:
    """Every file under ``paths`` (folders walked, hidden entries skipped), sorted, unique."""
    found: set[Path] = set()
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.update(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(x.startswith(".") for x in p.relative_to(path).parts)
            )
        elif path.exists():
            found.add(path)
    return sorted(p.resolve() for p in found)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str | None]:
    """Versions of Python and the packages a report's content depends on."""
    import auditkit

    found: dict[str, str | None] = {
        "auditkit": getattr(auditkit, "__version__", None),
        "python": platform.python_version(),
    }
    for package in ("polars", "sqlglot", "papermill", "nbconvert", "altair", "vl-convert-python"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def write_manifest(
    path: Path,
    inputs: Sequence[str],
    parameters: dict[str, Any],
    pages: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Write ``manifest.json``: what went in (files, SHA-256, sizes), with which parameters and
    versions, when (UTC), and what came out. Returns the manifest."""
    manifest = {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": [str(p) for p in inputs],
        "files": [
            {"path": str(f), "size": f.stat().st_size, "sha256": sha256_file(f)}
            for f in input_files(inputs)
        ],
        "parameters": parameters,
        "versions": versions(),
        "pages": list(pages),
    }
    Path(path).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return manifest


def write_index(path: Path, pages: Sequence[dict[str, Any]], manifest: dict[str, Any]) -> Path:
    """Write ``index.html``: one link per page with its summary, and what the report covers."""
    esc = html.escape
    items = "\n".join(
        f'<li><a href="{esc(p["page"])}">{esc(p["title"])}</a>'
        + (f" — {esc(p['summary'])}" if p.get("summary") else "")
        + "</li>"
        for p in pages
    )
    files = manifest["files"]
    total = sum(f["size"] for f in files)
    body = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>auditkit report</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.5; }}
</style></head>
<body>
<h1>auditkit report</h1>
<ul>
{items}
</ul>
<p><small>{len(files):,} input file(s), {total:,} bytes; generated
{esc(manifest["created_utc"])} by auditkit {esc(str(manifest["versions"].get("auditkit")))}.
Input hashes, parameters and versions: <a href="manifest.json">manifest.json</a>.</small></p>
</body>
</html>
"""
    Path(path).write_text(body, encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------- findings helpers
# Used by the anomalies notebook: frames in, frames or HTML out; the detectors live in
# auditkit.anomalies / auditkit.coverage and run through auditkit.findings.find.

FINDING_EVIDENCE_COLUMNS = ("time", "source", "category", "action", "outcome", "who", "src_ip",
                            "client_app", "database", "object", "rows", "statement", "error",
                            "raw_ref")


def save_table(frame: pl.DataFrame, name: str) -> Path:
    """Write ``<name>.csv`` (lists joined) to :func:`output_dir` without displaying it."""
    path = output_dir() / f"{name}.csv"
    _flat_for_csv(frame).write_csv(path)
    return path


def findings_list(findings: pl.DataFrame) -> pl.DataFrame:
    """Findings for reading: severity, time, detector, who, reason, evidence count."""
    return with_who(findings).select(
        "severity", "time", "detector", "who", "reason",
        evidence=pl.col("event_ids").list.len(),
    )


def findings_summary(
    findings: pl.DataFrame, incidents: pl.DataFrame | None = None
) -> tuple[str, dict[str, int]]:
    """One line on the findings (for :func:`write_summary`), and their counts by severity (and
    incidents, when given)."""
    counts = {name: int((findings["severity"] == name).sum()) for name in ("high", "medium", "low")}
    counts["findings"] = findings.height
    grouped = ""
    if incidents is not None:
        counts["incidents"] = incidents.height
        high = int((incidents["severity"] == "high").sum())
        grouped = f" in {incidents.height:,} incident(s) ({high:,} high)"
    detectors = findings["detector"].n_unique() if findings.height else 0
    text = (
        f"{findings.height:,} findings from {detectors} detector(s){grouped}: "
        f"{counts['high']:,} high, {counts['medium']:,} medium, {counts['low']:,} low"
        + _span_text(findings["time"].drop_nulls())
        + "."
    )
    return text, counts


def show_evidence(
    events: pl.DataFrame,
    findings: pl.DataFrame,
    max_findings: int = 20,
    max_rows: int = 20,
    min_severity: str = "medium",
) -> None:
    """For each of the first ``max_findings`` findings at ``min_severity`` or above: its reason
    as a heading and a table of its evidence events (all evidence rows in
    ``finding_<n>_evidence.csv``)."""
    from IPython.display import HTML, display

    from auditkit.findings import SEVERITY_RANK, evidence

    shown = findings.with_row_index("finding").filter(
        pl.col("severity").replace_strict(SEVERITY_RANK, default=0) >= SEVERITY_RANK[min_severity]
    ).head(max_findings)
    if shown.is_empty():
        display(HTML(f"<p><em>No finding at {html.escape(min_severity)} or above.</em></p>"))
        return
    rows = evidence(events, shown.drop("finding")).pipe(with_who)
    numbered = shown.with_row_index("_n")
    for item in numbered.iter_rows(named=True):  # at most max_findings: display only
        display(HTML(
            f"<h3>{item['_n'] + 1}. [{html.escape(item['severity'])}] "
            f"{html.escape(item['detector'])}</h3><p>{html.escape(item['reason'])}</p>"
        ))
        mine = rows.filter(pl.col("finding") == item["_n"]).select(
            [c for c in FINDING_EVIDENCE_COLUMNS if c in rows.columns]
        )
        show_table(mine, f"finding_{item['_n'] + 1}_evidence", max_rows)


def report_findings(
    events: pl.DataFrame,
    settings: str | None = None,
    *,
    classification: str | None = None,
    baseline_from: str | dt.datetime | None = None,
    baseline_days: float | None = None,
    detect_from: str | dt.datetime | None = None,
    detect_until: str | dt.datetime | None = None,
) -> pl.DataFrame:
    """The findings of the *Anomalies* page: events before ``baseline_from`` ignored, the
    settings file (relative paths as :func:`resolve_paths`) with the page's overrides, and the
    detection window ``detect_from``/``detect_until``, which default to the report window
    (``--since/--until``): the history before it is the baseline, so pass every event."""
    from auditkit import findings as F

    window_from, window_until = report_window()
    detect_from = parse_time(detect_from) or window_from
    detect_until = parse_time(detect_until, end=True) or window_until
    if baseline_from is not None:
        events = events.filter(pl.col("time") >= parse_time(baseline_from))
    options = F.load_settings(resolve_paths(settings)[0] if settings else None)
    if classification is not None:
        options["classification"] = classification
    if baseline_days is not None:
        options["baseline"] = {**options.get("baseline", {}), "days": float(baseline_days)}
    found = F.find(events, options, detect_from=detect_from)
    return found if detect_until is None else found.filter(pl.col("time") < detect_until)


def coverage_summary(
    share: pl.DataFrame, bypass: pl.DataFrame, gaps: pl.DataFrame, silenced: pl.DataFrame
) -> tuple[str, dict[str, int]]:
    """One line on the *Coverage* page (for :func:`write_summary`), and its counts."""
    fronted = share.filter(pl.col("fronted"))
    text = (f"{int(fronted['gateway'].sum()):,} of {int(fronted['statements'].sum()):,} "
            f"statements on gateway-fronted databases went through the gateway; {bypass.height} "
            f"bypass session(s), {gaps.height} gap(s), {silenced.height} audit change(s) "
            "followed by silence")
    return text, {"bypasses": bypass.height, "gaps": gaps.height, "silenced": silenced.height}


def person_summary(
    subject: str, actions: pl.DataFrame, bursts: pl.DataFrame
) -> tuple[str, dict[str, int]]:
    """One line on the *Person timeline* page (for :func:`write_summary`), and its counts."""
    identities = sorted(set(actions["identities"].explode().drop_nulls()))
    text = (f"{subject}: {actions.height:,} actions in {bursts.height:,} bursts, "
            f"{int(actions['through_gateway'].sum()):,} through the gateway, "
            f"identities used: {', '.join(identities) or '-'}")
    return text, {"actions": actions.height, "bursts": bursts.height}
