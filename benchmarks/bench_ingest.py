"""Ingest throughput: ~100 MB pgaudit logs in each container, then DuckDB on the same csvlog.

    python benchmarks/bench_ingest.py [--mb 100] [--keep] [--runs 3] [--in-memory]

Prints MB/s and events/s of `auditkit ingest` (full pipeline: framing, pgaudit parsing, outcome
correlation, SQL analysis, Parquet output) per container, its peak memory, and the time DuckDB
(a benchmark-only dependency) takes to `read_csv` the csvlog and split the AUDIT message with
SQL: the tool a user would reach for instead. DuckDB's split is approximate: it cuts on every
comma, so quoted statements with commas come out wrong; auditkit's parse is quoting-correct.
Each measurement runs in a fresh process so peak RSS belongs to that run alone. Logs this
large take the bounded-memory streaming path (``auditkit.stream``); ``--in-memory``
measures the whole-file path instead.
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

# CPU time (user + system, all threads) is reported beside wall time: on a shared machine wall
# time varies with the other load, CPU time much less (it still grows somewhat under contention).
INGEST = """
import json, resource, sys, time
from auditkit.cli import main
start, cpu = time.perf_counter(), time.process_time()
code = main(["ingest", sys.argv[1], "-o", sys.argv[2], "--json"])
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"code": code, "seconds": elapsed, "cpu": cpu, "peak_rss": rss}),
      file=sys.stderr)
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
start, cpu = time.perf_counter(), time.process_time()
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
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
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": elapsed, "cpu": cpu, "rows": rows, "peak_rss": rss}))
"""


def run(code: str, *args: str, env: dict | None = None) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed: {done.stderr.strip().splitlines()[-1:]}")
    return done, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="size of each log (MB)")
    parser.add_argument("--keep", action="store_true", help="keep generated logs for reruns")
    parser.add_argument("--runs", type=int, default=1,
                        help="runs per measurement; the fastest (by CPU time) is reported")
    parser.add_argument("--in-memory", action="store_true",
                        help="read each log whole, as before streaming (for comparison)")
    args = parser.parse_args()
    env = dict(os.environ, AUDITKIT_STREAM_BYTES=str(1 << 62)) if args.in_memory else None
    from auditkit.samplegen import write_bulk

    DATA.mkdir(exist_ok=True)
    target = int(args.mb * 1_000_000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.platform()}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results = {}
    for container, suffix in (("stderr", "log"), ("csvlog", "csv"), ("jsonlog", "json")):
        path = DATA / f"bulk-{int(args.mb)}mb.{suffix}"
        if not path.exists():
            start = time.perf_counter()
            write_bulk(path, container, target)
            print(f"generated {path.name} in {time.perf_counter() - start:.1f}s")
        size = path.stat().st_size
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                done, _ = run(INGEST, str(path), str(Path(tmp) / "events.parquet"), env=env)
            runs.append((json.loads(done.stderr.strip().splitlines()[-1]),
                         json.loads(done.stdout.strip().splitlines()[-1])))
        stats, summary = min(runs, key=lambda r: r[0]["cpu"])
        seconds = stats["seconds"]
        results[container] = stats
        print(
            f"auditkit ingest {container:<8} {size / 1e6:7.1f} MB  {seconds:6.2f} s wall "
            f"{stats['cpu']:6.2f} s CPU  {size / 1e6 / seconds:7.1f} MB/s "
            f"({size / 1e6 / stats['cpu']:.1f} per CPU-s)  "
            f"{summary['events'] / seconds:10,.0f} events/s  "
            f"peak RSS {stats['peak_rss'] / 1e6:,.0f} MB ({stats['peak_rss'] / size:.2f}x file)  "
            f"quarantined {summary['quarantined']}"
        )
        if container == "csvlog":
            duck = min((json.loads(run(DUCKDB, str(path))[1].strip().splitlines()[-1])
                        for _ in range(args.runs)),
                       key=lambda d: d["cpu"])
            print(
                f"duckdb read_csv+split csvlog {size / 1e6:7.1f} MB  {duck['seconds']:6.2f} s wall "
                f"{duck['cpu']:6.2f} s CPU  {size / 1e6 / duck['seconds']:7.1f} MB/s  "
                f"{duck['rows']:,} AUDIT rows (approximate split)  "
                f"peak RSS {duck['peak_rss'] / 1e6:,.0f} MB"
            )
            print(f"auditkit/duckdb on csvlog: wall {seconds / duck['seconds']:.2f}x, "
                  f"CPU {stats['cpu'] / duck['cpu']:.2f}x")
    if not args.keep:
        for path in DATA.glob("bulk-*"):
            path.unlink()


if __name__ == "__main__":
    main()
