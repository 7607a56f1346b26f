"""The values the SDK hands back to callers: statuses, workflows, steps.

Plain frozen dataclasses with no behaviour, so they are safe to log, compare and
pickle. Converting from the wire types lives in `_convert.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["StepInfo", "WorkflowErrorInfo", "WorkflowInfo", "WorkflowStatus"]


class WorkflowStatus(enum.StrEnum):
    """The lifecycle of a workflow.

    ``ENQUEUED -> PENDING ->`` one of the terminal statuses ``SUCCESS``, ``ERROR``,
    ``CANCELLED``, ``MAX_RECOVERY_ATTEMPTS_EXCEEDED``. A ``PENDING`` workflow whose
    worker is lost goes back to ``ENQUEUED`` and is dispatched again.
    """

    ENQUEUED = "ENQUEUED"
    """Accepted and waiting for a worker (or for its queue)."""
    PENDING = "PENDING"
    """Running on a worker, which owns it under a lease."""
    SUCCESS = "SUCCESS"
    """Finished; the output holds the result."""
    ERROR = "ERROR"
    """Finished with an error."""
    CANCELLED = "CANCELLED"
    """Cancelled before it finished."""
    MAX_RECOVERY_ATTEMPTS_EXCEEDED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
    """Dispatched too many times without finishing; stopped as a dead letter."""

    @property
    def is_terminal(self) -> bool:
        """Whether the workflow is finished and will not change on its own."""
        return self not in (WorkflowStatus.ENQUEUED, WorkflowStatus.PENDING)


@dataclass(frozen=True)
class WorkflowErrorInfo:
    """A workflow's or step's own failure, as recorded by the service."""

    type: str
    """The error's type, e.g. ``"ValueError"`` or ``"baton.NonDeterministicError"``."""
    message: str
    """The human-readable message (``str(exc)``)."""
    traceback: str = ""
    """The formatted traceback where it was raised, if one was captured."""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True)
class WorkflowInfo:
    """A workflow as the service knows it at one moment."""

    workflow_id: str
    """Unique id; also the idempotency key of ``start_workflow``."""
    name: str
    """The registered workflow name it runs."""
    status: WorkflowStatus
    """Its status when this snapshot was taken."""
    input: list[Any] = field(default_factory=list)
    """The positional arguments it was started with (decoded)."""
    output: Any = None
    """The decoded result when ``status`` is ``SUCCESS``, else ``None``."""
    error: WorkflowErrorInfo | None = None
    """The failure when ``status`` is ``ERROR``, ``CANCELLED`` or
    ``MAX_RECOVERY_ATTEMPTS_EXCEEDED``."""
    queue: str = ""
    """The queue it was started on; empty for a direct start."""
    app_version: str = ""
    """The app version it is pinned to; empty means any worker may run it."""
    attempt: int = 0
    """How many times it has been dispatched to a worker."""
    max_attempts: int = 0
    """The dispatch count after which it stops as ``MAX_RECOVERY_ATTEMPTS_EXCEEDED``."""
    owner_worker_id: str = ""
    """The worker that runs it now (``PENDING`` only)."""
    created_at: datetime | None = None
    """When the service accepted it (UTC)."""
    updated_at: datetime | None = None
    """When it last changed (UTC)."""
    started_at: datetime | None = None
    """When it was first dispatched (UTC), if it has been."""
    completed_at: datetime | None = None
    """When it finished (UTC), if it has."""
    parent_workflow_id: str = ""
    """The workflow that started it as a child, if any."""
    deadline: datetime | None = None
    """Its absolute start-to-close deadline (UTC), if it has a timeout: when it
    passes, the workflow and its descendants are cancelled."""
    forked_from: str = ""
    """The workflow it was forked from, if any."""
    waiting_reason: str = ""
    """Why an unfinished workflow is not making progress, in plain words; empty
    when nothing is wrong."""


@dataclass(frozen=True)
class StepInfo:
    """One recorded step of a workflow's journal."""

    function_id: int
    """The step number, assigned in call order starting at 1."""
    name: str
    """The step's registered name."""
    output: Any = None
    """The decoded value the step returned (``None`` if it failed)."""
    error: WorkflowErrorInfo | None = None
    """The error the step raised after its retries, if it failed."""
    child_workflow_id: str = ""
    """The child workflow this step started, if it is a child-start step."""
    started_at: datetime | None = None
    """When the step started (as reported by the worker, UTC)."""
    completed_at: datetime | None = None
    """When its result was recorded (UTC)."""
