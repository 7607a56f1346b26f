"""WorkerService: the worker's Connect stream and its checkpoint RPCs."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import code_pb2

from baton._proto.baton.v1 import common_pb2
from baton._proto.baton.v1 import worker_service_pb2 as pb
from baton._proto.baton.v1 import worker_service_pb2_grpc as pb_grpc
from baton_server import tracing
from baton_server.config import Config
from baton_server.engine import cron
from baton_server.engine.engine import Engine
from baton_server.engine.sessions import (
    CancelRun,
    Dispatch,
    Outgoing,
    Reconnect,
    Reply,
    RunRemoteStep,
    WorkerSession,
)
from baton_server.errors import InvalidArgument, ServiceError
from baton_server.servicers import convert, validate
from baton_server.servicers.caller import caller_in
from baton_server.servicers.errors import classify
from baton_server.servicers.message import topic
from baton_server.store.models import Failure, Payload, Step
from baton_server.store.schedules import DeclaredSchedule
from baton_server.store.steps import NewStep
from baton_server.store.workers import WorkerRegistration
from baton_server.store.workflows import Completion

log = logging.getLogger("baton.workers")

# grpc ships no type information; its servicer context is untyped here.
Context = Any

_MAX_SLOTS = 100_000
# Field prefixes of checkpoints sent on the stream, for error messages.
_STEP = "checkpoint.record_step."
_COMPLETE = "checkpoint.complete_workflow."
_MAX_SLEEP_SECONDS = 7 * 24 * 3600.0
# How long CallStep holds the call waiting for the step's result before
# answering `done = false` (the caller calls again).
_CALL_STEP_HOLD_SECONDS = 50.0


class WorkerService(pb_grpc.WorkerServiceServicer):
    """Implements baton.v1.WorkerService over the engine."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self._engine = engine
        self._config = config

    async def Connect(
        self, requests: AsyncIterator[pb.ConnectRequest], context: Context
    ) -> AsyncIterator[pb.ConnectResponse]:
        incoming = aiter(requests)
        try:
            async with asyncio.timeout(self._config.lease_seconds):
                first = await anext(incoming)
        except (StopAsyncIteration, TimeoutError):
            raise InvalidArgument(
                "register", "the first message on Connect must be `register`"
            ) from None
        if first.WhichOneof("message") != "register":
            raise InvalidArgument(
                "register", "the first message on Connect must be `register`"
            ) from None
        registration, max_attempts, slots = self._registration(first.register)
        running = [(r.workflow_id, r.attempt) for r in first.register.running]
        step_slots, running_steps = _step_credit(first.register)
        session = await self._engine.open_session(
            registration,
            max_attempts,
            slots,
            running,
            step_slots=step_slots,
            running_steps=running_steps,
        )
        reader = asyncio.create_task(self._read(incoming, session))
        carried: list[Outgoing | None] = []  # taken from the outbox, not sent yet
        try:
            yield pb.ConnectResponse(
                registered=pb.Registered(
                    worker_id=registration.worker_id,
                    replica_id=self._engine.replica_id,
                    heartbeat_interval=_duration(self._config.heartbeat_seconds),
                    lease_duration=_duration(self._config.lease_seconds),
                    completion_follows_step=True,
                    slots_with_checkpoints=True,
                )
            )
            batches = first.register.dispatch_batches
            # Half the message limit: what is ready together goes together, but
            # a batch never outgrows what the worker may receive.
            budget = self._config.max_message_bytes // 2
            while True:
                item = carried.pop() if carried else await session.outbox.get()
                if isinstance(item, Reply):
                    # Every answer ready now goes in one message.
                    answers = _batch(item, session.outbox, carried, _reply_out, budget)
                    yield _answers_out(answers)
                    continue
                if batches and isinstance(item, Dispatch):
                    # So does every dispatch, for a worker that takes them so.
                    dispatches = _batch(item, session.outbox, carried, _dispatch_out, budget)
                    if len(dispatches) > 1:
                        batch = pb.DispatchBatch(dispatches=dispatches)
                        yield pb.ConnectResponse(dispatch_batch=batch)
                    else:
                        yield pb.ConnectResponse(dispatch=dispatches[0])
                    continue
                if item is None:
                    if reader.done() and not reader.cancelled():
                        refused = reader.result()
                        if refused is not None:  # the worker sent a message we refuse
                            raise refused
                    break
                if isinstance(item, Reconnect):
                    yield pb.ConnectResponse(reconnect=pb.Reconnect(reason=item.reason))
                    break
                if isinstance(item, CancelRun):
                    cancel = pb.CancelWorkflowCommand(workflow_id=item.workflow_id)
                    yield pb.ConnectResponse(cancel=cancel)
                elif isinstance(item, RunRemoteStep):
                    yield pb.ConnectResponse(run_step=_run_step_out(item))
                else:
                    yield pb.ConnectResponse(dispatch=_dispatch_out(item))
        finally:
            reader.cancel()
            # What was taken but never sent goes back with what is still queued:
            # a dispatch in it is given back at once, not held until the lease ends.
            for item in carried:
                if item is not None:
                    session.outbox.put_nowait(item)
            await self._engine.close_session(session)

    def _registration(
        self, register: pb.RegisterWorker
    ) -> tuple[WorkerRegistration, dict[str, int], int]:
        validate.workflow_id(register.worker_id, "register.worker_id")
        if register.app_version:
            validate.name(register.app_version, "register.app_version")
        max_attempts: dict[str, int] = {}
        schedules: list[DeclaredSchedule] = []
        for index, workflow in enumerate(register.workflows):
            validate.name(workflow.name, f"register.workflows[{index}].name")
            max_attempts[workflow.name] = max(workflow.max_attempts, 0)
            declared = _declared_schedule(workflow, f"register.workflows[{index}]")
            if declared is not None:
                schedules.append(declared)
        for index, step in enumerate(register.steps):
            validate.name(step.name, f"register.steps[{index}].name")
        for index, queue in enumerate(register.queues):
            validate.name(queue, f"register.queues[{index}]")
        if not 0 <= register.workflow_slots <= _MAX_SLOTS:
            raise InvalidArgument("register.workflow_slots", f"must be between 0 and {_MAX_SLOTS}")
        registration = WorkerRegistration(
            worker_id=register.worker_id,
            app_version=register.app_version,
            display_name=register.display_name[:200],
            sdk=register.sdk[:200],
            workflow_names=sorted(max_attempts),
            step_names=sorted({step.name for step in register.steps}),
            queues=sorted(set(register.queues)),
            schedules=schedules,
        )
        return registration, max_attempts, register.workflow_slots

    async def _read(
        self, incoming: AsyncIterator[pb.ConnectRequest], session: WorkerSession
    ) -> ServiceError | None:
        """Takes in the worker's messages until the stream ends; what refused
        a message (one that does not parse), if that ended it."""
        try:
            async for message in incoming:
                self._engine.seen(session)
                kind = message.WhichOneof("message")
                if kind == "checkpoint":
                    self._checkpoint(session, message.checkpoint)
                elif kind == "checkpoints":
                    for checkpoint in message.checkpoints.checkpoints:
                        self._checkpoint(session, checkpoint)
                    self._grant(session, message.checkpoints.workflow_slots)
                elif kind == "slots":
                    self._grant(session, message.slots.workflow_slots, message.slots.step_slots)
                elif kind == "register":
                    log.warning("worker %s sent `register` twice; ignored", session.worker_id)
        except asyncio.CancelledError:
            raise
        except ServiceError as exc:
            log.info("worker %s sent a message refused: %s", session.worker_id, exc)
            return exc
        except Exception as exc:  # the stream broke; the session ends either way
            log.debug("worker %s stream ended: %s", session.worker_id, exc)
        finally:
            session.close()
        return None

    def _grant(self, session: WorkerSession, granted: int, steps: int = 0) -> None:
        """Workflow and step slots the worker granted (none, or out of range: ignored)."""
        if 0 < granted <= _MAX_SLOTS:
            self._engine.grant(session, granted)
        if 0 < steps <= _MAX_SLOTS:
            self._engine.grant_steps(session, steps)

    def _checkpoint(self, session: WorkerSession, checkpoint: pb.Checkpoint) -> None:
        """Hands a checkpoint sent on the stream to the committer; its answer
        follows on the stream once committed (or refused)."""
        kind = checkpoint.WhichOneof("checkpoint")
        try:
            if kind == "record_step":
                new = self._new_step(checkpoint.record_step, _STEP)
                reply = self._reply_to(session, checkpoint, "RecordStep", _step_answer)
                self._engine.checkpoints.submit_step(new, reply)
            elif kind == "complete_workflow":
                completion = self._completion(checkpoint.complete_workflow, _COMPLETE)
                reply = self._reply_to(session, checkpoint, "CompleteWorkflow", _completion_answer)
                self._engine.checkpoints.submit_completion(completion, reply)
            else:
                raise InvalidArgument(
                    "checkpoint", "one of record_step or complete_workflow is required"
                )
        except ServiceError as exc:
            session.outbox.put_nowait(Reply(_refusal(checkpoint.id, exc)[0]))

    @staticmethod
    def _reply_to(
        session: WorkerSession,
        checkpoint: pb.Checkpoint,
        method: str,
        answer: Callable[[int, Any], pb.Checkpointed],
    ) -> Callable[[asyncio.Future[Any]], None]:
        """What answers the checkpoint on the stream once the committer settles
        it (traced as the unary ``method``)."""
        end_span = tracing.server_span(f"baton.v1.WorkerService/{method}", checkpoint.trace_carrier)
        return functools.partial(
            _reply, session, checkpoint.id, functools.partial(answer, checkpoint.id), end_span
        )

    async def RecordStep(
        self, request: pb.RecordStepRequest, context: Context
    ) -> pb.RecordStepResponse:
        step, already = await self._engine.checkpoints.record_step(self._new_step(request))
        return pb.RecordStepResponse(step=convert.step_out(step), already_recorded=already)

    async def CompleteWorkflow(
        self, request: pb.CompleteWorkflowRequest, context: Context
    ) -> pb.CompleteWorkflowResponse:
        status = await self._engine.checkpoints.complete(self._completion(request))
        return pb.CompleteWorkflowResponse(status=convert.STATUS_TO_PROTO[status])

    def _new_step(self, request: pb.RecordStepRequest, prefix: str = "") -> NewStep:
        """A validated RecordStep request (fields named under ``prefix`` on the stream)."""
        ctx = request.context
        validate.workflow_id(ctx.workflow_id, f"{prefix}context.workflow_id")
        if ctx.function_id < 1:
            raise InvalidArgument(f"{prefix}context.function_id", "must be 1 or more")
        validate.name(request.step_name, f"{prefix}step_name")
        output, error = self._result(request, prefix)
        return NewStep(
            workflow_id=ctx.workflow_id,
            function_id=ctx.function_id,
            attempt=ctx.attempt,
            step_name=request.step_name,
            output=output,
            error=error,
            started_at=(
                convert.datetime_in(request.started_at, "started_at")
                if request.HasField("started_at")
                else None
            ),
        )

    def _completion(self, request: pb.CompleteWorkflowRequest, prefix: str = "") -> Completion:
        """A validated CompleteWorkflow request."""
        validate.workflow_id(request.workflow_id, f"{prefix}workflow_id")
        output, error = self._result(request, prefix)
        if request.follows_step < 0:
            raise InvalidArgument(f"{prefix}follows_step", "must be 0 (none) or a step number")
        return Completion(request.workflow_id, request.attempt, output, error, request.follows_step)

    def _result(
        self,
        request: pb.RecordStepRequest | pb.CompleteWorkflowRequest | pb.CompleteStepRequest,
        prefix: str = "",
    ) -> tuple[Payload | None, Failure | None]:
        """The request's validated ``result`` oneof: (output, None) or (None, error)."""
        kind = request.WhichOneof("result")
        if kind is None:
            raise InvalidArgument(f"{prefix}result", "one of output or error is required")
        limit = self._config.max_payload_bytes
        if kind == "output":
            validate.payload(request.output, f"{prefix}output", limit)
            return convert.payload_in(request.output), None
        validate.payload(request.error, f"{prefix}error", limit)
        return None, convert.failure_in(request.error)

    async def Sleep(self, request: pb.SleepRequest, context: Context) -> pb.SleepResponse:
        caller = caller_in(request.context, "context")
        duration = validate.seconds(
            request.duration, "duration", default=0.0, maximum=_MAX_SLEEP_SECONDS
        )
        wake_at, released = await self._engine.sleeps.sleep(
            caller, duration, validate.release_threshold(request, maximum=_MAX_SLEEP_SECONDS)
        )
        return pb.SleepResponse(wake_at=convert.timestamp(wake_at), released=released)

    async def Recv(self, request: pb.RecvRequest, context: Context) -> pb.RecvResponse:
        caller = caller_in(request.context, "context")
        topic(request.topic)
        timeout = validate.seconds(
            request.timeout, "timeout", default=0.0, maximum=_MAX_SLEEP_SECONDS
        )
        release = validate.release_threshold(request, maximum=_MAX_SLEEP_SECONDS)
        received = await self._engine.messages.recv(caller, request.topic, timeout, release)
        if received.step is None:
            return pb.RecvResponse(released=True)
        return pb.RecvResponse(
            found=received.step.output is not None,
            message=convert.payload_out(received.step.output),
        )

    async def CallStep(self, request: pb.CallStepRequest, context: Context) -> pb.CallStepResponse:
        caller = caller_in(request.context, "context")
        validate.name(request.step_name, "step_name")
        validate.payload(request.input, "input", self._config.max_payload_bytes, arguments=True)
        step = await self._engine.remote_steps.call(
            caller, request.step_name, convert.payload_in(request.input), _CALL_STEP_HOLD_SECONDS
        )
        if step is None:
            return pb.CallStepResponse(done=False)
        return pb.CallStepResponse(step=convert.step_out(step), done=True)

    async def CompleteStep(
        self, request: pb.CompleteStepRequest, context: Context
    ) -> pb.CompleteStepResponse:
        if not request.task_id:
            raise InvalidArgument("task_id", "is required")
        output, error = self._result(request)
        await self._engine.remote_steps.complete(request.task_id, output, error)
        return pb.CompleteStepResponse()


