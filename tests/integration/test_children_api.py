"""Child workflows as a caller meets them over raw gRPC: a child start is
recorded once in its parent's journal (a retried call returns the recorded
child), on a queue too, and a start refused for what it asked is recorded as
the step's outcome and refused again on a retry.

A parent is made "running under attempt 1" by marking its row directly, so
these tests need no worker.
"""

from __future__ import annotations

import json

import grpc
import psycopg
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from tests.conftest import ThreadServer
from tests.grpc_helpers import details
from tests.integration.conftest import Stubs, ctx, running


def test_a_child_start_is_recorded_once_and_the_child_inherits_from_its_parent(
    stubs: Stubs, database_url: str
) -> None:
    running(stubs, database_url, "mom")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE workflows SET app_version = 'v7', deadline = now() + interval '1 hour'"
            " WHERE workflow_id = 'mom'"
        )
    start = wf.StartWorkflowRequest(workflow_name="kid", caller=ctx("mom", 1))
    first = stubs.workflows.StartWorkflow(start, timeout=10)
    again = stubs.workflows.StartWorkflow(start, timeout=10)  # a retry or a replay
    batch = stubs.workflows.StartWorkflows(wf.StartWorkflowsRequest(workflows=[start]), timeout=10)
    child = first.workflow
    assert first.created and not again.created
    assert not batch.results[0].started.created
    assert child.workflow_id == "mom-1" == again.workflow.workflow_id
    assert child.parent_workflow_id == "mom"
    assert child.app_version == "v7"
    assert child.HasField("deadline")
    steps = stubs.workflows.ListWorkflowSteps(
        wf.ListWorkflowStepsRequest(workflow_id="mom"), timeout=10
    ).steps
    assert [(s.step_name, s.child_workflow_id) for s in steps] == [
        ("baton.start_workflow", "mom-1")
    ]
    stale = wf.StartWorkflowRequest(workflow_name="kid", caller=ctx("mom", 2, attempt=9))
    with pytest.raises(grpc.RpcError) as caught:
        stubs.workflows.StartWorkflow(stale, timeout=10)
    assert details(caught.value)[0] == "STALE_ATTEMPT"
    other = wf.StartWorkflowRequest(workflow_name="pup", workflow_id="mom-1", caller=ctx("mom", 2))
    with pytest.raises(grpc.RpcError) as caught:
        stubs.workflows.StartWorkflow(other, timeout=10)
    assert details(caught.value)[0] == "WORKFLOW_ID_CONFLICT"
    assert "named 'kid', not 'pup'" in caught.value.details()


