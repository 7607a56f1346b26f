"""Running a step function under its retry policy.

The policy is the step's own (``@worker.step(max_attempts, interval, backoff)``):
after failed execution ``n`` (0-based) the step waits ``interval * backoff**n``
seconds, then runs again, until ``max_attempts`` executions have failed; the last
exception then propagates. Only `Exception` counts as a failure: the private
stop signals (lease lost, cancelled) derive from `BaseException` and pass straight
through, so a step is never retried after its workflow was taken away.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from baton._registry import StepDefinition
from baton._tracing import step_span

__all__ = ["run_step_async", "run_step_from_loop", "run_step_sync"]

logger = logging.getLogger("baton.worker")


def _attempts(definition: StepDefinition) -> int:
    return max(1, definition.max_attempts)


def _log_retry(definition: StepDefinition, failed: int, exc: Exception, delay: float) -> None:
    logger.info(
        "step %r failed (execution %d of %d): %s: %s; retrying in %.2fs",
        definition.name,
        failed,
        _attempts(definition),
        type(exc).__name__,
        exc,
        delay,
    )


def run_step_sync(
    definition: StepDefinition,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    check: Callable[[], None],
) -> Any:
    """Runs a plain ``def`` step in the calling thread, with retries.

    Args:
        definition: The step and its policy.
        args: Positional arguments for the step.
        kwargs: Keyword arguments for the step.
        check: Called before every retry; raises to abandon the step (e.g. the
            workflow's lease was lost while waiting).

    Returns:
        What the step returned.

    Raises:
        Exception: The last execution's exception, once retries are exhausted.
    """
    with step_span(definition.name):
        for execution in range(_attempts(definition)):
            try:
                return definition.fn(*args, **kwargs)
            except Exception as exc:
                if execution + 1 >= _attempts(definition):
                    raise
                delay = definition.retry_delay(execution)
                _log_retry(definition, execution + 1, exc, delay)
                time.sleep(delay)
                check()
    raise AssertionError("unreachable: the last execution returns or raises")


async def run_step_async(
    definition: StepDefinition,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    check: Callable[[], None],
) -> Any:
    """Runs an ``async def`` step on the running loop, with retries (see `run_step_sync`)."""
    with step_span(definition.name):
        for execution in range(_attempts(definition)):
            try:
                return await definition.fn(*args, **kwargs)
            except Exception as exc:
                if execution + 1 >= _attempts(definition):
                    raise
                delay = definition.retry_delay(execution)
                _log_retry(definition, execution + 1, exc, delay)
                await asyncio.sleep(delay)
                check()
    raise AssertionError("unreachable: the last execution returns or raises")


async def run_step_from_loop(
    definition: StepDefinition,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    check: Callable[[], None],
    executor: Executor | None = None,
) -> Any:
    """Runs any step from async code: ``async def`` steps on the loop, plain ones in a
    thread (of ``executor``, else ``asyncio.to_thread``'s) so they cannot block the
    event loop."""
    if definition.is_async:
        return await run_step_async(definition, args, kwargs, check)
    call = functools.partial(run_step_sync, definition, args, kwargs, check)
    context = contextvars.copy_context()  # as asyncio.to_thread does, on its executor (None)
    return await asyncio.get_running_loop().run_in_executor(executor, context.run, call)
