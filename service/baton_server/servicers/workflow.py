"""WorkflowService: start, inspect and (later) manage workflows."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from baton._proto.baton.v1 import workflow_service_pb2 as pb
from baton._proto.baton.v1 import workflow_service_pb2_grpc as pb_grpc
from baton_server.config import Config
from baton_server.engine.children import child_id
from baton_server.engine.engine import Engine
from baton_server.errors import InvalidArgument, ServiceError, Unimplemented
from baton_server.servicers import convert, validate
from baton_server.servicers.caller import caller_in
from baton_server.servicers.errors import to_status
from baton_server.store.models import Workflow
from baton_server.store.workflows import ListFilter, NewWorkflow

# grpc ships no type information; its servicer context is untyped here.
Context = Any

_AWAIT_DEFAULT_SECONDS = 30.0
_AWAIT_MAX_SECONDS = 3600.0
_MAX_BATCH = 1000


class WorkflowService(pb_grpc.WorkflowServiceServicer):
    """Implements baton.v1.WorkflowService over the engine."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self._engine = engine
        self._config = config

    def _new_workflow(self, request: pb.StartWorkflowRequest) -> NewWorkflow:
        validate.name(request.workflow_name, "workflow_name")
        workflow_id = request.workflow_id or str(uuid.uuid4())
        validate.workflow_id(workflow_id)
        validate.payload(request.input, "input", self._config.max_payload_bytes)
        if request.app_version:
            validate.name(request.app_version, "app_version")
        if request.max_attempts < 0:
            raise InvalidArgument("max_attempts", "must not be negative")
        _refuse_unbuilt(request)
        return NewWorkflow(
            workflow_id=workflow_id,
            workflow_name=request.workflow_name,
            input=convert.payload_in(request.input),
            app_version=request.app_version,
            max_attempts=request.max_attempts,
        )

    async def _start(self, request: pb.StartWorkflowRequest) -> tuple[Workflow, bool]:
        """Starts a workflow, or a child recorded in its parent's journal (``caller``)."""
        if not request.HasField("caller"):
            return await self._engine.start_workflow(self._new_workflow(request))
        caller = caller_in(request.caller, "caller")
        child = pb.StartWorkflowRequest()
        child.CopyFrom(request)
        if not child.workflow_id:
            child.workflow_id = child_id(caller)
        return await self._engine.children.start(caller, self._new_workflow(child))

    async def StartWorkflow(
        self, request: pb.StartWorkflowRequest, context: Context
    ) -> pb.StartWorkflowResponse:
        workflow, created = await self._start(request)
        return pb.StartWorkflowResponse(workflow=convert.workflow_out(workflow), created=created)

    async def StartWorkflows(
        self, request: pb.StartWorkflowsRequest, context: Context
    ) -> pb.StartWorkflowsResponse:
        if len(request.workflows) > _MAX_BATCH:
            raise InvalidArgument(
                "workflows", f"holds {len(request.workflows)} items; the limit is {_MAX_BATCH}"
            )
        results = []
        for index, item in enumerate(request.workflows):
            try:
                workflow, created = await self._start(item)
                started = pb.StartWorkflowResponse(
                    workflow=convert.workflow_out(workflow), created=created
                )
                results.append(pb.StartWorkflowsResult(started=started))
            except ServiceError as exc:
                status = to_status(exc)
                message = f"workflows[{index}].{status.message}"
                results.append(
                    pb.StartWorkflowsResult(
                        error=pb.ItemError(code=status.code, message=message, reason=exc.reason)
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
        if request.HasField("caller"):
            workflow = await self._engine.children.await_recorded(
                caller_in(request.caller, "caller"),
                request.workflow_id,
                timeout,
                self._engine.await_workflow,
            )
        else:
            workflow = await self._engine.await_workflow(request.workflow_id, timeout)
        return pb.AwaitWorkflowResponse(
            workflow=convert.workflow_out(workflow), done=workflow.finished
        )

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
                convert.datetime_in(request.created_after)
                if request.HasField("created_after")
                else None
            ),
            created_before=(
                convert.datetime_in(request.created_before)
                if request.HasField("created_before")
                else None
            ),
            oldest_first=request.order == pb.SORT_ORDER_OLDEST_FIRST,
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

    async def CancelWorkflow(self, request: Any, context: Context) -> Any:
        raise Unimplemented("CancelWorkflow: workflow cancellation is not implemented yet")

    async def ResumeWorkflow(self, request: Any, context: Context) -> Any:
        raise Unimplemented("ResumeWorkflow: resuming workflows is not implemented yet")

    async def ForkWorkflow(self, request: Any, context: Context) -> Any:
        raise Unimplemented("ForkWorkflow: forking workflows is not implemented yet")

    async def DeleteWorkflow(self, request: Any, context: Context) -> Any:
        raise Unimplemented("DeleteWorkflow: deleting workflows is not implemented yet")


def _refuse_unbuilt(request: pb.StartWorkflowRequest) -> None:
    """Options of the contract whose capability comes with a later release."""
    unbuilt = [
        (request.queue, "queue", "queues"),
        (request.deduplication_id, "deduplication_id", "queue deduplication"),
        (request.priority, "priority", "queue priorities"),
        (request.partition_key, "partition_key", "queue partitions"),
        (request.HasField("start_at"), "start_at", "delayed start"),
        (request.HasField("timeout"), "timeout", "workflow timeouts"),
    ]
    for present, field, capability in unbuilt:
        if present:
            raise Unimplemented(
                f"StartWorkflow.{field} needs {capability}, which this server does not "
                "implement yet"
            )


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
