"""Remote steps: a step hosted by one worker, called by name from a workflow
running on another; routed again when its worker dies."""

from __future__ import annotations

import os
import signal

import psycopg

from baton import Client
from tests.conftest import ThreadServer
from tests.e2e.comms.conftest import STEPS_APP
from tests.e2e.conftest import effects, wait_until


def test_a_step_hosted_only_by_a_second_worker_completes_a_workflow_on_the_first(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    workflows = spawn_comms(server.target)
    steps = spawn_comms(server.target, app=STEPS_APP)
    with Client(server.target) as client:
        handle = client.start_workflow("uses_remote_step", 640, workflow_id="remote")
        result = handle.result(timeout=60)
        recorded = client.list_steps("remote")
    assert result == {"resized": {"width": 320, "pid": steps.pid}, "runs_here": workflows.pid}
    assert (recorded[0].name, recorded[0].output) == (
        "resize_image",
        {"width": 320, "pid": steps.pid},
    )
    assert effects(effects_url, "remote") == [
        ("resize_image", steps.pid),
        ("after_remote", workflows.pid),
    ]


def test_killing_the_step_s_worker_mid_step_reruns_it_on_a_third(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target)
    doomed = spawn_comms(server.target, app=STEPS_APP, HANG_IN="resize_image")
    with Client(server.target) as client:
        handle = client.start_workflow("uses_remote_step", 100, workflow_id="remote-kill")
        wait_until(lambda: effects(effects_url, "remote-kill"), 30, "the step to start")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        third = spawn_comms(server.target, app=STEPS_APP)
        result = handle.result(timeout=60)
    assert result["resized"] == {"width": 50, "pid": third.pid}
    assert [pid for step, pid in effects(effects_url, "remote-kill") if step == "resize_image"] == [
        doomed.pid,
        third.pid,
    ]


def test_a_step_worker_runs_no_more_remote_steps_at_once_than_its_step_concurrency(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    # Eight calls of a slow step, two workers hosting it with two slots each:
    # neither takes more than two at once, so both share the work.
    spawn_comms(server.target)
    hosts = {
        spawn_comms(server.target, app=STEPS_APP, STEP_SLOTS="2", SLOW_SECONDS="1").pid
        for _ in range(2)
    }
    wait_until(lambda: _connected(effects_url) == 3, 30, "three workers")
    with Client(server.target) as client:
        handles = [
            client.start_workflow("uses_remote_step", 10, workflow_id=f"slots-{i}")
            for i in range(8)
        ]
        for handle in handles:
            assert handle.result(timeout=60)["resized"]["width"] == 5
    with psycopg.connect(effects_url) as conn:
        runs = conn.execute("SELECT pid, started_at, ended_at FROM runs").fetchall()
    assert len(runs) == 8
    assert {pid for pid, _, _ in runs} == hosts  # both took some
    for host in hosts:
        spans = [(start, end) for pid, start, end in runs if pid == host]
        most = max(sum(1 for s, e in spans if s <= at < e) for at, _ in spans)
        assert most <= 2, (host, spans)


def _connected(url: str) -> int:
    """Workers registered with a live lease (the server shares the test's database)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM workers WHERE lease_expires_at > now()").fetchone()
    return int(row[0]) if row else 0
