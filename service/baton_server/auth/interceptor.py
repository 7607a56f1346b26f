"""Checks the bearer token and role of every call before it reaches a servicer."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from baton_server.auth import policy
from baton_server.auth.tokens import TokenStore
from baton_server.servicers.handlers import HandlerInterceptor, responses, rewrap

log = logging.getLogger("baton.auth")

_BEARER = "bearer "


def _refusal(code: int, message: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same kind that fails the call with ``code``."""
    status = rpc_status.to_status(status_pb2.Status(code=code, message=message))

    async def refuse_unary(request: Any, context: Any) -> Any:
        await context.abort_with_status(status)

    async def refuse_stream(request: Any, context: Any) -> Any:
        await context.abort_with_status(status)
        yield  # pragma: no cover - makes this an async generator

    return rewrap(handler, unary=lambda _: refuse_unary, streaming=lambda _: refuse_stream)


class AuthInterceptor(HandlerInterceptor):
    """UNAUTHENTICATED without a known token, PERMISSION_DENIED for the wrong role."""

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        if policy.is_open(method):
            return handler
        token = _bearer(details.invocation_metadata)
        if token is None:
            return _refusal(
                code_pb2.UNAUTHENTICATED,
                "missing bearer token: send metadata 'authorization: Bearer <token>'",
                handler,
            )
        principal = self._tokens.resolve(token)
        if principal is None:
            return _refusal(code_pb2.UNAUTHENTICATED, "unknown or revoked bearer token", handler)
        allowed = policy.allowed_roles(method)
        if principal.role not in allowed:
            log.info("%s (%s) refused %s", principal.name, principal.role, method)
            roles = " or ".join(sorted(allowed))
            return _refusal(
                code_pb2.PERMISSION_DENIED,
                f"{method.lstrip('/')} needs the {roles} role; this token has {principal.role}",
                handler,
            )
        if principal.role not in policy.WORKFLOW_ROLES:
            return _no_workflow_context(handler, principal.role)
        return handler


def _no_workflow_context(handler: grpc.RpcMethodHandler, role: str) -> grpc.RpcMethodHandler:
    """The handler, refusing a request that acts as a running workflow."""

    def refusal(request: Any) -> status_pb2.Status | None:
        if not isinstance(request, Message):  # it did not parse: refused further in
            return None
        fields = policy.context_fields_set(request)
        if not fields:
            return None
        roles = " or ".join(sorted(policy.WORKFLOW_ROLES))
        return status_pb2.Status(
            code=code_pb2.PERMISSION_DENIED,
            message=f"{fields[0]}: a call that acts as a running workflow needs the {roles} "
            f"role; this token has {role} (leave the workflow context unset)",
        )

    def unary(behaviour: Any) -> Any:
        async def checked(request: Any, context: Any) -> Any:
            status = refusal(request)
            if status is not None:
                await context.abort_with_status(rpc_status.to_status(status))
            return await behaviour(request, context)

        return checked

    def streaming(behaviour: Any) -> Any:
        async def checked(request: Any, context: Any) -> Any:
            status = refusal(request)
            if status is not None:
                await context.abort_with_status(rpc_status.to_status(status))
            async for response in responses(behaviour, request, context):
                yield response

        return checked

    if handler.request_streaming:  # only Connect, a worker's: its messages are not checked
        roles = " or ".join(sorted(policy.WORKFLOW_ROLES))
        return _refusal(
            code_pb2.PERMISSION_DENIED,
            f"a client-streaming call needs the {roles} role; this token has {role}",
            handler,
        )
    return rewrap(handler, unary=unary, streaming=streaming)


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            if value[: len(_BEARER)].lower() == _BEARER:
                return value[len(_BEARER) :].strip() or None
            return None
    return None
