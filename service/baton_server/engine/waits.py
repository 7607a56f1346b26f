"""Durable sleep: the wake-up time is recorded the first time, so a recovered
workflow sleeps only what remains; the step is recorded on waking."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from baton_server.connector import Connector
from baton_server.engine import journal
from baton_server.engine.journal import Caller, Replayed
from baton_server.store import waits


class Sleeps:
    """WorkerService.Sleep; one per replica."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    async def sleep(self, caller: Caller, duration: float) -> datetime:
        """Sleeps until the recorded wake-up time and records the step; returns that time."""
        async with self._connector.transaction() as tx:
            wake_at, remaining = await waits.deadline(
                tx, caller.workflow_id, caller.function_id, timedelta(seconds=duration)
            )
            if await journal.recorded(tx, caller) is not None:
                return wake_at
        if remaining > 0:
            await asyncio.sleep(remaining)
        try:
            async with self._connector.transaction() as tx:
                await journal.record(tx, caller, journal.SLEEP)
        except Replayed:
            pass
        return wake_at
