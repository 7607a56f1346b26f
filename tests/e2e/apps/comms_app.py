"""A worker process for the communication tests (messages, events, streams,
sleep, children, concurrent steps).

Side effects go to the ``effects`` table like ``steps_app.py``; behaviour is
steered by environment variables:

- ``BATON_TARGET``, ``EFFECTS_URL``: the server and the database with ``effects``.
- ``HANG_IN``: a step name that blocks forever once it has recorded its effect.
- ``DIE_IN``: a step name that kills its own process once it has recorded its effect.
- ``FAST``: which of the two racing steps of ``selector`` is fast (``a`` or ``b``).
- ``EVICT_AFTER``: ``evict_waits_after`` in seconds (default 30; ``none`` never evicts).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psycopg

import baton
from baton import AsyncWorkflowContext, Worker, WorkflowContext

_evict = os.environ.get("EVICT_AFTER")
worker = Worker(
    os.environ["BATON_TARGET"],
    concurrency=int(os.environ.get("SLOTS", "50")),
    evict_waits_after=None if _evict == "none" else float(_evict or 30.0),
)


def effect(step: str, workflow_id: str) -> None:
    with psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO effects (step, workflow_id, pid) VALUES (%s, %s, %s)",
            (step, workflow_id, os.getpid()),
        )
    if os.environ.get("DIE_IN") == step:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("HANG_IN") == step:
        while True:
            time.sleep(3600)


@worker.step()
def mark(workflow_id: str, name: str) -> str:
    effect(name, workflow_id)
    return name


@worker.workflow()
def receiver(ctx: WorkflowContext, topic: str | None, count: int, timeout: float) -> list[Any]:
    ctx.set_event("ready", True)
    return [ctx.recv(topic, timeout=timeout) for _ in range(count)]


@worker.workflow()
def topics(ctx: WorkflowContext) -> dict[str, Any]:
    ctx.set_event("ready", True)
    return {
        "a": ctx.recv("a", timeout=30),
        "none": ctx.recv(timeout=30),
        "b": ctx.recv("b", timeout=30),
        "a_again": ctx.recv("a", timeout=0.5),
    }


@worker.workflow()
def waits_then_receives(ctx: WorkflowContext, timeout: float) -> dict[str, Any]:
    """Marks a step (where a test kills the worker), then receives with a timeout."""
    ctx.run(mark, ctx.workflow_id, "before_recv")
    started = ctx.now()
    message = ctx.recv("late", timeout=timeout)
    return {"message": message, "started": started.isoformat()}


@worker.workflow()
def sender(ctx: WorkflowContext, destination: str, count: int) -> int:
    for index in range(count):
        ctx.send(destination, {"n": index}, topic="inbox")
    ctx.run(mark, ctx.workflow_id, "after_send")
    return count


@worker.workflow()
def publisher(ctx: WorkflowContext) -> str:
    ctx.set_event("status", "one")
    ctx.recv("go", timeout=60)
    ctx.set_event("status", "two")
    ctx.set_event("progress", 100)
    return "published"


@worker.workflow()
def event_reader(ctx: WorkflowContext, target: str, key: str, timeout: float) -> Any:
    value = ctx.get_event(target, key, timeout=timeout)
    ctx.run(mark, ctx.workflow_id, "after_get_event")
    return value


@worker.workflow()
def streamer(ctx: WorkflowContext, count: int, key: str) -> int:
    for index in range(count):
        ctx.write_stream(key, index)
    ctx.close_stream(key)
    return count


@worker.workflow()
def slow_streamer(ctx: WorkflowContext, count: int) -> int:
    """Writes without closing: readers end when the workflow finishes."""
    for index in range(count):
        ctx.write_stream("slow", {"i": index})
        ctx.sleep(0.05)
    return count


@worker.step()
def writes_from_step(workflow_id: str) -> str:
    baton.write_stream("mixed", "from-step-1")
    baton.write_stream("mixed", "from-step-2")
    effect("step_wrote", workflow_id)  # DIE_IN=step_wrote crashes after the writes
    return "step done"


@worker.workflow()
def mixed_writer(ctx: WorkflowContext) -> str:
    ctx.write_stream("mixed", "from-workflow-1")
    ctx.run(writes_from_step, ctx.workflow_id)
    ctx.write_stream("mixed", "from-workflow-2")
    return "written"


@worker.workflow()
def sleeper(ctx: WorkflowContext, seconds: float) -> str:
    ctx.run(mark, ctx.workflow_id, "before_sleep")
    ctx.sleep(seconds)
    ctx.run(mark, ctx.workflow_id, "after_sleep")
    return "rested"


@worker.workflow()
def child(ctx: WorkflowContext, x: int) -> int:
    ctx.run(mark, ctx.workflow_id, "child_ran")
    return x * 10


@worker.workflow()
def parent(ctx: WorkflowContext, x: int) -> dict[str, Any]:
    handle = ctx.start_workflow(child, x)
    ctx.run(mark, ctx.workflow_id, "parent_started_child")
    return {"child_id": handle.workflow_id, "result": handle.result()}


@worker.step()
def racer(workflow_id: str, name: str, seconds: float) -> str:
    time.sleep(seconds)
    effect(f"racer_{name}", workflow_id)
    return name


@worker.workflow()
def selector(ctx: WorkflowContext) -> dict[str, Any]:
    fast = os.environ.get("FAST", "a")
    a = ctx.go(racer, ctx.workflow_id, "a", 0.05 if fast == "a" else 1.0)
    b = ctx.go(racer, ctx.workflow_id, "b", 0.05 if fast == "b" else 1.0)
    winner = ctx.select([a, b])
    both = ctx.gather(a, b)
    ctx.run(mark, ctx.workflow_id, "after_select")
    return {"winner": winner, "both": both, "random": ctx.random()}


@worker.workflow()
def numbered_by_call_order(ctx: WorkflowContext) -> list[str]:
    slow = ctx.go(racer, ctx.workflow_id, "slow", 0.5)
    quick = ctx.go(racer, ctx.workflow_id, "quick", 0.0)
    return list(ctx.gather(slow, quick))


@worker.workflow()
async def async_comms(ctx: AsyncWorkflowContext, peer: str) -> dict[str, Any]:
    await ctx.set_event("ready", True)
    message = await ctx.recv("ping", timeout=30)
    await ctx.send(peer, {"pong": message}, topic="reply")
    await ctx.write_stream("out", "hello")
    await ctx.close_stream("out")
    await ctx.sleep(0.1)
    handle = await ctx.start_workflow(child, 4)
    first = ctx.go(racer, ctx.workflow_id, "x", 0.0)
    second = ctx.go(racer, ctx.workflow_id, "y", 0.3)
    winner = await ctx.select([first, second])
    return {
        "message": message,
        "child": await handle.result(),
        "winner": winner,
        "event": await ctx.get_event(ctx.workflow_id, "ready", timeout=1),
    }


@worker.workflow()
def uses_remote_step(ctx: WorkflowContext, width: int) -> dict[str, Any]:
    resized = ctx.run("resize_image", ctx.workflow_id, width)  # hosted by another worker
    ctx.run(mark, ctx.workflow_id, "after_remote")
    return {"resized": resized, "runs_here": os.getpid()}


if __name__ == "__main__":
    worker.run()
