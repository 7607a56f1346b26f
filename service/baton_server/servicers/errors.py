"""The one place where domain errors become gRPC statuses with
``google.rpc`` details (ErrorInfo reason, BadRequest field violations)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from baton_server.connector import DatabaseUnavailable, TransactionAborted
from baton_server.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ServiceError,
    Unavailable,
    Unimplemented,
)
from baton_server.servicers.handlers import HandlerInterceptor, rewrap

log = logging.getLogger("baton.rpc")

_DOMAIN = "baton.dev"
_CODES: list[tuple[type[ServiceError], int]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (Aborted, code_pb2.ABORTED),
    (Unimplemented, code_pb2.UNIMPLEMENTED),
    (Unavailable, code_pb2.UNAVAILABLE),
]


def to_status(exc: ServiceError) -> status_pb2.Status:
    """The rich status for a domain error."""
    code = next(c for cls, c in _CODES if isinstance(exc, cls))
    details: list[any_pb2.Any] = []
    if exc.reason:
        info = any_pb2.Any()
        info.Pack(
            error_details_pb2.ErrorInfo(reason=exc.reason, domain=_DOMAIN, metadata=exc.metadata)
        )
        details.append(info)
    if isinstance(exc, InvalidArgument) and exc.violations:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in exc.violations
                ]
            )
        )
        details.append(bad)
    return status_pb2.Status(code=code, message=exc.message, details=details)


def classify(exc: BaseException, method: str) -> status_pb2.Status:
    """The status a failed call ends with: a domain error's own, UNAVAILABLE
    for a database outage or a transaction the database aborted, INTERNAL
    (logged) for anything else."""
    return _classify(exc, method) or status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error; see the server log"
    )


def _classify(exc: BaseException, method: str) -> status_pb2.Status | None:
    if isinstance(exc, ServiceError):
        return to_status(exc)
    if isinstance(exc, TransactionAborted):
        said = (
            "the database rolled back this call's transaction to resolve a conflict"
            f" with a concurrent one, retry: {exc}"
        )
        return to_status(Unavailable(said, reason="TRANSACTION_ABORTED"))
    if isinstance(exc, DatabaseUnavailable):
        return to_status(Unavailable(f"the database is unavailable, retry: {exc}"))
    if isinstance(exc, (grpc.aio.AbortError, grpc.RpcError)):
        return None  # already a status
    log.exception("%s failed unexpectedly", method)
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; see the server log")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: status_pb2.Status) -> None:
    await context.abort_with_status(rpc_status.to_status(status))


# Called with (method, status code name, seconds) when an RPC ends.
Observer = Callable[[str, str, float], None]


def _ignore(method: str, code: str, seconds: float) -> None:
    pass


class ErrorInterceptor(HandlerInterceptor):
    """Turns exceptions escaping a servicer into statuses, for every RPC kind, and
    reports each RPC's status code and duration to ``observe``.

    Placed first, it also sees the refusals of the interceptors after it.
    """

    def __init__(self, observe: Observer = _ignore) -> None:
        self._observe = observe

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method, observe = details.method, self._observe
        return rewrap(
            handler,
            unary=lambda behaviour: _wrap_unary(behaviour, method, observe),
            streaming=lambda behaviour: _wrap_stream(behaviour, method, observe),
        )


def _final_code(context: Any, failed: BaseException | None) -> str:
    """The status code an RPC ended with, by name."""
    code = context.code()
    if code is not None:
        return str(code.name)
    if failed is None:
        return "OK"
    return "CANCELLED" if isinstance(failed, asyncio.CancelledError) else "UNKNOWN"


def _wrap_unary(
    behaviour: Callable[..., Any], method: str, observe: Observer
) -> Callable[..., Any]:
    async def wrapped(request: Any, context: Any) -> Any:
        began, failed = time.perf_counter(), None
        try:
            return await behaviour(request, context)
        except BaseException as exc:
            failed = exc
            status = _classify(exc, method) if isinstance(exc, Exception) else None
            if status is None:
                raise
            await _abort(context, status)
        finally:
            observe(method, _final_code(context, failed), time.perf_counter() - began)

    return wrapped


def _wrap_stream(
    behaviour: Callable[..., Any], method: str, observe: Observer
) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behaviour):
        return _wrap_unary(behaviour, method, observe)

    async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
        began, failed = time.perf_counter(), None
        try:
            async for response in behaviour(request, context):
                yield response
        except BaseException as exc:
            failed = exc
            status = _classify(exc, method) if isinstance(exc, Exception) else None
            if status is None:
                raise
            await _abort(context, status)
        finally:
            observe(method, _final_code(context, failed), time.perf_counter() - began)

    return wrapped
