"""WorkflowService: start, inspect and (later) manage workflows."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from baton._proto.baton.v1 import workflow_service_pb2 as pb
from baton._proto.baton.v1 import workflow_service_pb2_grpc as pb_grpc
from baton_server import tracing
from baton_server.config import Config
from baton_server.engine.children import child_id
from baton_server.engine.engine import Engine
from baton_server.engine.starts import Started
from baton_server.errors import InvalidArgument, ServiceError
from baton_server.servicers import convert, queue_options, validate
from baton_server.servicers import management as manage
from baton_server.servicers.caller import caller_in
from baton_server.servicers.errors import to_status
from baton_server.store.models import Workflow
from baton_server.store.starts import NewStart
from baton_server.store.workflows import ListFilter, NewWorkflow

# grpc ships no type information; its servicer context is untyped here.
Context = Any

_AWAIT_DEFAULT_SECONDS = 30.0
_AWAIT_MAX_SECONDS = 3600.0
_MAX_BATCH = 1000
_MAX_AWAITED = 10_000  # AwaitWorkflows' ids per call (only finished rows are loaded)
# Longest start-to-close timeout accepted: one year.
_MAX_TIMEOUT_SECONDS = 366 * 86400.0


class WorkflowService(pb_grpc.WorkflowServiceServicer):
    """Implements baton.v1.WorkflowService over the engine."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self._engine = engine
        self._config = config

    def _new_workflow(self, request: pb.StartWorkflowRequest) -> NewWorkflow:
        validate.name(request.workflow_name, "workflow_name")
        workflow_id = request.workflow_id or str(uuid.uuid4())
        validate.workflow_id(workflow_id)
        validate.payload(request.input, "input", self._config.max_payload_bytes, arguments=True)
        if request.app_version:
            validate.name(request.app_version, "app_version")
        if request.max_attempts < 0:
            raise InvalidArgument("max_attempts", "must not be negative")
        deadline = None
        if request.HasField("timeout"):
            timeout = validate.seconds(
                request.timeout, "timeout", default=0.0, maximum=_MAX_TIMEOUT_SECONDS
            )
            if timeout <= 0:
                raise InvalidArgument("timeout", "must be positive when set")
            deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        return NewWorkflow(
            workflow_id=workflow_id,
            workflow_name=request.workflow_name,
            input=convert.payload_in(request.input),
            app_version=request.app_version,
            max_attempts=request.max_attempts,
            deadline=deadline,
            trace_carrier=tracing.current_carrier(),
        )

    async def _start(self, request: pb.StartWorkflowRequest) -> tuple[Workflow, bool]:
        """Starts a workflow: a child recorded in its parent's journal
        (``caller``), a start onto a queue, or a plain start."""
        if not request.HasField("caller"):
            if queue_options.uses_queue(request):
                started = await self._engine.starts.start_one(
                    queue_options.new_start(request, self._new_workflow(request))
                )
                return started.workflow, started.created
            return await self._engine.start_workflow(self._new_workflow(request))
        caller = caller_in(request.caller, "caller")
        child = pb.StartWorkflowRequest()
        child.CopyFrom(request)
        if not child.workflow_id:
            child.workflow_id = child_id(caller)
        new = queue_options.new_start(child, self._new_workflow(child))
        return await self._engine.children.start(caller, new)

    async def StartWorkflow(
        self, request: pb.StartWorkflowRequest, context: Context
    ) -> pb.StartWorkflowResponse:
        if request.HasField("wait"):
            wait = validate.seconds(request.wait, "wait", default=0.0, maximum=_AWAIT_MAX_SECONDS)
            if request.HasField("caller"):
                raise InvalidArgument(
                    "wait",
                    "is not for a child: its parent awaits it with AwaitWorkflow and its "
                    "caller, which journals the outcome",
                )
            if not request.workflow_id:  # watched from before it exists
                request.workflow_id = str(uuid.uuid4())
            workflow, created = await self._engine.start_and_await(
                request.workflow_id, lambda: self._start(request), wait
            )
        else:
            workflow, created = await self._start(request)
        return pb.StartWorkflowResponse(
            workflow=convert.workflow_out(workflow), created=created, done=workflow.finished
        )

    async def StartWorkflows(
        self, request: pb.StartWorkflowsRequest, context: Context
    ) -> pb.StartWorkflowsResponse:
        if len(request.workflows) > _MAX_BATCH:
            raise InvalidArgument(
                "workflows", f"holds {len(request.workflows)} items; the limit is {_MAX_BATCH}"
            )
        # Validate every item, then insert the valid ones in one transaction.
        outcomes: list[ServiceError | NewStart | Started] = []
        for item in request.workflows:
            try:
                if item.HasField("wait"):
                    raise InvalidArgument(
                        "wait", "is for StartWorkflow; await a batch with AwaitWorkflows"
                    )
                if item.HasField("caller"):  # a child: recorded in its parent's journal
                    workflow, created = await self._start(item)
                    outcomes.append(Started(workflow, created))
                else:
                    outcomes.append(queue_options.new_start(item, self._new_workflow(item)))
            except ServiceError as exc:
                outcomes.append(exc)
        valid = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, NewStart)]
        started = await self._engine.starts.start_many([o for _, o in valid])
        for (index, _), done in zip(valid, started, strict=True):
            outcomes[index] = done
        results = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Started):
                response = pb.StartWorkflowResponse(
                    workflow=convert.workflow_out(outcome.workflow),
                    created=outcome.created,
                    done=outcome.workflow.finished,
                )
                results.append(pb.StartWorkflowsResult(started=response))
            elif isinstance(outcome, ServiceError):
                status = to_status(outcome)
                message = f"workflows[{index}].{status.message}"
                results.append(
                    pb.StartWorkflowsResult(
                        error=pb.ItemError(code=status.code, message=message, reason=outcome.reason)
                    )
                )
        return pb.StartWorkflowsResponse(results=results)

    async def GetWorkflow(
        self, request: pb.GetWorkflowRequest, context: Context
    ) -> pb.GetWorkflowResponse:
        validate.workflow_id(request.workflow_id)
        workflow, reason = await self._engine.get_workflow(request.workflow_id)
        return pb.GetWorkflowResponse(
            workflow=convert.workflow_out(
                workflow, waiting_reason=reason, omit_payloads=request.omit_payloads
            )
        )

    async def AwaitWorkflow(
        self, request: pb.AwaitWorkflowRequest, context: Context
    ) -> pb.AwaitWorkflowResponse:
        validate.workflow_id(request.workflow_id)
        timeout = validate.seconds(
            request.timeout, "timeout", default=_AWAIT_DEFAULT_SECONDS, maximum=_AWAIT_MAX_SECONDS
        )
        release = validate.release_threshold(request, maximum=_AWAIT_MAX_SECONDS)
        released = False
        if request.HasField("caller"):
            caller = caller_in(request.caller, "caller")
            if caller.workflow_id == request.workflow_id:
                raise InvalidArgument(
                    "workflow_id", "is the caller's own: a workflow cannot await itself"
                )
            workflow, released = await self._engine.children.await_recorded(
                caller,
                request.workflow_id,
                timeout,
                self._engine.await_workflow,
                release,
            )
        elif release is not None:
            raise InvalidArgument(
                "release_if_longer_than", "is for a workflow awaiting another: set caller too"
            )
        else:
            workflow = await self._engine.await_workflow(request.workflow_id, timeout)
        return pb.AwaitWorkflowResponse(
            workflow=convert.workflow_out(workflow), done=workflow.finished, released=released
        )

    async def AwaitWorkflows(
        self, request: pb.AwaitWorkflowsRequest, context: Context
    ) -> AsyncIterator[pb.AwaitWorkflowsResponse]:
        for index, workflow_id in enumerate(request.workflow_ids):
            validate.workflow_id(workflow_id, f"workflow_ids[{index}]")
        ids = list(dict.fromkeys(request.workflow_ids))  # once each, in order
        if not ids:
            raise InvalidArgument("workflow_ids", "is required")
        if len(ids) > _MAX_AWAITED:
            raise InvalidArgument(
                "workflow_ids", f"holds {len(ids)} ids; the limit is {_MAX_AWAITED}"
            )
        timeout = validate.seconds(
            request.timeout, "timeout", default=_AWAIT_DEFAULT_SECONDS, maximum=_AWAIT_MAX_SECONDS
        )
        # Each message within half the message limit (outputs can be large).
        budget = self._config.max_message_bytes // 2
        async for finished in self._engine.await_many(ids, timeout):
            message, size = pb.AwaitWorkflowsResponse(), 0
            for workflow in finished:
                out = convert.workflow_out(workflow)
                size += out.ByteSize()
                if message.finished and size > budget:
                    yield message
                    message, size = pb.AwaitWorkflowsResponse(), out.ByteSize()
                message.finished.append(out)
            yield message

    async def WatchWorkflow(
        self, request: pb.WatchWorkflowRequest, context: Context
    ) -> AsyncIterator[pb.WatchWorkflowResponse]:
        validate.workflow_id(request.workflow_id)
        async for workflow in self._engine.watch_workflow(request.workflow_id):
            yield pb.WatchWorkflowResponse(workflow=convert.workflow_out(workflow))

    async def ListWorkflows(
        self, request: pb.ListWorkflowsRequest, context: Context
    ) -> pb.ListWorkflowsResponse:
        limit = validate.page_size(request.page_size, default=100)
        filters = ListFilter(
            statuses=[_status_filter(s) for s in request.statuses] or None,
            workflow_name=request.workflow_name or None,
            queue=request.queue or None,
            app_version=request.app_version or None,
            parent_workflow_id=request.parent_workflow_id or None,
            id_prefix=request.workflow_id_prefix or None,
            created_after=(
                convert.datetime_in(request.created_after, "created_after")
                if request.HasField("created_after")
                else None
            ),
            created_before=(
                convert.datetime_in(request.created_before, "created_before")
                if request.HasField("created_before")
                else None
            ),
            oldest_first=_oldest_first(request.order),
            completed_after=(
                convert.datetime_in(request.completed_after, "completed_after")
                if request.HasField("completed_after")
                else None
            ),
            completed_before=(
                convert.datetime_in(request.completed_before, "completed_before")
                if request.HasField("completed_before")
                else None
            ),
        )
        cursor = _decode_cursor(request.page_token) if request.page_token else None
        page = await self._engine.list_workflows(filters, limit=limit + 1, cursor=cursor)
        token = ""
        if len(page) > limit:
            page = page[:limit]
            token = _encode_cursor(page[-1].created_at, page[-1].workflow_id)
        return pb.ListWorkflowsResponse(
            workflows=[convert.workflow_out(w, omit_payloads=request.omit_payloads) for w in page],
            next_page_token=token,
        )

    async def ListWorkflowSteps(
        self, request: pb.ListWorkflowStepsRequest, context: Context
    ) -> pb.ListWorkflowStepsResponse:
        validate.workflow_id(request.workflow_id)
        limit = validate.page_size(request.page_size, default=1000)
        after = 0
        if request.page_token:
            try:
                after = int(base64.urlsafe_b64decode(request.page_token.encode()).decode())
            except ValueError:
                raise InvalidArgument("page_token", "is not a token this service issued") from None
        page = await self._engine.list_steps(request.workflow_id, after=after, limit=limit + 1)
        token = ""
        if len(page) > limit:
            page = page[:limit]
            token = base64.urlsafe_b64encode(str(page[-1].function_id).encode()).decode()
        return pb.ListWorkflowStepsResponse(
            steps=[convert.step_out(s) for s in page], next_page_token=token
        )

    async def CancelWorkflow(
        self, request: pb.CancelWorkflowRequest, context: Context
    ) -> pb.CancelWorkflowResponse:
        return await manage.cancel(self._engine, request)

    async def ResumeWorkflow(
        self, request: pb.ResumeWorkflowRequest, context: Context
    ) -> pb.ResumeWorkflowResponse:
        return await manage.resume(self._engine, request)

    async def ForkWorkflow(
        self, request: pb.ForkWorkflowRequest, context: Context
    ) -> pb.ForkWorkflowResponse:
        return await manage.fork(self._engine, request)

    async def DeleteWorkflow(
        self, request: pb.DeleteWorkflowRequest, context: Context
    ) -> pb.DeleteWorkflowResponse:
        return await manage.delete(self._engine, request)


def _oldest_first(order: int) -> bool:
    if order not in pb.SortOrder.values():
        raise InvalidArgument(
            "order", f"{order} is not a sort order (0 or 1: newest first, 2: oldest first)"
        )
    return order == pb.SORT_ORDER_OLDEST_FIRST


def _status_filter(value: int) -> str:
    status = convert.STATUS_FROM_PROTO.get(value)  # type: ignore[call-overload]
    if status is None:
        raise InvalidArgument("statuses", f"{value} is not a workflow status")
    return str(status)


def _encode_cursor(created_at: datetime, workflow_id: str) -> str:
    raw = json.dumps({"c": created_at.isoformat(), "i": workflow_id}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(doc["c"]), str(doc["i"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "is not a token this service issued") from None
