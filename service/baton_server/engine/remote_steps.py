"""Remote steps: a workflow calls a step by name; the service routes it to a
connected worker that hosts the step, records its result in the caller's
journal, and routes it again if that worker is lost.

A call becomes a row of ``remote_step_tasks`` (task id ``<workflow>:<step>``,
so a retried or replayed call finds the same task), which survives a replica
crash. Each replica's router claims WAITING tasks for its own connected
workers that host the step (``FOR UPDATE SKIP LOCKED``) and pushes them as
``RunStep`` on their Connect streams; it wakes on a ``baton_steps``
notification, a new session, or a periodic re-check, which also puts back to
WAITING the tasks of workers whose lease expired. ``CompleteStep`` records
the result as the caller's step and deletes the task in one transaction; the
caller's ``CallStep`` waits for that step (``baton_comms`` notification).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from baton_server.config import Config
from baton_server.connector import Connector, DatabaseUnavailable, Tx
from baton_server.engine import journal
from baton_server.engine.journal import Caller
from baton_server.engine.sessions import RunRemoteStep, Sessions
from baton_server.engine.waiters import StatusWaiters, pause, wait_event
from baton_server.store import messages, remote_steps, steps, streams
from baton_server.store.models import Failure, Payload, Step

log = logging.getLogger("baton.remote_steps")

RECHECK_SECONDS = 2.0
_CLAIM_BATCH = 64


def task_id(caller: Caller) -> str:
    """The task of the caller's step: one per (workflow, step number)."""
    return f"{caller.workflow_id}:{caller.function_id}"


class RemoteSteps:
    """CallStep, CompleteStep and the router; one per replica."""

    def __init__(
        self,
        connector: Connector,
        config: Config,
        sessions: Sessions,
        waiters: StatusWaiters,
        leases_steady: Callable[[], bool],
    ) -> None:
        self._connector = connector
        self._config = config
        self._sessions = sessions
        self._waiters = waiters
        self._wake = asyncio.Event()
        # Whether expired leases may be taken for lost workers (`LeaseKeeper.steady`).
        self._leases_steady = leases_steady

    def wake(self) -> None:
        """Asks for a routing round soon."""
        self._wake.set()

    async def call(
        self, caller: Caller, step_name: str, input: Payload | None, hold: float
    ) -> Step | None:
        """Queues the call (once) and waits up to ``hold`` seconds for its result.

        Returns the recorded step, or ``None`` when it has not finished yet
        (call again: the step is not run twice for that).

        Raises:
            FailedPrecondition: The caller's attempt is stale.
            NotFound: The workflow does not exist.
        """
        async with self._connector.transaction() as tx:
            done = await journal.recorded(tx, caller)
            if done is not None:
                return done
            if not await remote_steps_running(tx, caller):
                await journal.refuse(tx, caller)
            await remote_steps.upsert(
                tx,
                task_id=task_id(caller),
                workflow_id=caller.workflow_id,
                function_id=caller.function_id,
                attempt=caller.attempt,
                step_name=step_name,
                input=input,
            )
        self.wake()
        loop = asyncio.get_running_loop()
        until = loop.time() + hold
        with self._waiters.watch(caller.workflow_id) as changed:
            while True:
                changed.clear()
                async with self._connector.transaction() as tx:
                    done = await journal.recorded(tx, caller)
                if done is not None:
                    return done
                left = until - loop.time()
                if left <= 0:
                    return None
                await wait_event(changed, min(left, RECHECK_SECONDS))

    async def complete(self, task: str, output: Payload | None, error: Failure | None) -> None:
        """Records a remote step's result in its caller's journal (idempotent).

        A result that cannot be recorded (the caller's workflow has finished,
        was cancelled, or is being recovered under a newer attempt) ends the
        task: a newer attempt calls the step again when its replay reaches it,
        which makes a new task. (Put back instead, the task would run again
        and again for a workflow that will never take its result.)
        """
        async with self._connector.transaction() as tx:
            found = await remote_steps.take(tx, task)
            if found is None:
                return  # recorded before: a retried CompleteStep
            caller = Caller(found.workflow_id, found.function_id, found.attempt)
            step = await steps.record(
                tx, journal.new_step(caller, found.step_name, output=output, error=error)
            )
            await remote_steps.delete(tx, task)
            if step is not None:
                await messages.notify(tx, found.workflow_id)

    async def give_back(self, undelivered: list[RunRemoteStep]) -> None:
        """Puts back tasks claimed for a worker whose stream closed before delivery."""
        if not undelivered:
            return
        async with self._connector.transaction() as tx:
            for item in undelivered:
                await remote_steps.release(tx, item.task.task_id)
        self.wake()

    async def run(self) -> None:
        """Routes waiting tasks to this replica's workers until cancelled."""
        while True:
            await wait_event(self._wake, self._config.dispatch_poll_seconds)
            self._wake.clear()
            try:
                await self._round()
            except DatabaseUnavailable as exc:
                self._connector.health.paused(log, "remote step routing", exc)
                await pause(0.5)
            except Exception:
                log.exception("remote step routing round failed")
                await pause(0.5)

    async def _round(self) -> None:
        lost: list[str] = []
        if self._leases_steady():  # as the lease sweep
            async with self._connector.transaction() as tx:
                lost = await remote_steps.release_lost(tx)
        if lost:
            log.info("routing %d remote step(s) of lost workers again", len(lost))
        for session in self._sessions.live():
            names = session.registration.step_names
            limit = _CLAIM_BATCH if session.step_slots is None else session.step_slots
            if not names or limit <= 0:
                continue
            async with self._connector.transaction() as tx:
                claimed = await remote_steps.claim(
                    tx,
                    worker_id=session.worker_id,
                    step_names=names,
                    limit=min(limit, _CLAIM_BATCH),
                )
            if session.step_slots is not None:
                session.step_slots -= len(claimed)  # given back by GrantSlots.step_slots
            if session.closed.is_set():
                async with self._connector.transaction() as tx:
                    for task in claimed:
                        await remote_steps.release(tx, task.task_id)
                continue
            for task in claimed:
                session.outbox.put_nowait(RunRemoteStep(task))
            if len(claimed) == _CLAIM_BATCH:
                self.wake()


async def remote_steps_running(tx: Tx, caller: Caller) -> bool:
    """Whether the caller's attempt still owns its PENDING workflow (locked FOR SHARE)."""
    return await streams.running(tx, caller.workflow_id, caller.attempt)
