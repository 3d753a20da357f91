"""PostgreSQL log containers: prefixes, framing, csvlog/jsonlog, times."""

from __future__ import annotations

import gzip
import re

import polars as pl
import pytest

from auditkit.sources import read, read_file
from auditkit.sources.pg_log import choose_prefix, line_regex, prefix_regex


@pytest.mark.parametrize(
    ("prefix", "line", "expected"),
    [
        ("%m [%p] %q%u@%d ", "2024-05-01 10:00:00.123 UTC [42] alice@shop LOG:  x",
         {"pid": "42", "user": "alice", "database": "shop"}),
        ("%m [%p] %q%u@%d ", "2024-05-01 10:00:00.123 UTC [7] LOG:  checkpoint starting: time",
         {"pid": "7", "user": None}),
        ("%t:%r:%u@%d:[%p]:", "2019-03-10 03:54:59 UTC:10.0.0.123(52834):postgres@tstdb:[20175]:"
         "LOG:  x", {"remote_host": "10.0.0.123", "remote_port": "52834", "pid": "20175"}),
        ("%t:%r:%u@%d:[%p]:", "2022-06-16 17:58:40 UTC::@:[7770]:LOG:  checkpoint starting: time",
         {"pid": "7770", "user": "", "remote_host": ""}),
        ("%m; %p; %u; %d; %h; ",
         "2022-04-05 13:31:38.586 CEST; 2717031; u; db; 10.1.76.24; LOG:  x",
         {"pid": "2717031", "user": "u", "database": "db", "remote_host": "10.1.76.24"}),
        ("%m [%p]: [%l-1] db=%d,user=%u ", "2024-01-01 00:00:00.000 UTC [9]: [3-1] db=a,user=b "
         "LOG:  x", {"session_line": "3", "database": "a", "user": "b"}),
        ("%m %c %-10u|", "2024-01-01 00:00:00.000 UTC 5ff25bb2.22 bob       |LOG:  x",
         {"session_id": "5ff25bb2.22", "user": "bob"}),
        ("%%%m ", "%2024-01-01 00:00:00 +0430 LOG:  x", {"time_text": "2024-01-01 00:00:00 +0430"}),
    ],
)
def test_prefix_regex_extracts_fields(prefix, line, expected):
    match = re.match(line_regex(prefix), line)
    assert match, (prefix, line)
    for key, value in expected.items():
        assert match.group(key) == value


def test_prefix_repeated_escape_is_captured_once():
    assert re.compile(prefix_regex("%h %r %p %p"))


@pytest.mark.parametrize(
    ("line", "preset"),
    [
        ("2019-03-10 03:54:59 UTC:10.0.0.123(52834):postgres@tstdb:[20175]:LOG:  x", "rds"),
        ("2021-03-17 15:18:05.633 UTC [170] postgres@postgres LOG:  statement: SELECT 1", "debian"),
        ("2024-01-01 00:00:00.000 UTC [9]: [3-1] db=a,user=b LOG:  x", "cloudsql"),
        ("NOTICE:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>", "bare"),
        ("2022-04-05 13:31:38.586 CEST; 2717031; u; db; 10.1.76.24; LOG:  x", "generic"),
    ],
)
def test_choose_prefix_recognises_presets(line, preset):
    assert choose_prefix([line], None)[0] == preset


STDERR = (
    "2024-05-01 10:00:00.000 UTC [10] alice@shop LOG:  statement: select 'a,\n"
    "\tb' from t\n"
    "2024-05-01 10:00:01.000 UTC [10] alice@shop ERROR:  permission denied for table cards\n"
    "2024-05-01 10:00:01.000 UTC [11] bob@shop LOG:  connection authorized: user=bob "
    "database=shop\n"
    "2024-05-01 10:00:01.000 UTC [10] alice@shop STATEMENT:  select * from cards\n"
    "garbage that is not a log line\n"
)


def test_stderr_framing_tab_continuation_aux_lines_and_quarantine(write_log):
    name, parsed = read_file(write_log(STDERR))
    events = parsed.events
    assert name == "postgres"
    assert parsed.records == 4 and events.height == 3 and parsed.quarantine.height == 1
    assert events["statement"][0] == "select 'a,\nb' from t"  # logger TAB stripped
    error = events.filter(pl.col("error").is_not_null()).row(0, named=True)
    # the STATEMENT line of pid 10 joins pid 10's ERROR even with pid 11 in between
    assert error["statement"] == "select * from cards"
    assert error["error"] == "permission denied for table cards"
    bad = parsed.quarantine.row(0, named=True)
    assert bad["line"] == 6 and "log_line_prefix" in bad["reason"]


def test_default_prefix_without_user_takes_it_from_the_connection_line(write_log):
    text = (
        "2024-05-01 10:00:00.000 UTC [10] LOG:  connection received: host=10.0.0.9 port=5000\n"
        "2024-05-01 10:00:00.010 UTC [10] LOG:  connection authorized: user=carol database=hr "
        "application_name=psql\n"
        "2024-05-01 10:00:02.000 UTC [10] LOG:  statement: select 1\n"
    )
    events = read_file(write_log(text))[1].events
    last = events.row(2, named=True)
    assert (last["actor"], last["database"], last["src_ip"], last["client_app"]) == (
        "carol", "hr", "10.0.0.9", "psql")


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("2024-05-01 12:00:00.000 CEST", "2024-05-01 10:00:00"),
        ("2024-05-01 12:00:00.000 +0430", "2024-05-01 07:30:00"),
        ("2024-05-01 12:00:00 -07", "2024-05-01 19:00:00"),
        ("2024-05-01 12:00:00.000 EDT", "2024-05-01 16:00:00"),
        ("2024-05-01 12:00:00.000 UTC", "2024-05-01 12:00:00"),
    ],
)
def test_times_are_utc(write_log, stamp, utc):
    events = read_file(write_log(f"{stamp} [1] LOG:  hello\n"))[1].events
    assert events.schema["time"] == pl.Datetime("us", "UTC")
    assert events["time"][0].strftime("%Y-%m-%d %H:%M:%S") == utc


