"""Bounded-memory ingest of a large PostgreSQL log (stderr, csvlog, jsonlog) into Parquet.

The events, quarantine and counts are exactly those of the in-memory reader (``auditkit.load``),
events in the same (file) order; peak memory depends on the chunk and bucket sizes, not on the
file. Four steps:

1. **Frame in chunks** of about ``chunk_bytes``, cut where framing allows: stderr before an
   entry-start line (``pg_log.is_entry_start``, the rule framing itself cuts records at), csvlog
   between rows outside quotes, jsonlog at a line. Each chunk is framed with the number of its
   first line, so line numbers, ``event_id`` and ``raw_ref`` are those of the whole file.
2. **Spill by process**: framed entries go to one of ``buckets`` spill files by a hash of their
   pid. Every rule after framing (DETAIL/STATEMENT folding, sessions and their ``pid<pid>.<n>``
   numbering, outcome correlation, statement groups) looks only within one process, so a bucket
   holds everything its entries need.
3. **Map each bucket** with the source's own mapping (``entries_to_events``), enrichment (SQL
   analyses shared between buckets) and identity map, and spill its events to *windows* of
   consecutive lines (about ``merge_rows`` events each).
4. **Merge**: each window is read, sorted by line and handed to Polars' streaming
   ``sink_parquet`` through an IO-source generator, so the output is in file order. (Polars'
   streaming ``merge_sorted`` and ``sort`` held most of the data in memory when tried.)

Chunks are framed, and buckets mapped, in ``workers`` threads. ``tests/test_stream.py`` checks
the equivalence with tiny chunks, buckets and windows.

Example::

    from auditkit.stream import ingest, streamable
    if streamable(path):
        result = ingest(path, "events.parquet")   # ReadResult without events
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import polars as pl

from auditkit.schema import QUARANTINE_SCHEMA, conform
from auditkit.sources import (
    FILE_SUMMARY_SCHEMA,
    HEAD_BYTES,
    UTF8_BOM,
    FileContext,
    ReadResult,
    detect_format,
    pg_log,
    pgaudit,
    postgres,
)

STREAM_BYTES = int(os.environ.get("AUDITKIT_STREAM_BYTES", 64 * 2**20))
"""Files at least this large (uncompressed, estimated for gzip) are ingested in chunks."""
CHUNK_BYTES = 4 * 2**20
"""Bytes of log framed at a time."""
BUCKET_BYTES = 4 * 2**20
"""Bytes of log per process bucket (the unit mapped and enriched at a time)."""
WORKERS = max(1, min(2, os.cpu_count() or 1))
"""Threads framing chunks (and mapping buckets) at once."""
MAX_BUCKETS = 64  # a merge window is read as one piece per bucket
MERGE_ROWS = 16_384  # events per merge window (about 8 MB)
GZIP_RATIO = 8  # a gzip file's size is multiplied by this to guess its log's size
CONTAINERS = ("stderr", "csvlog", "jsonlog")
TO_EVENTS: dict[str, Callable[[pl.DataFrame, FileContext], pl.DataFrame]] = {
    "pgaudit": pgaudit.entries_to_events,
    "postgres": postgres.entries_to_events,
}
_BUCKET_SEED = 20261126


class NotStreamable(Exception):
    """The file needs the in-memory reader (a csvlog the fast reader rejects, say)."""


@dataclass
class Plan:
    """What ``streamable`` found out about a file: its format, container and log prefix."""

    format: str
    container: str
    prefix: str | None  # the log_line_prefix chosen (stderr), as the in-memory reader would
    prefix_note: str | None


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"  # by magic number, as ``sources.read_bytes``


def _open(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it is gzip."""
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")  # type: ignore


def _estimated_size(path: Path) -> int:
    return path.stat().st_size * (GZIP_RATIO if _is_gzip(path) else 1)


