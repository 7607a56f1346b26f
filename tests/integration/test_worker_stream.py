"""The worker's Connect stream over raw gRPC: a start goes straight to a worker
with a free slot (eager dispatch); checkpoints sent on the stream are answered
after commit, idempotent, fenced, validated like the unary calls; and
checkpoints that arrive together are group-committed."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import cast

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2, status_pb2

from baton import Client, WorkflowStart, WorkflowStatus
from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import worker_service_pb2 as wk
from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from baton._proto.baton.v1 import workflow_service_pb2_grpc as wf_grpc
from baton_server.servicers.worker import WorkerService
from tests.conftest import ThreadServer, server_config, start_thread_server, wait_until

pytestmark = pytest.mark.timeout(60)


class _Stream:
    """A raw Connect stream whose requests the test sends one by one."""

    def __init__(
        self,
        target: str,
        workflow: str,
        slots: int = 1,
        *,
        dispatch_batches: bool = False,
        steps: tuple[str, ...] = (),
        step_slots: int | None = None,
        running_steps: tuple[str, ...] = (),
    ) -> None:
        self._requests: queue.Queue[wk.ConnectRequest | None] = queue.Queue()
        self._channel = grpc.insecure_channel(target)
        self._requests.put(
            wk.ConnectRequest(
                register=wk.RegisterWorker(
                    worker_id="raw-worker",
                    workflows=[wk.WorkflowRegistration(name=workflow)],
                    workflow_slots=slots,
                    dispatch_batches=dispatch_batches,
                    steps=[wk.StepRegistration(name=name) for name in steps],
                    step_slots=step_slots,
                    running_steps=running_steps,
                )
            )
        )
        self._responses = wk_grpc.WorkerServiceStub(self._channel).Connect(
            iter(self._requests.get, None), timeout=30
        )
        first = self.next()
        assert first.HasField("registered")
        self.registered = first.registered

    def next_run_step(self) -> wk.RunStep:
        """The next remote step pushed to this worker."""
        while True:
            response = self.next()
            if response.HasField("run_step"):
                return response.run_step

    def send(self, **message: object) -> None:
        self._requests.put(wk.ConnectRequest(**message))  # type: ignore[arg-type]

    def next(self) -> wk.ConnectResponse:
        response: wk.ConnectResponse = next(self._responses)
        return response

    def checkpoint(self, checkpoint: wk.Checkpoint) -> wk.Checkpointed:
        self.send(checkpoint=checkpoint)
        while True:
            response = self.next()
            if response.HasField("checkpointed"):
                assert response.checkpointed.id == checkpoint.id
                return response.checkpointed

    def answers(self, count: int) -> list[wk.Checkpointed]:
        """The next ``count`` checkpoint answers, single or batched."""
        answers: list[wk.Checkpointed] = []
        while len(answers) < count:
            response = self.next()
            if response.HasField("checkpointed_batch"):
                answers.extend(response.checkpointed_batch.answers)
            elif response.HasField("checkpointed"):
                answers.append(response.checkpointed)
        return answers

    def until_dispatched(self, count: int) -> tuple[list[wk.ConnectResponse], list[str]]:
        """The messages up to ``count`` dispatches, single or batched, and the
        workflow ids dispatched."""
        messages: list[wk.ConnectResponse] = []
        dispatched: list[str] = []
        while len(dispatched) < count:
            response = self.next()
            messages.append(response)
            if response.HasField("dispatch_batch"):
                dispatched.extend(d.workflow_id for d in response.dispatch_batch.dispatches)
            elif response.HasField("dispatch"):
                dispatched.append(response.dispatch.workflow_id)
        return messages, dispatched

    def close(self) -> None:
        self._requests.put(None)
        self._responses.cancel()
        self._channel.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def stream(server: ThreadServer) -> Iterator[_Stream]:
    opened = _Stream(server.target, "checkout")
    yield opened
    opened.close()


def _start(target: str, workflow_id: str, **options: object) -> wf.StartWorkflowResponse:
    with grpc.insecure_channel(target) as channel:
        response: wf.StartWorkflowResponse = wf_grpc.WorkflowServiceStub(channel).StartWorkflow(
            wf.StartWorkflowRequest(
                workflow_name="checkout",
                workflow_id=workflow_id,
                **options,  # type: ignore[arg-type]
            ),
            timeout=10,
        )
    return response


def test_a_start_goes_straight_to_a_worker_with_a_free_slot_and_waits_without_one(
    server: ThreadServer,
) -> None:
    stream = _Stream(server.target, "checkout", slots=1)
    try:
        eager = _start(server.target, "eager-1")
        # Created already dispatched: owned by the worker, no claim needed.
        assert eager.workflow.status == common.WORKFLOW_STATUS_PENDING
        assert eager.workflow.attempt == 1
        assert stream.next().dispatch.workflow_id == "eager-1"
        # The only slot is taken: the next start waits for one.
        waiting = _start(server.target, "eager-2")
        assert waiting.workflow.status == common.WORKFLOW_STATUS_ENQUEUED
        stream.send(slots=wk.GrantSlots(workflow_slots=1))
        assert stream.next().dispatch.workflow_id == "eager-2"
    finally:
        stream.close()


def test_a_start_pinned_to_another_app_version_is_not_dispatched_eagerly(
    server: ThreadServer,
) -> None:
    stream = _Stream(server.target, "checkout", slots=1)
    try:
        pinned = _start(server.target, "pinned-1", app_version="v9")
        assert pinned.workflow.status == common.WORKFLOW_STATUS_ENQUEUED
        eager = _start(server.target, "plain-1")
        assert eager.workflow.status == common.WORKFLOW_STATUS_PENDING
        assert stream.next().dispatch.workflow_id == "plain-1"
    finally:
        stream.close()


def _error(answer: wk.Checkpointed) -> tuple[int, str, list[str]]:
    """(code, ErrorInfo reason, BadRequest fields) of a refused checkpoint."""
    assert answer.WhichOneof("result") == "error"
    status = status_pb2.Status.FromString(answer.error)
    reason, fields = "", []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return status.code, reason, fields


def _step(workflow_id: str, attempt: int, function_id: int, value: str) -> wk.RecordStepRequest:
    return wk.RecordStepRequest(
        context=common.WorkflowContext(
            workflow_id=workflow_id, function_id=function_id, attempt=attempt
        ),
        step_name="pay",
        output=common.Payload(json=value),
    )


def test_a_step_and_a_completion_sent_on_the_stream_are_committed_before_they_are_answered(
    server: ThreadServer, stream: _Stream, database_url: str
) -> None:
    with Client(server.target) as client:
        client.start_workflow("checkout", workflow_id="order-1")
        dispatch = stream.next().dispatch
        assert dispatch.workflow_id == "order-1"
        attempt = dispatch.attempt

        answer = stream.checkpoint(
            wk.Checkpoint(id=1, record_step=_step("order-1", attempt, 1, '"paid"'))
        )
        assert not answer.record_step.already_recorded
        # Recorded as sent: the answer does not echo the step back.
        assert not answer.record_step.HasField("step")
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT step_name, output FROM steps WHERE workflow_id = 'order-1'"
            ).fetchone()
        assert row == ("pay", b'"paid"')

        # Sent again (the worker did not see the answer): the first record wins.
        again = stream.checkpoint(
            wk.Checkpoint(id=2, record_step=_step("order-1", attempt, 1, '"other"'))
        )
        assert again.record_step.already_recorded
        assert again.record_step.step.output.json == '"paid"'

        done = stream.checkpoint(
            wk.Checkpoint(
                id=3,
                complete_workflow=wk.CompleteWorkflowRequest(
                    workflow_id="order-1", attempt=attempt, output=common.Payload(json='"ok"')
                ),
            )
        )
        assert done.complete_workflow.status == common.WORKFLOW_STATUS_SUCCESS
        assert client.get_workflow("order-1").status == WorkflowStatus.SUCCESS
        assert client.get_workflow("order-1").output == "ok"

        # Completing twice is idempotent for the same attempt.
        twice = stream.checkpoint(
            wk.Checkpoint(
                id=4,
                complete_workflow=wk.CompleteWorkflowRequest(
                    workflow_id="order-1", attempt=attempt, output=common.Payload(json='"ok"')
                ),
            )
        )
        assert twice.complete_workflow.status == common.WORKFLOW_STATUS_SUCCESS


def test_a_checkpoint_on_the_stream_is_refused_with_the_status_the_unary_call_would_give(
    server: ThreadServer, stream: _Stream
) -> None:
    with Client(server.target) as client:
        client.start_workflow("checkout", workflow_id="order-2")
        attempt = stream.next().dispatch.attempt

        no_result = wk.RecordStepRequest(
            context=common.WorkflowContext(workflow_id="order-2", function_id=1, attempt=attempt),
            step_name="pay",
        )
        code, _, fields = _error(stream.checkpoint(wk.Checkpoint(id=1, record_step=no_result)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert fields == ["checkpoint.record_step.result"]

        code, _, fields = _error(stream.checkpoint(wk.Checkpoint(id=2)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert fields == ["checkpoint"]

        stale = _step("order-2", attempt - 1, 1, "1")
        code, reason, _ = _error(stream.checkpoint(wk.Checkpoint(id=3, record_step=stale)))
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION.value[0], "STALE_ATTEMPT")

        unknown = _step("no-such-workflow", 1, 1, "1")
        code, _, _ = _error(stream.checkpoint(wk.Checkpoint(id=4, record_step=unknown)))
        assert code == grpc.StatusCode.NOT_FOUND.value[0]

        not_json = _step("order-2", attempt, 1, "{'paid': true}")
        code, _, fields = _error(stream.checkpoint(wk.Checkpoint(id=5, record_step=not_json)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert fields == ["checkpoint.record_step.output"]

        # The stream and the workflow are unharmed: a good checkpoint still lands.
        good = stream.checkpoint(wk.Checkpoint(id=6, record_step=_step("order-2", attempt, 1, "1")))
        assert good.WhichOneof("result") == "record_step"
        assert not good.record_step.already_recorded


def test_checkpoints_that_arrive_together_share_transactions(
    server: ThreadServer, database_url: str
) -> None:
    count = 100
    stream = _Stream(server.target, "checkout", slots=count)
    try:
        with Client(server.target) as client:
            client.start_workflows([WorkflowStart("checkout") for _ in range(count)])
        dispatched = [stream.next().dispatch for _ in range(count)]
        batches = server.running.metrics.checkpoint_batch
        before = _histogram_count(batches)
        checkpoints = [
            wk.Checkpoint(
                id=index + 1, record_step=_step(dispatch.workflow_id, dispatch.attempt, 1, "1")
            )
            for index, dispatch in enumerate(dispatched)
        ]
        # Half one by one, half in one message: all are answered, one by one or in batches.
        for checkpoint in checkpoints[: count // 2]:
            stream.send(checkpoint=checkpoint)
        stream.send(checkpoints=wk.CheckpointBatch(checkpoints=checkpoints[count // 2 :]))
        answers = stream.answers(count)
    finally:
        stream.close()
    assert sorted(a.id for a in answers) == list(range(1, count + 1))
    assert all(a.HasField("record_step") for a in answers)
    with psycopg.connect(database_url) as conn:
        (recorded,) = conn.execute("SELECT count(*) FROM steps").fetchone()  # type: ignore[misc]
    assert recorded == count
    transactions = _histogram_count(batches) - before
    assert 1 <= transactions < count, f"{count} checkpoints took {transactions} transactions"


def _histogram_count(histogram: object) -> float:
    for metric in histogram.collect():  # type: ignore[attr-defined]
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return float(sample.value)
    return 0.0


def _completion(workflow_id: str, attempt: int, follows_step: int) -> wk.CompleteWorkflowRequest:
    return wk.CompleteWorkflowRequest(
        workflow_id=workflow_id,
        attempt=attempt,
        output=common.Payload(json='"shipped"'),
        follows_step=follows_step,
    )


def test_a_completion_that_follows_a_step_waits_for_that_step(
    server: ThreadServer, stream: _Stream
) -> None:
    with Client(server.target) as client:
        handle = client.start_workflow("checkout", workflow_id="order-3")
        attempt = stream.next().dispatch.attempt

        # Ahead of its step: refused as retryable, and nothing is written.
        early = _completion("order-3", attempt, follows_step=1)
        code, reason, _ = _error(stream.checkpoint(wk.Checkpoint(id=1, complete_workflow=early)))
        assert (code, reason) == (grpc.StatusCode.ABORTED.value[0], "STEP_NOT_RECORDED")
        assert handle.status() == WorkflowStatus.PENDING
        with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as unary:
            wk_grpc.WorkerServiceStub(channel).CompleteWorkflow(early, timeout=10)
        assert unary.value.code() == grpc.StatusCode.ABORTED
        assert "step 1, which the completion follows, is not recorded" in unary.value.details()

        # The step and the completion back to back, in one message: both land.
        together = wk.CheckpointBatch(
            checkpoints=[
                wk.Checkpoint(id=2, record_step=_step("order-3", attempt, 1, '"paid"')),
                wk.Checkpoint(id=3, complete_workflow=early),
            ]
        )
        stream.send(checkpoints=together)
        by_id = {answer.id: answer for answer in stream.answers(2)}
        assert by_id[2].HasField("record_step")
        assert by_id[3].complete_workflow.status == common.WORKFLOW_STATUS_SUCCESS
        assert handle.result(timeout=10) == "shipped"
        assert [step.name for step in client.list_steps("order-3")] == ["pay"]


def test_a_last_step_and_its_completion_sent_together_commit_as_one(
    server: ThreadServer, stream: _Stream, database_url: str
) -> None:
    """The worker's usual end (its last step and the completion that follows it,
    in one message) is one statement: one transaction writes both rows. A
    retried, a stale and a cancelled pair are each answered as the two would be
    alone."""
    with Client(server.target) as client:
        handle = client.start_workflow("checkout", workflow_id="order-8")
        attempt = stream.next().dispatch.attempt

        def pair(
            first_id: int, attempt: int, workflow_id: str = "order-8"
        ) -> dict[int, wk.Checkpointed]:
            together = wk.CheckpointBatch(
                checkpoints=[
                    wk.Checkpoint(
                        id=first_id, record_step=_step(workflow_id, attempt, 1, '"paid"')
                    ),
                    wk.Checkpoint(
                        id=first_id + 1,
                        complete_workflow=_completion(workflow_id, attempt, follows_step=1),
                    ),
                ]
            )
            stream.send(checkpoints=together)
            return {answer.id: answer for answer in stream.answers(2)}

        # A newer attempt's pair is refused, both parts, and writes nothing.
        stale = pair(1, attempt + 1)
        assert (
            _error(stale[1])[0]
            == _error(stale[2])[0]
            == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        )
        assert handle.status() == WorkflowStatus.PENDING

        landed = pair(3, attempt)
        assert landed[3].WhichOneof("result") == "record_step"
        assert not landed[3].record_step.already_recorded
        assert landed[4].complete_workflow.status == common.WORKFLOW_STATUS_SUCCESS
        assert handle.result(timeout=10) == "shipped"

        # Sent again (its answers lost): the workflow has finished, and each part
        # is answered as it would be alone.
        again = pair(5, attempt)
        assert again[6].complete_workflow.status == common.WORKFLOW_STATUS_SUCCESS
        alone = stream.checkpoint(
            wk.Checkpoint(id=7, record_step=_step("order-8", attempt, 1, '"paid"'))
        )
        assert _error(again[5]) == _error(alone)

        # A cancelled workflow's pair is refused as cancelled, both parts.
        stream.send(slots=wk.GrantSlots(workflow_slots=1))  # order-8's slot, given back
        cancelled = client.start_workflow("checkout", workflow_id="order-9")
        attempt = stream.next().dispatch.attempt
        cancelled.cancel()
        refused = pair(8, attempt, workflow_id="order-9")
        assert _error(refused[8])[1] == _error(refused[9])[1] == "WORKFLOW_CANCELLED"
        assert cancelled.status() == WorkflowStatus.CANCELLED

    with psycopg.connect(database_url) as conn:
        step_xid, workflow_xid = conn.execute(
            "SELECT (SELECT xmin::text FROM steps WHERE workflow_id = 'order-8'),"
            " (SELECT xmin::text FROM workflows WHERE workflow_id = 'order-8')"
        ).fetchone()  # type: ignore[misc]
    assert step_xid == workflow_xid, "the step and the completion took two transactions"


def test_the_service_says_it_honours_follows_step(stream: _Stream) -> None:
    assert stream.registered.completion_follows_step


def test_slots_granted_with_checkpoints_free_the_slot_once_they_are_taken_in(
    server: ThreadServer,
) -> None:
    """A worker's end of a workflow in one message: the last step, the
    completion and the slot, which the service uses for the next start."""
    stream = _Stream(server.target, "checkout", slots=1)
    try:
        assert stream.registered.slots_with_checkpoints
        attempt = _start(server.target, "ride-1").workflow.attempt
        assert stream.next().dispatch.workflow_id == "ride-1"
        assert _start(server.target, "ride-2").workflow.status == common.WORKFLOW_STATUS_ENQUEUED
        end = wk.CheckpointBatch(
            checkpoints=[
                wk.Checkpoint(id=1, record_step=_step("ride-1", attempt, 1, '"paid"')),
                wk.Checkpoint(
                    id=2, complete_workflow=_completion("ride-1", attempt, follows_step=1)
                ),
            ],
            workflow_slots=1,
        )
        stream.send(checkpoints=end)
        answers, dispatched = [], ""
        while not (len(answers) == 2 and dispatched):
            response = stream.next()
            if response.HasField("checkpointed_batch"):
                answers.extend(response.checkpointed_batch.answers)
            elif response.HasField("checkpointed"):
                answers.append(response.checkpointed)
            elif response.HasField("dispatch"):
                dispatched = response.dispatch.workflow_id
        assert dispatched == "ride-2"
        assert answers[1].complete_workflow.status == common.WORKFLOW_STATUS_SUCCESS
    finally:
        stream.close()


def test_a_negative_follows_step_is_refused_naming_the_field(
    server: ThreadServer, stream: _Stream
) -> None:
    with Client(server.target) as client:
        client.start_workflow("checkout", workflow_id="order-4")
        attempt = stream.next().dispatch.attempt
        bad = _completion("order-4", attempt, follows_step=-1)
        code, _, fields = _error(stream.checkpoint(wk.Checkpoint(id=1, complete_workflow=bad)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert fields == ["checkpoint.complete_workflow.follows_step"]


@pytest.mark.parametrize("batches", [True, False])
def test_dispatches_ready_together_share_a_message_for_a_worker_that_takes_batches(
    server: ThreadServer, batches: bool
) -> None:
    count = 50
    stream = _Stream(server.target, "checkout", slots=count, dispatch_batches=batches)
    try:
        with Client(server.target) as client:
            client.start_workflows([WorkflowStart("checkout") for _ in range(count)])
        messages, dispatched = stream.until_dispatched(count)
        kinds = [message.WhichOneof("message") for message in messages]
    finally:
        stream.close()
    assert len(set(dispatched)) == count
    if batches:
        assert "dispatch_batch" in kinds and len(kinds) < count
    else:
        assert set(kinds) == {"dispatch"}  # a worker that did not ask gets one per message


def test_a_dispatch_batch_stays_within_half_the_message_limit(database_url: str) -> None:
    small = start_thread_server(
        server_config(database_url, max_message_bytes=64 * 1024, max_payload_bytes=16 * 1024)
    )
    count = 12
    stream = _Stream(small.target, "checkout", slots=0, dispatch_batches=True)
    try:
        with Client(small.target) as client:
            for _ in range(count // 3):  # a start request must fit too
                client.start_workflows([WorkflowStart("checkout", ("x" * 10_000,))] * 3)
        stream.send(slots=wk.GrantSlots(workflow_slots=count))  # all ready at once
        messages, dispatched = stream.until_dispatched(count)
        sizes = [message.ByteSize() for message in messages]
    finally:
        stream.close()
        small.stop()
    assert len(dispatched) == count
    assert len(sizes) > 1 and max(sizes) <= 32 * 1024 + 64


def test_a_dispatch_taken_for_the_next_message_goes_back_when_the_stream_ends_first(
    database_url: str,
) -> None:
    """Two dispatches too large to share a message: the stream sends the first
    and holds the second for its next message. The stream ends before that
    message: the second workflow is given back at once (another worker gets
    it), like a dispatch still queued, not held until its lease runs out.

    The stream's handler is driven on the server's loop, as grpc drives it:
    over a socket, when a stream breaks between two messages cannot be chosen.
    """
    small = start_thread_server(
        server_config(
            database_url,
            lease_seconds=60,  # outlasts the test: only the give-back frees it
            max_message_bytes=48 * 1024,  # dispatches of up to 24 KiB together
            max_payload_bytes=16 * 1024,
        )
    )
    register = wk.ConnectRequest(
        register=wk.RegisterWorker(
            worker_id="held-worker",
            workflows=[wk.WorkflowRegistration(name="checkout")],
            workflow_slots=2,
            dispatch_batches=True,
        )
    )

    async def requests() -> AsyncIterator[wk.ConnectRequest]:
        yield register
        await asyncio.Event().wait()  # the worker says nothing more

    async def open_stream() -> AsyncGenerator[wk.ConnectResponse, None]:
        service = WorkerService(small.running.engine, small.running.config)
        responses = service.Connect(requests(), None)
        assert (await anext(responses)).HasField("registered")
        return cast(AsyncGenerator[wk.ConnectResponse, None], responses)

    responses = small.call(open_stream())
    try:
        big = common.Payload(json=json.dumps(["x" * 15_000]))
        for workflow_id in ("sent", "taken"):  # each goes straight to the worker
            assert _start(small.target, workflow_id, input=big).workflow.attempt == 1
        first = small.call(anext(responses))
        assert first.dispatch.workflow_id == "sent"  # alone: "taken" did not fit
        small.call(responses.aclose())  # the stream ends before its next message
        with Client(small.target) as client:
            assert client.get_workflow("sent").status is WorkflowStatus.PENDING  # as sent
            assert client.get_workflow("taken").status is WorkflowStatus.ENQUEUED
        with _Stream(small.target, "checkout") as other:
            assert other.next().dispatch.workflow_id == "taken"
    finally:
        small.call(responses.aclose())  # nothing left to do when closed above
        small.stop()


def _tasks(database_url: str) -> dict[str, int]:
    """Remote-step tasks by status."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM remote_step_tasks GROUP BY status"
        ).fetchall()
    return {status: count for status, count in rows}


