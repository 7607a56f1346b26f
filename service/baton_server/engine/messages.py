"""Messages: Send from anywhere, Recv inside a workflow.

A message is a row of ``messages``, FIFO per (destination, topic). Recv takes
the oldest one with ``FOR UPDATE SKIP LOCKED``, records it as the receiving
step and marks it consumed, all in one transaction: a message is received
exactly once, and a recovered workflow replays the recorded one. When none is
there, Recv waits on this replica for a ``baton_comms`` notification (a hint)
with a periodic re-check, until the deadline recorded the first time.

A Recv still waiting after a while may release its workflow instead (see
``engine/waits.py``), until its deadline or the next message on its topic:
a Send makes a destination released in a recv on that topic claimable at
once, after its own commit (holding no row, so a cancel of the tree cannot
deadlock with it). The two take the destination's inbox lock, so one always
sees the other: a release either committed before the Send's message (and the
wake after the Send's commit finds it) or sees the message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from baton_server.connector import Connector, Tx
from baton_server.engine import journal
from baton_server.engine.journal import Caller, Replayed
from baton_server.engine.waiters import StatusWaiters, wait_event
from baton_server.engine.waits import releasable, release
from baton_server.errors import workflow_not_found
from baton_server.store import messages, streams, waits, workflows
from baton_server.store.models import Payload, Step

# A waiter re-reads at least this often, in case a notification was lost.
RECHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Received:
    """What a Recv ended with."""

    step: Step | None
    """The recorded step (its output is the message, or none on timeout);
    ``None`` when the workflow was released instead."""

    @property
    def released(self) -> bool:
        """Whether the workflow was released while it waits (nothing recorded)."""
        return self.step is None


class Messages:
    """Send and Recv; one per replica."""

    def __init__(self, connector: Connector, waiters: StatusWaiters) -> None:
        self._connector = connector
        self._waiters = waiters

    async def send(
        self,
        destination_id: str,
        topic: str,
        payload: Payload | None,
        *,
        idempotency_key: str | None = None,
        caller: Caller | None = None,
    ) -> None:
        """Queues a message for ``destination_id``.

        With ``caller`` (a workflow sending) the send is recorded as the
        caller's step in the same transaction: exactly once. Without it, an
        ``idempotency_key`` makes a repeated send a no-op.

        Raises:
            NotFound: No workflow ``destination_id`` (or no caller workflow).
            FailedPrecondition: The caller's attempt is stale.
        """
        try:
            async with self._connector.transaction() as tx:
                if caller is not None:
                    await journal.record(tx, caller, journal.SEND)
                await messages.lock_inbox(tx, destination_id)
                inserted = await messages.insert(
                    tx,
                    destination_id=destination_id,
                    topic=topic,
                    payload=payload,
                    idempotency_key=idempotency_key,
                )
                if inserted:
                    await messages.notify(tx, destination_id)
                elif await workflows.get(tx, destination_id) is None:
                    raise workflow_not_found(destination_id)
        except Replayed:
            pass
        # After the commit, holding no row: the receiver's row may be locked by
        # a cancel of its tree waiting for the sender's (a child sending to its
        # parent). A release that committed before the send is woken here; one
        # after it took the inbox lock and saw the message. A send repeated (a
        # replayed step, a retried idempotency key) wakes it too: the first may
        # have crashed between its commit and this.
        async with self._connector.autocommit() as tx:
            await messages.wake_released_recv(tx, destination_id, topic)

    async def recv(
        self,
        caller: Caller,
        topic: str,
        timeout: float,
        release_if_longer_than: float | None = None,
    ) -> Received:
        """Receives the next message on ``topic`` for the calling workflow.

        Returns the recorded step: its output is the message, or ``None`` when
        the deadline (recorded the first time, so a recovered workflow keeps
        it) passed with no message. With ``release_if_longer_than`` set and
        more than that left, the call is held at most that long: if no message
        has come by then, the workflow is released instead (see
        ``engine/waits.py``) and nothing is recorded. A message usually comes
        quickly when it comes at all, so a short wait keeps its worker.
        """
        async with self._connector.transaction() as tx:
            done = await journal.recorded(tx, caller)
            if done is not None:
                return Received(done)
            deadline, remaining, _ = await waits.deadline(
                tx, caller.workflow_id, caller.function_id, timedelta(seconds=timeout)
            )
        loop = asyncio.get_running_loop()
        until = loop.time() + remaining
        release_at: float | None = None
        if release_if_longer_than is not None and remaining > release_if_longer_than:
            release_at = loop.time() + release_if_longer_than
        with self._waiters.watch(caller.workflow_id) as changed:
            while True:
                changed.clear()
                step = await self._take(caller, topic)
                if step is not None:
                    return Received(step)
                now = loop.time()
                if until <= now:
                    return Received(await self._time_out(caller))
                if release_at is not None and release_at <= now:
                    received = await self._take_or_release(caller, topic, deadline)
                    if received is not None:
                        return received
                    release_at = None  # started on a queue: it waits here
                next_at = until if release_at is None else min(until, release_at)
                await wait_event(changed, min(next_at - now, RECHECK_SECONDS))

    async def _take_or_release(
        self, caller: Caller, topic: str, deadline: datetime
    ) -> Received | None:
        """Takes the next message, or releases the workflow until ``deadline``
        or a message on ``topic``; ``None`` when it may not be released (it
        was started on a queue), and nothing was done."""
        try:
            async with self._connector.transaction() as tx:
                if not await releasable(tx, caller):
                    return None
                await messages.lock_inbox(tx, caller.workflow_id)
                message = await messages.take(tx, caller.workflow_id, topic)
                if message is None:
                    await release(tx, caller, deadline, wait_topic=topic)
                    return Received(None)
                return Received(await _receive(tx, caller, message))
        except Replayed as replayed:
            return Received(replayed.step)

    async def _take(self, caller: Caller, topic: str) -> Step | None:
        try:
            async with self._connector.transaction() as tx:
                message = await messages.take(tx, caller.workflow_id, topic)
                if message is None:
                    # A caller that lost the workflow (re-dispatched, cancelled,
                    # finished) stops waiting: woken by baton_status, it is refused.
                    if not await streams.running(tx, caller.workflow_id, caller.attempt):
                        await journal.refuse(tx, caller)
                    return None
                return await _receive(tx, caller, message)
        except Replayed as replayed:
            return replayed.step

    async def _time_out(self, caller: Caller) -> Step:
        try:
            async with self._connector.transaction() as tx:
                return await journal.record(tx, caller, journal.RECV)
        except Replayed as replayed:
            return replayed.step


async def _receive(tx: Tx, caller: Caller, message: messages.Message) -> Step:
    """Records a taken message as the caller's Recv step and consumes it."""
    step = await journal.record(
        tx, caller, journal.RECV, output=message.payload or journal.JSON_NULL
    )
    await messages.consume(tx, message.message_id)
    return step
