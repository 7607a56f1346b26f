"""Pending remote step calls (``remote_step_tasks``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from baton_server.connector import Tx
from baton_server.store.models import Payload, payload_from


@dataclass(frozen=True)
class RemoteTask:
    """A remote step call waiting for, or running on, a worker that hosts the step."""

    task_id: str
    workflow_id: str
    function_id: int
    attempt: int
    step_name: str
    input: Payload | None
    status: str
    worker_id: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RemoteTask:
        """Builds it from a ``SELECT *`` row."""
        return cls(
            task_id=row["task_id"],
            workflow_id=row["workflow_id"],
            function_id=row["function_id"],
            attempt=row["attempt"],
            step_name=row["step_name"],
            input=payload_from(row["input_encoding"], row["input"]),
            status=row["status"],
            worker_id=row["worker_id"],
        )


async def upsert(
    tx: Tx,
    *,
    task_id: str,
    workflow_id: str,
    function_id: int,
    attempt: int,
    step_name: str,
    input: Payload | None,
) -> None:
    """Creates the task (or moves an existing one to the caller's newer attempt)
    and wakes the routers of every replica at commit."""
    await tx.execute(
        "upsert_remote_step",
        {
            "task_id": task_id,
            "workflow_id": workflow_id,
            "function_id": function_id,
            "attempt": attempt,
            "step_name": step_name,
            "input_encoding": input.encoding if input else None,
            "input": input.data if input else None,
        },
    )
    await tx.execute("notify_remote_step", {"step_name": step_name})


async def claim(tx: Tx, *, worker_id: str, step_names: list[str], limit: int) -> list[RemoteTask]:
    """Makes ``worker_id`` run up to ``limit`` waiting tasks of the steps it hosts."""
    rows = await tx.fetch(
        "claim_remote_steps", {"worker_id": worker_id, "step_names": step_names, "limit": limit}
    )
    return [RemoteTask.from_row(row) for row in rows]


async def release_not_running(tx: Tx, worker_id: str, running: list[str]) -> list[str]:
    """Puts back the tasks pushed to ``worker_id`` that it does not list as
    ``running``; returns their ids."""
    rows = await tx.fetch(
        "release_remote_steps_not_running", {"worker_id": worker_id, "running": running}
    )
    return [row["task_id"] for row in rows]


async def release(tx: Tx, task_id: str) -> None:
    """Puts a task back to WAITING."""
    await tx.execute("release_remote_step", {"task_id": task_id})


async def release_lost(tx: Tx) -> list[str]:
    """Puts back the tasks of workers whose lease expired; returns their step names."""
    return [row["step_name"] for row in await tx.fetch("release_lost_remote_steps")]


async def take(tx: Tx, task_id: str) -> RemoteTask | None:
    """Locks a task (for its completion), if it still exists."""
    row = await tx.fetch_one("take_remote_step", {"task_id": task_id})
    return RemoteTask.from_row(row) if row else None


async def delete(tx: Tx, task_id: str) -> None:
    """Forgets a task whose result is recorded."""
    await tx.execute("delete_remote_step", {"task_id": task_id})
