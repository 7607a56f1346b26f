"""Streams: ordered, append-only values written by a workflow (exactly once)
or from inside its steps (at least once), read by anyone as they arrive.

Offsets come from the ``streams`` row, taken under its row lock, so values are
numbered 0, 1, 2, ... in commit order. A reader sends what is there from its
offset, then waits on this replica for a ``baton_comms`` notification (a write
or close) or a ``baton_status`` one (the workflow ended), with a periodic
re-check; it ends when the stream is closed or the workflow no longer active,
after sending every value written before that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from baton_server.connector import Connector, Tx
from baton_server.engine import journal
from baton_server.engine.journal import Caller, Replayed
from baton_server.engine.waiters import StatusWaiters, wait_event
from baton_server.errors import FailedPrecondition, stale_attempt, workflow_not_found
from baton_server.store import messages, streams, workflows
from baton_server.store.models import Payload
from baton_server.store.streams import Entry

RECHECK_SECONDS = 2.0
_READ_BATCH = 500
_ACTIVE = frozenset({"PENDING", "ENQUEUED"})


def _closed(workflow_id: str, key: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"stream {key!r} of workflow {workflow_id!r} is closed",
        reason="STREAM_CLOSED",
        metadata={"workflow_id": workflow_id, "key": key},
    )


class Streams:
    """WriteStream, CloseStream, ReadStream; one per replica."""

    def __init__(self, connector: Connector, waiters: StatusWaiters) -> None:
        self._connector = connector
        self._waiters = waiters

    async def write(self, caller: Caller, key: str, value: Payload | None) -> int:
        """Appends a value; returns its offset.

        ``caller.function_id == 0`` marks a write from inside a step: it is not
        a step of its own (at least once: a retried step writes again). Any
        other number records the write as that workflow step (exactly once).

        Raises:
            FailedPrecondition: The stream is closed, or the attempt is stale.
            NotFound: The workflow does not exist.
        """
        try:
            async with self._connector.transaction() as tx:
                if caller.function_id == 0:
                    await self._check_running(tx, caller)
                else:
                    done = await journal.recorded(tx, caller)
                    if done is not None:
                        raise Replayed(done)
                offset = await streams.append(
                    tx,
                    workflow_id=caller.workflow_id,
                    key=key,
                    value=value,
                    function_id=caller.function_id or None,
                )
                if offset is None:
                    raise _closed(caller.workflow_id, key)
                if caller.function_id != 0:
                    await journal.record(
                        tx, caller, journal.WRITE_STREAM, output=Payload("json", b"%d" % offset)
                    )
                await messages.notify(tx, caller.workflow_id)
                return offset
        except Replayed as replayed:
            output = replayed.step.output
            return int(output.data) if output is not None and output.encoding == "json" else 0

    async def close(self, caller: Caller, key: str) -> None:
        """Closes a stream (as a step unless ``caller.function_id == 0``)."""
        try:
            async with self._connector.transaction() as tx:
                if caller.function_id == 0:
                    await self._check_running(tx, caller)
                else:
                    await journal.record(tx, caller, journal.CLOSE_STREAM)
                await streams.close(tx, caller.workflow_id, key)
                await messages.notify(tx, caller.workflow_id)
        except Replayed:
            return

    @staticmethod
    async def _check_running(tx: Tx, caller: Caller) -> None:
        if await streams.running(tx, caller.workflow_id, caller.attempt):
            return
        workflow = await workflows.get(tx, caller.workflow_id)
        if workflow is None:
            raise workflow_not_found(caller.workflow_id)
        raise stale_attempt(caller.workflow_id, caller.attempt, f"it is {workflow.status}")

    async def read(self, workflow_id: str, key: str, from_offset: int) -> AsyncIterator[Entry]:
        """Yields the values from ``from_offset`` as they are written, until the
        stream is closed or the workflow is no longer active.

        Raises:
            NotFound: The workflow does not exist.
        """
        offset = from_offset
        with self._waiters.watch(workflow_id) as changed:
            while True:
                changed.clear()
                async with self._connector.transaction() as tx:
                    # The state first: every value written before the stream
                    # closed (or the workflow ended) is then in the read below.
                    state = await streams.state(tx, workflow_id, key)
                    if state is None:
                        raise workflow_not_found(workflow_id)
                    entries = await streams.read(tx, workflow_id, key, offset, _READ_BATCH)
                for entry in entries:
                    yield entry
                    offset = entry.offset + 1
                if entries:
                    continue
                if state.closed or state.workflow_status not in _ACTIVE:
                    return
                await wait_event(changed, RECHECK_SECONDS)
