"""The services of the contract whose capabilities come in later releases.

Each of their RPCs answers UNIMPLEMENTED with a message naming the capability
(rather than grpc's anonymous "Method not implemented!").
"""

from __future__ import annotations

from typing import Any

import grpc

from baton._proto.baton.v1 import (
    event_service_pb2,
    event_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
    stream_service_pb2,
    stream_service_pb2_grpc,
)
from baton_server.errors import Unimplemented

# (module with the descriptor, generated servicer base, adder, capability)
UNBUILT: list[tuple[Any, type, Any, str]] = [
    (message_service_pb2, message_service_pb2_grpc.MessageServiceServicer,
     message_service_pb2_grpc.add_MessageServiceServicer_to_server, "workflow messages"),
    (event_service_pb2, event_service_pb2_grpc.EventServiceServicer,
     event_service_pb2_grpc.add_EventServiceServicer_to_server, "workflow events"),
    (stream_service_pb2, stream_service_pb2_grpc.StreamServiceServicer,
     stream_service_pb2_grpc.add_StreamServiceServicer_to_server, "workflow streams"),
]  # fmt: skip


def _servicer(module: Any, base: type, capability: str) -> Any:
    (service,) = module.DESCRIPTOR.services_by_name.values()
    methods: dict[str, Any] = {}
    for method in service.methods:
        message = f"{method.name}: {capability} are not implemented by this server yet"

        async def refuse(self: Any, request: Any, context: Any, _m: str = message) -> Any:
            raise Unimplemented(_m)

        methods[method.name] = refuse
    return type(f"Unbuilt{service.name}", (base,), methods)()


def add_unbuilt_services(server: grpc.aio.Server) -> list[str]:
    """Registers every not-yet-built service; returns their full names."""
    names = []
    for module, base, add, capability in UNBUILT:
        add(_servicer(module, base, capability), server)
        (service,) = module.DESCRIPTOR.services_by_name.values()
        names.append(service.full_name)
    return names
