"""Durable sleep, child workflows, concurrent steps with a durable select,
the async context, and WatchWorkflow."""

from __future__ import annotations

import os
import signal
import time

import psycopg

from baton import Client, WorkflowStatus
from tests.conftest import ThreadServer
from tests.e2e.comms.conftest import wait_recorded
from tests.e2e.conftest import effects, wait_until


def _ran(url: str, workflow_id: str) -> list[str]:
    return [step for step, _ in effects(url, workflow_id)]


def test_a_sleep_survives_a_worker_kill_and_only_the_remaining_time_is_slept(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target)
    with Client(server.target) as client:
        handle = client.start_workflow("sleeper", 6.0, workflow_id="nap")
        wait_until(lambda: _ran(effects_url, "nap"), 30, "the step before the sleep")
        began = time.monotonic()
        wait_until(lambda: wait_recorded(effects_url, "nap"), 30, "the sleep to begin")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        time.sleep(3)  # lease expiry (2 s) and then some; the clock keeps running
        spawn_comms(server.target)
        assert handle.result(timeout=60) == "rested"
        elapsed = time.monotonic() - began
        steps = [s.name for s in client.list_steps("nap")]
    assert 5.0 < elapsed < 6.0 + 2.5  # the original 6 s, not 3 s down + 6 s again
    assert steps == ["mark", "baton.sleep", "mark"]
    assert _ran(effects_url, "nap") == ["before_sleep", "after_sleep"]


def test_a_child_workflow_is_started_once_across_a_parent_replay(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target, DIE_IN="parent_started_child")
    with Client(server.target) as client:
        handle = client.start_workflow("parent", 7, workflow_id="mom")
        first.wait(timeout=60)  # died after starting the child, before awaiting it
        spawn_comms(server.target)
        result = handle.result(timeout=60)
        child = client.get_workflow("mom-1")
        children = client.list_workflows(name="child")
        steps = [(s.name, s.child_workflow_id) for s in client.list_steps("mom")]
    assert result == {"child_id": "mom-1", "result": 70}
    assert child.parent_workflow_id == "mom"
    assert [w.workflow_id for w in children] == ["mom-1"]
    # The child may have run its step on the first worker too, when it died
    # (a step is at least once); what never happens is a second child.
    with psycopg.connect(effects_url) as conn:
        ran_in = conn.execute("SELECT DISTINCT workflow_id FROM effects WHERE step = 'child_ran'")
        assert [row[0] for row in ran_in.fetchall()] == ["mom-1"]
    assert steps == [
        ("baton.start_workflow", "mom-1"),
        ("mark", ""),
        ("baton.await_workflow", ""),
    ]


def test_select_returns_the_same_winner_on_replay(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target, FAST="b", DIE_IN="after_select")
    with Client(server.target) as client:
        handle = client.start_workflow("selector", workflow_id="race")
        first.wait(timeout=60)  # died after select and gather: both racers are recorded
        # On replay both racers are done at once and "a" comes first in the list;
        # and on the new worker "a" would also win a fresh race. The recorded
        # choice holds all the same.
        spawn_comms(server.target, FAST="a")
        result = handle.result(timeout=60)
        steps = [s.name for s in client.list_steps("race")]
    assert result["winner"] == "b"
    assert result["both"] == ["a", "b"]
    assert steps[:3] == ["racer", "racer", "baton.select"]


def test_concurrent_steps_are_numbered_in_call_order_not_completion_order(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        handle = client.start_workflow("numbered_by_call_order", workflow_id="order")
        assert handle.result(timeout=60) == ["slow", "quick"]
        steps = client.list_steps("order")
    assert [(s.function_id, s.output) for s in steps] == [(1, "slow"), (2, "quick")]
    assert steps[1].completed_at is not None and steps[0].completed_at is not None
    assert steps[1].completed_at < steps[0].completed_at  # step 2 finished first


def test_an_async_workflow_communicates_like_a_plain_one(server: ThreadServer, spawn_comms) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        client.start_workflow("receiver", "reply", 1, 30, workflow_id="peer")
        handle = client.start_workflow("async_comms", "peer", workflow_id="async")
        assert client.get_event("async", "ready", timeout=30) is True
        client.send("async", "ping!", topic="ping")
        result = handle.result(timeout=60)
        assert client.retrieve_workflow("peer").result(timeout=30) == [{"pong": "ping!"}]
        assert list(client.read_stream("async", "out")) == ["hello"]
    assert result == {"message": "ping!", "child": 40, "winner": "x", "event": True}


def test_watch_workflow_emits_each_status_change_until_it_finishes(
    server: ThreadServer, spawn_comms
) -> None:
    with Client(server.target) as client:
        client.start_workflow("receiver", None, 1, 30, workflow_id="watched")
        watched = client.watch_workflow("watched")
        assert next(watched).status is WorkflowStatus.ENQUEUED  # no worker yet
        spawn_comms(server.target)
        assert next(watched).status is WorkflowStatus.PENDING
        client.send("watched", "done")
        last = next(watched)
        assert last.status is WorkflowStatus.SUCCESS
        assert last.output == ["done"]
        assert list(watched) == []  # the stream ended after the terminal status


def test_cancelling_a_sleeping_workflow_ends_its_sleep_at_once(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target, EVICT_AFTER="none")  # the sleep is held, not evicted
    registry = server.running.metrics.registry
    refused = {"method": "baton.v1.WorkerService/Sleep", "code": "FAILED_PRECONDITION"}
    with Client(server.target) as client:
        client.start_workflow("sleeper", 60.0, workflow_id="long-nap")
        wait_until(lambda: wait_recorded(effects_url, "long-nap"), 30, "the sleep to begin")
        client.cancel_workflow("long-nap")
        # The server ends the held Sleep call (refused) instead of at its wake-up time.
        wait_until(
            lambda: registry.get_sample_value("baton_rpc_duration_seconds_count", refused),
            10,
            "the sleep to be refused",
        )
        assert client.get_workflow("long-nap").status == WorkflowStatus.CANCELLED
    assert _ran(effects_url, "long-nap") == ["before_sleep"]
