"""Reads and guarded writes of ``workflows``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from baton_server.connector import Tx
from baton_server.store import steps
from baton_server.store.models import Failure, Payload, Step, Workflow
from baton_server.store.steps import NewStep


@dataclass(frozen=True)
class NewWorkflow:
    """What StartWorkflow asks for."""

    workflow_id: str
    workflow_name: str
    input: Payload | None
    queue: str = ""
    app_version: str = ""
    max_attempts: int = 0
    parent_workflow_id: str | None = None
    deadline: datetime | None = None
    trace_carrier: dict[str, str] | None = None


async def insert(tx: Tx, new: NewWorkflow, *, owner: str | None = None) -> Workflow | None:
    """Creates the workflow; ``None`` when its id is already taken.

    A created workflow wakes every replica's dispatcher when ``tx`` commits;
    with ``owner``, it is instead created dispatched to that worker (PENDING,
    attempt 1) and wakes nobody.
    """
    row = await tx.fetch_one(
        "insert_workflow" if owner is None else "insert_workflow_dispatched",
        {
            "workflow_id": new.workflow_id,
            "workflow_name": new.workflow_name,
            "input_encoding": new.input.encoding if new.input else None,
            "input": new.input.data if new.input else None,
            "queue": new.queue,
            "app_version": new.app_version,
            "max_attempts": new.max_attempts,
            "parent_workflow_id": new.parent_workflow_id,
            "deadline": new.deadline,
            "trace_carrier": Jsonb(new.trace_carrier) if new.trace_carrier else None,
            "owner_worker_id": owner,
        },
    )
    return Workflow.from_row(row) if row else None


async def get(tx: Tx, workflow_id: str) -> Workflow | None:
    """The workflow with this id, if any."""
    row = await tx.fetch_one("get_workflow", {"workflow_id": workflow_id})
    return Workflow.from_row(row) if row else None


async def get_many(tx: Tx, workflow_ids: list[str]) -> dict[str, Workflow]:
    """The existing workflows among ``workflow_ids``, by id."""
    rows = await tx.fetch("get_workflows", {"workflow_ids": workflow_ids})
    return {row["workflow_id"]: Workflow.from_row(row) for row in rows}


async def existing_ids(tx: Tx, workflow_ids: list[str]) -> set[str]:
    """Which of ``workflow_ids`` name a workflow."""
    rows = await tx.fetch("existing_workflow_ids", {"workflow_ids": workflow_ids})
    return {row["workflow_id"] for row in rows}


async def get_finished(tx: Tx, workflow_ids: list[str]) -> dict[str, Workflow]:
    """The finished workflows among ``workflow_ids``, by id."""
    rows = await tx.fetch("finished_workflows", {"workflow_ids": workflow_ids})
    return {row["workflow_id"]: Workflow.from_row(row) for row in rows}


async def lock(tx: Tx, workflow_id: str) -> Workflow | None:
    """The workflow with this id, locked against other updates until ``tx`` ends."""
    row = await tx.fetch_one("lock_workflow", {"workflow_id": workflow_id})
    return Workflow.from_row(row) if row else None


async def notify_enqueued(tx: Tx, workflow_name: str) -> None:
    """Wakes every replica's dispatcher when ``tx`` commits."""
    await tx.execute("notify_enqueued", {"workflow_name": workflow_name})


async def notify_status(tx: Tx, workflow_id: str) -> None:
    """Wakes the awaiters of ``workflow_id`` when ``tx`` commits."""
    await tx.execute("notify_status", {"workflow_id": workflow_id})


async def notify_statuses(tx: Tx, workflow_ids: list[str]) -> None:
    """Wakes the awaiters of several workflows when ``tx`` commits."""
    if workflow_ids:
        await tx.execute("notify_statuses", {"workflow_ids": workflow_ids})


async def claim(
    tx: Tx, *, worker_id: str, workflow_names: list[str], app_version: str, limit: int
) -> list[Workflow]:
    """Makes ``worker_id`` the owner of up to ``limit`` waiting workflows."""
    rows = await tx.fetch(
        "claim_workflows",
        {
            "worker_id": worker_id,
            "workflow_names": workflow_names,
            "app_version": app_version,
            "limit": limit,
        },
    )
    return [Workflow.from_row(row) for row in rows]


async def release(tx: Tx, workflow_id: str, attempt: int) -> bool:
    """Gives a claimed workflow back. False: it is no longer that attempt's."""
    return (
        await tx.execute("release_workflow", {"workflow_id": workflow_id, "attempt": attempt}) > 0
    )


async def exceed_max_attempts(tx: Tx, workflow_id: str, attempt: int, failure: Failure) -> bool:
    """Stops a workflow as a dead letter. False: the attempt is no longer current."""
    changed = await tx.execute(
        "exceed_max_attempts",
        {"workflow_id": workflow_id, "attempt": attempt, "error": Jsonb(failure.to_json())},
    )
    return changed > 0


