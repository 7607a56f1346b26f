"""Cron expressions read in a time zone, and the ids of the ticks they make.

An expression has 5 fields (minute hour day month weekday), or 6 with seconds
first (``*/5 * * * * *``: every five seconds), as croniter reads them. Ticks are
computed in the schedule's IANA time zone (so ``0 9 * * *`` in
``Europe/Paris`` is 09:00 Paris time, summer and winter) and handled in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from baton_server.errors import InvalidArgument


@dataclass(frozen=True)
class Cron:
    """A validated cron expression and its time zone."""

    expression: str
    zone: tzinfo

    def _iter(self, after: datetime) -> croniter:
        return croniter(
            self.expression,
            after.astimezone(self.zone),
            second_at_beginning=_has_seconds(self.expression),
        )

    def next_after(self, after: datetime) -> datetime:
        """The first tick strictly after ``after``, in UTC."""
        tick: datetime = self._iter(after).get_next(datetime)
        return tick.astimezone(UTC)

    def ticks(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The ticks in ``[start, end)``, in UTC, in order."""
        it = self._iter(start - timedelta(microseconds=1))
        while True:
            tick: datetime = it.get_next(datetime)
            tick = tick.astimezone(UTC)
            if tick >= end:
                return
            yield tick


def _has_seconds(expression: str) -> bool:
    return len(expression.split()) == 6


def parse(
    expression: str, time_zone: str, *, cron_field: str = "cron", zone_field: str = "time_zone"
) -> Cron:
    """Validates a cron expression and an IANA time zone (empty: UTC).

    Raises:
        InvalidArgument: naming ``cron_field`` or ``zone_field``.
    """
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise InvalidArgument(
            cron_field,
            f"{expression!r} has {len(fields)} fields; a cron has 5 "
            "(minute hour day month weekday), or 6 with seconds first",
        )
    if not croniter.is_valid(" ".join(fields), second_at_beginning=len(fields) == 6):
        raise InvalidArgument(cron_field, f"{expression!r} is not a valid cron expression")
    return Cron(" ".join(fields), zone(time_zone, zone_field))


def zone(time_zone: str, field: str = "time_zone") -> tzinfo:
    """The IANA time zone called ``time_zone``; empty is UTC.

    Raises:
        InvalidArgument: naming ``field``, for an unknown zone.
    """
    if not time_zone:
        return UTC
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(
            field, f"{time_zone!r} is not an IANA time zone (e.g. Europe/Paris)"
        ) from None


def tick_text(tick: datetime) -> str:
    """A tick in ISO 8601 UTC: ``2024-05-01T02:00:00Z`` (microseconds only when
    there are some)."""
    tick = tick.astimezone(UTC)
    text = tick.strftime("%Y-%m-%dT%H:%M:%S")
    if tick.microsecond:
        text += f".{tick.microsecond:06d}"
    return text + "Z"


def tick_workflow_id(schedule_name: str, tick: datetime) -> str:
    """The workflow id of a schedule's tick: ``<schedule>-<tick>``."""
    return f"{schedule_name}-{tick_text(tick)}"
