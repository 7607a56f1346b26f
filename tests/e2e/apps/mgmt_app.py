"""A worker process for the management tests (cancel, resume, fork, versions).

Every step records a side effect (step name, workflow id, pid) in the
``effects`` table, like ``steps_app.py``. Environment:

- ``BATON_TARGET``, ``EFFECTS_URL``: the server and the test database.
- ``APP_VERSION``: the app version this worker registers.
- ``CODE_VERSION``: ``v2`` runs the patched code of ``patched``.

``held`` blocks until the test inserts a ``release`` effect for the workflow
(or any workflow with ``release-all``), so a test can cancel a workflow while it
is inside a long step and decide when that step ends.
"""

from __future__ import annotations

import os
import time

import psycopg

from baton import Worker, WorkflowContext

worker = Worker(os.environ["BATON_TARGET"], app_version=os.environ.get("APP_VERSION", ""))


def effect(step: str, workflow_id: str) -> None:
    with psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO effects (step, workflow_id, pid) VALUES (%s, %s, %s)",
            (step, workflow_id, os.getpid()),
        )


def released(workflow_id: str) -> bool:
    with psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM effects WHERE step = 'release' AND workflow_id IN (%s, 'all')",
            (workflow_id,),
        ).fetchone()
    return row is not None


@worker.step()
def note(workflow_id: str, name: str) -> str:
    effect(name, workflow_id)
    return name


@worker.step()
def held(workflow_id: str) -> str:
    effect("held", workflow_id)
    while not released(workflow_id):
        time.sleep(0.05)
    return "released"


@worker.step()
def nap(workflow_id: str, seconds: float) -> float:
    effect("nap", workflow_id)
    time.sleep(seconds)
    return seconds


@worker.workflow()
def hold_then_finish(ctx: WorkflowContext) -> str:
    ctx.run(note, ctx.workflow_id, "before")
    ctx.run(held, ctx.workflow_id)
    ctx.run(note, ctx.workflow_id, "after")
    return "finished"


@worker.workflow()
def five_steps(ctx: WorkflowContext) -> list[str]:
    return [ctx.run(note, ctx.workflow_id, f"s{i}") for i in range(1, 6)]


@worker.workflow()
def napper(ctx: WorkflowContext, seconds: float) -> float:
    return ctx.run(nap, ctx.workflow_id, seconds)


@worker.workflow()
def parent_of_napper(ctx: WorkflowContext, seconds: float) -> str:
    # Child workflows come with issue 3; this is the contract as expected there.
    child = ctx.start_workflow(  # type: ignore[attr-defined]
        "napper", seconds, workflow_id=f"{ctx.workflow_id}-child"
    )
    ctx.run(nap, ctx.workflow_id, seconds)
    return str(child.workflow_id)


@worker.workflow()
def parent_of_holder(ctx: WorkflowContext) -> str:
    child = ctx.start_workflow(  # type: ignore[attr-defined]
        "hold_then_finish", workflow_id=f"{ctx.workflow_id}-child"
    )
    ctx.run(held, ctx.workflow_id)
    return str(child.workflow_id)


@worker.step()
def old_way(workflow_id: str) -> str:
    effect("old_way", workflow_id)
    return "old"


@worker.step()
def new_way(workflow_id: str) -> str:
    effect("new_way", workflow_id)
    return "new"


@worker.workflow()
def patched(ctx: WorkflowContext) -> str:
    ctx.run(note, ctx.workflow_id, "first")
    if os.environ.get("CODE_VERSION") == "v2" and ctx.patch("new-way"):
        way = ctx.run(new_way, ctx.workflow_id)
    else:
        way = ctx.run(old_way, ctx.workflow_id)
    ctx.run(held, ctx.workflow_id)
    return way


if __name__ == "__main__":
    worker.run()
