"""Cron schedules as the SDK shows them, and the requests `Client` and
`AsyncClient` share for them (free of I/O, like `_client_shared`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from baton._payload import Serializer
from baton._proto.baton.v1 import schedule_service_pb2
from baton._registry import workflow_name_of

__all__ = [
    "ScheduleInfo",
    "backfill_schedule_request",
    "create_schedule_request",
    "schedule_info_from_proto",
]

_JSON = Serializer("json")


@dataclass(frozen=True)
class ScheduleInfo:
    """A cron schedule. Each tick starts its workflow with the id
    ``<name>-<tick>`` (the tick in ISO 8601 UTC, e.g.
    ``nightly-2024-05-01T02:00:00Z``) and the arguments
    ``(scheduled_time, context)``: the tick as that ISO string
    (``datetime.fromisoformat`` reads it) and the schedule's context."""

    name: str
    """The schedule's name."""
    cron: str
    """5 fields (minute hour day month weekday), or 6 with seconds first."""
    workflow_name: str
    """The workflow each tick starts."""
    time_zone: str = ""
    """The IANA time zone the cron is read in; empty: UTC."""
    queue: str = ""
    """The queue its workflows start on; empty: started directly."""
    context: Any = None
    """Passed to each workflow after its scheduled time (JSON)."""
    paused: bool = False
    """Whether it is paused."""
    last_fired_at: datetime | None = None
    """The last tick that fired (UTC)."""
    next_fire_at: datetime | None = None
    """The next tick (UTC; recomputed on resume while paused)."""


def create_schedule_request(
    name: str,
    workflow: str | Callable[..., Any],
    cron: str,
    *,
    time_zone: str | None,
    queue: str | None,
    context: Any,
    paused: bool,
) -> schedule_service_pb2.CreateScheduleRequest:
    """Builds a CreateSchedule request (the context is always JSON)."""
    schedule = schedule_service_pb2.Schedule(
        name=name,
        cron=cron,
        time_zone=time_zone or "",
        workflow_name=workflow_name_of(workflow),
        queue=queue or "",
        paused=paused,
    )
    if context is not None:
        schedule.context.CopyFrom(_JSON.encode(context))
    return schedule_service_pb2.CreateScheduleRequest(schedule=schedule)


def backfill_schedule_request(
    name: str, start: datetime, end: datetime
) -> schedule_service_pb2.BackfillScheduleRequest:
    """Builds a BackfillSchedule request (naive datetimes are taken as UTC)."""
    request = schedule_service_pb2.BackfillScheduleRequest(name=name)
    request.start.FromDatetime(_aware(start))
    request.end.FromDatetime(_aware(end))
    return request


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def schedule_info_from_proto(schedule: schedule_service_pb2.Schedule) -> ScheduleInfo:
    """Converts a `Schedule` message."""
    return ScheduleInfo(
        name=schedule.name,
        cron=schedule.cron,
        workflow_name=schedule.workflow_name,
        time_zone=schedule.time_zone,
        queue=schedule.queue,
        context=_JSON.decode(schedule.context) if schedule.HasField("context") else None,
        paused=schedule.paused,
        last_fired_at=(
            schedule.last_fired_at.ToDatetime(tzinfo=UTC)
            if schedule.HasField("last_fired_at")
            else None
        ),
        next_fire_at=(
            schedule.next_fire_at.ToDatetime(tzinfo=UTC)
            if schedule.HasField("next_fire_at")
            else None
        ),
    )
