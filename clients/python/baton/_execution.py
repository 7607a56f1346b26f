"""Running one dispatched workflow and the steps the service pushes to this worker.

These functions know how to call user code and turn its outcome into the
message that completes it; they know nothing of the Connect stream, slots or
leases (that is `_runner.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from baton._checkpoints import Checkpointer
from baton._context import AsyncWorkflowContext, ContextCore, WorkflowContext
from baton._convert import error_to_proto
from baton._payload import Serializer
from baton._proto.baton.v1 import common_pb2, worker_service_pb2
from baton._registry import StepDefinition, WorkflowDefinition
from baton._rpc_async import AsyncRpc
from baton._run_state import RunState
from baton._steps import run_step_from_loop
from baton._tracing import workflow_span

__all__ = ["execute_remote_step", "execute_workflow"]


async def execute_workflow(
    dispatch: worker_service_pb2.DispatchWorkflow,
    definition: WorkflowDefinition | None,
    *,
    serializer: Serializer,
    rpc: AsyncRpc,
    checkpoints: Checkpointer | None = None,
    executor: Executor,
    state: RunState,
    release_waits_after: float | None = None,
) -> tuple[worker_service_pb2.CompleteWorkflowRequest, Callable[[], Awaitable[None]]]:
    """Runs a dispatched workflow to its end; returns the request that completes
    it and a coroutine function that waits until the workflow's last step is
    committed.

    The last step may still be on its way (`ContextCore.record_ahead`): the
    completion then names it in ``follows_step``, so it can be sent at once
    and is written only after that step.

    A plain ``def`` workflow runs in ``executor`` (a thread); an ``async def``
    workflow runs in the calling task. A workflow that raises completes with
    the error; one whose replay diverged completes with the
    `NonDeterministicError` even if its code caught it.

    Args:
        dispatch: The dispatch to run.
        definition: The registered workflow, or ``None`` if this worker does not
            host ``dispatch.workflow_name`` (it then fails as
            ``baton.UnknownWorkflowError``).
        serializer: Decodes the input, encodes the output and step results.
        rpc: The worker's RPC tier.
        checkpoints: Where step results go (default: ``rpc``'s unary calls).
        executor: Where plain ``def`` workflows run.
        state: The run's flags, set by the worker (stale, cancelled).
        release_waits_after: Longer waits release the workflow (see `ContextCore`).

    Raises:
        WorkflowStop: The run was abandoned (lease lost, cancelled, shutting
            down, or released while it waits); it must not be completed.
    """
    completion = worker_service_pb2.CompleteWorkflowRequest(
        workflow_id=dispatch.workflow_id, attempt=dispatch.attempt
    )
    if definition is None:
        completion.error.CopyFrom(
            common_pb2.WorkflowError(
                type="baton.UnknownWorkflowError",
                message=f"workflow {dispatch.workflow_name!r} is not registered on this worker",
            )
        )
        return completion, _nothing_ahead
    core = ContextCore(
        workflow_id=dispatch.workflow_id,
        workflow_name=definition.name,
        attempt=dispatch.attempt,
        journal=dispatch.journal,
        serializer=serializer,
        rpc=rpc,
        checkpoints=checkpoints,
        loop=asyncio.get_running_loop(),
        state=state,
        release_waits_after=release_waits_after,
    )
    try:
        args = serializer.decode_args(dispatch.input)
        with workflow_span(
            definition.name, dispatch.workflow_id, dispatch.attempt, dispatch.trace_carrier
        ):
            output = await _call_workflow(definition, core, args, executor)
        if core.nondeterminism is not None:
            raise core.nondeterminism
        # Completing is a checkpoint too: a run that went stale or was cancelled
        # while finishing must not write its result over a newer attempt's.
        core.check_alive()
        completion.output.CopyFrom(serializer.encode(output))
    except Exception as exc:
        core.check_alive()
        completion.error.CopyFrom(error_to_proto(core.nondeterminism or exc))
    completion.follows_step = core.ahead_step
    return completion, core.settled


async def _nothing_ahead() -> None:
    return None


async def _call_workflow(
    definition: WorkflowDefinition, core: ContextCore, args: list[Any], executor: Executor
) -> Any:
    try:
        if definition.is_async:
            return await definition.fn(AsyncWorkflowContext(core), *args)
        return await _call_in_thread(definition, core, args, executor)
    except asyncio.CancelledError:
        # The worker tears the run down; a thread of it may run on (it stops at
        # its next checkpoint), but what it runs on the loop ends now, while the
        # loop is still there (see `LoopCalls`).
        await core.calls.cancel()
        raise


async def _call_in_thread(
    definition: WorkflowDefinition, core: ContextCore, args: list[Any], executor: Executor
) -> Any:
    context = WorkflowContext(core)

    def call() -> Any:
        try:
            return definition.fn(context, *args)
        finally:
            core.code_returned()

    # The thread runs in a copy of this context, so it sees the workflow's span.
    in_context = functools.partial(contextvars.copy_context().run, call)
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, in_context)
    finally:
        # The last step, if it was held, leaves now. The completion follows it
        # in this same callback when it names that step (`follows_step`), so
        # the two go in one message unless they are too large to share one.
        core.release_held()


async def execute_remote_step(
    run_step: worker_service_pb2.RunStep,
    definition: StepDefinition | None,
    *,
    serializer: Serializer,
    executor: Executor | None = None,
) -> worker_service_pb2.CompleteStepRequest:
    """Runs a step the service pushed for a workflow running elsewhere (a
    plain one in a thread of ``executor``).

    The step runs with its own retry policy; its outcome goes into the returned
    `CompleteStepRequest`, and the caller's worker records it in its journal.
    """
    completion = worker_service_pb2.CompleteStepRequest(task_id=run_step.task_id)
    if definition is None:
        completion.error.CopyFrom(
            common_pb2.WorkflowError(
                type="baton.UnknownStepError",
                message=f"step {run_step.step_name!r} is not registered on this worker",
            )
        )
        return completion
    try:
        args = serializer.decode_args(run_step.input)
        output = await run_step_from_loop(definition, args, {}, _keep_going, executor)
        completion.output.CopyFrom(serializer.encode(output))
    except Exception as exc:
        completion.error.CopyFrom(error_to_proto(exc))
    return completion


def _keep_going() -> None:
    """A remote step has no lease of its own to lose between retries."""
