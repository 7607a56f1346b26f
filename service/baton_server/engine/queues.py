"""Queues: configuration, flow-controlled claims, and timeouts from dequeue.

A claim for one worker session and one queue runs inside the dispatcher's
claim transaction (so the journal read and the status notifications commit
with it). Budgets:

- ``concurrency`` (global, or per partition key), ``rate_limit``: the claim
  first locks the queue's row (``SELECT ... FOR UPDATE``), then counts what is
  running and what started inside the rate window, then claims at most what
  is left. Replicas thus claim such a queue one at a time, and the budget holds
  exactly across replicas; the lock lasts one short transaction.
- ``worker_concurrency`` alone, or no limit: no lock; ``FOR NO KEY UPDATE
  SKIP LOCKED`` lets replicas claim side by side. (A worker is served by one
  dispatcher at a time, so its own count cannot race.)

Starts are stamped with ``clock_timestamp()`` read after the lock, so the rate
window is measured in the order claims really happened. When a budget is spent
by the rate limit, or the next workflow is delayed, the dispatcher is woken
when that changes (a timer), not by polling; a finished queue workflow wakes
every replica through ``baton_enqueued``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from baton_server.config import Config
from baton_server.connector import Connector, DatabaseUnavailable, Tx
from baton_server.engine.sessions import WorkerSession
from baton_server.engine.waiters import WakeUp, pause
from baton_server.errors import FailedPrecondition, NotFound
from baton_server.store import queues, workflows
from baton_server.store.models import Workflow
from baton_server.store.queues import QueueConfig, QueueStats

log = logging.getLogger("baton.queues")


def queue_not_found(name: str) -> NotFound:
    """The error for an unknown queue."""
    return NotFound(f"queue {name!r} not found", reason="QUEUE_NOT_FOUND", metadata={"queue": name})


class Queues:
    """One per replica: queue operations, claims and the timeout sweep."""

    def __init__(self, connector: Connector, config: Config, wake: Callable[[], None]) -> None:
        self._connector = connector
        self._config = config
        self._wake = wake
        self._timers: dict[str, WakeUp] = {}

    # -- configuration -----------------------------------------------------

    async def upsert(self, config: QueueConfig) -> QueueStats:
        """Creates or replaces a queue; new limits apply from the next claim."""
        async with self._connector.transaction() as tx:
            stats = await queues.upsert(tx, config)
            await workflows.notify_enqueued(tx, config.name)  # a budget may have grown
        self._wake()
        return stats

    async def get(self, name: str) -> QueueStats:
        """A queue with its depth and running counts; NotFound if unknown."""
        async with self._connector.read() as tx:
            stats = await queues.get_stats(tx, name)
        if stats is None:
            raise queue_not_found(name)
        return stats

    async def list_page(self, *, after: str, limit: int) -> list[QueueStats]:
        """A page of queues by name."""
        async with self._connector.read() as tx:
            return await queues.list_stats(tx, after=after, limit=limit)

    async def delete(self, name: str) -> None:
        """Deletes an idle queue; NotFound if unknown, FailedPrecondition if in use."""
        async with self._connector.transaction() as tx:
            if await queues.delete(tx, name):
                return
            exists = await queues.get_stats(tx, name)
        if exists is None:
            raise queue_not_found(name)
        raise FailedPrecondition(
            f"queue {name!r} has {exists.depth} waiting and {exists.running} running "
            "workflow(s); it can be deleted once they are done",
            reason="QUEUE_NOT_EMPTY",
            metadata={"queue": name},
        )

    async def declare(self, tx: Tx, names: list[str]) -> None:
        """Creates the queues a worker serves that do not exist yet (no limits)."""
        await queues.declare(tx, names)

    # -- claims ------------------------------------------------------------

    async def claim(
        self, tx: Tx, session: WorkerSession, queue: str, limit: int
    ) -> tuple[list[Workflow], bool]:
        """Claims for ``session`` up to ``limit`` workflows of ``queue`` that its
        budgets allow, on the dispatcher's connection ``tx`` (outside a
        transaction: a queue with a global budget is claimed in one of its own,
        under the queue's lock). Returns them, and whether fewer were found than
        the budgets allowed (then call `time_delayed_starts`)."""
        found = await queues.get_many(tx, [queue])
        config = found.get(queue)
        if config is None:
            return [], False
        if not config.has_global_budget:
            return await self._claim_within(tx, session, config, limit)
        async with tx.transaction():
            locked = await queues.lock(tx, queue)
            if locked is None:
                return [], False
            return await self._claim_within(tx, session, locked, limit)

    async def _claim_within(
        self, tx: Tx, session: WorkerSession, config: QueueConfig, limit: int
    ) -> tuple[list[Workflow], bool]:
        worker_id = session.registration.worker_id
        allowed = limit
        if config.has_flow_control:
            usage = await queues.usage(tx, config, worker_id)
            if config.concurrency > 0 and not config.partitioned:
                allowed = min(allowed, config.concurrency - usage.running)
            if config.worker_concurrency > 0:
                allowed = min(allowed, config.worker_concurrency - usage.running_here)
            if config.rate_limit > 0:
                left = config.rate_limit - usage.recent_starts
                if left <= 0 and usage.rate_frees_in is not None:
                    self._wake_in(config.name, usage.rate_frees_in)
                allowed = min(allowed, left)
        if allowed <= 0:
            return [], False
        claimed = await queues.claim(
            tx,
            config,
            worker_id=worker_id,
            workflow_names=session.registration.workflow_names,
            app_version=session.registration.app_version,
            limit=allowed,
        )
        return claimed, len(claimed) < allowed

    async def time_delayed_starts(self, queue: str) -> None:
        """Wakes the dispatcher when the queue's earliest delayed workflow may start."""
        async with self._connector.read() as tx:
            starts_in = await queues.next_delayed_start(tx, queue)
        if starts_in is not None:
            self._wake_in(queue, starts_in)

    def _wake_in(self, queue: str, seconds: float) -> None:
        """Wakes the dispatcher after ``seconds`` (keeping an earlier timer for ``queue``)."""
        timer = self._timers.get(queue)
        if timer is None:
            timer = self._timers[queue] = WakeUp(self._wake)
        timer.at(asyncio.get_running_loop().time() + max(seconds, 0.0) + 0.001)

    # -- timeouts ----------------------------------------------------------

    async def run_timeouts(self) -> None:
        """Cancels queue workflows past their deadline, every heartbeat, until cancelled."""
        while True:
            await pause(self._config.heartbeat_seconds)
            try:
                await self.sweep_timeouts()
            except DatabaseUnavailable as exc:
                self._connector.health.paused(log, "queue timeouts", exc)
            except Exception:
                log.exception("queue timeout sweep failed")

    async def sweep_timeouts(self) -> int:
        """One sweep; returns how many workflows were cancelled.

        The worker running a cancelled workflow is fenced off: its next
        checkpoint is refused (FAILED_PRECONDITION) and it stops there.
        """
        async with self._connector.transaction() as tx:
            cancelled = await queues.cancel_timed_out(tx)
            if cancelled:
                await workflows.notify_statuses(tx, [wid for wid, _ in cancelled])
                for queue in {queue for _, queue in cancelled}:
                    await workflows.notify_enqueued(tx, queue)
        for workflow_id, queue in cancelled:
            log.info(
                "workflow %s cancelled: past its timeout on queue %s",
                workflow_id,
                queue,
                extra={"workflow_id": workflow_id},
            )
        if cancelled:
            self._wake()
        return len(cancelled)

    def stop(self) -> None:
        """Cancels the pending wake-up timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
