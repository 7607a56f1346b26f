"""The payment provider's webhook: forwards a payment notification to the
waiting checkout workflow.

Run: ``python examples/checkout/webhook.py ORDER_ID [completed|failed]``.
"""

from __future__ import annotations

import os
import sys

from baton import Client


def main(order_id: str, status: str) -> None:
    with Client(os.environ.get("BATON_TARGET")) as client:
        # The idempotency key makes a webhook delivered twice count once.
        client.send(
            f"order-{order_id}",
            {"status": status},
            topic="payment_status",
            idempotency_key=f"payment-{order_id}",
        )
    print(f"notified order-{order_id}: {status}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "completed")
