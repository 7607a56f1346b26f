"""A workflow run's `ContextCore` for SDK unit tests, with no service behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from baton._context import ContextCore
from baton._payload import Serializer
from baton._proto.baton.v1 import common_pb2
from baton._run_state import RunState


def offline_core(
    journal: Iterable[common_pb2.Step] = (),
    *,
    attempt: int = 2,
    state: RunState | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    checkpoints: Any = None,
) -> ContextCore:
    """The run of workflow ``order-7`` (``checkout``) with no rpc: any call
    that would reach the service fails loudly (and, without ``loop``, so does
    anything that needs the worker's loop)."""
    return ContextCore(
        workflow_id="order-7",
        workflow_name="checkout",
        attempt=attempt,
        journal=journal,
        serializer=Serializer(),
        rpc=None,
        loop=loop,
        state=state or RunState(),
        checkpoints=checkpoints,
    )
