"""Keeps this replica's workers' leases and recovers the workflows of lost ones.

Every interval: drop sessions that have been silent longer than the lease,
renew the leases of all live sessions with one UPDATE, and enqueue again the
PENDING workflows whose owner's lease has expired anywhere (any replica may do
it; the guarded update with SKIP LOCKED makes that safe).

A replica judges other replicas' leases only once it has itself reached the
database every round for a whole lease period (`LeaseKeeper.steady`). After a
database outage, a stall of this replica, or its start, every lease may look
expired only because no replica could renew it meanwhile; the others, back at
about the same time, get that lease period to renew their workers' leases
before anything of theirs is taken away.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from baton_server.config import Config
from baton_server.connector import Connector, DatabaseUnavailable
from baton_server.engine.dispatcher import Dispatcher
from baton_server.engine.sessions import Sessions
from baton_server.engine.waiters import pause
from baton_server.store import workers, workflows

log = logging.getLogger("baton.leases")

# How long a disconnected worker's row is kept (for operators) before deletion.
_FORGET_AFTER = timedelta(hours=1)


class LeaseKeeper:
    """One per replica."""

    def __init__(
        self,
        connector: Connector,
        config: Config,
        sessions: Sessions,
        dispatcher: Dispatcher,
        replica_id: str,
    ) -> None:
        self._connector = connector
        self._config = config
        self._sessions = sessions
        self._dispatcher = dispatcher
        self._replica_id = replica_id
        self._lease = timedelta(seconds=config.lease_seconds)
        # Loop time since which every round has reached the database, each
        # within a lease of the one before (None: the last one did not).
        self._steady_since: float | None = None
        self._last_reached = 0.0

    @property
    def steady(self) -> bool:
        """Whether this replica has reached the database every round for a
        whole lease period, so that every replica had the time to renew its
        workers' leases: only then are expired leases taken for lost workers
        (see the module docstring)."""
        if self._steady_since is None:
            return False
        now = asyncio.get_running_loop().time()
        return now - self._steady_since >= self._config.lease_seconds

    async def run(self) -> None:
        """Renews and sweeps until cancelled."""
        loop = asyncio.get_running_loop()
        rounds = 0
        while True:
            await pause(self._config.heartbeat_seconds)
            rounds += 1
            try:
                self._drop_silent(loop.time())
                await self.renew()
                self._reached(loop.time())
                if self.steady:
                    await self.sweep()
                if rounds % 600 == 0:
                    async with self._connector.transaction() as tx:
                        await workers.forget_old(tx, _FORGET_AFTER)
            except DatabaseUnavailable as exc:
                self._steady_since = None
                self._connector.health.paused(log, "lease upkeep", exc)
            except Exception:
                log.exception("lease upkeep failed")

    def _reached(self, now: float) -> None:
        """A round reached the database at ``now``."""
        if self._steady_since is None or now - self._last_reached > self._config.lease_seconds:
            self._steady_since = now  # the first round, or after a gap (a stall)
        self._last_reached = now

    def _drop_silent(self, now: float) -> None:
        for session in self._sessions.live():
            if now - session.last_seen > self._config.lease_seconds:
                log.warning(
                    "worker %s silent for %.1fs; dropping it",
                    session.worker_id,
                    now - session.last_seen,
                )
                session.close()

    async def renew(self) -> None:
        """Extends the leases of every live session (one statement, sent even
        with none: it is how the round knows it reached the database)."""
        ids = [session.worker_id for session in self._sessions.live()]
        async with self._connector.transaction() as tx:
            await workers.renew(tx, ids, replica_id=self._replica_id, lease=self._lease)

    async def sweep(self) -> None:
        """Enqueues again the workflows of workers whose lease expired (the
        loop calls it only while `steady`)."""
        async with self._connector.transaction() as tx:
            released = await workflows.release_expired_leases(tx)
            for name in {name for _, name in released}:
                await workflows.notify_enqueued(tx, name)
            if released:
                await workflows.notify_statuses(tx, [wid for wid, _ in released])
        for workflow_id, _ in released:
            log.info(
                "workflow %s: its worker's lease expired; dispatching it again",
                workflow_id,
                extra={"workflow_id": workflow_id},
            )
        if released:
            self._dispatcher.wake()
