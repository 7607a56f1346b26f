"""Streams: values written by a workflow, read by anyone in order as they arrive."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

from baton import AsyncClient, Client, NotFound
from baton._proto.baton.v1 import stream_service_pb2 as st
from baton._proto.baton.v1 import stream_service_pb2_grpc as st_grpc
from tests.conftest import ThreadServer

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


def test_a_thousand_values_are_read_in_order_by_three_concurrent_readers(
    server: ThreadServer, spawn_comms
) -> None:
    with Client(server.target) as client:
        client.start_workflow("streamer", 1000, "big", workflow_id="big")
        results: list[list[object]] = [[], [], []]

        def read(index: int) -> None:
            results[index] = list(client.read_stream("big", "big"))

        readers = [threading.Thread(target=read, args=(i,)) for i in range(3)]
        for reader in readers:
            reader.start()  # before the worker: they receive values as they are written
        spawn_comms(server.target)
        for reader in readers:
            reader.join(timeout=90)
    assert all(values == list(range(1000)) for values in results)


def test_a_reader_that_disconnects_at_offset_400_resumes_there_and_misses_nothing(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        handle = client.start_workflow("streamer", 1000, "resumed", workflow_id="resumed")
        first: list[tuple[int, object]] = []
        with grpc.insecure_channel(server.target) as channel:
            call = st_grpc.StreamServiceStub(channel).ReadStream(
                st.ReadStreamRequest(workflow_id="resumed", key="resumed")
            )
            for response in call:
                first.append((response.offset, response.value.json))
                if response.offset == 399:
                    call.cancel()  # the reader goes away mid-stream
                    break
        rest = list(client.read_stream_entries("resumed", "resumed", from_offset=400))
        handle.result(timeout=60)
    assert [offset for offset, _ in first] == list(range(400))
    assert [offset for offset, _ in rest] == list(range(400, 1000))
    assert [value for _, value in rest] == list(range(400, 1000))


def test_reading_the_stream_of_a_finished_workflow_returns_everything_then_ends(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        # Never closed by the workflow: it is closed by the workflow's end.
        assert client.start_workflow("slow_streamer", 5, workflow_id="fin").result(timeout=60) == 5
        assert list(client.read_stream("fin", "slow")) == [{"i": i} for i in range(5)]
        assert list(client.read_stream("fin", "never-written")) == []
        with pytest.raises(NotFound):
            list(client.read_stream("no-such-workflow", "slow"))


def test_a_retried_step_may_duplicate_its_writes_but_workflow_writes_never_do(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    first = spawn_comms(server.target, DIE_IN="step_wrote")
    with Client(server.target) as client:
        handle = client.start_workflow("mixed_writer", workflow_id="mixed")
        first.wait(timeout=60)  # killed inside the step, after its two writes
        spawn_comms(server.target)
        assert handle.result(timeout=60) == "written"
        values = list(client.read_stream("mixed", "mixed"))
    assert values == [
        "from-workflow-1",
        "from-step-1",
        "from-step-2",
        "from-step-1",  # the step ran again after the crash: at least once
        "from-step-2",
        "from-workflow-2",
    ]


async def test_the_async_client_reads_a_stream_as_an_async_iterator(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    async with AsyncClient(server.target) as client:
        await client.start_workflow("streamer", 20, "async", workflow_id="async-read")
        values = [value async for value in client.read_stream("async-read", "async")]
    assert values == list(range(20))


def test_grpcurl_reads_a_stream_and_prints_values_as_they_arrive(
    server: ThreadServer, spawn_comms
) -> None:
    spawn_comms(server.target)
    with Client(server.target) as client:
        client.start_workflow("slow_streamer", 40, workflow_id="curl")
        process = subprocess.Popen(
            [
                GRPCURL, "-plaintext", "-d",
                '{"workflow_id": "curl", "key": "slow"}',
                server.target, "baton.v1.StreamService/ReadStream",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert process.stdout is not None
        lines: list[str] = []
        # The first value is printed while the workflow is still writing.
        while '"json"' not in "".join(lines):
            lines.append(process.stdout.readline())
        assert client.get_workflow("curl").status.value == "PENDING"
        out, _ = process.communicate(timeout=60)
    text = "".join(lines) + out
    assert process.returncode == 0
    assert text.count('"json"') == 40
    assert '"json": "{\\"i\\":39}"' in text
