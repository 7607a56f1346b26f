"""End-to-end fixtures: worker processes and a table of side effects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import wait_until as wait_until  # the e2e tests' import of it

APP = Path(__file__).parent / "apps" / "steps_app.py"
QUEUE_APP = Path(__file__).parent / "apps" / "queue_app.py"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def effects_url(database_url: str) -> str:
    """The test database, with an ``effects`` table the workers write to."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE effects (id bigserial PRIMARY KEY, step text NOT NULL,"
            " workflow_id text NOT NULL, pid integer NOT NULL,"
            " at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        conn.execute(
            "CREATE TABLE runs (id bigserial PRIMARY KEY, workflow_id text NOT NULL,"
            " label text NOT NULL, pid integer NOT NULL,"
            " started_at timestamptz NOT NULL DEFAULT clock_timestamp(), ended_at timestamptz)"
        )
    return database_url


def effects(url: str, workflow_id: str) -> list[tuple[str, int]]:
    """``(step, pid)`` of every side effect of ``workflow_id``, in order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT step, pid FROM effects WHERE workflow_id = %s ORDER BY id", (workflow_id,)
        ).fetchall()
    return [(step, pid) for step, pid in rows]


@pytest.fixture
def spawn_worker(
    effects_url: str, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts worker processes of ``apps/steps_app.py`` (or ``app=``); kills them at the end.

    Each worker's log goes to ``<tmp_path>/worker-<pid>.log`` (``log_of``).
    """
    started: list[subprocess.Popen[bytes]] = []

    def spawn(target: str, app: Path = APP, **env: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, str(app)],
            env={
                **os.environ,
                "BATON_TARGET": target,
                "EFFECTS_URL": effects_url,
                "PYTHONPATH": str(ROOT),
                **env,
            },
            stderr=log,
        )
        log.close()
        (tmp_path / f"worker-{len(started)}.log").rename(tmp_path / f"worker-{process.pid}.log")
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, 9)
        process.wait(timeout=10)


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals overlapping at one instant (an end before a start at a tie)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def log_of(tmp_path: Path, process: subprocess.Popen[bytes]) -> str:
    """What a worker spawned by ``spawn_worker`` has logged so far."""
    return (tmp_path / f"worker-{process.pid}.log").read_text(errors="replace")
