"""Sources: one module per log format, registered here.

A source knows one format and nothing downstream of the event schema. To add a format, write
``auditkit/sources/myformat.py`` with a detection rule, a reader and a mapping, then import it at
the bottom of this file::

    import polars as pl
    from auditkit.sources import FileContext, Parsed, Source, register

    MAPPING = {                                  # schema column -> expression over raw fields
        "time": pl.col("ts").str.to_datetime(time_zone="UTC"),
        "actor": pl.col("user"),
        "action": pl.col("cmd").str.to_uppercase(),
        "category": pl.lit("read"),
    }

    def detect(head: bytes) -> bool:             # content sniffing, never the file name
        return head.lstrip().startswith(b'{"myformat":')

    def read(text: str, ctx: FileContext) -> Parsed:
        raw = pl.read_ndjson(text.encode())      # the format's raw fields
        events = raw.select(**MAPPING, source=pl.lit("myformat"), layer=pl.lit("workflow"),
                            raw_ref=pl.lit(ctx.display) + ":" + (pl.int_range(pl.len()) + 1)
                            .cast(pl.String))
        return Parsed(events=events, records=raw.height)

    register(Source("myformat", "My engine's audit JSON", detect, read,
                    example="SET GLOBAL my_audit = ON"))

``auditkit.read(paths)`` walks files and folders, opens ``.gz``, detects each file's format
(``format=`` overrides), runs the reader and concatenates the results, keeping per-file counts:
every record becomes an event or a quarantined row (file, line, reason).

A format whose files are often many and small (CloudTrail writes one per account, region and
five minutes, GCP sinks and Azure exports one per hour) can also register
``read_batch(contents, ctxs) -> BatchParsed``: the loop then hands it runs of consecutive files of
that format (up to ``BATCH_BYTES``) to parse in one Polars pass, with the same per-file results as
``read`` on each; per-call costs are paid per batch. A batch reader gets each file as UTF-8
*bytes* (BOM removed, invalid bytes already replaced with a note), which Polars reads as they are:
an ASCII file is never decoded to ``str`` and encoded back; the file's digest is left empty for
the reader to compute when it needs one (``with_digests``). ``per_file``, ``batch_quarantine`` and
``read_alone`` (``read`` as a batch of one) are the pieces batch readers share. Small files are
loaded ahead in a background thread while the previous batch is parsed (``prefetched``).
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import polars as pl
from zlib_ng import zlib_ng

from auditkit.errors import InputError, UnknownFormatError
from auditkit.schema import (
    EVENT_SCHEMA,
    QUARANTINE_SCHEMA,
    conform,
    empty_events,
    empty_quarantine,
)

HEAD_BYTES = 64 * 1024
# text per batch: amortises per-call costs, bounds memory; below glibc's largest mmap threshold
# (32 MB), so that a batch's joined text reuses freed heap instead of faulting in fresh pages
# (a 1,000-file CloudTrail folder: 75,000 page faults at 32 MB, 30,000 at 24 MB)
BATCH_BYTES = 24 * 1024 * 1024
PREFETCH_BYTES = 32 * 1024 * 1024  # content loaded ahead of the parser (estimated for gzip)
PREFETCH_MAX_SIZE = 4 * 1024 * 1024  # on disk: larger files are loaded when their turn comes
GZIP_RATIO = 8  # a gzip file's content, estimated from its size (CloudTrail: ~9x)
BATCH_FILE = "batch_file"  # a batch reader's column: the file's index in the batch
UNREADABLE = "unreadable"  # the format of a file found in a folder that could not be read
FILE_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String(),
    "format": pl.String(),
    "records": pl.Int64(),
    "events": pl.Int64(),
    "quarantined": pl.Int64(),
    "first_time": EVENT_SCHEMA["time"],
    "last_time": EVENT_SCHEMA["time"],
}


@dataclass(frozen=True)
class FileContext:
    """What a reader knows about the file it reads and the user's options."""

    path: str  # as given by the user (or found under a folder)
    display: str  # the short name used in raw_ref and the quarantine
    # first 12 hex of the file's SHA-256 (``file_digest``), for stable event ids; empty for a
    # file handed to a batch reader, which hashes the file itself when a record needs an id
    digest: str
    pg_prefix: str | None = None
    tz: str = "UTC"
    tz_abbrevs: dict[str, str] = field(default_factory=dict)


