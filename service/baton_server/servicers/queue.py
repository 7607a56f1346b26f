"""QueueService: named queues with flow control."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration

from baton._proto.baton.v1 import queue_service_pb2 as pb
from baton._proto.baton.v1 import queue_service_pb2_grpc as pb_grpc
from baton_server.engine.engine import Engine
from baton_server.errors import InvalidArgument
from baton_server.servicers import validate
from baton_server.store.queues import QueueConfig, QueueStats

# grpc ships no type information; its servicer context is untyped here.
Context = Any

# The longest rate window and timeout: one year.
_MAX_SECONDS = 365 * 24 * 3600.0


class QueueService(pb_grpc.QueueServiceServicer):
    """Implements baton.v1.QueueService over the engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def UpsertQueue(
        self, request: pb.UpsertQueueRequest, context: Context
    ) -> pb.UpsertQueueResponse:
        stats = await self._engine.queues.upsert(config_in(request.queue))
        return pb.UpsertQueueResponse(queue=queue_out(stats.config))

    async def GetQueue(self, request: pb.GetQueueRequest, context: Context) -> pb.GetQueueResponse:
        validate.name(request.name, "name")
        return stats_out(await self._engine.queues.get(request.name))

    async def ListQueues(
        self, request: pb.ListQueuesRequest, context: Context
    ) -> pb.ListQueuesResponse:
        limit = validate.page_size(request.page_size, default=100)
        after = ""
        if request.page_token:
            try:
                after = base64.urlsafe_b64decode(request.page_token.encode()).decode()
            except ValueError:
                raise InvalidArgument("page_token", "is not a token this service issued") from None
        page = await self._engine.queues.list_page(after=after, limit=limit + 1)
        token = ""
        if len(page) > limit:
            page = page[:limit]
            token = base64.urlsafe_b64encode(page[-1].config.name.encode()).decode()
        return pb.ListQueuesResponse(queues=[stats_out(s) for s in page], next_page_token=token)

    async def DeleteQueue(
        self, request: pb.DeleteQueueRequest, context: Context
    ) -> pb.DeleteQueueResponse:
        validate.name(request.name, "name")
        await self._engine.queues.delete(request.name)
        return pb.DeleteQueueResponse()


def config_in(queue: pb.Queue) -> QueueConfig:
    """A validated queue configuration from the contract's Queue."""
    validate.name(queue.name, "queue.name")
    for field, value in [
        ("queue.concurrency", queue.concurrency),
        ("queue.worker_concurrency", queue.worker_concurrency),
    ]:
        if value < 0:
            raise InvalidArgument(field, f"must not be negative (0 means no limit), not {value}")
    rate_limit, rate_period = 0, None
    if queue.HasField("rate_limit"):
        rate_limit = queue.rate_limit.limit
        if rate_limit <= 0:
            raise InvalidArgument("queue.rate_limit.limit", f"must be positive, not {rate_limit}")
        seconds = _seconds(queue.rate_limit.period, "queue.rate_limit.period")
        if seconds is None:
            raise InvalidArgument("queue.rate_limit.period", "must be a positive duration")
        rate_period = timedelta(seconds=seconds)
    timeout = None
    if queue.HasField("start_to_close_timeout"):
        seconds = _seconds(queue.start_to_close_timeout, "queue.start_to_close_timeout")
        if seconds is None:
            raise InvalidArgument("queue.start_to_close_timeout", "must be a positive duration")
        timeout = timedelta(seconds=seconds)
    if queue.partitioned and queue.concurrency == 0:
        raise InvalidArgument(
            "queue.concurrency", "must be positive on a partitioned queue (it applies per key)"
        )
    return QueueConfig(
        name=queue.name,
        concurrency=queue.concurrency,
        worker_concurrency=queue.worker_concurrency,
        rate_limit=rate_limit,
        rate_period=rate_period,
        priority_enabled=queue.priority_enabled,
        partitioned=queue.partitioned,
        start_to_close_timeout=timeout,
    )


def _seconds(value: Duration, field: str) -> float | None:
    """A positive duration in seconds; None when zero."""
    seconds = validate.seconds(value, field, default=0.0, maximum=_MAX_SECONDS)
    return seconds if seconds > 0 else None


def _duration(value: timedelta | None) -> Duration | None:
    if value is None:
        return None
    result = Duration()
    result.FromTimedelta(value)
    return result


def queue_out(config: QueueConfig) -> pb.Queue:
    """A stored queue configuration as the contract's Queue."""
    rate_limit = None
    if config.rate_limit > 0:
        rate_limit = pb.RateLimit(limit=config.rate_limit, period=_duration(config.rate_period))
    return pb.Queue(
        name=config.name,
        concurrency=config.concurrency,
        worker_concurrency=config.worker_concurrency,
        rate_limit=rate_limit,
        priority_enabled=config.priority_enabled,
        partitioned=config.partitioned,
        start_to_close_timeout=_duration(config.start_to_close_timeout),
    )


def stats_out(stats: QueueStats) -> pb.GetQueueResponse:
    """A queue with its counts as GetQueueResponse."""
    return pb.GetQueueResponse(
        queue=queue_out(stats.config), depth=stats.depth, running=stats.running
    )
