"""What code inside a step may do for its workflow: write its streams.

A step is not numbered in the journal as its writes would need to be for
exactly once, so these writes are **at least once**: a step that fails and is
retried, or whose worker crashes before the step is recorded, writes again.
Readers see every value of every try, in the order written. Write from the
workflow itself (``ctx.write_stream``) for exactly once.
"""

from __future__ import annotations

from typing import Any

from baton import _comms as comms

__all__ = ["write_stream", "write_stream_async"]


def write_stream(key: str, value: Any) -> int:
    """Appends ``value`` to stream ``key`` of the running step's workflow (at least once).

    For plain ``def`` steps (they run in a thread). Returns the value's offset.

    Raises:
        RuntimeError: Not called from inside a step (or called on the event loop:
            use `write_stream_async` in ``async def`` steps).
        FailedPrecondition: The stream is closed.
    """
    core = comms.step_core()
    return core.call_from_thread(comms.write_stream(core, 0, key, value), settle=False)


async def write_stream_async(key: str, value: Any) -> int:
    """`write_stream` for ``async def`` steps."""
    core = comms.step_core()
    return await comms.write_stream(core, 0, key, value)
