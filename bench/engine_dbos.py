"""DBOS Transact's side of the comparison (started by ``compare.py``; see there).

DBOS runs in this process over this run's Postgres database (its system
database); workflows start with ``DBOS.start_workflow`` and run in its thread
pool; W3 and enqueue -> start go through a queue registered with the default
1 s polling interval. CPU is this process's own (DBOS has no server).
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil
from common import (
    CPU_WORKER,
    START_P50,
    W2_CPU_WORKER,
    W2_RATE,
    W3_DRAIN,
    W3_ENQUEUE,
    Deadline,
    Report,
    Settings,
    latency_row,
    percentile,
    runner_args,
)
from dbos import DBOS, DBOSConfig, SetWorkflowID

QUEUE = "bench"


@DBOS.step()
def noop(i: int) -> int:
    return i


@DBOS.workflow()
def three_noops(i: int) -> int:
    for _ in range(3):
        i = noop(i)
    return i


@DBOS.workflow()
def one_task(i: int) -> float:
    noop(i)
    return time.time()


@DBOS.workflow()
def stamp() -> float:
    return time.time()


def _cpu() -> float:
    times = psutil.Process(os.getpid()).cpu_times()
    return float(times.user + times.system)


def start(fn: Any, workflow_id: str, *args: Any) -> Any:
    with SetWorkflowID(workflow_id):
        return DBOS.start_workflow(fn, *args)


def enqueue(queue: Any, fn: Any, workflow_id: str, *args: Any) -> Any:
    with SetWorkflowID(workflow_id):
        return queue.enqueue(fn, *args)


def w1(settings: Settings, report: Report) -> None:
    millis = []
    for i in range(settings.w1_runs):
        began = time.perf_counter()
        start(three_noops, f"w1-{i}", i).get_result()
        millis.append((time.perf_counter() - began) * 1000)
    latency_row(report, "w1", millis)


def w2(settings: Settings, report: Report) -> None:
    deadline = Deadline(settings.workload_timeout)
    cpu0 = _cpu()
    began = time.perf_counter()
    handles = [start(three_noops, f"w2-{i}", i) for i in range(settings.w2_workflows)]
    for handle in handles:
        deadline.left()
        handle.get_result()
    report.put(W2_RATE, settings.w2_workflows / (time.perf_counter() - began))
    report.put(W2_CPU_WORKER, (_cpu() - cpu0) * 1000 / settings.w2_workflows)


def w3(queue: Any, settings: Settings, report: Report) -> None:
    deadline = Deadline(settings.workload_timeout)
    began_wall, began = time.time(), time.perf_counter()
    handles = [enqueue(queue, one_task, f"w3-{i}", i) for i in range(settings.w3_tasks)]
    report.put(W3_ENQUEUE, settings.w3_tasks / (time.perf_counter() - began))
    finished = []
    for handle in handles:
        deadline.left()
        finished.append(float(handle.get_result()))
    report.put(W3_DRAIN, settings.w3_tasks / (max(finished) - began_wall))


def enqueue_to_start(queue: Any, settings: Settings, report: Report) -> None:
    millis = []
    for i in range(settings.start_samples):
        called = time.time()
        handle = enqueue(queue, stamp, f"stamp-{i}")
        millis.append((float(handle.get_result()) - called) * 1000)
    report.put(START_P50, percentile(millis, 0.5))


def main() -> None:
    settings, report = runner_args()
    config: DBOSConfig = {
        "name": "baton-bench",
        "system_database_url": settings.database_url,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        queue = DBOS.register_queue(QUEUE)
        start(three_noops, "warmup", 0).get_result()
        cpu0 = _cpu()
        w1(settings, report)
        w2(settings, report)
        w3(queue, settings, report)
        enqueue_to_start(queue, settings, report)
        report.put(CPU_WORKER, _cpu() - cpu0)
        report.note("in-process: CPU rows are the one process (workflows, steps and client)")
    finally:
        DBOS.destroy(destroy_registry=True)


if __name__ == "__main__":
    main()
