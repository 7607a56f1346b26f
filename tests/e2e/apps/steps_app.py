"""A worker process for the end-to-end tests.

Every step records a side effect (step name, workflow id, this process's pid)
in the ``effects`` table of the test's database, so a test can count how often
each step really ran, from outside the worker. Behaviour is steered by
environment variables so one file serves every scenario:

- ``BATON_TARGET``: the server; ``EFFECTS_URL``: the database with ``effects``.
- ``HANG_IN``: a step name that blocks forever once it has recorded its effect.
- ``SLOW_IN`` / ``SLOW_SECONDS``: a step that takes that long.
- ``CODE_VERSION``: ``v2`` makes ``three_steps`` call ``step_other`` second.
- ``DIE_IN``: a step that kills its own process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psycopg

from baton import AsyncWorkflowContext, Worker, WorkflowContext

worker = Worker(os.environ["BATON_TARGET"], concurrency=int(os.environ.get("SLOTS", "20")))


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
    if os.environ.get("SLOW_IN") == step:
        time.sleep(float(os.environ.get("SLOW_SECONDS", "2")))


@worker.step()
def step_one(workflow_id: str, x: int) -> int:
    effect("step_one", workflow_id)
    return x + 1


@worker.step()
def step_two(workflow_id: str, x: int) -> int:
    effect("step_two", workflow_id)
    return x * 2


@worker.step()
def step_other(workflow_id: str, x: int) -> int:
    effect("step_other", workflow_id)
    return x


@worker.step()
def step_three(workflow_id: str, x: int) -> int:
    effect("step_three", workflow_id)
    return x - 3


@worker.workflow()
def three_steps(ctx: WorkflowContext, x: int) -> dict[str, int]:
    a = ctx.run(step_one, ctx.workflow_id, x)
    second = step_other if os.environ.get("CODE_VERSION") == "v2" else step_two
    b = ctx.run(second, ctx.workflow_id, a)
    c = ctx.run(step_three, ctx.workflow_id, b)
    return {"a": a, "b": b, "c": c}


@worker.workflow(max_attempts=2)
def crashes_its_worker(ctx: WorkflowContext) -> str:
    ctx.run(step_one, ctx.workflow_id, 0)
    return "unreachable when DIE_IN=step_one"


_flaky_calls: dict[str, int] = {}


@worker.step(max_attempts=3, interval=0.01, backoff=1.0)
def flaky(workflow_id: str, failures: int) -> str:
    effect("flaky", workflow_id)
    _flaky_calls[workflow_id] = _flaky_calls.get(workflow_id, 0) + 1
    if _flaky_calls[workflow_id] <= failures:
        raise ConnectionError(f"attempt {_flaky_calls[workflow_id]} failed")
    return f"ok after {_flaky_calls[workflow_id]} calls"


@worker.workflow()
def retries(ctx: WorkflowContext, failures: int) -> str:
    try:
        return ctx.run(flaky, ctx.workflow_id, failures)
    except Exception as exc:  # the step's error after its retries, as data
        return f"gave up: {type(exc).__name__}: {exc}"


@worker.workflow()
def fails(ctx: WorkflowContext, message: str) -> None:
    raise ValueError(message)


@worker.step()
async def async_double(workflow_id: str, x: int) -> int:
    effect("async_double", workflow_id)
    await asyncio.sleep(0)
    return x * 2


@worker.workflow()
async def async_mixed(ctx: AsyncWorkflowContext, x: int) -> list[int]:
    doubled = await ctx.run(async_double, ctx.workflow_id, x)
    plus_one = await ctx.run(step_one, ctx.workflow_id, doubled)
    return [doubled, plus_one]


@worker.step()
async def event_loop_kind() -> str:
    return type(asyncio.get_running_loop()).__module__


@worker.workflow()
async def which_event_loop(ctx: AsyncWorkflowContext) -> str:
    return await ctx.run(event_loop_kind)


if __name__ == "__main__":
    worker.run()
