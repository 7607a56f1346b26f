"""Recording what a workflow does (send, set an event, write a stream, sleep,
start a child, ...) as a step of its journal, in the transaction that does it.

Such an operation runs in one transaction: record the step (fenced by attempt,
like ``record_step``), then do the effect. If the step was recorded before (a
retried call, or a replay that reached the service), :func:`record` raises
:class:`Replayed`, which rolls the transaction back so the effect is not
repeated, and the caller answers with the recorded step. That is what makes
these operations exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from baton_server.connector import Tx
from baton_server.engine.fencing import refusal
from baton_server.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ServiceError,
    stale_attempt,
    workflow_not_found,
)
from baton_server.store import steps, workflows
from baton_server.store.models import Failure, Payload, Step
from baton_server.store.steps import NewStep

# The journal names of the operations the service records itself; the SDK
# claims its step numbers under the same names, so replay can check them.
SEND = "baton.send"
RECV = "baton.recv"
SET_EVENT = "baton.set_event"
GET_EVENT = "baton.get_event"
WRITE_STREAM = "baton.write_stream"
CLOSE_STREAM = "baton.close_stream"
SLEEP = "baton.sleep"
START_WORKFLOW = "baton.start_workflow"
AWAIT_WORKFLOW = "baton.await_workflow"

# A value that was found but is "no value" (an empty payload): recorded as JSON
# null so that a recorded step with no output means "nothing was found".
JSON_NULL = Payload("json", b"null")


@dataclass(frozen=True)
class Caller:
    """The running workflow performing an operation (the contract's WorkflowContext)."""

    workflow_id: str
    function_id: int
    attempt: int


class Replayed(Exception):
    """The operation's step was recorded before; roll back and use ``step``."""

    def __init__(self, step: Step) -> None:
        super().__init__(f"step {step.function_id} of {step.workflow_id} was recorded before")
        self.step = step


# The refusals that are an operation's outcome (a deduplication id in flight,
# an unknown queue, an option the queue does not allow), by gRPC code name:
# recorded as the operation's step error, so that a replay meets the same one.
_OUTCOMES: dict[str, type[ServiceError]] = {
    "ALREADY_EXISTS": AlreadyExists,
    "NOT_FOUND": NotFound,
    "INVALID_ARGUMENT": InvalidArgument,
}


def refusal_failure(error: ServiceError) -> Failure | None:
    """``error`` as a step error to record, when it is the operation's outcome
    rather than a passing condition (``None``: record nothing).

    The failure's type is ``baton.<class name>`` (e.g. ``baton.AlreadyExists``);
    its details, JSON, hold what a caller needs to raise it again:
    ``{"code": "ALREADY_EXISTS", "reason": ..., "metadata": {...},
    "field_violations": [{"field": ..., "description": ...}]}``.
    """
    code = next((c for c, cls in _OUTCOMES.items() if type(error) is cls), None)
    if code is None:  # a stale attempt, a passing condition (UNAVAILABLE): not an outcome
        return None
    doc = {
        "code": code,
        "reason": error.reason,
        "metadata": error.metadata,
        "field_violations": [
            {"field": field, "description": description}
            for field, description in getattr(error, "violations", [])
        ],
    }
    return Failure(
        type=f"baton.{type(error).__name__}",
        message=error.message,
        details=Payload("json", json.dumps(doc, sort_keys=True).encode()),
    )


def recorded_refusal(failure: Failure) -> ServiceError:
    """The error a step recorded by `refusal_failure` stands for, raised again
    to a retried or replayed call."""
    try:
        doc = json.loads(failure.details.data) if failure.details else {}
    except ValueError:  # pragma: no cover - only refusal_failure writes these
        doc = {}
    cls = _OUTCOMES.get(doc.get("code", ""))
    violations = doc.get("field_violations") or []
    if cls is InvalidArgument and violations:
        first = violations[0]
        invalid = InvalidArgument(first["field"], first["description"])
        invalid.violations = [(v["field"], v["description"]) for v in violations]
        return invalid
    if cls is None or cls is InvalidArgument:  # pragma: no cover - as above
        cls = FailedPrecondition
    return cls(failure.message, reason=doc.get("reason", ""), metadata=doc.get("metadata") or {})


def new_step(
    caller: Caller,
    step_name: str,
    *,
    output: Payload | None = None,
    error: Failure | None = None,
) -> NewStep:
    """The caller's operation as the step to record under its number."""
    return NewStep(
        workflow_id=caller.workflow_id,
        function_id=caller.function_id,
        attempt=caller.attempt,
        step_name=step_name,
        output=output,
        error=error,
        started_at=None,
    )


async def record(
    tx: Tx,
    caller: Caller,
    step_name: str,
    *,
    output: Payload | None = None,
    error: Failure | None = None,
) -> Step:
    """Records the caller's operation as a step in ``tx``.

    Raises:
        Replayed: The step was recorded before; roll ``tx`` back.
        NotFound: The workflow does not exist.
        FailedPrecondition: The caller's attempt no longer owns the workflow.
    """
    step = await steps.record(tx, new_step(caller, step_name, output=output, error=error))
    if step is None:
        await refuse(tx, caller)
        raise AssertionError("unreachable: refuse always raises")
    return step


async def refuse(tx: Tx, caller: Caller) -> None:
    """Explains why a fenced write wrote nothing, by raising.

    Raises:
        NotFound: The workflow does not exist.
        FailedPrecondition: The attempt is stale or the workflow not PENDING.
        Replayed: The step is recorded already.
    """
    workflow = await workflows.get(tx, caller.workflow_id)
    if workflow is None:
        raise workflow_not_found(caller.workflow_id)
    if workflow.status != "PENDING" or workflow.attempt != caller.attempt:
        raise refusal(workflow, caller.attempt)
    existing = await steps.get(tx, caller.workflow_id, caller.function_id)
    if existing is None:  # pragma: no cover - the guarded insert saw what we saw
        raise stale_attempt(caller.workflow_id, caller.attempt, "the step could not be recorded")
    raise Replayed(existing)


async def recorded(tx: Tx, caller: Caller) -> Step | None:
    """The caller's step if it is recorded already (a retried call)."""
    return await steps.get(tx, caller.workflow_id, caller.function_id)
