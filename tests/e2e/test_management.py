"""Operating workflows run by real worker processes: cancel, resume, fork,
timeouts, app versions and patching."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from baton import Client, WorkflowCancelled, WorkflowStatus
from tests.conftest import ThreadServer
from tests.e2e.conftest import ROOT, effects, wait_until

APP = Path(__file__).parent / "apps" / "mgmt_app.py"

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn_app(effects_url: str, tmp_path: Path) -> Iterator[Spawn]:
    """Starts worker processes of ``apps/mgmt_app.py``; kills them at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(target: str, **env: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"mgmt-worker-{len(started)}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(APP)],
                env={
                    **os.environ,
                    "BATON_TARGET": target,
                    "EFFECTS_URL": effects_url,
                    "PYTHONPATH": str(ROOT),
                    **env,
                },
                stderr=log,
            )
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.target) as connected:
        yield connected


def _ran(url: str, workflow_id: str) -> list[str]:
    return [step for step, _ in effects(url, workflow_id) if step != "release"]


def _release(url: str, workflow_id: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO effects (step, workflow_id, pid) VALUES ('release', %s, 0)",
            (workflow_id,),
        )


def test_a_workflow_cancelled_in_a_long_step_ends_cancelled_after_it_and_resumes_to_the_end(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str, tmp_path: Path
) -> None:
    spawn_app(server.target)
    handle = client.start_workflow("hold_then_finish", workflow_id="cancel-me")
    wait_until(lambda: "held" in _ran(effects_url, "cancel-me"), 30, "the long step")

    assert handle.cancel() == ["cancel-me"]
    assert handle.status() == WorkflowStatus.CANCELLED
    with pytest.raises(WorkflowCancelled):
        handle.result(timeout=10)
    _release(effects_url, "cancel-me")  # the long step ends now; nothing after it runs
    log = tmp_path / "mgmt-worker-0.log"
    wait_until(
        lambda: "workflow cancel-me attempt 1 cancelled" in log.read_text(), 10, "the run to stop"
    )
    assert _ran(effects_url, "cancel-me") == ["before", "held"]
    assert [s.name for s in client.list_steps("cancel-me")] == ["note"]
    assert client.cancel_workflow("cancel-me") == []  # finished: nothing changes

    client.resume_workflow("cancel-me")
    assert handle.result(timeout=30) == "finished"
    # "before" is not run again; the interrupted step is, then the rest.
    assert _ran(effects_url, "cancel-me") == ["before", "held", "held", "after"]
    info = client.get_workflow("cancel-me")
    assert info.status == WorkflowStatus.SUCCESS
    assert info.attempt == 2


def test_forking_from_step_three_reuses_steps_one_and_two_and_runs_three_to_five(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str
) -> None:
    spawn_app(server.target)
    original = client.start_workflow("five_steps", workflow_id="five")
    assert original.result(timeout=30) == ["s1", "s2", "s3", "s4", "s5"]

    fork = client.fork_workflow("five", 3, new_workflow_id="five-fork")
    assert fork.result(timeout=30) == ["s1", "s2", "s3", "s4", "s5"]
    assert _ran(effects_url, "five-fork") == ["s3", "s4", "s5"]
    assert _ran(effects_url, "five") == ["s1", "s2", "s3", "s4", "s5"]
    info = client.get_workflow("five-fork")
    assert info.forked_from == "five"
    assert [s.function_id for s in client.list_steps("five-fork")] == [1, 2, 3, 4, 5]
    # Forking again under the same id is idempotent.
    assert client.fork_workflow("five", 3, new_workflow_id="five-fork").workflow_id == "five-fork"


