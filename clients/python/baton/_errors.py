"""The exceptions the SDK raises.

Every exception raised by Baton derives from `BatonError`::

    BatonError
    ├── RpcError                      the service refused a call (a gRPC status)
    │   ├── InvalidArgument
    │   ├── NotFound
    │   ├── AlreadyExists
    │   ├── FailedPrecondition
    │   ├── DeadlineExceeded
    │   ├── ResourceExhausted
    │   ├── Unauthenticated
    │   ├── PermissionDenied
    │   ├── Unavailable
    │   └── Unimplemented
    ├── WorkflowFailed                a workflow finished with status ERROR
    │   ├── WorkflowCancelled         ... with status CANCELLED
    │   └── MaxRecoveryAttemptsExceeded  ... as a dead letter
    ├── StepError                     a step failed after all its retries
    ├── NonDeterministicError         replay found a different step than the journal
    └── SerializationError            a value could not be encoded or decoded

gRPC errors are translated in exactly one place, `map_rpc_error`, which keeps the
original `grpc.RpcError` as ``__cause__``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import grpc
from google.rpc import error_details_pb2, status_pb2

from baton._types import WorkflowErrorInfo

__all__ = [
    "ERROR_BY_CODE",
    "AlreadyExists",
    "BatonError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "MaxRecoveryAttemptsExceeded",
    "NonDeterministicError",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "RpcError",
    "SerializationError",
    "StepError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "WorkflowCancelled",
    "WorkflowFailed",
    "map_rpc_error",
    "map_status",
    "recorded_refusal",
]

# The trailer in which servers send a serialized google.rpc.Status.
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class BatonError(Exception):
    """The root of every exception raised by the Baton SDK."""


class RpcError(BatonError):
    """The service answered a call with a non-OK gRPC status.

    Attributes:
        code: The gRPC status code.
        reason: The ``google.rpc.ErrorInfo`` reason (e.g. ``"WORKFLOW_NOT_FOUND"``),
            or ``""`` when the server sent none.
        field_violations: ``(field, description)`` pairs from a
            ``google.rpc.BadRequest`` detail, naming the offending request fields.
        metadata: The ``google.rpc.ErrorInfo`` metadata, e.g. ``{"workflow_id": ...}``
            naming the workflow in flight for a duplicate deduplication id.
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        reason: str = "",
        field_violations: Sequence[tuple[str, str]] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.field_violations = list(field_violations)
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        parts = [f"{self.code.name}: {self.message}"]
        if self.reason:
            parts.append(f"(reason {self.reason})")
        parts.extend(f"[{name}: {text}]" for name, text in self.field_violations)
        return " ".join(parts)


class InvalidArgument(RpcError):
    """A request field is malformed; see `field_violations`."""


class NotFound(RpcError):
    """The workflow (or other object) does not exist."""


class AlreadyExists(RpcError):
    """The id is taken, e.g. by a workflow with another name (``WORKFLOW_ID_CONFLICT``)."""


class FailedPrecondition(RpcError):
    """The object is not in a state that allows the call (e.g. ``STALE_ATTEMPT``)."""


class DeadlineExceeded(RpcError):
    """The call did not finish before its deadline."""


class ResourceExhausted(RpcError):
    """A limit was hit (payload size, rate, quota)."""


class Unauthenticated(RpcError):
    """The token is missing or invalid."""


class PermissionDenied(RpcError):
    """The token's role does not allow the call."""


class Unavailable(RpcError):
    """The service could not be reached (after the SDK's own retries)."""


class Unimplemented(RpcError):
    """The service does not implement the call (an older server?)."""


