"""MessageService: sends messages to workflows."""

from __future__ import annotations

from typing import Any

from baton._proto.baton.v1 import message_service_pb2 as pb
from baton._proto.baton.v1 import message_service_pb2_grpc as pb_grpc
from baton_server.config import Config
from baton_server.engine.engine import Engine
from baton_server.errors import InvalidArgument
from baton_server.servicers import convert, validate
from baton_server.servicers.caller import caller_in

Context = Any

MAX_TOPIC_LENGTH = 200


def topic(value: str, field: str = "topic") -> str:
    """A topic: empty (none) or at most 200 characters."""
    if len(value) > MAX_TOPIC_LENGTH:
        raise InvalidArgument(field, f"is {len(value)} characters; the limit is {MAX_TOPIC_LENGTH}")
    return value


class MessageService(pb_grpc.MessageServiceServicer):
    """Implements baton.v1.MessageService over the engine."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self._engine = engine
        self._config = config

    async def Send(self, request: pb.SendRequest, context: Context) -> pb.SendResponse:
        validate.workflow_id(request.destination_id, "destination_id")
        topic(request.topic)
        validate.payload(request.message, "message", self._config.max_payload_bytes)
        if len(request.idempotency_key) > validate.MAX_ID_LENGTH:
            raise InvalidArgument("idempotency_key", f"is over {validate.MAX_ID_LENGTH} characters")
        caller = caller_in(request.context, "context") if request.HasField("context") else None
        await self._engine.messages.send(
            request.destination_id,
            request.topic,
            convert.payload_in(request.message),
            idempotency_key=request.idempotency_key or None,
            caller=caller,
        )
        return pb.SendResponse()
