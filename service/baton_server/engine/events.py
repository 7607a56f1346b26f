"""Events: a workflow publishes key-value pairs (latest value wins, history
kept per step); anyone reads them, waiting up to a timeout.

A reader waits on this replica for a ``baton_comms`` notification of the
workflow (a hint) with a periodic re-check. A workflow reading an event has
the value recorded as its step, so replay sees the same value even if the
event changed since; its wait's deadline is recorded the first time.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from baton_server.connector import Connector
from baton_server.engine import journal
from baton_server.engine.journal import Caller, Replayed
from baton_server.engine.waiters import StatusWaiters, wait_event
from baton_server.errors import workflow_not_found
from baton_server.store import events, messages, waits, workflows
from baton_server.store.events import Event
from baton_server.store.models import Payload

RECHECK_SECONDS = 2.0


class Events:
    """SetEvent, GetEvent, ListEvents; one per replica."""

    def __init__(self, connector: Connector, waiters: StatusWaiters) -> None:
        self._connector = connector
        self._waiters = waiters

    async def set_event(self, caller: Caller, key: str, value: Payload | None) -> None:
        """Sets an event of the calling workflow, recorded as its step (exactly once)."""
        try:
            async with self._connector.transaction() as tx:
                await journal.record(tx, caller, journal.SET_EVENT)
                await events.set_value(
                    tx,
                    workflow_id=caller.workflow_id,
                    function_id=caller.function_id,
                    key=key,
                    value=value,
                )
                await messages.notify(tx, caller.workflow_id)
        except Replayed:
            return

    async def get_event(
        self, workflow_id: str, key: str, timeout: float, caller: Caller | None = None
    ) -> tuple[bool, Payload | None]:
        """``(found, value)`` of an event, waiting up to ``timeout`` for it to be set.

        With ``caller`` the outcome is recorded as the caller's step and its
        wait's deadline is durable.

        Raises:
            NotFound: No workflow ``workflow_id``.
        """
        remaining = timeout
        if caller is not None:
            async with self._connector.transaction() as tx:
                done = await journal.recorded(tx, caller)
                if done is not None:
                    return done.output is not None, done.output
                if timeout > 0:
                    _, remaining = await waits.deadline(
                        tx, caller.workflow_id, caller.function_id, timedelta(seconds=timeout)
                    )
        event = await self._wait(workflow_id, key, remaining)
        if caller is None:
            return event is not None, event.value if event else None
        output = (event.value or journal.JSON_NULL) if event is not None else None
        try:
            async with self._connector.transaction() as tx:
                step = await journal.record(tx, caller, journal.GET_EVENT, output=output)
        except Replayed as replayed:
            step = replayed.step
        return step.output is not None, step.output

    async def _wait(self, workflow_id: str, key: str, timeout: float) -> Event | None:
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        checked = False
        with self._waiters.watch(workflow_id) as changed:
            while True:
                changed.clear()
                async with self._connector.transaction() as tx:
                    event = await events.get(tx, workflow_id, key)
                    if event is None and not checked:
                        if await workflows.get(tx, workflow_id) is None:
                            raise workflow_not_found(workflow_id)
                        checked = True
                if event is not None:
                    return event
                left = until - loop.time()
                if left <= 0:
                    return None
                await wait_event(changed, min(left, RECHECK_SECONDS))

    async def list_events(self, workflow_id: str) -> list[Event]:
        """Every event of a workflow with its latest value.

        Raises:
            NotFound: No workflow ``workflow_id``.
        """
        async with self._connector.transaction() as tx:
            found = await events.list_all(tx, workflow_id)
            if not found and await workflows.get(tx, workflow_id) is None:
                raise workflow_not_found(workflow_id)
        return found
