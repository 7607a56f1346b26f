"""Schedule operations: create, read, pause, resume, delete, trigger, backfill,
and the schedules workers declare when they connect.

Every tick starts its workflow with the id ``<schedule>-<tick>`` (see
:mod:`baton_server.engine.cron`) through one ``INSERT ... ON CONFLICT DO
NOTHING``, so a tick started twice (by two replicas, a restart, a backfill
over a fired window) starts once. The workflow's input is the JSON array
``[scheduled_time, context]``: the tick in ISO 8601 UTC, and the schedule's
context (``null`` when unset). Times come from the database's clock, which
every replica shares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from baton_server.connector import Connector, Tx
from baton_server.engine import cron
from baton_server.engine.queues import queue_not_found
from baton_server.engine.starts import OnStarted
from baton_server.errors import AlreadyExists, InvalidArgument, NotFound
from baton_server.store import queues, schedules, starts
from baton_server.store.models import Payload
from baton_server.store.schedules import DeclaredSchedule, NewSchedule, Schedule
from baton_server.store.starts import NewStart

# The most ticks one backfill may start.
MAX_BACKFILL_TICKS = 10_000


def schedule_not_found(name: str) -> NotFound:
    """The error for an unknown schedule."""
    return NotFound(
        f"schedule {name!r} not found", reason="SCHEDULE_NOT_FOUND", metadata={"schedule": name}
    )


def tick_input(tick: datetime, context: Payload | None) -> Payload:
    """A tick's workflow input: the JSON array ``[scheduled_time, context]``."""
    context_text = context.data.decode("utf-8") if context is not None else "null"
    return Payload("json", f"[{json.dumps(cron.tick_text(tick))}, {context_text}]".encode())


