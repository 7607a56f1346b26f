"""Queue benchmark: Baton beside DBOS, in the same run (by hand, not in the tests).

    .venv/bin/python bench/queues.py [--database-url URL] [--latency 200] [--drain 5000]
                                     [--batch 500] [--dbos-fast-poll 0.01] [--baton-only]

Measures, on each system:

- enqueue->start latency p50/p99: one workflow at a time onto a queue with no
  limits, from just before the enqueue call to the first line of the workflow
  (wall clock; everything on this machine);
- enqueue rate: N one-step workflows parked a day ahead (nothing runs meanwhile);
  Baton in `StartWorkflows` batches, DBOS one `enqueue` at a time (it has no
  batch enqueue);
- drain rate: N one-step workflows enqueued with a common start time after the
  enqueue ends, then N / (last end - first start) from the workflows' own clocks.

Baton runs as a server process and a worker process (200 slots) on loopback; its
CPU is theirs (the client's is not counted). DBOS runs in-process (one process
is client and worker; its CPU includes the enqueuing); its queues poll, every 1 s
by default, and that is the headline DBOS column; `--dbos-fast-poll` adds a
labelled column with a shorter polling interval (0 skips it). Each system gets a
fresh database on the given Postgres, dropped at the end. Postgres's own CPU is
not counted on either side.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg
from common import bench_parser, create_database, drop_database, percentile

from baton import Client, WorkflowStart

HERE = Path(__file__).resolve().parent


def _batches(items: list[WorkflowStart], size: int) -> list[list[WorkflowStart]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_baton(url: str, *, latency_runs: int, drain: int, batch: int) -> dict[str, float]:
    """The Baton measures, against a server and a worker process on ``url``."""
    server = subprocess.Popen(
        [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
         "--database-url", url, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert server.stdout is not None
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))  # type: ignore[union-attr]
        target = f"127.0.0.1:{port}"
        with Client(target) as client:
            for queue in ("latency", "drain", "parked"):
                client.upsert_queue(queue)
            worker = subprocess.Popen(
                [sys.executable, str(HERE / "queue_worker.py")],
                env={**os.environ, "BATON_TARGET": target},
            )
            client.start_workflow("stamp", -1, queue="latency").result(timeout=60)  # warm-up
            cpu0 = {p.pid: psutil.Process(p.pid).cpu_times() for p in (server, worker)}

            latencies = []
            for i in range(latency_runs):
                began = time.time()
                started = client.start_workflow("stamp", i, queue="latency").result(timeout=60)
                latencies.append((started - began) * 1000)

            parked = datetime.now(UTC) + timedelta(days=1)
            items = [WorkflowStart("one_step", (i,), queue="parked", start_at=parked)
                     for i in range(drain)]  # fmt: skip
            began_enqueue = time.perf_counter()
            for chunk in _batches(items, batch):
                client.start_workflows(chunk)
            enqueue_rate = drain / (time.perf_counter() - began_enqueue)

            release = time.time() + 2 + 1.5 * drain / enqueue_rate
            at = datetime.fromtimestamp(release, UTC)
            items = [WorkflowStart("one_step", (i,), queue="drain", start_at=at)
                     for i in range(drain)]  # fmt: skip
            handles = []
            for chunk in _batches(items, batch):
                handles += client.start_workflows(chunk)
            spans = [h.result(timeout=600) for h in handles]  # type: ignore[union-attr]
            first = min(s for s, _ in spans)
            last = max(e for _, e in spans)
            cpu = 0.0
            for process in (server, worker):
                now, before = psutil.Process(process.pid).cpu_times(), cpu0[process.pid]
                cpu += (now.user + now.system) - (before.user + before.system)
        return {
            "latency_p50": percentile(latencies, 0.50),
            "latency_p99": percentile(latencies, 0.99),
            "enqueue_rate": enqueue_rate,
            "drain_rate": drain / (last - first),
            "cpu": cpu,
        }
    finally:
        if worker is not None:
            worker.kill()
            worker.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)


def _as_url(conninfo: str) -> str:
    """A libpq URL for a connection string (DBOS takes URLs only)."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host") or "localhost"
    return (
        f"postgresql://{info.get('user', 'postgres')}{password}@{host}:{info.get('port', 5432)}"
        f"/{info['dbname']}"
    )


def run_dbos(url: str, *, poll: float, latency_runs: int, drain: int) -> dict[str, float]:
    """The DBOS measures, from ``queues_dbos.py`` in a process of its own."""
    done = subprocess.run(
        [sys.executable, str(HERE / "queues_dbos.py"), _as_url(url), "--poll", str(poll),
         "--latency", str(latency_runs), "--drain", str(drain)],
        capture_output=True, text=True, check=True, timeout=3600,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


ROWS = [
    ("enqueue->start latency p50 (ms)", "latency_p50", "{:.2f}", False),
    ("enqueue->start latency p99 (ms)", "latency_p99", "{:.2f}", False),
    ("enqueue rate (wf/s)", "enqueue_rate", "{:.0f}", True),
    ("drain rate, one-step workflows (wf/s)", "drain_rate", "{:.0f}", True),
    ("CPU s (Baton: server+worker; DBOS: its process)", "cpu", "{:.1f}", False),
]


def table(columns: list[tuple[str, dict[str, float]]]) -> str:
    """A Markdown table: one column per system, and Baton/DBOS ratios."""
    baton = columns[0][1]
    headers = ["measure"] + [name for name, _ in columns]
    headers += [f"baton / {name}" for name, _ in columns[1:]]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for label, key, fmt, _ in ROWS:
        cells = [label] + [fmt.format(values[key]) for _, values in columns]
        cells += [f"{baton[key] / values[key]:.3g}" if values[key] else "-"
                  for _, values in columns[1:]]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--latency", type=int, default=200, help="latency runs")
    parser.add_argument("--drain", type=int, default=5000, help="workflows enqueued and drained")
    parser.add_argument("--batch", type=int, default=500, help="StartWorkflows batch size")
    parser.add_argument(
        "--dbos-fast-poll", type=float, default=0.01, help="extra DBOS column's polling (0: none)"
    )
    parser.add_argument(
        "--baton-only", action="store_true", help="measure Baton alone (no DBOS columns)"
    )
    args = parser.parse_args()

    columns: list[tuple[str, dict[str, float]]] = []
    runs: list[tuple[str, float | None]] = [("baton", None)]
    if not args.baton_only:
        runs.append(("dbos (1 s poll, default)", 1.0))
    if args.dbos_fast_poll > 0 and not args.baton_only:
        runs.append((f"dbos ({args.dbos_fast_poll:g} s poll)", args.dbos_fast_poll))
    for name, poll in runs:
        url = create_database(
            args.database_url, "baton_bench_q" if poll is None else "dbos_bench_q"
        )
        try:
            if poll is None:
                values = run_baton(
                    url, latency_runs=args.latency, drain=args.drain, batch=args.batch
                )
            else:
                values = run_dbos(url, poll=poll, latency_runs=args.latency, drain=args.drain)
        finally:
            drop_database(args.database_url, url)
        columns.append((name, values))
        print(f"{name}: {values}", file=sys.stderr, flush=True)
    print(table(columns))


if __name__ == "__main__":
    main()
