"""Group commit of the checkpoints running workflows send: step results and
completions, whether they arrive as unary calls or on a worker's stream.

One committer per replica. Checkpoints that arrive while a commit is in flight
wait for the next one, which writes all of them at once (one multi-row insert
of steps, one multi-row update of finished workflows that also sends their
notifications; each statement commits by itself), so under load many
checkpoints share a commit and no timer ever adds latency. Every caller is
answered after the statement that wrote its checkpoint commits: a step's
result is durable before the workflow runs its next step. A batch of just a
workflow's last step and the completion that follows it (a worker sends the
two together when the workflow returns right after that step) is written by one
statement instead of two.

A checkpoint the batch did not write (a retried call whose first try landed,
a stale attempt, a cancelled workflow), or whose batch failed as a whole, is
then handled alone, in a transaction of its own, which explains the outcome
exactly as a single call always has: the step recorded before, or the refusal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from baton_server.connector import Connector
from baton_server.engine import journal
from baton_server.engine.fencing import refusal
from baton_server.engine.journal import Caller, Replayed
from baton_server.errors import step_not_recorded, workflow_not_found
from baton_server.metrics import Metrics
from baton_server.store import steps, workflows
from baton_server.store.models import Step, Workflow
from baton_server.store.steps import NewStep
from baton_server.store.workflows import Completion

log = logging.getLogger("baton.checkpoints")

# Most checkpoints written by one transaction; the rest wait for the next.
_BATCH = 512


Then = Callable[[asyncio.Future[Any]], None]
"""Called with a checkpoint's future, right after the committer settles it."""


