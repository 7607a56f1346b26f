"""Workers and their leases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from baton_server.connector import Tx
from baton_server.store.schedules import DeclaredSchedule


@dataclass(frozen=True)
class WorkerRegistration:
    """What a worker said about itself on Connect."""

    worker_id: str
    app_version: str
    display_name: str
    sdk: str
    workflow_names: list[str]
    step_names: list[str]
    queues: list[str] = field(default_factory=list)
    """The queues it serves (it takes only their queued workflows)."""
    schedules: list[DeclaredSchedule] = field(default_factory=list)
    """Cron schedules of workflows it hosts, stored as schedules named after them."""


async def upsert(tx: Tx, worker: WorkerRegistration, *, replica_id: str, lease: timedelta) -> None:
    """Records the worker as connected to ``replica_id`` with a fresh lease."""
    await tx.execute(
        "upsert_worker",
        {
            "worker_id": worker.worker_id,
            "replica_id": replica_id,
            "app_version": worker.app_version,
            "display_name": worker.display_name,
            "sdk": worker.sdk,
            "workflow_names": worker.workflow_names,
            "step_names": worker.step_names,
            "lease": lease,
        },
    )


async def renew(tx: Tx, worker_ids: list[str], *, replica_id: str, lease: timedelta) -> int:
    """Extends the leases of ``worker_ids`` (one statement); returns how many."""
    return await tx.execute(
        "renew_leases", {"worker_ids": worker_ids, "replica_id": replica_id, "lease": lease}
    )


async def forget_old(tx: Tx, keep: timedelta) -> int:
    """Deletes workers whose lease ended more than ``keep`` ago."""
    return await tx.execute("forget_workers", {"keep": keep})
