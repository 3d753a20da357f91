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
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from auditkit.errors import InputError, UnknownFormatError
from auditkit.schema import (
    EVENT_SCHEMA,
    QUARANTINE_SCHEMA,
    conform,
    empty_events,
    empty_quarantine,
)

HEAD_BYTES = 64 * 1024
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
    digest: str  # first 12 hex of the file's SHA-256, for stable event ids
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
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
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
    data = read_bytes(path)
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    if not data.strip():
        return "empty", Parsed(events=empty_events(), records=0, notes=["empty file"])
    name = format or detect_format(data[:HEAD_BYTES], str(path))
    source = get_source(name)
    digest = hashlib.sha256(data).hexdigest()[:12]
    text, decode_note = _decode(data)
    del data  # the decoded text is all readers need: do not hold the file twice
    ctx = FileContext(
        path=str(path),
        display=display or str(path),
        digest=digest,
        pg_prefix=pg_prefix,
        tz=tz,
        tz_abbrevs=dict(tz_abbrevs or {}),
    )
    try:
        parsed = source.read(text, ctx)
    except InputError:
        raise
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(str(path), f"cannot be read as {name}: {first}") from exc
    parsed.events = conform(parsed.events)
    parsed.quarantine = conform(parsed.quarantine, QUARANTINE_SCHEMA)
    if decode_note:
        parsed.notes.append(decode_note)
    return name, parsed


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
    iterator: Iterable[Path] = files
    if progress and files:
        from tqdm import tqdm

        iterator = tqdm(files, unit="file", desc="ingest", leave=False)
    for path in iterator:
        if path.suffix == ".parquet":
            events = conform(pl.read_parquet(path))
            name, parsed = "parquet", Parsed(events=events, records=events.height)
        else:
            try:
                name, parsed = read_file(
                    path, format=format, pg_prefix=pg_prefix, tz=tz, tz_abbrevs=tz_abbrevs
                )
            except InputError as exc:
                if path in named:
                    raise
                # a file met while walking a folder: report it, keep reading the others
                name, parsed = UNREADABLE, Parsed(
                    events=empty_events(),
                    records=1,
                    quarantine=pl.DataFrame(
                        [{"file": str(path), "line": None, "format": None,
                          "reason": f"whole file: {exc.reason}", "raw": None}],
                        schema=QUARANTINE_SCHEMA,
                    ),
                    notes=[f"not read: {exc.reason} (counted as one quarantined record)"],
                )
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
