"""WorkflowService as a caller meets it over raw gRPC: idempotent starts,
clear errors for bad input, and nothing disturbed by them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from baton._proto.baton.v1 import workflow_service_pb2_grpc as wf_grpc
from tests.conftest import ThreadServer, server_config, start_thread_server
from tests.grpc_helpers import details


@pytest.fixture
def stub(server: ThreadServer) -> Iterator[wf_grpc.WorkflowServiceStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield wf_grpc.WorkflowServiceStub(channel)


def _start(stub: wf_grpc.WorkflowServiceStub, name: str, workflow_id: str = "", args: str = "[]"):
    return stub.StartWorkflow(
        wf.StartWorkflowRequest(
            workflow_name=name, workflow_id=workflow_id, input=common.Payload(json=args)
        ),
        timeout=10,
    )


def test_starting_the_same_workflow_id_twice_returns_the_first(stub) -> None:
    first = _start(stub, "checkout", "order-1", '[{"id": 1}]')
    second = _start(stub, "checkout", "order-1", '[{"id": 2}]')
    assert first.created and not second.created
    assert second.workflow.workflow_id == "order-1"
    assert second.workflow.input.json == '[{"id": 1}]'


def test_a_different_name_with_a_taken_id_is_already_exists(stub) -> None:
    _start(stub, "checkout", "order-2")
    with pytest.raises(grpc.RpcError) as caught:
        _start(stub, "refund", "order-2")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "checkout" in caught.value.details()
    assert details(caught.value)[0] == "WORKFLOW_ID_CONFLICT"


def test_a_server_assigns_an_id_when_none_is_given(stub) -> None:
    response = _start(stub, "checkout")
    assert len(response.workflow.workflow_id) == 36


@pytest.mark.parametrize(
    ("name", "workflow_id", "field"),
    [
        ("", "ok-id", "workflow_name"),
        ("x" * 201, "ok-id", "workflow_name"),
        ("9starts-with-digit", "ok-id", "workflow_name"),
        ("has space", "ok-id", "workflow_name"),
        ("checkout", "y" * 201, "workflow_id"),
        ("checkout", "bad id", "workflow_id"),
        ("checkout", "tab\tid", "workflow_id"),
        ("checkout", "ünïcode", "workflow_id"),
    ],
)
def test_malformed_names_and_ids_are_invalid_argument_naming_the_field(
    stub, name: str, workflow_id: str, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _start(stub, name, workflow_id)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(field)
    assert [f for f, _ in details(caught.value)[1]] == [field]


def test_unknown_workflow_ids_are_not_found(stub) -> None:
    calls = [
        lambda: stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id="nope"), timeout=5),
        lambda: stub.AwaitWorkflow(wf.AwaitWorkflowRequest(workflow_id="nope"), timeout=5),
        lambda: stub.ListWorkflowSteps(wf.ListWorkflowStepsRequest(workflow_id="nope"), timeout=5),
        lambda: list(stub.WatchWorkflow(wf.WatchWorkflowRequest(workflow_id="nope"), timeout=5)),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "nope" in caught.value.details()
        assert details(caught.value)[0] == "WORKFLOW_NOT_FOUND"


def test_a_payload_over_the_limit_is_refused_and_nothing_is_written(database_url: str) -> None:
    small = start_thread_server(server_config(database_url, max_payload_bytes=1024))
    try:
        with grpc.insecure_channel(small.target) as channel:
            stub = wf_grpc.WorkflowServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                _start(stub, "checkout", "too-big", '["' + "x" * 2000 + '"]')
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "1024 bytes" in caught.value.details()
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id="too-big"), timeout=5)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            assert _start(stub, "checkout", "small-enough").created
    finally:
        small.stop()


def test_a_workflow_nobody_hosts_waits_enqueued_and_says_why(stub) -> None:
    _start(stub, "nobody_hosts_me", "lonely")
    got = stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id="lonely"), timeout=5).workflow
    assert got.status == common.WORKFLOW_STATUS_ENQUEUED
    assert got.waiting_reason == "no connected worker hosts workflow 'nobody_hosts_me'"


def test_await_returns_the_unfinished_workflow_when_its_timeout_passes(stub) -> None:
    _start(stub, "slowpoke", "await-me")
    response = stub.AwaitWorkflow(
        wf.AwaitWorkflowRequest(workflow_id="await-me", timeout={"nanos": 200_000_000}), timeout=5
    )
    assert not response.done
    assert response.workflow.status == common.WORKFLOW_STATUS_ENQUEUED


def test_listing_filters_by_name_and_status_and_pages_without_gaps(stub) -> None:
    for index in range(7):
        _start(stub, "listed", f"listed-{index}")
    _start(stub, "other", "other-0")
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListWorkflows(
            wf.ListWorkflowsRequest(
                workflow_name="listed",
                statuses=[common.WORKFLOW_STATUS_ENQUEUED],
                page_size=3,
                page_token=token,
            ),
            timeout=5,
        )
        assert len(page.workflows) <= 3
        seen += [w.workflow_id for w in page.workflows]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"listed-{index}" for index in reversed(range(7))]
    none = stub.ListWorkflows(
        wf.ListWorkflowsRequest(statuses=[common.WORKFLOW_STATUS_SUCCESS]), timeout=5
    )
    assert list(none.workflows) == []


def test_bad_page_tokens_and_sizes_are_invalid_argument(stub) -> None:
    for request in (
        wf.ListWorkflowsRequest(page_token="garbage"),
        wf.ListWorkflowsRequest(page_size=5000),
        wf.ListWorkflowsRequest(page_size=-1),
        wf.ListWorkflowsRequest(created_after={"seconds": 1, "nanos": -1}),
        wf.ListWorkflowsRequest(completed_before={"seconds": 2**40}),
        wf.ListWorkflowsRequest(statuses=[99]),  # type: ignore[list-item]
        wf.ListWorkflowsRequest(order=7),  # type: ignore[arg-type]
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListWorkflows(request, timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_timeout_is_kept_on_every_start_path(server: ThreadServer, stub) -> None:
    """A start-to-close timeout becomes a deadline whether the start is plain,
    on a queue, or part of a batch."""
    from baton._proto.baton.v1 import queue_service_pb2 as q
    from baton._proto.baton.v1 import queue_service_pb2_grpc as q_grpc

    with grpc.insecure_channel(server.target) as channel:
        queues = q_grpc.QueueServiceStub(channel)
        queues.UpsertQueue(q.UpsertQueueRequest(queue=q.Queue(name="tq")), timeout=5)
    minute = {"seconds": 60}
    stub.StartWorkflow(
        wf.StartWorkflowRequest(workflow_name="t", workflow_id="t-plain", timeout=minute),
        timeout=5,
    )
    stub.StartWorkflow(
        wf.StartWorkflowRequest(
            workflow_name="t", workflow_id="t-queued", queue="tq", timeout=minute
        ),
        timeout=5,
    )
    batch = [wf.StartWorkflowRequest(workflow_name="t", workflow_id="t-batch", timeout=minute)]
    stub.StartWorkflows(wf.StartWorkflowsRequest(workflows=batch), timeout=5)
    for workflow_id in ("t-plain", "t-queued", "t-batch"):
        got = stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id=workflow_id), timeout=5).workflow
        assert got.HasField("deadline"), workflow_id


def _cancel(stub: wf_grpc.WorkflowServiceStub, workflow_id: str) -> None:
    stub.CancelWorkflow(wf.CancelWorkflowRequest(workflow_id=workflow_id), timeout=10)


def test_await_workflows_streams_each_finished_workflow_once_until_the_timeout(stub) -> None:
    for workflow_id in ("many-1", "many-2", "many-3"):
        _start(stub, "nobody_hosts_me", workflow_id)
    _cancel(stub, "many-2")  # finished before the call: sent first
    call = stub.AwaitWorkflows(
        wf.AwaitWorkflowsRequest(
            workflow_ids=["many-1", "many-2", "many-3", "many-2"], timeout={"seconds": 2}
        ),
        timeout=10,
    )
    first = next(call)
    assert [w.workflow_id for w in first.finished] == ["many-2"]
    assert first.finished[0].status == common.WORKFLOW_STATUS_CANCELLED
    _cancel(stub, "many-3")  # finishes while the call waits
    second = next(call)
    assert [w.workflow_id for w in second.finished] == ["many-3"]
    # many-1 never finishes: the stream ends at the timeout without it.
    assert list(call) == []


def test_await_workflows_refuses_bad_requests_naming_the_field(stub) -> None:
    _start(stub, "nobody_hosts_me", "known")
    cases = [
        (wf.AwaitWorkflowsRequest(), grpc.StatusCode.INVALID_ARGUMENT, "workflow_ids"),
        (
            wf.AwaitWorkflowsRequest(workflow_ids=[str(i) for i in range(10_001)]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "the limit is 10000",
        ),
        (
            wf.AwaitWorkflowsRequest(workflow_ids=["known", "known", ""]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "workflow_ids[2]",
        ),
        (
            wf.AwaitWorkflowsRequest(workflow_ids=["known", "nope"]),
            grpc.StatusCode.NOT_FOUND,
            "'nope' not found",
        ),
    ]
    for request, code, says in cases:
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.AwaitWorkflows(request, timeout=10))
        assert caught.value.code() == code
        assert says in caught.value.details()


def test_start_with_wait_answers_once_the_workflow_has_finished(stub) -> None:
    request = wf.StartWorkflowRequest(
        workflow_name="nobody_hosts_me", workflow_id="wait-1", wait={"seconds": 30}
    )
    call = stub.StartWorkflow.future(request, timeout=40)
    _until_started(stub, "wait-1", call)
    _cancel(stub, "wait-1")  # finishes while the call waits
    response = call.result(timeout=10)
    assert response.done and response.created
    assert response.workflow.status == common.WORKFLOW_STATUS_CANCELLED
    # Started again (the id is taken): finished already, answered at once.
    again = stub.StartWorkflow(request, timeout=5)
    assert again.done and not again.created
    assert again.workflow.status == common.WORKFLOW_STATUS_CANCELLED


def _until_started(stub: wf_grpc.WorkflowServiceStub, workflow_id: str, call: Any) -> None:
    """Waits until the waiting start ``call`` has created ``workflow_id``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert not call.done(), call.exception()  # still waiting, not failed
        try:
            stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id=workflow_id), timeout=5)
            return
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
        time.sleep(0.01)
    raise AssertionError(f"{workflow_id} was not started within 10 s")