@contextmanager
def _remote_calls(target: str, database_url: str, count: int) -> Iterator[None]:
    """``count`` workflows running under attempt 1 (``caller-<i>``), each
    calling step ``resize`` remotely, for the block's length: the service holds
    the calls until the step is recorded; what is left of them is cancelled
    at the end."""
    for index in range(count):
        _start(target, f"caller-{index}")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE workflows SET status = 'PENDING', attempt = 1")
    with grpc.insecure_channel(target) as channel:
        calls = [
            wk_grpc.WorkerServiceStub(channel).CallStep.future(
                wk.CallStepRequest(
                    context=common.WorkflowContext(
                        workflow_id=f"caller-{index}", function_id=1, attempt=1
                    ),
                    step_name="resize",
                    input=common.Payload(json="[1]"),
                ),
                timeout=30,
            )
            for index in range(count)
        ]
        try:
            wait_until(lambda: _tasks(database_url) == {"WAITING": count}, 20, "the calls' tasks")
            yield
        finally:
            for call in calls:
                call.cancel()


def _complete(target: str, task_id: str) -> None:
    """Reports a pushed step done (CompleteStep), with a result."""
    with grpc.insecure_channel(target) as channel:
        wk_grpc.WorkerServiceStub(channel).CompleteStep(
            wk.CompleteStepRequest(task_id=task_id, output=common.Payload(json="2")), timeout=10
        )


