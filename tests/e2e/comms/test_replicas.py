"""Waits are woken across replicas by LISTEN/NOTIFY, not by the periodic re-check."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from baton import Client
from baton_server.engine import streams
from tests.conftest import ThreadServer, server_config, start_thread_server


@pytest.fixture
def second_replica(database_url: str) -> Iterator[ThreadServer]:
    replica = start_thread_server(server_config(database_url))
    yield replica
    replica.stop()


def test_a_reader_on_another_replica_gets_values_as_they_are_written(
    server: ThreadServer, second_replica: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)  # the writer runs on the first replica's worker
    with Client(server.target) as writer_side, Client(second_replica.target) as reader_side:
        writer_side.start_workflow("slow_streamer", 30, workflow_id="across")
        arrivals = []
        for _ in reader_side.read_stream("across", "slow"):
            arrivals.append(time.monotonic())
    assert len(arrivals) == 30
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # Values are written every ~50 ms. Were the reader woken only by its periodic
    # re-check, they would arrive in bursts that far apart.
    assert max(gaps) < streams.RECHECK_SECONDS / 2


def test_a_message_sent_through_another_replica_wakes_the_waiting_recv(
    server: ThreadServer, second_replica: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client, Client(second_replica.target) as other:
        handle = client.start_workflow("receiver", "x", 3, 30, workflow_id="woken")
        assert other.get_event("woken", "ready", timeout=30) is True
        began = time.monotonic()
        for n in range(3):
            other.send("woken", n, topic="x")
        assert handle.result(timeout=30) == [0, 1, 2]
        assert time.monotonic() - began < 1.0 + 0.5  # well under the 2 s re-check
