"""What the folder benchmarks share: the generated folder, and timed reads of it.

``bench_cloudtrail.py``, ``bench_gcp.py`` and ``bench_azure.py`` each write a folder of 1,000
small gzip files once (under ``benchmarks/data/``, with a ``.bytes`` marker holding the JSON
size) and read it ``--repeat`` times with ``auditkit.sources.read(..., progress=True)``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from auditkit.sources import read


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every folder benchmark takes (``--files``, ``--mb``, ``--repeat``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--mb", type=float, default=100.0, help="uncompressed MB in total")
    parser.add_argument("--repeat", type=int, default=3, help="reads of the folder")
    return parser


def prepared(folder: Path, generate: Callable[[Path], int]) -> int:
    """The folder's uncompressed JSON bytes, writing the folder first if it is not there."""
    marker = folder / ".bytes"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(generate(folder)))
    return int(marker.read_text())


def timed_reads(folder: Path, size: int, files: int, repeat: int) -> None:
    """Read the folder ``repeat`` times; print MB/s and events/s by wall and CPU time for each
    read, the best and median read, the load average and the peak RSS."""
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before the run")
    walls = []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = read(folder, progress=True)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        walls.append(seconds)
        events = result.events.height
        print(f"{files} files, {size / 1e6:.1f} MB JSON, {events:,} events, "
              f"{result.quarantine.height} quarantined in {seconds:.2f} s wall, {cpu:.2f} s CPU")
        print(f"  wall: {size / 1e6 / seconds:.1f} MB/s uncompressed JSON, "
              f"{events / seconds:,.0f} events/s; "
              f"CPU: {size / 1e6 / cpu:.1f} MB/s, {events / cpu:,.0f} events/s")
    if len(walls) > 1:
        print(f"auditkit over {len(walls)} reads: best {size / 1e6 / min(walls):.1f} MB/s, "
              f"median {size / 1e6 / statistics.median(walls):.1f} MB/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB, load average {os.getloadavg()[0]:.2f} after")
