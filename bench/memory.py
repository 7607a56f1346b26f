"""Memory of many long waits on one worker, run by hand (not part of the test suite).

    .venv/bin/python bench/memory.py [--database-url URL] [--receivers 10000]
        [--sleepers 10000] [--sleep 300] [--slots 50] [--evict-after 1]

One ``baton serve`` process and one worker process (``memory_app.py``, ``--slots``
workflow threads, ``evict_waits_after=--evict-after``) on loopback, over a fresh
database. It starts ``--receivers`` workflows that wait in ``ctx.recv`` (1 h
timeout), then ``--sleepers`` that ``ctx.sleep`` for ``--sleep`` seconds (each
does a step before and after its wait); waits until all of them wait at once,
evicted from the worker; reads the worker's RSS and thread count and the
server's RSS (and their peaks while the workflows arrived); sends every receiver
its message; and waits until every workflow has finished SUCCESS with what it
was sent. ``--sleep`` must outlast the time it takes to start everything.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil
import psycopg
from common import HERE, bench_parser, children, create_database, drop_database  # bench/common.py
from engine_baton import start_server  # bench/engine_baton.py

from baton import Client, WorkflowStart

BATCH = 1000  # StartWorkflows' limit per call
MIB = 1024 * 1024


@dataclass
class Peaks:
    """The largest figures seen so far."""

    worker_rss: int = 0
    worker_threads: int = 0
    server_rss: int = 0

    def sample(self, worker: psutil.Process, server: psutil.Process) -> tuple[int, int, int]:
        now = (worker.memory_info().rss, worker.num_threads(), server.memory_info().rss)
        self.worker_rss = max(self.worker_rss, now[0])
        self.worker_threads = max(self.worker_threads, now[1])
        self.server_rss = max(self.server_rss, now[2])
        return now


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--receivers", type=int, default=10_000)
    parser.add_argument("--sleepers", type=int, default=10_000)
    parser.add_argument("--sleep", type=float, default=300.0, help="seconds each sleeper sleeps")
    parser.add_argument("--slots", type=int, default=50, help="the worker's concurrency")
    parser.add_argument("--evict-after", default="1", help="evict_waits_after, or 'none'")
    parser.add_argument("--timeout", type=float, default=1800.0, help="for each phase")
    args = parser.parse_args()
    total = args.receivers + args.sleepers

    url = create_database(args.database_url, "baton_bench_memory")
    rows: list[tuple[str, str]] = []
    try:
        with children() as kids:
            server, target = start_server(kids, url)
            worker = kids.start(
                [sys.executable, str(HERE / "memory_app.py")],
                env={
                    "BATON_TARGET": target,
                    "SLOTS": str(args.slots),
                    "EVICT_AFTER": args.evict_after,
                },
            )
            worker_ps, server_ps = psutil.Process(worker.pid), psutil.Process(server.pid)
            peaks = Peaks()
            with Client(target) as client, psycopg.connect(url, autocommit=True) as db:
                client.start_workflow("sleeper", 0.0, workflow_id="warmup").result(timeout=60)
                idle = peaks.sample(worker_ps, server_ps)
                began = time.monotonic()
                _start(client, "receiver", "r", args.receivers, 3600.0)
                _start(client, "sleeper", "s", args.sleepers, args.sleep)
                started = time.monotonic() - began
                waiting = _wait(
                    lambda: _released(db) >= total,
                    args.timeout,
                    lambda: f"{_released(db)}/{total} waiting",
                    lambda: peaks.sample(worker_ps, server_ps),
                )
                rss, threads, server_rss = peaks.sample(worker_ps, server_ps)
                released = _released(db)
                rows += [
                    ("workflows waiting at once (evicted from the worker)", f"{released}"),
                    ("  of which in ctx.recv / in ctx.sleep", f"{args.receivers} / "
                     f"{args.sleepers}"),
                    ("seconds to start them / until all waited",
                     f"{started:.0f} / {waiting - began:.0f}"),
                    ("worker RSS idle -> all waiting (MiB)",
                     f"{idle[0] / MIB:.0f} -> {rss / MIB:.0f}"),
                    ("worker RSS peak (MiB)", f"{peaks.worker_rss / MIB:.0f}"),
                    ("worker threads idle -> all waiting (peak)",
                     f"{idle[1]} -> {threads} ({peaks.worker_threads})"),
                    ("server RSS idle -> all waiting (MiB)",
                     f"{idle[2] / MIB:.0f} -> {server_rss / MIB:.0f}"),
                    ("server RSS peak (MiB)", f"{peaks.server_rss / MIB:.0f}"),
                ]  # fmt: skip
                _report(rows)
                began = time.monotonic()
                with ThreadPoolExecutor(8) as pool:
                    list(
                        pool.map(
                            lambda i: client.send(f"r-{i}", {"n": i}, topic="go"),
                            range(args.receivers),
                        )
                    )
                sent = time.monotonic() - began
                _wait(
                    lambda: _finished(db, "r") >= args.receivers,
                    args.timeout,
                    lambda: f"{_finished(db, 'r')}/{args.receivers} receivers done",
                    lambda: peaks.sample(worker_ps, server_ps),
                )
                received = time.monotonic() - began
                _wait(
                    lambda: _finished(db) >= total,
                    args.timeout + args.sleep,
                    lambda: f"{_finished(db)}/{total} done",
                    lambda: peaks.sample(worker_ps, server_ps),
                )
                wrong = _wrong_outputs(db)
                rows += [
                    ("seconds to send the messages / until all receivers finished",
                     f"{sent:.0f} / {received:.0f}"),
                    ("workflows finished SUCCESS", f"{_finished(db)} of {total}"),
                    ("receivers that got another message than theirs", f"{wrong}"),
                    ("worker RSS / threads peak over the whole run (MiB / n)",
                     f"{peaks.worker_rss / MIB:.0f} / {peaks.worker_threads}"),
                    ("server RSS peak over the whole run (MiB)",
                     f"{peaks.server_rss / MIB:.0f}"),
                ]  # fmt: skip
    finally:
        drop_database(args.database_url, url)
    print()
    _report(rows)


def _start(client: Client, workflow: str, prefix: str, count: int, wait: float) -> None:
    for first in range(0, count, BATCH):
        starts = [
            WorkflowStart(workflow, (wait,), workflow_id=f"{prefix}-{i}")
            for i in range(first, min(first + BATCH, count))
        ]
        for outcome in client.start_workflows(starts):
            if isinstance(outcome, Exception):
                raise outcome


def _released(db: psycopg.Connection[tuple[int]]) -> int:
    """Workflows dispatched before and waiting again: evicted in their wait."""
    row = db.execute(
        "SELECT count(*) FROM workflows WHERE status = 'ENQUEUED' AND attempt > 0"
    ).fetchone()
    return int(row[0]) if row else 0


def _finished(db: psycopg.Connection[tuple[int]], prefix: str = "") -> int:
    row = db.execute(
        "SELECT count(*) FROM workflows WHERE status = 'SUCCESS' AND workflow_id <> 'warmup'"
        " AND starts_with(workflow_id, %s)",
        (prefix,),
    ).fetchone()
    return int(row[0]) if row else 0


def _wrong_outputs(db: psycopg.Connection[tuple[int]]) -> int:
    """Receivers whose output is not the message sent to them (``{"n": i}`` for ``r-i``)."""
    row = db.execute(
        "SELECT count(*) FROM workflows WHERE starts_with(workflow_id, 'r-')"
        " AND (output IS NULL OR convert_from(output, 'UTF8')::jsonb"
        "      <> jsonb_build_object('n', substr(workflow_id, 3)::int))"
    ).fetchone()
    return int(row[0]) if row else 0


def _wait(
    done: Callable[[], bool],
    timeout: float,
    progress: Callable[[], str],
    sample: Callable[[], object],
) -> float:
    """Samples every second until ``done()``; returns when (monotonic time)."""
    deadline = time.monotonic() + timeout
    last_said = time.monotonic()
    while not done():
        sample()
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s: {progress()}")
        if time.monotonic() - last_said > 15:
            print(progress(), file=sys.stderr, flush=True)
            last_said = time.monotonic()
        time.sleep(1.0)
    return time.monotonic()


def _report(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  baton")
    print(f"{'-' * width}  -----")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