def test_start_with_wait_awaits_the_duplicate_in_flight_it_returns(
    server: ThreadServer, stub
) -> None:
    from baton._proto.baton.v1 import queue_service_pb2 as q
    from baton._proto.baton.v1 import queue_service_pb2_grpc as q_grpc

    with grpc.insecure_channel(server.target) as channel:
        queues = q_grpc.QueueServiceStub(channel)
        queues.UpsertQueue(q.UpsertQueueRequest(queue=q.Queue(name="dq")), timeout=5)
    first = wf.StartWorkflowRequest(
        workflow_name="nobody_hosts_me", workflow_id="dup-1", queue="dq", deduplication_id="d"
    )
    stub.StartWorkflow(first, timeout=5)
    second = wf.StartWorkflowRequest(
        workflow_name="nobody_hosts_me",
        workflow_id="dup-2",
        queue="dq",
        deduplication_id="d",
        return_existing_duplicate=True,
        wait={"nanos": 300_000_000},
    )
    began = time.monotonic()
    response = stub.StartWorkflow(second, timeout=10)
    # The one in flight came back and was awaited for the whole wait.
    assert time.monotonic() - began >= 0.3
    assert response.workflow.workflow_id == "dup-1" and not response.created
    assert not response.done and response.workflow.status == common.WORKFLOW_STATUS_ENQUEUED
    _cancel(stub, "dup-1")
    finished = stub.StartWorkflow(first, timeout=10)  # its own id, finished: no wait needed
    assert finished.done and not finished.created


