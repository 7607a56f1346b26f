"""Fixtures of the tests that speak the contract over raw gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import psycopg
import pytest

from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import event_service_pb2_grpc as ev_grpc
from baton._proto.baton.v1 import message_service_pb2_grpc as msg_grpc
from baton._proto.baton.v1 import stream_service_pb2_grpc as st_grpc
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from baton._proto.baton.v1 import workflow_service_pb2_grpc as wf_grpc
from tests.conftest import ThreadServer


@dataclass
class Stubs:
    """The raw stubs of one channel."""

    workflows: wf_grpc.WorkflowServiceStub
    messages: msg_grpc.MessageServiceStub
    events: ev_grpc.EventServiceStub
    streams: st_grpc.StreamServiceStub


@pytest.fixture
def stubs(server: ThreadServer) -> Iterator[Stubs]:
    """Raw stubs of the services a running workflow calls, on the test's server."""
    with grpc.insecure_channel(server.target) as channel:
        yield Stubs(
            wf_grpc.WorkflowServiceStub(channel),
            msg_grpc.MessageServiceStub(channel),
            ev_grpc.EventServiceStub(channel),
            st_grpc.StreamServiceStub(channel),
        )


def running(stubs: Stubs, database_url: str, workflow_id: str) -> None:
    """Starts a workflow no worker hosts and marks it running under attempt 1,
    so that calls may act as it without a worker."""
    stubs.workflows.StartWorkflow(
        wf.StartWorkflowRequest(workflow_name="nobody_hosts_this", workflow_id=workflow_id),
        timeout=10,
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE workflows SET status = 'PENDING', attempt = 1 WHERE workflow_id = %s",
            (workflow_id,),
        )


def ctx(workflow_id: str, function_id: int, attempt: int = 1) -> common.WorkflowContext:
    """A running workflow's context for a call it makes."""
    return common.WorkflowContext(workflow_id=workflow_id, function_id=function_id, attempt=attempt)
