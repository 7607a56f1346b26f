"""Retention: deletes finished workflows older than the configured age.

Each replica runs one loop; every round deletes in batches (each batch one
short transaction, ``FOR UPDATE SKIP LOCKED``), so several replicas share the
work without waiting on each other, and a large backlog never holds a long
lock. Everything that belongs to a workflow (steps, messages, events, stream
values, wait deadlines) goes with it through ``ON DELETE CASCADE``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from baton_server.config import Config
from baton_server.connector import Connector, DatabaseUnavailable
from baton_server.engine.waiters import pause
from baton_server.store import management

log = logging.getLogger("baton.retention")


class RetentionKeeper:
    """One per replica; does nothing when no retention is configured."""

    def __init__(self, connector: Connector, config: Config) -> None:
        self._connector = connector
        self._config = config

    async def run(self) -> None:
        """Deletes expired workflows every interval until cancelled."""
        if self._config.retention_seconds is None:
            return
        while True:
            try:
                deleted = await self.sweep()
                if deleted:
                    log.info("retention deleted %d finished workflow(s)", deleted)
            except DatabaseUnavailable as exc:
                self._connector.health.paused(log, "retention", exc)
            except Exception:
                log.exception("retention sweep failed")
            await pause(self._config.retention_interval_seconds)

    async def sweep(self) -> int:
        """One round: deletes batches until none is full; returns how many went."""
        assert self._config.retention_seconds is not None
        age = timedelta(seconds=self._config.retention_seconds)
        batch = self._config.retention_batch
        total = 0
        while True:
            async with self._connector.transaction() as tx:
                deleted = await management.delete_expired(tx, age, batch)
            total += deleted
            if deleted < batch:
                return total
