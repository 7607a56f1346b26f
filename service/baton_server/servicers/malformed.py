"""Request messages that do not parse: INVALID_ARGUMENT (reason
MALFORMED_REQUEST) rather than gRPC's UNKNOWN with a traceback in the log.

`MalformedRequests` comes last among the interceptors, next to the servicers:
its deserializer, which every interceptor's handler carries outward, turns a
parse failure into a `Malformed` marker, and the marker is refused just before
the servicer would see it, so the interceptors before it (the error
interceptor's accounting, authentication) have their say first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from baton_server.errors import MalformedRequest
from baton_server.servicers.handlers import Behaviour, HandlerInterceptor, responses, rewrap


class MalformedRequests(HandlerInterceptor):
    """Refuses request messages that do not parse (see the module docstring)."""

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        requests = _parsed_stream if handler.request_streaming else _parsed

        def unary(behaviour: Behaviour) -> Behaviour:
            async def checked(request: Any, context: Any) -> Any:
                return await behaviour(requests(request), context)

            return checked

        def streaming(behaviour: Behaviour) -> Behaviour:
            async def checked(request: Any, context: Any) -> AsyncIterator[Any]:
                async for response in responses(behaviour, requests(request), context):
                    yield response

            return checked

        return rewrap(handler, unary=unary, streaming=streaming, deserializer=_tolerant)


class Malformed:
    """Stands for a request message that did not parse (bad wire format, a
    string field that is not UTF-8), so that the call is refused as
    INVALID_ARGUMENT rather than failing in gRPC's deserializer as UNKNOWN."""

    __slots__ = ("error", "message_type")

    def __init__(self, error: DecodeError, message_type: str) -> None:
        self.error = error
        self.message_type = message_type

    def refusal(self) -> MalformedRequest:
        # upb says "Error parsing message with type '<type>': <why>".
        why = str(self.error).rpartition("': ")[2] or "it does not parse"
        return MalformedRequest(f"the request is not a valid {self.message_type} message: {why}")


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer``, giving a `Malformed` instead of raising."""
    message_class = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    message_type = descriptor.full_name if descriptor is not None else "request"

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return Malformed(exc, message_type)

    return deserialize


def _parsed(request: Any) -> Any:
    """A unary call's request, refused if it did not parse."""
    if type(request) is Malformed:
        raise request.refusal()
    return request


async def _parsed_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A request stream's messages; the call is refused at the first that did
    not parse (the messages before it were read as usual)."""
    async for request in requests:
        if type(request) is Malformed:
            raise request.refusal()
        yield request
