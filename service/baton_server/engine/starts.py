"""Starting workflows in bulk, with their queue options (StartWorkflows,
StartWorkflow onto a queue, and every child a workflow starts).

All accepted items of a call are inserted by one multi-row statement; an item
whose id is taken returns the existing workflow (the id is an idempotency key),
and an item whose deduplication id is held by a workflow in flight is refused
with ALREADY_EXISTS naming that workflow (or returns it, when the item asks to).

A StartWorkflow onto a queue without flow control (no concurrency, worker
concurrency or rate limit, not partitioned), not delayed, is dispatched
eagerly as a plain start is: when a worker connected to this replica serves
the queue, hosts the workflow and has a free slot, and no workflow due to
start waits on the queue, the workflow is created already dequeued (PENDING)
and owned by that worker, and pushed to it after the commit, without a
dispatcher round or a claim: one statement, which checks the queue's
configuration itself. StartWorkflows batches are always enqueued.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from baton_server.connector import Connector, Tx
from baton_server.engine.dispatcher import EagerDispatch, create_dispatched
from baton_server.engine.queues import queue_not_found
from baton_server.errors import AlreadyExists, InvalidArgument, ServiceError, Unavailable
from baton_server.store import queues, starts, workflows
from baton_server.store.models import Workflow
from baton_server.store.queues import QueueConfig
from baton_server.store.starts import NewStart

# Rounds for items whose conflicting workflow finished between two statements.
_ROUNDS = 3


@dataclass(frozen=True)
class Started:
    """One item's outcome: the workflow, and whether this call created it."""

    workflow: Workflow
    created: bool


Outcome = Started | ServiceError


class OnStarted(Protocol):
    """Called with the workflows a start created, after it committed: the
    engine counts them (metrics) and, unless they were ``dispatched`` eagerly,
    wakes its dispatcher."""

    def __call__(self, created: Iterable[Workflow], *, dispatched: bool = False) -> None: ...


class Starter:
    """One per replica."""

    def __init__(
        self, connector: Connector, on_started: OnStarted, eager: EagerDispatch | None = None
    ) -> None:
        self._connector = connector
        self._on_started = on_started
        self._eager = eager
        # Queues last read with flow control: a start onto one skips the eager
        # attempt, whose statement would insert nothing. Only a hint (that
        # statement checks the queue itself); kept up to date by every read of
        # a queue's configuration here.
        self._flow_controlled: set[str] = set()

    async def start_one(self, item: NewStart) -> Started:
        """Starts one workflow (eagerly dispatched when it can be, see the
        module docstring); raises its error."""
        if item.queue and item.queue not in self._flow_controlled:
            started = await self._start_eagerly(item)
            if started is not None:
                return started
        (outcome,) = await self.start_many([item])
        if isinstance(outcome, ServiceError):
            raise outcome
        return outcome

    async def _start_eagerly(self, item: NewStart) -> Started | None:
        """Creates ``item`` dispatched to a worker of this replica, or returns
        ``None`` (nothing written) when it must be enqueued instead, or when
        its queue is missing or refuses its options (the usual path then says
        why). One statement: the queue's configuration is checked in it."""
        if self._eager is None or item.start_at is not None:
            return None
        session = self._eager.reserve(item.workflow_name, item.app_version, queue=item.queue)
        if session is None:
            return None
        created = await create_dispatched(
            self._eager, session, functools.partial(self._insert_dispatched, item)
        )
        if created is None:  # a due workflow waits on the queue, or a conflict
            return None
        return Started(created, True)

    async def _insert_dispatched(self, item: NewStart, owner: str) -> Workflow | None:
        async with self._connector.autocommit() as tx:
            created = await starts.insert_dispatched(tx, item, owner=owner)
        if created is not None:
            self._on_started([created], dispatched=True)
        return created

    async def start_many(self, items: list[NewStart]) -> list[Outcome]:
        """Starts the items; one outcome per item, in order."""
        outcomes: list[Outcome | None] = [None] * len(items)
        todo = list(range(len(items)))
        created_any = False
        for _ in range(_ROUNDS):
            if not todo:
                break
            # No transaction: the insert is one statement, whole by itself, and
            # the reads around it would see no more inside one (READ COMMITTED).
            read = {items[i].queue for i in todo if items[i].queue}
            async with self._connector.autocommit() as tx:
                todo, created, configs = await _round(tx, items, todo, outcomes)
            self._seen(read, configs)
            created_any = created_any or created
        for index in todo:  # pragma: no cover - needs three races in a row
            outcomes[index] = _repeated_conflict(items[index])
        fresh = [o.workflow for o in outcomes if isinstance(o, Started) and o.created]
        if fresh:
            self._on_started(fresh)
        return [outcome for outcome in outcomes if outcome is not None]

    def _seen(self, names: set[str], configs: dict[str, QueueConfig]) -> None:
        """Keeps the hint: ``configs`` were just read for the queues ``names``
        (a missing queue has none, and leaves the hint)."""
        for name in names:
            config = configs.get(name)
            if config is not None and config.has_flow_control:
                self._flow_controlled.add(name)
            else:
                self._flow_controlled.discard(name)


