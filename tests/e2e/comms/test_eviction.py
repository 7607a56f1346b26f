"""Long waits evict their workflow from the worker (``evict_waits_after``): a
worker with a few slots holds many more sleeping or receiving workflows, each
dispatched again when its wait ends, with its steps run once and its deadline
kept."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from baton import Client, WorkflowStatus
from tests.conftest import ThreadServer
from tests.e2e.conftest import effects, most_at_once, wait_until

EVICT_APP = Path(__file__).parents[1] / "apps" / "evict_app.py"

pytestmark = pytest.mark.timeout(180)


def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _released(url: str, prefix: str) -> int:
    """How many workflows with ids starting ``prefix`` are released in a wait:
    ENQUEUED again after they began waiting."""
    [(count,)] = _query(
        url,
        "SELECT count(*) FROM workflows w"
        " WHERE starts_with(w.workflow_id, %s) AND w.status = 'ENQUEUED'"
        "   AND EXISTS (SELECT 1 FROM wait_deadlines d WHERE d.workflow_id = w.workflow_id)",
        prefix,
    )
    return int(count)


def _steps_ran_once(url: str, prefix: str) -> dict[str, int]:
    """``{step: number of workflows}`` over the effects of ``prefix``'s workflows,
    asserting that no workflow ran a step twice."""
    rows = _query(
        url,
        "SELECT workflow_id, step, count(*) FROM effects WHERE starts_with(workflow_id, %s)"
        " GROUP BY workflow_id, step",
        prefix,
    )
    assert [row for row in rows if row[2] != 1] == []
    ran: dict[str, int] = {}
    for _, step, _ in rows:
        ran[step] = ran.get(step, 0) + 1
    return ran


def _woke_early(url: str, prefix: str) -> list[str]:
    """Workflows whose step after the wait ran before the wait's recorded deadline."""
    rows = _query(
        url,
        "SELECT e.workflow_id FROM effects e JOIN wait_deadlines d USING (workflow_id)"
        " WHERE starts_with(e.workflow_id, %s) AND e.step = 'after' AND e.at < d.deadline",
        prefix,
    )
    return [row[0] for row in rows]


