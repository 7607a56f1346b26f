"""Workflows run by real worker processes against a real server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton import Client, StepError, WorkflowFailed, WorkflowStatus
from tests.conftest import ThreadServer
from tests.e2e.conftest import effects


@pytest.fixture
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.target) as connected:
        yield connected


def test_a_three_step_workflow_completes_and_its_steps_are_listed(
    server: ThreadServer, client: Client, spawn_worker, effects_url: str
) -> None:
    spawn_worker(server.target)
    handle = client.start_workflow("three_steps", 5, workflow_id="three-1")
    assert handle.result(timeout=30) == {"a": 6, "b": 12, "c": 9}
    assert handle.status() == WorkflowStatus.SUCCESS
    steps = client.list_steps("three-1")
    assert [(s.function_id, s.name, s.output) for s in steps] == [
        (1, "step_one", 6),
        (2, "step_two", 12),
        (3, "step_three", 9),
    ]
    assert [step for step, _ in effects(effects_url, "three-1")] == [
        "step_one",
        "step_two",
        "step_three",
    ]


def test_worker_run_serves_on_uvloop(server: ThreadServer, client: Client, spawn_worker) -> None:
    spawn_worker(server.target)
    loop_module = client.execute_workflow("which_event_loop", result_timeout=30)
    assert loop_module.startswith("uvloop"), loop_module


def test_starting_the_same_id_twice_runs_the_workflow_once(
    server: ThreadServer, client: Client, spawn_worker, effects_url: str
) -> None:
    spawn_worker(server.target)
    first = client.start_workflow("three_steps", 1, workflow_id="once")
    assert first.result(timeout=30) == {"a": 2, "b": 4, "c": 1}
    again = client.start_workflow("three_steps", 1, workflow_id="once")
    assert again.result(timeout=30) == {"a": 2, "b": 4, "c": 1}
    assert len(effects(effects_url, "once")) == 3


def test_a_workflow_started_before_any_worker_runs_when_one_connects(
    server: ThreadServer, client: Client, spawn_worker
) -> None:
    handle = client.start_workflow("three_steps", 0, workflow_id="early")
    info = client.get_workflow("early")
    assert info.status == WorkflowStatus.ENQUEUED
    assert "no connected worker hosts workflow 'three_steps'" in info.waiting_reason
    spawn_worker(server.target)
    assert handle.result(timeout=30) == {"a": 1, "b": 2, "c": -1}


def test_a_failing_workflow_reports_its_error_as_data(
    server: ThreadServer, client: Client, spawn_worker
) -> None:
    spawn_worker(server.target)
    handle = client.start_workflow("fails", "card declined", workflow_id="fails-1")
    with pytest.raises(WorkflowFailed) as caught:
        handle.result(timeout=30)
    assert caught.value.error.type == "ValueError"
    assert caught.value.error.message == "card declined"
    assert handle.status() == WorkflowStatus.ERROR


def test_a_step_is_retried_with_its_policy_then_its_error_is_recorded(
    server: ThreadServer, client: Client, spawn_worker, effects_url: str
) -> None:
    spawn_worker(server.target)
    assert client.start_workflow("retries", 2, workflow_id="flaky-ok").result(30) == (
        "ok after 3 calls"
    )
    gave_up = client.start_workflow("retries", 5, workflow_id="flaky-bad").result(30)
    assert gave_up.startswith(f"gave up: {StepError.__name__}")
    assert len(effects(effects_url, "flaky-bad")) == 3
    (step,) = client.list_steps("flaky-bad")
    assert step.error is not None and step.error.type == "ConnectionError"


def test_async_workflows_and_steps_are_first_class(
    server: ThreadServer, client: Client, spawn_worker
) -> None:
    spawn_worker(server.target)
    assert client.start_workflow("async_mixed", 4, workflow_id="async-1").result(30) == [8, 9]


def test_grpcurl_lists_the_services_and_starts_a_workflow_a_python_worker_completes(
    server: ThreadServer, client: Client, spawn_worker
) -> None:
    grpcurl = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    listed = subprocess.run(
        [grpcurl, "-plaintext", server.target, "list"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    for service in ("Workflow", "Worker", "Queue", "Message", "Event", "Stream", "Schedule"):
        assert f"baton.v1.{service}Service" in listed
    assert "grpc.health.v1.Health" in listed
    spawn_worker(server.target)
    body = (
        '{"workflow_name": "three_steps", "workflow_id": "from-grpcurl", "input": {"json": "[10]"}}'
    )
    started = subprocess.run(
        [grpcurl, "-plaintext", "-d", body, server.target,
         "baton.v1.WorkflowService/StartWorkflow"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert '"created": true' in started.stdout
    assert client.retrieve_workflow("from-grpcurl").result(timeout=30) == {
        "a": 11,
        "b": 22,
        "c": 19,
    }


async def test_the_async_client_starts_awaits_and_lists(server: ThreadServer, spawn_worker) -> None:
    from baton import AsyncClient

    spawn_worker(server.target)
    async with AsyncClient(server.target) as client:
        handle = await client.start_workflow("three_steps", 2, workflow_id="async-client")
        assert await handle.result(timeout=30) == {"a": 3, "b": 6, "c": 3}
        assert await handle.status() == WorkflowStatus.SUCCESS
        steps = await client.list_steps("async-client")
        listed = await client.list_workflows(name="three_steps")
    assert [s.name for s in steps] == ["step_one", "step_two", "step_three"]
    assert [w.workflow_id for w in listed] == ["async-client"]


def test_as_completed_yields_each_workflow_once_finished_with_its_result_in_hand(
    server: ThreadServer, client: Client, spawn_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baton import WorkflowStart
    from baton import _client_shared as shared

    monkeypatch.setattr(shared, "AWAIT_MANY", 7)  # several calls, as past 1,000
    spawn_worker(server.target)
    starts = [WorkflowStart("three_steps", (i,), workflow_id=f"many-{i}") for i in range(20)]
    handles = client.start_workflows(starts)
    failing = client.start_workflow("fails", "no", workflow_id="many-fails")
    given = [*handles, failing]
    done = {}
    for handle in client.as_completed([*given, "many-3"], timeout=60):  # type: ignore[list-item]
        assert any(handle is g for g in given)  # the caller's own handles come back
        assert handle.workflow_id not in done
        try:
            done[handle.workflow_id] = handle.result(timeout=0.000001)  # in hand: no wait
        except WorkflowFailed as failed:
            done[handle.workflow_id] = failed.error.message
    assert done == {
        **{f"many-{i}": {"a": i + 1, "b": 2 * i + 2, "c": 2 * i - 1} for i in range(20)},
        "many-fails": "no",
    }
    # Finished already: yielded even with no time to wait.
    assert len(list(client.as_completed(handles[:3], timeout=0))) == 3  # type: ignore[arg-type]
    stuck = client.start_workflow("nobody_hosts_me")
    with pytest.raises(TimeoutError, match="1 of 2 workflows did not finish") as caught:
        list(client.as_completed([stuck, failing], timeout=0.5))
    assert caught.value.workflow_ids == [stuck.workflow_id]  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="not one id"):
        list(client.as_completed("many-1"))


async def test_the_async_client_awaits_many_as_they_complete(
    server: ThreadServer, spawn_worker
) -> None:
    from baton import AsyncClient

    spawn_worker(server.target)
    async with AsyncClient(server.target) as client:
        handles = [
            await client.start_workflow("three_steps", i, workflow_id=f"amany-{i}")
            for i in range(5)
        ]
        results = {h.workflow_id: await h.result() async for h in client.as_completed(handles)}
    assert results == {f"amany-{i}": {"a": i + 1, "b": 2 * i + 2, "c": 2 * i - 1} for i in range(5)}


def test_execute_workflow_starts_and_returns_the_result_in_one_call(
    server: ThreadServer, client: Client, spawn_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baton import _client_shared as shared

    spawn_worker(server.target)

    def no_second_call(*args: object, **kwargs: object) -> None:
        raise AssertionError("AwaitWorkflow called: the start did not wait")

    with monkeypatch.context() as patched:
        patched.setattr(client._rpc, "await_workflow", no_second_call)
        assert client.execute_workflow("three_steps", 5, workflow_id="exec-1") == {
            "a": 6,
            "b": 12,
            "c": 9,
        }
    assert client.get_workflow("exec-1").status == WorkflowStatus.SUCCESS
    # Again with the same id: the first run's result, not a second run.
    assert client.execute_workflow("three_steps", 99, workflow_id="exec-1")["a"] == 6
    with pytest.raises(WorkflowFailed) as caught:
        client.execute_workflow("fails", "card declined", result_timeout=30)
    assert caught.value.error.message == "card declined"
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.3s"):
        client.execute_workflow("nobody_hosts_me", workflow_id="exec-stuck", result_timeout=0.3)
    assert client.get_workflow("exec-stuck").status == WorkflowStatus.ENQUEUED
    # Not finished within the first wait: it goes on waiting as `result` does.
    monkeypatch.setattr(shared, "AWAIT_SLICE", 0.001)
    assert client.execute_workflow("three_steps", 1, result_timeout=30)["b"] == 4


async def test_the_async_client_executes_a_workflow(server: ThreadServer, spawn_worker) -> None:
    from baton import AsyncClient

    spawn_worker(server.target)
    async with AsyncClient(server.target) as client:
        result = await client.execute_workflow("three_steps", 2, workflow_id="async-exec")
        with pytest.raises(TimeoutError, match="async-stuck"):
            await client.execute_workflow(
                "nobody_hosts_me", workflow_id="async-stuck", result_timeout=0.2
            )
    assert result == {"a": 3, "b": 6, "c": 3}


def test_leases_are_renewed_per_worker_not_per_workflow(
    server: ThreadServer, client: Client, spawn_worker, effects_url: str
) -> None:
    import psycopg

    from tests.e2e.conftest import wait_until

    spawn_worker(server.target, SLOW_IN="step_two", SLOW_SECONDS="3")
    for index in range(10):
        client.start_workflow("three_steps", index, workflow_id=f"leased-{index}")

    def in_step_two() -> int:
        with psycopg.connect(effects_url) as conn:
            row = conn.execute("SELECT count(*) FROM effects WHERE step = 'step_two'").fetchone()
        return row[0] == 10 if row else False

    def snapshot() -> tuple[list[object], object]:
        with psycopg.connect(effects_url) as conn:
            rows = conn.execute(
                "SELECT updated_at FROM workflows WHERE status = 'PENDING' ORDER BY workflow_id"
            ).fetchall()
            lease = conn.execute("SELECT max(lease_expires_at) FROM workers").fetchone()
        return [r[0] for r in rows], lease[0] if lease else None

    wait_until(in_step_two, 30, "all ten workflows in step two")
    before_rows, before_lease = snapshot()
    # Wait a few renewal intervals (0.25 s each) while the steps run.
    wait_until(lambda: snapshot()[1] > before_lease, 5, "a lease renewal")  # type: ignore[operator]
    after_rows, after_lease = snapshot()
    assert len(before_rows) == 10
    assert after_rows == before_rows  # no per-workflow write kept the leases alive
    assert after_lease > before_lease  # type: ignore[operator]
