"""The server's status waiters: one watch over many workflows names what changed,
and a wake-up that may have lost news asks for everything to be looked at."""

from __future__ import annotations

import pytest

from baton_server.engine.waiters import StatusWaiters

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
