"""`Worker`: hosts workflow and step functions and runs what the service dispatches."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload

from baton._payload import SerializerName
from baton._registry import StepDefinition, WorkflowDefinition, attach_step, attach_workflow
from baton._runner import RunnerConfig, WorkerRunner
from baton._tls import TLSConfig

__all__ = ["Worker"]

logger = logging.getLogger("baton.worker")

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TARGET = "localhost:50051"
# The service's limit on a wait, and so on `evict_waits_after`: 7 days.
_MAX_EVICT_AFTER = 7 * 24 * 3600.0
# Threads for remote steps, at most (the service allows more slots than a process has use for).
_MAX_STEP_CONCURRENCY = 1000


class Worker:
    """A process that hosts workflows and steps and runs them for the service.

    Register functions with `workflow` and `step`, then serve: `run` blocks
    (and handles SIGINT/SIGTERM), while ``await worker.serve()`` and ``async with
    worker:`` fit asyncio programs. Plain ``def`` workflows run in a thread pool
    of ``concurrency`` threads; ``async def`` workflows run as tasks on the
    serving event loop.

    Example:
        ```python
        worker = Worker("localhost:50051", app_version="v1")

        @worker.step(max_attempts=5)
        def create_payment(order: dict) -> str: ...

        @worker.workflow()
        def checkout(ctx: WorkflowContext, order: dict) -> str:
            return ctx.run(create_payment, order)

        worker.run()
        ```

    Args:
        target: ``host:port`` of the service. Default: the ``BATON_TARGET``
            environment variable, else ``"localhost:50051"``.
        app_version: The version of the code this worker runs; workflows pinned
            to a version go only to workers of that version.
        token: Bearer token. Default: the ``BATON_TOKEN`` environment variable.
        concurrency: How many workflows run at once, at most.
        serializer: ``"json"`` (portable, the default) or ``"pickle"`` (Python-only).
        name: A human-readable name shown to operators. Default: ``host:pid``.
        shutdown_timeout: How long a graceful stop waits for running workflows
            (seconds); the service recovers the ones still unfinished elsewhere.
        queues: The queues this worker serves: it receives workflows started
            on them (as their flow control allows) besides those started with
            no queue, and never those of other queues. A queue that does not
            exist is created with no limits (configure it with
            `Client.upsert_queue`).
        tls: TLS settings: a `TLSConfig`, ``True`` (system CAs) or ``False``
            (plaintext). Default: ``BATON_TLS_CA``/``BATON_TLS_CERT``/``BATON_TLS_KEY``
            if set, else plaintext for a target on this machine and TLS otherwise.
        evict_waits_after: Seconds. Long waits evict their workflow from this
            worker: a ``ctx.sleep`` with more than this left to sleep at once,
            a ``ctx.recv`` still without a message after waiting this long, a
            ``ctx.get_event`` still unset after this long, and a child's
            ``result()`` still unfinished after this long. The
            service takes the workflow back (its status is ``ENQUEUED`` while
            it waits), the run ends and frees its slot and thread, and the
            service dispatches the workflow again, to any worker hosting it,
            when the sleep ends, when a message on the topic arrives or the
            recv times out, when the event is set or the read times out, or
            when the awaited workflow finishes. Parents
            awaiting children so never hold every slot while their children
            wait for one. The new run replays the journal up to the
            wait, which then returns at once, so the code between steps runs
            again (as after a crash); evictions never count against
            ``max_attempts``. This lets one worker hold thousands of waiting
            workflows with ``concurrency`` threads. ``None`` never evicts (a
            waiting workflow keeps its slot). Workflows started on a queue are
            never evicted (they keep their place in the queue's concurrency).
        step_concurrency: How many remote steps (this worker's steps called by
            name from workflows running on other workers) run here at once, at
            most (default 16): the service pushes no more than that, and gives
            the rest to other workers hosting the step as they free up.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        app_version: str = "",
        token: str | None = None,
        concurrency: int = 100,
        serializer: SerializerName = "json",
        name: str | None = None,
        shutdown_timeout: float = 30.0,
        queues: Sequence[str] = (),
        tls: TLSConfig | bool | None = None,
        evict_waits_after: float | None = 30.0,
        step_concurrency: int = 16,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 1 <= step_concurrency <= _MAX_STEP_CONCURRENCY:
            raise ValueError(f"step_concurrency must be between 1 and {_MAX_STEP_CONCURRENCY}")
        if evict_waits_after is not None and not 0 <= evict_waits_after <= _MAX_EVICT_AFTER:
            raise ValueError(
                f"evict_waits_after must be None or between 0 and {_MAX_EVICT_AFTER:g} seconds"
            )
        if serializer not in ("json", "pickle"):
            raise ValueError(f"serializer must be 'json' or 'pickle', not {serializer!r}")
        self._config = RunnerConfig(
            target=target or os.environ.get("BATON_TARGET") or DEFAULT_TARGET,
            token=token or os.environ.get("BATON_TOKEN") or None,
            worker_id=str(uuid.uuid4()),
            app_version=app_version,
            concurrency=concurrency,
            serializer=serializer,
            display_name=name or f"{socket.gethostname()}:{os.getpid()}",
            shutdown_timeout=shutdown_timeout,
            queues=tuple(queues),
            tls=tls,
            evict_waits_after=evict_waits_after,
            step_concurrency=step_concurrency,
        )
        self._workflows: dict[str, WorkflowDefinition] = {}
        self._steps: dict[str, StepDefinition] = {}
        self._runner: WorkerRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: asyncio.Task[None] | None = None

    @property
    def worker_id(self) -> str:
        """This worker's id, fixed for its lifetime (and across reconnects)."""
        return self._config.worker_id

    @property
    def target(self) -> str:
        """The service address this worker connects to."""
        return self._config.target

    # -- registration ------------------------------------------------------------------

    @overload
    def workflow(self, name: F, /) -> F: ...
    @overload
    def workflow(
        self,
        name: str | None = None,
        *,
        max_attempts: int = 0,
        schedule: str | None = None,
        schedule_time_zone: str | None = None,
    ) -> Callable[[F], F]: ...
    def workflow(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        max_attempts: int = 0,
        schedule: str | None = None,
        schedule_time_zone: str | None = None,
    ) -> Any:
        """Registers a workflow function (``def`` or ``async def``).

        The function is called as ``fn(ctx, *args)``, where ``ctx`` is a
        `WorkflowContext` (or `AsyncWorkflowContext` for ``async def``) and
        ``args`` are the arguments given to ``start_workflow``. It is returned
        unchanged, so it stays callable and can be passed to ``start_workflow``.

        Args:
            name: The name the service knows it by. Default: the function's name.
            max_attempts: Dispatches before the workflow stops as
                ``MAX_RECOVERY_ATTEMPTS_EXCEEDED``; 0 leaves it to the server.
            schedule: A cron (5 fields, or 6 with seconds first:
                ``"*/5 * * * * *"``) to start the workflow on. When the worker
                connects, the service stores it as the schedule named after the
                workflow (created, or updated if the cron or zone changed; a
                paused schedule stays paused). Each tick starts the workflow once
                with the arguments ``(scheduled_time, context)``: the tick as an
                ISO 8601 UTC string, and ``None``. A worker with an invalid cron
                or zone is refused (`InvalidArgument`).
            schedule_time_zone: The IANA time zone ``schedule`` is read in.
                Default: UTC.
        """
        if callable(name):  # used bare: @worker.workflow
            return self.workflow()(name)
        self._check_not_serving()

        def register(fn: F) -> F:
            definition = WorkflowDefinition(
                name=name or fn.__name__,
                fn=fn,
                max_attempts=max_attempts,
                schedule=schedule or "",
                schedule_time_zone=schedule_time_zone or "",
            )
            if definition.name in self._workflows:
                raise ValueError(f"a workflow named {definition.name!r} is already registered")
            self._workflows[definition.name] = definition
            attach_workflow(fn, definition)
            return fn

        return register

    @overload
    def step(self, name: F, /) -> F: ...
    @overload
    def step(
        self,
        name: str | None = None,
        *,
        max_attempts: int = 1,
        interval: float = 1.0,
        backoff: float = 2.0,
    ) -> Callable[[F], F]: ...
    def step(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        max_attempts: int = 1,
        interval: float = 1.0,
        backoff: float = 2.0,
    ) -> Any:
        """Registers a step function (``def`` or ``async def``), run with ``ctx.run``.

        A step is the unit of durability: its result is recorded once it
        finishes, and it is not run again when the workflow is replayed. The
        function is returned unchanged.

        Args:
            name: The name recorded in the journal. Default: the function's name.
            max_attempts: Executions in total before the step fails (1 = no retry).
            interval: Seconds before the first retry.
            backoff: The factor by which the wait grows at each further retry.
        """
        if callable(name):  # used bare: @worker.step
            return self.step()(name)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._check_not_serving()

        def register(fn: F) -> F:
            definition = StepDefinition(
                name=name or fn.__name__,
                fn=fn,
                max_attempts=max_attempts,
                interval=interval,
                backoff=backoff,
            )
            if definition.name in self._steps:
                raise ValueError(f"a step named {definition.name!r} is already registered")
            self._steps[definition.name] = definition
            attach_step(fn, definition)
            return fn

        return register

    def _check_not_serving(self) -> None:
        # The service learns what a worker hosts only when it registers.
        if self._runner is not None:
            raise RuntimeError("register workflows and steps before the worker starts serving")

    # -- serving -----------------------------------------------------------------------

    async def serve(self) -> None:
        """Serves until `stop` is called (or the task is cancelled).

        Raises:
            Unauthenticated: The service refused the token (likewise
                `PermissionDenied`, `InvalidArgument` for a bad registration).
            RuntimeError: The worker is already serving.
        """
        runner = self._start_runner()
        try:
            await runner.serve()
        finally:
            self._runner = None
            self._loop = None

    def stop(self) -> None:
        """Asks a serving worker to stop: it takes no more work, waits up to
        ``shutdown_timeout`` for running workflows, then `serve` returns.

        Safe to call from any thread; does nothing when the worker is not serving.
        """
        runner, loop = self._runner, self._loop
        if runner is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            runner.stop()
        else:
            loop.call_soon_threadsafe(runner.stop)

    def run(self) -> None:
        """Serves until SIGINT or SIGTERM, blocking the calling thread.

        The first signal stops gracefully (see `stop`); a second one exits at
        once, abandoning running workflows to recovery by the service.

        As a program's main loop, it also sets up logging to stderr at INFO
        when the program has configured none, so connecting, reconnecting and
        lost leases are visible. Its event loop is uvloop's where uvloop is
        installed (a dependency of Baton except on Windows): every step of a
        plain ``def`` workflow hands its checkpoint from the workflow's thread
        to the loop and waits for the answer, and uvloop's wake-up from another
        thread is the cheaper one. ``asyncio.run(worker.serve())`` keeps the
        standard loop.
        """
        if not logging.getLogger().handlers:
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
        with asyncio.Runner(loop_factory=fastest_loop()) as runner:
            runner.run(self._serve_until_signalled())

    async def _serve_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(self.serve())
        signals_seen = 0

        def on_signal(signum: signal.Signals) -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen == 1:
                logger.info("%s: stopping (send it again to exit at once)", signum.name)
                self.stop()
            else:
                logger.warning("%s: exiting now", signum.name)
                task.cancel()

        installed: list[signal.Signals] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # Windows, or not the main thread: Ctrl-C still cancels asyncio.run
        try:
            await task
        except asyncio.CancelledError:
            if signals_seen < 2:
                raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    async def __aenter__(self) -> Worker:
        """Starts serving in the background on the running loop."""
        runner = self._start_runner()

        async def serve_in_background() -> None:
            try:
                await runner.serve()
            except Exception:
                logger.exception("worker stopped with an error")
                raise
            finally:
                self._runner = None
                self._loop = None

        self._background = asyncio.create_task(serve_in_background(), name="baton-worker")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stops gracefully and waits until the worker has stopped."""
        background, self._background = self._background, None
        if background is None:
            return
        self.stop()
        await background

    def _start_runner(self) -> WorkerRunner:
        if self._runner is not None:
            raise RuntimeError("this worker is already serving")
        self._runner = WorkerRunner(self._config, self._workflows, self._steps)
        self._loop = asyncio.get_running_loop()
        return self._runner


def fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop factory where it is installed; else ``None`` (asyncio's own)."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
