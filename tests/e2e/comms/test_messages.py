"""Messages: Send from anywhere, Recv inside a workflow (DBOS Send/Recv)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from baton import Client, NotFound, WorkflowStatus
from tests.conftest import ThreadServer
from tests.e2e.comms.conftest import wait_recorded
from tests.e2e.conftest import effects, wait_until


def _ready(client: Client, workflow_id: str) -> None:
    assert client.get_event(workflow_id, "ready", timeout=30) is True


def test_messages_arrive_in_order_per_topic_and_topics_are_isolated(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        ordered = client.start_workflow("receiver", "seq", 5, 30, workflow_id="ordered")
        isolated = client.start_workflow("topics", workflow_id="isolated")
        for n in range(5):
            client.send("ordered", n, topic="seq")
        client.send("isolated", "for-b", topic="b")
        client.send("isolated", "no-topic")
        client.send("isolated", "for-a", topic="a")
        assert ordered.result(timeout=60) == [0, 1, 2, 3, 4]
        assert isolated.result(timeout=60) == {
            "a": "for-a",
            "none": "no-topic",
            "b": "for-b",
            "a_again": None,
        }


def test_recv_returns_none_when_its_timeout_passes(server: ThreadServer, spawn_comms) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        began = time.monotonic()
        handle = client.start_workflow("receiver", None, 1, 0.5, workflow_id="times-out")
        assert handle.result(timeout=60) == [None]
        assert time.monotonic() - began < 20


def test_a_message_to_an_unknown_workflow_is_not_found(server: ThreadServer) -> None:
    with Client(server.target) as client, pytest.raises(NotFound):
        client.send("nobody-home", "hello")


def test_a_send_with_an_idempotency_key_is_delivered_once(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        handle = client.start_workflow("receiver", None, 2, 3, workflow_id="idem")
        for _ in range(3):
            client.send("idem", "once", idempotency_key="key-1")
        assert handle.result(timeout=60) == ["once", None]


def test_a_hundred_concurrent_sends_are_each_received_exactly_once(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        handle = client.start_workflow("receiver", "many", 101, 5, workflow_id="hundred")
        _ready(client, "hundred")
        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(lambda n: client.send("hundred", n, topic="many"), range(100)))
        received = handle.result(timeout=90)
    assert received[-1] is None  # nothing more than the hundred
    assert sorted(received[:100]) == list(range(100))


def test_a_workflow_sending_is_exactly_once_even_when_its_worker_dies_right_after(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target, DIE_IN="after_send")
    with Client(server.target) as client:
        inbox = client.start_workflow("receiver", "inbox", 4, 8, workflow_id="inbox")
        client.start_workflow("sender", "inbox", 3, workflow_id="sender")
        first.wait(timeout=60)  # died right after its sends were recorded
        spawn_comms(server.target)
        assert client.retrieve_workflow("sender").result(timeout=60) == 3
        received = inbox.result(timeout=60)
    assert received == [{"n": 0}, {"n": 1}, {"n": 2}, None]
    assert [s for s, _ in effects(effects_url, "sender")].count("after_send") == 2


def test_a_worker_killed_while_waiting_in_recv_keeps_the_message_and_its_deadline(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target)
    with Client(server.target) as client:
        handle = client.start_workflow("waits_then_receives", 8.0, workflow_id="recv-crash")
        wait_until(lambda: wait_recorded(effects_url, "recv-crash"), 30, "recv to wait")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        client.send("recv-crash", "sent while down", topic="late")
        spawn_comms(server.target)
        result = handle.result(timeout=60)
        assert result["message"] == "sent while down"

        # A second one with no message: it times out at the original deadline,
        # not a full timeout after its recovery.
        second = spawn_comms(server.target)
        timed = client.start_workflow("waits_then_receives", 6.0, workflow_id="recv-deadline")
        wait_until(lambda: wait_recorded(effects_url, "recv-deadline"), 30, "recv to wait")
        os.kill(second.pid, signal.SIGKILL)
        second.wait(timeout=10)
        time.sleep(3)  # the lease (2 s) expires; the deadline keeps running
        spawn_comms(server.target)
        outcome = timed.result(timeout=60)
        finished = client.get_workflow("recv-deadline")
    assert outcome["message"] is None
    started = datetime.fromisoformat(outcome["started"])
    assert finished.completed_at is not None
    waited = (finished.completed_at - started).total_seconds()
    assert 5.5 < waited < 6.0 + 4.0  # the original 6 s, not 3 s + 6 s after recovery
    assert finished.status is WorkflowStatus.SUCCESS
