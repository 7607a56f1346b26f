"""Events: a workflow publishes key-value pairs (latest value wins, history
kept per step); anyone reads them, waiting up to a timeout.

A reader waits on this replica for a ``baton_comms`` notification of the
workflow (a hint) with a periodic re-check. A workflow reading an event has
the value recorded as its step, so replay sees the same value even if the
event changed since; its wait's deadline is recorded the first time.

A workflow still waiting for an event after a while may release its workflow
instead (see ``engine/waits.py``), until its deadline or the SetEvent of that
key: after its commit, a SetEvent makes the readers released waiting for it
claimable at once. A release reads the event holding the event's workflow's
events lock, which a SetEvent holds while it sets the value: so the release
either sees the value or committed before the set, and is woken after it.
A workflow reading its own event is never released (only its own run can set
it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from baton_server.connector import Connector
from baton_server.engine import journal
from baton_server.engine.journal import Caller, Replayed
from baton_server.engine.waiters import StatusWaiters, wait_event
from baton_server.engine.waits import releasable, release
from baton_server.errors import workflow_not_found
from baton_server.store import events, messages, waits, workflows
from baton_server.store.events import Event
from baton_server.store.models import Payload

RECHECK_SECONDS = 2.0


@dataclass(frozen=True)
class EventRead:
    """What a GetEvent ended with."""

    found: bool
    """Whether the event was set (before the timeout)."""
    value: Payload | None = None
    """Its value, when found."""
    released: bool = False
    """The reading workflow was released while it waits instead (nothing read
    or recorded)."""


class Events:
    """SetEvent, GetEvent, ListEvents; one per replica."""

    def __init__(self, connector: Connector, waiters: StatusWaiters) -> None:
        self._connector = connector
        self._waiters = waiters

    async def set_event(self, caller: Caller, key: str, value: Payload | None) -> None:
        """Sets an event of the calling workflow, recorded as its step (exactly
        once), then makes the readers released waiting for it claimable."""
        try:
            async with self._connector.transaction() as tx:
                # The events lock first, before any row: a release takes it
                # before its reader's row, so neither waits holding what the
                # other wants.
                await events.lock(tx, caller.workflow_id)
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
            pass  # set before: the readers may not have been woken (a crash in between)
        # After the commit, holding no row: a reader's row may be locked by a
        # cancel of its tree waiting for this workflow's row (parent and child
        # either way round). A release that committed before the set is woken
        # here; one after it saw the value.
        async with self._connector.autocommit() as tx:
            await events.wake_released_readers(tx, caller.workflow_id, key)

    async def get_event(
        self,
        workflow_id: str,
        key: str,
        timeout: float,
        caller: Caller | None = None,
        release_if_longer_than: float | None = None,
    ) -> EventRead:
        """An event's latest value, waiting up to ``timeout`` for it to be set.

        With ``caller`` the outcome is recorded as the caller's step and its
        wait's deadline is durable. With ``release_if_longer_than`` too (and
        more than that left to wait), the call is held at most that long: if
        the event is still unset by then, the caller's workflow is released
        instead (see the module docstring) and nothing is recorded.

        Raises:
            NotFound: No workflow ``workflow_id`` when the read begins. One
                deleted later, even while its reader was released and came
                back, reads as unset: the reader gets ``None`` at its timeout.
        """
        remaining = timeout
        deadline: datetime | None = None
        resumed = False  # the caller's wait began before: the workflow existed then
        if caller is not None:
            async with self._connector.transaction() as tx:
                done = await journal.recorded(tx, caller)
                if done is not None:
                    return EventRead(done.output is not None, done.output)
                if timeout > 0:
                    deadline, remaining, resumed = await waits.deadline(
                        tx, caller.workflow_id, caller.function_id, timedelta(seconds=timeout)
                    )
        loop = asyncio.get_running_loop()
        until = loop.time() + remaining
        if (
            caller is None
            or deadline is None
            or release_if_longer_than is None
            or remaining <= release_if_longer_than
            # Its own event is set by its own run alone: a release would stop that run.
            or caller.workflow_id == workflow_id
        ):
            event = await self._wait(workflow_id, key, until, checked=resumed)
        else:
            event = await self._wait(
                workflow_id, key, loop.time() + release_if_longer_than, checked=resumed
            )
            if event is None:
                event, released = await self._get_or_release(caller, workflow_id, key, deadline)
                if released:
                    return EventRead(found=False, released=True)
                if event is None:  # started on a queue: it waits here
                    event = await self._wait(workflow_id, key, until, checked=True)
        if caller is None:
            return EventRead(event is not None, event.value if event else None)
        output = (event.value or journal.JSON_NULL) if event is not None else None
        try:
            async with self._connector.transaction() as tx:
                step = await journal.record(tx, caller, journal.GET_EVENT, output=output)
        except Replayed as replayed:
            step = replayed.step
        return EventRead(step.output is not None, step.output)

    async def _get_or_release(
        self, caller: Caller, workflow_id: str, key: str, deadline: datetime
    ) -> tuple[Event | None, bool]:
        """``(event, False)`` when it is set by now; ``(None, True)`` when it is
        not and the caller's workflow was released until ``deadline`` or its
        setting; ``(None, False)`` when the workflow may not be released (it
        was started on a queue), and nothing was done."""
        async with self._connector.transaction() as tx:
            # The events lock before the caller's row (see set_event).
            await events.lock(tx, workflow_id)
            if not await releasable(tx, caller):
                return None, False
            event = await events.get(tx, workflow_id, key)
            if event is not None:
                return event, False
            await release(tx, caller, deadline, wait_workflow_id=workflow_id, wait_event_key=key)
            return None, True

    async def _wait(
        self, workflow_id: str, key: str, until: float, *, checked: bool = False
    ) -> Event | None:
        """The event once set, or ``None`` at ``until`` (the loop's time).
        ``checked``: the workflow is known to have existed (else NotFound
        when it does not, at the first read)."""
        loop = asyncio.get_running_loop()
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
