"""Without a tracer provider configured, spans would record nothing: the SDK
and the server make none, unless there is a trace context to pass on, which
still reaches the calls a workflow makes. Each check runs in a fresh
interpreter: a tracer provider, once set in a process, stays."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
_TRACEPARENT = f"00-{_TRACE_ID}-b7ad6b7169203331-01"


def _run(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True
    )
    return done.stdout.split()


def test_a_worker_without_a_provider_passes_a_workflow_s_trace_context_on() -> None:
    printed = _run(f"""
from baton._tracing import outgoing_metadata, step_span, workflow_span
for carrier in ({{"traceparent": "{_TRACEPARENT}"}}, {{}}):
    with workflow_span("checkout", "order-7", 1, carrier), step_span("pay"):
        print(dict(outgoing_metadata()).get("traceparent", "none"))
""")
    assert printed == [_TRACEPARENT, "none"]


def test_a_server_without_a_provider_traces_only_calls_that_carry_a_context() -> None:
    printed = _run(f"""
import asyncio
import grpc
from baton_server.tracing import TracingInterceptor

handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)

class Details:
    method = "/baton.v1.WorkflowService/GetWorkflow"
    invocation_metadata = ()

async def continuation(details):
    return handler

for metadata in ((("traceparent", "{_TRACEPARENT}"),), ()):
    Details.invocation_metadata = metadata
    wrapped = asyncio.run(TracingInterceptor().intercept_service(continuation, Details()))
    print("wrapped" if wrapped is not handler else "untouched")
""")
    assert printed == ["wrapped", "untouched"]