@pytest.fixture
def patient_server(database_url: str) -> Iterator[ThreadServer]:
    """A server whose leases outlast the test: callers marked running by hand
    and a raw stream that sends no heartbeat keep what they have."""
    server = start_thread_server(server_config(database_url, lease_seconds=30))
    yield server
    server.stop()


def test_a_worker_is_pushed_no_more_remote_steps_than_its_step_slots(
    patient_server: ThreadServer, database_url: str
) -> None:
    # Five calls of a step the raw worker hosts with two step slots: two are
    # pushed; a slot granted back lets one more through, never a third at once.
    with (
        _remote_calls(patient_server.target, database_url, 5),
        _Stream(
            patient_server.target, "nobody_hosts_this", steps=("resize",), step_slots=2
        ) as stream,
    ):
        first = [stream.next_run_step() for _ in range(2)]
        assert _tasks(database_url) == {"RUNNING": 2, "WAITING": 3}
        _complete(patient_server.target, first[0].task_id)
        stream.send(slots=wk.GrantSlots(step_slots=1))
        third = stream.next_run_step()
        assert third.task_id not in {run.task_id for run in first}
        assert _tasks(database_url) == {"RUNNING": 2, "WAITING": 2}


def test_a_remote_step_whose_caller_was_cancelled_meanwhile_is_not_run_again(
    patient_server: ThreadServer, database_url: str
) -> None:
    with (
        _remote_calls(patient_server.target, database_url, 1),
        _Stream(
            patient_server.target, "nobody_hosts_this", steps=("resize",), step_slots=1
        ) as stream,
    ):
        pushed = stream.next_run_step()
        with grpc.insecure_channel(patient_server.target) as channel:
            wf_grpc.WorkflowServiceStub(channel).CancelWorkflow(
                wf.CancelWorkflowRequest(workflow_id="caller-0"), timeout=10
            )
        _complete(patient_server.target, pushed.task_id)
        assert _tasks(database_url) == {}  # ended, not put back to run again
        with psycopg.connect(database_url) as conn:
            recorded = conn.execute("SELECT count(*) FROM steps").fetchone()
        assert recorded == (0,)


