"""The thin typed tier, shared part: deadlines, retry policies, and how
channels and call metadata are made.

The tier itself is one method per RPC over the generated stubs, funnelled
through one private ``_rpc_call`` where deadlines, retries of transient failures
and the translation of gRPC errors into `baton` exceptions live once; nothing
above it sees a ``grpc.RpcError``. `baton._rpc_async.AsyncRpc` runs on a
``grpc.aio`` channel (the worker and `AsyncClient`); `baton._rpc_sync.SyncRpc`
on a plain blocking channel (`Client`), so the sync client needs no event loop
or helper thread.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

import grpc

from baton._tls import TLSConfig, channel_credentials, channel_target
from baton._tracing import outgoing_metadata

__all__ = [
    "CHECKPOINT_RETRY",
    "CLIENT_RETRY",
    "DEFAULT_TIMEOUT",
    "WAIT_MARGIN",
    "RetryPolicy",
    "call_metadata",
    "channel_options",
    "log_retry",
    "open_channel",
    "with_trace",
]

logger = logging.getLogger("baton.rpc")

DEFAULT_TIMEOUT = 30.0
"""The deadline of a unary call, in seconds, unless the call sets its own."""

WAIT_MARGIN = 10.0
"""Extra time a call that waits on the server (Sleep, Recv, GetEvent) allows
beyond the server-side wait, so the gRPC deadline always exceeds the wait."""

# A dispatch carries the whole journal, which can outgrow gRPC's 4 MiB default;
# the server enforces its own payload limits.
_MAX_MESSAGE_BYTES = 128 * 1024 * 1024


def channel_options() -> list[tuple[str, Any]]:
    """The channel options shared by every Baton channel."""
    return [
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ]


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures of an idempotent call are retried, and how patiently."""

    codes: frozenset[grpc.StatusCode]
    """The status codes that count as transient."""
    max_attempts: int | None
    """Attempts in total, the first included; ``None`` retries forever."""
    initial: float = 0.1
    """The first delay, in seconds."""
    maximum: float = 2.0
    """The cap on the delay, in seconds."""
    multiplier: float = 2.0
    """The growth of the delay from one retry to the next."""

    def should_retry(self, code: grpc.StatusCode, attempt: int) -> bool:
        """Whether to retry after failed attempt number ``attempt`` (1-based)."""
        if code not in self.codes:
            return False
        return self.max_attempts is None or attempt < self.max_attempts

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based), with jitter so
        that many callers retrying after one outage do not arrive in lockstep."""
        base = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        return base * random.uniform(0.8, 1.0)


CLIENT_RETRY = RetryPolicy(codes=frozenset({grpc.StatusCode.UNAVAILABLE}), max_attempts=6)
"""Idempotent client calls ride out a few seconds of unavailability, then fail."""

CHECKPOINT_RETRY = RetryPolicy(
    codes=frozenset(
        {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            # A replica shutting down or dying can end calls in flight with these.
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.UNKNOWN,
            grpc.StatusCode.INTERNAL,
        }
    ),
    max_attempts=None,
    initial=0.05,
    maximum=2.0,
)
"""A workflow's checkpoints retry until they land or get a definitive answer
(fenced off, or the request refused): a server restart or a replica shutting
down must never fail a workflow. Safe because checkpoint RPCs are idempotent."""


def open_channel(
    target: str, tls: TLSConfig | bool | None, *, aio: bool
) -> grpc.Channel | grpc.aio.Channel:
    """A channel to ``target`` (several replicas allowed), plaintext or TLS as
    `baton.TLSConfig` decides; ``aio`` picks a ``grpc.aio`` channel."""
    credentials, tls_options = channel_credentials(tls, target)
    options = channel_options() + tls_options
    module: Any = grpc.aio if aio else grpc
    if credentials is None:
        return module.insecure_channel(channel_target(target), options=options)
    return module.secure_channel(channel_target(target), credentials, options=options)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: the bearer token, if set."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def with_trace(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``metadata`` plus the current trace context."""
    return metadata + outgoing_metadata()


def log_retry(request: object, code: grpc.StatusCode, attempt: int, delay: float) -> None:
    """One debug line per retried call."""
    logger.debug(
        "%s failed with %s (attempt %d); retrying in %.2fs",
        type(request).__name__,
        code.name,
        attempt,
        delay,
    )