def test_start_with_wait_returns_the_unfinished_workflow_when_the_wait_passes(stub) -> None:
    response = stub.StartWorkflow(
        wf.StartWorkflowRequest(workflow_name="nobody_hosts_me", wait={"nanos": 200_000_000}),
        timeout=5,
    )
    assert not response.done and response.created
    assert response.workflow.workflow_id  # the server chose one before watching it
    assert response.workflow.status == common.WORKFLOW_STATUS_ENQUEUED
    without = _start(stub, "nobody_hosts_me", "no-wait")
    assert not without.done and without.created


def test_start_with_a_bad_wait_is_invalid_argument_and_starts_nothing(stub) -> None:
    caller = common.WorkflowContext(workflow_id="parent", function_id=1, attempt=1)
    cases = [
        ({"seconds": -1}, None, "wait: must not be negative"),
        ({"seconds": 3601}, None, "the limit is 3600 s"),
        ({"seconds": 1}, caller, "wait: is not for a child"),
    ]
    for index, (wait, by, says) in enumerate(cases):
        request = wf.StartWorkflowRequest(
            workflow_name="nobody_hosts_me", workflow_id=f"bad-wait-{index}", wait=wait, caller=by
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartWorkflow(request, timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert says in caught.value.details()
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id=f"bad-wait-{index}"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    batch = stub.StartWorkflows(
        wf.StartWorkflowsRequest(
            workflows=[
                wf.StartWorkflowRequest(workflow_name="nobody_hosts_me", wait={"seconds": 1}),
                wf.StartWorkflowRequest(workflow_name="nobody_hosts_me", workflow_id="batch-ok"),
            ]
        ),
        timeout=5,
    )
    refused, started = batch.results
    assert refused.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "workflows[0].wait: is for StartWorkflow" in refused.error.message
    assert started.started.workflow.workflow_id == "batch-ok" and not started.started.done
    _cancel(stub, "batch-ok")
    again = stub.StartWorkflows(
        wf.StartWorkflowsRequest(
            workflows=[
                wf.StartWorkflowRequest(workflow_name="nobody_hosts_me", workflow_id="batch-ok")
            ]
        ),
        timeout=5,
    )
    assert again.results[0].started.done  # finished already


@pytest.mark.parametrize(
    ("method", "body", "why"),
    [
        ("WorkflowService/StartWorkflow", b"\x0a\x03\xff\xfeA", "String field had bad UTF-8"),
        ("WorkflowService/StartWorkflow", b"\x0a\x05ab", "Wire format was corrupt"),
        ("WorkflowService/WatchWorkflow", b"\xff\xff\xff", "Wire format was corrupt"),
        ("WorkerService/Connect", b"\x0a\x02\xff\xfe", "Wire format was corrupt"),
    ],
)
def test_a_request_that_does_not_parse_is_invalid_argument_and_the_server_serves_on(
    server: ThreadServer, stub, caplog: pytest.LogCaptureFixture, method: str, body: bytes, why: str
) -> None:
    # Raw bytes, as a client in another language with a bug might send them.
    with grpc.insecure_channel(server.target) as channel:
        path = f"/baton.v1.{method}"
        if method.endswith("Connect"):
            call = channel.stream_stream(path)
            with pytest.raises(grpc.RpcError) as caught:
                list(call(iter([body]), timeout=10))
        elif method.endswith("WatchWorkflow"):
            with pytest.raises(grpc.RpcError) as caught:
                list(channel.unary_stream(path)(body, timeout=10))
        else:
            with pytest.raises(grpc.RpcError) as caught:
                channel.unary_unary(path)(body, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message_type = {
        "StartWorkflow": "StartWorkflowRequest",
        "WatchWorkflow": "WatchWorkflowRequest",
    }
    expected = message_type.get(method.rpartition("/")[2], "ConnectRequest")
    assert (
        caught.value.details() == f"the request is not a valid baton.v1.{expected} message: {why}"
    )
    assert details(caught.value)[0] == "MALFORMED_REQUEST"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert _start(stub, "checkout", "after-garbage").created