def test_a_remote_step_lost_with_a_broken_stream_is_pushed_again_when_its_worker_reconnects(
    patient_server: ThreadServer, database_url: str
) -> None:
    target = patient_server.target
    with _remote_calls(target, database_url, 1):
        # Closed before the worker ran it.
        with _Stream(target, "nobody_hosts_this", steps=("resize",), step_slots=1) as first:
            pushed = first.next_run_step()
        # Back without it: it was lost with the stream, so it comes again.
        with _Stream(target, "nobody_hosts_this", steps=("resize",), step_slots=1) as second:
            assert second.next_run_step().task_id == pushed.task_id
        # Back while running it: it stays with the worker.
        with _Stream(
            target, "nobody_hosts_this", steps=("resize",), step_slots=0,
            running_steps=(pushed.task_id,),
        ):  # fmt: skip
            assert _tasks(database_url) == {"RUNNING": 1}


def test_a_message_that_does_not_parse_after_registering_ends_the_stream_as_invalid_argument(
    server: ThreadServer,
) -> None:
    register = wk.ConnectRequest(
        register=wk.RegisterWorker(worker_id="garbled", workflows=[{"name": "checkout"}])
    )
    with grpc.insecure_channel(server.target) as channel:
        call = channel.stream_stream("/baton.v1.WorkerService/Connect")
        responses = call(iter([register.SerializeToString(), b"\x12\x02\xff\xfe"]), timeout=10)
        first = wk.ConnectResponse.FromString(next(responses))
        assert first.HasField("registered")
        with pytest.raises(grpc.RpcError) as caught:
            next(responses)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(
        "the request is not a valid baton.v1.ConnectRequest message"
    )
