"""The management RPCs of WorkflowService (cancel, resume, fork, delete):
validation and conversion, kept apart from the start/inspect RPCs."""

from __future__ import annotations

import uuid

from baton._proto.baton.v1 import workflow_service_pb2 as pb
from baton_server.engine.engine import Engine
from baton_server.errors import InvalidArgument
from baton_server.servicers import convert, validate


def _version(value: str) -> str | None:
    """An optional app version: empty means "keep the workflow's"."""
    return validate.name(value, "app_version") if value else None


async def cancel(engine: Engine, request: pb.CancelWorkflowRequest) -> pb.CancelWorkflowResponse:
    """CancelWorkflow."""
    validate.workflow_id(request.workflow_id)
    outcome = await engine.management.cancel(
        request.workflow_id, include_children=request.include_children
    )
    return pb.CancelWorkflowResponse(
        workflow=convert.workflow_out(outcome.workflow),
        cancelled=request.workflow_id in outcome.cancelled_ids,
        cancelled_workflow_ids=outcome.cancelled_ids,
    )


async def resume(engine: Engine, request: pb.ResumeWorkflowRequest) -> pb.ResumeWorkflowResponse:
    """ResumeWorkflow."""
    validate.workflow_id(request.workflow_id)
    workflow = await engine.management.resume(request.workflow_id, _version(request.app_version))
    return pb.ResumeWorkflowResponse(workflow=convert.workflow_out(workflow))


async def fork(engine: Engine, request: pb.ForkWorkflowRequest) -> pb.ForkWorkflowResponse:
    """ForkWorkflow."""
    validate.workflow_id(request.workflow_id)
    new_id = request.new_workflow_id or str(uuid.uuid4())
    validate.workflow_id(new_id, "new_workflow_id")
    if request.start_step < 0:
        raise InvalidArgument("start_step", "must be 0 or more (1 re-runs every step)")
    if new_id == request.workflow_id:
        raise InvalidArgument("new_workflow_id", "must differ from the workflow forked")
    workflow = await engine.management.fork(
        request.workflow_id, max(request.start_step, 1), new_id, _version(request.app_version)
    )
    return pb.ForkWorkflowResponse(workflow=convert.workflow_out(workflow))


async def delete(engine: Engine, request: pb.DeleteWorkflowRequest) -> pb.DeleteWorkflowResponse:
    """DeleteWorkflow."""
    validate.workflow_id(request.workflow_id)
    deleted = await engine.management.delete(
        request.workflow_id, include_children=request.include_children
    )
    return pb.DeleteWorkflowResponse(deleted_count=deleted)
