"""Pushes waiting workflows to this replica's connected workers.

The loop wakes on a local start, on a ``baton_enqueued`` notification from any
replica (its payload a workflow name, or ``queue/<name>`` when only queued
workflows may wait: such a round skips the claim of plain ones), or on a
periodic re-check; and when a worker frees slots, but only if
the last round may have left work behind (a session had no free slot, or a
claim filled its whole batch), so finishing a workflow costs no empty round.
Each round claims, for every session with free slots, the oldest waiting
workflows it hosts (``FOR NO KEY UPDATE SKIP LOCKED``, so replicas never claim the same
row), reads their journals in the same transaction, and queues them on the
session's stream. Workflows started on a queue are claimed only for sessions
serving that queue, as its flow control allows (``engine/queues.py``).
Workflows released while they wait (``engine/waits.py``) are claimed once their
wait has ended: a round that leaves free slots sets a timer for the earliest
end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from baton_server.config import Config
from baton_server.connector import Connector, DatabaseUnavailable
from baton_server.engine.queues import Queues
from baton_server.engine.sessions import Dispatch, Sessions, WorkerSession
from baton_server.engine.waiters import WakeUp, pause, wait_event
from baton_server.metrics import Metrics
from baton_server.store import steps, waits, workflows
from baton_server.store.models import Failure, Workflow

QUEUE_WAKE_PREFIX = "queue/"
"""Starts a ``baton_enqueued`` payload that names a queue (names hold no ``/``)."""

log = logging.getLogger("baton.dispatch")


class EagerDispatch(Protocol):
    """What eager dispatch needs of a dispatcher (`Dispatcher` is one)."""

    def reserve(
        self, workflow_name: str, app_version: str, queue: str = ""
    ) -> WorkerSession | None: ...

    def unreserve(self, session: WorkerSession) -> None: ...

    async def deliver(self, session: WorkerSession, workflow: Workflow) -> None: ...


async def create_dispatched(
    dispatcher: EagerDispatch,
    session: WorkerSession,
    create: Callable[[str], Awaitable[Workflow | None]],
) -> Workflow | None:
    """Eager dispatch, after `reserve`: ``create(worker_id)`` inserts the
    workflow owned by ``session``'s worker (``None``: it created nothing). What
    it created is delivered; otherwise the reserved slot is given back.

    Shielded: a workflow created dispatched reaches its worker (or goes back
    to waiting) even if the caller goes away meanwhile.
    """
    return await asyncio.shield(_create_and_deliver(dispatcher, session, create))


async def _create_and_deliver(
    dispatcher: EagerDispatch,
    session: WorkerSession,
    create: Callable[[str], Awaitable[Workflow | None]],
) -> Workflow | None:
    try:
        created = await create(session.worker_id)
    except BaseException:
        dispatcher.unreserve(session)
        raise
    if created is None:
        dispatcher.unreserve(session)
        return None
    await dispatcher.deliver(session, created)
    return created


# Most workflows claimed for one session in one statement.
_CLAIM_BATCH = 128
# Added to a wake-up timer, so that it fires after the database's clock has
# passed the wake-up time too (a timer that fires early only costs a round).
_WAKE_UP_MARGIN = 0.005


class Dispatcher:
    """One per replica."""

    def __init__(
        self, connector: Connector, config: Config, sessions: Sessions, metrics: Metrics
    ) -> None:
        self._connector = connector
        self._config = config
        self._sessions = sessions
        self._metrics = metrics
        self._wake = asyncio.Event()
        # Whether the last round may have left work that a freed slot could take.
        self._starved = True
        # Whether workflows started without a queue may wait (see `wake`).
        self._plain_waiting = True
        self._wake_up = WakeUp(self.wake)
        self.queues: Queues | None = None
        """Claims of queued workflows (set by the engine)."""

    def wake(self, *, plain: bool = True) -> None:
        """Asks for a dispatch round soon: work may be waiting (cheap; rounds coalesce).

        Args:
            plain: Whether workflows started without a queue may be waiting;
                ``False`` (only queued ones) saves the round its claim of those.
        """
        self._plain_waiting = self._plain_waiting or plain
        self._wake.set()

    def slots_freed(self) -> None:
        """A worker can take more: asks for a round if work may have been left behind."""
        if self._starved:
            self.wake()

    def reserve(
        self, workflow_name: str, app_version: str, queue: str = ""
    ) -> WorkerSession | None:
        """Eager dispatch, first half: takes a free slot of a session of this
        replica that can run a new workflow of this name (and serves ``queue``,
        if given), the one with the most free slots, or returns ``None``.
        Follow with `create_dispatched`."""
        chosen: WorkerSession | None = None
        for session in self._sessions.live():
            if (
                session.slots > 0
                and workflow_name in session.max_attempts
                and (not app_version or app_version == session.registration.app_version)
                and (not queue or queue in session.registration.queues)
                and (chosen is None or session.slots > chosen.slots)
            ):
                chosen = session
        if chosen is not None:
            chosen.slots -= 1
        return chosen

    def unreserve(self, session: WorkerSession) -> None:
        """Gives back a slot taken by `reserve` (nothing was created for it)."""
        session.slots += 1
        self.slots_freed()

    async def deliver(self, session: WorkerSession, workflow: Workflow) -> None:
        """Eager dispatch, second half: pushes a workflow created dispatched to
        ``session`` (its slot reserved), or gives it back if the session closed."""
        dispatch = Dispatch(workflow, [])
        if session.closed.is_set():
            await self.give_back([dispatch])
            return
        session.outbox.put_nowait(dispatch)
        self._metrics.dispatch_latency.observe(0.0)

    def stop(self) -> None:
        """Cancels the pending wake-up timer."""
        self._wake_up.cancel()

    async def run(self) -> None:
        """Dispatches until cancelled."""
        while True:
            if not await wait_event(self._wake, self._config.dispatch_poll_seconds):
                self._plain_waiting = True  # the periodic re-check looks at everything
            self._wake.clear()
            plain, self._plain_waiting = self._plain_waiting, False
            self._starved = False
            try:
                await self._round(plain)
            except DatabaseUnavailable as exc:
                self._starved = self._plain_waiting = True
                self._connector.health.paused(log, "dispatch", exc)
                await pause(0.5)
            except Exception:
                self._starved = self._plain_waiting = True
                log.exception("dispatch round failed")
                await pause(0.5)

    async def _round(self, plain: bool) -> None:
        slots_left = False
        for session in self._sessions.live():
            if not session.max_attempts:
                continue
            if session.slots <= 0:
                self._starved = True  # what waits for it is claimed once it frees a slot
                continue
            limit = min(session.slots, _CLAIM_BATCH)
            dispatched = await self._claim_for(session, limit) if plain else 0
            if dispatched == limit:
                self._starved = True
                self.wake()  # there may be more waiting
                continue
            slots_left = True
            if self.queues is not None:
                # Queued workflows, each queue as its flow control allows.
                for queue in session.registration.queues:
                    limit = min(session.slots, _CLAIM_BATCH)
                    if limit <= 0:
                        self._starved = True
                        break
                    if await self._claim_for(session, limit, queue) == limit:
                        self._starved = True
                        self.wake()
        if slots_left:
            await self._set_wake_up()

    async def _set_wake_up(self) -> None:
        """Wakes the dispatcher when the earliest released workflow's wait ends
        (keeping an earlier timer)."""
        async with self._connector.read() as tx:
            seconds = await waits.seconds_to_next_wake_up(tx)
        if seconds is None:
            return
        self._wake_up.at(asyncio.get_running_loop().time() + max(seconds, 0.0) + _WAKE_UP_MARGIN)

    async def _claim_for(self, session: WorkerSession, limit: int, queue: str = "") -> int:
        # A queue's claim holds the slots it may fill while it runs, so an eager
        # start onto that queue cannot take one and push a claimed workflow
        # back behind it (FIFO). A plain claim holds none: eager plain starts
        # keep their slots, and what then does not fit goes back below.
        held = limit if queue else 0
        session.slots -= held
        try:
            ready, claimed, short = await self._claim(session, limit, queue)
        finally:
            session.slots += held
        if not claimed:
            return 0
        if session.closed.is_set():
            await self.give_back(ready)
            return 0
        # Eager plain starts may have taken slots while a plain claim ran: what
        # no longer fits goes back to waiting (and this round counts as starved).
        room = max(session.slots, 0)
        if len(ready) > room:
            self._starved = True
            await self.give_back(ready[room:])
            ready = ready[:room]
        now = datetime.now(UTC)
        for dispatch in ready:
            session.slots -= 1
            session.outbox.put_nowait(dispatch)
            if dispatch.workflow.attempt == 1:
                latency = (now - dispatch.workflow.created_at).total_seconds()
                self._metrics.dispatch_latency.observe(max(latency, 0.0))
        if short and self.queues is not None:
            await self.queues.time_delayed_starts(queue)  # after the dispatches left
        return claimed

    async def _claim(
        self, session: WorkerSession, limit: int, queue: str
    ) -> tuple[list[Dispatch], int, bool]:
        """Claims up to ``limit`` workflows for ``session`` (of ``queue``, else
        plain ones): the dispatches ready to send, how many were claimed (dead
        letters included) and whether the queue's budget or delayed starts
        left some behind."""
        registration = session.registration
        short = False
        # No transaction around the claim: each statement is whole by itself (a
        # queue whose budget needs its lock takes one of its own), and the
        # journals read after the claim committed are only ever written by us.
        async with self._connector.autocommit() as tx:
            if queue and self.queues is not None:
                claimed, short = await self.queues.claim(tx, session, queue, limit)
            else:
                claimed = await workflows.claim(
                    tx,
                    worker_id=registration.worker_id,
                    workflow_names=registration.workflow_names,
                    app_version=registration.app_version,
                    limit=limit,
                )
            if not claimed:
                if short and self.queues is not None:
                    await self.queues.time_delayed_starts(queue)
                return [], 0, short
            runnable: list[Workflow] = []
            for workflow in claimed:
                budget = self._max_attempts(session, workflow)
                if workflow.attempt - workflow.attempts_base > budget:
                    await workflows.exceed_max_attempts(
                        tx, workflow.workflow_id, workflow.attempt, _dead_letter(workflow)
                    )
                    self._metrics.workflows_finished.labels(
                        workflow.workflow_name, "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
                    ).inc()
                    log.warning(
                        "workflow %s stopped after %d dispatches (max attempts %d)",
                        workflow.workflow_id,
                        workflow.attempt - workflow.attempts_base - 1,
                        budget,
                        extra={"workflow_id": workflow.workflow_id},
                    )
                else:
                    runnable.append(workflow)
            # A first dispatch has no journal unless it is a fork (steps are
            # written only by an owner); the rest are read in one statement.
            replays = [w.workflow_id for w in runnable if w.attempt > 1 or w.forked_from]
            journals = await steps.journals(tx, replays) if replays else {}
            ready = [Dispatch(w, journals.get(w.workflow_id, [])) for w in runnable]
        return ready, len(claimed), short

    def _max_attempts(self, session: WorkerSession, workflow: Workflow) -> int:
        return (
            workflow.max_attempts
            or session.max_attempts.get(workflow.workflow_name, 0)
            or self._config.default_max_attempts
        )

    async def give_back(self, undelivered: list[Dispatch]) -> None:
        """Returns claimed workflows whose worker went away before delivery
        (a session that closed, or a stream that ended with work queued)."""
        if not undelivered:
            return
        async with self._connector.transaction() as tx:
            for dispatch in undelivered:
                await workflows.release(
                    tx, dispatch.workflow.workflow_id, dispatch.workflow.attempt
                )
        self.wake()


def _dead_letter(workflow: Workflow) -> Failure:
    return Failure(
        type="baton.MaxRecoveryAttemptsExceeded",
        message=(
            f"workflow {workflow.workflow_id!r} was dispatched "
            f"{workflow.attempt - workflow.attempts_base - 1} times "
            "without finishing; its workers keep dying. Resume it once the cause is fixed."
        ),
    )
