"""Aggregate reads for metrics."""

from __future__ import annotations

from baton_server.connector import Tx


async def unfinished_counts(tx: Tx) -> dict[tuple[str, str], int]:
    """``(queue, status) -> count`` of ENQUEUED and PENDING workflows."""
    rows = await tx.fetch("unfinished_counts")
    return {(row["queue"], row["status"]): int(row["n"]) for row in rows}
