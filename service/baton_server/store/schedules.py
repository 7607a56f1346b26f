"""Cron schedules: their rows, and the claim of due ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from baton_server.connector import Tx
from baton_server.store.models import Payload


@dataclass(frozen=True)
class Schedule:
    """A row of ``schedules``."""

    name: str
    cron: str
    """5 fields, or 6 with seconds first."""
    time_zone: str
    """IANA zone the cron is read in; empty: UTC."""
    workflow_name: str
    queue: str
    """The queue its workflows start on; empty: started directly."""
    context: Payload | None
    """Passed to each workflow with its scheduled time (JSON)."""
    paused: bool
    last_fired_at: datetime | None
    """The last tick that fired."""
    next_fire_at: datetime
    """The next tick to fire (stale while paused: resuming recomputes it)."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Schedule:
        """Builds it from a ``schedules`` row."""
        context = None
        if row["context_encoding"] is not None:
            context = Payload(row["context_encoding"], bytes(row["context"]))
        return cls(
            name=row["name"],
            cron=row["cron"],
            time_zone=row["time_zone"],
            workflow_name=row["workflow_name"],
            queue=row["queue"],
            context=context,
            paused=row["paused"],
            last_fired_at=row["last_fired_at"],
            next_fire_at=row["next_fire_at"],
        )


@dataclass(frozen=True)
class NewSchedule:
    """A schedule to create."""

    name: str
    cron: str
    time_zone: str
    workflow_name: str
    queue: str
    context: Payload | None
    paused: bool
    next_fire_at: datetime


async def insert(tx: Tx, new: NewSchedule) -> Schedule | None:
    """Creates the schedule; ``None`` when the name is taken."""
    row = await tx.fetch_one(
        "insert_schedule",
        {
            "name": new.name,
            "cron": new.cron,
            "time_zone": new.time_zone,
            "workflow_name": new.workflow_name,
            "queue": new.queue,
            "context_encoding": new.context.encoding if new.context else None,
            "context": new.context.data if new.context else None,
            "paused": new.paused,
            "next_fire_at": new.next_fire_at,
        },
    )
    return Schedule.from_row(row) if row is not None else None


async def get(tx: Tx, name: str) -> Schedule | None:
    """The schedule called ``name``, if any."""
    row = await tx.fetch_one("get_schedule", {"name": name})
    return Schedule.from_row(row) if row is not None else None


async def list_page(tx: Tx, *, after: str, limit: int) -> list[Schedule]:
    """Schedules by name, after ``after``."""
    rows = await tx.fetch("list_schedules", {"after": after, "limit": limit})
    return [Schedule.from_row(row) for row in rows]


async def set_paused(
    tx: Tx, name: str, *, paused: bool, next_fire_at: datetime | None
) -> Schedule | None:
    """Pauses or resumes the schedule (resumed: it fires from ``next_fire_at``);
    ``None`` when there is no such schedule."""
    row = await tx.fetch_one(
        "set_schedule_paused", {"name": name, "paused": paused, "next_fire_at": next_fire_at}
    )
    return Schedule.from_row(row) if row is not None else None


async def delete(tx: Tx, name: str) -> bool:
    """Deletes the schedule; False when there was none."""
    return await tx.execute("delete_schedule", {"name": name}) > 0


@dataclass(frozen=True)
class DeclaredSchedule:
    """A schedule a worker declared for a workflow it hosts (named after it)."""

    workflow_name: str
    cron: str
    time_zone: str = ""


async def declare(tx: Tx, declared: DeclaredSchedule, *, next_fire_at: datetime) -> bool:
    """Creates or updates a worker-declared schedule; False when it was already
    stored with that cron, zone and workflow (nothing changed)."""
    row = await tx.fetch_one(
        "declare_schedule",
        {
            "name": declared.workflow_name,
            "cron": declared.cron,
            "time_zone": declared.time_zone,
            "workflow_name": declared.workflow_name,
            "next_fire_at": next_fire_at,
        },
    )
    return row is not None


async def claim_due(tx: Tx, limit: int) -> tuple[list[Schedule], datetime | None]:
    """Locks up to ``limit`` due, unpaused schedules that no other transaction
    holds (``FOR UPDATE SKIP LOCKED``); returns them and the database's time."""
    rows = await tx.fetch("claim_due_schedules", {"limit": limit})
    now = rows[0]["now"] if rows else None
    return [Schedule.from_row(row) for row in rows], now


async def advance(
    tx: Tx,
    name: str,
    *,
    expected: datetime,
    next_fire_at: datetime,
    last_fired_at: datetime | None,
) -> bool:
    """Moves the schedule on to ``next_fire_at``; False when its next tick is no
    longer ``expected`` (someone else moved it: nothing is changed)."""
    changed = await tx.execute(
        "advance_schedule",
        {
            "name": name,
            "expected": expected,
            "next_fire_at": next_fire_at,
            "last_fired_at": last_fired_at,
        },
    )
    return changed > 0


async def seconds_to_next_tick(tx: Tx) -> float | None:
    """Seconds until the nearest tick of any unpaused schedule (negative: due)."""
    row = await tx.fetch_one("seconds_to_next_tick")
    return None if row is None or row["seconds"] is None else float(row["seconds"])


async def database_now(tx: Tx) -> datetime:
    """The database's clock (``clock_timestamp()``), shared by every replica."""
    row = await tx.fetch_one("database_now")
    assert row is not None
    now: datetime = row["now"]
    return now


async def notify_changed(tx: Tx, name: str) -> None:
    """Wakes every replica's scheduler (on commit)."""
    await tx.execute("notify_schedules", {"name": name})
