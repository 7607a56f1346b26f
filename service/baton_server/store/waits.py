"""Deadlines of durable waits (``wait_deadlines``), and workflows released while they wait."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from baton_server.connector import Tx
from baton_server.store.models import Workflow


class WaitDeadline(NamedTuple):
    """A durable wait's deadline and the seconds left of it."""

    at: datetime
    remaining: float
    resumed: bool
    """Recorded by an earlier call: the wait began in an earlier run (or call)."""


async def deadline(tx: Tx, workflow_id: str, function_id: int, duration: timedelta) -> WaitDeadline:
    """The wait's deadline, recorded now unless it was before, and the seconds left."""
    params = {"workflow_id": workflow_id, "function_id": function_id, "duration": duration}
    recorded = await tx.execute("record_wait_deadline", params)
    row = await tx.fetch_one("get_wait_deadline", params)
    assert row is not None, "the deadline was just recorded"
    return WaitDeadline(row["deadline"], float(row["remaining"]), resumed=recorded == 0)


async def release(
    tx: Tx,
    *,
    workflow_id: str,
    attempt: int,
    wake_at: datetime,
    wait_topic: str | None = None,
    wait_workflow_id: str | None = None,
    wait_event_key: str | None = None,
) -> str | None:
    """Takes the waiting workflow from its worker until ``wake_at`` (or a
    message on ``wait_topic``, or the end of workflow ``wait_workflow_id``, or
    with ``wait_event_key`` the setting of that event of that workflow);
    returns its name.

    ``None``: nothing changed; the attempt is not the owner's, the workflow is
    not PENDING, or it was started on a queue (those are never released).
    """
    row = await tx.fetch_one(
        "release_waiting_workflow",
        {
            "workflow_id": workflow_id,
            "attempt": attempt,
            "wake_at": wake_at,
            "wait_topic": wait_topic,
            "wait_workflow_id": wait_workflow_id,
            "wait_event_key": wait_event_key,
        },
    )
    return str(row["workflow_name"]) if row else None


async def mark_awaited(tx: Tx, workflow_id: str) -> Workflow | None:
    """Marks the workflow as awaited by a released one, so that its end wakes
    that one, and returns it as it is now (locked until ``tx`` ends); ``None``
    when there is no such workflow."""
    row = await tx.fetch_one("mark_awaited", {"workflow_id": workflow_id})
    return Workflow.from_row(row) if row else None


async def seconds_to_next_wake_up(tx: Tx) -> float | None:
    """Seconds until the earliest released workflow's wait ends; ``None`` when none waits."""
    row = await tx.fetch_one("next_wake_up")
    return None if row is None or row["seconds"] is None else float(row["seconds"])
