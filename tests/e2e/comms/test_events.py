"""Events: a workflow publishes key-value pairs; anyone reads them (DBOS SetEvent/GetEvent)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from baton import Client, NotFound
from tests.conftest import ThreadServer
from tests.e2e.conftest import effects, wait_until


def test_get_event_before_set_waits_for_it_and_the_latest_value_wins(
    server: ThreadServer, spawn_comms
) -> None:
    with Client(server.target) as client:
        handle = client.start_workflow("publisher", workflow_id="pub")
        seen: list[object] = []
        reader = threading.Thread(
            target=lambda: seen.append(client.get_event("pub", "status", timeout=30))
        )
        reader.start()  # before any worker exists: the event cannot be set yet
        time.sleep(0.3)
        assert seen == []
        spawn_comms(server.target)
        reader.join(timeout=30)
        assert seen == ["one"]
        client.send("pub", "go", topic="go")
        assert handle.result(timeout=60) == "published"
        assert client.get_event("pub", "status", timeout=0) == "two"
        assert client.list_events("pub") == {"status": "two", "progress": 100}


def test_get_event_returns_none_when_its_timeout_passes(server: ThreadServer) -> None:
    with Client(server.target) as client:
        client.start_workflow("publisher", workflow_id="silent")  # no worker: never set
        began = time.monotonic()
        assert client.get_event("silent", "status", timeout=0.5) is None
        assert 0.4 < time.monotonic() - began < 5
        with pytest.raises(NotFound):
            client.get_event("no-such-workflow", "status", timeout=0.1)


def test_a_replayed_get_event_returns_the_recorded_value_after_the_event_changed(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target, HANG_IN="after_get_event")
    with Client(server.target) as client:
        publisher = client.start_workflow("publisher", workflow_id="pub-2")
        assert client.get_event("pub-2", "status", timeout=30) == "one"
        reader = client.start_workflow("event_reader", "pub-2", "status", 10, workflow_id="rd")
        wait_until(lambda: effects(effects_url, "rd"), 30, "the reader's step after get_event")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        second = spawn_comms(server.target)
        # The reader's replay runs on the new worker; meanwhile the event changes.
        client.send("pub-2", "go", topic="go")
        assert publisher.result(timeout=60) == "published"
        assert client.get_event("pub-2", "status", timeout=0) == "two"
        assert reader.result(timeout=60) == "one"
        assert second.poll() is None
        steps = client.list_steps("rd")
    assert [s.name for s in steps] == ["baton.get_event", "mark"]
