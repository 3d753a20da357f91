"""The bounded-memory ingest (``auditkit.stream``) gives exactly the in-memory result.

Each case runs the streaming path with tiny chunks, buckets and merge windows, so a small file is
cut into many chunks and process buckets, and compares events (values and order), quarantine,
per-file counts and notes with ``auditkit.load``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import auditkit
from auditkit import stream
from auditkit.cli import main
from auditkit.samplegen import write_bulk

SAMPLES = Path(__file__).resolve().parent.parent / "sample_logs" / "postgresql"


def assert_same_as_in_memory(path: Path, tmp_path: Path, *, chunk_bytes: int = 600,
                             bucket_bytes: int = 1500, merge_rows: int = 7,
                             pg_prefix: str | None = None, workers: int = 2) -> None:
    expected = auditkit.load([path], pg_prefix=pg_prefix)
    output = tmp_path / "events.parquet"
    result = stream.ingest(
        path, output, pg_prefix=pg_prefix, chunk_bytes=chunk_bytes,
        bucket_bytes=bucket_bytes, merge_rows=merge_rows, workers=workers,
    )
    assert_frame_equal(pl.read_parquet(output), expected.events)
    assert_frame_equal(result.quarantine, expected.quarantine)
    assert_frame_equal(result.files, expected.files)
    assert result.notes == expected.notes


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir()))
def test_sample_logs(name, tmp_path):
    assert stream.plan(SAMPLES / name) is not None
    assert_same_as_in_memory(SAMPLES / name, tmp_path)


@pytest.mark.parametrize("suffix", ["log", "csv", "json", "log.gz"])
@pytest.mark.parametrize("workers", [1, 2])
def test_generated_bulk_logs(suffix, workers, tmp_path):
    """Realistic mix: multi-line quoted statements, bind parameters, sessions, errors; framed
    and mapped in one thread or two."""
    container = {"log": "stderr", "csv": "csvlog", "json": "jsonlog", "log.gz": "stderr"}[suffix]
    path = tmp_path / f"bulk.{suffix}"
    write_bulk(path, container, 120_000, seed=3)
    assert_same_as_in_memory(path, tmp_path, chunk_bytes=4000, bucket_bytes=9000,
                             merge_rows=50, workers=workers)


PREFIX = "%m [%p] %q%u@%d "
T = "2026-11-02 10:00:{:02d}.000 UTC"
TRICKY_STDERR = "\n".join([
    "garbage before the first entry",
    f"{T.format(0)} [101] [unknown]@[unknown] LOG:  connection received: host=10.0.0.1 port=5",
    f"{T.format(1)} [101] alice@shop LOG:  connection authorized: user=alice database=shop",
    f"{T.format(1)} [202] [unknown]@[unknown] LOG:  connection received: host=10.0.0.2 port=6",
    f"{T.format(2)} [202] mallory@shop FATAL:  password authentication failed for user "
    '"mallory"',
    f'{T.format(2)} [202] mallory@shop DETAIL:  Connection matched file "pg_hba.conf" line 9',
    # a quoted multi-line AUDIT statement without TABs (a shipper dropped them), with a comma
    f'{T.format(3)} [101] alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,"SELECT a,',
    "       b, ""quoted"" AS c",
    "  FROM orders",
    'WHERE x = 1",<not logged>',
    f"{T.format(4)} [303] bob@shop LOG:  statement: SELECT 1",
    f"{T.format(4)} [101] alice@shop LOG:  AUDIT: SESSION,2,1,WRITE,INSERT,TABLE,public.t,"
    '"INSERT INTO t VALUES (1)",<not logged>',
    f'{T.format(5)} [101] alice@shop ERROR:  duplicate key value violates unique constraint "k"',
    f"{T.format(5)} [101] alice@shop DETAIL:  Key (id)=(1) already exists.",
    f"{T.format(5)} [101] alice@shop STATEMENT:  INSERT INTO t VALUES (1)",
    f"{T.format(6)} [303] bob@shop LOG:  statement: SELECT *",
    "\tFROM customers",
    "\tWHERE id = 3",
    f"{T.format(6)} [303] bob@shop ERROR:  permission denied for table customers",
    f"{T.format(6)} [303] bob@shop STATEMENT:  SELECT *",
    "\tFROM customers",
    "\tWHERE id = 3",
    "a stray line in the middle",
    f"{T.format(7)} [404] carol@shop STATEMENT:  SELECT orphan",  # no earlier entry of pid 404
    f"{T.format(8)} [101] alice@shop LOG:  disconnection: session time: 0:00:07.000 user=alice",
    f"{T.format(9)} [101] [unknown]@[unknown] LOG:  connection received: host=10.0.0.1 port=7",
    f"{T.format(9)} [101] alice@shop LOG:  connection authorized: user=alice database=shop",
    f"{T.format(10)} [101] alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 2,<none>",
    "",
])


@pytest.mark.parametrize("chunk_bytes", [1, 90, 173, 256, 401, 997])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_tricky_stderr_cut_anywhere(chunk_bytes, line_end, tmp_path):
    """Chunk cuts land inside quoted AUDIT records, between an ERROR and its DETAIL/STATEMENT,
    inside TAB continuations; sessions restart within a pid; lines are quarantined."""
    path = tmp_path / "postgresql.log"
    path.write_bytes(TRICKY_STDERR.replace("\n", line_end).encode())
    assert_same_as_in_memory(path, tmp_path, chunk_bytes=chunk_bytes, bucket_bytes=300,
                             merge_rows=2)
    assert_same_as_in_memory(path, tmp_path, chunk_bytes=chunk_bytes, bucket_bytes=300,
                             merge_rows=2, pg_prefix=PREFIX)


def test_prefix_without_pid_and_invalid_utf8(tmp_path):
    path = tmp_path / "postgresql.log"
    lines = [f"{T.format(i)} LOG:  statement: SELECT {i}" for i in range(30)]
    lines[7] = f"{T.format(7)} LOG:  statement: SELECT 'caf\xe9'"
    data = "\n".join(lines).encode("utf-8").replace("\xe9".encode(), b"\xe9") + b"\n"
    path.write_bytes(data)
    assert_same_as_in_memory(path, tmp_path, chunk_bytes=100, bucket_bytes=200,
                             pg_prefix="%m ")


def test_csvlog_quoted_newlines_and_a_bad_row(tmp_path):
    row = (
        '2026-11-02 10:00:{s:02d}.000 UTC,"alice","shop",{pid},"10.0.0.1:5",6ae7.{pid},{s},'
        '"SELECT",2026-11-02 10:00:00 UTC,3/4,0,LOG,00000,"{msg}",,,,,,,,,"psql","client '
        'backend",,0'
    )
    rows = [
        row.format(s=i, pid=100 + i % 3, msg=(
            f'AUDIT: SESSION,{i},1,READ,SELECT,,,""SELECT a,\nb FROM t\nWHERE c = \'\'x\'\'"",'
            '<not logged>'
        ))
        for i in range(12)
    ]
    rows.insert(5, '2026-11-02 10:00:05.000 UTC,"alice","shop",100,"10.0.0.1:5",6ae7.100,5,'
                   '"SELECT",2026-11-02 10:00:00 UTC,3/4,0,,00000,"no severity",,,,,,,,,"psql",'
                   '"client backend",,0')
    path = tmp_path / "postgresql.csv"
    path.write_text("\n".join(rows) + "\n")
    expected = auditkit.load([path])
    assert expected.quarantine.height == 1  # the row without a severity
    assert_same_as_in_memory(path, tmp_path, chunk_bytes=150, bucket_bytes=400, merge_rows=3)


def test_jsonlog_with_bad_lines(tmp_path):
    good = (
        '{{"timestamp":"2026-11-02 10:00:{s:02d}.000 UTC","user":"alice","dbname":"shop",'
        '"pid":{pid},"session_id":"6ae7.{pid}","line_num":{s},"error_severity":"LOG",'
        '"message":"AUDIT: SESSION,{s},1,READ,SELECT,,,\\"SELECT 1,\\nFROM t\\",<none>"}}'
    )
    lines = [good.format(s=i, pid=100 + i % 4) for i in range(20)]
    lines[4] = "{not json"
    lines[9] = '{"timestamp":"2026-11-02 10:00:09.000 UTC","message":"no severity"}'
    lines.insert(12, "")
    path = tmp_path / "postgresql.json"
    path.write_text("\n".join(lines) + "\n")
    assert auditkit.load([path]).quarantine.height == 2
    assert_same_as_in_memory(path, tmp_path, chunk_bytes=200, bucket_bytes=500, merge_rows=4)


def test_cli_streams_large_postgres_logs(tmp_path, monkeypatch, capsys):
    """`auditkit ingest FILE -o x.parquet` takes the streaming path above the size threshold;
    the events and quarantine files are those of the in-memory path."""
    path = tmp_path / "bulk.log"
    write_bulk(path, "stderr", 60_000, seed=5)
    assert main(["ingest", str(path), "-o", str(tmp_path / "memory.parquet"), "--json"]) == 0
    in_memory = capsys.readouterr().out
    calls = []
    real_ingest = stream.ingest

    def spy(*args, **kwargs):
        calls.append(args)
        return real_ingest(*args, **kwargs, chunk_bytes=5000, bucket_bytes=10_000)

    monkeypatch.setattr(stream, "STREAM_BYTES", 1)
    monkeypatch.setattr(stream, "ingest", spy)
    assert main(["ingest", str(path), "-o", str(tmp_path / "stream.parquet"), "--json"]) == 0
    assert calls and capsys.readouterr().out == in_memory
    for name in ("{}.parquet", "{}.quarantine.parquet"):
        assert_frame_equal(pl.read_parquet(tmp_path / name.format("stream")),
                           pl.read_parquet(tmp_path / name.format("memory")))


def test_not_streamable_files_stay_in_memory(tmp_path):
    cloud = tmp_path / "trail.json"
    cloud.write_text('{"Records": []}')
    assert not stream.streamable(cloud, threshold=0)
    assert stream.streamable(SAMPLES / "postgresql-2026-11-02.log", threshold=0)
    assert not stream.streamable(SAMPLES / "postgresql-2026-11-02.log")  # small


def test_csvlog_of_mixed_widths_is_left_to_the_row_by_row_reader(tmp_path):
    """Rows of 26 columns, then of 24: the whole-file fast reader rejects the file, so the
    streaming path must not accept it chunk by chunk."""
    wide = ('2026-11-02 10:00:0{s}.000 UTC,"alice","shop",100,"10.0.0.1:5",6ae7.100,{s},"SELECT",'
            '2026-11-02 10:00:00 UTC,3/4,0,LOG,00000,"statement: SELECT {s}",,,,,,,,,"psql",'
            '"client backend",,0')
    narrow = wide.rsplit(",", 2)[0]
    path = tmp_path / "postgresql.csv"
    path.write_text("\n".join([wide.format(s=s) for s in range(5)]
                              + [narrow.format(s=s) for s in range(5, 9)]) + "\n")
    with pytest.raises(stream.NotStreamable):
        stream.ingest(path, tmp_path / "x.parquet", chunk_bytes=300, bucket_bytes=400)