@dataclass
class Parsed:
    """A reader's answer for one file: events, quarantined rows and the record count."""

    events: pl.DataFrame
    records: int
    quarantine: pl.DataFrame = field(default_factory=empty_quarantine)
    notes: list[str] = field(default_factory=list)


@dataclass
class BatchParsed:
    """A batch reader's answer for several files, as ``read`` would give for each in turn.

    ``events`` and ``quarantine`` hold the files' rows in file order, each with a ``BATCH_FILE``
    column (the file's 0-based index in the batch); ``records`` and ``notes`` are per file.
    """

    events: pl.DataFrame
    quarantine: pl.DataFrame
    records: list[int]
    notes: list[list[str]]


@dataclass(frozen=True)
class Source:
    """A registered format."""

    name: str
    description: str
    detect: Callable[[bytes], bool]
    read: Callable[[str, FileContext], Parsed]
    example: str = ""
    layer: str = "workflow"
    priority: int = 50  # detection order: lower first (specific formats before general ones)
    # optional: parse many files of this format at once (see the module docstring)
    read_batch: Callable[[Sequence[bytes], Sequence[FileContext]], BatchParsed] | None = None


REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add a format to the registry; detection tries formats by ``priority``."""
    REGISTRY[source.name] = source
    return source


def get_source(name: str) -> Source:
    """The registered format called ``name``, or a clear error listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise UnknownFormatError(name, f"unknown format; known formats: {known}") from None


