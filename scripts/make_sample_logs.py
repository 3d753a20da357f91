"""Write the deterministic PostgreSQL 16 + pgaudit sample week.

    python scripts/make_sample_logs.py sample_logs
        the demo folder: sample_logs/postgresql/postgresql-2026-11-0D.{log,log.gz,csv,json}
        (the week as the operator's server wrote it: stderr, then csvlog, then jsonlog),
        sample_logs/mariadb/server_audit.log (the MariaDB reports-db of the same week, module
        auditkit.samplegen_mariadb), sample_logs/cloudtrail/AWSLogs/... (one CloudTrail file per
        day of the AWS account, module auditkit.samplegen_cloud) and sample_logs/README.md
        (story, people, incidents, ground truth)

    python scripts/make_sample_logs.py OUT --container csvlog --single-file
        the whole week in one container: OUT/postgresql.csv (.log for stderr, .json for jsonlog)

    python scripts/make_sample_logs.py OUT --container jsonlog
        one file per day, all in the given container: OUT/postgresql-2026-11-0D.json

Running it twice produces identical bytes (fixed seed, gzip mtime 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditkit import (  # noqa: E402
    samplegen,
    samplegen_bytebase,
    samplegen_cloud,
    samplegen_mariadb,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="output folder (created if missing)")
    parser.add_argument(
        "--container",
        choices=sorted(samplegen.CONTAINERS),
        help="write every file in this container instead of the demo layout",
    )
    parser.add_argument(
        "--single-file",
        action="store_true",
        help="with --container: the whole week in one file OUTDIR/postgresql<ext>",
    )
    parser.add_argument(
        "--prefix",
        default=samplegen.DEFAULT_PREFIX,
        help="log_line_prefix for stderr output with --container (default %(default)r)",
    )
    args = parser.parse_args(argv)
    if args.single_file and not args.container:
        parser.error("--single-file needs --container")

    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    if args.container is None:
        counts = samplegen.write_sample_logs(out)
        for name, n in counts.items():
            print(f"{out / 'postgresql' / name}\t{n} entries")
        for name, n in samplegen_mariadb.write_sample_logs(out).items():
            print(f"{out / name}\t{n} records")
        for name, n in samplegen_cloud.write_sample_logs(out).items():
            print(f"{out / name}\t{n} records")
        for name, n in samplegen_bytebase.write_sample_logs(out).items():
            print(f"{out / name}\t{n} records")
        print(f"{out / 'README.md'}")
        return 0

    ext = samplegen.CONTAINERS[args.container]
    kwargs = {"prefix": args.prefix} if args.container == "stderr" else {}
    entries = samplegen.scenario()
    if args.single_file:
        path = out / f"postgresql{ext}"
        path.write_bytes(samplegen.render(entries, args.container, **kwargs).encode("utf-8"))
        print(f"{path}\t{len(entries)} entries")
        return 0
    days: dict[str, list[samplegen.LogEntry]] = {}
    for e in entries:
        days.setdefault(e.time.date().isoformat(), []).append(e)
    counters: dict[int, int] = {}
    for day, chunk in days.items():
        path = out / f"postgresql-{day}{ext}"
        if args.container == "stderr":
            text = samplegen.render_stderr(chunk, args.prefix, line_counters=counters)
        else:
            text = samplegen.render(chunk, args.container)
        path.write_bytes(text.encode("utf-8"))
        print(f"{path}\t{len(chunk)} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
