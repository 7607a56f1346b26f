"""The workers connected to this replica, one session per Connect stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from baton_server.store.models import Step, Workflow
from baton_server.store.remote_steps import RemoteTask
from baton_server.store.workers import WorkerRegistration


@dataclass(frozen=True)
class Dispatch:
    """A workflow to push to a worker, with its journal."""

    workflow: Workflow
    journal: list[Step]


@dataclass(frozen=True)
class Reconnect:
    """Tell the worker to reconnect (this replica is going away)."""

    reason: str


@dataclass(frozen=True)
class CancelRun:
    """Tell the worker to stop running a workflow (it was cancelled)."""

    workflow_id: str


@dataclass(frozen=True)
class RunRemoteStep:
    """Run a step this worker hosts for a workflow running elsewhere."""

    task: RemoteTask


@dataclass(frozen=True)
class Reply:
    """A ready answer to something the worker sent on its stream (built by the
    servicer; the engine only passes it along)."""

    message: object


Outgoing = Dispatch | Reconnect | CancelRun | RunRemoteStep | Reply


@dataclass(eq=False)
class WorkerSession:
    """One connected worker as this replica sees it."""

    registration: WorkerRegistration
    max_attempts: dict[str, int]
    """Per workflow name, the worker's dead-letter limit (0: server default)."""
    slots: int
    """How many more workflows it can take now."""
    last_seen: float
    """Loop time of its last message."""
    step_slots: int | None = None
    """How many more remote steps it can take now (``None``: no limit)."""
    outbox: asyncio.Queue[Outgoing | None] = field(default_factory=asyncio.Queue)
    """What to send on its stream; ``None`` ends the stream."""
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self) -> None:
        """Ends the session: no more dispatch, and its stream finishes."""
        if not self.closed.is_set():
            self.closed.set()
            self.outbox.put_nowait(None)

    @property
    def worker_id(self) -> str:
        """The worker's stable id."""
        return self.registration.worker_id


class Sessions:
    """The live sessions of this replica, by worker id."""

    def __init__(self) -> None:
        self._by_worker: dict[str, WorkerSession] = {}

    def add(self, session: WorkerSession) -> WorkerSession | None:
        """Adds a session; returns the one it replaces (a reconnect), if any."""
        previous = self._by_worker.get(session.worker_id)
        self._by_worker[session.worker_id] = session
        return previous

    def remove(self, session: WorkerSession) -> None:
        """Forgets a session (unless a newer one has replaced it)."""
        if self._by_worker.get(session.worker_id) is session:
            del self._by_worker[session.worker_id]

    def get(self, worker_id: str) -> WorkerSession | None:
        """The live session of ``worker_id`` on this replica, if any."""
        session = self._by_worker.get(worker_id)
        return None if session is None or session.closed.is_set() else session

    def live(self) -> list[WorkerSession]:
        """The sessions that are not closed."""
        return [s for s in self._by_worker.values() if not s.closed.is_set()]
