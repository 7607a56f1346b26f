"""Reads and writes of ``streams`` and ``stream_entries``."""

from __future__ import annotations

from dataclasses import dataclass

from baton_server.connector import Tx
from baton_server.store.models import Payload, payload_from


@dataclass(frozen=True)
class Entry:
    """One value of a stream."""

    offset: int
    value: Payload | None


@dataclass(frozen=True)
class StreamState:
    """What ends a reader: the stream is closed, or its workflow is not active."""

    workflow_status: str
    closed: bool


async def append(
    tx: Tx, *, workflow_id: str, key: str, value: Payload | None, function_id: int | None
) -> int | None:
    """Appends a value and returns its offset; ``None`` when the stream is closed."""
    row = await tx.fetch_one("next_stream_offset", {"workflow_id": workflow_id, "key": key})
    if row is None:
        return None
    offset = int(row["offset"])
    await tx.execute(
        "insert_stream_entry",
        {
            "workflow_id": workflow_id,
            "key": key,
            "offset": offset,
            "value_encoding": value.encoding if value else None,
            "value": value.data if value else None,
            "function_id": function_id,
        },
    )
    return offset


async def close(tx: Tx, workflow_id: str, key: str) -> None:
    """Closes a stream (idempotent)."""
    await tx.execute("close_stream", {"workflow_id": workflow_id, "key": key})


async def read(tx: Tx, workflow_id: str, key: str, from_offset: int, limit: int) -> list[Entry]:
    """Up to ``limit`` values from ``from_offset``, in order."""
    rows = await tx.fetch(
        "read_stream_entries",
        {"workflow_id": workflow_id, "key": key, "from_offset": from_offset, "limit": limit},
    )
    return [Entry(row["offset"], payload_from(row["value_encoding"], row["value"])) for row in rows]


async def state(tx: Tx, workflow_id: str, key: str) -> StreamState | None:
    """The stream's state; ``None`` when the workflow does not exist."""
    row = await tx.fetch_one("stream_state", {"workflow_id": workflow_id, "key": key})
    if row is None:
        return None
    return StreamState(row["status"], bool(row["closed"]))


async def running(tx: Tx, workflow_id: str, attempt: int) -> bool:
    """Whether ``attempt`` still owns the PENDING workflow (locked FOR SHARE until commit)."""
    row = await tx.fetch_one(
        "workflow_is_running", {"workflow_id": workflow_id, "attempt": attempt}
    )
    return row is not None
