"""Reads and writes of ``messages`` (Send/Recv)."""

from __future__ import annotations

from dataclasses import dataclass

from baton_server.connector import Tx
from baton_server.store.models import Payload, payload_from


@dataclass(frozen=True)
class Message:
    """An unconsumed message, locked by the transaction that took it."""

    message_id: int
    payload: Payload | None


async def insert(
    tx: Tx,
    *,
    destination_id: str,
    topic: str,
    payload: Payload | None,
    idempotency_key: str | None,
) -> bool:
    """Queues a message. False: the destination does not exist, or the
    idempotency key was used before (the caller tells them apart)."""
    row = await tx.fetch_one(
        "insert_message",
        {
            "destination_id": destination_id,
            "topic": topic,
            "payload_encoding": payload.encoding if payload else None,
            "payload": payload.data if payload else None,
            "idempotency_key": idempotency_key,
        },
    )
    return row is not None


async def take(tx: Tx, destination_id: str, topic: str) -> Message | None:
    """Locks the oldest unconsumed message of ``(destination_id, topic)``, if any."""
    row = await tx.fetch_one("take_message", {"destination_id": destination_id, "topic": topic})
    if row is None:
        return None
    return Message(row["message_id"], payload_from(row["payload_encoding"], row["payload"]))


async def consume(tx: Tx, message_id: int) -> None:
    """Marks a taken message consumed."""
    await tx.execute("consume_message", {"message_id": message_id})


async def notify(tx: Tx, workflow_id: str) -> None:
    """Wakes the waiters on ``workflow_id``'s messages, events and streams at commit."""
    await tx.execute("notify_comms", {"workflow_id": workflow_id})


async def lock_inbox(tx: Tx, workflow_id: str) -> None:
    """Serializes, until ``tx`` ends, with sends to and releasing recvs of ``workflow_id``."""
    await tx.execute("lock_inbox", {"workflow_id": workflow_id})


async def wake_released_recv(tx: Tx, workflow_id: str, topic: str) -> bool:
    """Ends the wait of ``workflow_id`` if it is released in a recv on ``topic``,
    and wakes the dispatchers when ``tx`` commits; whether it was so waiting."""
    return await tx.execute("wake_released_recv", {"workflow_id": workflow_id, "topic": topic}) > 0
