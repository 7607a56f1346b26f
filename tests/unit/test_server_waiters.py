"""The server's status waiters: one watch over many workflows names what changed,
and a wake-up that may have lost news asks for everything to be looked at. The
dispatcher's wake-up timer keeps the earliest time asked of it, on asyncio's
loop and on uvloop (which `baton serve` runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

from baton_server.engine.waiters import StatusWaiters, WakeUp

pytestmark = pytest.mark.timeout(10)


async def test_a_watch_of_many_names_the_workflows_that_changed() -> None:
    waiters = StatusWaiters()
    with waiters.watch_many(["a", "b", "c"]) as changed:
        waiters.changed("b")
        waiters.changed("x")  # not watched
        assert changed.is_set()
        assert changed.take() == ({"b"}, {})
        assert not changed.is_set()
        assert changed.take() == (set(), {})


async def test_a_wake_up_after_lost_news_asks_for_everything_even_with_other_news() -> None:
    waiters = StatusWaiters()
    with waiters.watch_many(["a", "b"]) as changed:
        waiters.wake_all()  # e.g. the LISTEN connection came back
        waiters.changed("b")
        ids, _ = changed.take()
        assert ids is None
        waiters.changed("a")
        assert changed.take() == ({"a"}, {})


async def test_a_watch_of_many_stops_watching_when_it_ends() -> None:
    waiters = StatusWaiters()
    with waiters.watch_many(["a", "b"]) as changed:
        pass
    waiters.changed("a")
    assert not changed.is_set()


class _Row:
    def __init__(self, workflow_id: str, finished: bool) -> None:
        self.workflow_id = workflow_id
        self.finished = finished


class _Engine:
    """What `Engine.start_and_await` uses of its engine: the waiters and reads."""

    from baton_server.engine.engine import Engine

    _until_finished = Engine._until_finished
    await_workflow = Engine.await_workflow

    def __init__(self) -> None:
        self._waiters = StatusWaiters()
        self.reads = 0

    async def _read(self, workflow_id: str) -> _Row:
        self.reads += 1
        return _Row(workflow_id, finished=False)


async def test_a_start_that_waits_sees_a_finish_between_its_insert_and_its_wait() -> None:
    import asyncio

    from baton_server.engine.engine import Engine

    engine = _Engine()
    finished = _Row("wf", finished=True)

    async def start() -> tuple[_Row, bool]:
        # Finished on this replica right after the insert, before the wait.
        engine._waiters.changed("wf", finished=finished)  # type: ignore[arg-type]
        return _Row("wf", finished=False), True

    loop = asyncio.get_running_loop()
    began = loop.time()
    got = await Engine.start_and_await(engine, "wf", start, 30)  # type: ignore[arg-type]
    assert got == (finished, True)
    assert loop.time() - began < 1  # not found at a later recheck (every 5 s)
    assert engine.reads == 0  # the inserted row stood in for the first read


def test_a_wake_up_that_names_a_queue_skips_the_claim_of_plain_workflows() -> None:
    from baton_server.engine.engine import Engine

    class _Dispatcher:
        def __init__(self) -> None:
            self.woken: list[bool] = []

        def wake(self, *, plain: bool = True) -> None:
            self.woken.append(plain)

    class _Fake:
        _dispatcher = _Dispatcher()

    fake = _Fake()
    Engine._on_notify(fake, "baton_enqueued", "queue/emails")  # type: ignore[arg-type]
    Engine._on_notify(fake, "baton_enqueued", "checkout")  # type: ignore[arg-type]
    Engine._on_notify(fake, "baton_enqueued", "queue:like:name")  # type: ignore[arg-type]
    assert fake._dispatcher.woken == [False, True, True]


LOOPS = [pytest.param(None, id="asyncio"), pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_wake_up_fires_at_the_earliest_time_asked_even_one_already_past(
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        woke = asyncio.Event()
        now = loop.time()

        def callback() -> None:
            fired.append("soon" if loop.time() < now + 30 else "late")
            woke.set()

        timer = WakeUp(callback)
        timer.at(now + 60)
        timer.at(now + 0.01)  # earlier: replaces the first
        timer.at(now + 45)  # later: the earlier one stays
        async with asyncio.timeout(5):
            await woke.wait()
        woke.clear()
        # A time already past: uvloop's call_at then gives a plain Handle,
        # without when(); asking again while it is pending keeps it.
        timer.at(now - 1)
        timer.at(now - 1)
        timer.at(now + 60)
        async with asyncio.timeout(5):
            await woke.wait()
        timer.at(now + 60)
        timer.cancel()
        await asyncio.sleep(0)
        return fired

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(scenario()) == ["soon", "soon"]
