"""One serving session of a worker: the Connect stream, slots, leases and runs.

The runner keeps one ``WorkerService.Connect`` stream open (reconnecting with
capped, jittered backoff when it breaks), registers what the worker hosts, and
starts a run for every dispatch. Workflows keep running while the stream is
down: their checkpoints retry until the service is back, and the re-registration
lists them under ``running`` so the service knows this worker still owns them.

Slot accounting. The service may dispatch only as many workflows as the worker
granted slots: ``register.workflow_slots`` grants the free capacity at that
moment, and every run grants one back once its workflow code is done (when it
sends its completion, or when it ends otherwise). Capacity counts every run that
has not granted its slot back, stale ones included (they still hold a thread).
The free count is computed and the stream's outbox installed in one synchronous
step, so a slot granted back is either inside that count or sent on that
stream, never both and never neither.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

from baton._checkpoints import Checkpointer, StreamCheckpoints
from baton._context import WORKFLOW_CANCELLED, mark_retrieved
from baton._convert import error_to_proto
from baton._errors import (
    BatonError,
    FailedPrecondition,
    InvalidArgument,
    NonDeterministicError,
    ResourceExhausted,
    map_rpc_error,
)
from baton._execution import execute_remote_step, execute_workflow
from baton._payload import Serializer, SerializerName
from baton._proto.baton.v1 import worker_service_pb2 as pb
from baton._registry import StepDefinition, WorkflowDefinition
from baton._rpc_async import AsyncRpc
from baton._run_state import CancelRequested, RunState, WaitReleased, WorkflowStop
from baton._tls import TLSConfig

__all__ = ["RunnerConfig", "WorkerRunner"]

logger = logging.getLogger("baton.worker")

SDK = "baton-python/0.1.0"

# Statuses that no reconnect can fix while the worker has never registered: a bad
# token or a malformed registration. Once registered, every failure is retried,
# since a running server only fails the stream transiently.
_FATAL_BEFORE_REGISTRATION = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_RECONNECT_INITIAL = 0.1
_RECONNECT_MAX = 5.0
_DEFAULT_HEARTBEAT = 5.0
# Most bytes of checkpoints sent in one stream message: well under the service's
# default receive limit (8 MiB), which a few results near the payload limit
# (2 MiB each) would otherwise pass together.
_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class RunnerConfig:
    """A worker's settings, fixed for its lifetime."""

    target: str
    """``host:port`` of the service."""
    token: str | None
    """Bearer token, if any."""
    worker_id: str
    """Stable for the Worker's lifetime, so leases survive reconnects."""
    app_version: str
    """Registered app version."""
    concurrency: int
    """Workflows run at once, at most."""
    serializer: SerializerName
    """The payload encoding."""
    display_name: str
    """A human-readable name for operators."""
    shutdown_timeout: float
    """Seconds a graceful stop waits for running workflows."""
    queues: tuple[str, ...] = ()
    """The queues it serves."""
    tls: TLSConfig | bool | None = None
    """TLS settings (see `baton.TLSConfig`)."""
    evict_waits_after: float | None = None
    """A sleep, recv, get_event or await of another workflow with longer to
    wait releases its workflow; ``None``: never."""
    step_concurrency: int = 16
    """Remote steps (pushed for workflows running elsewhere) run at once, at most."""


@dataclass(eq=False)
class _Run:
    """A workflow running here under one attempt."""

    workflow_id: str
    attempt: int
    state: RunState = field(default_factory=RunState)
    task: asyncio.Task[None] | None = None
    slot_freed: bool = False


