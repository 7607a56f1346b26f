"""Each limit, exceeded once: a clear status naming the limit, nothing written,
and the server goes on serving. (Payload size, id and name length and
characters, and page sizes are covered in test_workflow_api.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from baton._proto.baton.v1 import workflow_service_pb2_grpc as wf_grpc
from tests.conftest import ThreadServer, server_config, start_thread_server


@pytest.fixture
def limited(database_url: str) -> Iterator[ThreadServer]:
    server = start_thread_server(
        server_config(
            database_url,
            max_streams_per_connection=3,
            max_readers_per_workflow=2,
            max_message_bytes=64 * 1024,
        )
    )
    yield server
    server.stop()


def _connection(target: str) -> grpc.Channel:
    # A private subchannel pool gives each channel a connection of its own.
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


def _watch(stub: wf_grpc.WorkflowServiceStub, workflow_id: str):  # type: ignore[no-untyped-def]
    call = stub.WatchWorkflow(wf.WatchWorkflowRequest(workflow_id=workflow_id), timeout=30)
    next(call)  # the first update arrives at once; the stream stays open
    return call


def _start(stub: wf_grpc.WorkflowServiceStub, workflow_id: str) -> None:
    stub.StartWorkflow(
        wf.StartWorkflowRequest(workflow_name="nobody_hosts", workflow_id=workflow_id), timeout=5
    )


def test_readers_per_workflow_are_limited_and_freed_when_a_reader_leaves(
    limited: ThreadServer,
) -> None:
    with _connection(limited.target) as one, _connection(limited.target) as two:
        first, second = wf_grpc.WorkflowServiceStub(one), wf_grpc.WorkflowServiceStub(two)
        _start(first, "watched")
        readers = [_watch(first, "watched"), _watch(second, "watched")]
        with pytest.raises(grpc.RpcError) as caught:
            _watch(second, "watched")
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "the limit is 2 (max_readers_per_workflow)" in caught.value.details()
        readers.pop().cancel()
        readers.append(_watch(second, "watched"))  # a place was freed
        for reader in readers:
            reader.cancel()


def test_streams_per_connection_are_limited_and_other_connections_go_on(
    limited: ThreadServer,
) -> None:
    with _connection(limited.target) as busy, _connection(limited.target) as other:
        stub = wf_grpc.WorkflowServiceStub(busy)
        for index in range(4):
            _start(stub, f"w-{index}")
        streams = [_watch(stub, f"w-{index}") for index in range(3)]
        with pytest.raises(grpc.RpcError) as caught:
            _watch(stub, "w-3")
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "the limit is 3 (max_streams_per_connection)" in caught.value.details()
        # Unary calls on the same connection, and streams on another, still work.
        got = stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id="w-3"), timeout=5)
        assert got.workflow.status == common.WORKFLOW_STATUS_ENQUEUED
        _watch(wf_grpc.WorkflowServiceStub(other), "w-3").cancel()
        for stream in streams:
            stream.cancel()


def test_a_message_over_the_size_limit_is_refused_and_nothing_is_written(
    limited: ThreadServer,
) -> None:
    with _connection(limited.target) as channel:
        stub = wf_grpc.WorkflowServiceStub(channel)
        big = common.Payload(json='["' + "x" * 100_000 + '"]')
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartWorkflow(
                wf.StartWorkflowRequest(workflow_name="n", workflow_id="too-big", input=big),
                timeout=5,
            )
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in caught.value.details()
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id="too-big"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        _start(stub, "small")  # the server goes on serving