def test_workflows_pinned_to_v1_run_only_on_v1_workers_and_a_fork_runs_on_v2(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str
) -> None:
    v1 = spawn_app(server.target, APP_VERSION="v1")
    v2 = spawn_app(server.target, APP_VERSION="v2")
    handles = [
        client.start_workflow("five_steps", workflow_id=f"pinned-{i}", app_version="v1")
        for i in range(6)
    ]
    for handle in handles:
        handle.result(timeout=30)
    pids = {pid for i in range(6) for _, pid in effects(effects_url, f"pinned-{i}")}
    assert pids == {v1.pid}

    fork = client.fork_workflow("pinned-0", 4, new_workflow_id="pinned-0-v2", app_version="v2")
    fork.result(timeout=30)
    assert effects(effects_url, "pinned-0-v2") == [("s4", v2.pid), ("s5", v2.pid)]
    assert client.get_workflow("pinned-0-v2").app_version == "v2"

    client.start_workflow("five_steps", workflow_id="pinned-v3", app_version="v3")
    reason = client.get_workflow("pinned-v3").waiting_reason
    assert "no connected worker of app version 'v3' hosts workflow 'five_steps'" in reason
    assert "'v1', 'v2'" in reason


def test_a_workflow_past_its_timeout_is_cancelled_at_its_deadline(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str
) -> None:
    spawn_app(server.target)
    began = time.monotonic()
    handle = client.start_workflow("napper", 10, workflow_id="timed", timeout=2)
    with pytest.raises(WorkflowCancelled):
        handle.result(timeout=20)
    elapsed = time.monotonic() - began
    assert 1.9 <= elapsed < 4.0
    info = client.get_workflow("timed")
    assert info.status == WorkflowStatus.CANCELLED
    assert info.error is not None and info.error.type == "baton.DeadlineExceeded"
    assert info.deadline is not None


_HAS_CHILDREN = hasattr(__import__("baton").WorkflowContext, "start_workflow")


@pytest.mark.skipif(not _HAS_CHILDREN, reason="needs child workflows (issue 3)")
def test_a_parent_with_a_two_second_timeout_and_its_sleeping_child_are_both_cancelled(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str
) -> None:
    spawn_app(server.target)
    began = time.monotonic()
    parent = client.start_workflow("parent_of_napper", 10, workflow_id="tree", timeout=2)
    with pytest.raises(WorkflowCancelled):
        parent.result(timeout=20)
    child = client.retrieve_workflow("tree-child")
    with pytest.raises(WorkflowCancelled):
        child.result(timeout=5)
    assert time.monotonic() - began < 4.0
    assert client.get_workflow("tree-child").deadline == client.get_workflow("tree").deadline


@pytest.mark.skipif(not _HAS_CHILDREN, reason="needs child workflows (issue 3)")
def test_cancelling_with_children_cancels_a_child_started_by_the_workflow(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str
) -> None:
    spawn_app(server.target)
    parent = client.start_workflow("parent_of_holder", workflow_id="family")
    wait_until(lambda: "held" in _ran(effects_url, "family-child"), 30, "the child's long step")
    cancelled = parent.cancel(include_children=True)
    assert sorted(cancelled) == ["family", "family-child"]
    for workflow_id in ("family", "family-child"):
        with pytest.raises(WorkflowCancelled):
            client.retrieve_workflow(workflow_id).result(timeout=10)


def test_a_patch_keeps_old_workflows_on_the_old_path_and_sends_new_ones_down_the_new(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str
) -> None:
    old = spawn_app(server.target)
    before = client.start_workflow("patched", workflow_id="patched-old")
    wait_until(lambda: "held" in _ran(effects_url, "patched-old"), 30, "the old run's hold")
    os.kill(old.pid, signal.SIGKILL)
    old.wait(timeout=10)

    spawn_app(server.target, CODE_VERSION="v2")
    _release(effects_url, "all")
    after = client.start_workflow("patched", workflow_id="patched-new")
    assert before.result(timeout=30) == "old"  # recovered by the new code, old path
    assert after.result(timeout=30) == "new"
    assert [s.name for s in client.list_steps("patched-old")] == ["note", "old_way", "held"]
    assert [s.name for s in client.list_steps("patched-new")] == [
        "note",
        "baton.patch:new-way",
        "new_way",
        "held",
    ]
    assert _ran(effects_url, "patched-old").count("old_way") == 1