@dataclass(eq=False)
class _Record:
    new: NewStep
    then: Then | None = None
    done: asyncio.Future[tuple[Step, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(eq=False)
class _Complete:
    completion: Completion
    then: Then | None = None
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Checkpoints:
    """The replica's checkpoint committer.

    Args:
        connector: The database.
        metrics: Step durations and finished workflows are counted here.
        finished: Called with the workflows this replica finished, as they are
            after commit, so local awaiters have them without the notification
            and a re-read.
    """

    def __init__(
        self, connector: Connector, metrics: Metrics, finished: Callable[[list[Workflow]], None]
    ) -> None:
        self._connector = connector
        # Every batch is written on this one connection, kept warm between them.
        self._held = connector.held()
        self._metrics = metrics
        self._finished = finished
        self._pending: list[_Record | _Complete] = []
        self._wake = asyncio.Event()
        self._alone: set[asyncio.Task[None]] = set()

    async def record_step(self, new: NewStep) -> tuple[Step, bool]:
        """Records a step; ``(step, True)`` when it was recorded before.

        Raises:
            NotFound: The workflow does not exist.
            FailedPrecondition: The attempt no longer owns the workflow.
        """
        return await self.submit_step(new)

    def submit_step(
        self, new: NewStep, then: Then | None = None
    ) -> asyncio.Future[tuple[Step, bool]]:
        """`record_step` as a future (no task needed to wait for it). ``then``
        is called with the future as soon as it is settled, in the committer's
        own callback: unlike a done callback, it waits for no loop iteration."""
        item = _Record(new, then)
        self._submit(item)
        return item.done

    async def complete(self, completion: Completion) -> str:
        """Finishes the workflow; returns its final status (also for a retried
        call whose first try committed).

        Raises:
            NotFound: The workflow does not exist.
            FailedPrecondition: The attempt no longer owns the workflow.
        """
        return await self.submit_completion(completion)

    def submit_completion(
        self, completion: Completion, then: Then | None = None
    ) -> asyncio.Future[str]:
        """`complete` as a future (no task needed to wait for it); ``then`` as
        for `submit_step`."""
        item = _Complete(completion, then)
        self._submit(item)
        return item.done

    def _submit(self, item: _Record | _Complete) -> None:
        self._pending.append(item)
        self._wake.set()

    async def run(self) -> None:
        """Commits batches until cancelled."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending:
                    batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
                    await self._commit(batch)
        finally:
            for task in self._alone:
                task.cancel()
            await self._held.release()

    async def _commit(self, batch: list[_Record | _Complete]) -> None:
        records = [item for item in batch if isinstance(item, _Record)]
        completes = [item for item in batch if isinstance(item, _Complete)]
        try:
            written, finished = await self._write(
                [r.new for r in records], [c.completion for c in completes]
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # One bad checkpoint, a deadlock or an outage: each goes alone, so
            # its neighbours land (or fail with their own error).
            log.debug("a batch of %d checkpoint(s) failed, retried alone: %s", len(batch), exc)
            for item in batch:
                self._handle_alone(item)
            return
        self._metrics.checkpoint_batch.observe(len(batch))
        # Awaiters first: a caller waiting for the result is answered before
        # the worker hears that its checkpoints landed.
        self._count_finished(finished)
        self._answer_records(records, written)
        self._answer_completes(completes, finished)

    async def _write(
        self, news: list[NewStep], completions: list[Completion]
    ) -> tuple[list[Step], list[Workflow]]:
        """Writes a batch; returns the steps written and the workflows finished."""
        async with self._held.autocommit() as tx:
            if _last_step_and_completion(news, completions):
                # A workflow's last step and its completion, sent together (the
                # worker's usual end): one statement writes both.
                both = await workflows.complete_after_step(tx, news[0], completions[0])
                return ([both[0]], [both[1]]) if both else ([], [])
            # Two statements, each whole by itself, so no transaction around
            # them; the steps commit first, so a completion that follows a step
            # of the same batch (`follows_step`) finds it.
            written = await steps.record_many(tx, news) if news else []
            finished = await workflows.complete_many(tx, completions) if completions else []
            return written, finished

    def _answer_records(self, records: list[_Record], written: list[Step]) -> None:
        by_key = {(step.workflow_id, step.function_id): step for step in written}
        for item in records:
            step = by_key.pop((item.new.workflow_id, item.new.function_id), None)
            if step is None or step.attempt != item.new.attempt:
                self._handle_alone(item)
                continue
            self._observe(item.new, step)
            _settle(item, (step, False))

    def _answer_completes(self, completes: list[_Complete], finished: list[Workflow]) -> None:
        by_id = {f.workflow_id: f for f in finished}
        for item in completes:
            done = by_id.pop(item.completion.workflow_id, None)
            if done is None:
                self._handle_alone(item)
            else:
                _settle(item, done.status)

    def _observe(self, new: NewStep, step: Step) -> None:
        if new.started_at is not None:
            seconds = (step.completed_at - new.started_at).total_seconds()
            self._metrics.step_duration.labels(new.step_name).observe(max(seconds, 0.0))

    def _count_finished(self, finished: list[Workflow]) -> None:
        for done in finished:
            self._metrics.workflows_finished.labels(done.workflow_name, done.status).inc()
        if finished:
            self._finished(finished)

    def _handle_alone(self, item: _Record | _Complete) -> None:
        task = asyncio.create_task(self._alone_task(item))
        self._alone.add(task)
        task.add_done_callback(self._alone.discard)

    async def _alone_task(self, item: _Record | _Complete) -> None:
        try:
            if isinstance(item, _Record):
                result: object = await self._record_alone(item.new)
            else:
                result = await self._complete_alone(item.completion)
        except asyncio.CancelledError:
            _settle(item, cancel=True)
            raise
        except Exception as exc:
            _settle(item, error=exc)
            return
        _settle(item, result)

    async def _record_alone(self, new: NewStep) -> tuple[Step, bool]:
        async with self._connector.transaction() as tx:
            step = await steps.record(tx, new)
            if step is not None:
                self._observe(new, step)
                return step, False
            try:  # raises why nothing was written
                await journal.refuse(tx, Caller(new.workflow_id, new.function_id, new.attempt))
            except Replayed as replayed:
                return replayed.step, True
        raise AssertionError("unreachable: refuse always raises")

    async def _complete_alone(self, completion: Completion) -> str:
        async with self._connector.transaction() as tx:
            finished = await workflows.complete_many(tx, [completion])
            if not finished:
                workflow = await workflows.get(tx, completion.workflow_id)
        if finished:
            self._count_finished(finished)
            return finished[0].status
        if workflow is None:
            raise workflow_not_found(completion.workflow_id)
        if workflow.status in ("SUCCESS", "ERROR") and workflow.attempt == completion.attempt:
            return workflow.status  # a retried call whose first try committed
        if (
            completion.follows_step
            and workflow.status == "PENDING"
            and workflow.attempt == completion.attempt
        ):
            # Sent right behind its last step, whose write failed or is still
            # on its way (a retry by the unary call): the worker retries this.
            raise step_not_recorded(completion.workflow_id, completion.follows_step)
        raise refusal(workflow, completion.attempt)


def _settle(
    item: _Record | _Complete,
    result: object = None,
    *,
    error: BaseException | None = None,
    cancel: bool = False,
) -> None:
    """Settles a checkpoint's future (unless its caller gave up on it), then
    calls its ``then``."""
    future: asyncio.Future[object] = item.done  # type: ignore[assignment]
    if future.done():
        return
    if cancel:
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
    if item.then is not None:
        try:
            item.then(future)
        except Exception:  # as a done callback's would be: logged, the committer goes on
            log.exception("answering a checkpoint failed")


def _last_step_and_completion(news: list[NewStep], completions: list[Completion]) -> bool:
    """Whether the batch is one step and the completion that follows it."""
    if len(news) != 1 or len(completions) != 1:
        return False
    step, completion = news[0], completions[0]
    return (
        completion.follows_step == step.function_id
        and completion.workflow_id == step.workflow_id
        and completion.attempt == step.attempt
    )
