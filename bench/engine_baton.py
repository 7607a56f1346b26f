"""Baton's side of the comparison (started by ``compare.py``; see there).

A ``baton serve`` process on a free loopback port over this run's database, one
worker process of ``noop_app.py`` (200 slots, serving queue ``bench``), and the
sync `baton.Client` in this process.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

from common import (
    CPU_SERVER,
    CPU_WORKER,
    HERE,
    START_P50,
    W1_ASYNC_P50,
    W2_ASYNC_RATE,
    W2_CPU_SERVER,
    W2_CPU_WORKER,
    W2_RATE,
    W3_DRAIN,
    W3_ENQUEUE,
    Children,
    CpuMeter,
    Deadline,
    Report,
    Settings,
    children,
    latency_row,
    percentile,
    read_line,
    runner_args,
)

from baton import Client, WorkflowStart

QUEUE = "bench"
BATCH = 1000  # StartWorkflows' limit per call


def start_server(kids: Children, database_url: str) -> tuple[subprocess.Popen[str], str]:
    server = kids.start(
        [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
         "--database-url", database_url, "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    line = read_line(server.stdout, timeout=60)
    found = re.search(r"port (\d+)", line)
    if found is None:
        raise RuntimeError(f"baton serve did not say its port: {line!r}")
    return server, f"127.0.0.1:{found.group(1)}"


def w1(client: Client, settings: Settings, report: Report) -> None:
    """The plain ``def`` workflow, then the same as ``async def`` (Baton's
    own row: the peers' W1 is what their usual workflow is)."""
    latency_row(report, "w1", _one_at_a_time(client, "three_noops", "w1", settings.w1_runs))
    millis = _one_at_a_time(client, "three_async_noops", "w1_async", settings.w1_runs)
    report.put(W1_ASYNC_P50, percentile(millis, 0.5))


def _one_at_a_time(client: Client, name: str, prefix: str, runs: int) -> list[float]:
    """Milliseconds from start to result of ``runs`` workflows ``name``, one at a time."""
    millis = []
    for i in range(runs):
        began = time.perf_counter()
        client.execute_workflow(name, i, workflow_id=f"{prefix}-{i}", result_timeout=60)
        millis.append((time.perf_counter() - began) * 1000)
    return millis


def w2(client: Client, settings: Settings, report: Report, pids: dict[str, list[int]]) -> None:
    """The plain ``def`` workflow (its CPU measured), then the same as
    ``async def`` (Baton's own row, as for W1)."""
    cpu = CpuMeter(pids)
    report.put(W2_RATE, _w2_rate(client, settings, "three_noops", "w2"))
    used = cpu.since_mark()
    report.put(W2_CPU_SERVER, used["server"] * 1000 / settings.w2_workflows)
    report.put(W2_CPU_WORKER, used["worker"] * 1000 / settings.w2_workflows)
    report.put(W2_ASYNC_RATE, _w2_rate(client, settings, "three_async_noops", "w2-async"))


def _w2_rate(client: Client, settings: Settings, name: str, prefix: str) -> float:
    """Started in batches (`start_workflows`) and awaited with `as_completed`,
    as a program running thousands would; the rate runs to the latest end time
    the workflows recorded, so the client's own reading after the work is done
    is not counted."""
    deadline = Deadline(settings.workload_timeout)
    starts = [
        WorkflowStart(name, (i,), workflow_id=f"{prefix}-{i}") for i in range(settings.w2_workflows)
    ]
    handles = []
    began_wall = time.time()
    for first in range(0, len(starts), BATCH):
        for item in client.start_workflows(starts[first : first + BATCH]):
            if isinstance(item, Exception):
                raise item
            handles.append(item)
    ended = max(float(h.result()) for h in client.as_completed(handles, deadline.left()))
    return settings.w2_workflows / (ended - began_wall)


def w3(client: Client, settings: Settings, report: Report) -> None:
    deadline = Deadline(settings.workload_timeout)
    starts = [
        WorkflowStart("one_task", (i,), workflow_id=f"w3-{i}", queue=QUEUE)
        for i in range(settings.w3_tasks)
    ]
    handles = []
    began_wall, began = time.time(), time.perf_counter()
    for first in range(0, len(starts), BATCH):
        for item in client.start_workflows(starts[first : first + BATCH]):
            if isinstance(item, Exception):
                raise item
            handles.append(item)
    report.put(W3_ENQUEUE, settings.w3_tasks / (time.perf_counter() - began))
    finished = [float(h.result()) for h in client.as_completed(handles, deadline.left())]
    report.put(W3_DRAIN, settings.w3_tasks / (max(finished) - began_wall))


def enqueue_to_start(client: Client, settings: Settings, report: Report) -> None:
    millis = []
    for i in range(settings.start_samples):
        called = time.time()
        handle = client.start_workflow("stamp", workflow_id=f"stamp-{i}", queue=QUEUE)
        millis.append((float(handle.result(timeout=60)) - called) * 1000)
    report.put(START_P50, percentile(millis, 0.5))


def main() -> None:
    settings, report = runner_args()
    with children() as kids:
        server, target = start_server(kids, settings.database_url)
        worker = kids.start(
            [sys.executable, str(HERE / "noop_app.py")],
            env={"BATON_TARGET": target, "BATON_QUEUES": QUEUE, "SLOTS": "200"},
        )
        with Client(target) as client:
            client.upsert_queue(QUEUE)
            for name in ("three_noops", "three_async_noops"):
                client.start_workflow(name, 0, workflow_id=f"warmup-{name}").result(timeout=60)
            pids = {"server": [server.pid], "worker": [worker.pid]}
            total = CpuMeter(pids)
            w1(client, settings, report)
            w2(client, settings, report, pids)
            w3(client, settings, report)
            enqueue_to_start(client, settings, report)
            used = total.since_mark()
            report.put(CPU_SERVER, used["server"])
            report.put(CPU_WORKER, used["worker"])


if __name__ == "__main__":
    main()
