"""Callers waiting for a workflow's status to change on this replica.

Notifications (``baton_status``) are hints: a waiter always re-reads the row,
and also re-checks periodically in case a notification was lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from baton_server.store.models import Workflow


class Watch(asyncio.Event):
    """An event set at each change of one workflow."""

    finished: Workflow | None = None
    """The workflow as this replica finished it, when it did while watched
    (saves the watcher a re-read); ``None`` otherwise."""

    def note(self, workflow_id: str, finished: Workflow | None) -> None:
        """A change of ``workflow_id`` (``finished`` by this replica, if so)."""
        if finished is not None:
            self.finished = finished
        self.set()

    def note_all(self) -> None:
        """Changes may have been missed: look at everything again."""
        self.set()


class ManyWatch(Watch):
    """An event set at each change of any of several workflows, which it names."""

    def __init__(self) -> None:
        super().__init__()
        self._changed: set[str] = set()
        self._finished: dict[str, Workflow] = {}
        self._everything = False

    def note(self, workflow_id: str, finished: Workflow | None) -> None:
        self._changed.add(workflow_id)
        if finished is not None:
            self._finished[workflow_id] = finished
        self.set()

    def note_all(self) -> None:
        self._everything = True
        self.set()

    def take(self) -> tuple[set[str] | None, dict[str, Workflow]]:
        """Clears the event; returns the ids that changed since the last take
        (``None``: any may have) and the rows of those this replica finished."""
        self.clear()
        changed = None if self._everything else self._changed
        finished = self._finished
        self._changed, self._finished, self._everything = set(), {}, False
        return changed, finished


WatchT = TypeVar("WatchT", bound=Watch)


class StatusWaiters:
    """Events to set when a workflow's status changes, by workflow id."""

    def __init__(self) -> None:
        self._events: dict[str, set[Watch]] = {}

    @contextmanager
    def watch(self, workflow_id: str) -> Iterator[Watch]:
        """An event set at each change of ``workflow_id``; register before reading."""
        with self._watching(Watch(), [workflow_id]) as event:
            yield event

    @contextmanager
    def watch_many(self, workflow_ids: list[str]) -> Iterator[ManyWatch]:
        """One event set at each change of any of ``workflow_ids``."""
        with self._watching(ManyWatch(), workflow_ids) as event:
            yield event

    @contextmanager
    def _watching(self, event: WatchT, workflow_ids: list[str]) -> Iterator[WatchT]:
        for workflow_id in workflow_ids:
            self._events.setdefault(workflow_id, set()).add(event)
        try:
            yield event
        finally:
            for workflow_id in workflow_ids:
                events = self._events.get(workflow_id)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._events[workflow_id]

    def changed(self, workflow_id: str, finished: Workflow | None = None) -> None:
        """Wakes the waiters of ``workflow_id`` (handing them the row when this
        replica just ``finished`` it)."""
        for event in self._events.get(workflow_id, ()):
            event.note(workflow_id, finished)

    def wake_all(self) -> None:
        """Wakes everyone (after notifications may have been missed)."""
        for events in self._events.values():
            for event in events:
                event.note_all()


def _stop_if_cancelling() -> None:
    """Raises CancelledError when this task has been asked to stop.

    A cancellation that lands inside a database call can be consumed below us
    (psycopg cancels the query and the pool cleans up) without reaching the
    loop; every pause of a background loop checks, so the loop still ends.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


class WakeUp:
    """A timer that calls ``callback`` once, at the earliest loop time asked of
    it since it last fired.

    It keeps that time itself rather than asking its handle: for a time that
    has already come, uvloop's ``call_at`` returns a plain `asyncio.Handle`,
    which has no ``when()``.
    """

    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback = callback
        self._handle: asyncio.Handle | None = None
        self._when = 0.0

    def at(self, when: float) -> None:
        """Calls back at loop time ``when``, unless a call due no later is pending."""
        if self._handle is not None and self._when <= when:
            return
        self.cancel()
        self._when = when
        self._handle = asyncio.get_running_loop().call_at(when, self._fire)

    def cancel(self) -> None:
        """Drops the pending call, if any."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self._callback()


async def pause(seconds: float) -> None:
    """``asyncio.sleep`` for background loops: ends at once when cancelling."""
    _stop_if_cancelling()
    await asyncio.sleep(seconds)


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Waits for ``event`` up to ``timeout`` seconds; returns whether it was set.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11,
    ``wait_for`` can swallow a cancellation that races with the event being
    set, leaving a task that never stops. Ends at once when cancelling.
    """
    _stop_if_cancelling()
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
