"""Deadlines of durable waits (``wait_deadlines``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from baton_server.connector import Tx


async def deadline(
    tx: Tx, workflow_id: str, function_id: int, duration: timedelta
) -> tuple[datetime, float]:
    """The wait's deadline, recorded now unless it was before, and the seconds left."""
    params = {"workflow_id": workflow_id, "function_id": function_id, "duration": duration}
    await tx.execute("record_wait_deadline", params)
    row = await tx.fetch_one("get_wait_deadline", params)
    assert row is not None, "the deadline was just recorded"
    return row["deadline"], float(row["remaining"])
