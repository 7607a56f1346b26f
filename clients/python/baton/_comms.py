"""What a workflow does besides steps: messages, events, streams, sleep, the
clock and randomness, child workflows. Each is one coroutine over a
`ContextCore`, shared by the sync and async contexts (which only differ in
how they wait for it).

Every operation takes its step number in call order (``core.claim``) before
anything else, so numbering is deterministic. If the journal holds the step,
the recorded result is returned without calling the service. Otherwise the
service performs the operation and records it under that number in the same
transaction (exactly once); a retried call returns what was recorded.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from baton import _client_shared as shared
from baton._convert import duration, error_info_from_proto
from baton._errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Unavailable,
    WorkflowFailed,
    recorded_refusal,
)
from baton._proto.baton.v1 import (
    common_pb2,
    event_service_pb2,
    message_service_pb2,
    stream_service_pb2,
    worker_service_pb2,
    workflow_service_pb2,
)
from baton._queues import QueueOptions, add_queue_options

if TYPE_CHECKING:
    from baton._context import ContextCore

__all__ = [
    "AWAIT_WORKFLOW",
    "CLOSE_STREAM",
    "GET_EVENT",
    "NOW",
    "RANDOM",
    "RECV",
    "SELECT",
    "SEND",
    "SET_EVENT",
    "SLEEP",
    "START_WORKFLOW",
    "WRITE_STREAM",
    "in_step",
    "step_core",
]

T = TypeVar("T")

# Journal names: the service records the first ones itself under these names;
# the SDK records the last three with RecordStep.
SEND = "baton.send"
RECV = "baton.recv"
SET_EVENT = "baton.set_event"
GET_EVENT = "baton.get_event"
WRITE_STREAM = "baton.write_stream"
CLOSE_STREAM = "baton.close_stream"
SLEEP = "baton.sleep"
START_WORKFLOW = "baton.start_workflow"
AWAIT_WORKFLOW = "baton.await_workflow"
NOW = "baton.now"
RANDOM = "baton.random"
SELECT = "baton.select"

_AWAIT_SLICE = 30.0

_current_step: contextvars.ContextVar[ContextCore | None] = contextvars.ContextVar(
    "baton_current_step", default=None
)


@contextmanager
def in_step(core: ContextCore) -> Iterator[None]:
    """Marks the code inside as running a step of ``core``'s workflow, so that
    `baton.write_stream` can reach it."""
    token = _current_step.set(core)
    try:
        yield
    finally:
        _current_step.reset(token)


async def with_step(core: ContextCore, coro: Coroutine[Any, Any, T]) -> T:
    """Runs an ``async def`` step's coroutine marked as in a step of ``core``."""
    with in_step(core):
        return await coro


def step_core() -> ContextCore:
    """The workflow of the step running now.

    Raises:
        RuntimeError: Not called from inside a step.
    """
    core = _current_step.get()
    if core is None:
        raise RuntimeError(
            "baton.write_stream() is for code running inside a step; "
            "a workflow writes with ctx.write_stream()"
        )
    return core


def _context(core: ContextCore, function_id: int) -> common_pb2.WorkflowContext:
    return common_pb2.WorkflowContext(
        workflow_id=core.workflow_id, function_id=function_id, attempt=core.attempt
    )


async def _fenced(core: ContextCore, coro: Coroutine[Any, Any, T], *, settle: bool = True) -> T:
    """Awaits a checkpoint call, once the steps sent before it are committed
    (unless ``settle`` is false: a write from inside a step, which has no place
    in the journal's order); a refusal for a stale attempt stops the run."""
    from baton._run_state import LeaseLost

    try:
        if settle:
            await core.settled()
    except BaseException:
        coro.close()
        raise
    try:
        return await coro
    except FailedPrecondition as exc:
        if exc.reason != "STALE_ATTEMPT":
            raise
        core.state.stale = True
        raise LeaseLost(str(exc)) from exc


