"""A workflow run's flags, set by the worker from outside the run, and the
ways a run stops without completing its workflow (``WorkflowStop``)::

    BaseException
    └── WorkflowStop      stops the run at its next checkpoint
        ├── LeaseLost     a newer attempt owns the workflow, or the worker stops
        ├── CancelRequested  the workflow was cancelled
        └── WaitReleased  the service took the workflow back while it waits
"""

from __future__ import annotations

__all__ = ["CancelRequested", "LeaseLost", "RunState", "WaitReleased", "WorkflowStop"]


class WorkflowStop(BaseException):
    """Stops a workflow run at its next checkpoint without completing it.

    Derives from `BaseException` (like ``asyncio.CancelledError``) so that user
    code's ``except Exception`` does not swallow it by accident.
    """


class LeaseLost(WorkflowStop):
    """The service gave the workflow to a newer attempt (or the worker is stopping)."""


class CancelRequested(WorkflowStop):
    """The service asked the worker to stop the workflow (it was cancelled)."""


class WaitReleased(WorkflowStop):
    """The service released the workflow while it waits (a long sleep, recv,
    get_event or await): this run ends here, and the service dispatches the
    workflow again when the wait is over. Not a failure."""


class RunState:
    """The flags the worker sets on a running workflow from outside it.

    Plain attributes: they are written by the event loop and read by the
    workflow's thread, which the GIL makes safe for single booleans.
    """

    def __init__(self) -> None:
        self.stale = False
        """A newer attempt owns the workflow, or the worker is shutting down."""
        self.cancelled = False
        """The service asked for the workflow to be cancelled."""
