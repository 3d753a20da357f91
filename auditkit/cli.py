"""Command line: argument parsing only; the work is done by the library.

The contract (docs/cli.md) is stable: scripts and schedulers depend on it. Exit status is 0 on
success, 2 with a one-line message on bad input or configuration, 1 on an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from auditkit import __version__
from auditkit.errors import AuditkitError, ConfigError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", help="force a format instead of detecting it (see `formats`)")
    parser.add_argument(
        "--pg-prefix",
        help="PostgreSQL log_line_prefix of stderr logs, e.g. '%%m [%%p] %%q%%u@%%d ' "
        "(RDS, Cloud SQL and common defaults are recognised without it)",
    )
    parser.add_argument(
        "--tz", default="UTC", help="zone assumed for times logged without one (default UTC)"
    )
    parser.add_argument(
        "--tz-abbrev",
        action="append",
        default=[],
        metavar="ABBR=+HH:MM",
        help="override a time-zone abbreviation, e.g. IST=+01:00 (repeatable)",
    )
    parser.add_argument("--identity-map", help="YAML/CSV of known person <-> account links")
    parser.add_argument(
        "--resolve-identities", action="store_true",
        help="also name persons from evidence (the same statement at the gateway, the same "
        "address, a sign-in naming the account; medium confidence or better; docs/identity.md)",
    )
    parser.add_argument(
        "--classification", help="YAML of sensitive columns (extends the defaults)"
    )
    parser.add_argument("--progress", action="store_true", help="always show a progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def _abbrevs(values: list[str]) -> dict[str, str]:
    result = {}
    for value in values:
        abbrev, sep, offset = value.partition("=")
        if not sep or not abbrev:
            raise ConfigError(f"--tz-abbrev {value!r}: expected ABBR=+HH:MM")
        result[abbrev] = offset
    return result


def _load(args: argparse.Namespace):
    import auditkit
    from auditkit.identity import apply_identity_map, load_identity_map

    result = auditkit.load(
        args.paths,
        format=args.format,
        pg_prefix=args.pg_prefix,
        tz=args.tz,
        tz_abbrevs=_abbrevs(args.tz_abbrev),
        classification=args.classification,
        progress=args.progress or sys.stderr.isatty(),
    )
    links = load_identity_map(args.identity_map) if args.identity_map else {}
    if getattr(args, "resolve_identities", False):
        from auditkit.identity import resolve_identities

        resolution = resolve_identities(result.events, links)
        named_before = result.events.get_column("person").is_not_null().sum()
        result.events = resolution.events
        inferred = result.events.get_column("person").is_not_null().sum() - named_before
        result.notes.append(
            f"identity resolution: {inferred:,} more events attributed to a person "
            f"({resolution.links.height:,} links with their evidence; docs/identity.md)"
        )
    elif links:
        result.events = apply_identity_map(result.events, links)
    return result


def _print_summary(result, as_json: bool) -> None:
    for row in result.files.iter_rows(named=True):
        if as_json:
            keys = ("path", "format", "records", "events", "quarantined")
            print(json.dumps({k: row[k] for k in keys}))
        else:
            print(
                f"{row['path']}: {row['format']}, {row['records']} records -> "
                f"{row['events']} events, {row['quarantined']} quarantined"
            )
    if not as_json:
        files = result.files
        print(
            f"total: {files.height} files, {int(files['records'].sum() or 0)} records -> "
            f"{int(files['events'].sum() or 0)} events, "
            f"{int(files['quarantined'].sum() or 0)} quarantined",
            file=sys.stderr,
        )
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)


def _write_frame(frame, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".csv":
        import polars as pl

        flat = frame.with_columns(
            pl.col(c).list.join(";") for c, t in frame.schema.items() if isinstance(t, pl.List)
        )
        flat.write_csv(output)
    elif output.suffix == ".parquet":
        frame.write_parquet(output)
    else:
        raise ConfigError(f"{output}: output must end in .parquet or .csv")


def cmd_formats(args: argparse.Namespace) -> int:
    from auditkit.sources import REGISTRY

    for source in sorted(REGISTRY.values(), key=lambda s: s.name):
        print(f"{source.name:<18} {source.layer:<14} {source.description}")
    return 0


def _unreadable(result) -> int:
    """Exit status after the outputs are written: 2 when a file in a folder could not be read."""
    from auditkit.sources import UNREADABLE

    bad = result.files.filter(result.files["format"] == UNREADABLE)
    if bad.height:
        print(f"auditkit: error: {bad.height} file(s) could not be read, first {bad['path'][0]} "
              "(see the quarantine)", file=sys.stderr)
        return 2
    return 0


def _ingest_streaming(args: argparse.Namespace):
    """A large PostgreSQL log to Parquet in bounded memory, or None when the file is not one
    (the result is the same as ``_load``'s; see ``auditkit.stream``)."""
    if (not args.output or Path(args.output).suffix != ".parquet" or len(args.paths) != 1
            or args.resolve_identities):  # resolution needs every event at once
        return None
    from auditkit import stream
    from auditkit.identity import load_identity_map

    if not stream.streamable(args.paths[0], args.format):
        return None
    try:
        return stream.ingest(
            args.paths[0], args.output, format=args.format, pg_prefix=args.pg_prefix,
            tz=args.tz, tz_abbrevs=_abbrevs(args.tz_abbrev), classification=args.classification,
            identity_map=load_identity_map(args.identity_map) if args.identity_map else None,
            progress=args.progress or sys.stderr.isatty(),
        )
    except stream.NotStreamable:
        return None


def cmd_ingest(args: argparse.Namespace) -> int:
    streamed = _ingest_streaming(args)
    result = streamed or _load(args)
    if args.output:
        output = Path(args.output)
        if streamed is None:
            _write_frame(result.events, output)
        quarantine = output.with_name(output.name.replace(output.suffix, "") +
                                      ".quarantine" + output.suffix)
        _write_frame(result.quarantine, quarantine)
    _print_summary(result, args.json)
    return _unreadable(result)


def cmd_access(args: argparse.Namespace) -> int:
    import auditkit

    result = _load(args)
    access = auditkit.access_table(result.events, args.classification)
    if args.output:
        _write_frame(access, Path(args.output))
        print(f"{access.height} access rows -> {args.output}", file=sys.stderr)
    else:
        print(access.write_csv(), end="")
    return _unreadable(result)


def cmd_findings(args: argparse.Namespace) -> int:
    from auditkit.findings import find

    result = _load(args)
    detect_from = None
    if args.detect_from:
        from auditkit.report import parse_time

        detect_from = parse_time(args.detect_from)
    findings = find(result.events, args.settings, detect_from=detect_from,
                    only=args.detector or None)
    if args.output:
        _write_frame(findings, Path(args.output))
        print(f"{findings.height} findings -> {args.output}", file=sys.stderr)
    else:
        import polars as pl

        print(findings.with_columns(pl.col("event_ids").list.join(";")).write_csv(), end="")
    return _unreadable(result)


def _window_env(args: argparse.Namespace) -> dict[str, str]:
    """``--since/--until`` as the environment :func:`auditkit.report.load_logs` reads."""
    from auditkit.report import SINCE_ENV, UNTIL_ENV, parse_time

    since, until = parse_time(args.since), parse_time(args.until, end=True)
    return {SINCE_ENV: since.isoformat() if since else "",
            UNTIL_ENV: until.isoformat() if until else ""}


def cmd_run(args: argparse.Namespace) -> int:
    from auditkit.report import run_notebook
    from auditkit.schedule import dated

    params = {name: _param_value(value) for name, value in args.parameters or []}
    if args.parameters_file:
        params = _read_parameters_file(args.parameters_file) | params
    out = run_notebook(Path(args.notebook), dated(args.output), params, env=_window_env(args))
    print(out)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from auditkit.schedule import scheduled_report

    params = {name: _param_value(value) for name, value in args.parameters or []}
    if args.parameters_file:
        params = _read_parameters_file(args.parameters_file) | params
    for key in ("pg_prefix", "tz", "classification", "format"):
        value = getattr(args, key, None)
        if value is not None and value != "UTC":
            params.setdefault(key, value)
    if getattr(args, "identity_map", None):  # for the notebooks that declare it
        params.setdefault("identity_map", str(Path(args.identity_map).resolve()))
    done = scheduled_report([str(p) for p in args.paths], args.output, params,
                            since=args.since, until=args.until, force=args.force)
    if done.skipped:
        print(f"auditkit: inputs unchanged since {done.reused_from}: skipped, no notebook run",
              file=sys.stderr)
    print(done.index)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from auditkit.report import build_report

    samples = Path(__file__).resolve().parent.parent / "sample_logs"
    if not samples.is_dir():
        raise ConfigError(f"{samples}: sample logs not found (run from a clone of the repo)")
    index = build_report([str(samples)], Path(args.output), {})
    print(f"report: {index.resolve()}")
    return 0


def _param_value(text: str):
    """Command-line parameter values are YAML scalars: 3 -> int, true -> bool, null -> None."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="TIME",
                        help="only events at or after this ISO date/time (UTC unless an offset)")
    parser.add_argument("--until", metavar="TIME",
                        help="only events before this ISO date/time; a bare date includes that day")


def _read_parameters_file(path: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read parameters ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: parameters file must be a mapping")
    return data


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``auditkit`` command."""
    parser = argparse.ArgumentParser(
        prog="auditkit", description="Investigate database audit trails."
    )
    parser.add_argument("--version", action="version", version=f"auditkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("formats", help="list supported formats")
    p.set_defaults(func=cmd_formats, debug=False)

    p = sub.add_parser("ingest", help="read, normalize and enrich logs into events")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", help="events .parquet (quarantine written beside it)")
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    _common(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("access", help="who read/wrote/changed/granted/exported what")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", help="access table .parquet or .csv (default: CSV on stdout)")
    _common(p)
    p.set_defaults(func=cmd_access)

    p = sub.add_parser("findings", help="anomalies, gateway bypasses, blind spots, risky actions")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", help="findings .parquet or .csv (default: CSV on stdout)")
    p.add_argument("--settings", help="YAML of detector settings (merged over the defaults)")
    p.add_argument("--detector", action="append", help="run only this detector (repeatable)")
    p.add_argument("--detect-from", metavar="TIME",
                   help="report findings from this UTC time on; earlier events are the baseline "
                        "(default: the first baseline.days of the data)")
    _common(p)
    p.set_defaults(func=cmd_findings)

    p = sub.add_parser("run", help="run one notebook with papermill")
    p.add_argument("notebook")
    p.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append",
                   metavar=("NAME", "VALUE"))
    p.add_argument("-f", "--parameters-file", help="YAML file of parameters")
    p.add_argument("-o", "--output", required=True,
                   help="executed notebook .ipynb; {date}, {datetime}, {time} are filled (UTC)")
    _window(p)
    p.add_argument("--debug", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="run the report notebooks and render an HTML site")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", required=True,
                   help="output folder; {date}, {datetime}, {time} are filled (UTC), "
                        "e.g. 'reports/{date}'")
    p.add_argument("-p", "--parameter", dest="parameters", nargs=2, action="append",
                   metavar=("NAME", "VALUE"))
    p.add_argument("-f", "--parameters-file", help="YAML file of parameters (-p wins)")
    _window(p)
    p.add_argument("--force", action="store_true",
                   help="run the notebooks even when an earlier report had the same inputs")
    _common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="report over sample_logs/ into ./reports/")
    p.add_argument("-o", "--output", default="reports")
    p.add_argument("--debug", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``auditkit`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AuditkitError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"auditkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("auditkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if getattr(args, "debug", False):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"auditkit: unexpected error: {type(exc).__name__}: {first} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
