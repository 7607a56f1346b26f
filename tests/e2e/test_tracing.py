"""A trace follows a workflow from the client's span through the server to the
workflow's run on a worker and to each of its steps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from baton import Client, Worker, WorkflowContext
from baton_server.tracing import TracingInterceptor
from tests.conftest import ThreadServer, worker_in_thread
from tests.e2e.conftest import wait_until

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

    def traced() -> list[ReadableSpan]:
        return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]

    def names() -> list[str]:
        return [s.name for s in traced()]

    # A span is exported when it ends, and some end after the result is out:
    # the server answers the caller awaiting the result before the checkpoint
    # that finished the workflow, and the worker ends the workflow's span after.
    wait_until(
        lambda: (
            names().count("baton.v1.WorkerService/RecordStep") >= 2
            and "workflow traced_checkout" in names()
        ),
        10,
        "the workflow's spans to end",
    )
    spans = traced()
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


@pytest.mark.timeout(60)
def test_a_worker_stopped_mid_step_unwinds_the_step_and_ends_its_spans(
    exporter: InMemorySpanExporter, server: ThreadServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A plain def workflow runs an async def step as a task on the worker's
    # loop; the worker stops (its shutdown timeout passes) while the step waits.
    # The step must unwind on that loop before it closes: left pending, it would
    # be finalised later by the garbage collector, outside its task's context,
    # and its span could not be detached ("... was created in a different Context").
    worker = Worker(server.target, shutdown_timeout=0.2)
    step_started = threading.Event()
    step_unwound = threading.Event()
    workflow_left = threading.Event()
    step_errors: list[Exception] = []

    @worker.step()
    async def wait_forever() -> None:
        step_started.set()
        try:
            await asyncio.Event().wait()
        finally:
            step_unwound.set()

    @worker.workflow()
    def stuck_in_step(ctx: WorkflowContext) -> None:
        try:
            ctx.run(wait_forever)
        except Exception as exc:
            step_errors.append(exc)
        finally:
            workflow_left.set()

    with Client(server.target) as client, worker_in_thread(worker):
        client.start_workflow("stuck_in_step", workflow_id="traced-stopped")
        assert step_started.wait(30)
    assert step_unwound.is_set()
    ended = {s.name for s in exporter.get_finished_spans()}
    assert {"workflow stuck_in_step", "step wait_forever"} <= ended
    # The workflow's code is stopped, not told that its step failed.
    assert workflow_left.wait(10)
    assert step_errors == []
    detach_errors = [
        r for r in caplog.records if r.exc_info and "different Context" in str(r.exc_info[1])
    ]
    assert detach_errors == []


def test_a_traced_stream_closed_by_another_task_ends_its_span_cleanly(
    exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    # A stream that ends while suspended at a response (the caller went away)
    # is closed by whichever task closes it, in another context: the server's
    # span must still end, and nothing attached in the handler's context may
    # be left to detach there.
    async def two(request: object, context: object) -> AsyncIterator[str]:
        yield "first"
        yield "second"

    class Details:
        method = "/baton.v1.StreamService/ReadStream"
        invocation_metadata = ()

    class Context:
        def code(self) -> None:
            return None

    async def scenario() -> None:
        handler = grpc.unary_stream_rpc_method_handler(two)
        wrapped = TracingInterceptor().wrap(handler, Details())  # type: ignore[arg-type]
        stream = wrapped.unary_stream(None, Context())
        assert await anext(stream) == "first"
        await asyncio.create_task(stream.aclose())

    exporter.clear()
    asyncio.run(scenario())
    assert [s.name for s in exporter.get_finished_spans()] == ["baton.v1.StreamService/ReadStream"]
    assert [r for r in caplog.records if r.name == "opentelemetry.context"] == []
