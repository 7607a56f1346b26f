"""Inserts of workflows with their queue options (StartWorkflow on a queue,
StartWorkflows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from baton_server.connector import Tx
from baton_server.store.models import Payload, Workflow


@dataclass(frozen=True)
class NewStart:
    """One workflow to start, with its queue options."""

    workflow_id: str
    workflow_name: str
    input: Payload | None
    queue: str = ""
    app_version: str = ""
    max_attempts: int = 0
    deduplication_id: str | None = None
    """At most one ENQUEUED or PENDING workflow per (queue, deduplication id)."""
    priority: int = 0
    partition_key: str = ""
    start_at: datetime | None = None
    """Not before this time."""
    queue_timeout: float | None = None
    """Start-to-close seconds counted from dequeue; None: the queue's."""
    return_existing_duplicate: bool = False
    """On a deduplication conflict, return the workflow in flight instead of refusing."""
    deadline: datetime | None = None
    """The absolute start-to-close deadline (from ``timeout`` or a parent)."""
    parent_workflow_id: str | None = None
    """The workflow that started it, for a child."""
    trace_carrier: dict[str, str] | None = None
    """The W3C trace context it was started in."""


async def insert_dispatched(tx: Tx, item: NewStart, *, owner: str) -> Workflow | None:
    """Creates a queued workflow already dequeued and owned by ``owner``
    (eager dispatch) when its queue exists, has no flow control, allows the
    item's priority and partition key, and no workflow due to start waits on
    it; ``None`` otherwise, or when its id or deduplication id is taken
    (nothing is written: start it with `insert_many`). Wakes nobody."""
    row = await tx.fetch_one(
        "insert_queued_dispatched",
        {
            "workflow_id": item.workflow_id,
            "workflow_name": item.workflow_name,
            "input_encoding": item.input.encoding if item.input else None,
            "input": item.input.data if item.input else None,
            "queue": item.queue,
            "app_version": item.app_version,
            "max_attempts": item.max_attempts,
            "deduplication_id": item.deduplication_id,
            "priority": item.priority,
            "partition_key": item.partition_key,
            "queue_timeout": item.queue_timeout,
            "deadline": item.deadline,
            "parent_workflow_id": item.parent_workflow_id,
            "trace_carrier": Jsonb(item.trace_carrier) if item.trace_carrier else None,
            "owner_worker_id": owner,
        },
    )
    return Workflow.from_row(row) if row else None


async def insert_many(tx: Tx, items: list[NewStart]) -> dict[str, Workflow]:
    """Inserts the items in one statement, in order; returns those created, by id.

    An item is skipped (absent from the result) when its id is taken or its
    deduplication id is held by a workflow in flight. Created workflows wake
    every replica's dispatcher when ``tx`` commits.
    """
    if not items:
        return {}
    rows = await tx.fetch(
        "insert_workflows",
        {
            "workflow_ids": [i.workflow_id for i in items],
            "workflow_names": [i.workflow_name for i in items],
            "input_encodings": [i.input.encoding if i.input else None for i in items],
            "inputs": [i.input.data if i.input else None for i in items],
            "queues": [i.queue for i in items],
            "app_versions": [i.app_version for i in items],
            "max_attempts": [i.max_attempts for i in items],
            "deduplication_ids": [i.deduplication_id for i in items],
            "priorities": [i.priority for i in items],
            "partition_keys": [i.partition_key for i in items],
            "start_ats": [i.start_at for i in items],
            "queue_timeouts": [i.queue_timeout for i in items],
            "deadlines": [i.deadline for i in items],
            "parent_workflow_ids": [i.parent_workflow_id for i in items],
            "trace_carriers": [Jsonb(i.trace_carrier) if i.trace_carrier else None for i in items],
        },
    )
    return {row["workflow_id"]: Workflow.from_row(row) for row in rows}


async def deduplication_holders(tx: Tx, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """For ``(queue, deduplication id)`` pairs, the id of the workflow in flight holding each."""
    if not pairs:
        return {}
    rows = await tx.fetch(
        "deduplication_holders",
        {"queues": [q for q, _ in pairs], "deduplication_ids": [d for _, d in pairs]},
    )
    return {(row["queue"], row["deduplication_id"]): row["workflow_id"] for row in rows}