@dataclass
class ReadResult:
    """Events from many files, the quarantined rows, and one summary row per file."""

    events: pl.DataFrame
    quarantine: pl.DataFrame
    files: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def iter_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders (recursively, sorted, hidden files skipped) into files."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and p.suffix.lower() not in {".md", ".txt.md"}
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(str(path), "no such file or folder")
    return found


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it is gzip (by magic number, not by name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:  # permissions, a file gone since the folder was listed, I/O errors
        raise InputError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    if data[:2] == b"\x1f\x8b":
        # one zlib-ng call (2.5x zlib's speed) for the usual single, sound member; the gzip
        # module for the rest (several members, trailing bytes) and to word a corrupt file's error
        single = zlib_ng.decompressobj(wbits=31)
        try:
            content = single.decompress(data)
            if single.eof and not single.unused_data:
                return content
        except zlib_ng.error:
            pass
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(str(path), f"corrupt gzip data ({exc})") from None
    return data


def detect_format(head: bytes, path: str = "<bytes>") -> str:
    """The first registered format whose detector accepts ``head``."""
    for source in sorted(REGISTRY.values(), key=lambda s: s.priority):
        if source.detect(head):
            return source.name
    raise UnknownFormatError(
        path,
        "format not recognised from its content; pass --format "
        f"({', '.join(REGISTRY)}) or check the file",
        position="1",
    )


def read_file(
    path: Path,
    *,
    format: str | None = None,
    pg_prefix: str | None = None,
    tz: str = "UTC",
    tz_abbrevs: dict[str, str] | None = None,
    display: str | None = None,
) -> tuple[str, Parsed]:
    """Read one file: returns the format used and the reader's answer.

    An empty (or whitespace-only) file has format ``empty`` and no records.
    """
    loaded = load_file(
        path, format=format, pg_prefix=pg_prefix, tz=tz, tz_abbrevs=tz_abbrevs, display=display
    )
    if loaded is None:
        return "empty", empty_file()
    return loaded.format, parse_file(loaded)


@dataclass
class LoadedFile:
    """A file read, gunzipped, detected and decoded: what its reader needs."""

    format: str
    content: str | bytes  # the text; UTF-8 bytes for a format with a batch reader
    ctx: FileContext
    decode_note: str | None = None

    @property
    def text(self) -> str:
        """The content as text (decoded here when it is bytes)."""
        return self.content if isinstance(self.content, str) else self.content.decode()

    @property
    def data(self) -> bytes:
        """The content as UTF-8 bytes (encoded here when it is text)."""
        return self.content if isinstance(self.content, bytes) else self.content.encode()


def empty_file() -> Parsed:
    """The answer for an empty (or whitespace-only) file."""
    return Parsed(events=empty_events(), records=0, notes=["empty file"])


def file_digest(data: bytes) -> str:
    """The first 12 hex digits of the SHA-256 of a file's bytes (gunzipped, BOM removed)."""
    return hashlib.sha256(data).hexdigest()[:12]


def file_column(index: int) -> pl.Expr:
    """The ``BATCH_FILE`` column of one file's rows in a batch."""
    return pl.lit(index, dtype=pl.Int64).alias(BATCH_FILE)


def per_file(values: Sequence[str]) -> pl.Expr:
    """One value per file of a batch (by file index), on each row of that file (``BATCH_FILE``)."""
    return pl.lit(pl.Series(values, dtype=pl.String)).gather(pl.col(BATCH_FILE))


def batch_quarantine(
    rows: pl.DataFrame, ctxs: Sequence[FileContext], format: str,
    *, line: str = "_pos", reason: str = "_reason", raw: str = "_raw",
) -> pl.DataFrame:
    """A batch's rejected rows as quarantine rows (``QUARANTINE_SCHEMA`` and ``BATCH_FILE``)."""
    return rows.select(
        file=per_file([ctx.display for ctx in ctxs]),
        line=pl.col(line),
        format=pl.lit(format),
        reason=pl.col(reason),
        raw=pl.col(raw),
        **{BATCH_FILE: pl.col(BATCH_FILE)},
    ).cast({**QUARANTINE_SCHEMA, BATCH_FILE: pl.Int64})


def read_alone(
    read_batch: Callable[[Sequence[bytes], Sequence[FileContext]], BatchParsed],
    text: str,
    ctx: FileContext,
) -> Parsed:
    """One file read by a batch reader, as a reader's ``Parsed`` (a batch of one)."""
    batch = read_batch([text.encode()], [ctx])
    return Parsed(
        events=batch.events.drop(BATCH_FILE),
        records=batch.records[0],
        quarantine=batch.quarantine.drop(BATCH_FILE),
        notes=batch.notes[0],
    )


def with_digests(ctxs: Sequence[FileContext], contents: Sequence[bytes]) -> list[FileContext]:
    """The contexts with a digest each: a batch reader's files come without one (the loader
    leaves hashing to readers that need it), hashed here from the bytes handed on."""
    return [
        ctx if ctx.digest else replace(ctx, digest=file_digest(content))
        for ctx, content in zip(ctxs, contents, strict=True)
    ]


def load_file(
    path: Path,
    *,
    format: str | None = None,
    pg_prefix: str | None = None,
    tz: str = "UTC",
    tz_abbrevs: dict[str, str] | None = None,
    display: str | None = None,
) -> LoadedFile | None:
    """Read, gunzip, detect and decode one file; None when it is empty or whitespace-only."""
    data = read_bytes(path)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    if not data.strip():
        return None
    name = format or detect_format(data[:HEAD_BYTES], str(path))
    batch_reader = get_source(name).read_batch is not None
    digest = "" if batch_reader else file_digest(data)
    content: str | bytes
    if batch_reader and data.isascii():  # valid as it is: no decode
        content, decode_note = data, None
    else:
        content, decode_note = _decode(data)
        if batch_reader and decode_note:  # the bytes read differ from the bytes handed on
            content, digest = content.encode(), file_digest(data)
        elif batch_reader:
            content = data
    del data  # the content is all readers need: do not hold the file twice
    ctx = FileContext(
        path=str(path),
        display=display or str(path),
        digest=digest,
        pg_prefix=pg_prefix,
        tz=tz,
        tz_abbrevs=dict(tz_abbrevs or {}),
    )
    return LoadedFile(name, content, ctx, decode_note)


def parse_file(loaded: LoadedFile) -> Parsed:
    """Run the file's reader; its answer conformed to the schemas, errors naming the file."""
    try:
        parsed = get_source(loaded.format).read(loaded.text, loaded.ctx)
    except InputError:
        raise
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            loaded.ctx.path, f"cannot be read as {loaded.format}: {first}"
        ) from exc
    parsed.events = conform(parsed.events)
    parsed.quarantine = conform(parsed.quarantine, QUARANTINE_SCHEMA)
    if loaded.decode_note:
        parsed.notes.append(loaded.decode_note)
    return parsed


