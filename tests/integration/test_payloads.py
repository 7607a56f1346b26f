"""Payloads as a caller meets them over raw gRPC: JSON that is not JSON, or
arguments that are not an array, are refused at the call that sends them,
naming the field, and nothing is written; pickles pass unread."""

from __future__ import annotations

import grpc
import psycopg
import pytest

from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import event_service_pb2 as ev
from baton._proto.baton.v1 import message_service_pb2 as msg
from baton._proto.baton.v1 import stream_service_pb2 as st
from baton._proto.baton.v1 import worker_service_pb2 as wk
from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from tests.conftest import ThreadServer
from tests.grpc_helpers import details
from tests.integration.conftest import Stubs, ctx, running

MALFORMED = [
    ("{", "is not valid JSON: Input data was truncated"),
    ("[1,]", "is not valid JSON: JSON is malformed: trailing comma in array (byte 3)"),
    ("NaN", "is not valid JSON: JSON is malformed: invalid character (byte 0)"),
    ("Infinity", "is not valid JSON"),
    ('{"id": 7', "is not valid JSON"),
    ("[1] [2]", "is not valid JSON: JSON is malformed: trailing characters (byte 5)"),
    ("'single'", "is not valid JSON"),
    ('["\\ud800"]', "(a lone UTF-16 surrogate escape?)"),
    ("", "is empty, which is not JSON (leave the Payload unset: no value)"),
    ("[" * 5000, "is not valid JSON"),
]


def _refused(call, field: str) -> str:
    """Runs ``call``, which must be refused as INVALID_ARGUMENT naming ``field``;
    returns the status message."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert [f for f, _ in details(caught.value)[1]] == [field]
    return str(caught.value.details())


@pytest.mark.parametrize(("text", "why"), MALFORMED)
def test_a_start_whose_input_is_not_json_is_refused_and_nothing_is_written(
    stubs: Stubs, text: str, why: str
) -> None:
    start = wf.StartWorkflowRequest(
        workflow_name="checkout", workflow_id="bad-input", input=common.Payload(json=text)
    )
    message = _refused(lambda: stubs.workflows.StartWorkflow(start, timeout=10), "input")
    assert message.startswith("input: is ") and why in message
    with pytest.raises(grpc.RpcError) as missing:
        stubs.workflows.GetWorkflow(wf.GetWorkflowRequest(workflow_id="bad-input"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("text", ['{"id": 7}', "7", '"order"', "null", "  true"])
def test_a_start_whose_input_is_not_an_array_of_arguments_is_refused(
    stubs: Stubs, text: str
) -> None:
    start = wf.StartWorkflowRequest(workflow_name="checkout", input=common.Payload(json=text))
    message = _refused(lambda: stubs.workflows.StartWorkflow(start, timeout=10), "input")
    assert "must be a JSON array of positional arguments" in message


@pytest.mark.parametrize("text", ["[]", ' [{"id": 7}, "a", 1.5e3, null] ', '["\\u00e9t\\u00e9"]'])
def test_a_start_with_an_array_of_arguments_or_none_is_accepted(stubs: Stubs, text: str) -> None:
    start = wf.StartWorkflowRequest(workflow_name="checkout", input=common.Payload(json=text))
    assert stubs.workflows.StartWorkflow(start, timeout=10).workflow.input.json == text
    empty = wf.StartWorkflowRequest(workflow_name="checkout")
    assert stubs.workflows.StartWorkflow(empty, timeout=10).created


def test_messages_events_and_stream_values_that_are_not_json_are_refused_and_not_recorded(
    stubs: Stubs, database_url: str
) -> None:
    running(stubs, database_url, "w")
    bad = common.Payload(json='{"total": }')
    calls = [
        (
            lambda: stubs.messages.Send(
                msg.SendRequest(destination_id="w", message=bad, context=ctx("w", 1)), timeout=10
            ),
            "message",
        ),
        (
            lambda: stubs.events.SetEvent(
                ev.SetEventRequest(context=ctx("w", 1), key="k", value=bad), timeout=10
            ),
            "value",
        ),
        (
            lambda: stubs.streams.WriteStream(
                st.WriteStreamRequest(context=ctx("w", 1), key="k", value=bad), timeout=10
            ),
            "value",
        ),
    ]
    for call, field in calls:
        assert "is not valid JSON: JSON is malformed" in _refused(call, field)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM steps WHERE workflow_id = 'w'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)

    # Any JSON value is a value; pickles are not read by the server.
    for step, value in enumerate([common.Payload(json=" 1 "), common.Payload(pickle=b"\x80no")]):
        set_event = ev.SetEventRequest(context=ctx("w", step + 1), key="k", value=value)
        stubs.events.SetEvent(set_event, timeout=10)


def test_step_results_and_remote_step_arguments_that_are_not_json_are_refused(
    server: ThreadServer,
) -> None:
    context = common.WorkflowContext(workflow_id="w", function_id=1, attempt=1)
    with grpc.insecure_channel(server.target) as channel:
        stub = wk_grpc.WorkerServiceStub(channel)
        calls = [
            (
                lambda: stub.RecordStep(
                    wk.RecordStepRequest(
                        context=context, step_name="pay", output=common.Payload(json="tru")
                    ),
                    timeout=10,
                ),
                "output",
            ),
            (
                lambda: stub.CompleteWorkflow(
                    wk.CompleteWorkflowRequest(
                        workflow_id="w",
                        attempt=1,
                        error=common.WorkflowError(
                            type="ValueError", details=common.Payload(json="{'a': 1}")
                        ),
                    ),
                    timeout=10,
                ),
                "error.details",
            ),
            (
                lambda: stub.CompleteStep(
                    wk.CompleteStepRequest(task_id="t", output=common.Payload(json="[1,]")),
                    timeout=10,
                ),
                "output",
            ),
            (
                lambda: stub.CallStep(
                    wk.CallStepRequest(
                        context=context, step_name="price", input=common.Payload(json='{"a": 1}')
                    ),
                    timeout=10,
                ),
                "input",
            ),
        ]
        for call, field in calls:
            _refused(call, field)
