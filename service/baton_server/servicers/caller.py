"""The calling workflow's identity (WorkflowContext) as the engine takes it."""

from __future__ import annotations

from baton._proto.baton.v1 import common_pb2 as pb
from baton_server.engine.journal import Caller
from baton_server.errors import InvalidArgument
from baton_server.servicers import validate


def caller_in(context: pb.WorkflowContext, field: str, *, allow_step: bool = False) -> Caller:
    """A checked WorkflowContext. ``allow_step``: ``function_id`` 0 (from inside a step)."""
    validate.workflow_id(context.workflow_id, f"{field}.workflow_id")
    lowest = 0 if allow_step else 1
    if context.function_id < lowest:
        raise InvalidArgument(f"{field}.function_id", f"must be {lowest} or more")
    if context.attempt < 1:
        raise InvalidArgument(f"{field}.attempt", "must be 1 or more")
    return Caller(context.workflow_id, context.function_id, context.attempt)
