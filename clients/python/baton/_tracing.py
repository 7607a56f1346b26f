"""OpenTelemetry spans in the SDK, when the ``opentelemetry`` API is installed
(the ``tracing`` extra); without it everything here does nothing.

Calls carry the current trace context (W3C ``traceparent``) in their metadata,
so a workflow started inside a span joins that trace; the worker runs each
dispatched workflow in a ``workflow <name>`` span parented by the context the
workflow was started in, and each executed step in a ``step <name>`` span
under it. Replayed steps (already in the journal) do not run and make no span.

Without a tracer provider configured, a span would record nothing, so none is
made unless there is a trace context to pass on (a workflow started inside a
trace): then the no-op span still carries it to the calls the workflow makes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

try:
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - exercised where the extra is absent
    trace = None  # type: ignore[assignment]

__all__ = ["outgoing_metadata", "step_span", "workflow_span"]


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """The current trace context as call metadata (empty without a current span)."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return ()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())


@contextmanager
def workflow_span(
    name: str, workflow_id: str, attempt: int, carrier: Mapping[str, str]
) -> Iterator[None]:
    """The span of one run of a workflow, parented by the context it was started in."""
    if trace is None or (not carrier and _no_provider()):
        yield
        return
    tracer = trace.get_tracer("baton.worker")
    with tracer.start_as_current_span(
        f"workflow {name}",
        context=propagate.extract(dict(carrier)),
        kind=trace.SpanKind.CONSUMER,
        attributes={"baton.workflow_id": workflow_id, "baton.attempt": attempt},
    ):
        yield


@contextmanager
def step_span(name: str) -> Iterator[None]:
    """The span of one executed step (its retries included), under the current span."""
    if trace is None or (
        _no_provider() and not trace.get_current_span().get_span_context().is_valid
    ):
        yield
        return
    with trace.get_tracer("baton.worker").start_as_current_span(f"step {name}"):
        yield


def _no_provider() -> bool:
    """Whether no tracer provider is configured: spans would be no-ops (a tenth
    of a step's own cost in the SDK, for nothing)."""
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
