"""The shop: starts a checkout, prints the payment URL, then the progress as
it streams in, then the outcome.

Run: ``python examples/checkout/shop.py ORDER_ID`` (``BATON_TARGET`` names the service).
"""

from __future__ import annotations

import os
import sys

from baton import Client


def main(order_id: str) -> None:
    with Client(os.environ.get("BATON_TARGET")) as client:
        order = {"id": order_id, "items": ["book"]}
        handle = client.start_workflow("checkout", order, workflow_id=f"order-{order_id}")
        url = client.get_event(handle.workflow_id, "payment_url", timeout=30)
        print(f"pay at: {url}", flush=True)  # a web shop would redirect here
        for note in client.read_stream(handle.workflow_id, "progress"):
            print(f"progress: {note}", flush=True)
        print(f"outcome: {handle.result(timeout=60)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