def test_a_child_started_on_a_queue_waits_its_turn_and_is_recorded_once(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    from baton._proto.baton.v1 import queue_service_pb2 as q
    from baton._proto.baton.v1 import queue_service_pb2_grpc as q_grpc

    with grpc.insecure_channel(server.target) as channel:
        q_grpc.QueueServiceStub(channel).UpsertQueue(
            q.UpsertQueueRequest(queue=q.Queue(name="fanout", priority_enabled=True)), timeout=10
        )
    running(stubs, database_url, "boss")
    start = wf.StartWorkflowRequest(
        workflow_name="task", caller=ctx("boss", 1), queue="fanout", priority=3,
        deduplication_id="d1",
    )  # fmt: skip
    first = stubs.workflows.StartWorkflow(start, timeout=10)
    again = stubs.workflows.StartWorkflow(start, timeout=10)  # a retry or a replay
    assert first.created and not again.created
    child = first.workflow
    assert (child.workflow_id, child.parent_workflow_id) == ("boss-1", "boss")
    assert child.queue == "fanout"
    assert child.status == common.WORKFLOW_STATUS_ENQUEUED
    assert again.workflow.workflow_id == "boss-1"

    # The deduplication id is held by boss-1 while it is in flight: a second
    # child refused (the refusal recorded, see the next test), or given
    # boss-1 when it asks for it.
    dup = wf.StartWorkflowRequest(
        workflow_name="task", caller=ctx("boss", 2), queue="fanout", deduplication_id="d1"
    )
    with pytest.raises(grpc.RpcError) as caught:
        stubs.workflows.StartWorkflow(dup, timeout=10)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(caught.value)[0] == "DUPLICATE_DEDUPLICATION_ID"
    dup.caller.function_id = 5
    dup.return_existing_duplicate = True
    given = stubs.workflows.StartWorkflow(dup, timeout=10)
    assert (given.created, given.workflow.workflow_id) == (False, "boss-1")

    # A retry returns the recorded child even if the queue changed since.
    with grpc.insecure_channel(server.target) as channel:
        q_grpc.QueueServiceStub(channel).UpsertQueue(
            q.UpsertQueueRequest(queue=q.Queue(name="fanout")), timeout=10
        )  # priorities off: a first start with a priority would be refused
    retried = stubs.workflows.StartWorkflow(start, timeout=10)
    assert (retried.created, retried.workflow.workflow_id) == (False, "boss-1")

    # The queue's rules hold for a child as for any start.
    for request, code in (
        (wf.StartWorkflowRequest(workflow_name="task", caller=ctx("boss", 6), queue="nope"),
         grpc.StatusCode.NOT_FOUND),
        (wf.StartWorkflowRequest(workflow_name="task", caller=ctx("boss", 7), priority=1),
         grpc.StatusCode.INVALID_ARGUMENT),
        (wf.StartWorkflowRequest(workflow_name="task", caller=ctx("boss", 8), queue="fanout",
                                 partition_key="p"),
         grpc.StatusCode.INVALID_ARGUMENT),
    ):  # fmt: skip
        with pytest.raises(grpc.RpcError) as caught:
            stubs.workflows.StartWorkflow(request, timeout=10)
        assert caught.value.code() == code, request

    steps = stubs.workflows.ListWorkflowSteps(
        wf.ListWorkflowStepsRequest(workflow_id="boss"), timeout=10
    ).steps
    assert [(s.function_id, s.child_workflow_id, s.error.type) for s in steps] == [
        (1, "boss-1", ""),
        (2, "", "baton.AlreadyExists"),
        (5, "boss-1", ""),
        (6, "", "baton.NotFound"),
        # (7: a malformed request, refused before the queue is asked: not recorded)
        (8, "", "baton.InvalidArgument"),
    ]
    assert {s.step_name for s in steps} == {"baton.start_workflow"}
    with psycopg.connect(database_url) as conn:
        kids = conn.execute(
            "SELECT workflow_id, priority, deduplication_id FROM workflows"
            " WHERE parent_workflow_id = 'boss'"
        ).fetchall()
    assert kids == [("boss-1", 3, "d1")]
    stale = wf.StartWorkflowRequest(
        workflow_name="task", caller=ctx("boss", 4, attempt=9), queue="fanout"
    )
    with pytest.raises(grpc.RpcError) as caught:
        stubs.workflows.StartWorkflow(stale, timeout=10)
    assert details(caught.value)[0] == "STALE_ATTEMPT"
    with psycopg.connect(database_url) as conn:
        gone = conn.execute("SELECT 1 FROM workflows WHERE workflow_id = 'boss-4'").fetchone()
    assert gone is None  # the refused step took the child's start back with it
    # A stale attempt's refusal, even of a start the queue refuses, records nothing.
    stale.queue = "nope"
    with pytest.raises(grpc.RpcError) as caught:
        stubs.workflows.StartWorkflow(stale, timeout=10)
    assert details(caught.value)[0] == "STALE_ATTEMPT"
    assert (
        stubs.workflows.ListWorkflowSteps(
            wf.ListWorkflowStepsRequest(workflow_id="boss"), timeout=10
        )
        .steps[-1]
        .function_id
        == 8
    )


def test_a_refused_child_start_is_recorded_and_refused_again_once_it_would_succeed(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    # A parent that handles the refusal goes on; its replay must meet the same
    # refusal, not start the child because the deduplication id is free now.
    from baton._proto.baton.v1 import queue_service_pb2 as q
    from baton._proto.baton.v1 import queue_service_pb2_grpc as q_grpc

    with grpc.insecure_channel(server.target) as channel:
        q_grpc.QueueServiceStub(channel).UpsertQueue(
            q.UpsertQueueRequest(queue=q.Queue(name="once")), timeout=10
        )
    running(stubs, database_url, "boss")
    holder = wf.StartWorkflowRequest(
        workflow_name="task", workflow_id="holder", queue="once", deduplication_id="d"
    )
    stubs.workflows.StartWorkflow(holder, timeout=10)
    dup = wf.StartWorkflowRequest(
        workflow_name="task", caller=ctx("boss", 1), queue="once", deduplication_id="d"
    )
    late_queue = wf.StartWorkflowRequest(workflow_name="task", caller=ctx("boss", 2), queue="late")

    def refusal(request: wf.StartWorkflowRequest) -> tuple[object, ...]:
        """The call's code, message, ErrorInfo reason and metadata."""
        with pytest.raises(grpc.RpcError) as caught:
            stubs.workflows.StartWorkflow(request, timeout=10)
        status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        return status.code, status.message, info.reason, dict(info.metadata)

    refusals = [refusal(dup), refusal(late_queue)]
    assert refusals[0][0] == code_pb2.ALREADY_EXISTS
    assert refusals[0][2:] == ("DUPLICATE_DEDUPLICATION_ID", {
        "workflow_id": "holder", "queue": "once", "deduplication_id": "d"})  # fmt: skip
    assert refusals[1][0::2] == (code_pb2.NOT_FOUND, "QUEUE_NOT_FOUND")

    # What refused them is gone: the holder is cancelled, the queue exists.
    stubs.workflows.CancelWorkflow(wf.CancelWorkflowRequest(workflow_id="holder"), timeout=10)
    with grpc.insecure_channel(server.target) as channel:
        q_grpc.QueueServiceStub(channel).UpsertQueue(
            q.UpsertQueueRequest(queue=q.Queue(name="late")), timeout=10
        )
    assert [refusal(dup), refusal(late_queue)] == refusals
    with psycopg.connect(database_url) as conn:
        kids = conn.execute("SELECT 1 FROM workflows WHERE parent_workflow_id = 'boss'").fetchall()
    assert kids == []
    # A later step of the same workflow starts it: the refusal was the step's.
    dup.caller.function_id = 3
    started = stubs.workflows.StartWorkflow(dup, timeout=10)
    assert (started.created, started.workflow.workflow_id) == (True, "boss-3")

    steps = stubs.workflows.ListWorkflowSteps(
        wf.ListWorkflowStepsRequest(workflow_id="boss"), timeout=10
    ).steps
    first = steps[0]
    assert (first.step_name, first.child_workflow_id) == ("baton.start_workflow", "")
    assert first.error.type == "baton.AlreadyExists"
    assert first.error.message == refusals[0][1]
    assert json.loads(first.error.details.json) == {
        "code": "ALREADY_EXISTS",
        "reason": "DUPLICATE_DEDUPLICATION_ID",
        "metadata": {"workflow_id": "holder", "queue": "once", "deduplication_id": "d"},
        "field_violations": [],
    }
    assert steps[1].error.type == "baton.NotFound"