def tick_start(schedule: Schedule, tick: datetime) -> NewStart:
    """The start of ``schedule``'s workflow for ``tick``."""
    return NewStart(
        workflow_id=cron.tick_workflow_id(schedule.name, tick),
        workflow_name=schedule.workflow_name,
        input=tick_input(tick, schedule.context),
        queue=schedule.queue,
    )


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule to create, validated by the caller."""

    name: str
    cron: str
    time_zone: str
    workflow_name: str
    queue: str = ""
    context: Payload | None = None
    paused: bool = False


class Schedules:
    """One per replica: the schedule operations of ScheduleService."""

    def __init__(
        self,
        connector: Connector,
        on_started: OnStarted,
        wake_scheduler: Callable[[], None],
    ) -> None:
        self._connector = connector
        self._on_started = on_started
        self._wake_scheduler = wake_scheduler

    async def create(self, spec: ScheduleSpec) -> Schedule:
        """Creates a schedule; its first tick is the first after now.

        Raises:
            InvalidArgument: an invalid cron or time zone.
            NotFound: the queue does not exist.
            AlreadyExists: the name is taken (reason SCHEDULE_EXISTS).
        """
        parsed = cron.parse(spec.cron, spec.time_zone, cron_field="schedule.cron",
                            zone_field="schedule.time_zone")  # fmt: skip
        async with self._connector.transaction() as tx:
            await _check_queue(tx, spec.queue)
            now = await schedules.database_now(tx)
            created = await schedules.insert(
                tx,
                NewSchedule(
                    name=spec.name,
                    cron=parsed.expression,
                    time_zone=spec.time_zone,
                    workflow_name=spec.workflow_name,
                    queue=spec.queue,
                    context=spec.context,
                    paused=spec.paused,
                    next_fire_at=parsed.next_after(now),
                ),
            )
            if created is None:
                raise AlreadyExists(
                    f"a schedule named {spec.name!r} exists",
                    reason="SCHEDULE_EXISTS",
                    metadata={"schedule": spec.name},
                )
            await schedules.notify_changed(tx, spec.name)
        self._wake_scheduler()
        return created

    async def get(self, name: str) -> Schedule:
        """The schedule; NotFound when there is none."""
        async with self._connector.read() as tx:
            found = await schedules.get(tx, name)
        if found is None:
            raise schedule_not_found(name)
        return found

    async def list_page(self, *, after: str, limit: int) -> list[Schedule]:
        """A page of schedules by name."""
        async with self._connector.read() as tx:
            return await schedules.list_page(tx, after=after, limit=limit)

    async def pause(self, name: str) -> Schedule:
        """Stops the schedule from firing; NotFound when there is none."""
        async with self._connector.transaction() as tx:
            updated = await schedules.set_paused(tx, name, paused=True, next_fire_at=None)
            if updated is None:
                raise schedule_not_found(name)
            await schedules.notify_changed(tx, name)
        return updated

    async def resume(self, name: str) -> Schedule:
        """Lets the schedule fire again from its next tick after now (ticks that
        passed while paused are not started); NotFound when there is none."""
        async with self._connector.transaction() as tx:
            found = await schedules.get(tx, name)
            if found is None:
                raise schedule_not_found(name)
            if not found.paused:
                return found
            parsed = cron.parse(found.cron, found.time_zone)
            now = await schedules.database_now(tx)
            updated = await schedules.set_paused(
                tx, name, paused=False, next_fire_at=parsed.next_after(now)
            )
            if updated is None:  # deleted meanwhile
                raise schedule_not_found(name)
            await schedules.notify_changed(tx, name)
        self._wake_scheduler()
        return updated

    async def delete(self, name: str) -> None:
        """Deletes the schedule (its workflows stay); NotFound when there is none."""
        async with self._connector.transaction() as tx:
            if not await schedules.delete(tx, name):
                raise schedule_not_found(name)
            await schedules.notify_changed(tx, name)

    async def trigger(self, name: str) -> str:
        """Starts the schedule's workflow once, now (the database's time, to the
        microsecond, is its scheduled time); returns its id. Works when paused."""
        async with self._connector.transaction() as tx:
            found = await schedules.get(tx, name)
            if found is None:
                raise schedule_not_found(name)
            await _check_queue(tx, found.queue)
            now = await schedules.database_now(tx)
            start = tick_start(found, now)
            created = await starts.insert_many(tx, [start])
        if created:
            self._on_started(created.values())
        return start.workflow_id

    async def backfill(self, name: str, start: datetime, end: datetime) -> list[str]:
        """Starts every tick in ``[start, end)`` (up to now) that has not started;
        returns the ids started, in tick order.

        Raises:
            NotFound: no such schedule, or its queue is gone.
            InvalidArgument: ``end`` is not after ``start``, or the window holds
                more than 10000 ticks.
        """
        if end <= start:
            raise InvalidArgument("end", "must be after start")
        async with self._connector.transaction() as tx:
            found = await schedules.get(tx, name)
            if found is None:
                raise schedule_not_found(name)
            await _check_queue(tx, found.queue)
            now = await schedules.database_now(tx)
            parsed = cron.parse(found.cron, found.time_zone)
            items: list[NewStart] = []
            for tick in parsed.ticks(start, min(end, now)):
                if len(items) == MAX_BACKFILL_TICKS:
                    raise InvalidArgument(
                        "end",
                        f"the window holds more than {MAX_BACKFILL_TICKS} ticks; "
                        "backfill it in parts",
                    )
                items.append(tick_start(found, tick))
            created = await starts.insert_many(tx, items)
        if created:
            self._on_started(created.values())
        return [item.workflow_id for item in items if item.workflow_id in created]

    async def declare(self, tx: Tx, declared: list[DeclaredSchedule]) -> None:
        """Stores the schedules a connecting worker declares, inside the caller's
        transaction (see :func:`baton_server.store.schedules.declare`)."""
        if not declared:
            return
        now = await schedules.database_now(tx)
        for item in declared:
            parsed = cron.parse(item.cron, item.time_zone)
            if await schedules.declare(tx, item, next_fire_at=parsed.next_after(now)):
                await schedules.notify_changed(tx, item.workflow_name)


async def _check_queue(tx: Tx, queue: str) -> None:
    if queue and not await queues.get_many(tx, [queue]):
        raise queue_not_found(queue)
