"""Operating workflows: cancel, resume, fork and delete.

Cancellation is cooperative. The cancel is a guarded update that sets the
workflow ``CANCELLED`` at once (so awaiters see it), and a ``baton_cancel``
notification naming the owner worker: whichever replica holds that worker's
Connect stream pushes ``ConnectResponse.cancel``, and the worker stops the run
at its next step. A worker that misses the push (it was reconnecting) learns it
from its next checkpoint, which is refused with ``WORKFLOW_CANCELLED``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from baton_server.connector import Connector, Tx
from baton_server.engine.dispatcher import Dispatcher
from baton_server.engine.sessions import CancelRun, Sessions
from baton_server.errors import AlreadyExists, FailedPrecondition, workflow_not_found
from baton_server.store import management, workflows
from baton_server.store.management import Cancelled
from baton_server.store.models import Failure, Workflow

log = logging.getLogger("baton.management")

CANCEL_CHANNEL = "baton_cancel"


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did."""

    workflow: Workflow
    """The workflow after the call."""
    cancelled_ids: list[str]
    """Every workflow this call cancelled (the workflow itself first, if it was)."""


class Management:
    """The operator's verbs, one per replica."""

    def __init__(self, connector: Connector, sessions: Sessions, dispatcher: Dispatcher) -> None:
        self._connector = connector
        self._sessions = sessions
        self._dispatcher = dispatcher

    async def cancel(self, workflow_id: str, *, include_children: bool) -> CancelOutcome:
        """Cancels a workflow (and its descendants). Finished ones stay as they
        are; NotFound for an unknown id."""
        failure = Failure(
            type="baton.WorkflowCancelled",
            message=f"workflow {workflow_id!r} was cancelled"
            + (" with its descendants" if include_children else ""),
        )
        async with self._connector.transaction() as tx:
            changed = await management.cancel(
                tx, [workflow_id], include_children=include_children, failure=failure
            )
            await _announce(tx, changed)
            workflow = await workflows.get(tx, workflow_id)
        if workflow is None:
            raise workflow_not_found(workflow_id)
        ids = sorted((c.workflow_id for c in changed), key=lambda i: i != workflow_id)
        for cancelled_id in ids:
            log.info("workflow %s cancelled", cancelled_id, extra={"workflow_id": cancelled_id})
        return CancelOutcome(workflow, ids)

    async def resume(self, workflow_id: str, app_version: str | None) -> Workflow:
        """Enqueues a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again,
        with a fresh attempt budget; it continues from its last recorded step."""
        async with self._connector.transaction() as tx:
            resumed = await management.resume(tx, workflow_id, app_version)
            if resumed is not None:
                await workflows.notify_enqueued(tx, resumed.workflow_name)
                await workflows.notify_status(tx, workflow_id)
                current = resumed
            else:
                found = await workflows.get(tx, workflow_id)
                if found is None:
                    raise workflow_not_found(workflow_id)
                current = found
        if resumed is None:
            raise FailedPrecondition(
                f"workflow {workflow_id!r} is {current.status}; only CANCELLED and "
                "MAX_RECOVERY_ATTEMPTS_EXCEEDED workflows can be resumed",
                reason="WORKFLOW_NOT_RESUMABLE",
                metadata={"workflow_id": workflow_id, "status": current.status},
            )
        self._dispatcher.wake()
        return resumed

    async def fork(
        self, workflow_id: str, start_step: int, new_workflow_id: str, app_version: str | None
    ) -> Workflow:
        """Starts a new workflow reusing the original's journal (and the events
        and stream values it wrote) before ``start_step``.

        Idempotent on ``new_workflow_id``: a fork with that id of the same
        original is returned as it is; AlreadyExists if the id is taken otherwise.
        """
        original = existing = None
        async with self._connector.transaction() as tx:
            fork = await management.insert_fork(tx, workflow_id, new_workflow_id, app_version)
            if fork is not None:
                await management.copy_fork_history(tx, workflow_id, new_workflow_id, start_step)
                await workflows.notify_enqueued(tx, fork.workflow_name)
            else:
                original = await workflows.get(tx, workflow_id)
                existing = await workflows.get(tx, new_workflow_id)
        if fork is not None:
            self._dispatcher.wake()
            return fork
        if original is None:
            raise workflow_not_found(workflow_id)
        if existing is not None and existing.forked_from == workflow_id:
            return existing  # a retried fork
        raise AlreadyExists(
            f"workflow id {new_workflow_id!r} is taken",
            reason="WORKFLOW_ID_CONFLICT",
            metadata={"workflow_id": new_workflow_id},
        )

    async def delete(self, workflow_id: str, *, include_children: bool) -> int:
        """Deletes a finished workflow (and its descendants) with all their rows.

        FailedPrecondition (WORKFLOW_NOT_FINISHED) when any of them is still
        running: nothing is deleted then.
        """
        async with self._connector.transaction() as tx:
            found = await management.tree(tx, workflow_id, include_children=include_children)
            if not found:
                raise workflow_not_found(workflow_id)
            running = sorted(i for i, status in found.items() if status in ("ENQUEUED", "PENDING"))
            if running:
                raise FailedPrecondition(
                    f"workflow {running[0]!r} is not finished; cancel it first"
                    + (f" ({len(running)} unfinished in all)" if len(running) > 1 else ""),
                    reason="WORKFLOW_NOT_FINISHED",
                    metadata={"workflow_id": running[0]},
                )
            return await management.delete_finished(tx, list(found))

    def push_cancel(self, payload: str) -> None:
        """Handles a ``baton_cancel`` notification: pushes the cancel to the
        owner's stream if that worker is connected to this replica."""
        try:
            doc = json.loads(payload)
            worker_id, workflow_id = str(doc["worker_id"]), str(doc["workflow_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s notification: %r", CANCEL_CHANNEL, payload)
            return
        session = self._sessions.get(worker_id)
        if session is not None:
            session.outbox.put_nowait(CancelRun(workflow_id))


async def _announce(tx: Tx, changed: list[Cancelled]) -> None:
    """Within the cancelling transaction: wake awaiters, tell owners."""
    if changed:
        await workflows.notify_statuses(tx, [c.workflow_id for c in changed])
        await management.notify_cancel(tx, changed)


async def cancel_expired(connector: Connector, limit: int) -> list[str]:
    """Cancels the trees of up to ``limit`` workflows whose deadline has passed;
    returns the ids cancelled. Replicas may run it side by side (SKIP LOCKED)."""
    async with connector.transaction() as tx:
        expired = await management.take_expired(tx, limit)
        if not expired:
            return []
        failure = Failure(
            type="baton.DeadlineExceeded",
            message="the workflow's deadline passed before it finished",
        )
        changed = await management.cancel(tx, expired, include_children=True, failure=failure)
        await _announce(tx, changed)
    return [c.workflow_id for c in changed]
