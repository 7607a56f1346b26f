"""The server serves the whole contract: every RPC answers, and those of later
releases say UNIMPLEMENTED with the capability named; health says SERVING."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc

from baton._proto.baton.v1 import (  # noqa: F401  (registers the descriptors)
    event_service_pb2,
    message_service_pb2,
    queue_service_pb2,
    schedule_service_pb2,
    stream_service_pb2,
    worker_service_pb2,
    workflow_service_pb2,
)
from tests.conftest import ThreadServer

IMPLEMENTED = {
    "baton.v1.WorkflowService": {
        "StartWorkflow", "StartWorkflows", "GetWorkflow", "AwaitWorkflow", "WatchWorkflow",
        "ListWorkflows", "ListWorkflowSteps", "CancelWorkflow", "ResumeWorkflow", "ForkWorkflow",
        "DeleteWorkflow",
    },
    "baton.v1.WorkerService": {"Connect", "RecordStep", "CompleteWorkflow"},
    "baton.v1.QueueService": {"UpsertQueue", "GetQueue", "ListQueues", "DeleteQueue"},
    "baton.v1.ScheduleService": {
        "CreateSchedule", "GetSchedule", "ListSchedules", "PauseSchedule", "ResumeSchedule",
        "DeleteSchedule", "TriggerSchedule", "BackfillSchedule",
    },
}  # fmt: skip
SERVICES = [
    "baton.v1.WorkflowService", "baton.v1.WorkerService", "baton.v1.QueueService",
    "baton.v1.MessageService", "baton.v1.EventService", "baton.v1.StreamService",
    "baton.v1.ScheduleService",
]  # fmt: skip


def _methods() -> list[tuple[str, object]]:
    pool = descriptor_pool.Default()
    return [
        (service, method)
        for service in SERVICES
        for method in pool.FindServiceByName(service).methods
    ]


@pytest.mark.parametrize(
    ("service", "method"),
    [(s, m) for s, m in _methods() if m.name not in IMPLEMENTED.get(s, set())],  # type: ignore[attr-defined]
    ids=lambda value: getattr(value, "name", value),
)
def test_rpcs_of_later_releases_answer_unimplemented_naming_the_capability(
    server: ThreadServer, service: str, method: object
) -> None:
    request_class = GetMessageClass(method.input_type)  # type: ignore[attr-defined]
    response_class = GetMessageClass(method.output_type)  # type: ignore[attr-defined]
    path = f"/{service}/{method.name}"  # type: ignore[attr-defined]
    with grpc.insecure_channel(server.target) as channel:
        kinds = (method.client_streaming, method.server_streaming)  # type: ignore[attr-defined]
        if kinds == (False, True):
            call = channel.unary_stream(
                path, request_class.SerializeToString, response_class.FromString
            )
            invoke = lambda: list(call(request_class(), timeout=5))  # noqa: E731
        else:
            call = channel.unary_unary(
                path, request_class.SerializeToString, response_class.FromString
            )
            invoke = lambda: call(request_class(), timeout=5)  # noqa: E731
        with pytest.raises(grpc.RpcError) as caught:
            invoke()
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "not implemented" in caught.value.details()
    assert caught.value.details().startswith(method.name)  # type: ignore[attr-defined]


def test_health_says_serving_for_the_server_and_each_service(server: ThreadServer) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ["", *SERVICES]:
            response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
