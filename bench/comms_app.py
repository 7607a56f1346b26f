"""The communication benchmark's worker: a stream writer and two ping-pong players."""

from __future__ import annotations

import os
import time

from baton import Worker, WorkflowContext

worker = Worker(os.environ["BATON_TARGET"], concurrency=int(os.environ.get("SLOTS", "50")))


@worker.workflow()
def stamps(ctx: WorkflowContext, count: int) -> int:
    """Writes ``count`` wall-clock stamps to the stream ``stamps``."""
    for _ in range(count):
        ctx.write_stream("stamps", time.time())
    ctx.close_stream("stamps")
    return count


@worker.workflow()
def ping(ctx: WorkflowContext, peer: str, rounds: int) -> int:
    """Sends ``rounds`` pings to ``peer`` and waits for each pong."""
    for index in range(rounds):
        ctx.send(peer, index, topic="ping")
        ctx.recv("pong", timeout=60)
    return rounds


@worker.workflow()
def pong(ctx: WorkflowContext, peer: str, rounds: int) -> int:
    """Answers each ping from ``peer`` with a pong."""
    for _ in range(rounds):
        value = ctx.recv("ping", timeout=60)
        ctx.send(peer, value, topic="pong")
    return rounds


if __name__ == "__main__":
    worker.run()
