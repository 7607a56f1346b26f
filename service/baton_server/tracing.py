"""OpenTelemetry spans for RPCs, when the ``opentelemetry`` packages are
installed (the ``tracing`` extra); without them everything here does nothing.

Each RPC gets a SERVER span whose parent is the caller's trace context (W3C
``traceparent`` in the call's metadata). A started workflow remembers the
context of its StartWorkflow span (``current_carrier``), and its dispatch hands
it to the worker, whose workflow and step spans then join the caller's trace.
Configure the exporter the usual OpenTelemetry way (a TracerProvider set up by
the program, e.g. with ``opentelemetry-instrument`` or the OTEL_* variables).
Without one, a span would record nothing, so an RPC gets none unless its caller
sent a trace context: then the no-op span still passes it on to the workflow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc

from baton_server.servicers.handlers import HandlerInterceptor, responses, rewrap

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - exercised where the extra is absent
    trace = None  # type: ignore[assignment]


def available() -> bool:
    """Whether the OpenTelemetry API is installed."""
    return trace is not None


def current_carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers, or ``None`` when there is none."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


def server_span(method: str, carrier: Mapping[str, str]) -> Callable[[str | None], None]:
    """Starts a SERVER span for work a caller asked for outside an RPC of its own
    (a checkpoint sent on a worker's stream), parented by ``carrier``; returns
    the function that ends it, given the failed status code's name or ``None``."""
    if trace is None or not carrier:
        return _nothing
    parent = propagate.extract(carrier)
    span = trace.get_tracer("baton.server").start_span(
        method, context=parent, kind=trace.SpanKind.SERVER
    )
    span.set_attribute("rpc.system", "grpc")
    span.set_attribute("rpc.method", method)

    def end(failed: str | None) -> None:
        if failed is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, failed))
        span.end()

    return end


def _nothing(failed: str | None) -> None:
    pass


class TracingInterceptor(HandlerInterceptor):
    """Wraps every RPC in a SERVER span parented by the caller's context."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer("baton.server") if trace is not None else None

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        if self._tracer is None:
            return handler
        method = details.method.lstrip("/")
        carrier = {
            key: value for key, value in details.invocation_metadata or () if isinstance(value, str)
        }
        if _no_provider() and not _carries_context(carrier):
            return handler
        tracer = self._tracer

        def start() -> tuple[Any, Any]:
            """The call's span, and the context that holds it."""
            parent = propagate.extract(carrier)
            span = tracer.start_span(method, context=parent, kind=trace.SpanKind.SERVER)
            span.set_attribute("rpc.system", "grpc")
            span.set_attribute("rpc.method", method)
            return span, trace.set_span_in_context(span, parent)

        def end(span: Any, context: Any) -> None:
            code = context.code()
            if code is not None and code != grpc.StatusCode.OK:
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
            span.end()

        def unary(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            async def traced(request: Any, context: Any) -> Any:
                span, current = start()
                token = otel_context.attach(current)
                try:
                    return await behaviour(request, context)
                finally:
                    otel_context.detach(token)
                    end(span, context)

            return traced

        def streaming(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            async def traced(request: Any, context: Any) -> AsyncIterator[Any]:
                # The span's context is current only while the handler runs to
                # its next response, never across a `yield`: a stream ended
                # while suspended there is closed by whichever task closes it
                # (another context), where a token attached here could not be
                # detached.
                span, current = start()
                inner = responses(behaviour, request, context)
                try:
                    while True:
                        token = otel_context.attach(current)
                        try:
                            response = await anext(inner)
                        except StopAsyncIteration:
                            break
                        finally:
                            otel_context.detach(token)
                        yield response
                finally:
                    await inner.aclose()
                    end(span, context)

            return traced

        return rewrap(handler, unary=unary, streaming=streaming)


def _no_provider() -> bool:
    """Whether no tracer provider is configured: spans would be no-ops."""
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _carries_context(carrier: Mapping[str, str]) -> bool:
    """Whether call metadata holds a trace context (to pass on)."""
    return bool(trace.get_current_span(propagate.extract(carrier)).get_span_context().is_valid)