def plan(path: str | Path, format: str | None = None, pg_prefix: str | None = None
         ) -> Plan | None:
    """How the file would stream, or None when it is not a PostgreSQL log this path handles."""
    path = Path(path)
    with _open(path) as stream:
        head = stream.read(max(HEAD_BYTES, 1 << 20))
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    if not head.strip():
        return None
    try:
        name = format or detect_format(head[:HEAD_BYTES], str(path))
    except Exception:  # noqa: BLE001 - undetected: the in-memory reader reports it
        return None
    if name not in TO_EVENTS:
        return None
    text = head.decode("utf-8", errors="replace")
    container = pg_log.detect_container(text[:65536].encode())
    if container not in CONTAINERS:
        return None
    if container != "stderr":
        return Plan(name, container, None, None)
    # the in-memory reader chooses the prefix from the file's first 400 lines
    lines = text.split("\n")
    if len(lines) <= 400 and len(head) == max(HEAD_BYTES, 1 << 20):
        return None  # 400 lines longer than 1 MB: not worth a special case
    first = [line.removesuffix("\r") if "\r" in text else line for line in lines[:400]]
    preset, chosen = pg_log.choose_prefix(first, pg_prefix)
    note = None if pg_prefix is not None else (
        f"log_line_prefix recognised as {preset!r}: {chosen!r}"
    )
    return Plan(name, container, chosen, note)


def streamable(path: str | Path, format: str | None = None, threshold: int | None = None
               ) -> bool:
    """Whether ``path`` is a PostgreSQL log big enough to be ingested in chunks."""
    path = Path(path)
    if not path.is_file() or path.suffix == ".parquet":
        return False
    if _estimated_size(path) < (STREAM_BYTES if threshold is None else threshold):
        return False
    return plan(path, format) is not None


# ------------------------------------------------------------------------------ chunking


def _cut_at_line(buffer: bytes) -> int:
    return buffer.rfind(b"\n") + 1


def _cut_outside_quotes(buffer: bytes) -> int:
    """End of the last csv row: a newline with an even number of quotes before it (the
    buffer starts at a row start; a doubled quote counts two, so parity is exact)."""
    quotes = buffer.count(b'"')
    end = len(buffer)
    while True:
        newline = buffer.rfind(b"\n", 0, end)
        if newline < 0:
            return 0
        quotes -= buffer.count(b'"', newline, end)
        if quotes % 2 == 0:
            return newline + 1
        end = newline


def _cut_before_entry(head_re: str) -> Callable[[bytes], int]:
    """Start of the last complete line that starts an entry (never the buffer's first line)."""

    def cut(buffer: bytes) -> int:
        last = buffer.rfind(b"\n")  # lines after the last newline may be incomplete
        window = 64
        while last > 0:
            begin = last
            for _ in range(window):
                begin = buffer.rfind(b"\n", 0, begin)
                if begin < 0:
                    break
            begin += 1  # start of the first line looked at (0 when the buffer's start)
            raw_lines = buffer[begin:last].split(b"\n")
            lines = [line.decode("utf-8", errors="replace") for line in raw_lines]
            starts = pl.DataFrame(
                {"text": pl.Series(lines, dtype=pl.String).str.strip_suffix("\r")}
            ).select(pg_log.is_entry_start(head_re)).to_series()
            offsets = [begin]
            for line in raw_lines[:-1]:
                offsets.append(offsets[-1] + len(line) + 1)
            for index in range(len(lines) - 1, -1, -1):
                if starts[index] and offsets[index] > 0:
                    return offsets[index]
            if begin == 0:
                return 0
            last, window = begin - 1, window * 4
        return 0

    return cut


def _raw_chunks(stream: BinaryIO, chunk_bytes: int, cut: Callable[[bytes], int]
                ) -> Iterator[bytes]:
    """Pieces of the stream, each ending where ``cut`` allows (the last one at the end)."""
    carry = b""
    while True:
        block = stream.read(chunk_bytes)
        if not block:
            if carry:
                yield carry
            return
        buffer = carry + block if carry else block
        end = cut(buffer)
        if end <= 0:
            carry = buffer  # no cut yet: read on
            continue
        carry = buffer[end:]
        yield buffer[:end]


# ------------------------------------------------------------------------------ the pipeline


@dataclass
class _Chunk:
    entries: pl.DataFrame  # stderr: entries before folding (``record`` numbers them)
    quarantine: pl.DataFrame
    records: int
    lines: int  # lines the chunk holds (csvlog: as its rows count them)
    width: int | None = None  # csvlog: columns per row (the whole file's must agree)

    def shift(self, lines: int) -> None:
        """Number the chunk's lines (and stderr records) from line ``lines + 1`` of the file."""
        if not lines:
            return
        shifted = [c for c in ("line", "record") if c in self.entries.columns]
        self.entries = self.entries.with_columns(pl.col(c) + lines for c in shifted)
        self.quarantine = self.quarantine.with_columns(pl.col("line") + lines)


