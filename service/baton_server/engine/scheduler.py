"""Fires due schedule ticks. Every replica runs one loop.

A round, in one transaction: lock the due, unpaused schedules no other replica
is firing (``FOR UPDATE SKIP LOCKED``), start the workflow of each due tick
(``INSERT ... ON CONFLICT DO NOTHING`` on the tick's deterministic id), and move
each schedule to its next tick after now with a guarded update. Two replicas
therefore never fire the same schedule at once, and a tick fired before a crash
or restart is not started again (its id is taken). A tick more than
:data:`CATCH_UP_SECONDS` overdue (no replica was running) is skipped, not
started late; ``BackfillSchedule`` starts such ticks on request.

Between rounds the loop sleeps until the nearest tick (at most
:data:`MAX_SLEEP_SECONDS`), and is woken early by ``baton_schedules``
notifications when a schedule is created, resumed or declared.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from baton_server.connector import Connector, DatabaseUnavailable, Tx
from baton_server.engine import cron
from baton_server.engine.schedules import tick_start
from baton_server.engine.starts import OnStarted
from baton_server.engine.waiters import wait_event
from baton_server.errors import InvalidArgument
from baton_server.store import queues, schedules, starts
from baton_server.store.schedules import Schedule
from baton_server.store.starts import NewStart

log = logging.getLogger("baton.scheduler")

CATCH_UP_SECONDS = 60.0
"""Ticks overdue by more than this are skipped rather than started late."""
MAX_SLEEP_SECONDS = 5.0
"""Longest pause between rounds (schedules changed on a replica whose
notification was lost are seen by then)."""
# Schedules fired per transaction.
_BATCH = 100
# Shortest pause: a tick another replica is firing right now stays due until it
# commits, and a clock a little behind the database's must not spin.
_MIN_SLEEP = 0.02
# How far a schedule whose cron can no longer be read is pushed back.
_BROKEN_RETRY = timedelta(hours=1)
# Makes a tick due exactly now part of the half-open window [next, now].
_EPSILON = timedelta(microseconds=1)


class Scheduler:
    """One per replica."""

    def __init__(self, connector: Connector, on_started: OnStarted) -> None:
        self._connector = connector
        self._on_started = on_started
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Asks for a round soon (schedules changed)."""
        self._wake.set()

    async def run(self) -> None:
        """Fires due ticks until cancelled."""
        while True:
            self._wake.clear()
            pause = MAX_SLEEP_SECONDS
            try:
                while await self.fire_due() == _BATCH:
                    pass
                async with self._connector.transaction() as tx:
                    nearest = await schedules.seconds_to_next_tick(tx)
                if nearest is not None:
                    pause = min(pause, max(nearest, _MIN_SLEEP))
            except DatabaseUnavailable as exc:
                self._connector.health.paused(log, "scheduler", exc)
            except Exception:
                log.exception("scheduler round failed")
            await wait_event(self._wake, pause)

    async def fire_due(self) -> int:
        """One round: fires the due ticks of up to a batch of schedules; returns
        how many schedules it fired."""
        async with self._connector.transaction() as tx:
            due, now = await schedules.claim_due(tx, _BATCH)
            if not due or now is None:
                return 0
            items: list[NewStart] = []
            for schedule in due:
                items += await self._fire(tx, schedule, now)
            created = await starts.insert_many(tx, items)
        if created:
            log.debug("started %d scheduled workflow(s)", len(created))
            self._on_started(created.values())
        return len(due)

    async def _fire(self, tx: Tx, schedule: Schedule, now: datetime) -> list[NewStart]:
        """The starts of ``schedule``'s due ticks; moves it on to its next tick."""
        try:
            parsed = cron.parse(schedule.cron, schedule.time_zone)
        except InvalidArgument as exc:  # e.g. a time zone gone from this host's tzdata
            log.error("schedule %r cannot fire: %s", schedule.name, exc.message)
            await schedules.advance(
                tx,
                schedule.name,
                expected=schedule.next_fire_at,
                next_fire_at=now + _BROKEN_RETRY,
                last_fired_at=None,
            )
            return []
        oldest = now - timedelta(seconds=CATCH_UP_SECONDS)
        if schedule.next_fire_at < oldest:
            log.warning(
                "schedule %r: skipping ticks from %s to %s (more than %gs overdue; "
                "BackfillSchedule starts them)",
                schedule.name,
                cron.tick_text(schedule.next_fire_at),
                cron.tick_text(oldest),
                CATCH_UP_SECONDS,
            )
        ticks = list(parsed.ticks(max(schedule.next_fire_at, oldest), now + _EPSILON))
        if schedule.queue and not await queues.get_many(tx, [schedule.queue]):
            log.error(
                "schedule %r: queue %r does not exist; tick(s) %s not started",
                schedule.name,
                schedule.queue,
                ", ".join(cron.tick_text(t) for t in ticks),
            )
            ticks = []
        await schedules.advance(
            tx,
            schedule.name,
            expected=schedule.next_fire_at,
            next_fire_at=parsed.next_after(now),
            last_fired_at=ticks[-1] if ticks else None,
        )
        return [tick_start(schedule, tick) for tick in ticks]
