"""What ``@worker.workflow`` and ``@worker.step`` attach to a function.

The decorators return the function itself, with a definition stored on it, so a
decorated function stays an ordinary callable and the client (``start_workflow``)
and the workflow context (``ctx.run``) can read its registered name and policy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["StepDefinition", "WorkflowDefinition", "step_definition_of", "workflow_name_of"]

_WORKFLOW_ATTR = "__baton_workflow__"
_STEP_ATTR = "__baton_step__"


@dataclass(frozen=True)
class WorkflowDefinition:
    """A registered workflow function."""

    name: str
    """The name the service knows it by."""
    fn: Callable[..., Any]
    """The function; called as ``fn(ctx, *args)``."""
    max_attempts: int
    """Dispatches before it stops as a dead letter; 0 leaves it to the server."""
    schedule: str = ""
    """A cron the service starts it on (see `Worker.workflow`); empty: none."""
    schedule_time_zone: str = ""
    """The IANA time zone of ``schedule``; empty: UTC."""

    @property
    def is_async(self) -> bool:
        """Whether the function is ``async def`` (run as a task, not in a thread)."""
        return inspect.iscoroutinefunction(self.fn)


@dataclass(frozen=True)
class StepDefinition:
    """A registered step function and its retry policy."""

    name: str
    """The name recorded in the journal."""
    fn: Callable[..., Any]
    """The function; called with the arguments given to ``ctx.run``."""
    max_attempts: int
    """Executions in total before the step fails (1 = no retry)."""
    interval: float
    """Seconds to wait before the first retry."""
    backoff: float
    """The growth of the wait from one retry to the next."""

    @property
    def is_async(self) -> bool:
        """Whether the function is ``async def``."""
        return inspect.iscoroutinefunction(self.fn)

    def retry_delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based): ``interval * backoff**retry``."""
        return float(self.interval * self.backoff**retry)


def attach_workflow(fn: Callable[..., Any], definition: WorkflowDefinition) -> None:
    """Marks ``fn`` as a registered workflow."""
    setattr(fn, _WORKFLOW_ATTR, definition)


def attach_step(fn: Callable[..., Any], definition: StepDefinition) -> None:
    """Marks ``fn`` as a registered step."""
    setattr(fn, _STEP_ATTR, definition)


def workflow_name_of(workflow: str | Callable[..., Any]) -> str:
    """The workflow name to start: the string itself, or a decorated function's name.

    Raises:
        TypeError: ``workflow`` is a function not registered with ``@worker.workflow``.
    """
    if isinstance(workflow, str):
        return workflow
    definition = getattr(workflow, _WORKFLOW_ATTR, None)
    if isinstance(definition, WorkflowDefinition):
        return definition.name
    raise TypeError(
        f"{workflow!r} is not a registered workflow; decorate it with @worker.workflow()"
        " or pass the workflow's name"
    )


def step_definition_of(step: Callable[..., Any]) -> StepDefinition:
    """The definition of a decorated step function.

    Raises:
        TypeError: ``step`` was not registered with ``@worker.step``.
    """
    definition = getattr(step, _STEP_ATTR, None)
    if isinstance(definition, StepDefinition):
        return definition
    raise TypeError(f"{step!r} is not a registered step; decorate it with @worker.step()")