ERROR_BY_CODE: dict[grpc.StatusCode, type[RpcError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def map_rpc_error(exc: grpc.RpcError) -> RpcError:
    """Translates a gRPC error (sync or aio) into the matching `RpcError` subclass.

    Reads the rich ``google.rpc.Status`` from the ``grpc-status-details-bin``
    trailer directly rather than via ``grpc_status.rpc_status.from_call``, which
    raises when the status message and the details disagree; a malformed trailer
    is ignored so that the status code alone still produces a useful error.

    Callers raise the result ``from exc`` so the original stays attached.
    """
    return _error(exc.code(), exc.details() or "", _rich_status(exc))


def map_status(status: status_pb2.Status) -> RpcError:
    """Translates a ``google.rpc.Status`` (e.g. a checkpoint refused on the
    worker's stream) into the `RpcError` the same unary call would raise."""
    code = _CODE_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return _error(code, status.message, status)


def recorded_refusal(message: str, details: str) -> RpcError:
    """The `RpcError` a refusal recorded in a workflow's journal stands for.

    The service records some refusals as the step's error (a child start
    refused because its deduplication id is in flight, say), with JSON
    ``details`` (``{"code": "ALREADY_EXISTS", "reason": ..., "metadata": {...},
    "field_violations": [{"field": ..., "description": ...}]}``), so that a
    replay raises what the first run raised.
    """
    try:
        doc = json.loads(details) if details else {}
        code = grpc.StatusCode[doc.get("code", "")]
    except (ValueError, KeyError, AttributeError):  # not one the service wrote
        doc, code = {}, grpc.StatusCode.FAILED_PRECONDITION
    cls = ERROR_BY_CODE.get(code, RpcError)
    return cls(
        message,
        code=code,
        reason=str(doc.get("reason", "")),
        field_violations=[
            (str(v.get("field", "")), str(v.get("description", "")))
            for v in doc.get("field_violations") or []
        ],
        metadata={str(k): str(v) for k, v in (doc.get("metadata") or {}).items()},
    )


def _error(code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> RpcError:
    reason = ""
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    if status is not None:
        message = message or status.message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
                metadata = dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend((v.field, v.description) for v in bad.field_violations)
    cls = ERROR_BY_CODE.get(code, RpcError)
    return cls(message, code=code, reason=reason, field_violations=violations, metadata=metadata)


_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def _rich_status(exc: grpc.RpcError) -> status_pb2.Status | None:
    try:
        trailers = exc.trailing_metadata() or ()
    except Exception:  # a few grpc error types carry no call state at all
        return None
    for key, value in trailers:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # a garbled trailer must not hide the status code
                return None
    return None


class WorkflowFailed(BatonError):
    """A workflow finished without a result (status ``ERROR``).

    Its subclasses cover the other unsuccessful endings, so ``except
    WorkflowFailed`` catches every workflow that did not succeed.

    Attributes:
        workflow_id: The workflow's id.
        error: The failure the service recorded.
    """

    def __init__(self, workflow_id: str, error: WorkflowErrorInfo) -> None:
        super().__init__(f"workflow {workflow_id!r} failed: {error}")
        self.workflow_id = workflow_id
        self.error = error


class WorkflowCancelled(WorkflowFailed):
    """The workflow was cancelled before it finished (status ``CANCELLED``)."""

    def __init__(self, workflow_id: str, error: WorkflowErrorInfo) -> None:
        super().__init__(workflow_id, error)
        self.args = (f"workflow {workflow_id!r} was cancelled",)


class MaxRecoveryAttemptsExceeded(WorkflowFailed):
    """The workflow was dispatched too many times without finishing (a dead letter).

    It can be resumed once the cause (e.g. a crashing worker) is fixed.
    """

    def __init__(self, workflow_id: str, error: WorkflowErrorInfo) -> None:
        super().__init__(workflow_id, error)
        self.args = (f"workflow {workflow_id!r} exceeded its maximum recovery attempts: {error}",)


class StepError(BatonError):
    """A step failed after all its retries.

    Raised by ``ctx.run`` both when the step fails now (the original exception
    is then ``__cause__``) and when replay finds the failure in the journal (no
    cause: the original object is gone), so workflow code handles one exception
    type either way.

    Attributes:
        step_name: The step's registered name.
        function_id: The step number in its workflow.
        type: The original exception's type, e.g. ``"ValueError"``.
        message: The original exception's message.
        traceback: The original traceback, as text.
    """

    def __init__(
        self, step_name: str, function_id: int, type: str, message: str, traceback: str = ""
    ) -> None:
        super().__init__(f"step {step_name!r} (step {function_id}) failed: {type}: {message}")
        self.step_name = step_name
        self.function_id = function_id
        self.type = type
        self.message = message
        self.traceback = traceback


class NonDeterministicError(BatonError):
    """Replay found that the workflow code no longer calls the steps its journal recorded.

    Usually the code changed while the workflow was running; pin workflows to an
    app version to deploy such changes safely. The workflow fails with error
    type ``"baton.NonDeterministicError"``.
    """


class SerializationError(BatonError):
    """A value could not be encoded into, or decoded from, a payload."""
