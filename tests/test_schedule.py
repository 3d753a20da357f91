"""Scheduled reports (auditkit/schedule.py, `auditkit report`): dated folders, a time window,
a parameters file, re-runs that skip unchanged inputs, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from auditkit import report
from auditkit.cli import main
from auditkit.errors import ConfigError
from auditkit.schedule import cache_key, dated, earlier_reports, scheduled_report

SECRET = "tok-hunter2"
# three reads, one a day, and on the third day a refused statement carrying a secret
LOG = "".join(
    f"2024-05-0{day} 10:00:00.000 UTC [10] alice@shop LOG:  AUDIT: SESSION,{day},1,READ,SELECT,"
    f'TABLE,public.customers,"select name from customers where id = {day}",<none>\n'
    for day in (1, 2, 3)
) + (
    "2024-05-03 10:00:01.000 UTC [10] alice@shop ERROR:  permission denied for table cards\n"
    "2024-05-03 10:00:01.000 UTC [10] alice@shop STATEMENT:  select card_number from "
    f"payments.cards where api_token = '{SECRET}'\n"
)
MONDAY = dt.datetime(2024, 5, 6, 6, 0, tzinfo=dt.UTC)
TUESDAY = MONDAY + dt.timedelta(days=1)


@pytest.fixture
def logs(tmp_path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "postgresql.log").write_text(LOG)
    return folder


@pytest.fixture
def counting_notebook(tmp_path) -> Path:
    """A one-cell report notebook: its summary is the number of events it loaded."""
    params = new_code_cell('logs = []\noutput_dir = "."')
    params.metadata["tags"] = ["parameters"]
    body = new_code_cell(
        textwrap.dedent(
            """
            from auditkit import report
            report.setup_notebook(output_dir)
            events = report.load_logs(logs).events
            report.write_summary(f"{events.height} events", {"events": events.height})
            """
        )
    )
    nb = new_notebook(
        cells=[params, body],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )
    path = tmp_path / "counting.ipynb"
    nbformat.write(nb, path)
    return path


def events_counted(index: Path) -> int:
    manifest = json.loads((index.parent / "manifest.json").read_text())
    return manifest["pages"][0]["counts"]["events"]


def test_dated_fills_placeholders():
    assert dated("reports/{date}", MONDAY) == Path("reports/2024-05-06")
    assert dated("r/{datetime}/x", MONDAY) == Path("r/2024-05-06T060000Z/x")
    assert dated("r/{date}_{time}", MONDAY) == Path("r/2024-05-06_060000")
    assert dated("reports/plain", MONDAY) == Path("reports/plain")
    with pytest.raises(ConfigError, match=r"unknown placeholder \{day\}"):
        dated("reports/{day}", MONDAY)


def test_earlier_reports_match_the_template(tmp_path):
    for name in ("2024-05-06", "2024-05-07", "notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    (tmp_path / "2024-05-08").mkdir()  # no manifest: an unfinished run
    found = {p.name for p in earlier_reports(str(tmp_path / "{date}"))}
    assert found == {"2024-05-06", "2024-05-07"}
    assert earlier_reports(str(tmp_path / "2024-05-06")) == [tmp_path / "2024-05-06"]


def test_cache_key_changes_with_inputs_parameters_and_window(logs, counting_notebook):
    key = cache_key([str(logs)], {}, [counting_notebook], {})
    assert key == cache_key([str(logs)], {}, [counting_notebook], {})
    assert key != cache_key([str(logs)], {"tz": "UTC"}, [counting_notebook], {})
    assert key != cache_key([str(logs)], {}, [counting_notebook], {"since": "2024-05-02"})
    (logs / "postgresql.log").write_text(LOG + LOG)
    assert key != cache_key([str(logs)], {}, [counting_notebook], {})


def test_second_run_reuses_the_first_unless_inputs_change(tmp_path, logs, counting_notebook):
    template = str(tmp_path / "reports" / "{date}")
    run = dict(notebooks=[str(counting_notebook)])

    first = scheduled_report([str(logs)], template, now=MONDAY, **run)
    assert not first.skipped and events_counted(first.index) == 4
    assert first.index.parent.name == "2024-05-06"

    # a new day, same inputs: a dated copy, no notebook run
    second = scheduled_report([str(logs)], template, now=TUESDAY, **run)
    assert second.skipped and second.reused_from == first.index.parent
    assert second.index.parent.name == "2024-05-07" and second.index.is_file()
    manifest = json.loads((second.index.parent / "manifest.json").read_text())
    assert manifest["reused_from"] == str(first.index.parent)
    assert manifest["cache_key"] == first.cache_key
    assert not (second.index.parent / "counting.ipynb").stat().st_mtime > (
        first.index.parent / "counting.ipynb").stat().st_mtime  # same file, not re-executed

    # the same day again: nothing at all
    again = scheduled_report([str(logs)], template, now=TUESDAY, **run)
    assert again.skipped and again.index == second.index

    # changed input, or --force: the notebooks run
    monday = {p.name: p.read_bytes() for p in first.index.parent.iterdir()}
    (logs / "postgresql.log").write_text(LOG.replace("id = 2", "id = 4"))
    changed = scheduled_report([str(logs)], template, now=TUESDAY, **run)
    assert not changed.skipped and changed.cache_key != first.cache_key
    # rebuilding the linked copy left Monday's report as it was
    assert {p.name: p.read_bytes() for p in first.index.parent.iterdir()} == monday
    forced = scheduled_report([str(logs)], template, now=TUESDAY, force=True, **run)
    assert not forced.skipped


def test_window_reaches_the_notebooks(tmp_path, logs, counting_notebook):
    index = report.build_report(
        [str(logs)], tmp_path / "out", notebooks=[str(counting_notebook)],
        since="2024-05-02", until="2024-05-02",  # a bare date: that whole day
    )
    assert events_counted(index) == 1
    manifest = json.loads((index.parent / "manifest.json").read_text())
    assert manifest["parameters"]["since"] == "2024-05-02T00:00:00+00:00"
    assert manifest["parameters"]["until"] == "2024-05-03T00:00:00+00:00"


def test_load_logs_window_from_arguments_and_environment(logs, monkeypatch):
    assert report.load_logs(str(logs), since="2024-05-02").events.height == 3
    monkeypatch.setenv(report.UNTIL_ENV, "2024-05-01")
    assert report.load_logs(str(logs)).events.height == 1
    assert report.load_logs(str(logs), until="2024-05-02").events.height == 2  # argument wins


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "not an ISO date or time: 'last tuesday'"),
        (["-o", "{tmp}/r/{{day}}"], "unknown placeholder {day}"),
        (["-f", "{tmp}/params.yml"], "no report notebook takes parameter(s): colour"),
        (["-f", "{tmp}/missing.yml"], "cannot read parameters"),
    ],
)
def test_report_bad_options_are_one_line_exit_2(args, message, logs, tmp_path, capsys):
    (tmp_path / "params.yml").write_text("colour: blue\n")
    args = [a.format(tmp=tmp_path) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out")]
    assert main(["report", str(logs), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("auditkit: error:") and message in err[0], err


def test_report_command_twice_skips_the_second_time(tmp_path, logs, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "params.yml"
    params.write_text("person: alice\n")
    command = ["report", str(logs), "-f", str(params), "--since", "2024-05-02",
               "-o", "reports/{datetime}"]
    assert main(command) == 0
    first = Path(capsys.readouterr().out.strip())
    assert first.is_file() and first.parent.parent == tmp_path / "reports"
    manifest = json.loads((first.parent / "manifest.json").read_text())
    assert manifest["parameters"]["person"] == "alice"
    overview = (first.parent / "overview.html").read_text()
    assert "3 events from 1 file(s)" in overview
    # the secret in a statement is masked in every page and table, kept in the events
    shown = {p.name: p.read_text() for p in first.parent.iterdir() if p.suffix in (".html", ".csv")}
    assert not [name for name, text in shown.items() if SECRET in text]
    assert "api_token = '***'" in shown["failed_attempts.csv"]
    assert "api_token = '***'" in shown["who_accessed_what.html"]

    time.sleep(1.1)  # the next second: another folder
    assert main(command) == 0
    captured = capsys.readouterr()
    assert "inputs unchanged since" in captured.err and "skipped" in captured.err
    second = Path(captured.out.strip())
    assert second.is_file() and second != first
