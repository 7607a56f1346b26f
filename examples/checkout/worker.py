"""The checkout worker: hosts the checkout workflow and its steps.

Run: ``python examples/checkout/worker.py`` (``BATON_TARGET`` names the service).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from baton import Worker, WorkflowContext

PAYMENT_URL = "payment_url"  # the event the shop reads
PAYMENT_STATUS = "payment_status"  # the topic the webhook sends to
PROGRESS = "progress"  # the stream of progress notes

worker = Worker(os.environ.get("BATON_TARGET"), app_version="checkout-v1")


@worker.step()
def reserve_inventory(order: dict[str, Any]) -> bool:
    return bool(order.get("items"))


@worker.step(max_attempts=5, interval=0.5, backoff=2.0)
def create_payment(order: dict[str, Any]) -> str:
    return f"https://pay.example/session/{order['id']}-{uuid.uuid4().hex[:8]}"


@worker.step()
def ship(order: dict[str, Any]) -> str:
    return f"parcel-{order['id']}"


@worker.step()
def release_inventory(order: dict[str, Any]) -> None:
    return None


@worker.workflow()
def checkout(ctx: WorkflowContext, order: dict[str, Any], payment_timeout: float = 300) -> str:
    if not ctx.run(reserve_inventory, order):
        ctx.write_stream(PROGRESS, "nothing to buy")
        return "failed"
    ctx.write_stream(PROGRESS, "inventory reserved")
    url = ctx.run(create_payment, order)
    ctx.set_event(PAYMENT_URL, url)  # the shop redirects the customer there
    ctx.write_stream(PROGRESS, "waiting for payment")
    note = ctx.recv(PAYMENT_STATUS, timeout=payment_timeout)  # None on timeout
    if note is None or note.get("status") != "completed":
        ctx.run(release_inventory, order)
        ctx.write_stream(PROGRESS, "payment failed" if note else "payment timed out")
        ctx.close_stream(PROGRESS)
        return "failed"
    ctx.write_stream(PROGRESS, "paid")
    parcel = ctx.run(ship, order)
    ctx.write_stream(PROGRESS, f"shipped {parcel}")
    ctx.close_stream(PROGRESS)
    return "done"


if __name__ == "__main__":
    worker.run()
