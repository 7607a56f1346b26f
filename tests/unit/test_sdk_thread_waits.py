"""A plain ``def`` workflow's thread waiting for an answer from the worker's
loop (a step's commit, a call): it gets the value or the error the answer
settles with, whether it began to wait before or after, and stops waiting
when its run goes stale or is cancelled."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest

from baton._context import ContextCore
from baton._run_state import CancelRequested, LeaseLost, RunState
from tests.unit.contexts import offline_core

pytestmark = pytest.mark.timeout(30)


def _core(state: RunState | None = None) -> ContextCore:
    return offline_core(attempt=1, state=state)


def _wait_in_thread(core: ContextCore, future: concurrent.futures.Future[Any]) -> list[Any]:
    """Starts a thread waiting for ``future``; returns the list it puts its
    outcome in (a value, or the exception raised) once the thread is joined."""
    outcome: list[Any] = []

    def wait() -> None:
        try:
            outcome.append(core._wait_from_thread(future))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    outcome.append(thread)
    return outcome


def _joined(outcome: list[Any]) -> Any:
    thread = outcome.pop(0)
    thread.join(timeout=10)
    assert not thread.is_alive()
    (result,) = outcome
    return result


class _Watched(concurrent.futures.Future[Any]):
    """A future that says when a waiter has registered to hear of it."""

    def __init__(self) -> None:
        super().__init__()
        self.watched = threading.Event()

    def add_done_callback(self, fn: Any) -> None:
        super().add_done_callback(fn)
        self.watched.set()


def test_the_waiting_thread_gets_the_value_or_error_whenever_it_is_settled() -> None:
    core = _core()
    # Settled while the thread waits: with a value, then with an error.
    waited = _Watched()
    outcome = _wait_in_thread(core, waited)
    assert waited.watched.wait(timeout=10)
    waited.set_result(7)
    assert _joined(outcome) == 7
    waited = _Watched()
    outcome = _wait_in_thread(core, waited)
    assert waited.watched.wait(timeout=10)
    waited.set_exception(ValueError(7))
    error = _joined(outcome)
    assert isinstance(error, ValueError) and error.args == (7,)
    # Settled before it waits.
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    done.set_result("already")
    assert core._wait_from_thread(done) == "already"
    failed: concurrent.futures.Future[Any] = concurrent.futures.Future()
    failed.set_exception(KeyError("already"))
    with pytest.raises(KeyError):
        core._wait_from_thread(failed)
    # Settled as it begins to wait, either side of its registering.
    for i in range(200):
        racing: concurrent.futures.Future[Any] = concurrent.futures.Future()
        outcome = _wait_in_thread(core, racing)
        racing.set_result(i)
        assert _joined(outcome) == i


def test_a_run_that_goes_stale_or_is_cancelled_stops_waiting() -> None:
    for flag, stop in (("stale", LeaseLost), ("cancelled", CancelRequested)):
        state = RunState()
        core = _core(state)
        never = _Watched()
        outcome = _wait_in_thread(core, never)
        assert never.watched.wait(timeout=10)
        setattr(state, flag, True)  # noticed at the next poll, within half a second
        assert isinstance(_joined(outcome), stop)
        assert never.cancelled()  # what it waited for is dropped


def test_an_answer_cancelled_under_the_wait_ends_it() -> None:
    core = _core()
    future = _Watched()
    outcome = _wait_in_thread(core, future)
    assert future.watched.wait(timeout=10)
    future.cancel()
    assert isinstance(_joined(outcome), concurrent.futures.CancelledError)
    asyncio.run(core.calls.cancel())  # the run is torn down: the wait says so
    dropped: concurrent.futures.Future[Any] = concurrent.futures.Future()
    dropped.cancel()
    with pytest.raises(LeaseLost, match="stopping"):
        core._wait_from_thread(dropped)
