"""gRPC failures become typed SDK exceptions carrying the server's rich details."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from baton import AlreadyExists, InvalidArgument, NotFound, RpcError, Unavailable
from baton._proto.baton.v1 import workflow_service_pb2
from baton._rpc_async import AsyncRpc
from baton._rpc_sync import SyncRpc


def _refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Answers GetWorkflow with a status chosen by the requested workflow id."""
    workflow_id = workflow_service_pb2.GetWorkflowRequest.FromString(request).workflow_id
    if workflow_id == "missing":
        status = status_pb2.Status(code=code_pb2.NOT_FOUND, message="workflow 'missing' not found")
        status.details.add().Pack(error_details_pb2.ErrorInfo(reason="WORKFLOW_NOT_FOUND"))
    elif workflow_id == "bad":
        violation = error_details_pb2.BadRequest.FieldViolation(
            field="workflow_id", description="must be 1-200 characters"
        )
        status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="invalid request")
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    else:
        context.abort(grpc.StatusCode.ALREADY_EXISTS, "plain status, no details")
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """A real gRPC server whose GetWorkflow always fails."""
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler(
        "baton.v1.WorkflowService",
        {"GetWorkflow": grpc.unary_unary_rpc_method_handler(_refuse)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def _get(workflow_id: str) -> workflow_service_pb2.GetWorkflowRequest:
    return workflow_service_pb2.GetWorkflowRequest(workflow_id=workflow_id)


def test_error_info_reason_is_exposed(target: str) -> None:
    rpc = SyncRpc(target)
    with pytest.raises(NotFound) as caught:
        rpc.get_workflow(_get("missing"))
    assert caught.value.reason == "WORKFLOW_NOT_FOUND"
    assert caught.value.code is grpc.StatusCode.NOT_FOUND
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    rpc.close()


def test_bad_request_field_violations_are_exposed(target: str) -> None:
    rpc = SyncRpc(target)
    with pytest.raises(InvalidArgument) as caught:
        rpc.get_workflow(_get("bad"))
    assert caught.value.field_violations == [("workflow_id", "must be 1-200 characters")]
    assert "workflow_id" in str(caught.value)
    rpc.close()


def test_a_status_without_details_still_maps_by_code(target: str) -> None:
    rpc = SyncRpc(target)
    with pytest.raises(AlreadyExists) as caught:
        rpc.get_workflow(_get("other"))
    assert (caught.value.reason, caught.value.field_violations) == ("", [])
    rpc.close()


async def test_the_async_tier_maps_errors_the_same_way(target: str) -> None:
    rpc = AsyncRpc(target)
    with pytest.raises(NotFound) as caught:
        await rpc.get_workflow(_get("missing"))
    assert caught.value.reason == "WORKFLOW_NOT_FOUND"
    with pytest.raises(InvalidArgument) as bad:
        await rpc.get_workflow(_get("bad"))
    assert bad.value.field_violations == [("workflow_id", "must be 1-200 characters")]
    await rpc.close()


def test_an_unreachable_service_is_unavailable_after_retries() -> None:
    rpc = SyncRpc("127.0.0.1:1")
    with pytest.raises(Unavailable) as caught:
        rpc.get_workflow(_get("x"))
    assert isinstance(caught.value, RpcError)
    rpc.close()