def _reply(
    session: WorkerSession,
    checkpoint_id: int,
    answer: Callable[[Any], pb.Checkpointed],
    end_span: Callable[[str | None], None],
    written: asyncio.Future[Any],
) -> None:
    """Sends the answer to a checkpoint once the committer is done with it."""
    if written.cancelled():
        end_span("CANCELLED")
        return  # the worker sends it again if it still cares
    exc = written.exception()
    if exc is None:
        reply, failed = answer(written.result()), None
    else:
        reply, failed = _refusal(checkpoint_id, exc)
    end_span(failed)
    if not session.closed.is_set():
        session.outbox.put_nowait(Reply(reply))


def _batch(
    first: Reply | Dispatch,
    outbox: asyncio.Queue[Outgoing | None],
    carried: list[Outgoing | None],
    convert: Callable[[Any], Message],
    budget: int,
) -> list[Any]:
    """``first`` and the items of its kind queued right behind it, converted,
    while they fit ``budget`` bytes; the first item that does not (or of
    another kind) goes to ``carried``."""
    messages = [convert(first)]
    size = messages[0].ByteSize()
    while not outbox.empty():
        following = outbox.get_nowait()
        if type(following) is not type(first):
            carried.append(following)
            break
        message = convert(following)
        size += message.ByteSize()
        if size > budget:
            carried.append(following)
            break
        messages.append(message)
    return messages


