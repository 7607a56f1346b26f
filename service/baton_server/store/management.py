"""Guarded writes that operate workflows: cancel, resume, fork, delete,
deadlines and retention (``sql/management.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.types.json import Jsonb

from baton_server.connector import Tx
from baton_server.store.models import Failure, Workflow


@dataclass(frozen=True)
class Cancelled:
    """A workflow a cancel changed, and the worker that was running it."""

    workflow_id: str
    workflow_name: str
    owner_worker_id: str | None


async def cancel(
    tx: Tx, workflow_ids: list[str], *, include_children: bool, failure: Failure
) -> list[Cancelled]:
    """Cancels the unfinished workflows among ``workflow_ids`` (and their
    descendants with ``include_children``). Finished ones are left as they are,
    so an empty list means nothing was unfinished."""
    rows = await tx.fetch(
        "cancel_workflows",
        {
            "workflow_ids": workflow_ids,
            "include_children": include_children,
            "error": Jsonb(failure.to_json()),
        },
    )
    return [
        Cancelled(row["workflow_id"], row["workflow_name"], row["owner_worker_id"]) for row in rows
    ]


async def notify_cancel(tx: Tx, cancelled: list[Cancelled]) -> None:
    """On commit, tells the replicas holding the owners' streams to push the cancels."""
    owned = [c for c in cancelled if c.owner_worker_id]
    if owned:
        await tx.execute(
            "notify_cancel",
            {
                "workflow_ids": [c.workflow_id for c in owned],
                "worker_ids": [c.owner_worker_id for c in owned],
            },
        )


async def take_expired(tx: Tx, limit: int) -> list[str]:
    """Locks up to ``limit`` unfinished workflows past their deadline (skipping
    rows another replica holds) and returns their ids; cancel them in ``tx``."""
    rows = await tx.fetch("expire_deadlines", {"limit": limit})
    return [row["workflow_id"] for row in rows]


async def seconds_to_next_deadline(tx: Tx) -> float | None:
    """Seconds until the nearest deadline of an unfinished workflow, if any."""
    row = await tx.fetch_one("next_deadline")
    if row is None or row["seconds"] is None:
        return None
    return float(row["seconds"])


async def resume(tx: Tx, workflow_id: str, app_version: str | None) -> Workflow | None:
    """Enqueues a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again with
    a fresh attempt budget. ``None``: it is unknown or in another status."""
    row = await tx.fetch_one(
        "resume_workflow", {"workflow_id": workflow_id, "app_version": app_version}
    )
    return Workflow.from_row(row) if row else None


async def insert_fork(
    tx: Tx, workflow_id: str, new_workflow_id: str, app_version: str | None
) -> Workflow | None:
    """Creates the fork's row. ``None``: the original is unknown or the new id is taken."""
    row = await tx.fetch_one(
        "insert_fork",
        {
            "workflow_id": workflow_id,
            "new_workflow_id": new_workflow_id,
            "app_version": app_version,
        },
    )
    return Workflow.from_row(row) if row else None


async def copy_fork_history(
    tx: Tx, workflow_id: str, new_workflow_id: str, start_step: int
) -> None:
    """Copies the journal, event values and stream values the original wrote
    before ``start_step`` into the fork (inside the caller's transaction).

    Stream values written from inside a step carry no step number; they come
    along when written before the last copied step was recorded.
    """
    params = {
        "workflow_id": workflow_id,
        "new_workflow_id": new_workflow_id,
        "start_step": start_step,
    }
    row = await tx.fetch_one("fork_cutoff", params)
    cutoff: datetime | None = row["cutoff"] if row else None
    await tx.execute("copy_fork_steps", params)
    await tx.execute("copy_fork_events", params)
    if cutoff is not None:
        await tx.execute("copy_fork_streams", {**params, "cutoff": cutoff})


async def tree(tx: Tx, workflow_id: str, *, include_children: bool) -> dict[str, str]:
    """A workflow and (optionally) its descendants, locked: ``{id: status}``."""
    rows = await tx.fetch(
        "workflow_tree", {"workflow_id": workflow_id, "include_children": include_children}
    )
    return {row["workflow_id"]: row["status"] for row in rows}


async def delete_finished(tx: Tx, workflow_ids: list[str]) -> int:
    """Deletes the finished ones among ``workflow_ids`` with all their rows; returns how many."""
    return await tx.execute("delete_finished", {"workflow_ids": workflow_ids})


async def delete_expired(tx: Tx, age: timedelta, limit: int) -> int:
    """Deletes up to ``limit`` workflows finished more than ``age`` ago; returns how many."""
    return await tx.execute("delete_expired", {"age": age, "limit": limit})


async def hosting_versions(tx: Tx, workflow_name: str) -> list[str]:
    """The app versions of the live workers that host ``workflow_name``."""
    rows = await tx.fetch("hosting_versions", {"workflow_name": workflow_name})
    return [row["app_version"] for row in rows]
