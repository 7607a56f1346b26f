"""Enforces workflow deadlines (start-to-close timeouts).

Each replica runs one loop: cancel every unfinished workflow whose deadline has
passed, with its whole tree of descendants, then sleep until the nearest
deadline (at most the poll interval, so deadlines set through other replicas
are seen too). The claim is ``FOR NO KEY UPDATE SKIP LOCKED``, so replicas never fight
over a row, and the cancel itself is a guarded update.
"""

from __future__ import annotations

import asyncio
import logging

from baton_server.config import Config
from baton_server.connector import Connector, DatabaseUnavailable
from baton_server.engine.management import cancel_expired
from baton_server.engine.waiters import wait_event
from baton_server.store import management

log = logging.getLogger("baton.deadlines")

# Most workflows expired in one transaction.
_BATCH = 500
# Shortest sleep between rounds, so a clock a little behind the database's does
# not spin.
_MIN_SLEEP = 0.05


class DeadlineKeeper:
    """One per replica."""

    def __init__(self, connector: Connector, config: Config) -> None:
        self._connector = connector
        self._config = config
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Asks for a round soon (e.g. a workflow with a deadline was started here)."""
        self._wake.set()

    async def run(self) -> None:
        """Cancels expired workflows until cancelled."""
        while True:
            self._wake.clear()
            pause = self._config.deadline_poll_seconds
            try:
                while True:
                    expired = await cancel_expired(self._connector, _BATCH)
                    for workflow_id in expired:
                        log.info(
                            "workflow %s cancelled: past its deadline",
                            workflow_id,
                            extra={"workflow_id": workflow_id},
                        )
                    if len(expired) < _BATCH:
                        break
                async with self._connector.transaction() as tx:
                    nearest = await management.seconds_to_next_deadline(tx)
                if nearest is not None:
                    pause = min(pause, max(nearest, _MIN_SLEEP))
            except DatabaseUnavailable as exc:
                self._connector.health.paused(log, "deadline sweep", exc)
            except Exception:
                log.exception("deadline sweep failed")
            await wait_event(self._wake, pause)