def _reply_out(reply: Reply) -> pb.Checkpointed:
    assert isinstance(reply.message, pb.Checkpointed)
    return reply.message


def _answers_out(checkpointed: list[pb.Checkpointed]) -> pb.ConnectResponse:
    if len(checkpointed) == 1:
        return pb.ConnectResponse(checkpointed=checkpointed[0])
    return pb.ConnectResponse(checkpointed_batch=pb.CheckpointedBatch(answers=checkpointed))


def _step_answer(checkpoint_id: int, result: tuple[Step, bool]) -> pb.Checkpointed:
    step, already = result
    # The worker's own step is not echoed back: it holds what it sent, and a
    # large output would cross the wire twice (see Checkpointed.record_step).
    response = (
        pb.RecordStepResponse(step=convert.step_out(step), already_recorded=True)
        if already
        else pb.RecordStepResponse()
    )
    return pb.Checkpointed(id=checkpoint_id, record_step=response)


def _completion_answer(checkpoint_id: int, status: str) -> pb.Checkpointed:
    response = pb.CompleteWorkflowResponse(status=convert.STATUS_TO_PROTO[status])
    return pb.Checkpointed(id=checkpoint_id, complete_workflow=response)


def _refusal(checkpoint_id: int, exc: BaseException) -> tuple[pb.Checkpointed, str]:
    """The answer to a checkpoint that failed (the status the unary call would
    end with), and that status code's name."""
    status = classify(exc, "WorkerService/Connect checkpoint")
    answer = pb.Checkpointed(id=checkpoint_id, error=status.SerializeToString())
    return answer, code_pb2.Code.Name(status.code)


