"""A trace follows a workflow from the client's span through the server to the
workflow's run on a worker and to each of its steps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from baton import Client, Worker, WorkflowContext
from tests.conftest import ThreadServer, worker_in_thread

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """A global tracer provider for this process, recording into memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


@pytest.fixture
def traced_worker(server: ThreadServer) -> Iterator[Worker]:
    worker = Worker(server.target)

    @worker.step()
    def reserve(item: str) -> str:
        return f"reserved {item}"

    @worker.step()
    def charge(amount: int) -> int:
        return amount

    @worker.workflow()
    def traced_checkout(ctx: WorkflowContext, item: str) -> str:
        ctx.run(reserve, item)
        ctx.run(charge, 12)
        return "done"

    with worker_in_thread(worker):
        yield worker


def test_a_trace_links_the_client_start_to_the_workflow_and_its_steps(
    exporter: InMemorySpanExporter, server: ThreadServer, traced_worker: Worker
) -> None:
    exporter.clear()
    tracer = trace.get_tracer("test")
    with Client(server.target) as client:
        with tracer.start_as_current_span("checkout-request") as request_span:
            handle = client.start_workflow("traced_checkout", "book", workflow_id="traced-1")
        assert handle.result(timeout=30) == "done"
    trace_id = request_span.get_span_context().trace_id
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    by_name: dict[str, ReadableSpan] = {s.name: s for s in spans}

    def parent_of(name: str) -> str:
        parent = by_name[name].parent
        assert parent is not None, f"{name} has no parent"
        (found,) = [s.name for s in spans if s.context.span_id == parent.span_id]
        return found

    assert parent_of("baton.v1.WorkflowService/StartWorkflow") == "checkout-request"
    assert parent_of("workflow traced_checkout") == "baton.v1.WorkflowService/StartWorkflow"
    assert parent_of("step reserve") == "workflow traced_checkout"
    assert parent_of("step charge") == "workflow traced_checkout"
    # The step checkpoints are RPCs of the same trace too.
    recorded = [s for s in spans if s.name == "baton.v1.WorkerService/RecordStep"]
    assert len(recorded) == 2
    assert by_name["workflow traced_checkout"].attributes["baton.workflow_id"] == "traced-1"