def _frame(container: str, text: str, display: str, prefix: str | None) -> _Chunk:
    """Frame one chunk, its lines numbered from 1 (``_Chunk.shift`` places it in the file)."""
    if container == "stderr":
        assert prefix is not None
        lines = pg_log.split_lines(text)
        fields, quarantine = pg_log.frame_lines(lines, display, prefix)
        # records are numbered by their first line: unique across chunks once shifted; `more`
        # (continuation text) is already in the message and chunks must share one schema
        fields = fields.drop("more", strict=False).with_columns(record=pl.col("line"))
        return _Chunk(fields, quarantine, fields.height + quarantine.height, lines.height)
    if container == "jsonlog":
        framed = pg_log.jsonlog_entries(text, display)
        count = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        return _Chunk(framed.entries, framed.quarantine, framed.records, count)
    rows = pg_log.csvlog_rows(text.encode(), display)
    if not isinstance(rows, tuple):
        raise NotStreamable("csvlog rejected by the fast reader")
    framed, next_line, width = rows
    return _Chunk(framed.entries, framed.quarantine, framed.records, next_line - 1, width)


def _bucket_of(frame: pl.DataFrame, buckets: int) -> pl.Expr:
    if "pid" not in frame.columns:  # a prefix without %p: one process as far as rules go
        return pl.lit(0, pl.UInt64)
    return pl.col("pid").cast(pl.String).fill_null("").hash(seed=_BUCKET_SEED) % buckets


@dataclass
class _Spill:
    """One append-only file per bucket holding Arrow IPC pieces (one per chunk or bucket)."""

    folder: Path
    buckets: int

    def __post_init__(self) -> None:
        self.pieces: list[list[tuple[int, int]]] = [[] for _ in range(self.buckets)]
        self.sizes = [0] * self.buckets

    def path(self, bucket: int) -> Path:
        return self.folder / f"bucket-{bucket:04d}.arrows"

    def add(self, frame: pl.DataFrame) -> None:
        """Append the rows of ``frame`` to their processes' buckets."""
        if not frame.height:
            return
        keyed = frame.with_columns(_bucket=_bucket_of(frame, self.buckets))
        for (bucket,), part in keyed.partition_by(
            "_bucket", include_key=False, maintain_order=True, as_dict=True
        ).items():
            self.append(bucket, part)

    def append(self, bucket: int, frame: pl.DataFrame) -> None:
        """Append ``frame`` to ``bucket`` as one piece."""
        sink = io.BytesIO()
        frame.write_ipc_stream(sink, compression="uncompressed")
        data = sink.getvalue()
        with self.path(bucket).open("ab") as f:
            f.write(data)
        self.pieces[bucket].append((self.sizes[bucket], len(data)))
        self.sizes[bucket] += len(data)

    def iter_pieces(self, bucket: int) -> Iterator[pl.DataFrame]:
        """The bucket's pieces in order, one read at a time; the file is removed at the end."""
        with self.path(bucket).open("rb") as f:
            for start, size in self.pieces[bucket]:
                f.seek(start)
                yield pl.read_ipc_stream(io.BytesIO(f.read(size)))
        self.path(bucket).unlink()

    def read(self, bucket: int) -> pl.DataFrame | None:
        """The whole bucket, or None when it is empty."""
        if not self.pieces[bucket]:
            return None
        frames = list(self.iter_pieces(bucket))
        return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]


