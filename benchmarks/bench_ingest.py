"""Ingest throughput: ~100 MB pgaudit logs in each container, then DuckDB on the same csvlog.

    python benchmarks/bench_ingest.py [--mb 100] [--keep]

Prints MB/s and events/s of `auditkit ingest` (full pipeline: framing, pgaudit parsing, outcome
correlation, SQL analysis, Parquet output) per container, its peak memory, and the time DuckDB
(a benchmark-only dependency) takes to `read_csv` the csvlog and split the AUDIT message with
SQL: the tool a user would reach for instead. DuckDB's split is approximate: it cuts on every
comma, so quoted statements with commas come out wrong; auditkit's parse is quoting-correct.
Each measurement runs in a fresh process so peak RSS belongs to that run alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

INGEST = """
import json, resource, sys, time
from auditkit.cli import main
start = time.perf_counter()
code = main(["ingest", sys.argv[1], "-o", sys.argv[2], "--json"])
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"code": code, "seconds": elapsed, "peak_rss": rss}), file=sys.stderr)
"""

DUCKDB = """
import json, resource, sys, time
import duckdb
cols = ["log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
        "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
        "transaction_id", "error_severity", "sql_state_code", "message", "detail", "hint",
        "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
        "application_name", "backend_type", "leader_pid", "query_id"]
spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
start = time.perf_counter()
con = duckdb.connect()
con.execute(f'''
  CREATE TABLE audit AS
  SELECT log_time, user_name, database_name, session_id,
         string_split(substr(message, 8), ',') AS f
  FROM read_csv('{sys.argv[1]}', header=false, columns={spec}, quote='"', escape='"')
  WHERE message LIKE 'AUDIT: %'
''')
con.execute('''
  CREATE TABLE parsed AS
  SELECT log_time, user_name, database_name, session_id, f[1] AS audit_type,
         f[2] AS statement_id, f[4] AS class, f[5] AS command, f[7] AS object_name,
         f[8] AS statement
  FROM audit
''')
rows = con.execute("SELECT count(*) FROM parsed").fetchone()[0]
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": elapsed, "rows": rows, "peak_rss": rss}))
"""


def run(code: str, *args: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed: {done.stderr.strip().splitlines()[-1:]}")
    return done, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="size of each log (MB)")
    parser.add_argument("--keep", action="store_true", help="keep generated logs for reruns")
    args = parser.parse_args()
    from auditkit.samplegen import write_bulk

    DATA.mkdir(exist_ok=True)
    target = int(args.mb * 1_000_000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.platform()}")
    results = {}
    for container, suffix in (("stderr", "log"), ("csvlog", "csv"), ("jsonlog", "json")):
        path = DATA / f"bulk-{int(args.mb)}mb.{suffix}"
        if not path.exists():
            start = time.perf_counter()
            write_bulk(path, container, target)
            print(f"generated {path.name} in {time.perf_counter() - start:.1f}s")
        size = path.stat().st_size
        with tempfile.TemporaryDirectory() as tmp:
            done, _ = run(INGEST, str(path), str(Path(tmp) / "events.parquet"))
        stats = json.loads(done.stderr.strip().splitlines()[-1])
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        seconds = stats["seconds"]
        results[container] = seconds
        print(
            f"auditkit ingest {container:<8} {size / 1e6:7.1f} MB  {seconds:6.2f} s  "
            f"{size / 1e6 / seconds:7.1f} MB/s  {summary['events'] / seconds:10,.0f} events/s  "
            f"peak RSS {stats['peak_rss'] / 1e6:,.0f} MB ({stats['peak_rss'] / size:.2f}x file)  "
            f"quarantined {summary['quarantined']}"
        )
        if container == "csvlog":
            _, out = run(DUCKDB, str(path))
            duck = json.loads(out)
            print(
                f"duckdb read_csv+split csvlog {size / 1e6:7.1f} MB  {duck['seconds']:6.2f} s  "
                f"{size / 1e6 / duck['seconds']:7.1f} MB/s  {duck['rows']:,} AUDIT rows "
                f"(approximate split)  peak RSS {duck['peak_rss'] / 1e6:,.0f} MB"
            )
            print(f"auditkit/duckdb time ratio on csvlog: {seconds / duck['seconds']:.2f}")
    if not args.keep:
        for path in DATA.glob("bulk-*"):
            path.unlink()


if __name__ == "__main__":
    main()
