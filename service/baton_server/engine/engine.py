"""The engine of one replica: workflow operations, worker sessions, and the
background tasks (dispatch, leases, notifications)."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from baton_server.config import Config
from baton_server.connector import Connector
from baton_server.engine.checkpoints import Checkpoints
from baton_server.engine.children import Children
from baton_server.engine.deadlines import DeadlineKeeper
from baton_server.engine.dispatcher import QUEUE_WAKE_PREFIX, Dispatcher, create_dispatched
from baton_server.engine.events import Events
from baton_server.engine.leases import LeaseKeeper
from baton_server.engine.management import CANCEL_CHANNEL, Management
from baton_server.engine.messages import Messages
from baton_server.engine.queues import Queues
from baton_server.engine.remote_steps import RemoteSteps
from baton_server.engine.retention import RetentionKeeper
from baton_server.engine.scheduler import Scheduler
from baton_server.engine.schedules import Schedules
from baton_server.engine.sessions import (
    Dispatch,
    Reconnect,
    RunRemoteStep,
    Sessions,
    WorkerSession,
)
from baton_server.engine.starts import Starter, id_taken
from baton_server.engine.streams import Streams
from baton_server.engine.waiters import StatusWaiters, Watch, pause, wait_event
from baton_server.engine.waits import Sleeps
from baton_server.errors import (
    workflow_not_found,
)
from baton_server.metrics import Metrics
from baton_server.store import management, stats, steps, workers, workflows
from baton_server.store import remote_steps as step_tasks
from baton_server.store.models import Step, Workflow
from baton_server.store.workers import WorkerRegistration
from baton_server.store.workflows import ListFilter, NewWorkflow

log = logging.getLogger("baton.engine")

# A waiter re-reads at least this often, in case a notification was lost.
_RECHECK_SECONDS = 5.0
# How often the unfinished-workflows gauge is read from Postgres.
_STATS_SECONDS = 5.0


class Engine:
    """Everything a replica does, independent of gRPC."""

    def __init__(
        self, connector: Connector, config: Config, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.replica_id = f"replica-{uuid.uuid4().hex[:12]}"
        self._connector = connector
        self._sessions = Sessions()
        self._waiters = StatusWaiters()
        self._dispatcher = Dispatcher(connector, config, self._sessions, self.metrics)
        self._leases = LeaseKeeper(
            connector, config, self._sessions, self._dispatcher, self.replica_id
        )
        self.management = Management(connector, self._sessions, self._dispatcher)
        self._deadlines = DeadlineKeeper(connector, config)
        self._retention = RetentionKeeper(connector, config)
        self.queues = Queues(connector, config, self._dispatcher.wake)
        """Queue configuration, flow-controlled claims and queue timeouts."""
        self._dispatcher.queues = self.queues
        self.starts = Starter(connector, self._started, self._dispatcher)
        """Bulk starts and starts with queue options."""
        self._scheduler = Scheduler(connector, self._started)
        self.schedules = Schedules(connector, self._started, self._scheduler.wake)
        """Cron schedules (the scheduler loop fires their ticks)."""
        self._tasks: list[asyncio.Task[None]] = []
        # Communication (messages, events, streams, sleep, children): waiters
        # keyed by workflow id, woken by `baton_comms` and `baton_status`.
        self._comms = StatusWaiters()
        self.messages = Messages(connector, self._comms)
        self.events = Events(connector, self._comms)
        self.streams = Streams(connector, self._comms)
        self.sleeps = Sleeps(connector, self._comms)
        self.children = Children(connector, self._started)
        self.remote_steps = RemoteSteps(
            connector, config, self._sessions, self._comms, lambda: self._leases.steady
        )
        self.checkpoints = Checkpoints(connector, self.metrics, self._finished_here)
        """Step results and completions, group-committed."""

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Starts listening, dispatching and keeping leases."""
        self._connector.listen(
            [
                "baton_enqueued",
                "baton_status",
                CANCEL_CHANNEL,
                "baton_comms",
                "baton_steps",
                "baton_schedules",
            ],
            self._on_notify,
            self._on_listen_reconnect,
        )
        self._tasks = [
            asyncio.create_task(self._dispatcher.run(), name="baton-dispatch"),
            asyncio.create_task(self._leases.run(), name="baton-leases"),
            asyncio.create_task(self._deadlines.run(), name="baton-deadlines"),
            asyncio.create_task(self._retention.run(), name="baton-retention"),
            asyncio.create_task(self.queues.run_timeouts(), name="baton-queue-timeouts"),
            asyncio.create_task(self._refresh_stats(), name="baton-stats"),
            asyncio.create_task(self.remote_steps.run(), name="baton-remote-steps"),
            asyncio.create_task(self._scheduler.run(), name="baton-scheduler"),
            asyncio.create_task(self.checkpoints.run(), name="baton-checkpoints"),
        ]

    async def stop(self) -> None:
        """Stops the background tasks."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.queues.stop()
        self._dispatcher.stop()

    def tell_workers_to_reconnect(self, reason: str) -> None:
        """Asks every connected worker to reconnect (elsewhere)."""
        for session in self._sessions.live():
            session.slots = 0
            session.outbox.put_nowait(Reconnect(reason))

    async def _refresh_stats(self) -> None:
        while True:
            try:
                async with self._connector.read() as tx:
                    self.metrics.set_unfinished(await stats.unfinished_counts(tx))
            except Exception as exc:  # metrics must never take the replica down
                log.debug("metrics refresh failed: %s", exc)
            await pause(_STATS_SECONDS)

    def _started(self, created: Iterable[Workflow], *, dispatched: bool = False) -> None:
        """After a start of any kind committed (plain, queued, batch, child,
        scheduled): count what it created, and wake the dispatcher (unless it
        was all ``dispatched`` eagerly) and the deadline sweep when a new
        workflow has a deadline."""
        with_deadline = plain = False
        for workflow in created:
            self.metrics.workflows_started.labels(workflow.workflow_name).inc()
            with_deadline = with_deadline or workflow.deadline is not None
            plain = plain or not workflow.queue
        if not dispatched:
            self._dispatcher.wake(plain=plain)
        if with_deadline:
            self._deadlines.wake()

    def _finished_here(self, finished: list[Workflow]) -> None:
        """Wakes this replica's awaiters of workflows it just finished, with the
        finished rows, before the ``baton_status`` notification comes back (it
        will, harmlessly)."""
        for workflow in finished:
            self._waiters.changed(workflow.workflow_id, finished=workflow)
            self._comms.changed(workflow.workflow_id)

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == "baton_enqueued":
            # "queue/<name>": only queued workflows may wait (a queued start, or
            # a place freed on a queue); anything else is a workflow name.
            self._dispatcher.wake(plain=not payload.startswith(QUEUE_WAKE_PREFIX))
        elif channel == "baton_status":
            self._waiters.changed(payload)
            self._comms.changed(payload)  # stream readers end with their workflow
        elif channel == "baton_comms":
            self._comms.changed(payload)
        elif channel == "baton_steps":
            self.remote_steps.wake()
        elif channel == CANCEL_CHANNEL:
            self.management.push_cancel(payload)
        elif channel == "baton_schedules":
            self._scheduler.wake()

    def _on_listen_reconnect(self) -> None:
        self._dispatcher.wake()
        self._waiters.wake_all()
        self._comms.wake_all()
        self.remote_steps.wake()
        self._scheduler.wake()

    # -- workflows ---------------------------------------------------------

    async def start_workflow(self, new: NewWorkflow) -> tuple[Workflow, bool]:
        """Creates the workflow, or returns the existing one with that id.

        A workflow started without a queue while a worker connected to this
        replica hosts it and has a free slot is created dispatched to that
        worker (eager dispatch: no enqueue, no claim); otherwise it is enqueued
        and the dispatchers are woken.

        Raises AlreadyExists when the id belongs to a workflow of another name.
        """
        eager = None if new.queue else self._dispatcher.reserve(new.workflow_name, new.app_version)
        if eager is None:
            created = await self._insert(new, None)
        else:
            created = await create_dispatched(
                self._dispatcher, eager, functools.partial(self._insert, new)
            )
        if created is not None:
            return created, True
        async with self._connector.read() as tx:
            existing = await workflows.get(tx, new.workflow_id)
        if existing is None:  # deleted between the two statements; try again
            return await self.start_workflow(new)
        if existing.workflow_name != new.workflow_name:
            raise id_taken(existing, new.workflow_name)
        return existing, False

    async def _insert(self, new: NewWorkflow, owner: str | None) -> Workflow | None:
        """Creates the workflow (dispatched to ``owner``, when given); ``None``
        when its id is taken."""
        # No transaction: the insert is one statement, whole by itself.
        async with self._connector.autocommit() as tx:
            created = await workflows.insert(tx, new, owner=owner)
        if created is not None:
            self._started([created], dispatched=owner is not None)
        return created

    async def get_workflow(self, workflow_id: str) -> tuple[Workflow, str]:
        """The workflow and, if it is stuck, why (else an empty string)."""
        async with self._connector.read() as tx:
            workflow = await workflows.get(tx, workflow_id)
            if workflow is None:
                raise workflow_not_found(workflow_id)
            reason = ""
            if _released_until_later(workflow):
                reason = _released_reason(workflow)
            elif workflow.status == "ENQUEUED" and not await workflows.hosting_worker_exists(
                tx, workflow.workflow_name, workflow.app_version
            ):
                version = (
                    f" of app version {workflow.app_version!r}" if workflow.app_version else ""
                )
                reason = f"no connected worker{version} hosts workflow {workflow.workflow_name!r}"
                others = await management.hosting_versions(tx, workflow.workflow_name)
                if others:
                    named = ", ".join(repr(v) if v else "(no version)" for v in others)
                    reason += f"; workers of other app versions do: {named}"
        return workflow, reason

    async def _read(self, workflow_id: str) -> Workflow:
        async with self._connector.read() as tx:
            workflow = await workflows.get(tx, workflow_id)
        if workflow is None:
            raise workflow_not_found(workflow_id)
        return workflow

    async def await_workflow(self, workflow_id: str, timeout: float) -> Workflow:
        """The workflow once finished, or as it is when ``timeout`` passes."""
        deadline = asyncio.get_running_loop().time() + timeout
        with self._waiters.watch(workflow_id) as changed:
            return await self._until_finished(workflow_id, changed, deadline)

    async def start_and_await(
        self,
        workflow_id: str,
        start: Callable[[], Awaitable[tuple[Workflow, bool]]],
        timeout: float,
    ) -> tuple[Workflow, bool]:
        """Runs ``start`` (which creates or finds ``workflow_id``), then waits as
        `await_workflow` does. The watch begins before the start, so a finish
        right after it is not missed, and the row the start returns stands in
        for the first read."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self._waiters.watch(workflow_id) as changed:
            workflow, created = await start()
            if workflow.workflow_id == workflow_id:
                return await self._until_finished(workflow_id, changed, deadline, workflow), created
        # Another workflow came back (a queue's duplicate in flight): await that one.
        remaining = max(deadline - loop.time(), 0.0)
        return await self.await_workflow(workflow.workflow_id, remaining), created

    async def _until_finished(
        self, workflow_id: str, changed: Watch, deadline: float, known: Workflow | None = None
    ) -> Workflow:
        """Waits on ``changed`` (watching ``workflow_id``) until the workflow has
        finished or the loop's clock reaches ``deadline``. ``known``: the
        workflow as it was after the watch began, instead of a first read."""
        loop = asyncio.get_running_loop()
        workflow = known
        while True:
            if workflow is None:
                changed.clear()
                workflow = await self._read(workflow_id)
            remaining = deadline - loop.time()
            if workflow.finished or remaining <= 0:
                return workflow
            await wait_event(changed, min(remaining, _RECHECK_SECONDS))
            if changed.finished is not None:
                return changed.finished
            workflow = None

    async def await_many(
        self, workflow_ids: list[str], timeout: float
    ) -> AsyncIterator[list[Workflow]]:
        """Yields the workflows once finished (several at a time when they finish
        together, each once, in the order asked) until all have, or ``timeout``
        passes. Only finished rows are loaded.

        Raises:
            NotFound: One of the ids is unknown (before anything is yielded).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with self._waiters.watch_many(workflow_ids) as changed:
            async with self._connector.read() as tx:
                existing = await workflows.existing_ids(tx, workflow_ids)
                missing = next((i for i in workflow_ids if i not in existing), None)
                if missing is not None:
                    raise workflow_not_found(missing)
                rows = await workflows.get_finished(tx, workflow_ids)
            pending = dict.fromkeys(workflow_ids)
            asked = {workflow_id: n for n, workflow_id in enumerate(pending)}
            looked_at_all = loop.time()
            while True:
                # From what came in (a few rows), not from all still pending:
                # a thousand ids finishing a few at a time stay linear.
                came = sorted(rows.keys() & pending.keys(), key=asked.__getitem__)
                done = [rows[i] for i in came]
                if done:
                    for row in done:
                        del pending[row.workflow_id]
                    yield done
                remaining = deadline - loop.time()
                if not pending or remaining <= 0:
                    return
                await wait_event(changed, min(remaining, _RECHECK_SECONDS))
                ids, rows = changed.take()
                # What changed, unless its row came with the news; everything
                # after a possible loss of news, and every recheck period anyway.
                if ids is None or loop.time() - looked_at_all >= _RECHECK_SECONDS:
                    ids, looked_at_all = set(pending), loop.time()
                reread = [i for i in ids if i in pending and i not in rows]
                if reread:
                    async with self._connector.read() as tx:
                        rows.update(await workflows.get_finished(tx, reread))

    async def watch_workflow(self, workflow_id: str) -> AsyncIterator[Workflow]:
        """Yields the workflow now and after each status change, until finished."""
        last_status = None
        with self._waiters.watch(workflow_id) as changed:
            while True:
                changed.clear()
                workflow = await self._read(workflow_id)
                if workflow.status != last_status:
                    last_status = workflow.status
                    yield workflow
                if workflow.finished:
                    return
                await wait_event(changed, _RECHECK_SECONDS)

    async def list_workflows(
        self, filters: ListFilter, *, limit: int, cursor: tuple[datetime, str] | None
    ) -> list[Workflow]:
        """One page of workflows."""
        async with self._connector.read() as tx:
            return await workflows.list_page(tx, filters, limit=limit, cursor=cursor)

    async def list_steps(self, workflow_id: str, *, after: int, limit: int) -> list[Step]:
        """One page of a workflow's journal; NotFound for an unknown workflow."""
        async with self._connector.read() as tx:
            page = await steps.list_page(tx, workflow_id, after=after, limit=limit)
            if not page and await workflows.get(tx, workflow_id) is None:
                raise workflow_not_found(workflow_id)
        return page

    # -- worker sessions ---------------------------------------------------

    async def open_session(
        self,
        registration: WorkerRegistration,
        max_attempts: dict[str, int],
        slots: int,
        running: list[tuple[str, int]],
        *,
        step_slots: int | None = None,
        running_steps: list[str] | None = None,
    ) -> WorkerSession:
        """Registers a connected worker and makes it eligible for dispatch.

        ``running`` is what the worker says it runs, as ``(workflow id, attempt)``.
        Anything it owns beyond that was dispatched on a stream that broke before
        the worker read it: it goes back to waiting at once (a stale run of it, if
        any, is fenced off by the next attempt number). The same for the
        remote steps pushed to it, with ``running_steps`` (``None``: a worker
        that does not say, whose steps are routed again only when its lease
        ends).
        """
        async with self._connector.transaction() as tx:
            await workers.upsert(
                tx,
                registration,
                replica_id=self.replica_id,
                lease=timedelta(seconds=self.config.lease_seconds),
            )
            await self.queues.declare(tx, registration.queues)
            await self.schedules.declare(tx, registration.schedules)
            lost = await workflows.release_not_running(tx, registration.worker_id, running)
            steps_lost: list[str] = []
            if running_steps is not None:
                steps_lost = await step_tasks.release_not_running(
                    tx, registration.worker_id, running_steps
                )
            for name in {name for _, name in lost}:
                await workflows.notify_enqueued(tx, name)
            await workflows.notify_statuses(tx, [workflow_id for workflow_id, _ in lost])
        for workflow_id, _ in lost:
            log.warning(
                "workflow %s: worker %s never received its dispatch; enqueued again",
                workflow_id,
                registration.worker_id,
                extra={"workflow_id": workflow_id, "worker_id": registration.worker_id},
            )
        for task in steps_lost:
            log.warning(
                "remote step %s: worker %s never received it; routing it again",
                task,
                registration.worker_id,
            )
        session = WorkerSession(
            registration=registration,
            max_attempts=max_attempts,
            slots=slots,
            last_seen=asyncio.get_running_loop().time(),
            step_slots=step_slots,
        )
        previous = self._sessions.add(session)
        if previous is not None:
            previous.close()
        self.metrics.connected_workers.set(len(self._sessions.live()))
        log.info(
            "worker %s (%s) connected: %d workflow(s), %d slot(s)",
            registration.worker_id,
            registration.display_name,
            len(registration.workflow_names),
            slots,
        )
        self._dispatcher.wake()
        self.remote_steps.wake()
        return session

    def seen(self, session: WorkerSession) -> None:
        """Notes that the worker is alive."""
        session.last_seen = asyncio.get_running_loop().time()

    def grant(self, session: WorkerSession, slots: int) -> None:
        """Adds free slots to a session and dispatches to them."""
        session.slots += slots
        self._dispatcher.slots_freed()

    def grant_steps(self, session: WorkerSession, slots: int) -> None:
        """Adds free remote-step slots to a session (one that counts them) and
        routes waiting steps to them."""
        if session.step_slots is not None:
            session.step_slots += slots
            self.remote_steps.wake()

    async def close_session(self, session: WorkerSession) -> None:
        """Forgets a session whose stream ended; undelivered work goes back.

        Workflows already delivered stay owned until the lease expires: the
        worker may be reconnecting (to this or another replica).
        """
        session.close()
        self._sessions.remove(session)
        self.metrics.connected_workers.set(len(self._sessions.live()))
        undelivered: list[Dispatch] = []
        steps_undelivered: list[RunRemoteStep] = []
        while not session.outbox.empty():
            item = session.outbox.get_nowait()
            if isinstance(item, Dispatch):
                undelivered.append(item)
            elif isinstance(item, RunRemoteStep):
                steps_undelivered.append(item)
        await self._dispatcher.give_back(undelivered)
        await self.remote_steps.give_back(steps_undelivered)
        log.info("worker %s disconnected", session.worker_id)


def _released_until_later(workflow: Workflow) -> bool:
    """Whether the workflow was released while it waits and the wait goes on."""
    return (
        workflow.status == "ENQUEUED"
        and workflow.queue == ""
        and workflow.start_at is not None
        and workflow.start_at > datetime.now(UTC)
    )


def _released_reason(workflow: Workflow) -> str:
    if workflow.wait_event_key is None and workflow.wait_workflow_id is not None:
        return (
            f"waiting for workflow {workflow.wait_workflow_id!r} to finish"
            " (released from its worker while it waits)"
        )
    assert workflow.start_at is not None
    until = workflow.start_at.astimezone(UTC).isoformat(timespec="seconds")
    if workflow.wait_event_key is not None:
        return (
            f"waiting for event {workflow.wait_event_key!r} of workflow"
            f" {workflow.wait_workflow_id!r} until {until}"
            " (released from its worker while it waits)"
        )
    if workflow.wait_topic is None:
        return f"sleeping until {until} (released from its worker while it waits)"
    topic = f"on topic {workflow.wait_topic!r}" if workflow.wait_topic else "without a topic"
    return f"waiting for a message {topic} until {until} (released from its worker while it waits)"