async def send(
    core: ContextCore, function_id: int, destination_id: str, message: Any, topic: str | None
) -> None:
    """Sends a message from the workflow (recorded: exactly once)."""
    assert core.rpc is not None
    request = message_service_pb2.SendRequest(
        destination_id=destination_id,
        message=core.serializer.encode(message),
        topic=topic or "",
        context=_context(core, function_id),
    )
    await _fenced(core, core.rpc.send(request, checkpoint=True))


async def recv(core: ContextCore, function_id: int, topic: str | None, timeout: float) -> Any:
    """Receives the next message on ``topic``, or ``None`` after ``timeout``.

    Raises:
        WaitReleased: The service released the workflow while it waits.
    """
    assert core.rpc is not None
    request = worker_service_pb2.RecvRequest(
        context=_context(core, function_id),
        topic=topic or "",
        timeout=duration(timeout),
        release_if_longer_than=_release_threshold(core),
    )
    response = await _fenced(core, core.rpc.recv(request, wait=timeout))
    if response.released:
        _stop_released(core, f"receiving on topic {topic!r}")
    return core.serializer.decode(response.message) if response.found else None


async def set_event(core: ContextCore, function_id: int, key: str, value: Any) -> None:
    """Publishes an event of the workflow (recorded: exactly once)."""
    assert core.rpc is not None
    request = event_service_pb2.SetEventRequest(
        context=_context(core, function_id), key=key, value=core.serializer.encode(value)
    )
    await _fenced(core, core.rpc.set_event(request))


async def get_event(
    core: ContextCore, function_id: int, workflow_id: str, key: str, timeout: float
) -> Any:
    """Reads an event (waiting up to ``timeout``); the value read is recorded.

    Raises:
        WaitReleased: The service released the workflow while it waits.
    """
    assert core.rpc is not None
    request = event_service_pb2.GetEventRequest(
        workflow_id=workflow_id,
        key=key,
        timeout=duration(timeout) if timeout > 0 else None,
        context=_context(core, function_id),
        # GetEvent takes a threshold of at most an hour, its longest wait.
        release_if_longer_than=_release_threshold(core, longest=timeout),
    )
    response = await _fenced(core, core.rpc.get_event(request, wait=timeout))
    if response.released:
        _stop_released(core, f"waiting for event {key!r} of workflow {workflow_id!r}")
    return core.serializer.decode(response.value) if response.found else None


async def write_stream(core: ContextCore, function_id: int, key: str, value: Any) -> int:
    """Appends to a stream; ``function_id`` 0 means from inside a step (at least once)."""
    assert core.rpc is not None
    request = stream_service_pb2.WriteStreamRequest(
        context=_context(core, function_id), key=key, value=core.serializer.encode(value)
    )
    response = await _fenced(core, core.rpc.write_stream(request), settle=function_id != 0)
    return int(response.offset)


async def close_stream(core: ContextCore, function_id: int, key: str) -> None:
    """Closes a stream of the workflow."""
    assert core.rpc is not None
    request = stream_service_pb2.CloseStreamRequest(context=_context(core, function_id), key=key)
    await _fenced(core, core.rpc.close_stream(request))


async def sleep(core: ContextCore, function_id: int, seconds: float) -> None:
    """Sleeps durably: the wake-up time is recorded the first time.

    Raises:
        WaitReleased: The service released the workflow while it waits.
    """
    assert core.rpc is not None
    request = worker_service_pb2.SleepRequest(
        context=_context(core, function_id),
        duration=duration(max(seconds, 0.000001)),
        release_if_longer_than=_release_threshold(core),
    )
    response = await _fenced(core, core.rpc.sleep(request, wait=seconds))
    if response.released:
        _stop_released(core, f"sleeping until {response.wake_at.ToJsonString()}")


def _release_threshold(core: ContextCore, longest: float | None = None) -> timedelta | None:
    """The request's ``release_if_longer_than``: unset when the worker never
    releases, or when the wait lasts at most ``longest`` seconds and so never
    goes on past the threshold."""
    after = core.release_waits_after
    if after is None or (longest is not None and after >= longest):
        return None
    return duration(after)


