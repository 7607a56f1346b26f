"""The communication methods of `WorkflowContext` and `AsyncWorkflowContext`:
messages, events, streams, sleep, the clock, randomness, child workflows and
concurrent steps. Mixins over the context's ``_core`` (a `ContextCore`); the
work itself is in `_comms.py`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from baton import _comms as comms
from baton._proto.baton.v1 import common_pb2
from baton._queues import QueueOptions, checked_queue_options
from baton._registry import StepDefinition, step_definition_of, workflow_name_of

if TYPE_CHECKING:
    from baton._context import ContextCore

__all__ = ["AsyncChildHandle", "AsyncOps", "ChildHandle", "SyncOps"]

T = TypeVar("T")

# Plain `def` steps started with ctx.go() run here, beside the workflow's thread.
_GO_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="baton-go")


class ChildHandle:
    """A child workflow started by a plain ``def`` workflow.

    Attributes:
        workflow_id: The child's id (deterministic: ``<parent>-<step>`` unless given).
    """

    def __init__(self, core: ContextCore, workflow_id: str) -> None:
        self._core = core
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        return f"ChildHandle({self.workflow_id!r})"

    def result(self) -> Any:
        """Waits for the child to finish and returns its output; the outcome is
        recorded as a step of the parent, so replay returns it without waiting.

        Raises:
            WorkflowFailed: The child failed (or was cancelled).
        """
        core = self._core
        core.check_alive()
        function_id, recorded = core.claim(comms.AWAIT_WORKFLOW)
        if recorded is not None:
            return comms.settle_child(core, recorded, self.workflow_id)
        return core.call_from_thread(comms.await_child(core, function_id, self.workflow_id))


class AsyncChildHandle:
    """A child workflow started by an ``async def`` workflow; see `ChildHandle`."""

    def __init__(self, core: ContextCore, workflow_id: str) -> None:
        self._core = core
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        return f"AsyncChildHandle({self.workflow_id!r})"

    async def result(self) -> Any:
        """Waits for the child's output (recorded); see `ChildHandle.result`."""
        core = self._core
        core.check_alive()
        function_id, recorded = core.claim(comms.AWAIT_WORKFLOW)
        if recorded is not None:
            return comms.settle_child(core, recorded, self.workflow_id)
        return await comms.await_child(core, function_id, self.workflow_id)


def _begin(core: ContextCore, name: str) -> tuple[int, common_pb2.Step | None]:
    core.check_alive()
    return core.claim(name)


def _decoded(core: ContextCore, step: common_pb2.Step) -> Any:
    return core.serializer.decode(step.output)


