"""Baton benchmarks, run by hand (not part of the test suite).

    .venv/bin/python bench/run.py [--database-url URL] [--w1 200] [--w2 2000]

W1: one 3-step workflow at a time, start -> result, over N runs (p50/p90/p99).
W2: N workflows of 3 no-op steps started at once; workflows per second from the
first start to the last result.

It starts a server process and a worker process on loopback against the given
Postgres (default: BATON_DATABASE_URL, else the machine's at 127.0.0.1:5432) in
a fresh database, prints a table, and reports each side's CPU time.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from common import bench_parser, create_database, drop_database, percentile  # bench/common.py

from baton import Client

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--w1", type=int, default=200, help="W1 runs")
    parser.add_argument("--w2", type=int, default=2000, help="W2 workflows")
    args = parser.parse_args()

    url = create_database(args.database_url, "baton_bench")
    server = subprocess.Popen(
        [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
         "--database-url", url, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))  # type: ignore[union-attr]
        target = f"127.0.0.1:{port}"
        worker = subprocess.Popen(
            [sys.executable, str(HERE / "noop_app.py")], env={**os.environ, "BATON_TARGET": target}
        )
        rows: list[tuple[str, str]] = []
        with Client(target) as client:
            client.start_workflow("three_noops", 0, workflow_id="warmup").result(timeout=60)
            cpu0 = {p: psutil.Process(p.pid).cpu_times() for p in (server, worker)}

            latencies = []
            for i in range(args.w1):
                began = time.perf_counter()
                client.start_workflow("three_noops", i, workflow_id=f"w1-{i}").result(timeout=60)
                latencies.append((time.perf_counter() - began) * 1000)
            rows.append(("W1 start->result p50 (ms)", f"{percentile(latencies, 0.50):.2f}"))
            rows.append(("W1 start->result p90 (ms)", f"{percentile(latencies, 0.90):.2f}"))
            rows.append(("W1 start->result p99 (ms)", f"{percentile(latencies, 0.99):.2f}"))
            rows.append(("W1 mean (ms)", f"{statistics.mean(latencies):.2f}"))

            began = time.perf_counter()
            handles = [
                client.start_workflow("three_noops", i, workflow_id=f"w2-{i}")
                for i in range(args.w2)
            ]
            started = time.perf_counter()
            for handle in handles:
                handle.result(timeout=600)
            elapsed = time.perf_counter() - began
            rows.append((f"W2 {args.w2} x 3 steps (wf/s)", f"{args.w2 / elapsed:.0f}"))
            rows.append(("W2 start rate, one by one (wf/s)", f"{args.w2 / (started - began):.0f}"))
            for name, process in (("server", server), ("worker", worker)):
                now = psutil.Process(process.pid).cpu_times()
                used = (now.user + now.system) - (cpu0[process].user + cpu0[process].system)
                rows.append((f"CPU s used by the {name} (W1+W2)", f"{used:.1f}"))
        worker.kill()
    finally:
        server.terminate()
        server.wait(timeout=30)
        drop_database(args.database_url, url)

    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  baton")
    print(f"{'-' * width}  -----")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
