"""Why a fenced write was refused, in one place for every checkpoint."""

from __future__ import annotations

from baton_server.errors import FailedPrecondition, stale_attempt, workflow_cancelled
from baton_server.store.models import Workflow


def refusal(workflow: Workflow, attempt: int) -> FailedPrecondition:
    """Why a checkpoint write of ``attempt`` was refused: the workflow was
    cancelled (WORKFLOW_CANCELLED: the worker stops quietly), or another
    attempt owns it, or it finished (STALE_ATTEMPT)."""
    if workflow.status == "CANCELLED":
        return workflow_cancelled(workflow.workflow_id, attempt)
    return stale_attempt(workflow.workflow_id, attempt, _ownership(workflow))


def _ownership(workflow: Workflow) -> str:
    if workflow.status != "PENDING":
        return f"it is {workflow.status}"
    return f"it is now run by attempt {workflow.attempt}"