@dataclass(frozen=True)
class Completion:
    """A workflow's result, from the attempt that ran it (exactly one of output, error)."""

    workflow_id: str
    attempt: int
    output: Payload | None
    error: Failure | None
    follows_step: int = 0
    """A step that must be recorded before this is written (0: none)."""

    @property
    def status(self) -> str:
        """The status it finishes with."""
        return "ERROR" if self.error is not None else "SUCCESS"


async def complete_many(tx: Tx, completions: list[Completion]) -> list[Workflow]:
    """Finishes several PENDING workflows in one statement, each only for its
    owner's current attempt; their awaiters (and, for a queued one, every
    dispatcher) are notified when it commits.

    Returns those finished, as they are now; one missing from the result
    changed nothing (a stale attempt, a workflow no longer PENDING, one
    finished before, or one whose ``follows_step`` is not recorded). A single
    completion goes through a one-row statement (no arrays to build and unpack).
    """
    if len(completions) == 1:
        row = await tx.fetch_one("complete_workflow", _completion_params(completions[0]))
        return [Workflow.from_row(row)] if row else []
    rows = await tx.fetch(
        "complete_workflows",
        {
            "workflow_ids": [c.workflow_id for c in completions],
            "attempts": [c.attempt for c in completions],
            "statuses": [c.status for c in completions],
            **steps.result_arrays([(c.output, c.error) for c in completions]),
            "follows": [c.follows_step for c in completions],
        },
    )
    return [Workflow.from_row(row) for row in rows]


async def complete_after_step(
    tx: Tx, step: NewStep, completion: Completion
) -> tuple[Step, Workflow] | None:
    """Appends a workflow's last step and finishes the workflow in one statement
    (``completion`` is the same workflow and attempt, and follows ``step``).

    Returns the step and the workflow as written, or ``None`` when nothing was
    written: a stale attempt, a workflow no longer PENDING, or the step recorded
    before (where `steps.record` then `complete_many` would still finish the
    workflow). Handled one at a time, each then tells why, or lands.
    """
    row = await tx.fetch_one(
        "complete_workflow_after_step",
        {
            **_completion_params(completion),
            **{f"step_{key}": value for key, value in steps.params(step).items()},
        },
    )
    if row is None:
        return None
    return step.recorded(row["step_completed_at"]), Workflow.from_row(row)


def _completion_params(completion: Completion) -> dict[str, object]:
    """The parameters of the one-row completion statements."""
    return {
        "workflow_id": completion.workflow_id,
        "attempt": completion.attempt,
        "status": completion.status,
        **steps.result_params(completion.output, completion.error),
        "follows": completion.follows_step,
    }


async def release_expired_leases(tx: Tx) -> list[tuple[str, str]]:
    """Enqueues again the PENDING workflows of lost workers: ``(id, name)`` pairs."""
    rows = await tx.fetch("release_expired_leases")
    return [(row["workflow_id"], row["workflow_name"]) for row in rows]


async def release_not_running(
    tx: Tx, worker_id: str, running: list[tuple[str, int]]
) -> list[tuple[str, str]]:
    """Enqueues again what ``worker_id`` owns but does not run: ``(id, name)`` pairs."""
    rows = await tx.fetch(
        "release_not_running",
        {
            "worker_id": worker_id,
            "running_ids": [workflow_id for workflow_id, _ in running],
            "running_attempts": [attempt for _, attempt in running],
        },
    )
    return [(row["workflow_id"], row["workflow_name"]) for row in rows]


async def hosting_worker_exists(tx: Tx, workflow_name: str, app_version: str) -> bool:
    """Whether any live worker hosts ``workflow_name`` (of ``app_version`` if set)."""
    row = await tx.fetch_one(
        "hosting_worker_exists", {"workflow_name": workflow_name, "app_version": app_version}
    )
    return bool(row and row["hosted"])


@dataclass(frozen=True)
class ListFilter:
    """ListWorkflows' filters; ``None`` means "any"."""

    statuses: list[str] | None = None
    workflow_name: str | None = None
    queue: str | None = None
    app_version: str | None = None
    parent_workflow_id: str | None = None
    id_prefix: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    oldest_first: bool = False
    completed_after: datetime | None = None
    completed_before: datetime | None = None


async def list_page(
    tx: Tx,
    filters: ListFilter,
    *,
    limit: int,
    cursor: tuple[datetime, str] | None,
) -> list[Workflow]:
    """One page of workflows after ``cursor`` (a ``(created_at, id)`` keyset)."""
    rows = await tx.fetch(
        "list_workflows_oldest" if filters.oldest_first else "list_workflows_newest",
        {
            "statuses": filters.statuses,
            "workflow_name": filters.workflow_name,
            "queue": filters.queue,
            "app_version": filters.app_version,
            "parent_workflow_id": filters.parent_workflow_id,
            "id_prefix": filters.id_prefix,
            "created_after": filters.created_after,
            "created_before": filters.created_before,
            "completed_after": filters.completed_after,
            "completed_before": filters.completed_before,
            "cursor_created_at": cursor[0] if cursor else None,
            "cursor_id": cursor[1] if cursor else None,
            "limit": limit,
        },
    )
    return [Workflow.from_row(row) for row in rows]
