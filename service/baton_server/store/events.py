"""Reads and writes of ``events`` and ``event_history``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from baton_server.connector import Tx
from baton_server.store.models import Payload, payload_from


@dataclass(frozen=True)
class Event:
    """An event's latest value."""

    key: str
    value: Payload | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Event:
        """Builds it from a row of ``events``."""
        return cls(row["key"], payload_from(row["value_encoding"], row["value"]), row["updated_at"])


async def set_value(
    tx: Tx, *, workflow_id: str, function_id: int, key: str, value: Payload | None
) -> None:
    """Sets the latest value and keeps it in the history under ``function_id``."""
    params = {
        "workflow_id": workflow_id,
        "function_id": function_id,
        "key": key,
        "value_encoding": value.encoding if value else None,
        "value": value.data if value else None,
    }
    await tx.execute("upsert_event", params)
    await tx.execute("insert_event_history", params)


async def lock(tx: Tx, workflow_id: str) -> None:
    """Takes the lock of a workflow's events, which a SetEvent and a release
    of one of their readers share, until ``tx`` ends."""
    await tx.execute("lock_events", {"workflow_id": workflow_id})


async def wake_released_readers(tx: Tx, workflow_id: str, key: str) -> int:
    """Ends the wait of the workflows released while reading this event, and
    wakes the dispatchers when ``tx`` commits; returns how many."""
    return await tx.execute("wake_released_readers", {"workflow_id": workflow_id, "key": key})


async def get(tx: Tx, workflow_id: str, key: str) -> Event | None:
    """An event's latest value, if it was ever set."""
    row = await tx.fetch_one("get_event", {"workflow_id": workflow_id, "key": key})
    return Event.from_row(row) if row else None


async def list_all(tx: Tx, workflow_id: str) -> list[Event]:
    """Every event of a workflow, by key."""
    return [
        Event.from_row(row) for row in await tx.fetch("list_events", {"workflow_id": workflow_id})
    ]
