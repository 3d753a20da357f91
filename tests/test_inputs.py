"""Awkward inputs: empty files, BOMs, CRLF, bad bytes, corrupt gzip, unknown files in folders."""

from __future__ import annotations

import polars as pl
import pytest

from auditkit.cli import main
from auditkit.errors import InputError
from auditkit.sources import UNREADABLE, read

LINE = "2024-05-01 10:00:00.000 UTC [1] alice@db LOG:  statement: select {n}\n"


@pytest.fixture
def folder(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a-empty.log").write_text("")
    (logs / "b-blank.log").write_text("\n  \n")
    (logs / "c-bom.log").write_bytes(b"\xef\xbb\xbf" + LINE.format(n=1).encode())
    (logs / "d-crlf.log").write_bytes(LINE.format(n=2).replace("\n", "\r\n").encode() * 2)
    (logs / "e-latin1.log").write_bytes(LINE.format(n="'caf\xe9'").encode("latin-1"))
    (logs / "f-corrupt.log.gz").write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    (logs / "g-notes.txt").write_text("shopping list\n")
    return logs


def test_a_folder_is_read_whatever_else_it_holds(folder):
    result = read([folder])
    formats = dict(zip([p.rsplit("/", 1)[1] for p in result.files["path"]],
                       result.files["format"], strict=True))
    assert formats == {
        "a-empty.log": "empty", "b-blank.log": "empty", "c-bom.log": "postgres",
        "d-crlf.log": "postgres", "e-latin1.log": "postgres",
        "f-corrupt.log.gz": UNREADABLE, "g-notes.txt": UNREADABLE,
    }
    assert result.events["statement"].to_list() == [
        "select 1", "select 2", "select 2", "select 'caf\ufffd'"]
    assert any("invalid UTF-8" in note for note in result.notes)
    bad = result.quarantine.filter(pl.col("file").str.ends_with("f-corrupt.log.gz"))
    assert bad["reason"][0].startswith("whole file: corrupt gzip")


def test_unreadable_files_in_a_folder_make_the_cli_fail_after_writing(folder, tmp_path, capsys):
    out = tmp_path / "events.parquet"
    assert main(["ingest", str(folder), "-o", str(out)]) == 2
    assert out.exists() and pl.read_parquet(out).height == 4
    assert "2 file(s) could not be read" in capsys.readouterr().err


def test_a_named_unreadable_file_is_an_error(folder):
    with pytest.raises(InputError, match="corrupt gzip"):
        read([folder / "f-corrupt.log.gz"])


def test_an_unreadable_file_in_a_folder_is_reported_and_the_rest_read(tmp_path, monkeypatch):
    import pathlib

    good = tmp_path / "a.log"
    good.write_text("2024-05-01 10:00:00 UTC [1] LOG:  database system is ready\n")
    locked = tmp_path / "b.log"
    locked.write_text("x\n")
    real = pathlib.Path.read_bytes

    def refuse(self):
        if self.name == "b.log":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", refuse)
    result = read(tmp_path)
    rows = {pathlib.Path(r["path"]).name: r for r in result.files.iter_rows(named=True)}
    assert rows["b.log"]["format"] == "unreadable"
    assert result.quarantine.filter(
        result.quarantine["file"].str.ends_with("b.log"))["reason"].to_list() == [
        "whole file: cannot be read (Permission denied)"]
    assert rows["a.log"]["format"] != "unreadable"
    with pytest.raises(InputError, match="cannot be read"):
        read(locked)