def _decode(data: bytes, first_line: int, first_byte: int) -> tuple[str, str | None]:
    """As ``sources._decode``, with the note's line and byte counted from the file's start."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        return data.decode("utf-8", errors="replace"), (
            f"invalid UTF-8 replaced by U+FFFD (first at line {line}, byte "
            f"{first_byte + exc.start}); the log is probably in the server's locale encoding"
        )





@dataclass
class _Framed:
    spill: _Spill
    quarantines: list[pl.DataFrame]
    records: int
    lines: int
    digest: str
    decode_note: str | None


@dataclass
class _Mapped:
    events: pl.DataFrame
    orphans: pl.DataFrame | None
    folded: int
    unreadable: int


def _in_order(work: Callable, items, workers: int) -> Iterator:
    """``work`` over ``items`` in ``workers`` threads (Polars releases the GIL), results in
    order, at most ``workers`` in flight (memory)."""
    if workers <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            while len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _frame_file(path: Path, container: str, prefix: str | None, display: str, chunk_bytes: int,
                cut: Callable[[bytes], int], spill: _Spill, workers: int,
                progress: Callable[[int], object]) -> _Framed:
    """Frame the file chunk by chunk into ``spill`` (by process), hashing it on the way;
    ``progress`` is told the bytes read."""
    sha = hashlib.sha256()
    physical, offset = 1, 0
    decode_note: str | None = None

    def texts() -> Iterator[str]:
        nonlocal physical, offset, decode_note
        with _open(path) as stream:
            for index, data in enumerate(_raw_chunks(stream, chunk_bytes, cut)):
                if index == 0 and data.startswith(UTF8_BOM):
                    data = data[len(UTF8_BOM):]
                sha.update(data)
                text, note = _decode(data, physical, offset)
                decode_note = decode_note or note
                physical += data.count(b"\n")
                offset += len(data)
                progress(len(data))
                del data
                yield text

    quarantines: list[pl.DataFrame] = []
    records = lines = 0
    widths: set[int] = set()
    for chunk in _in_order(lambda text: _frame(container, text, display, prefix), texts(),
                           workers):
        if chunk.width is not None:
            widths.add(chunk.width)
            if len(widths) > 1:  # the whole file would go to the row-by-row reader
                raise NotStreamable("csvlog rows of different widths")
        chunk.shift(lines)
        lines += chunk.lines
        records += chunk.records
        if chunk.quarantine.height:
            quarantines.append(chunk.quarantine)
        spill.add(chunk.entries)
        del chunk
    return _Framed(spill, quarantines, records, lines, sha.hexdigest()[:12], decode_note)


class _NoBar:
    n = total = 0

    def update(self, n: float) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(shown: bool, size: int, display: str):
    """A progress bar over the file's (estimated) bytes: framing is the first half of the work,
    mapping the next 40%, the merge the rest."""
    if not shown:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=size, unit="B", unit_scale=True, desc=f"ingest {Path(display).name}",
                leave=False)


def ingest(
    path: str | Path,
    output: str | Path,
    *,
    format: str | None = None,
    pg_prefix: str | None = None,
    tz: str = "UTC",
    tz_abbrevs: dict[str, str] | None = None,
    classification=None,
    identity_map: dict[str, str] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    bucket_bytes: int = BUCKET_BYTES,
    merge_rows: int = MERGE_ROWS,
    workers: int = WORKERS,
    display: str | None = None,
    progress: bool = False,
) -> ReadResult:
    """Ingest one PostgreSQL log into ``output`` (Parquet) in bounded memory.

    Returns the per-file summary, quarantine and notes (``events`` is empty: they are in
    ``output``). Raises ``NotStreamable`` when the file needs the in-memory reader (which then
    writes ``output`` again: it may have been started).
    """
    from auditkit.classify import load_classification
    from auditkit.enrich import enrich
    from auditkit.identity import apply_identity_map

    path = Path(path)
    found = plan(path, format, pg_prefix)
    if found is None:
        raise NotStreamable(f"{path}: not a PostgreSQL stderr, csvlog or jsonlog file")
    display = display or str(path)
    classification = load_classification(classification)
    buckets = max(1, min(MAX_BUCKETS, math.ceil(_estimated_size(path) / bucket_bytes)))
    to_events = TO_EVENTS[found.format]
    container = found.container
    cut = {
        "stderr": _cut_before_entry(pg_log.head_regex(found.prefix or "")),
        "csvlog": _cut_outside_quotes,
        "jsonlog": _cut_at_line,
    }[container]

    try:
        with tempfile.TemporaryDirectory(prefix="auditkit-") as tmp:
            folder = Path(tmp)
            bar = _progress_bar(progress, _estimated_size(path), display)
            framed = _frame_file(path, container, found.prefix, display, chunk_bytes, cut,
                                 _Spill(folder, buckets), workers,
                                 lambda n: bar.update(n * 0.5))
            quarantines = framed.quarantines
            ctx = FileContext(path=str(path), display=display, digest=framed.digest,
                              pg_prefix=pg_prefix, tz=tz, tz_abbrevs=dict(tz_abbrevs or {}))
            analyses: dict = {}  # SQL analysis, shared by the buckets

            def map_bucket(bucket: int) -> _Mapped | None:
                entries = framed.spill.read(bucket)
                if entries is None:
                    return None
                orphans = None
                if container == "stderr":
                    entries, orphans = pg_log.fold_aux_lines(entries, display)
                folded = entries.height
                events, bad_times = postgres.map_processes(
                    entries, ctx, lambda e: to_events(e, ctx)
                )
                del entries
                events = conform(events.drop([c for c in events.columns if c.startswith("_")]))
                events = enrich(events, classification, analyses)
                if identity_map:
                    events = apply_identity_map(events, identity_map)
                # event ids are `<digest>:<line>`: the merge key of the file order
                events = events.with_columns(
                    _line=pl.col("event_id").str.slice(len(framed.digest) + 1).cast(pl.Int64)
                )
                return _Mapped(events, orphans, folded, bad_times)

            # events go to windows of consecutive lines holding about `merge_rows` events each;
            # a window's pieces (one per bucket) are then read, sorted and written in order
            lines_per_window = max(1, framed.lines * merge_rows // max(1, framed.records))
            windows = _Spill(folder / "windows", framed.lines // lines_per_window + 1)
            windows.folder.mkdir()
            schema: dict[str, pl.DataType] | None = None
            events_written = unreadable = folded_entries = 0
            first_time = last_time = None
            for mapped in _in_order(map_bucket, range(buckets), workers):
                if mapped is None:
                    continue
                if mapped.orphans is not None and mapped.orphans.height:
                    quarantines.append(mapped.orphans)
                folded_entries += mapped.folded  # stderr: entries once aux lines are folded
                unreadable += mapped.unreadable
                events = mapped.events
                times = events.get_column("time")
                low, high = times.min(), times.max()
                if low is not None:
                    first_time = low if first_time is None else min(first_time, low)
                    last_time = high if last_time is None else max(last_time, high)
                events_written += events.height
                schema = schema or dict(events.schema)
                for (window,), part in events.with_columns(
                    _window=(pl.col("_line") - 1) // lines_per_window
                ).partition_by("_window", include_key=False, maintain_order=True,
                               as_dict=True).items():
                    windows.append(window, part)
                bar.update(bar.total * 0.4 / buckets)
                del events, mapped
            _write_merged(windows, schema, Path(output), merge_rows)
            bar.update(bar.total - bar.n)
            bar.close()
    except pl.exceptions.PolarsError as exc:
        # whatever the in-memory reader makes of the file (an error with its position, or
        # the slow paths) is the answer: hand it over
        raise NotStreamable(f"{path}: {exc}") from exc

    records = framed.records
    decode_note = framed.decode_note
    quarantine = (
        pl.concat(quarantines, how="vertical_relaxed").sort("line", maintain_order=True)
        if quarantines else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    quarantine = conform(quarantine.with_columns(file=pl.lit(display)), QUARANTINE_SCHEMA)
    quarantine = quarantine.with_columns(format=pl.lit(found.format))
    notes: list[str] = []
    if found.prefix_note:
        notes.append(found.prefix_note)
    if container == "stderr":
        records = folded_entries + quarantine.height
        notes.extend(pg_log.prefix_mismatch_note(quarantine.height, folded_entries,
                                                 found.prefix or ""))
    if unreadable:
        notes.append(f"{unreadable} entries with an unreadable time")
    if decode_note:
        notes.append(decode_note)
    summary = pl.DataFrame(
        [{
            "path": str(path), "format": found.format, "records": records,
            "events": events_written, "quarantined": quarantine.height,
            "first_time": first_time, "last_time": last_time,
        }],
        schema=FILE_SUMMARY_SCHEMA,
    )
    return ReadResult(
        events=pl.DataFrame(), quarantine=quarantine, files=summary,
        notes=[f"{path}: {note}" for note in notes],
    )


def _merged(spill: _Spill) -> Iterator[pl.DataFrame]:
    """The events of each window of lines, in line order, a window at a time."""
    for window in range(spill.buckets):
        events = spill.read(window)
        if events is not None:
            yield events.sort("_line")


def _write_merged(
    spill: _Spill, schema: dict[str, pl.DataType] | None, output: Path, rows: int
) -> None:
    """Write the buckets' events, merged into file order, to ``output`` without holding them:
    the merge is a Python source the streaming engine sinks window by window."""
    from polars.io.plugins import register_io_source

    from auditkit.enrich import enrich
    from auditkit.schema import empty_events

    output.parent.mkdir(parents=True, exist_ok=True)
    if schema is None:
        enrich(empty_events()).write_parquet(output)
        return

    def source(with_columns, predicate, n_rows, batch_size) -> Iterator[pl.DataFrame]:
        for window in _merged(spill):
            if with_columns is not None:
                window = window.select(with_columns)
            if predicate is not None:
                window = window.filter(predicate)
            yield window

    merged = register_io_source(source, schema=schema)
    merged.drop("_line").sink_parquet(output, engine="streaming", row_group_size=rows)
