"""The command-line contract (docs/cli.md): outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from auditkit.cli import main

LOG = (
    "2024-05-01 10:00:00.000 UTC [10] alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,"
    "public.customers,\"select name, ssn from customers where id = 1\",<none>\n"
    "2024-05-01 10:00:01.000 UTC [10] alice@shop ERROR:  permission denied for table cards\n"
    "2024-05-01 10:00:01.000 UTC [10] alice@shop STATEMENT:  select card_number from "
    "payments.cards\n"
    "this line is not a log entry\n"
)


@pytest.fixture
def log(write_log):
    return write_log(LOG)


def test_formats_lists_one_line_per_format(capsys):
    assert main(["formats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("pgaudit ") for line in lines)
    assert any(line.startswith("postgres ") for line in lines)


def test_ingest_json_summary_and_outputs(log, tmp_path, capsys):
    out = tmp_path / "out" / "events.parquet"
    assert main(["ingest", str(log), "-o", str(out), "--json"]) == 0
    summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert summary == [{"path": str(log), "format": "pgaudit", "records": 3, "events": 2,
                        "quarantined": 1}]
    events = pl.read_parquet(out)
    assert events.height == 2 and events.schema["time"] == pl.Datetime("us", "UTC")
    quarantine = pl.read_parquet(tmp_path / "out" / "events.quarantine.parquet")
    assert quarantine["line"].to_list() == [4]


def test_access_csv(log, tmp_path):
    out = tmp_path / "access.csv"
    assert main(["access", str(log), "-o", str(out)]) == 0
    access = pl.read_csv(out)
    reads = access.filter(pl.col("column") == "ssn").row(0, named=True)
    assert reads["object"] == "public.customers" and reads["sensitive"] is True
    denied = access.filter(pl.col("outcome") == "failure").row(0, named=True)
    assert (denied["object"], denied["column"], denied["access"]) == (
        "payments.cards", "card_number", "read")


def test_parquet_events_can_be_read_back(log, tmp_path):
    events = tmp_path / "events.parquet"
    assert main(["ingest", str(log), "-o", str(events)]) == 0
    out = tmp_path / "access.parquet"
    assert main(["access", str(events), "-o", str(out)]) == 0
    assert pl.read_parquet(out).height >= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "/nonexistent/x.log"], "/nonexistent/x.log: no such file or folder"),
        (["ingest", "{notes}"], "format not recognised"),
        (["ingest", "{log}", "--format", "oracle_xml"], "unknown format"),
        (["ingest", "{log}", "--tz-abbrev", "IST"], "expected ABBR=+HH:MM"),
        (["access", "{log}", "-o", "{tmp}/a.txt"], "must end in .parquet or .csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, log, write_log, tmp_path, capsys):
    notes = write_log("just some notes\n", "notes.txt")
    args = [a.format(log=log, notes=notes, tmp=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("auditkit: error:") and message in err[0]


def test_console_script_is_installed(log):
    done = subprocess.run(
        [sys.executable, "-m", "auditkit.cli", "ingest", str(log)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pgaudit, 3 records -> 2 events, 1 quarantined" in done.stdout


def test_run_executes_a_notebook_with_parameters(tmp_path, capsys):
    from tests.conftest import REPO

    params = tmp_path / "params.yml"
    params.write_text(f"logs: {REPO / 'sample_logs'}\n")
    out = tmp_path / "overview.ipynb"
    args = ["run", str(REPO / "notebooks" / "overview.ipynb"), "-f", str(params),
            "-p", "tz", "UTC", "-p", "output_dir", str(tmp_path), "-o", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    # PostgreSQL week 3,717 + MariaDB reports-db 442 + CloudTrail 35 + Bytebase 202
    assert "4,396 events" in out.read_text()


def test_run_reports_a_missing_notebook_in_one_line(tmp_path, capsys):
    assert main(["run", "no_such.ipynb", "-o", str(tmp_path / "x.ipynb")]) == 2
    assert "no_such.ipynb" in capsys.readouterr().err


def test_access_with_resolved_identities_names_the_person_behind_app_user(tmp_path):
    """--resolve-identities: the night's app_user read carries dave@example.com (his sign-in
    at the gateway from the same address); without the flag nobody is named."""
    from tests.conftest import REPO

    night = (pl.col("actor") == "app_user") & (pl.col("object") == "payments.cards") & (
        pl.col("time").dt.strftime("%Y-%m-%d %H:%M") == "2026-11-06 02:45")
    persons = {}
    for flag in ([], ["--resolve-identities"]):
        out = tmp_path / f"access{len(flag)}.parquet"
        assert main(["access", str(REPO / "sample_logs"), *flag, "-o", str(out)]) == 0
        persons[bool(flag)] = set(pl.read_parquet(out).filter(night)["person"])
    assert persons == {False: {None}, True: {"dave@example.com"}}
