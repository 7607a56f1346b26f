"""The benchmark's worker: one workflow of three no-op steps."""

from __future__ import annotations

import os

from baton import Worker, WorkflowContext

worker = Worker(os.environ["BATON_TARGET"], concurrency=int(os.environ.get("SLOTS", "200")))


@worker.step()
def noop(i: int) -> int:
    return i


@worker.workflow()
def three_noops(ctx: WorkflowContext, i: int) -> int:
    for _ in range(3):
        i = ctx.run(noop, i)
    return i


if __name__ == "__main__":
    worker.run()
