"""The coroutines a workflow's threads run on the worker's event loop.

A plain ``def`` workflow's thread hands its durable operations (a recv, an
``async def`` step, a wait for steps sent ahead) to the loop, where each runs
as a task while the thread waits. When the worker tears the run down while the
thread still runs (a stop whose shutdown timeout passed), those tasks must end
on the loop before it closes. One left pending is destroyed with the loop and
its coroutine closed later by the garbage collector, in whatever context is
current there: its ``with`` blocks then unwind outside the task's context, and
context variables set inside it (a step's span, ``in_step``) cannot be reset
("<Token ...> was created in a different Context").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopCalls"]

T = TypeVar("T")

# How long `cancel` waits for the cancelled calls to unwind; a call that
# swallows its cancellation is left behind after it.
_UNWIND_SECONDS = 2.0


class LoopCalls:
    """The tasks one workflow run's threads have running on the loop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] | None = set()  # None once cancelled

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` ran: the run is being torn down."""
        return self._tasks is None

    def submit(
        self, coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop
    ) -> concurrent.futures.Future[T]:
        """From a thread: runs ``coro`` as a task on ``loop``.

        The returned future ends cancelled if `cancel` runs first or meanwhile.

        Raises:
            RuntimeError: ``loop`` is closed (``coro`` is closed, never run).
        """
        tracked = self._tracked(coro)
        try:
            return asyncio.run_coroutine_threadsafe(tracked, loop)
        except RuntimeError:
            tracked.close()
            coro.close()
            raise

    async def cancel(self) -> None:
        """On the loop, when the run is torn down: cancels the tasks running and
        waits until they have ended (in their own tasks, unwinding there); a
        later `submit` ends cancelled without running."""
        tasks, self._tasks = self._tasks or set(), None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_UNWIND_SECONDS)

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        task, tasks = asyncio.current_task(), self._tasks
        assert task is not None, "run_coroutine_threadsafe runs it as a task"
        if tasks is None:
            coro.close()
            raise asyncio.CancelledError
        tasks.add(task)
        try:
            return await coro
        finally:
            tasks.discard(task)