class WorkerRunner:
    """Serves one worker until stopped. Create and use it inside one event loop.

    Args:
        config: The worker's settings.
        workflows: The registered workflows, by name.
        steps: The registered steps, by name.
    """

    def __init__(
        self,
        config: RunnerConfig,
        workflows: Mapping[str, WorkflowDefinition],
        steps: Mapping[str, StepDefinition],
    ) -> None:
        self._config = config
        self._workflows = dict(workflows)
        self._steps = dict(steps)
        self._serializer = Serializer(config.serializer)
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._runs: dict[str, _Run] = {}  # the current run of each workflow id
        self._active: set[_Run] = set()  # every unfinished run, stale ones included
        self._step_tasks: set[asyncio.Task[None]] = set()
        # Where remote plain steps run (made by `serve`): the service pushes
        # no more at once than it has threads (`step_concurrency`).
        self._step_threads: ThreadPoolExecutor | None = None
        self._steps_running: set[str] = set()  # pushed steps not done yet (task ids)
        self._outbox: asyncio.Queue[pb.ConnectRequest | None] | None = None
        self._session: asyncio.Task[str] | None = None
        self._draining = False
        self._ever_registered = False
        self._registered = False
        self._completion_follows_step = False
        self._slots_with_checkpoints = False

    def stop(self) -> None:
        """Asks `serve` to stop gracefully. Call from the runner's loop."""
        self._stop.set()

    async def serve(self) -> None:
        """Connects, runs dispatched workflows, and returns after `stop` (or raises
        a `BatonError` when the service refuses this worker outright)."""
        rpc = AsyncRpc(self._config.target, token=self._config.token, tls=self._config.tls)
        checkpoints = StreamCheckpoints(rpc)
        executor = ThreadPoolExecutor(
            max_workers=self._config.concurrency, thread_name_prefix="baton-workflow"
        )
        self._step_threads = ThreadPoolExecutor(
            max_workers=self._config.step_concurrency, thread_name_prefix="baton-step"
        )
        connection = asyncio.create_task(self._connection_loop(rpc, checkpoints, executor))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if connection.done():
                connection.result()  # only ends by raising a fatal error
            await self._drain()
        finally:
            stopping.cancel()
            connection.cancel()
            await self._abandon_all()
            await asyncio.gather(connection, stopping, return_exceptions=True)
            await rpc.close()
            # Threads still inside user code cannot be interrupted; they are
            # marked stale and stop at their next checkpoint.
            executor.shutdown(wait=False, cancel_futures=True)
            self._step_threads.shutdown(wait=False, cancel_futures=True)
            logger.info("worker %s stopped", self._config.worker_id)

    async def _drain(self) -> None:
        """Stops taking work and waits (up to the shutdown timeout) for running workflows."""
        if not self._active:
            return
        logger.info(
            "stopping: waiting up to %.0fs for %d running workflow(s)",
            self._config.shutdown_timeout,
            len(self._active),
        )
        self._draining = True
        # Re-register with zero slots, which withdraws the slots already granted.
        if self._session is not None:
            self._session.cancel()
        deadline = self._loop.time() + self._config.shutdown_timeout
        while self._active and (remaining := deadline - self._loop.time()) > 0:
            tasks = {run.task for run in self._active if run.task is not None}
            await asyncio.wait(tasks, timeout=remaining)
        if self._active:
            logger.warning(
                "stopping with %d workflow(s) unfinished; the service will recover them",
                len(self._active),
            )

    async def _abandon_all(self) -> None:
        tasks: list[asyncio.Task[None]] = list(self._step_tasks)
        for run in list(self._active):
            run.state.stale = True
            if run.task is not None:
                tasks.append(run.task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the Connect stream ------------------------------------------------------------

    async def _connection_loop(
        self, rpc: AsyncRpc, checkpoints: StreamCheckpoints, executor: ThreadPoolExecutor
    ) -> None:
        failures = 0
        while True:
            session = asyncio.create_task(self._run_session(rpc, checkpoints, executor))
            self._session = session
            try:
                await asyncio.wait({session})
            finally:
                session.cancel()
            if session.cancelled():  # a drain asked for a fresh registration
                continue
            failures = 0 if self._registered else failures + 1
            exc = session.exception()
            if exc is None:
                logger.warning("connection to %s ended: %s", self._config.target, session.result())
            elif isinstance(exc, grpc.RpcError):
                error = map_rpc_error(exc)
                if not self._ever_registered and exc.code() in _FATAL_BEFORE_REGISTRATION:
                    logger.error("the service refused this worker: %s", error)
                    raise error from exc
                logger.warning("connection to %s lost: %s", self._config.target, error)
            else:
                logger.error("worker connection failed unexpectedly", exc_info=exc)
            delay = min(_RECONNECT_MAX, _RECONNECT_INITIAL * 2 ** max(0, failures - 1))
            delay *= random.uniform(0.5, 1.0)
            logger.info(
                "reconnecting in %.2fs (%d workflow(s) still running)", delay, len(self._active)
            )
            await asyncio.sleep(delay)

    async def _run_session(
        self, rpc: AsyncRpc, checkpoints: StreamCheckpoints, executor: ThreadPoolExecutor
    ) -> str:
        """One Connect stream, from registration until it ends; returns why it ended
        normally, raises the gRPC error otherwise."""
        self._registered = False
        outbox: asyncio.Queue[pb.ConnectRequest | None] = asyncio.Queue()
        outbox.put_nowait(self._registration())
        self._outbox = outbox  # same synchronous step as the free-slot count
        checkpoints.attach(outbox)
        self._slots_with_checkpoints = False  # until this stream's service says so
        call = rpc.connect(_drain_queue(outbox, lambda: self._slots_with_checkpoints))
        heartbeat: asyncio.Task[None] | None = None
        try:
            async for response in call:
                kind = response.WhichOneof("message")
                if kind == "registered":
                    heartbeat = self._on_registered(response.registered, outbox)
                elif kind == "checkpointed":
                    checkpoints.answer(response.checkpointed)
                elif kind == "checkpointed_batch":
                    for answer in response.checkpointed_batch.answers:
                        checkpoints.answer(answer)
                elif kind == "dispatch":
                    self._on_dispatch(response.dispatch, rpc, checkpoints, executor)
                elif kind == "dispatch_batch":
                    for dispatch in response.dispatch_batch.dispatches:
                        self._on_dispatch(dispatch, rpc, checkpoints, executor)
                elif kind == "cancel":
                    self._on_cancel(response.cancel.workflow_id)
                elif kind == "run_step":
                    self._on_run_step(response.run_step, rpc)
                elif kind == "reconnect":
                    return f"the service asked to reconnect ({response.reconnect.reason})"
            return "the service closed the stream"
        finally:
            if self._outbox is outbox:
                self._outbox = None
            checkpoints.detach(outbox)
            if heartbeat is not None:
                heartbeat.cancel()
            outbox.put_nowait(None)
            call.cancel()

    def _registration(self) -> pb.ConnectRequest:
        busy = sum(1 for run in self._active if not run.slot_freed)
        free = 0 if self._draining else max(0, self._config.concurrency - busy)
        register = pb.RegisterWorker(
            worker_id=self._config.worker_id,
            app_version=self._config.app_version,
            workflows=[
                pb.WorkflowRegistration(
                    name=d.name,
                    max_attempts=d.max_attempts,
                    schedule=d.schedule,
                    schedule_time_zone=d.schedule_time_zone,
                )
                for d in self._workflows.values()
            ],
            steps=[pb.StepRegistration(name=name) for name in self._steps],
            workflow_slots=free,
            running=[
                pb.RunningWorkflow(workflow_id=run.workflow_id, attempt=run.attempt)
                for run in self._runs.values()
            ],
            sdk=SDK,
            display_name=self._config.display_name,
            dispatch_batches=True,
            queues=list(self._config.queues),
            step_slots=0
            if self._draining
            else max(0, self._config.step_concurrency - len(self._steps_running)),
            running_steps=sorted(self._steps_running),
        )
        return pb.ConnectRequest(register=register)

    def _on_registered(
        self, registered: pb.Registered, outbox: asyncio.Queue[pb.ConnectRequest | None]
    ) -> asyncio.Task[None]:
        self._registered = self._ever_registered = True
        self._completion_follows_step = registered.completion_follows_step
        self._slots_with_checkpoints = registered.slots_with_checkpoints
        interval = registered.heartbeat_interval.ToTimedelta().total_seconds()
        interval = interval if interval > 0 else _DEFAULT_HEARTBEAT
        logger.info(
            "worker %s registered with replica %s (%d workflow(s) running, heartbeat %.1fs)",
            self._config.worker_id,
            registered.replica_id or "?",
            len(self._runs),
            interval,
        )
        return asyncio.create_task(_heartbeat(outbox, interval))

    def _free_slot(self, run: _Run) -> None:
        """Grants the slot ``run`` took, once."""
        if not run.slot_freed:
            run.slot_freed = True
            self._grant_slot()

    def _grant_slot(self) -> None:
        # Dropped when disconnected: the next registration counts the slot as free.
        if self._outbox is not None and not self._draining:
            self._outbox.put_nowait(pb.ConnectRequest(slots=pb.GrantSlots(workflow_slots=1)))

    def _grant_step_slot(self) -> None:
        # As `_grant_slot`: a registration counts the steps running at its time.
        if self._outbox is not None and not self._draining:
            self._outbox.put_nowait(pb.ConnectRequest(slots=pb.GrantSlots(step_slots=1)))

    # -- runs --------------------------------------------------------------------------

    def _on_dispatch(
        self,
        dispatch: pb.DispatchWorkflow,
        rpc: AsyncRpc,
        checkpoints: StreamCheckpoints,
        executor: ThreadPoolExecutor,
    ) -> None:
        current = self._runs.get(dispatch.workflow_id)
        if current is not None and current.attempt >= dispatch.attempt:
            logger.info(
                "ignoring dispatch of workflow %s attempt %d: attempt %d already runs here",
                dispatch.workflow_id,
                dispatch.attempt,
                current.attempt,
            )
            self._grant_slot()  # the dispatch took a slot that no run will use
            return
        if current is not None:
            if not current.state.stale:  # a run released while it waits is stale already
                logger.warning(
                    "workflow %s: attempt %d supersedes attempt %d running here; "
                    "abandoning that run",
                    dispatch.workflow_id,
                    dispatch.attempt,
                    current.attempt,
                )
            current.state.stale = True
        run = _Run(dispatch.workflow_id, dispatch.attempt)
        self._runs[run.workflow_id] = run
        self._active.add(run)
        run.task = asyncio.create_task(
            self._run_workflow(run, dispatch, rpc, checkpoints, executor),
            name=f"baton-workflow:{dispatch.workflow_id}",
        )

    async def _run_workflow(
        self,
        run: _Run,
        dispatch: pb.DispatchWorkflow,
        rpc: AsyncRpc,
        checkpoints: StreamCheckpoints,
        executor: ThreadPoolExecutor,
    ) -> None:
        logger.debug(
            "running workflow %s (%s) attempt %d with %d journal step(s)",
            run.workflow_id,
            dispatch.workflow_name,
            run.attempt,
            len(dispatch.journal),
        )
        try:
            completion, settled = await execute_workflow(
                dispatch,
                self._workflows.get(dispatch.workflow_name),
                serializer=self._serializer,
                rpc=rpc,
                checkpoints=checkpoints,
                executor=executor,
                state=run.state,
                release_waits_after=self._config.evict_waits_after,
            )
            if not self._completion_follows_step:  # a service that would not wait for the step
                completion.follows_step = 0
            # The workflow's code is done: its slot may take the next workflow
            # while the completion is written (the grant leaves with it).
            self._free_slot(run)
            await _complete(checkpoints, completion, settled)
            if completion.HasField("error"):
                logger.info(
                    "workflow %s attempt %d failed: %s",
                    run.workflow_id,
                    run.attempt,
                    completion.error.type,
                )
            else:
                logger.debug("workflow %s attempt %d succeeded", run.workflow_id, run.attempt)
        except CancelRequested as stop:
            logger.info("workflow %s attempt %d cancelled: %s", run.workflow_id, run.attempt, stop)
        except WaitReleased as stop:
            # The service dispatches it again when the wait ends; the slot is free now.
            logger.debug("%s", stop)
        except WorkflowStop as stop:
            # Expected after a long pause or partition, but worth an operator's eye:
            # another attempt now owns the workflow and this run's work is discarded.
            logger.warning(
                "workflow %s attempt %d abandoned, its lease was lost: %s",
                run.workflow_id,
                run.attempt,
                stop,
            )
        except FailedPrecondition as exc:
            if exc.reason == WORKFLOW_CANCELLED:
                logger.info("workflow %s attempt %d cancelled", run.workflow_id, run.attempt)
                return
            logger.warning(
                "workflow %s attempt %d not completed, its lease was lost: %s",
                run.workflow_id,
                run.attempt,
                exc,
            )
        except Exception:  # a bug or a refused call; the run is not completed
            logger.exception(
                "workflow %s attempt %d could not complete", run.workflow_id, run.attempt
            )
        finally:
            self._active.discard(run)
            if self._runs.get(run.workflow_id) is run:
                del self._runs[run.workflow_id]
            self._free_slot(run)

    def _on_cancel(self, workflow_id: str) -> None:
        run = self._runs.get(workflow_id)
        if run is None:
            logger.debug("cancel for workflow %s, which does not run here", workflow_id)
            return
        logger.info("workflow %s: cancel requested; stopping at its next step", workflow_id)
        run.state.cancelled = True

    def _on_run_step(self, run_step: pb.RunStep, rpc: AsyncRpc) -> None:
        task = asyncio.create_task(self._run_remote_step(run_step, rpc))
        self._step_tasks.add(task)
        task.add_done_callback(self._step_tasks.discard)

    async def _run_remote_step(self, run_step: pb.RunStep, rpc: AsyncRpc) -> None:
        """Runs a pushed step and reports it; its slot goes back to the service
        when it is done, reported or not (one that could not be reported is
        routed again once this worker's lease ends)."""
        self._steps_running.add(run_step.task_id)
        try:
            completion = await execute_remote_step(
                run_step,
                self._steps.get(run_step.step_name),
                serializer=self._serializer,
                executor=self._step_threads,
            )
            try:
                await rpc.complete_step(completion)
            except BatonError as exc:
                logger.warning("could not report remote step %s: %s", run_step.task_id, exc)
        finally:
            self._steps_running.discard(run_step.task_id)
            self._grant_step_slot()


async def _complete(
    checkpoints: Checkpointer,
    completion: pb.CompleteWorkflowRequest,
    settled: Callable[[], Awaitable[None]],
) -> None:
    """Completes a workflow once its steps are committed (``settled`` waits for
    those sent ahead). With ``follows_step`` set, the completion leaves at once,
    right behind that step, and the service writes it only after the step.

    An output, or a last step, that the service refuses (too large, say) fails
    the workflow with that refusal instead of leaving it running forever.
    """
    sent = None
    if completion.follows_step:
        sent = asyncio.ensure_future(checkpoints.complete_workflow(completion))
    try:
        await settled()
    except BaseException as exc:
        if sent is not None:
            # It cannot land without the step (its retries would wait forever);
            # refused already, its error is not news.
            sent.cancel()
            sent.add_done_callback(mark_retrieved)
        if not isinstance(exc, InvalidArgument | ResourceExhausted | NonDeterministicError):
            raise
        await checkpoints.complete_workflow(_failed(completion, exc))
        return
    try:
        await (sent if sent is not None else checkpoints.complete_workflow(completion))
    except (InvalidArgument, ResourceExhausted) as exc:
        if not completion.HasField("output"):
            raise
        await checkpoints.complete_workflow(_failed(completion, exc))


def _failed(completion: pb.CompleteWorkflowRequest, exc: Exception) -> pb.CompleteWorkflowRequest:
    """The completion that fails the workflow with ``exc`` instead."""
    return pb.CompleteWorkflowRequest(
        workflow_id=completion.workflow_id, attempt=completion.attempt, error=error_to_proto(exc)
    )


async def _drain_queue(
    outbox: asyncio.Queue[pb.ConnectRequest | None],
    slots_with_checkpoints: Callable[[], bool] = lambda: False,
) -> AsyncIterator[pb.ConnectRequest]:
    """The Connect request stream: the outbox's messages until a ``None``.

    What queued up while the previous message was being written leaves
    together: its checkpoints in as few messages as fit `_BATCH_BYTES`, its
    slot grants (workflow and step slots) as one grant, anything else as it
    came. The workflow slots ride in the last checkpoint batch when there is
    one and the service takes them there (``slots_with_checkpoints()``): a
    workflow's end is then one message, its last step, its completion and its
    slot.
    """
    while True:
        message = await outbox.get()
        queued = [message]
        while queued[-1] is not None and not outbox.empty():
            queued.append(outbox.get_nowait())
        checkpoints: list[pb.Checkpoint] = []
        slots = step_slots = 0
        for item in queued:
            if item is None:
                break
            kind = item.WhichOneof("message")
            if kind == "checkpoint":
                checkpoints.append(item.checkpoint)
            elif kind == "checkpoints":
                checkpoints.extend(item.checkpoints.checkpoints)
            elif kind == "slots":
                slots += item.slots.workflow_slots
                step_slots += item.slots.step_slots
            else:
                yield item
        batches = list(_batches(checkpoints))
        riding = slots if batches and slots_with_checkpoints() else 0
        for index, batch in enumerate(batches, 1):
            yield _checkpoints_out(batch, riding if index == len(batches) else 0)
        if (slots and not riding) or step_slots:
            grant = pb.GrantSlots(workflow_slots=0 if riding else slots, step_slots=step_slots)
            yield pb.ConnectRequest(slots=grant)
        if queued[-1] is None:
            return


def _checkpoints_out(batch: list[pb.Checkpoint], slots: int) -> pb.ConnectRequest:
    """One message of checkpoints, with the ``slots`` granted along (0: none)."""
    if len(batch) == 1 and not slots:
        return pb.ConnectRequest(checkpoint=batch[0])
    return pb.ConnectRequest(
        checkpoints=pb.CheckpointBatch(checkpoints=batch, workflow_slots=slots)
    )


def _batches(checkpoints: list[pb.Checkpoint]) -> Iterator[list[pb.Checkpoint]]:
    """``checkpoints`` in order, cut so that each batch stays within `_BATCH_BYTES`
    (a checkpoint larger than that goes alone)."""
    batch: list[pb.Checkpoint] = []
    size = 0
    for checkpoint in checkpoints:
        grows = checkpoint.ByteSize()
        if batch and size + grows > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(checkpoint)
        size += grows
    if batch:
        yield batch


async def _heartbeat(outbox: asyncio.Queue[pb.ConnectRequest | None], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        outbox.put_nowait(pb.ConnectRequest(heartbeat=pb.Heartbeat()))
