"""Child workflows: started by a workflow as a recorded step, awaited with the
result recorded, so a replayed parent never starts a second child and sees
the same result without waiting.

The child's id is ``<parent id>-<step number>`` unless the parent names one
(deterministic either way). The child is linked to its parent
(``parent_workflow_id``), inherits the parent's absolute deadline (the earlier
of the two when it has its own) and its app version (unless it names one).
A child may be started on a queue, with the queue's options (deduplication,
priority, partition key, delay, timeout from dequeue): it waits its turn like
any queued workflow (never dispatched eagerly), its start recorded all the same.
A start refused for what the queue decided (a deduplication id in flight, an
unknown queue, an option the queue does not allow, or the id taken by a
workflow of another name) is recorded too, as the step's error: a retried or
replayed start meets the same refusal, even once the deduplication id is free
or the queue exists, so a parent that handles the refusal replays the same
way. A refusal that says nothing about the start (a stale attempt, a passing
conflict) records nothing.

A workflow awaiting another one for long may be released from its worker
(see ``engine/waits.py``): it names the awaited workflow
(``wait_workflow_id``), which is marked ``awaited``, and a trigger on the
awaited workflow's end makes it claimable at once (see the 0009 migration).
It is dispatched again after `RECHECK` in any case, as a safety net; its replay
reaches the await, which waits (or is released) again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from baton_server.connector import Connector, Tx
from baton_server.engine import journal
from baton_server.engine.journal import Caller, Replayed
from baton_server.engine.starts import OnStarted, Started, start_in
from baton_server.engine.waits import releasable, release
from baton_server.errors import ServiceError, workflow_not_found
from baton_server.store import steps, waits, workflows
from baton_server.store.models import Failure, Step, Workflow
from baton_server.store.starts import NewStart

# A workflow released while it awaits another is dispatched again after this
# even if nothing woke it.
RECHECK = timedelta(hours=1)


def child_id(caller: Caller) -> str:
    """The default id of the child started at the caller's step."""
    return f"{caller.workflow_id}-{caller.function_id}"


class Children:
    """Child starts and recorded awaits; one per replica."""

    def __init__(self, connector: Connector, on_started: OnStarted) -> None:
        self._connector = connector
        self._on_started = on_started

    async def start(self, caller: Caller, new: NewStart) -> tuple[Workflow, bool]:
        """Starts the child (once) and records the start as the caller's step.

        With a queue, the child goes on it with the queue's options; with
        ``return_existing_duplicate`` the workflow in flight under its
        deduplication id is the one recorded and returned.

        Returns the child and whether this call created it.

        Raises:
            AlreadyExists: The child id is taken by a workflow of another name,
                or the deduplication id by a workflow in flight (recorded).
            FailedPrecondition: The caller's attempt is stale.
            NotFound: The parent, or the child's queue (recorded), does not exist.
            InvalidArgument: A queue option the queue does not allow (recorded).
        """
        try:
            async with self._connector.transaction() as tx:
                done = await journal.recorded(tx, caller)
                if done is not None:  # a retry: the recorded outcome, whatever changed since
                    raise Replayed(done)
                outcome = await self._start_in(tx, caller, new)
        except Replayed as replayed:
            return await self._recorded_start(replayed.step)
        if isinstance(outcome, ServiceError):
            raise outcome
        if outcome.created:
            self._on_started([outcome.workflow])
        return outcome.workflow, outcome.created

    async def _start_in(self, tx: Tx, caller: Caller, new: NewStart) -> Started | ServiceError:
        """Starts the child in ``tx`` and records the start, or records and
        returns the refusal that is the start's outcome."""
        parent = await workflows.get(tx, caller.workflow_id)
        if parent is None:
            raise workflow_not_found(caller.workflow_id)
        deadlines = [d for d in (parent.deadline, new.deadline) if d is not None]
        child = replace(
            new,
            workflow_id=new.workflow_id or child_id(caller),
            parent_workflow_id=caller.workflow_id,
            app_version=new.app_version or parent.app_version,
            deadline=min(deadlines) if deadlines else None,
        )
        # The child first, then the step naming it: a refused step (a replay,
        # a stale attempt) rolls the start back with it.
        try:
            started = await start_in(tx, child)
        except ServiceError as exc:
            failure = journal.refusal_failure(exc)
            if failure is None:
                raise
            await journal.record(tx, caller, journal.START_WORKFLOW, error=failure)
            return exc
        step = await steps.record_child(
            tx, journal.new_step(caller, journal.START_WORKFLOW), started.workflow.workflow_id
        )
        if step is None:
            await journal.refuse(tx, caller)
        return started

    async def _recorded_start(self, step: Step) -> tuple[Workflow, bool]:
        """What a child start recorded before returns again: the child, or
        the refusal."""
        if step.error is not None:
            raise journal.recorded_refusal(step.error)
        async with self._connector.transaction() as tx:
            found = await workflows.get(tx, step.child_workflow_id or "")
        if found is None:
            raise workflow_not_found(step.child_workflow_id or "")
        return found, False

    async def await_recorded(
        self,
        caller: Caller,
        workflow_id: str,
        timeout: float,
        await_workflow: Callable[[str, float], Awaitable[Workflow]],
        release_if_longer_than: float | None = None,
    ) -> tuple[Workflow, bool]:
        """Awaits a workflow and, once it has finished, records its outcome as
        the caller's step (so a replay gets the same result without waiting).

        With ``release_if_longer_than`` at most ``timeout``, the call waits
        that long at most: if the workflow has not finished by then, the
        caller's workflow is released until it does (see the module
        docstring) and nothing is recorded. Returns the awaited workflow as it
        is, and whether the caller's workflow was released.
        """
        release_after = release_if_longer_than
        if release_after is not None and release_after > timeout:
            release_after = None  # not in this call
        workflow = await await_workflow(
            workflow_id, timeout if release_after is None else release_after
        )
        if not workflow.finished and release_after is not None:
            now = await self._release_unless_finished(caller, workflow)
            if now is None:
                return workflow, True
            if not now.finished:  # may not be released: waits out the timeout
                now = await await_workflow(workflow_id, timeout - release_after)
            workflow = now
        if not workflow.finished:
            return workflow, False
        error = workflow.error
        if workflow.status != "SUCCESS" and error is None:
            error = Failure(type=workflow.status, message=f"workflow ended {workflow.status}")
        try:
            async with self._connector.transaction() as tx:
                await journal.record(
                    tx,
                    caller,
                    journal.AWAIT_WORKFLOW,
                    output=None if error else (workflow.output or journal.JSON_NULL),
                    error=error if workflow.status != "SUCCESS" else None,
                )
        except Replayed:
            pass
        return workflow, False

    async def _release_unless_finished(self, caller: Caller, awaited: Workflow) -> Workflow | None:
        """Releases the caller's workflow until ``awaited`` ends; ``None`` when
        it did. Otherwise returns the awaited workflow: as it is now when it
        has finished after all, as given when the caller may not be released
        (it was started on a queue)."""
        async with self._connector.transaction() as tx:
            if not await releasable(tx, caller):
                return awaited
            # Marking it locks it: its end commits before this (and sees the
            # release, so it wakes the caller) or after (and this sees it).
            now = await waits.mark_awaited(tx, awaited.workflow_id)
            if now is None:
                raise workflow_not_found(awaited.workflow_id)
            if now.finished:
                return now
            await release(
                tx, caller, datetime.now(UTC) + RECHECK, wait_workflow_id=awaited.workflow_id
            )
        return None
