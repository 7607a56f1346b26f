"""The object a workflow function receives as ``ctx``: durable steps and replay.

A workflow is made durable by numbering every operation it performs in call
order (``function_id`` 1, 2, ...) and recording each result in the service's
journal. When a workflow is dispatched again (after a crash, or a lost lease)
the dispatch carries the journal, and `ctx.run` returns the recorded results
without executing the steps again, until the code reaches the first step that
has no record; from there it runs for real.

`WorkflowContext` serves plain ``def`` workflows (which run in a worker thread)
and `AsyncWorkflowContext` serves ``async def`` workflows (tasks on the worker's
event loop). Both share `ContextCore`, which holds the journal, the step counter
and the checkpoint logic.

A step's result is sent *ahead*: `ctx.run` returns as soon as it is on its way,
and the workflow's next durable operation (a step, a message, a sleep, a child,
a patch, ...) first waits until it is committed. So a step's result is always
committed before anything that follows it happens, while the code between
(which must be deterministic and free of side effects anyway) overlaps the
round trip; and the completion leaves right behind the last step, carrying its
number (``follows_step``) so the service never writes one without the other.
When a plain ``def`` workflow's last step reaches the event loop only after the
workflow has returned (the usual case: the thread runs on to its end before the
loop takes the step), the step is held for the completion, and the two leave in
one message, which the service writes with one statement.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from baton._checkpoints import Checkpointer
from baton._comms import call_remote, in_step, with_step
from baton._convert import error_to_proto, timestamp
from baton._errors import FailedPrecondition, NonDeterministicError, StepError
from baton._loop_calls import LoopCalls
from baton._payload import Serializer
from baton._proto.baton.v1 import common_pb2, worker_service_pb2
from baton._registry import StepDefinition, step_definition_of
from baton._rpc_async import AsyncRpc
from baton._run_state import CancelRequested, LeaseLost, RunState, WorkflowStop
from baton._steps import run_step_async, run_step_from_loop, run_step_sync
from baton._workflow_ops import AsyncOps, SyncOps

__all__ = ["AsyncWorkflowContext", "ContextCore", "RunState", "WorkflowContext", "WorkflowStop"]

WORKFLOW_CANCELLED = "WORKFLOW_CANCELLED"
"""The reason the service gives when it refuses a checkpoint of a cancelled workflow."""


def patch_marker(name: str) -> str:
    """The step name under which a patch is recorded in the journal."""
    return f"baton.patch:{name}"


T = TypeVar("T")

# How often a workflow thread blocked on the event loop re-checks whether its run
# was abandoned, so that a stale or shut-down run never waits forever.
_POLL_SECONDS = 0.5


class ContextCore:
    """The journal, the step counter and the checkpoint calls of one workflow run.

    Args:
        workflow_id: The running workflow's id.
        workflow_name: Its registered name (for error messages).
        attempt: The attempt it was dispatched with; carried by every checkpoint.
        journal: The steps recorded before this dispatch.
        serializer: Encodes step results.
        rpc: The worker's RPC tier.
        loop: The worker's event loop (where `rpc` lives).
        state: The run's flags, set by the worker.
        checkpoints: Where step results go (default: ``rpc``'s unary calls).
        release_waits_after: A sleep with more than this many seconds left,
            or a recv, get_event or await of another workflow still waiting
            after this long, asks the service to release the workflow
            (``Worker(evict_waits_after=...)``); ``None``: never.
    """

    def __init__(
        self,
        *,
        workflow_id: str,
        workflow_name: str,
        attempt: int,
        journal: Iterable[common_pb2.Step],
        serializer: Serializer,
        rpc: AsyncRpc | None,
        loop: asyncio.AbstractEventLoop | None,
        state: RunState,
        checkpoints: Checkpointer | None = None,
        release_waits_after: float | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.workflow_name = workflow_name
        self.attempt = attempt
        self.serializer = serializer
        self.state = state
        self.release_waits_after = release_waits_after
        self.nondeterminism: NonDeterministicError | None = None
        """Set when replay diverged, so the workflow fails even if its code
        catches the exception."""
        self._journal = {step.function_id: step for step in journal}
        self._rpc = rpc
        self._checkpoints: Checkpointer | None = checkpoints or rpc
        self._loop = loop
        self._next_function_id = 1
        self._lock = threading.Lock()
        # The steps sent ahead and not yet known committed (see the module
        # docstring), as (function_id, answer): a concurrent future when sent
        # from a workflow thread, an asyncio one when sent on the loop. Several
        # when steps run concurrently; one whose write failed stays, so every
        # later operation raises its error.
        self._ahead: list[tuple[int, concurrent.futures.Future[Any] | asyncio.Future[Any]]] = []
        # A plain ``def`` workflow's last step, reaching the loop after the
        # workflow's code has returned: held until `release_held`, so that it
        # leaves with the completion (one message, one statement in the service).
        self._code_returned = False
        self._released = False
        self._held: list[
            tuple[worker_service_pb2.RecordStepRequest, concurrent.futures.Future[Any]]
        ] = []
        self._sent: set[asyncio.Future[Any]] = set()  # steps sent, until answered
        self.calls = LoopCalls()
        """What the workflow's threads run on the loop (`call_from_thread`)."""

    @property
    def rpc(self) -> AsyncRpc | None:
        """The worker's RPC tier (lives on `loop`)."""
        return self._rpc

    def check_alive(self) -> None:
        """Raises a `WorkflowStop` if the run must stop at this checkpoint."""
        if self.state.cancelled:
            raise CancelRequested(f"workflow {self.workflow_id!r} was cancelled")
        if self.state.stale:
            raise LeaseLost(f"workflow {self.workflow_id!r} attempt {self.attempt} is stale")

    def claim(self, step_name: str) -> tuple[int, common_pb2.Step | None]:
        """Takes the next step number and returns it with its journal record, if any.

        Raises:
            NonDeterministicError: The journal recorded another step under this number.
        """
        with self._lock:
            function_id = self._next_function_id
            self._next_function_id += 1
        recorded = self._journal.get(function_id)
        if recorded is not None and recorded.step_name != step_name:
            error = NonDeterministicError(
                f"workflow {self.workflow_name!r} (id {self.workflow_id}), step {function_id}:"
                f" the journal recorded step {recorded.step_name!r}"
                f" but the code now calls {step_name!r}"
            )
            self.nondeterminism = error
            raise error
        return function_id, recorded

    def peek(self) -> common_pb2.Step | None:
        """The journal record under the next step number, without taking the number."""
        with self._lock:
            return self._journal.get(self._next_function_id)

    def patch_outcome(self, marker: str) -> bool | None:
        """Decides a patch from the journal: ``True`` when the next record is
        this patch's marker (taken), ``False`` when it is another step (the
        workflow ran there before the patch; the number is not taken), ``None``
        when there is no record (the workflow runs new code: record a marker)."""
        recorded = self.peek()
        if recorded is None:
            return None
        if recorded.step_name == marker:
            self.claim(marker)
            return True
        return False

    async def record_patch(self, marker: str) -> bool:
        """Records the marker of a patch met for the first time; ``True`` unless
        another run recorded a different step there first."""
        function_id, _ = self.claim(marker)
        request = self.record_request(function_id, marker, _now(), output=None)
        step = await self.record(request)
        return step.step_name == marker

    def deprecated_patch(self, marker: str) -> None:
        """Skips this patch's marker if the journal has it next (see `deprecate_patch`)."""
        recorded = self.peek()
        if recorded is not None and recorded.step_name == marker:
            self.claim(marker)

    def settle(self, step: common_pb2.Step, cause: BaseException | None = None) -> Any:
        """Returns a recorded step's output, or raises its recorded error as `StepError`."""
        if step.WhichOneof("result") == "error":
            error = StepError(
                step.step_name,
                step.function_id,
                step.error.type,
                step.error.message,
                step.error.traceback,
            )
            raise error from cause
        return self.serializer.decode(step.output)

    def record_request(
        self,
        function_id: int,
        step_name: str,
        started_at: datetime,
        *,
        output: Any = None,
        error: BaseException | None = None,
    ) -> worker_service_pb2.RecordStepRequest:
        """Builds the RecordStep request for a finished step (output or error).

        Raises:
            SerializationError: The output cannot be encoded. Nothing is recorded,
                so replay runs the step again and fails the same way.
        """
        context = common_pb2.WorkflowContext(
            workflow_id=self.workflow_id, function_id=function_id, attempt=self.attempt
        )
        request = worker_service_pb2.RecordStepRequest(
            context=context, step_name=step_name, started_at=timestamp(started_at)
        )
        if error is not None:
            request.error.CopyFrom(error_to_proto(error))
        else:
            request.output.CopyFrom(self.serializer.encode(output))
        return request

    async def record(self, request: worker_service_pb2.RecordStepRequest) -> common_pb2.Step:
        """Records a step (retrying through outages), waits until it is committed
        and returns the step to use.

        Returns our own step unless the service already had one under this number
        (a retried call, or a racing attempt), in which case the recorded one wins.

        Raises:
            WorkflowStop: The service refused the write (FAILED_PRECONDITION): the
                lease is lost or the workflow is no longer running.
        """
        await self.settled()
        assert self._checkpoints is not None, "a ContextCore without rpc cannot record steps"
        return await self._recorded(request, self._checkpoints.record_step(request))

    def record_ahead(
        self, request: worker_service_pb2.RecordStepRequest, *, from_thread: bool
    ) -> common_pb2.Step:
        """Sends a step's result without waiting for the answer; returns our own
        step. The workflow's next durable operation waits for it (`settled`).

        Call it from the workflow's thread (``from_thread``) or on the loop.
        """
        assert self._checkpoints is not None, "a ContextCore without rpc cannot record steps"
        answer: concurrent.futures.Future[Any] | asyncio.Future[Any]
        if from_thread:
            assert self._loop is not None, "a ContextCore without a loop cannot record ahead"
            answer = concurrent.futures.Future()
            try:
                self._loop.call_soon_threadsafe(self._send_ahead, request, answer)
            except RuntimeError:  # the loop is closed: the worker has stopped
                raise LeaseLost("the worker has stopped") from None
        else:
            # Sent now (not when a callback first runs), so a completion that
            # follows right away leaves behind it.
            answer = asyncio.get_running_loop().create_future()
            self._send(request, answer)
        answer.add_done_callback(mark_retrieved)
        with self._lock:
            self._ahead.append((request.context.function_id, answer))
        return self._own_step(request)

    @property
    def ahead_step(self) -> int:
        """The number of the one step sent ahead and not yet settled; 0 when
        there is none, or several (a completion then waits for them all)."""
        with self._lock:
            return self._ahead[0][0] if len(self._ahead) == 1 else 0

    async def settled(self) -> None:
        """Waits, on the loop, until every step sent ahead so far is committed.

        Shielded: a caller cancelled while it waits (a timeout around a ctx
        call, say) does not cancel the write it waits for.

        Raises:
            WorkflowStop: A write was refused as stale or cancelled.
            BatonError: A write was refused for another reason (e.g. too large).
        """
        for entry in self._pending_ahead():
            answer = entry[1]
            if isinstance(answer, concurrent.futures.Future):
                await asyncio.shield(asyncio.wrap_future(answer))
            else:
                await asyncio.shield(answer)
            self._settle_ahead(entry)

    def wait_settled(self) -> None:
        """`settled`, from a thread (a plain ``def`` workflow's, or a step's)."""
        pending = self._pending_ahead()
        if not pending:
            return
        if all(isinstance(answer, concurrent.futures.Future) for _, answer in pending):
            for entry in pending:
                self._wait_from_thread(entry[1])  # type: ignore[arg-type]
                self._settle_ahead(entry)
            return
        # Sent from the loop (an async workflow): wait there.
        assert self._loop is not None, "a ContextCore without a loop cannot wait"
        self._wait_from_thread(self._submit(self.settled()))

    def _pending_ahead(
        self,
    ) -> list[tuple[int, concurrent.futures.Future[Any] | asyncio.Future[Any]]]:
        with self._lock:
            return list(self._ahead)

    def _settle_ahead(
        self, entry: tuple[int, concurrent.futures.Future[Any] | asyncio.Future[Any]]
    ) -> None:
        with self._lock:
            if entry in self._ahead:
                self._ahead.remove(entry)

    def code_returned(self) -> None:
        """Called from a plain ``def`` workflow's thread once its code has
        returned (or raised): a step of it that reaches the loop from now on
        is held for `release_held`."""
        with self._lock:
            self._code_returned = True

    def release_held(self) -> None:
        """On the loop, once the workflow's code is done and before its
        completion is sent: sends the steps held back (in order), so that the
        completion leaves right behind them, in the same message. Nothing is
        held after this."""
        with self._lock:
            self._released = True
            held, self._held = self._held, []
        for request, answer in held:
            self._send_ahead(request, answer)

    def _send_ahead(
        self,
        request: worker_service_pb2.RecordStepRequest,
        answer: concurrent.futures.Future[common_pb2.Step],
    ) -> None:
        """On the loop, for `record_ahead` from a thread: sends the step in this
        very callback (see `_send`).

        A step that arrives after the workflow's code returned is usually its
        last, and the completion is about to follow (the thread's end reaches
        the loop right behind this callback): it is held until
        `release_held`, which sends what it holds in order, just before the
        completion."""
        with self._lock:
            if self._code_returned and not self._released:
                self._held.append((request, answer))
                return
        self._send(request, answer)

    def _send(
        self,
        request: worker_service_pb2.RecordStepRequest,
        answer: concurrent.futures.Future[common_pb2.Step] | asyncio.Future[common_pb2.Step],
    ) -> None:
        """On the loop: sends the step now; once the service answers, ``answer``
        (waited on by the workflow's thread, or on the loop) gets the step to
        use, or the refusal. No task runs in between: the answer's own callback
        settles ``answer``."""
        assert self._checkpoints is not None
        sent = asyncio.ensure_future(self._checkpoints.record_step(request))
        self._sent.add(sent)  # a task (a unary checkpointer's) needs a reference
        sent.add_done_callback(self._sent.discard)
        sent.add_done_callback(functools.partial(self._answered_ahead, request, answer))

    def _answered_ahead(
        self,
        request: worker_service_pb2.RecordStepRequest,
        answer: concurrent.futures.Future[common_pb2.Step] | asyncio.Future[common_pb2.Step],
        sent: asyncio.Future[worker_service_pb2.RecordStepResponse],
    ) -> None:
        """Settles ``answer`` from ``sent``, the service's answer to a step sent
        ahead, whose own result the workflow already went on with: a different
        result recorded before (only a racing older attempt could) fails the
        run as non-deterministic."""
        if sent.cancelled():
            answer.cancel()
        else:
            mark_retrieved(sent)  # also when nobody waits any more
        if isinstance(answer, concurrent.futures.Future):
            if not answer.set_running_or_notify_cancel():
                return  # cancelled (here, or by a thread that gave up waiting)
        elif answer.done():
            return
        try:
            step = self._checked_ahead(request, sent)
        except BaseException as exc:
            answer.set_exception(exc)
        else:
            answer.set_result(step)

    def _checked_ahead(
        self,
        request: worker_service_pb2.RecordStepRequest,
        sent: asyncio.Future[worker_service_pb2.RecordStepResponse],
    ) -> common_pb2.Step:
        try:
            step = self._step_of(request, sent.result())
        except FailedPrecondition as exc:
            raise self._refused(exc) from exc
        mine = self._own_step(request)
        if step.output != mine.output or step.error != mine.error:
            error = NonDeterministicError(
                f"workflow {self.workflow_name!r} (id {self.workflow_id}), step"
                f" {step.function_id}: the journal already holds another result for"
                f" {step.step_name!r} (recorded by an earlier attempt)"
            )
            self.nondeterminism = error
            raise error
        return step

    async def _recorded(
        self,
        request: worker_service_pb2.RecordStepRequest,
        sent: Awaitable[worker_service_pb2.RecordStepResponse],
    ) -> common_pb2.Step:
        """The step to use once ``sent`` (the RecordStep of ``request``) is answered."""
        try:
            response = await sent
        except FailedPrecondition as exc:
            raise self._refused(exc) from exc
        return self._step_of(request, response)

    def _step_of(
        self,
        request: worker_service_pb2.RecordStepRequest,
        response: worker_service_pb2.RecordStepResponse,
    ) -> common_pb2.Step:
        """The step to use, given the service's answer to the RecordStep of
        ``request``: the one recorded before, if any, else ours."""
        if response.already_recorded:
            return response.step
        return self._own_step(request)

    def _refused(self, exc: FailedPrecondition) -> WorkflowStop:
        """What stops the run when the service refused a write as fenced."""
        if exc.reason == WORKFLOW_CANCELLED:
            self.state.cancelled = True
        if self.state.cancelled:
            return CancelRequested(str(exc))
        self.state.stale = True
        return LeaseLost(str(exc))

    @staticmethod
    def _own_step(request: worker_service_pb2.RecordStepRequest) -> common_pb2.Step:
        mine = common_pb2.Step(function_id=request.context.function_id, step_name=request.step_name)
        if request.HasField("error"):
            mine.error.CopyFrom(request.error)
        else:
            mine.output.CopyFrom(request.output)
        return mine

    def call_from_thread(self, coro: Coroutine[Any, Any, T], *, settle: bool = True) -> T:
        """Runs a coroutine on the worker's loop from a workflow thread and waits.

        Polls the run's flags while waiting, so a run abandoned meanwhile (or a
        worker that shut its loop down) raises `WorkflowStop` instead of hanging.
        """
        try:
            if settle:  # not from inside a step: its writes are outside the journal's order
                self.wait_settled()
        except BaseException:
            coro.close()
            raise
        return self._wait_from_thread(self._submit(coro))

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self._loop is not None, "a ContextCore without a loop cannot call it"
        try:
            return self.calls.submit(coro, self._loop)
        except RuntimeError:  # the loop is closed: the worker has stopped
            raise LeaseLost("the worker has stopped") from None

    def _wait_from_thread(self, future: concurrent.futures.Future[T]) -> T:
        """Waits for ``future`` (running on the loop) from the workflow's thread,
        raising `WorkflowStop` if the run is abandoned meanwhile."""
        if not future.done():
            # A bare lock, released by the future's done callback: lighter
            # than the future's own wait (a Condition, a lock made per wait)
            # for what runs once per step.
            latch = threading.Lock()
            latch.acquire()
            future.add_done_callback(lambda _: latch.release())
            while not latch.acquire(timeout=_POLL_SECONDS):
                if self.state.stale or self.state.cancelled:
                    future.cancel()
                    self.check_alive()
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            # Dropped as the run is abandoned or torn down; else it cancelled
            # itself, and that is its outcome, as any exception's.
            self.check_alive()
            if self.calls.cancelled:
                raise LeaseLost("the worker is stopping") from None
            raise


def _now() -> datetime:
    return datetime.now(UTC)


def mark_retrieved(future: concurrent.futures.Future[Any] | asyncio.Future[Any]) -> None:
    """Marks a future's outcome as looked at (a done callback): a step sent
    ahead by a run abandoned before settling it, or a completion given up on,
    must not log "exception never retrieved"."""
    if not future.cancelled():
        future.exception()


class WorkflowContext(SyncOps):
    """The context of a plain ``def`` workflow, passed as its first argument.

    Besides `run`, it offers messages (`send`, `recv`), events (`set_event`,
    `get_event`), streams (`write_stream`, `close_stream`), durable `sleep`,
    recorded `now` and `random`, child workflows (`start_workflow`) and
    concurrent steps (`go`, `gather`, `select`).

    Example:
        ```python
        @worker.workflow()
        def checkout(ctx: WorkflowContext, order: dict) -> str:
            return ctx.run(create_payment, order)
        ```
    """

    def __init__(self, core: ContextCore) -> None:
        self._core = core

    @property
    def workflow_id(self) -> str:
        """The running workflow's id."""
        return self._core.workflow_id

    @property
    def attempt(self) -> int:
        """The dispatch attempt this run belongs to (1 for the first run)."""
        return self._core.attempt

    @overload
    def run(self, step: str, /, *args: Any) -> Any: ...
    @overload
    def run(self, step: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T: ...
    @overload
    def run(self, step: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...
    def run(self, step: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> Any:
        """Runs a step durably: at most once to completion per workflow.

        The first time, the step runs (retrying per its ``@worker.step`` policy)
        and its result is recorded; on replay the recorded result is returned
        without running the step. Either way the value returned is the recorded
        one, decoded (e.g. a tuple comes back as a list under JSON), so the first
        run and a replay see the same thing. An ``async def`` step runs on the
        worker's event loop.

        Given a step's *name* instead of a function, the step is a remote step:
        the service runs it on a worker that hosts it (in any language), and
        records its result; only positional arguments are passed.

        Args:
            step: A function registered with ``@worker.step``, or a step name.
            *args: Its positional arguments.
            **kwargs: Its keyword arguments.

        Returns:
            The step's (recorded) return value.

        Raises:
            StepError: The step failed after all its retries. Raised the same way
                when the failure is replayed from the journal, so the workflow
                handles one exception type; on the first run the original
                exception is its ``__cause__``.
            NonDeterministicError: The journal recorded a different step here.
            SerializationError: The step's return value cannot be encoded.
        """
        core = self._core
        if isinstance(step, str):
            core.check_alive()
            function_id, recorded = core.claim(step)
            if recorded is None:
                recorded = core.call_from_thread(call_remote(core, function_id, step, args))
            return core.settle(recorded)
        definition = step_definition_of(step)
        core.check_alive()
        function_id, recorded = core.claim(definition.name)
        return self._run_claimed(definition, function_id, recorded, args, kwargs)

    def _run_claimed(
        self,
        definition: StepDefinition,
        function_id: int,
        recorded: common_pb2.Step | None,
        args: Any,
        kwargs: dict[str, Any],
    ) -> Any:
        """Runs (or replays) a step whose number is already taken."""
        core = self._core
        if recorded is not None:
            return core.settle(recorded)
        core.wait_settled()  # (`go` branches too) the steps before this one are committed
        started_at = _now()
        failure: Exception | None = None
        output: Any = None
        try:
            if definition.is_async:
                output = core.call_from_thread(
                    with_step(core, run_step_async(definition, args, kwargs, core.check_alive))
                )
            else:
                with in_step(core):
                    output = run_step_sync(definition, args, kwargs, core.check_alive)
        except Exception as exc:
            failure = exc
        request = core.record_request(
            function_id, definition.name, started_at, output=output, error=failure
        )
        return core.settle(core.record_ahead(request, from_thread=True), failure)

    def patch(self, name: str) -> bool:
        """Lets changed workflow code run safely under workflows started before
        the change (DBOS-style patching).

        Returns ``True`` for workflows that reach this point running the new
        code (the decision is recorded in the journal as step
        ``baton.patch:<name>``, so replay decides the same), and ``False`` for
        workflows that had already gone past this point under the old code
        (their journal holds another step here).

        Example:
            ```python
            if ctx.patch("use-baz"):
                ctx.run(baz)
            else:
                ctx.run(foo)
            ```

        Once no workflow from before the change is left, replace the call with
        `deprecate_patch` (which keeps replay of patched workflows working), and
        later remove it.

        Args:
            name: The patch's name: letters, digits and ``_.:-``.
        """
        core = self._core
        core.check_alive()
        marker = patch_marker(name)
        decided = core.patch_outcome(marker)
        if decided is not None:
            return decided
        return core.call_from_thread(core.record_patch(marker))

    def deprecate_patch(self, name: str) -> bool:
        """The successor of `patch` once every workflow runs the new code:
        always ``True``, and skips the patch's journal marker when a workflow
        recorded one, so those workflows still replay. Records nothing."""
        self._core.deprecated_patch(patch_marker(name))
        return True


class AsyncWorkflowContext(AsyncOps):
    """The context of an ``async def`` workflow, passed as its first argument.

    It offers the same operations as `WorkflowContext`, awaited (``go``
    returns a task; ``gather`` and ``select`` are awaited).

    Example:
        ```python
        @worker.workflow()
        async def checkout(ctx: AsyncWorkflowContext, order: dict) -> str:
            return await ctx.run(create_payment, order)
        ```
    """

    def __init__(self, core: ContextCore) -> None:
        self._core = core

    @property
    def workflow_id(self) -> str:
        """The running workflow's id."""
        return self._core.workflow_id

    @property
    def attempt(self) -> int:
        """The dispatch attempt this run belongs to (1 for the first run)."""
        return self._core.attempt

    @overload
    async def run(self, step: str, /, *args: Any) -> Any: ...
    @overload
    async def run(self, step: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T: ...
    @overload
    async def run(self, step: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...
    async def run(self, step: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> Any:
        """Runs a step durably; see `WorkflowContext.run` for the full contract.

        A plain ``def`` step runs in a thread (``asyncio.to_thread``) so it cannot
        block the event loop; an ``async def`` step runs on the loop.

        Raises:
            StepError: The step failed after all its retries (first run or replay).
            NonDeterministicError: The journal recorded a different step here.
            SerializationError: The step's return value cannot be encoded.
        """
        core = self._core
        if isinstance(step, str):  # a remote step, by name
            core.check_alive()
            function_id, recorded = core.claim(step)
            if recorded is None:
                recorded = await call_remote(core, function_id, step, args)
            return core.settle(recorded)
        definition = step_definition_of(step)
        core.check_alive()
        function_id, recorded = core.claim(definition.name)
        return await self._run_claimed(definition, function_id, recorded, args, kwargs)

    async def _run_claimed(
        self,
        definition: StepDefinition,
        function_id: int,
        recorded: common_pb2.Step | None,
        args: Any,
        kwargs: dict[str, Any],
    ) -> Any:
        """Runs (or replays) a step whose number is already taken."""
        core = self._core
        if recorded is not None:
            return core.settle(recorded)
        await core.settled()  # (`go` branches too) the steps before this one are committed
        started_at = _now()
        failure: Exception | None = None
        output: Any = None
        try:
            output = await with_step(
                core, run_step_from_loop(definition, args, kwargs, core.check_alive)
            )
        except Exception as exc:
            failure = exc
        request = core.record_request(
            function_id, definition.name, started_at, output=output, error=failure
        )
        return core.settle(core.record_ahead(request, from_thread=False), failure)

    async def patch(self, name: str) -> bool:
        """Patching for changed workflow code; see `WorkflowContext.patch`."""
        core = self._core
        core.check_alive()
        marker = patch_marker(name)
        decided = core.patch_outcome(marker)
        if decided is not None:
            return decided
        return await core.record_patch(marker)

    def deprecate_patch(self, name: str) -> bool:
        """See `WorkflowContext.deprecate_patch`."""
        self._core.deprecated_patch(patch_marker(name))
        return True
