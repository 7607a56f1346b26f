"""Durable sleep: the wake-up time is recorded the first time, so a recovered
workflow sleeps only what remains; the step is recorded on waking.

A sleeper waits on its workflow's notifications (status changes included) and
re-checks that it still owns the workflow whenever woken, so a sleep of a
cancelled or re-dispatched run ends at once, refused, instead of holding the
call (and the worker's slot) until its wake-up time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from baton_server.connector import Connector
from baton_server.engine import journal
from baton_server.engine.journal import Caller, Replayed
from baton_server.engine.waiters import StatusWaiters, wait_event
from baton_server.store import streams, waits

# A sleeper re-checks its ownership at least this often, in case a
# notification was lost.
_RECHECK_SECONDS = 2.0


class Sleeps:
    """WorkerService.Sleep; one per replica."""

    def __init__(self, connector: Connector, waiters: StatusWaiters) -> None:
        self._connector = connector
        self._waiters = waiters

    async def sleep(self, caller: Caller, duration: float) -> datetime:
        """Sleeps until the recorded wake-up time and records the step; returns that time.

        Raises:
            FailedPrecondition: The caller no longer owns the workflow (cancelled,
                finished, or run by a newer attempt).
        """
        async with self._connector.transaction() as tx:
            wake_at, remaining = await waits.deadline(
                tx, caller.workflow_id, caller.function_id, timedelta(seconds=duration)
            )
            if await journal.recorded(tx, caller) is not None:
                return wake_at
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
        return wake_at

    async def _still_owned(self, caller: Caller) -> None:
        async with self._connector.transaction() as tx:
            if not await streams.running(tx, caller.workflow_id, caller.attempt):
                await journal.refuse(tx, caller)
