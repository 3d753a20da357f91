"""Reports on a schedule: output folders named by date, and re-runs that skip unchanged inputs.

    from auditkit.schedule import scheduled_report
    done = scheduled_report(["/var/log/postgresql"], "reports/{date}")
    done.index, done.reused_from     # reports/2026-11-26/index.html, None on a fresh build

An output folder may hold placeholders, filled with the UTC time the run starts:
``{date}`` (``2026-11-26``), ``{datetime}`` (``2026-11-26T061500Z``), ``{time}`` (``061500``).
A folder without placeholders is used as given.

Every report's ``manifest.json`` records a ``cache_key``: the SHA-256 of the input files (names
and contents), the parameters and time window, the notebooks' contents and the auditkit version.
Before building, the earlier reports the same output template could have produced are searched
for that key. If one matches, nothing is run: the same folder is left alone, a new dated folder
gets a copy (hard links where possible) whose manifest names the report it reuses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditkit.errors import ConfigError

PLACEHOLDERS = {"date": "%Y-%m-%d", "datetime": "%Y-%m-%dT%H%M%SZ", "time": "%H%M%S"}
"""Output-name placeholders and the ``strftime`` format each stands for (UTC)."""
_FILLED = {"date": r"\d{4}-\d{2}-\d{2}", "datetime": r"\d{4}-\d{2}-\d{2}T\d{6}Z", "time": r"\d{6}"}
"""What each placeholder looks like once filled, to recognise earlier outputs."""

MANIFEST = "manifest.json"
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


@dataclass
class ScheduledReport:
    """What a scheduled run did: ``index`` of the report, and ``reused_from`` the earlier report
    whose inputs were identical (``None`` when the notebooks ran)."""

    index: Path
    reused_from: Path | None = None
    cache_key: str = ""

    @property
    def skipped(self) -> bool:
        return self.reused_from is not None


def dated(template: str | Path, now: dt.datetime | None = None) -> Path:
    """``template`` with its placeholders filled from ``now`` (UTC; default: the current time).

    >>> dated("reports/{date}", dt.datetime(2026, 11, 26, 6, 15, tzinfo=dt.UTC))
    PosixPath('reports/2026-11-26')
    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise ConfigError(f"{template}: unknown placeholder {{{name}}} (known: {known})")
        return now.strftime(PLACEHOLDERS[name])

    return Path(_PLACEHOLDER.sub(fill, str(template)))


def earlier_reports(template: str | Path) -> list[Path]:
    """Folders holding a ``manifest.json`` that ``template`` could have named, newest first."""
    parts = Path(template).parts
    first = next((i for i, part in enumerate(parts) if _PLACEHOLDER.search(part)), None)
    if first is None:
        folders = [Path(template)]
    else:
        base = Path(*parts[:first]) if first else Path(".")
        pattern = str(Path(*parts[first:]))
        glob = _PLACEHOLDER.sub("*", pattern.replace("[", "[[]"))
        filled = "".join(
            _FILLED.get(piece, "") if i % 2 else re.escape(piece)
            for i, piece in enumerate(_PLACEHOLDER.split(pattern))
        )
        folders = [
            f for f in (base.glob(glob) if base.is_dir() else [])
            if re.fullmatch(filled, str(f.relative_to(base)))
        ]
    found = [f for f in folders if (f / MANIFEST).is_file()]
    return sorted(found, key=lambda f: (f / MANIFEST).stat().st_mtime, reverse=True)


def cache_key(
    inputs: list[str],
    parameters: dict[str, Any],
    notebooks: list[Path],
    window: dict[str, str],
) -> str:
    """SHA-256 naming everything a report's content depends on: input files (path and
    SHA-256), parameters (and the contents of any file a parameter names), time window,
    notebooks' contents, auditkit version."""
    from auditkit import __version__
    from auditkit.report import input_files, sha256_file

    def file_or_value(value: Any) -> Any:
        if isinstance(value, str) and value and Path(value).is_file():
            return {"file": value, "sha256": sha256_file(Path(value))}
        return value

    described = {
        "auditkit": __version__,
        "files": [[str(f), sha256_file(f)] for f in input_files(inputs)],
        "parameters": {k: file_or_value(v) for k, v in sorted(parameters.items())},
        "window": window,
        "notebooks": [[n.name, sha256_file(n)] for n in notebooks],
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    (folder / MANIFEST).write_text(text, encoding="utf-8")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _unlink_shared(folder: Path) -> None:
    """Remove the files of ``folder`` that are hard links into another report (a reused copy),
    so that rebuilding here rewrites new files instead of the other report's."""
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_nlink > 1:
                path.unlink()


def scheduled_report(
    paths: list[str],
    output: str | Path,
    parameters: dict[str, Any] | None = None,
    notebooks: list[str] | None = None,
    *,
    since: str | dt.datetime | None = None,
    until: str | dt.datetime | None = None,
    force: bool = False,
    now: dt.datetime | None = None,
) -> ScheduledReport:
    """:func:`auditkit.report.build_report` into ``dated(output, now)``, unless an earlier
    report of the same template has the same :func:`cache_key` (``force`` rebuilds anyway)."""
    from auditkit.report import (
        DEFAULT_NOTEBOOKS,
        build_report,
        find_notebook,
        parse_time,
        resolve_paths,
    )

    parameters = dict(parameters or {})
    out_dir = dated(output, now)
    inputs = resolve_paths(paths)
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise ConfigError(f"{missing[0]}: no such file or folder")
    window = {
        key: parsed.isoformat()
        for key, parsed in (("since", parse_time(since)), ("until", parse_time(until, end=True)))
        if parsed is not None
    }
    sources = [find_notebook(name) for name in (notebooks or DEFAULT_NOTEBOOKS)]
    key = cache_key(inputs, parameters, sources, window)

    if not force:
        for earlier in earlier_reports(output):
            manifest = _manifest(earlier)
            if manifest.get("cache_key") != key or not (earlier / "index.html").is_file():
                continue
            if earlier.resolve() != out_dir.resolve():
                shutil.copytree(
                    earlier, out_dir, copy_function=_link_or_copy, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(MANIFEST),
                )
                manifest["reused_from"] = str(earlier.resolve())
                manifest["checked_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                _write_manifest(out_dir, manifest)
            return ScheduledReport(out_dir.resolve() / "index.html", earlier.resolve(), key)

    _unlink_shared(out_dir)
    index = build_report(
        inputs, out_dir, parameters, [str(s) for s in sources], since=since, until=until
    )
    manifest = _manifest(out_dir)
    manifest["cache_key"] = key
    _write_manifest(out_dir, manifest)
    return ScheduledReport(index, None, key)