async def start_in(tx: Tx, item: NewStart) -> Started:
    """Starts one workflow inside the caller's transaction ``tx`` (a child
    started by a workflow, with the step that records it); never eagerly
    dispatched. Raises its error, as `Starter.start_one` does."""
    outcomes: list[Outcome | None] = [None]
    todo = [0]
    for _ in range(_ROUNDS):
        todo, _created, _configs = await _round(tx, [item], todo, outcomes)
        if not todo:
            break
    (outcome,) = outcomes
    if outcome is None:  # pragma: no cover - needs three races in a row
        outcome = _repeated_conflict(item)
    if isinstance(outcome, ServiceError):
        raise outcome
    return outcome


async def _round(
    tx: Tx,
    items: list[NewStart],
    todo: list[int],
    outcomes: list[Outcome | None],
) -> tuple[list[int], bool, dict[str, QueueConfig]]:
    """Inserts what it can; returns the items to try again, whether any was
    created, and the configurations of the items' queues, as read."""
    names = sorted({items[i].queue for i in todo if items[i].queue})
    configs = await queues.get_many(tx, names) if names else {}
    insertable: list[int] = []
    for index in todo:
        error = _check_queue(items[index], configs)
        if error is None:
            insertable.append(index)
        else:
            outcomes[index] = error
    created = await starts.insert_many(tx, [items[i] for i in insertable])
    taken: set[str] = set()
    conflicted: list[int] = []
    for index in insertable:
        workflow_id = items[index].workflow_id
        if workflow_id in created and workflow_id not in taken:
            taken.add(workflow_id)
            outcomes[index] = Started(created[workflow_id], True)
        else:
            conflicted.append(index)
    retry = await _conflicts(tx, items, conflicted, outcomes)
    return retry, bool(created), configs


async def _conflicts(
    tx: Tx, items: list[NewStart], conflicted: list[int], outcomes: list[Outcome | None]
) -> list[int]:
    """Resolves skipped items: existing id, or deduplication holder; else retry."""
    if not conflicted:
        return []
    existing = await workflows.get_many(tx, [items[i].workflow_id for i in conflicted])
    pairs = [
        (items[i].queue, items[i].deduplication_id)
        for i in conflicted
        if items[i].workflow_id not in existing and items[i].deduplication_id
    ]
    holders = await starts.deduplication_holders(tx, [(q, d) for q, d in pairs if d])
    holder_workflows = await workflows.get_many(tx, sorted(set(holders.values())))
    retry: list[int] = []
    for index in conflicted:
        item = items[index]
        found = existing.get(item.workflow_id)
        if found is not None:
            outcomes[index] = _same_id(item, found)
            continue
        holder_id = holders.get((item.queue, item.deduplication_id or ""))
        holder = holder_workflows.get(holder_id) if holder_id else None
        if holder is None:
            retry.append(index)  # the conflicting workflow finished meanwhile
        elif item.return_existing_duplicate:
            outcomes[index] = Started(holder, False)
        else:
            outcomes[index] = AlreadyExists(
                f"queue {item.queue!r} already has workflow {holder.workflow_id!r} in "
                f"flight with deduplication id {item.deduplication_id!r}",
                reason="DUPLICATE_DEDUPLICATION_ID",
                metadata={
                    "workflow_id": holder.workflow_id,
                    "queue": item.queue,
                    "deduplication_id": item.deduplication_id or "",
                },
            )
    return retry


def _repeated_conflict(item: NewStart) -> ServiceError:
    # Transient (UNAVAILABLE, retried by the SDKs), not ALREADY_EXISTS: a
    # caller handling duplicates must not take this for one.
    return Unavailable(
        f"workflow {item.workflow_id!r} conflicted repeatedly with concurrent starts; try again",
        reason="START_CONFLICT",
    )


def _same_id(item: NewStart, existing: Workflow) -> Outcome:
    if existing.workflow_name == item.workflow_name:
        return Started(existing, False)
    return id_taken(existing, item.workflow_name)


def id_taken(existing: Workflow, workflow_name: str) -> AlreadyExists:
    """The error for a start of ``workflow_name`` under the id of ``existing``,
    a workflow of another name."""
    return AlreadyExists(
        f"workflow id {existing.workflow_id!r} is taken by a workflow named "
        f"{existing.workflow_name!r}, not {workflow_name!r}",
        reason="WORKFLOW_ID_CONFLICT",
        metadata={
            "workflow_id": existing.workflow_id,
            "existing_workflow_name": existing.workflow_name,
        },
    )


def _check_queue(item: NewStart, configs: dict[str, QueueConfig]) -> ServiceError | None:
    """The error for queue options the item's queue does not allow, if any."""
    if not item.queue:
        return None
    config = configs.get(item.queue)
    if config is None:
        return queue_not_found(item.queue)
    if item.priority and not config.priority_enabled:
        return InvalidArgument("priority", f"queue {item.queue!r} does not have priorities enabled")
    if config.partitioned and not item.partition_key:
        return InvalidArgument("partition_key", f"is required on partitioned queue {item.queue!r}")
    if item.partition_key and not config.partitioned:
        return InvalidArgument("partition_key", f"queue {item.queue!r} is not partitioned")
    return None