def parse_batch(batch: Sequence[LoadedFile]) -> BatchParsed | None:
    """Run the batch reader of the files' (one) format, conformed and keeping ``BATCH_FILE``;
    None when any file fails, so that the caller reads each alone and the error names it."""
    source = get_source(batch[0].format)
    assert source.read_batch is not None and all(f.format == source.name for f in batch)
    try:
        answer = source.read_batch([f.data for f in batch], [f.ctx for f in batch])
    except (InputError, pl.exceptions.PolarsError):
        return None
    answer.events = conform(answer.events).with_columns(
        answer.events.get_column(BATCH_FILE).cast(pl.Int64)
    )
    answer.quarantine = conform(answer.quarantine, QUARANTINE_SCHEMA).with_columns(
        answer.quarantine.get_column(BATCH_FILE).cast(pl.Int64)
    )
    for notes, loaded in zip(answer.notes, batch, strict=True):
        if loaded.decode_note:
            notes.append(loaded.decode_note)
    return answer


UTF8_BOM = b"\xef\xbb\xbf"


def _decode(data: bytes) -> tuple[str, str | None]:
    """UTF-8 text, and a note when invalid bytes had to be replaced (never silently)."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        line = data.count(b"\n", 0, exc.start) + 1
        return text, (
            f"invalid UTF-8 replaced by U+FFFD (first at line {line}, byte {exc.start}); "
            "the log is probably in the server's locale encoding"
        )


def prefetched(
    files: Sequence[Path], load: Callable[[Path], LoadedFile | None]
) -> Iterator[tuple[Path, Callable[[], LoadedFile | None]]]:
    """Each file with a call that gives ``load(path)`` (or raises its error), in order.

    Small files are loaded ahead by one background thread, up to ``PREFETCH_BYTES`` of content:
    reading, gunzip (which leaves the GIL) and detection overlap Polars parsing the previous
    batch (1,000 CloudTrail files: ~10% less wall time). A file larger than
    ``PREFETCH_MAX_SIZE`` on disk is loaded when its turn comes, never held twice.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="auditkit-load")
    ahead: deque[tuple[Path, int, Future[LoadedFile | None]]] = deque()
    ahead_bytes = 0

    def oldest() -> tuple[Path, Callable[[], LoadedFile | None]]:
        nonlocal ahead_bytes
        path, weight, future = ahead.popleft()
        ahead_bytes -= weight
        return path, future.result

    try:
        for path in files:
            try:
                size = path.stat().st_size if path.suffix != ".parquet" else -1
            except OSError:  # gone since the folder was listed: loading it says so, in turn
                size = -1
            if size < 0 or size > PREFETCH_MAX_SIZE:
                while ahead:  # in order: what was loaded ahead comes first
                    yield oldest()
                yield path, partial(load, path)
                continue
            weight = size * GZIP_RATIO if path.suffix == ".gz" else size  # content, estimated
            ahead.append((path, weight, pool.submit(load, path)))
            ahead_bytes += weight
            while ahead and (ahead_bytes > PREFETCH_BYTES or ahead[0][2].done()):
                yield oldest()
        while ahead:
            yield oldest()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def read(
    paths: Sequence[str | Path] | str | Path,
    *,
    format: str | None = None,
    pg_prefix: str | None = None,
    tz: str = "UTC",
    tz_abbrevs: dict[str, str] | None = None,
    progress: bool = False,
) -> ReadResult:
    """Read, detect and normalize every file under ``paths`` into one event frame.

    ``.parquet`` inputs are taken as already-ingested events.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files = iter_files(paths)
    named = {Path(p) for p in paths if Path(p).is_file()}  # given by name, not found in a folder
    if format is not None:
        get_source(format)
    event_frames: list[pl.DataFrame] = []
    quarantine_frames: list[pl.DataFrame] = []
    summaries: list[dict] = []
    notes: list[str] = []
    bar = None
    if progress and files:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="file", desc="ingest", leave=False)

    def add(path: Path, name: str, parsed: Parsed) -> None:
        """Account one file's answer."""
        event_frames.append(parsed.events)
        quarantine_frames.append(parsed.quarantine.with_columns(format=pl.lit(name)))
        notes.extend(f"{path}: {note}" for note in parsed.notes)
        times = parsed.events.get_column("time")
        summaries.append(
            {
                "path": str(path),
                "format": name,
                "records": parsed.records,
                "events": parsed.events.height,
                "quarantined": parsed.quarantine.height,
                "first_time": times.min(),
                "last_time": times.max(),
            }
        )
        if bar is not None:
            bar.update()

    def add_batch(paths: list[Path], name: str, answer: BatchParsed) -> None:
        """Account a batch's answer, file by file as ``add`` would."""
        by_file = answer.events.group_by(BATCH_FILE).agg(
            events=pl.len(), first_time=pl.col("time").min(), last_time=pl.col("time").max()
        )
        event_stats = {row[BATCH_FILE]: row for row in by_file.iter_rows(named=True)}
        quarantined = dict(answer.quarantine.get_column(BATCH_FILE).value_counts().iter_rows())
        event_frames.append(answer.events.drop(BATCH_FILE))
        quarantine_frames.append(
            answer.quarantine.drop(BATCH_FILE).with_columns(format=pl.lit(name))
        )
        for index, path in enumerate(paths):
            stats = event_stats.get(index, {})
            notes.extend(f"{path}: {note}" for note in answer.notes[index])
            summaries.append(
                {
                    "path": str(path),
                    "format": name,
                    "records": answer.records[index],
                    "events": stats.get("events", 0),
                    "quarantined": quarantined.get(index, 0),
                    "first_time": stats.get("first_time"),
                    "last_time": stats.get("last_time"),
                }
            )
        if bar is not None:
            bar.update(len(paths))

    def unreadable(path: Path, exc: InputError) -> None:
        """A file met while walking a folder that cannot be read: report it, read the others."""
        if path in named:
            raise exc
        add(path, UNREADABLE, Parsed(
            events=empty_events(),
            records=1,
            quarantine=pl.DataFrame(
                [{"file": str(path), "line": None, "format": None,
                  "reason": f"whole file: {exc.reason}", "raw": None}],
                schema=QUARANTINE_SCHEMA,
            ),
            notes=[f"not read: {exc.reason} (counted as one quarantined record)"],
        ))

    def parse_alone(path: Path, loaded: LoadedFile) -> None:
        try:
            add(path, loaded.format, parse_file(loaded))
        except InputError as exc:
            unreadable(path, exc)

    # consecutive files of one format with a batch reader, parsed together (BATCH_BYTES)
    pending: list[tuple[Path, LoadedFile]] = []

    def flush() -> None:
        answer = parse_batch([loaded for _, loaded in pending]) if len(pending) > 1 else None
        if answer is not None:
            add_batch([path for path, _ in pending], pending[0][1].format, answer)
        else:
            for path, loaded in pending:
                parse_alone(path, loaded)
        pending.clear()

    pending_bytes = 0

    def load(path: Path) -> LoadedFile | None:
        return load_file(path, format=format, pg_prefix=pg_prefix, tz=tz, tz_abbrevs=tz_abbrevs)

    for path, loading in prefetched(files, load):
        if path.suffix == ".parquet":
            flush()
            events = conform(pl.read_parquet(path))
            add(path, "parquet", Parsed(events=events, records=events.height))
            continue
        try:
            loaded = loading()
        except InputError as exc:
            flush()
            unreadable(path, exc)
            continue
        if loaded is None:
            flush()
            add(path, "empty", empty_file())
            continue
        if pending and (loaded.format != pending[0][1].format or pending_bytes >= BATCH_BYTES):
            flush()
        pending_bytes = (pending_bytes if pending else 0) + len(loaded.content)
        pending.append((path, loaded))
        if get_source(loaded.format).read_batch is None:
            flush()
    flush()
    if bar is not None:
        bar.close()
    events = pl.concat(event_frames) if event_frames else empty_events()
    quarantine = pl.concat(quarantine_frames) if quarantine_frames else empty_quarantine()
    return ReadResult(
        events=events,
        quarantine=quarantine,
        files=pl.DataFrame(summaries, schema=FILE_SUMMARY_SCHEMA),
        notes=notes,
    )


from auditkit.sources import azure_activity as _azure_activity  # noqa: E402,F401
from auditkit.sources import bytebase as _bytebase  # noqa: E402,F401
from auditkit.sources import cloudtrail as _cloudtrail  # noqa: E402,F401
from auditkit.sources import gcp_audit as _gcp_audit  # noqa: E402,F401
from auditkit.sources import mariadb as _mariadb  # noqa: E402,F401
from auditkit.sources import mysql_enterprise as _mysql_enterprise  # noqa: E402,F401
from auditkit.sources import percona as _percona  # noqa: E402,F401
from auditkit.sources import pgaudit as _pgaudit  # noqa: E402,F401
from auditkit.sources import postgres as _postgres  # noqa: E402,F401
