"""Communication benchmarks, run by hand (not part of the test suite).

    .venv/bin/python bench/comms.py [--database-url URL] [--values 1000] [--rounds 300]

S1: stream write->read latency: a workflow writes N wall-clock stamps; a client
reading the stream (started first) measures now - stamp for each (p50/p99).
M1: message round trips between two workflows (ping sends, pong answers, each
message a recorded Send and a recorded Recv); messages per second.

Server and worker are processes on loopback against the given Postgres (default:
BATON_DATABASE_URL, else 127.0.0.1:5432), in a fresh database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from common import bench_parser, create_database, drop_database, percentile  # bench/common.py
from run import HERE  # bench/run.py, beside this file

from baton import Client


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--values", type=int, default=1000, help="S1 stream values")
    parser.add_argument("--rounds", type=int, default=300, help="M1 ping-pong rounds")
    args = parser.parse_args()

    url = create_database(args.database_url, "baton_bench")
    server = subprocess.Popen(
        [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
         "--database-url", url, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    rows: list[tuple[str, str]] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert server.stdout is not None
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))  # type: ignore[union-attr]
        target = f"127.0.0.1:{port}"
        worker = subprocess.Popen(
            [sys.executable, str(HERE / "comms_app.py")],
            env={**os.environ, "BATON_TARGET": target},
        )
        with Client(target) as client:
            client.start_workflow("stamps", 1, workflow_id="warmup").result(timeout=60)

            latencies: list[float] = []
            handle = client.start_workflow("stamps", args.values, workflow_id="s1")
            for stamp in client.read_stream("s1", "stamps"):
                latencies.append((time.time() - stamp) * 1000)
            handle.result(timeout=60)
            rows.append(("S1 write->read p50 (ms)", f"{percentile(latencies, 0.50):.2f}"))
            rows.append(("S1 write->read p99 (ms)", f"{percentile(latencies, 0.99):.2f}"))

            began = time.perf_counter()
            # pong first: a message to a workflow that does not exist yet is NOT_FOUND.
            b = client.start_workflow("pong", "m1-ping", args.rounds, workflow_id="m1-pong")
            a = client.start_workflow("ping", "m1-pong", args.rounds, workflow_id="m1-ping")
            a.result(timeout=600)
            b.result(timeout=600)
            elapsed = time.perf_counter() - began
            rows.append(
                (f"M1 {2 * args.rounds} messages, round trips (msg/s)",
                 f"{2 * args.rounds / elapsed:.0f}")
            )  # fmt: skip
    finally:
        if worker is not None:
            worker.kill()
            worker.wait(timeout=10)
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
