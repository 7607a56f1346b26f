"""A fixture that starts worker processes of ``apps/comms_app.py``.

The tests of workflow communication live beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

APP = Path(__file__).parents[1] / "apps" / "comms_app.py"
STEPS_APP = Path(__file__).parents[1] / "apps" / "remote_steps_app.py"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def spawn_comms(
    effects_url: str, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts worker processes of the comms app; kills them at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(target: str, app: Path = APP, **env: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"comms-worker-{len(started)}.log", "wb")  # noqa: SIM115
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
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, 9)
        process.wait(timeout=10)


def wait_recorded(database_url: str, workflow_id: str) -> bool:
    """Whether a durable wait (sleep, recv, get_event) of the workflow has recorded
    its deadline, i.e. the wait has begun on the server."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT 1 FROM wait_deadlines WHERE workflow_id = %s", (workflow_id,)
        ).fetchone()
    return row is not None
