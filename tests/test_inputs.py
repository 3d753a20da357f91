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
