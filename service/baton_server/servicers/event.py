"""EventService: workflows publish key-value events; anyone reads them."""

from __future__ import annotations

from typing import Any

from baton._proto.baton.v1 import event_service_pb2 as pb
from baton._proto.baton.v1 import event_service_pb2_grpc as pb_grpc
from baton_server.config import Config
from baton_server.engine.engine import Engine
from baton_server.errors import InvalidArgument
from baton_server.servicers import convert, validate
from baton_server.servicers.caller import caller_in

Context = Any

MAX_KEY_LENGTH = 200
MAX_WAIT_SECONDS = 3600.0


def key(value: str, field: str = "key") -> str:
    """A required key of at most 200 characters."""
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidArgument(field, f"is {len(value)} characters; the limit is {MAX_KEY_LENGTH}")
    return value


class EventService(pb_grpc.EventServiceServicer):
    """Implements baton.v1.EventService over the engine."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self._engine = engine
        self._config = config

    async def SetEvent(self, request: pb.SetEventRequest, context: Context) -> pb.SetEventResponse:
        if not request.HasField("context"):
            raise InvalidArgument("context", "is required: only a workflow sets its events")
        caller = caller_in(request.context, "context")
        key(request.key)
        validate.payload(request.value, "value", self._config.max_payload_bytes)
        await self._engine.events.set_event(caller, request.key, convert.payload_in(request.value))
        return pb.SetEventResponse()

    async def GetEvent(self, request: pb.GetEventRequest, context: Context) -> pb.GetEventResponse:
        validate.workflow_id(request.workflow_id)
        key(request.key)
        timeout = validate.seconds(
            request.timeout, "timeout", default=0.0, maximum=MAX_WAIT_SECONDS
        )
        release = validate.release_threshold(request, maximum=MAX_WAIT_SECONDS)
        caller = None
        if request.HasField("context"):
            caller = caller_in(request.context, "context")
        elif release is not None:
            raise InvalidArgument(
                "release_if_longer_than", "is for a workflow reading an event: set context too"
            )
        read = await self._engine.events.get_event(
            request.workflow_id, request.key, timeout, caller, release
        )
        return pb.GetEventResponse(
            found=read.found, value=convert.payload_out(read.value), released=read.released
        )

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: Context
    ) -> pb.ListEventsResponse:
        validate.workflow_id(request.workflow_id)
        found = await self._engine.events.list_events(request.workflow_id)
        return pb.ListEventsResponse(
            events=[
                pb.Event(
                    key=event.key,
                    value=convert.payload_out(event.value),
                    updated_at=convert.timestamp(event.updated_at),
                )
                for event in found
            ]
        )
