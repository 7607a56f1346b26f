"""Durable sleep: the wake-up time is recorded the first time, so a recovered
workflow sleeps only what remains; the step is recorded on waking.

A sleeper waits on its workflow's notifications (status changes included) and
re-checks that it still owns the workflow whenever woken, so a sleep of a
cancelled or re-dispatched run ends at once, refused, instead of holding the
call (and the worker's slot) until its wake-up time.

A long wait need not hold its worker at all: when the caller asks for it, the
workflow is *released* (a sleep with more than the caller's threshold left, at
once, in the transaction that records its wake-up time; a recv once it has
waited that long for nothing, see ``engine/messages.py``; an await of another
workflow likewise, see ``engine/children.py``; a read of another workflow's
event likewise, see ``engine/events.py``). The workflow goes
back to ENQUEUED with no owner and ``start_at`` (not before) at the recorded
end of its wait; the call answers at once and the worker drops the run. The
dispatcher leaves it alone until then (a timer wakes it at the earliest
``start_at``; a message for a released recv clears it at once), then
dispatches it like any other: its replay reaches the same wait, which is over.
Each release moves the dispatch budget up by one, so waiting is never taken for
a crashing worker. Workflows started on a queue are not released: they would
give up their place in the queue's concurrency.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from baton_server.connector import Connector, Tx
from baton_server.engine import journal
from baton_server.engine.fencing import refusal
from baton_server.engine.journal import Caller, Replayed
from baton_server.engine.waiters import StatusWaiters, wait_event
from baton_server.errors import workflow_not_found
from baton_server.store import streams, waits, workflows

# A sleeper re-checks its ownership at least this often, in case a
# notification was lost.
_RECHECK_SECONDS = 2.0


class Sleeps:
    """WorkerService.Sleep; one per replica."""

    def __init__(self, connector: Connector, waiters: StatusWaiters) -> None:
        self._connector = connector
        self._waiters = waiters

    async def sleep(
        self, caller: Caller, duration: float, release_if_longer_than: float | None = None
    ) -> tuple[datetime, bool]:
        """Sleeps until the recorded wake-up time and records the step; returns
        that time, and whether the workflow was released instead.

        With ``release_if_longer_than`` set and more than that left to sleep,
        the workflow is released (see the module docstring) and nothing waits.

        Raises:
            FailedPrecondition: The caller no longer owns the workflow (cancelled,
                finished, or run by a newer attempt).
        """
        async with self._connector.transaction() as tx:
            wake_at, remaining, _ = await waits.deadline(
                tx, caller.workflow_id, caller.function_id, timedelta(seconds=duration)
            )
            if await journal.recorded(tx, caller) is not None:
                return wake_at, False
            if (
                release_if_longer_than is not None
                and remaining > release_if_longer_than
                and await releasable(tx, caller)
            ):
                await release(tx, caller, wake_at)
                return wake_at, True
        loop = asyncio.get_running_loop()
        until = loop.time() + remaining
        with self._waiters.watch(caller.workflow_id) as changed:
            while (left := until - loop.time()) > 0:
                changed.clear()
                await self._still_owned(caller)
                await wait_event(changed, min(left, _RECHECK_SECONDS))
        try:
            async with self._connector.transaction() as tx:
                await journal.record(tx, caller, journal.SLEEP)
        except Replayed:
            pass
        return wake_at, False

    async def _still_owned(self, caller: Caller) -> None:
        async with self._connector.transaction() as tx:
            if not await streams.running(tx, caller.workflow_id, caller.attempt):
                await journal.refuse(tx, caller)


async def releasable(tx: Tx, caller: Caller) -> bool:
    """Locks the caller's workflow until ``tx`` ends, and says whether it may be
    released while it waits: not when it was started on a queue.

    Raises:
        NotFound: The workflow does not exist.
        FailedPrecondition: The caller no longer owns the workflow.
    """
    workflow = await workflows.lock(tx, caller.workflow_id)
    if workflow is None:
        raise workflow_not_found(caller.workflow_id)
    if workflow.status != "PENDING" or workflow.attempt != caller.attempt:
        raise refusal(workflow, caller.attempt)
    return workflow.queue == ""


async def release(
    tx: Tx,
    caller: Caller,
    wake_at: datetime,
    *,
    wait_topic: str | None = None,
    wait_workflow_id: str | None = None,
    wait_event_key: str | None = None,
) -> None:
    """Releases the caller's workflow, locked by :func:`releasable`, until
    ``wake_at`` (or a message on ``wait_topic``, or the end of workflow
    ``wait_workflow_id``, or with ``wait_event_key`` the setting of that event
    of that workflow, when not ``None``)."""
    name = await waits.release(
        tx,
        workflow_id=caller.workflow_id,
        attempt=caller.attempt,
        wake_at=wake_at,
        wait_topic=wait_topic,
        wait_workflow_id=wait_workflow_id,
        wait_event_key=wait_event_key,
    )
    assert name is not None, "releasable() locked it, owned by the caller"
    # Every replica's dispatcher learns the new wake-up time (and arms its timer).
    await workflows.notify_enqueued(tx, name)
    await workflows.notify_status(tx, caller.workflow_id)
