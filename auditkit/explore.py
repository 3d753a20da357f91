"""Views: an ipywidgets app to explore events in JupyterLab.

    import auditkit
    result = auditkit.load(["sample_logs/"])
    auditkit.explore(result.events)       # filters, timeline, paged table, one event's record

Filters (time range, person or account, object regex, category, outcome, source) drive a
timeline and a table of the matching events; choosing a row shows that event's whole record and
the line of the log file it came from. It stays responsive on millions of events because nothing
is drawn per event: the timeline is counts per time bucket (:func:`auditkit.charts
.activity_timeline`, at most ``max_buckets`` bars per category) and the table shows one page of
``page_size`` rows. Text shown is HTML-escaped and secrets are masked
(:func:`auditkit.report.table_html`).

The filtering itself is :func:`filter_events`, a pure frame -> frame function.

Note: ``auditkit.explore`` is this module's :func:`explore` function; import other names from
``auditkit.explore`` with ``from auditkit.explore import filter_events``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import html
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

PAGE_SIZE = 50
MAX_BUCKETS = 200
MAX_PEOPLE = 1000
"""Suggestions offered by the person box (the busiest first); any name can still be typed."""
RAW_MAX_CHARS = 4000

FILTER_COLUMNS = ("category", "outcome", "source")
TABLE_COLUMNS = (
    "time", "source", "category", "action", "outcome", "person", "actor", "object", "rows",
    "statement", "error", "src_ip", "event_id",
)


def filter_events(
    events: pl.DataFrame,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    person: str | None = None,
    object_pattern: str | None = None,
    category: Sequence[str] = (),
    outcome: Sequence[str] = (),
    source: Sequence[str] = (),
) -> pl.DataFrame:
    """Events with ``since <= time < until``, whose person or account is ``person``, whose
    object matches the regex ``object_pattern``, and whose category, outcome and source are
    among those given (an empty choice means any)."""
    conditions: list[pl.Expr] = []
    if since is not None:
        conditions.append(pl.col("time") >= since)
    if until is not None:
        conditions.append(pl.col("time") < until)
    if person:
        conditions.append((pl.col("person") == person) | (pl.col("actor") == person))
    if object_pattern:
        conditions.append(pl.col("object").str.contains(object_pattern))
    for column, chosen in zip(FILTER_COLUMNS, (category, outcome, source), strict=True):
        if chosen:
            conditions.append(pl.col(column).is_in(list(chosen)))
    if not conditions:
        return events
    return events.filter(pl.all_horizontal(conditions).fill_null(False))


def time_steps(times: pl.Series, max_steps: int = MAX_BUCKETS) -> list[dt.datetime]:
    """Bucket boundaries covering ``times`` (the finest of minute … year giving at most
    ``max_steps`` buckets), first boundary at or before the first time, last after the last."""
    from auditkit.charts import TIME_BUCKETS, pick_bucket

    first, last = times.min(), times.max()
    if first is None or last is None:
        return []
    every = TIME_BUCKETS[pick_bucket(first, last, max_steps)][0]
    bounds = pl.select(
        pl.datetime_range(
            pl.lit(first).dt.truncate(every),
            pl.lit(last).dt.truncate(every).dt.offset_by(every),
            interval=every,
        )
    ).to_series()
    return bounds.to_list()


def raw_line(raw_ref: str | None, max_chars: int = RAW_MAX_CHARS) -> str | None:
    """The line ``raw_ref`` (``file:line``) points to, when the file can be read here; cut to
    ``max_chars``. ``None`` when the file is gone or the line does not exist."""
    if not raw_ref or ":" not in raw_ref:
        return None
    name, _, number = raw_ref.rpartition(":")
    path = Path(name)
    if not number.isdigit() or int(number) < 1 or not path.is_file():
        return None
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            line = next(itertools.islice(handle, int(number) - 1, None), None)
    except OSError:
        return None
    if line is None:
        return None
    line = line.rstrip("\n")
    return line if len(line) <= max_chars else line[:max_chars] + " …"


def record_html(event: dict[str, Any]) -> str:
    """One event as an escaped two-column table (secrets masked), then its source line."""
    from auditkit.redact import redact_text

    def text(value: Any) -> str:
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        return html.escape(redact_text(str(value)) or "") if value is not None else ""

    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td><pre style='white-space: pre-wrap; margin: 0'>"
        f"{text(value)}</pre></td></tr>"
        for name, value in event.items()
    )
    line = raw_line(event.get("raw_ref"))
    source = (
        f"<p><small>As written in {html.escape(str(event.get('raw_ref')))}:</small></p>"
        f"<pre style='white-space: pre-wrap'>{text(line)}</pre>"
        if line is not None
        else "<p><small>The source file is not readable from here.</small></p>"
    )
    return f'<table class="auditkit">{rows}</table>{source}'


def _as_frame(events: Any) -> pl.DataFrame:
    """A DataFrame from a frame, a LazyFrame or a ``ReadResult``."""
    events = getattr(events, "events", events)
    if isinstance(events, pl.LazyFrame):
        events = events.collect()
    if not isinstance(events, pl.DataFrame):
        raise TypeError(f"explore() takes events (a Polars frame), not {type(events).__name__}")
    return events


def _label(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


class Explorer:
    """The explore app's state and widgets; :attr:`widget` is what a notebook displays.

    ``filters`` maps each filter name to its widget; ``matching`` is the filtered frame,
    ``chart`` its timeline (or ``None``), ``page`` the rows shown, ``record`` the chosen event.
    """

    def __init__(
        self,
        events: Any,
        *,
        page_size: int = PAGE_SIZE,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        import ipywidgets as w

        self.events = _as_frame(events).sort("time", nulls_last=True)
        self.page_size, self.max_buckets = page_size, max_buckets
        self.page_number = 0
        self.matching = self.events
        self.chart: Any = None
        self.record: dict[str, Any] | None = None

        steps = time_steps(self.events["time"], max_buckets)
        people = (
            self.events.select(pl.coalesce("person", "actor").alias("who"))
            .drop_nulls()
            .group_by("who")
            .len()
            .sort(["len", "who"], descending=[True, False])
            .head(MAX_PEOPLE)["who"]
            .to_list()
        )
        wide = {"description_width": "initial"}
        self.filters: dict[str, Any] = {
            "time": w.SelectionRangeSlider(
                options=[(_label(s), s) for s in steps] or [("no times", None)],
                index=(0, max(len(steps) - 1, 0)),
                description="time (UTC)",
                continuous_update=False,
                disabled=len(steps) < 2,
                layout=w.Layout(width="95%"),
                style=wide,
            ),
            "person": w.Combobox(
                options=people, placeholder="any person or account", description="person",
                ensure_option=False, continuous_update=False,
            ),
            "object_pattern": w.Text(
                placeholder=r"regex, e.g. ^payments\.", description="object",
                continuous_update=False,
            ),
        }
        for column in FILTER_COLUMNS:
            values = sorted(self.events[column].drop_nulls().unique().to_list())
            self.filters[column] = w.SelectMultiple(
                options=values, rows=min(max(len(values), 1), 6), description=column
            )
        self.status = w.HTML()
        self.chart_output = w.Output()
        self.table = w.HTML()
        self.previous_button = w.Button(description="◀ previous", layout=w.Layout(width="auto"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="auto"))
        self.page_label = w.Label()
        self.chooser = w.Dropdown(description="event", options=[], style=wide,
                                  layout=w.Layout(width="95%"))
        self.record_view = w.HTML()

        for control in self.filters.values():
            control.observe(self._filters_changed, names="value")
        self.previous_button.on_click(lambda _: self.show_page(self.page_number - 1))
        self.next_button.on_click(lambda _: self.show_page(self.page_number + 1))
        self.chooser.observe(lambda change: self.show_event(change["new"]), names="value")

        f = self.filters
        self.widget = w.VBox(
            [
                f["time"],
                w.HBox([f["person"], f["object_pattern"]]),
                w.HBox([f[c] for c in FILTER_COLUMNS]),
                self.status,
                self.chart_output,
                w.HBox([self.previous_button, self.page_label, self.next_button]),
                self.table,
                w.HTML("<b>One event</b> (choose a row of this page):"),
                self.chooser,
                self.record_view,
            ]
        )
        self.apply_filters()

    # ------------------------------------------------------------------ reacting to widgets

    def filter_values(self) -> dict[str, Any]:
        """The filters as :func:`filter_events` keyword arguments."""
        f = self.filters
        since, until = f["time"].value if not f["time"].disabled else (None, None)
        return {
            "since": since,
            "until": until,
            "person": (f["person"].value or "").strip() or None,
            "object_pattern": (f["object_pattern"].value or "").strip() or None,
            **{c: tuple(f[c].value) for c in FILTER_COLUMNS},
        }

    def _filters_changed(self, _change: Any = None) -> None:
        self.apply_filters()

    def apply_filters(self) -> None:
        """Filter, redraw the timeline and show the first page."""
        from auditkit import charts

        try:
            self.matching = filter_events(self.events, **self.filter_values())
            problem = ""
        except pl.exceptions.ComputeError as exc:  # an unfinished or invalid regex
            self.matching = self.events.clear()
            problem = " — object pattern: " + " ".join(str(exc).split())[:200]
        self.status.value = (
            f"<b>{self.matching.height:,}</b> of {self.events.height:,} events match"
            + html.escape(problem)
        )
        self.chart = charts.activity_timeline(self.matching, max_buckets=self.max_buckets)
        self._draw_chart()
        self.show_page(0)

    def _draw_chart(self) -> None:
        """Draw the timeline as SVG (vl-convert, in the kernel): it shows without network and
        without Vega in the browser; altair's default HTML output would fetch Vega from a CDN."""
        import altair as alt
        from IPython.display import HTML, clear_output, display

        with self.chart_output:
            clear_output(wait=True)
            if self.chart is None:
                display(HTML("<em>No events match.</em>"))
            else:
                with alt.renderers.enable("svg"):
                    display(self.chart)

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching.height // self.page_size))

    @property
    def page(self) -> pl.DataFrame:
        """The rows of the matching events shown now."""
        return self.matching.slice(self.page_number * self.page_size, self.page_size)

    def show_page(self, number: int) -> None:
        """Show page ``number`` (from 0, clamped) of the matching events."""
        from auditkit.report import table_html

        self.page_number = min(max(number, 0), self.pages - 1)
        page = self.page
        columns = [c for c in TABLE_COLUMNS if c in page.columns]
        self.table.value = table_html(page.select(columns), max_rows=self.page_size)
        first = self.page_number * self.page_size
        self.page_label.value = (
            f"rows {first + 1:,}–{first + page.height:,} of {self.matching.height:,}"
            if page.height
            else "no rows"
        )
        self.previous_button.disabled = self.page_number == 0
        self.next_button.disabled = self.page_number >= self.pages - 1
        self.chooser.options = [
            (f"{first + i + 1}: {r['time']} {r['actor'] or ''} {r['action'] or ''}", i)
            for i, r in enumerate(page.select("time", "actor", "action").iter_rows(named=True))
        ]  # one page: at most page_size rows
        self.chooser.value = None
        self.show_event(None)

    def show_event(self, row: int | None) -> None:
        """Show the whole record of row ``row`` of the current page (``None``: none)."""
        page = self.page
        if row is None or not 0 <= row < page.height:
            self.record = None
            self.record_view.value = ""
            return
        self.record = page.row(row, named=True)
        self.record_view.value = record_html(self.record)


def explore(events: Any, *, page_size: int = PAGE_SIZE, max_buckets: int = MAX_BUCKETS) -> Any:
    """An ipywidgets app over ``events`` (a frame, LazyFrame or ``ReadResult``); display it in a
    notebook. Its :class:`Explorer` is the returned widget's ``explorer`` attribute."""
    app = Explorer(events, page_size=page_size, max_buckets=max_buckets)
    app.widget.explorer = app
    return app.widget
