"""StreamService: workflows write ordered streams; anyone reads them as they grow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from baton._proto.baton.v1 import stream_service_pb2 as pb
from baton._proto.baton.v1 import stream_service_pb2_grpc as pb_grpc
from baton_server.config import Config
from baton_server.engine.engine import Engine
from baton_server.errors import InvalidArgument
from baton_server.servicers import convert, validate
from baton_server.servicers.caller import caller_in
from baton_server.servicers.event import key

Context = Any


class StreamService(pb_grpc.StreamServiceServicer):
    """Implements baton.v1.StreamService over the engine."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self._engine = engine
        self._config = config

    async def WriteStream(
        self, request: pb.WriteStreamRequest, context: Context
    ) -> pb.WriteStreamResponse:
        if not request.HasField("context"):
            raise InvalidArgument("context", "is required: only a workflow writes its streams")
        caller = caller_in(request.context, "context", allow_step=True)
        key(request.key)
        validate.payload(request.value, "value", self._config.max_payload_bytes)
        offset = await self._engine.streams.write(
            caller, request.key, convert.payload_in(request.value)
        )
        return pb.WriteStreamResponse(offset=offset)

    async def CloseStream(
        self, request: pb.CloseStreamRequest, context: Context
    ) -> pb.CloseStreamResponse:
        if not request.HasField("context"):
            raise InvalidArgument("context", "is required: only a workflow closes its streams")
        caller = caller_in(request.context, "context", allow_step=True)
        key(request.key)
        await self._engine.streams.close(caller, request.key)
        return pb.CloseStreamResponse()

    async def ReadStream(
        self, request: pb.ReadStreamRequest, context: Context
    ) -> AsyncIterator[pb.ReadStreamResponse]:
        validate.workflow_id(request.workflow_id)
        key(request.key)
        if request.from_offset < 0:
            raise InvalidArgument("from_offset", "must not be negative")
        async for entry in self._engine.streams.read(
            request.workflow_id, request.key, request.from_offset
        ):
            yield pb.ReadStreamResponse(offset=entry.offset, value=convert.payload_out(entry.value))