def test_a_four_slot_worker_sleeps_two_hundred_workflows_many_at_once(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    nap = 8.0
    spawn_comms(server.target, app=EVICT_APP, SLOTS="4", EVICT_AFTER="0.5")
    ids = [f"nap-{i:03}" for i in range(200)]
    with Client(server.target) as client:
        handles = [
            client.start_workflow("napper" if i % 2 else "async_napper", nap, workflow_id=wid)
            for i, wid in enumerate(ids)
        ]
        results = [handle.result(timeout=120) for handle in handles]
        steps = [s.name for s in client.list_steps("nap-007")]
    assert results == ["rested"] * 200
    assert _steps_ran_once(effects_url, "nap-") == {"before": 200, "after": 200}
    assert steps == ["mark", "baton.sleep", "mark"]
    assert _woke_early(effects_url, "nap-") == []
    # Every sleep lasts `nap` seconds, so the deadlines say when each began.
    # Four slots without eviction hold at most four sleeps at a time; with it,
    # every sleep started while others sleep adds one. How many overlap depends
    # on how fast this machine starts 200 workflows (all of them, on a quiet
    # one), so the bar is far above four rather than at two hundred.
    rows = _query(
        effects_url,
        "SELECT d.deadline, w.attempt FROM wait_deadlines d JOIN workflows w USING (workflow_id)"
        " WHERE starts_with(d.workflow_id, 'nap-')",
    )
    assert len(rows) == 200
    assert [attempt for _, attempt in rows if attempt < 2] == []  # each was evicted
    sleeps = [(deadline - timedelta(seconds=nap), deadline) for deadline, _ in rows]
    assert most_at_once(sleeps) >= 50


def test_workflows_evicted_in_recv_come_back_for_their_message_or_their_timeout(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    # A recv is held 0.2 s before it is evicted: 4 slots evict 20 a second.
    spawn_comms(server.target, app=EVICT_APP, SLOTS="4", EVICT_AFTER="0.2")
    ids = [f"inbox-{i:03}" for i in range(100)]
    with Client(server.target) as client:
        handles = [
            client.start_workflow("listener" if i % 2 else "async_listener", 25.0, workflow_id=wid)
            for i, wid in enumerate(ids)
        ]
        wait_until(lambda: _released(effects_url, "inbox-") == 100, 60, "100 released recvs")
        reason = client.get_workflow("inbox-000").waiting_reason
        for index, workflow_id in enumerate(ids[:50]):
            client.send(workflow_id, {"n": index}, topic="ping")
        results = [handle.result(timeout=120) for handle in handles]
    assert "waiting for a message on topic 'ping' until" in reason
    assert results == [{"n": i} for i in range(50)] + [None] * 50
    assert _steps_ran_once(effects_url, "inbox-") == {"before": 100, "after": 100}
    # The messaged ones came back for their message, long before their timeout;
    # the others not before it.
    late = _query(
        effects_url,
        "SELECT w.workflow_id FROM workflows w JOIN wait_deadlines d USING (workflow_id)"
        " WHERE w.workflow_id = ANY(%s) AND w.completed_at > d.deadline - interval '10 seconds'",
        ids[:50],
    )
    assert late == []
    assert sorted(_woke_early(effects_url, "inbox-")) == ids[:50]


def test_parents_awaiting_children_give_up_their_slots_to_them(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    # Twelve parents on four slots: the first four hold every slot while their
    # children wait for one. Released after 0.5 s of waiting, they make room.
    spawn_comms(server.target, app=EVICT_APP, SLOTS="4", EVICT_AFTER="0.5")
    ids = [f"mom-{i:02}" for i in range(12)]
    with Client(server.target) as client:
        handles = [
            client.start_workflow(
                "parent" if i % 2 else "async_parent", "doubler", i, workflow_id=wid
            )
            for i, wid in enumerate(ids)
        ]
        results = [handle.result(timeout=90) for handle in handles]
        steps = [s.name for s in client.list_steps("mom-03")]
    assert results == [2 * i for i in range(12)]
    assert _steps_ran_once(effects_url, "mom-") == {"before": 12, "child": 12, "after": 12}
    assert steps == ["mark", "baton.start_workflow", "baton.await_workflow", "mark"]
    [(released,)] = _query(
        effects_url,
        "SELECT count(*) FROM workflows WHERE workflow_id = ANY(%s) AND attempt >= 2",
        ids,
    )
    assert released >= 4


def test_a_released_parent_comes_back_when_its_child_finishes(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target, app=EVICT_APP, SLOTS="2", EVICT_AFTER="0.2")
    with Client(server.target) as client:
        handle = client.start_workflow("parent", "listener", 300.0, workflow_id="dad")
        # The child (dad-2) waits in a recv, and both are released.
        wait_until(lambda: _released(effects_url, "dad-2") == 1, 30, "the child's release")
        wait_until(
            lambda: client.get_workflow("dad").status == WorkflowStatus.ENQUEUED,
            30,
            "the parent's release",
        )
        reason = client.get_workflow("dad").waiting_reason
        client.send("dad-2", "hello", topic="ping")
        result = handle.result(timeout=60)
        [(waited,)] = _query(
            effects_url,
            "SELECT extract(epoch FROM completed_at - created_at) FROM workflows"
            " WHERE workflow_id = 'dad'",
        )
    assert reason.startswith("waiting for workflow 'dad-2' to finish")
    assert result == "hello"
    # Woken by the child's end, not by the hourly re-check.
    assert waited < 60
    assert _steps_ran_once(effects_url, "dad") == {"before": 2, "after": 2}


def test_workflows_evicted_reading_an_event_come_back_when_it_is_set_or_at_their_timeout(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target, app=EVICT_APP, SLOTS="2", EVICT_AFTER="0.2")
    readers = {"reader-1": "event_reader", "reader-2": "async_event_reader"}
    with Client(server.target) as client:
        client.start_workflow("announcer", "news", workflow_id="herald")
        handles = [
            client.start_workflow(name, "herald", "news", 300.0, workflow_id=workflow_id)
            for workflow_id, name in readers.items()
        ]
        late = client.start_workflow("event_reader", "herald", "never", 3.0, workflow_id="reader-3")
        # The announcer is evicted in its recv, the readers in their get_event.
        wait_until(lambda: _released(effects_url, "reader-") == 3, 30, "three released readers")
        wait_until(lambda: _released(effects_url, "herald") == 1, 30, "the announcer's release")
        reason = client.get_workflow("reader-1").waiting_reason
        client.send("herald", "extra!", topic="ping")
        results = [handle.result(timeout=60) for handle in handles]
        timed_out = late.result(timeout=60)
        waited = dict(
            _query(
                effects_url,
                "SELECT workflow_id, extract(epoch FROM completed_at - created_at) FROM workflows"
                " WHERE starts_with(workflow_id, 'reader-')",
            )
        )
    assert reason.startswith("waiting for event 'news' of workflow 'herald' until")
    assert results == ["extra!", "extra!"]
    assert timed_out is None
    # Woken by the event, long before their 300 s; the other not before its 3 s.
    assert waited["reader-1"] < 60 and waited["reader-2"] < 60
    assert waited["reader-3"] >= 3
    assert _steps_ran_once(effects_url, "reader-") == {"before": 3, "after": 3}
    assert sorted(_woke_early(effects_url, "reader-")) == ["reader-1", "reader-2"]


def test_an_evicted_sleep_keeps_its_deadline_across_a_worker_kill(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target, app=EVICT_APP)
    with Client(server.target) as client:
        handle = client.start_workflow("napper", 6.0, workflow_id="kept")
        wait_until(lambda: _released(effects_url, "kept"), 30, "the sleep to release it")
        info = client.get_workflow("kept")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        spawn_comms(server.target, app=EVICT_APP)
        assert handle.result(timeout=60) == "rested"
    assert info.status == WorkflowStatus.ENQUEUED
    assert "sleeping until" in info.waiting_reason
    [(overslept,)] = _query(
        effects_url,
        "SELECT extract(epoch FROM e.at - d.deadline) FROM effects e"
        " JOIN wait_deadlines d USING (workflow_id)"
        " WHERE e.workflow_id = 'kept' AND e.step = 'after'",
    )
    assert 0 <= overslept < 2.0  # woken at the original deadline, not 6 s after the kill
    assert [step for step, _ in effects(effects_url, "kept")] == ["before", "after"]


def test_evictions_do_not_count_against_max_attempts(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target, app=EVICT_APP, EVICT_AFTER="0.1")
    with Client(server.target) as client:
        handle = client.start_workflow("many_naps", 4, 0.6, workflow_id="naps")
        assert handle.result(timeout=60) == 4  # max_attempts=1, evicted 4 times
        info = client.get_workflow("naps")
    assert info.status == WorkflowStatus.SUCCESS
    assert info.attempt == 5
    assert _steps_ran_once(effects_url, "naps") == {f"nap-{i}": 1 for i in range(4)}


def test_a_workflow_evicted_in_a_wait_can_be_cancelled(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target, app=EVICT_APP)
    with Client(server.target) as client:
        client.start_workflow("listener", 60.0, workflow_id="hush")  # evicted after 0.5 s
        wait_until(lambda: _released(effects_url, "hush"), 30, "the recv to release it")
        assert client.cancel_workflow("hush") == ["hush"]
        client.send("hush", "too late", topic="ping")
        info = client.get_workflow("hush")
        [(attempt,)] = _query(
            effects_url, "SELECT attempt FROM workflows WHERE workflow_id = 'hush'"
        )
    assert info.status == WorkflowStatus.CANCELLED
    assert attempt == 1  # never dispatched again
    assert [step for step, _ in effects(effects_url, "hush")] == ["before"]


def test_a_queued_workflow_keeps_its_worker_while_it_sleeps(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target, app=EVICT_APP, QUEUE="slow", EVICT_AFTER="0.1")
    with Client(server.target) as client:
        client.upsert_queue("slow")
        handle = client.start_workflow("napper", 1.5, workflow_id="queued", queue="slow")
        assert handle.result(timeout=60) == "rested"
        info = client.get_workflow("queued")
    assert info.attempt == 1  # never released, so dispatched once