def test_abbreviation_override(write_log):
    path = write_log("2024-05-01 12:00:00.000 IST [1] LOG:  hello\n")
    india = read_file(path)[1].events["time"][0]
    ireland = read_file(path, tz_abbrevs={"IST": "+01:00"})[1].events["time"][0]
    assert india.hour == 6 and india.minute == 30 and ireland.hour == 11


CSVLOG = (
    '2024-05-01 10:00:00.000 UTC,"alice","shop",10,"10.0.0.1:5000",66300000.a,1,"SELECT",'
    '2024-05-01 09:59:00 UTC,3/1,0,LOG,00000,"statement: select 1,\n2",,,,,,,,,"psql",'
    '"client backend",,0\n'
    '2024-05-01 10:00:01.000 UTC,"alice","shop",10,"10.0.0.1:5000",66300000.a,2,"SELECT",'
    '2024-05-01 09:59:00 UTC,3/2,0,ERROR,42501,"permission denied for table cards",,,,,,'
    '"select * from cards",,,"psql","client backend",,0\n'
)


def test_csvlog_multiline_records_keep_their_line_numbers(write_log):
    name, parsed = read_file(write_log(CSVLOG, "postgresql.csv"))
    events = parsed.events
    assert name == "postgres" and parsed.records == 2 and parsed.quarantine.height == 0
    assert events["raw_ref"].str.extract(r":(\d+)$").to_list() == ["1", "3"]
    assert events["session_id"].to_list() == ["66300000.a"] * 2
    failure = events.row(1, named=True)
    assert failure["outcome"] == "failure" and failure["error"].startswith("42501")
    assert failure["src_ip"] == "10.0.0.1"


def test_csvlog_bad_row_is_quarantined_with_its_line(write_log):
    text = CSVLOG + "2024-05-01 10:00:02.000 UTC,\"x\",only,three\n"
    parsed = read_file(write_log(text, "bad.csv"))[1]
    assert parsed.events.height == 2
    assert parsed.quarantine["line"].to_list() == [4]
    assert "columns" in parsed.quarantine["reason"][0]


JSONLOG = (
    '{"timestamp":"2024-05-01 10:00:00.000 UTC","user":"alice","dbname":"shop","pid":10,'
    '"remote_host":"10.0.0.1","remote_port":5000,"session_id":"66300000.a","line_num":1,'
    '"ps":"SELECT","error_severity":"LOG","message":"statement: select 1",'
    '"application_name":"psql","backend_type":"client backend","query_id":-9007199254740993}\n'
    "{not json\n"
)


def test_jsonlog_and_invalid_line(write_log):
    name, parsed = read_file(write_log(JSONLOG, "postgresql.json"))
    assert name == "postgres" and parsed.events.height == 1
    assert parsed.quarantine["line"].to_list() == [2]
    assert parsed.events["actor"][0] == "alice"


def test_gzip_and_folders(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.log.gz").write_bytes(gzip.compress(STDERR.encode(), mtime=0))
    (folder / "b.json").write_text(JSONLOG)
    result = read([folder])
    assert result.files["events"].to_list() == [3, 1]
    assert result.files["format"].to_list() == ["postgres", "postgres"]
    assert result.quarantine.height == 2


def test_unknown_content_names_the_file(write_log):
    from auditkit.errors import UnknownFormatError

    path = write_log("hello world\n", "notes.log")
    with pytest.raises(UnknownFormatError, match="notes.log"):
        read([path])


def test_a_wrong_prefix_is_called_out(write_log):
    path = write_log("2024-05-01 10:00:00 UTC [1] LOG:  a\n2024-05-01 10:00:01 UTC [1] LOG:  b\n")
    parsed = read_file(path, pg_prefix="%m|%p|")[1]
    assert parsed.events.height == 0 and parsed.quarantine.height == 2
    assert any("check --pg-prefix" in note for note in parsed.notes)


def test_a_statement_line_without_its_entry_is_quarantined(write_log):
    text = (
        "2024-05-01 10:00:00.000 UTC [7] alice@db STATEMENT:  select 1\n"
        "2024-05-01 10:00:01.000 UTC [7] alice@db LOG:  statement: select 2\n"
    )
    parsed = read_file(write_log(text))[1]
    assert parsed.events.height == 1 and parsed.records == 2
    assert parsed.quarantine.select("line", "raw").rows() == [(1, "STATEMENT:  select 1")]


def test_csvlog_rows_after_a_csv_error_are_quarantined_not_dropped():
    import csv

    from auditkit.sources.pg_log import _csvlog_slow

    text = CSVLOG + '2024-05-01 10:00:02.000 UTC,"' + "x" * 500 + '"\nlast line\n'
    limit = csv.field_size_limit(200)  # the row-by-row reader fails on the long field
    try:
        parsed = _csvlog_slow(text, "broken.csv", None)
    finally:
        csv.field_size_limit(limit)
    assert parsed.entries.height == 2
    assert parsed.quarantine["line"].to_list() == [4, 5]
    assert parsed.quarantine["reason"].str.starts_with("csv error at line 4").all()
    assert parsed.records == 4