class SyncOps:
    """Communication for plain ``def`` workflows (each call blocks the workflow's thread)."""

    _core: ContextCore

    def _run_claimed(
        self,
        definition: StepDefinition,
        function_id: int,
        recorded: common_pb2.Step | None,
        args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        raise NotImplementedError

    def send(self, destination_id: str, message: Any, topic: str | None = None) -> None:
        """Sends ``message`` to workflow ``destination_id``, exactly once.

        Args:
            destination_id: The receiving workflow's id.
            message: The message (encoded like any value).
            topic: The topic; ``None`` sends without one (received by ``recv()``).

        Raises:
            NotFound: No workflow has that id.
        """
        function_id, recorded = _begin(self._core, comms.SEND)
        if recorded is None:
            self._core.call_from_thread(
                comms.send(self._core, function_id, destination_id, message, topic)
            )

    def recv(self, topic: str | None = None, timeout: float = 60.0) -> Any:
        """Receives the next message sent to this workflow on ``topic``.

        Messages arrive FIFO per topic; with ``topic=None`` only messages sent
        without a topic. The wait's deadline is recorded the first time, so a
        recovered workflow does not wait the whole ``timeout`` again.

        Returns:
            The message, or ``None`` when ``timeout`` seconds passed first.
        """
        function_id, recorded = _begin(self._core, comms.RECV)
        if recorded is not None:
            return _decoded(self._core, recorded)
        return self._core.call_from_thread(comms.recv(self._core, function_id, topic, timeout))

    def set_event(self, key: str, value: Any) -> None:
        """Publishes (or updates) this workflow's event ``key``; the latest value wins."""
        function_id, recorded = _begin(self._core, comms.SET_EVENT)
        if recorded is None:
            self._core.call_from_thread(comms.set_event(self._core, function_id, key, value))

    def get_event(self, workflow_id: str, key: str, timeout: float = 60.0) -> Any:
        """Reads another workflow's event, waiting up to ``timeout`` for it to be set.

        The value read is recorded, so replay returns it even if the event changed.
        The wait's deadline is recorded the first time; a wait longer than the
        worker's ``evict_waits_after`` evicts the workflow until the event is
        set or the deadline passes (reading its own event never does).

        Returns:
            The latest value, or ``None`` if it was not set in time.
        """
        function_id, recorded = _begin(self._core, comms.GET_EVENT)
        if recorded is not None:
            return _decoded(self._core, recorded)
        return self._core.call_from_thread(
            comms.get_event(self._core, function_id, workflow_id, key, timeout)
        )

    def write_stream(self, key: str, value: Any) -> None:
        """Appends ``value`` to this workflow's stream ``key``, exactly once.

        Raises:
            FailedPrecondition: The stream is closed (reason ``STREAM_CLOSED``).
        """
        function_id, recorded = _begin(self._core, comms.WRITE_STREAM)
        if recorded is None:
            self._core.call_from_thread(comms.write_stream(self._core, function_id, key, value))

    def close_stream(self, key: str) -> None:
        """Closes this workflow's stream ``key`` (readers end once they have it all)."""
        function_id, recorded = _begin(self._core, comms.CLOSE_STREAM)
        if recorded is None:
            self._core.call_from_thread(comms.close_stream(self._core, function_id, key))

    def sleep(self, seconds: float) -> None:
        """Sleeps durably: after a crash, only the remaining time is slept."""
        function_id, recorded = _begin(self._core, comms.SLEEP)
        if recorded is None:
            self._core.call_from_thread(comms.sleep(self._core, function_id, seconds))

    def now(self) -> datetime:
        """The current time (UTC), recorded: replay returns the same instant."""
        function_id, recorded = _begin(self._core, comms.NOW)
        if recorded is not None:
            return datetime.fromisoformat(_decoded(self._core, recorded))
        value = self._core.call_from_thread(
            comms.record_value(self._core, function_id, comms.NOW, comms.now_value())
        )
        return datetime.fromisoformat(value)

    def random(self) -> float:
        """A random number in [0, 1), recorded: replay returns the same number."""
        function_id, recorded = _begin(self._core, comms.RANDOM)
        if recorded is not None:
            return float(_decoded(self._core, recorded))
        return float(
            self._core.call_from_thread(
                comms.record_value(self._core, function_id, comms.RANDOM, comms.random_value())
            )
        )

    def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        app_version: str | None = None,
        timeout: float | None = None,
        **options: Unpack[QueueOptions],
    ) -> ChildHandle:
        """Starts a child workflow, once: replay returns the same child.

        The child's id is ``<this id>-<step number>`` unless ``workflow_id`` is
        given; it inherits this workflow's deadline (the earlier of the two
        with ``timeout``, its own start-to-close seconds) and app version.

        With ``queue`` (and the other queue options of `Client.start_workflow`:
        ``deduplication_id``, ``priority``, ``partition_key``, ``delay``,
        ``start_at``, ``queue_timeout``, ``return_existing_duplicate``) the
        child waits its turn on that queue, under the queue's flow control:
        the durable fan-out of DBOS's ``queue.enqueue`` inside a workflow.
        ``delay`` counts from the first run of this call; a replay keeps the
        child it started.

        Raises:
            AlreadyExists: The child id is taken by a workflow of another
                name, or ``deduplication_id`` by a workflow in flight.
            NotFound: The queue does not exist.
            InvalidArgument: A queue option the queue does not allow.

            These refusals are recorded as this call's outcome: a replay
            raises the same one (even once the deduplication id is free),
            so a workflow that handles it replays the same way.
        """
        name = workflow_name_of(workflow)
        queue_options = checked_queue_options(dict(options), "start_workflow")
        function_id, recorded = _begin(self._core, comms.START_WORKFLOW)
        if recorded is not None:
            return ChildHandle(self._core, comms.recorded_child(recorded))
        child = self._core.call_from_thread(
            comms.start_child(
                self._core,
                function_id,
                name,
                args,
                workflow_id,
                app_version,
                timeout,
                queue_options,
            )
        )
        return ChildHandle(self._core, child)

    def go(
        self, step: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        """Starts a step concurrently and returns a future of its (recorded) result.

        The step's number is taken now, in call order, so replay matches it
        whatever order the steps finish in. Await it with `gather` or `select`.
        """
        definition = step_definition_of(step)
        self._core.check_alive()
        function_id, recorded = self._core.claim(definition.name)
        return _GO_THREADS.submit(
            self._run_claimed, definition, function_id, recorded, args, dict(kwargs)
        )

    def gather(self, *futures: concurrent.futures.Future[Any]) -> list[Any]:
        """The results of futures from `go`, in order (raises the first error met)."""
        return [future.result() for future in futures]

    def select(self, futures: Sequence[concurrent.futures.Future[Any]]) -> Any:
        """The result of the first of ``futures`` to finish, durably: the choice is
        recorded, so replay returns the same one (its `StepError` if it failed)."""
        function_id, recorded = _begin(self._core, comms.SELECT)
        if recorded is not None:
            return futures[int(_decoded(self._core, recorded))].result()
        done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
        first = min(i for i, future in enumerate(futures) if future in done)
        index = self._core.call_from_thread(
            comms.record_value(self._core, function_id, comms.SELECT, first)
        )
        return futures[int(index)].result()


class AsyncOps:
    """Communication for ``async def`` workflows; see `SyncOps` for each method."""

    _core: ContextCore

    async def _run_claimed(
        self,
        definition: StepDefinition,
        function_id: int,
        recorded: common_pb2.Step | None,
        args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        raise NotImplementedError

    async def send(self, destination_id: str, message: Any, topic: str | None = None) -> None:
        """Sends a message, exactly once; see `WorkflowContext.send`."""
        function_id, recorded = _begin(self._core, comms.SEND)
        if recorded is None:
            await comms.send(self._core, function_id, destination_id, message, topic)

    async def recv(self, topic: str | None = None, timeout: float = 60.0) -> Any:
        """The next message on ``topic``, or ``None`` on timeout; see `WorkflowContext.recv`."""
        function_id, recorded = _begin(self._core, comms.RECV)
        if recorded is not None:
            return _decoded(self._core, recorded)
        return await comms.recv(self._core, function_id, topic, timeout)

    async def set_event(self, key: str, value: Any) -> None:
        """Publishes an event; see `WorkflowContext.set_event`."""
        function_id, recorded = _begin(self._core, comms.SET_EVENT)
        if recorded is None:
            await comms.set_event(self._core, function_id, key, value)

    async def get_event(self, workflow_id: str, key: str, timeout: float = 60.0) -> Any:
        """Reads an event (recorded); see `WorkflowContext.get_event`."""
        function_id, recorded = _begin(self._core, comms.GET_EVENT)
        if recorded is not None:
            return _decoded(self._core, recorded)
        return await comms.get_event(self._core, function_id, workflow_id, key, timeout)

    async def write_stream(self, key: str, value: Any) -> None:
        """Appends to a stream, exactly once; see `WorkflowContext.write_stream`."""
        function_id, recorded = _begin(self._core, comms.WRITE_STREAM)
        if recorded is None:
            await comms.write_stream(self._core, function_id, key, value)

    async def close_stream(self, key: str) -> None:
        """Closes a stream; see `WorkflowContext.close_stream`."""
        function_id, recorded = _begin(self._core, comms.CLOSE_STREAM)
        if recorded is None:
            await comms.close_stream(self._core, function_id, key)

    async def sleep(self, seconds: float) -> None:
        """Sleeps durably; see `WorkflowContext.sleep`."""
        function_id, recorded = _begin(self._core, comms.SLEEP)
        if recorded is None:
            await comms.sleep(self._core, function_id, seconds)

    async def now(self) -> datetime:
        """The current time, recorded; see `WorkflowContext.now`."""
        function_id, recorded = _begin(self._core, comms.NOW)
        if recorded is not None:
            return datetime.fromisoformat(_decoded(self._core, recorded))
        value = await comms.record_value(self._core, function_id, comms.NOW, comms.now_value())
        return datetime.fromisoformat(value)

    async def random(self) -> float:
        """A random number, recorded; see `WorkflowContext.random`."""
        function_id, recorded = _begin(self._core, comms.RANDOM)
        if recorded is not None:
            return float(_decoded(self._core, recorded))
        value = await comms.record_value(
            self._core, function_id, comms.RANDOM, comms.random_value()
        )
        return float(value)

    async def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        app_version: str | None = None,
        timeout: float | None = None,
        **options: Unpack[QueueOptions],
    ) -> AsyncChildHandle:
        """Starts a child workflow, once (on a queue with ``queue``); see
        `WorkflowContext.start_workflow`."""
        name = workflow_name_of(workflow)
        queue_options = checked_queue_options(dict(options), "start_workflow")
        function_id, recorded = _begin(self._core, comms.START_WORKFLOW)
        if recorded is not None:
            return AsyncChildHandle(self._core, comms.recorded_child(recorded))
        child = await comms.start_child(
            self._core, function_id, name, args, workflow_id, app_version, timeout, queue_options
        )
        return AsyncChildHandle(self._core, child)

    def go(self, step: Callable[..., Any], /, *args: Any, **kwargs: Any) -> asyncio.Task[Any]:
        """Starts a step concurrently (numbered now, in call order); returns a task."""
        definition = step_definition_of(step)
        self._core.check_alive()
        function_id, recorded = self._core.claim(definition.name)
        return asyncio.ensure_future(
            self._run_claimed(definition, function_id, recorded, args, dict(kwargs))
        )

    async def gather(self, *futures: Awaitable[Any]) -> list[Any]:
        """The results of tasks from `go`, in order."""
        return list(await asyncio.gather(*futures))

    async def select(self, futures: Sequence[asyncio.Future[Any]]) -> Any:
        """The result of the first task to finish, durably; see `WorkflowContext.select`."""
        function_id, recorded = _begin(self._core, comms.SELECT)
        if recorded is not None:
            return await futures[int(_decoded(self._core, recorded))]
        done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        first = min(i for i, future in enumerate(futures) if future in done)
        index = await comms.record_value(self._core, function_id, comms.SELECT, first)
        return await futures[int(index)]