def _stop_released(core: ContextCore, waiting: str) -> NoReturn:
    """Ends a run whose workflow the service released while it waits.

    The run is marked stale as well, so that nothing else of it (a concurrent
    step, code that catches the stop) can complete the workflow.
    """
    from baton._run_state import WaitReleased

    core.state.stale = True
    raise WaitReleased(
        f"workflow {core.workflow_id!r} attempt {core.attempt} released while {waiting}"
    )


async def record_value(core: ContextCore, function_id: int, name: str, value: Any) -> Any:
    """Records a value the workflow chose (the time, a random number, a
    selection) as a step; returns the recorded one (a racing attempt's wins)."""
    request = core.record_request(function_id, name, datetime.now(UTC), output=value)
    return core.settle(await core.record(request))


def now_value() -> str:
    """The current time as recorded (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat()


def random_value() -> float:
    """A fresh random number in [0, 1)."""
    return random.random()


async def call_remote(
    core: ContextCore, function_id: int, step_name: str, args: tuple[Any, ...]
) -> common_pb2.Step:
    """Runs a step by name on whichever worker hosts it; returns the recorded step."""
    assert core.rpc is not None
    request = worker_service_pb2.CallStepRequest(
        context=_context(core, function_id),
        step_name=step_name,
        input=core.serializer.encode_args(args),
    )
    while True:
        core.check_alive()
        response = await _fenced(core, core.rpc.call_step(request))
        if response.done:
            return response.step


async def start_child(
    core: ContextCore,
    function_id: int,
    workflow: str,
    args: tuple[Any, ...],
    workflow_id: str | None,
    app_version: str | None,
    timeout: float | None,
    options: QueueOptions,
) -> str:
    """Starts a child workflow (once, recorded), with its queue ``options``;
    returns its id."""
    assert core.rpc is not None
    request = workflow_service_pb2.StartWorkflowRequest(
        workflow_name=workflow,
        workflow_id=workflow_id or "",
        input=core.serializer.encode_args(args),
        app_version=app_version or "",
        timeout=None if timeout is None else duration(timeout),
        caller=_context(core, function_id),
    )
    add_queue_options(request, options)
    response = await _fenced(core, core.rpc.start_workflow(request))
    return str(response.workflow.workflow_id)


def recorded_child(step: common_pb2.Step) -> str:
    """The id of the child a recorded start names; raises the refusal it
    recorded instead (e.g. `AlreadyExists` for a deduplication id that was
    in flight), as the first run's call raised it."""
    if step.WhichOneof("result") == "error":
        raise recorded_refusal(step.error.message, step.error.details.json)
    return step.child_workflow_id


async def await_child(core: ContextCore, function_id: int, workflow_id: str) -> Any:
    """Waits for a workflow to finish and records its outcome as a step.

    Raises:
        WaitReleased: The service released the workflow while it waits (after
            ``core.release_waits_after`` of waiting in all).
    """
    assert core.rpc is not None
    began = time.monotonic()
    while True:
        core.check_alive()
        # What is left of the wait the worker holds before it is released;
        # unset while it is longer than this call waits.
        left = None
        if core.release_waits_after is not None:
            left = max(core.release_waits_after - (time.monotonic() - began), 0.0)
        request = workflow_service_pb2.AwaitWorkflowRequest(
            workflow_id=workflow_id,
            timeout=duration(_AWAIT_SLICE),
            caller=_context(core, function_id),
            release_if_longer_than=None if left is None or left > _AWAIT_SLICE else duration(left),
        )
        try:
            response = await _fenced(
                core, core.rpc.await_workflow(request, timeout=_AWAIT_SLICE + shared.AWAIT_MARGIN)
            )
        except (Unavailable, DeadlineExceeded):
            continue
        if response.released:
            _stop_released(core, f"awaiting workflow {workflow_id!r}")
        if response.done:
            return shared.outcome(response.workflow, core.serializer)


def settle_child(core: ContextCore, step: common_pb2.Step, workflow_id: str) -> Any:
    """A recorded child outcome: its output, or the error it ended with."""
    if step.WhichOneof("result") == "error":
        raise WorkflowFailed(workflow_id, error_info_from_proto(step.error))
    return core.serializer.decode(step.output)
