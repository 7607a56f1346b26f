"""Rebuilding a gRPC method handler with its behaviour wrapped: the one
mechanism the interceptors (errors, auth, limits, tracing, malformed requests)
share, each a `HandlerInterceptor`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc

Behaviour = Callable[..., Any]
Wrap = Callable[[Behaviour], Behaviour]


class HandlerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """An interceptor that changes the handler of each method served (gRPC's
    own answer, UNIMPLEMENTED, stands for methods no servicer has)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        return None if handler is None else self.wrap(handler, details)

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        """The handler to serve ``details.method`` with instead of ``handler``."""
        raise NotImplementedError


def _same(behaviour: Behaviour) -> Behaviour:
    return behaviour


def rewrap(
    handler: grpc.RpcMethodHandler,
    *,
    unary: Wrap = _same,
    streaming: Wrap = _same,
    deserializer: Wrap = _same,
) -> grpc.RpcMethodHandler:
    """The same kind of handler, its behaviour passed through ``unary`` (calls
    answered with one response) or ``streaming`` (calls answered with a stream),
    its request deserializer (when it has one) through ``deserializer``."""
    request_deserializer = handler.request_deserializer
    kwargs = {
        "request_deserializer": request_deserializer and deserializer(request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)


async def responses(behaviour: Behaviour, request: Any, context: Any) -> AsyncGenerator[Any, None]:
    """Runs a server-streaming ``behaviour``, yielding its responses: an async
    generator's, or none from a handler that writes through its context."""
    result = behaviour(request, context)
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        await result
