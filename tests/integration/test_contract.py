"""The server serves the whole contract: every RPC answers with a clear status,
and health says SERVING for each service."""

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
    ("service", "method"), _methods(), ids=lambda value: getattr(value, "name", value)
)
def test_every_rpc_is_served_and_answers_an_empty_request_with_a_clear_status(
    server: ThreadServer, service: str, method: object
) -> None:
    """An empty request is a caller's mistake (or a valid query): never
    UNIMPLEMENTED, and never UNKNOWN or INTERNAL."""
    request_class = GetMessageClass(method.input_type)  # type: ignore[attr-defined]
    response_class = GetMessageClass(method.output_type)  # type: ignore[attr-defined]
    path = f"/{service}/{method.name}"  # type: ignore[attr-defined]
    kinds = (method.client_streaming, method.server_streaming)  # type: ignore[attr-defined]
    code = grpc.StatusCode.OK
    with grpc.insecure_channel(server.target) as channel:
        try:
            if kinds == (True, True):
                bidi = channel.stream_stream(
                    path, request_class.SerializeToString, response_class.FromString
                )
                list(bidi(iter([]), timeout=10))
            elif kinds == (False, True):
                streaming = channel.unary_stream(
                    path, request_class.SerializeToString, response_class.FromString
                )
                list(streaming(request_class(), timeout=10))
            else:
                unary = channel.unary_unary(
                    path, request_class.SerializeToString, response_class.FromString
                )
                unary(request_class(), timeout=10)
        except grpc.RpcError as exc:
            code = exc.code()
            details = exc.details() or ""
            assert details, f"{path} answered {code.name} with no message"
    assert code not in {
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }, f"{path} answered {code.name}"


def test_health_says_serving_for_the_server_and_each_service(server: ThreadServer) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ["", *SERVICES]:
            response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
