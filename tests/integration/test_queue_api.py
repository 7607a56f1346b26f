"""QueueService and the queue options of StartWorkflow(s) over raw gRPC:
configuration, counts, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import queue_service_pb2 as qs
from baton._proto.baton.v1 import queue_service_pb2_grpc as qs_grpc
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from baton._proto.baton.v1 import workflow_service_pb2_grpc as wf_grpc
from tests.conftest import ThreadServer
from tests.grpc_helpers import details


@pytest.fixture
def stubs(
    server: ThreadServer,
) -> Iterator[tuple[qs_grpc.QueueServiceStub, wf_grpc.WorkflowServiceStub]]:
    with grpc.insecure_channel(server.target) as channel:
        yield qs_grpc.QueueServiceStub(channel), wf_grpc.WorkflowServiceStub(channel)


def _item(name: str = "job", **options: object) -> wf.StartWorkflowRequest:
    return wf.StartWorkflowRequest(
        workflow_name=name,
        input=common.Payload(json="[]"),
        **options,  # type: ignore[arg-type]
    )


def test_get_queue_reports_the_config_and_the_waiting_depth(stubs) -> None:
    queues, workflows = stubs
    queue = qs.Queue(
        name="emails", concurrency=3, worker_concurrency=1, priority_enabled=True,
        rate_limit=qs.RateLimit(limit=10, period=Duration(seconds=2)),
        start_to_close_timeout=Duration(seconds=30),
    )  # fmt: skip
    stored = queues.UpsertQueue(qs.UpsertQueueRequest(queue=queue), timeout=10).queue
    assert stored == queue
    for index in range(4):
        workflows.StartWorkflow(_item(queue="emails", workflow_id=f"e{index}"), timeout=10)
    got = queues.GetQueue(qs.GetQueueRequest(name="emails"), timeout=10)
    assert (got.queue, got.depth, got.running) == (queue, 4, 0)


def test_queue_list_pages_by_name(stubs) -> None:
    queues, _ = stubs
    for name in ["c", "a", "b"]:
        queues.UpsertQueue(qs.UpsertQueueRequest(queue=qs.Queue(name=name)), timeout=10)
    first = queues.ListQueues(qs.ListQueuesRequest(page_size=2), timeout=10)
    rest = queues.ListQueues(
        qs.ListQueuesRequest(page_size=2, page_token=first.next_page_token), timeout=10
    )
    assert [q.queue.name for q in first.queues] == ["a", "b"]
    assert [q.queue.name for q in rest.queues] == ["c"] and not rest.next_page_token


@pytest.mark.parametrize(
    ("queue", "field"),
    [
        (qs.Queue(name="q", concurrency=-1), "queue.concurrency"),
        (qs.Queue(name="q", worker_concurrency=-2), "queue.worker_concurrency"),
        (qs.Queue(name="q", rate_limit=qs.RateLimit(limit=5)), "queue.rate_limit.period"),
        (
            qs.Queue(name="q", rate_limit=qs.RateLimit(limit=0, period=Duration(seconds=1))),
            "queue.rate_limit.limit",
        ),
        (qs.Queue(name="q", partitioned=True), "queue.concurrency"),
        (qs.Queue(name="1bad"), "queue.name"),
    ],
)
def test_invalid_queue_limits_are_refused_naming_the_field(stubs, queue, field) -> None:
    queues, _ = stubs
    with pytest.raises(grpc.RpcError) as caught:
        queues.UpsertQueue(qs.UpsertQueueRequest(queue=queue), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[1][0][0] == field


def test_starting_onto_an_unknown_queue_is_not_found(stubs) -> None:
    _, workflows = stubs
    with pytest.raises(grpc.RpcError) as caught:
        workflows.StartWorkflow(_item(queue="nowhere"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(caught.value)[0] == "QUEUE_NOT_FOUND"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"deduplication_id": "d"}, "deduplication_id"),
        ({"priority": 2}, "priority"),
        ({"queue": "plain", "priority": 2}, "priority"),
        ({"queue": "plain", "priority": -1}, "priority"),
        ({"queue": "plain", "partition_key": "k"}, "partition_key"),
        ({"queue": "parts"}, "partition_key"),
        ({"queue": "plain", "queue_timeout": Duration(seconds=-1)}, "queue_timeout"),
    ],
)
def test_queue_options_the_queue_does_not_allow_are_invalid(stubs, options, field) -> None:
    queues, workflows = stubs
    queues.UpsertQueue(qs.UpsertQueueRequest(queue=qs.Queue(name="plain")), timeout=10)
    parts = qs.Queue(name="parts", concurrency=1, partitioned=True)
    queues.UpsertQueue(qs.UpsertQueueRequest(queue=parts), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        workflows.StartWorkflow(_item(**options), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[1][0][0] == field


def test_a_queue_with_waiting_workflows_cannot_be_deleted(stubs) -> None:
    queues, workflows = stubs
    queues.UpsertQueue(qs.UpsertQueueRequest(queue=qs.Queue(name="busy")), timeout=10)
    workflows.StartWorkflow(_item(queue="busy"), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        queues.DeleteQueue(qs.DeleteQueueRequest(name="busy"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(caught.value)[0] == "QUEUE_NOT_EMPTY"
    queues.UpsertQueue(qs.UpsertQueueRequest(queue=qs.Queue(name="idle")), timeout=10)
    queues.DeleteQueue(qs.DeleteQueueRequest(name="idle"), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        queues.GetQueue(qs.GetQueueRequest(name="idle"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_batch_start_gives_each_item_its_own_result_in_order(stubs) -> None:
    queues, workflows = stubs
    queues.UpsertQueue(qs.UpsertQueueRequest(queue=qs.Queue(name="bulk")), timeout=10)
    items = [
        _item(queue="bulk", workflow_id="b1", deduplication_id="same"),
        _item(queue="nowhere", workflow_id="b2"),
        _item(queue="bulk", workflow_id="b3", deduplication_id="same"),
        _item(workflow_id="b4"),
        _item(workflow_id="b1"),
        _item("other", workflow_id="b4"),
        _item(workflow_id="bad id!"),
    ]
    results = workflows.StartWorkflows(wf.StartWorkflowsRequest(workflows=items), timeout=10)
    kinds = [r.WhichOneof("result") for r in results.results]
    assert kinds == ["started", "error", "error", "started", "started", "error", "error"]
    started = [r.started for r in results.results if r.HasField("started")]
    assert [(s.workflow.workflow_id, s.created) for s in started] == [
        ("b1", True), ("b4", True), ("b1", False),
    ]  # fmt: skip
    errors = [r.error for r in results.results if r.HasField("error")]
    assert [(e.code, e.reason) for e in errors] == [
        (grpc.StatusCode.NOT_FOUND.value[0], "QUEUE_NOT_FOUND"),
        (grpc.StatusCode.ALREADY_EXISTS.value[0], "DUPLICATE_DEDUPLICATION_ID"),
        (grpc.StatusCode.ALREADY_EXISTS.value[0], "WORKFLOW_ID_CONFLICT"),
        (grpc.StatusCode.INVALID_ARGUMENT.value[0], "INVALID_ARGUMENT"),
    ]
    assert errors[0].message.startswith("workflows[1].")
