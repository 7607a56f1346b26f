"""Cron schedules with server replicas and worker processes on one database.

A tick's workflow id is ``<schedule>-<tick>``, so the ticks that fired are read
from the ``workflows`` table; each run of a tick's workflow records the
scheduled time it received in ``effects``. Absence (a paused schedule does not
fire) can only be observed by waiting, so those waits are sleeps."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from baton import Client
from tests.conftest import ServerProcess, ThreadServer, server_config, start_thread_server
from tests.e2e.conftest import ROOT as _ROOT
from tests.e2e.conftest import wait_until

SCHEDULE_APP = _ROOT / "tests" / "e2e" / "apps" / "schedule_app.py"
SECOND = timedelta(seconds=1)


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[ThreadServer, ThreadServer]]:
    """Two server replicas on the test's database."""
    first = start_thread_server(server_config(database_url))
    second = start_thread_server(server_config(database_url))
    yield first, second
    first.stop()
    second.stop()


def _ticks(url: str, schedule: str) -> list[datetime]:
    """The ticks of ``schedule`` that started a workflow, in order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT workflow_id FROM workflows WHERE workflow_id LIKE %s", (f"{schedule}-%",)
        ).fetchall()
    return sorted(datetime.fromisoformat(row[0][len(schedule) + 1 :]) for row in rows)


def _runs(url: str, schedule: str) -> list[tuple[str, str]]:
    """``(workflow id, scheduled time received)`` of every run of its workflows."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT workflow_id, step FROM effects WHERE workflow_id LIKE %s ORDER BY id",
            (f"{schedule}-%",),
        ).fetchall()
    return [(workflow_id, step) for workflow_id, step in rows]


def _text(tick: datetime) -> str:
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _assert_each_ran_once_with_its_time(url: str, schedule: str, ticks: list[datetime]) -> None:
    wait_until(lambda: len(_runs(url, schedule)) >= len(ticks), 60, "every tick's workflow to run")
    runs = _runs(url, schedule)
    assert sorted(runs) == sorted((f"{schedule}-{_text(t)}", _text(t)) for t in ticks)


def _assert_consecutive(ticks: list[datetime]) -> None:
    assert ticks == [ticks[0] + i * SECOND for i in range(len(ticks))]


def test_a_schedule_every_second_fires_each_tick_once_on_two_replicas_and_pause_stops_it(
    replicas: tuple[ThreadServer, ThreadServer], spawn_worker, effects_url: str
) -> None:
    for replica in replicas:
        spawn_worker(replica.target, app=SCHEDULE_APP)
    with Client(replicas[0].target) as client:
        created = client.create_schedule("every-second", "record_tick", "* * * * * *")
        wait_until(lambda: len(_ticks(effects_url, "every-second")) >= 10, 30, "ten ticks")
        client.pause_schedule("every-second")
        ticks = _ticks(effects_url, "every-second")
        assert created.next_fire_at is not None and ticks[0] == created.next_fire_at
        _assert_consecutive(ticks)  # no tick missed, none twice (ids are unique)
        _assert_each_ran_once_with_its_time(effects_url, "every-second", ticks)

        time.sleep(2.5)  # paused: nothing fires
        assert _ticks(effects_url, "every-second") == ticks
        assert client.get_schedule("every-second").last_fired_at == ticks[-1]


def test_backfill_starts_exactly_the_ticks_missed_while_paused(
    server: ThreadServer, spawn_worker, effects_url: str
) -> None:
    spawn_worker(server.target, app=SCHEDULE_APP)
    with Client(server.target) as client:
        client.create_schedule("gappy", "record_tick", "* * * * * *")
        wait_until(lambda: len(_ticks(effects_url, "gappy")) >= 2, 30, "two ticks")
        client.pause_schedule("gappy")
        before = _ticks(effects_url, "gappy")
        time.sleep(2.5)  # ticks pass while paused
        client.resume_schedule("gappy")
        wait_until(lambda: len(_ticks(effects_url, "gappy")) >= len(before) + 2, 30, "two more")
        client.pause_schedule("gappy")
        fired = _ticks(effects_url, "gappy")
        assert fired[len(before)] - before[-1] >= 3 * SECOND  # the pause left a gap

        handles = client.backfill_schedule("gappy", fired[0], fired[-1] + SECOND)
        missed = [t for t in (fired[0] + i * SECOND for i in range(100)) if t <= fired[-1]]
        missed = [t for t in missed if t not in fired]
        assert [h.workflow_id for h in handles] == [f"gappy-{_text(t)}" for t in missed]
        everything = _ticks(effects_url, "gappy")
        _assert_consecutive(everything)
        _assert_each_ran_once_with_its_time(effects_url, "gappy", everything)


def test_a_restarted_replica_neither_double_fires_nor_skips_recent_ticks(
    server_process: Callable[..., ServerProcess], spawn_worker, effects_url: str
) -> None:
    # A lease longer than the downtime: a tick's workflow caught mid-step by the
    # stop keeps its worker (which reconnects) instead of being dispatched again,
    # which would re-run its step (at least once, correctly, but not what this
    # test is about: the ticks themselves must fire once).
    first = server_process(lease_seconds=15.0)
    spawn_worker(first.target, app=SCHEDULE_APP)
    with Client(first.target) as client:
        client.create_schedule("restarted", "record_tick", "* * * * * *")
    wait_until(lambda: len(_ticks(effects_url, "restarted")) >= 3, 30, "three ticks")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0
    at_stop = _ticks(effects_url, "restarted")
    time.sleep(1.5)  # ticks come due while no replica runs

    again = server_process(port=first.port, lease_seconds=15.0)
    wait_until(
        lambda: len(_ticks(effects_url, "restarted")) >= len(at_stop) + 4, 30, "ticks after restart"
    )
    with Client(again.target) as client:
        client.pause_schedule("restarted")
    ticks = _ticks(effects_url, "restarted")
    _assert_consecutive(ticks)  # the ticks due while down fired once, at restart
    assert ticks[: len(at_stop)] == at_stop
    _assert_each_ran_once_with_its_time(effects_url, "restarted", ticks)


def test_a_worker_declared_schedule_fires(
    server: ThreadServer, spawn_worker, effects_url: str
) -> None:
    spawn_worker(server.target, app=SCHEDULE_APP, DECLARED_CRON="* * * * * *")
    wait_until(lambda: len(_runs(effects_url, "declared_tick")) >= 2, 30, "two declared ticks")
    with Client(server.target) as client:
        declared = client.get_schedule("declared_tick")
        assert (declared.workflow_name, declared.cron) == ("declared_tick", "* * * * * *")
        client.pause_schedule("declared_tick")
    ticks = _ticks(effects_url, "declared_tick")
    _assert_consecutive(ticks)
    _assert_each_ran_once_with_its_time(effects_url, "declared_tick", ticks)
