"""Domain errors. Raised by the engine and servicers, translated to a gRPC
status with ``google.rpc`` details in one place (``servicers.errors``)::

    ServiceError
    ├── InvalidArgument      a field is malformed (BadRequest names the field)
    │   └── MalformedRequest the message did not parse at all (no BadRequest)
    ├── NotFound             no such workflow (ErrorInfo reason)
    ├── AlreadyExists        the id is taken by something else
    ├── FailedPrecondition   the state does not allow it (e.g. STALE_ATTEMPT,
    │                        WORKFLOW_CANCELLED, WORKFLOW_NOT_FINISHED)
    ├── Aborted              a write ran ahead of the one it depends on (retry)
    ├── Unimplemented        the capability is not built yet
    └── Unavailable          Postgres is unreachable right now, or rolled a
                             transaction back to break a deadlock (retry;
                             reason TRANSACTION_ABORTED)
"""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    """A caller-visible failure with a reason code and metadata."""

    def __init__(
        self, message: str, *, reason: str = "", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(ServiceError):
    """A request field is malformed."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}", reason="INVALID_ARGUMENT")
        self.violations = [(field, description)]


class MalformedRequest(InvalidArgument):
    """The request message itself did not parse; no field can be named."""

    def __init__(self, description: str) -> None:
        ServiceError.__init__(self, description, reason="MALFORMED_REQUEST")
        self.violations = []


class NotFound(ServiceError):
    """The named thing does not exist."""


class AlreadyExists(ServiceError):
    """The id is taken by something that does not match the request."""


class FailedPrecondition(ServiceError):
    """The current state does not allow the operation."""


class Aborted(ServiceError):
    """A write arrived before the write it depends on; the caller retries."""


class Unimplemented(ServiceError):
    """The capability is declared in the contract but not built yet."""


class Unavailable(ServiceError):
    """A transient failure; the caller should retry."""


def step_not_recorded(workflow_id: str, function_id: int) -> Aborted:
    """The error for a completion that follows a step not recorded (yet)."""
    return Aborted(
        f"workflow {workflow_id!r}: step {function_id}, which the completion follows,"
        " is not recorded (yet); retry once it is",
        reason="STEP_NOT_RECORDED",
        metadata={"workflow_id": workflow_id, "function_id": str(function_id)},
    )


def workflow_not_found(workflow_id: str) -> NotFound:
    """The error for an unknown workflow id."""
    return NotFound(
        f"workflow {workflow_id!r} not found",
        reason="WORKFLOW_NOT_FOUND",
        metadata={"workflow_id": workflow_id},
    )


def stale_attempt(workflow_id: str, attempt: int, detail: str) -> FailedPrecondition:
    """The error for a write from a worker that no longer owns the workflow."""
    return FailedPrecondition(
        f"workflow {workflow_id!r} attempt {attempt} no longer owns the workflow: {detail}",
        reason="STALE_ATTEMPT",
        metadata={"workflow_id": workflow_id, "attempt": str(attempt)},
    )


def workflow_cancelled(workflow_id: str, attempt: int) -> FailedPrecondition:
    """The error for a write from a run of a workflow that has been cancelled:
    the worker stops the run quietly (it is not a lost lease)."""
    return FailedPrecondition(
        f"workflow {workflow_id!r} was cancelled; attempt {attempt} must stop",
        reason="WORKFLOW_CANCELLED",
        metadata={"workflow_id": workflow_id, "attempt": str(attempt)},
    )
