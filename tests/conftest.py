"""Shared fixtures: a Postgres for the whole run, a fresh database per test
(cloned from a migrated template in milliseconds), and Baton servers running
in a thread or as separate processes.

Set ``BATON_TEST_DATABASE_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``)
to use an existing Postgres; without it the embedded Postgres is started under
``.baton/test-pg``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

from baton import Worker
from baton._worker import fastest_loop
from baton_server.app import Running, start
from baton_server.config import Config
from baton_server.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

TEMPLATE = f"baton_test_template_{os.getpid()}"


def _with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """An admin URL of the Postgres the tests use."""
    url = os.environ.get("BATON_TEST_DATABASE_URL")
    if url:
        return url
    from baton_server.connector import start_embedded

    return start_embedded(ROOT / ".baton" / "test-pg")


@pytest.fixture(scope="session")
def template_database(postgres_url: str) -> Iterator[str]:
    """A migrated database that each test's database is cloned from."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    asyncio.run(migrate(_with_database(postgres_url, TEMPLATE)))
    yield TEMPLATE
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )


@pytest.fixture
def database_url(postgres_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"baton_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    yield _with_database(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def server_config(database_url: str, **overrides: object) -> Config:
    """A server configuration with short leases, for tests."""
    base = Config(
        listen="127.0.0.1:0",
        database_url=database_url,
        lease_seconds=2.0,
        heartbeat_seconds=0.25,
        pool_min_size=1,
        pool_max_size=8,
        shutdown_grace_seconds=1.0,
    )
    return base.with_overrides(**overrides)


@dataclass
class ThreadServer:
    """A server replica running on its own event loop in a thread."""

    running: Running
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Runs ``coroutine`` on the server's loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def stop(self) -> None:
        self.call(self.running.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def start_thread_server(config: Config) -> ThreadServer:
    """Starts a replica in a background thread and waits until it serves, on
    the event loop `baton serve` runs (uvloop where installed)."""
    loop = (fastest_loop() or asyncio.new_event_loop)()
    thread = threading.Thread(target=loop.run_forever, name="baton-test-server", daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start(config), loop).result(timeout=60)
    return ThreadServer(running, loop, thread)


@pytest.fixture
def server(database_url: str) -> Iterator[ThreadServer]:
    """A server replica (in a thread) on this test's database."""
    started = start_thread_server(server_config(database_url))
    yield started
    started.stop()


@dataclass
class ServerProcess:
    """A server replica as a separate process (for crash tests)."""

    process: subprocess.Popen[str]
    port: int
    args: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def spawn_server(
    database_url: str | None,
    *,
    port: int = 0,
    lease_seconds: float = 2.0,
    heartbeat: float = 0.25,
    data_dir: Path | None = None,
) -> ServerProcess:
    """Starts ``baton serve`` as a process and waits for its "serving" line;
    without a ``database_url``, on the embedded Postgres under ``data_dir``."""
    args = [
        sys.executable, "-m", "baton_server", "serve",
        "--listen", f"127.0.0.1:{port}",
        "--lease-seconds", str(lease_seconds),
        "--log-level", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, "BATON_HEARTBEAT_SECONDS": str(heartbeat)}
    if database_url is None:
        assert data_dir is not None
        args += ["--data-dir", str(data_dir)]
        env.pop("BATON_DATABASE_URL", None)
    else:
        args += ["--database-url", database_url]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"serving on port (\d+)", line)
    if not match:
        process.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return ServerProcess(process, int(match.group(1)), args)


@pytest.fixture
def server_process(database_url: str) -> Iterator[Callable[..., ServerProcess]]:
    """Starts server processes on this test's database; kills them at the end."""
    started: list[ServerProcess] = []

    def factory(**kwargs: object) -> ServerProcess:
        spawned = spawn_server(database_url, **kwargs)  # type: ignore[arg-type]
        started.append(spawned)
        return spawned

    yield factory
    for spawned in started:
        if spawned.process.poll() is None:
            spawned.process.kill()
        spawned.process.wait(timeout=10)


@contextmanager
def worker_in_thread(worker: Worker) -> Iterator[Worker]:
    """Serves ``worker`` in this process, on an event loop of its own in a
    thread, until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with worker:
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield worker
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Polls an outside observation (a table, a process) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
