"""A worker process for the schedule tests.

Each run of a scheduled workflow records one row in the ``effects`` table:
``step`` is the scheduled time the workflow received, ``workflow_id`` its id.
Environment:

- ``BATON_TARGET``: the server(s); ``EFFECTS_URL``: the database with ``effects``.
- ``DECLARED_CRON``: when set, the worker declares ``declared_tick`` with this
  schedule (a worker-declared schedule).
"""

from __future__ import annotations

import os

import psycopg

from baton import Worker, WorkflowContext

worker = Worker(os.environ["BATON_TARGET"], concurrency=20)


@worker.step()
def note(workflow_id: str, scheduled_time: str) -> str:
    with psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO effects (step, workflow_id, pid) VALUES (%s, %s, %s)",
            (scheduled_time, workflow_id, os.getpid()),
        )
    return scheduled_time


@worker.workflow()
def record_tick(ctx: WorkflowContext, scheduled_time: str, context: object) -> str:
    return ctx.run(note, ctx.workflow_id, scheduled_time)


@worker.workflow(schedule=os.environ.get("DECLARED_CRON") or None)
def declared_tick(ctx: WorkflowContext, scheduled_time: str, context: object) -> str:
    return ctx.run(note, ctx.workflow_id, scheduled_time)


if __name__ == "__main__":
    worker.run()
