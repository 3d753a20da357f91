"""Checks shared by the batch-reader tests: a folder read batched reads as file by file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from auditkit.sources import REGISTRY, ReadResult, read


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    """``files`` (relative path -> content) written under ``root``; returns ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def assert_batched_reads_as_file_by_file(
    monkeypatch: pytest.MonkeyPatch, folder: Path, source: str, batch_bytes: int
) -> None:
    """Reading ``folder`` in batches of ``batch_bytes`` gives what reading it file by file
    (``source`` without its batch reader) gives."""
    alone = read_file_by_file(monkeypatch, folder, source)
    monkeypatch.setattr("auditkit.sources.BATCH_BYTES", batch_bytes)
    assert_same_read(read(folder, progress=True), alone)


def read_file_by_file(monkeypatch: pytest.MonkeyPatch, folder: Path, source: str) -> ReadResult:
    """The read loop without ``source``'s batch reader: one ``read`` per file."""
    with monkeypatch.context() as patch:
        patch.setitem(REGISTRY, source, dataclasses.replace(REGISTRY[source], read_batch=None))
        return read(folder)


def assert_same_read(got: ReadResult, expected: ReadResult) -> None:
    """Events, quarantine, file summaries and notes all equal."""
    assert_frame_equal(got.events, expected.events)
    assert_frame_equal(got.quarantine, expected.quarantine)
    assert_frame_equal(got.files, expected.files)
    assert got.notes == expected.notes
