"""Queues: their configuration, usage counts, claims and timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from baton_server.connector import Tx
from baton_server.store.models import Workflow


@dataclass(frozen=True)
class QueueConfig:
    """A row of ``queues``: a queue's flow control."""

    name: str
    concurrency: int = 0
    """Most running at once (per partition key when ``partitioned``); 0: no limit."""
    worker_concurrency: int = 0
    """Most running at once on one worker; 0: no limit."""
    rate_limit: int = 0
    """Most starts in any rolling ``rate_period``; 0: no limit."""
    rate_period: timedelta | None = None
    """The rate limit's window."""
    priority_enabled: bool = False
    """Whether starts may carry a priority."""
    partitioned: bool = False
    """Whether ``concurrency`` applies per partition key."""
    start_to_close_timeout: timedelta | None = None
    """Default timeout counted from dequeue."""

    @property
    def has_global_budget(self) -> bool:
        """Whether claims must be serialized for the budget to hold across replicas."""
        return self.concurrency > 0 or self.rate_limit > 0 or self.partitioned

    @property
    def has_flow_control(self) -> bool:
        """Whether any budget applies (global or per worker): a start onto it
        waits for a claim, never dispatched eagerly."""
        return self.has_global_budget or self.worker_concurrency > 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> QueueConfig:
        """Builds it from a ``queues`` row."""
        return cls(
            name=row["name"],
            concurrency=row["concurrency"],
            worker_concurrency=row["worker_concurrency"],
            rate_limit=row["rate_limit"],
            rate_period=row["rate_period"],
            priority_enabled=row["priority_enabled"],
            partitioned=row["partitioned"],
            start_to_close_timeout=row["start_to_close_timeout"],
        )


@dataclass(frozen=True)
class QueueStats:
    """A queue with its depth (ENQUEUED) and running (PENDING) counts."""

    config: QueueConfig
    depth: int
    running: int


@dataclass(frozen=True)
class QueueUsage:
    """What a queue's budgets have used, read under the queue's lock."""

    running: int
    running_here: int
    recent_starts: int
    rate_frees_in: float | None
    """Seconds until the oldest start leaves the rate window, if any is inside."""


def _stats(row: dict[str, Any]) -> QueueStats:
    return QueueStats(QueueConfig.from_row(row), depth=row["depth"], running=row["running"])


async def upsert(tx: Tx, config: QueueConfig) -> QueueStats:
    """Creates or replaces a queue's configuration."""
    row = await tx.fetch_one(
        "upsert_queue",
        {
            "name": config.name,
            "concurrency": config.concurrency,
            "worker_concurrency": config.worker_concurrency,
            "rate_limit": config.rate_limit,
            "rate_period": config.rate_period,
            "priority_enabled": config.priority_enabled,
            "partitioned": config.partitioned,
            "start_to_close_timeout": config.start_to_close_timeout,
        },
    )
    assert row is not None  # an upsert always returns its row
    return _stats(row)


async def get_stats(tx: Tx, name: str) -> QueueStats | None:
    """A queue with its counts, if it exists."""
    row = await tx.fetch_one("get_queue_stats", {"name": name})
    return _stats(row) if row else None


async def list_stats(tx: Tx, *, after: str, limit: int) -> list[QueueStats]:
    """Up to ``limit`` queues named after ``after``, by name."""
    rows = await tx.fetch("list_queue_stats", {"after": after, "limit": limit})
    return [_stats(row) for row in rows]


async def delete(tx: Tx, name: str) -> bool:
    """Deletes an idle queue. False: it does not exist or workflows wait on or run from it."""
    return bool(await tx.fetch_one("delete_queue", {"name": name}))


async def declare(tx: Tx, names: list[str]) -> None:
    """Creates the queues of ``names`` that do not exist, with no limits."""
    if names:
        await tx.execute("declare_queues", {"names": names})


async def get_many(tx: Tx, names: list[str]) -> dict[str, QueueConfig]:
    """The configurations of the existing queues among ``names``."""
    rows = await tx.fetch("get_queues", {"names": names})
    return {row["name"]: QueueConfig.from_row(row) for row in rows}


async def lock(tx: Tx, name: str) -> QueueConfig | None:
    """Locks the queue's row until ``tx`` ends, serializing its claims; None if deleted."""
    row = await tx.fetch_one("lock_queue", {"name": name})
    return QueueConfig.from_row(row) if row else None


async def usage(tx: Tx, config: QueueConfig, worker_id: str) -> QueueUsage:
    """The queue's running counts and recent starts (call under its lock)."""
    row = await tx.fetch_one(
        "queue_usage",
        {
            "queue": config.name,
            "worker_id": worker_id,
            "rate_period": config.rate_period if config.rate_limit > 0 else None,
        },
    )
    assert row is not None
    frees_in = row["rate_frees_in"]
    return QueueUsage(
        running=row["running"],
        running_here=row["running_here"],
        recent_starts=row["recent_starts"],
        rate_frees_in=float(frees_in) if frees_in is not None else None,
    )


async def claim(
    tx: Tx,
    config: QueueConfig,
    *,
    worker_id: str,
    workflow_names: list[str],
    app_version: str,
    limit: int,
) -> list[Workflow]:
    """Makes ``worker_id`` the owner of up to ``limit`` of the queue's waiting workflows.

    On a partitioned queue each partition key gets at most ``config.concurrency``
    running; the caller must hold the queue's lock (:func:`lock`).
    """
    params = {
        "queue": config.name,
        "worker_id": worker_id,
        "workflow_names": workflow_names,
        "app_version": app_version,
        "limit": limit,
        "queue_timeout": config.start_to_close_timeout,
        "per_partition": config.concurrency,
    }
    partitioned = config.partitioned and config.concurrency > 0
    rows = await tx.fetch("claim_queued_partitioned" if partitioned else "claim_queued", params)
    return [Workflow.from_row(row) for row in rows]


async def next_delayed_start(tx: Tx, name: str) -> float | None:
    """Seconds until the queue's earliest delayed workflow may start, if any."""
    row = await tx.fetch_one("next_delayed_start", {"queue": name})
    value = row["starts_in"] if row else None
    return float(value) if value is not None else None


async def cancel_timed_out(tx: Tx) -> list[tuple[str, str]]:
    """Cancels queue workflows past their deadline: ``(workflow_id, queue)`` pairs."""
    rows = await tx.fetch("cancel_timed_out", {})
    return [(row["workflow_id"], row["queue"]) for row in rows]


async def notify_freed(tx: Tx, workflow_id: str) -> None:
    """Wakes every dispatcher when ``tx`` commits, if the workflow was on a queue."""
    await tx.execute("notify_queue_freed", {"workflow_id": workflow_id})