def _declared_schedule(workflow: pb.WorkflowRegistration, field: str) -> DeclaredSchedule | None:
    """The schedule a workflow registration declares, validated; None if none."""
    if not workflow.schedule:
        if workflow.schedule_time_zone:
            raise InvalidArgument(f"{field}.schedule_time_zone", "needs a schedule")
        return None
    validate.schedule_name(workflow.name, f"{field}.name")
    parsed = cron.parse(
        workflow.schedule,
        workflow.schedule_time_zone,
        cron_field=f"{field}.schedule",
        zone_field=f"{field}.schedule_time_zone",
    )
    return DeclaredSchedule(workflow.name, parsed.expression, workflow.schedule_time_zone)


def _duration(seconds: float) -> Duration:
    result = Duration()
    result.FromNanoseconds(int(seconds * 1e9))
    return result


def _dispatch_out(dispatch: Dispatch) -> pb.DispatchWorkflow:
    workflow = dispatch.workflow
    return pb.DispatchWorkflow(
        workflow_id=workflow.workflow_id,
        workflow_name=workflow.workflow_name,
        input=convert.payload_out(workflow.input),
        attempt=workflow.attempt,
        journal=[convert.step_out(step) for step in dispatch.journal],
        deadline=convert.timestamp(workflow.deadline),
        app_version=workflow.app_version,
        parent_workflow_id=workflow.parent_workflow_id or "",
        trace_carrier=workflow.trace_carrier or {},
    )


def _run_step_out(item: RunRemoteStep) -> pb.RunStep:
    task = item.task
    return pb.RunStep(
        task_id=task.task_id,
        context=common_pb2.WorkflowContext(
            workflow_id=task.workflow_id, function_id=task.function_id, attempt=task.attempt
        ),
        step_name=task.step_name,
        input=convert.payload_out(task.input),
    )


def _step_credit(register: pb.RegisterWorker) -> tuple[int | None, list[str] | None]:
    """The worker's free remote-step slots and the pushed steps it still runs;
    ``(None, None)`` for a worker that does not count them (no limit).

    Raises:
        InvalidArgument: ``step_slots`` is out of range.
    """
    if not register.HasField("step_slots"):
        return None, None
    if not 0 <= register.step_slots <= _MAX_SLOTS:
        raise InvalidArgument("register.step_slots", f"must be between 0 and {_MAX_SLOTS}")
    return register.step_slots, list(register.running_steps)
