"""Operating the service: metrics, logs, the container's commands, replicas."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from baton import Client, WorkflowStart, WorkflowStatus
from tests.conftest import ROOT, server_config, start_thread_server
from tests.e2e.conftest import effects, wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_metrics_endpoint_shows_the_counts_of_a_run(database_url: str, spawn_worker) -> None:
    server = start_thread_server(server_config(database_url, metrics_listen="127.0.0.1:0"))
    try:
        spawn_worker(server.target)
        with Client(server.target) as client:
            for index in range(3):
                client.start_workflow("three_steps", index, workflow_id=f"m-{index}").result(30)
            client.start_workflow("fails", "boom", workflow_id="m-fail")
            wait_until(
                lambda: client.get_workflow("m-fail").status == WorkflowStatus.ERROR, 30, "fail"
            )
            # Starts of every kind count: a batch, and a start onto a queue.
            client.start_workflows([WorkflowStart("unhosted", (i,)) for i in range(2)])
            client.upsert_queue("metered")
            client.start_workflow("unhosted", 9, queue="metered")
        url = f"http://127.0.0.1:{server.running.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        server.stop()

    def value(pattern: str) -> float:
        match = re.search("^" + re.escape(pattern).replace(r"\*", ".*") + r" (\S+)$", text, re.M)
        assert match, f"no sample {pattern!r} in:\n{text}"
        return float(match.group(1))

    assert value('baton_workflows_started_total{workflow_name="three_steps"}') == 3
    assert value('baton_workflows_started_total{workflow_name="unhosted"}') == 3
    assert (
        value('baton_workflows_finished_total{status="SUCCESS",workflow_name="three_steps"}') == 3
    )
    assert value('baton_workflows_finished_total{status="ERROR",workflow_name="fails"}') == 1
    assert value('baton_step_duration_seconds_count{step_name="step_two"}') == 3
    assert value("baton_dispatch_latency_seconds_count") == 4
    assert value("baton_connected_workers") == 1

    def rpc(code: str, method: str) -> str:
        return f'baton_rpc_duration_seconds_count{{code="{code}",method="baton.v1.{method}"}}'

    assert value(rpc("OK", "WorkflowService/StartWorkflow")) == 5
    # The worker's 9 step results and 4 completions go on its stream, group-committed.
    assert value("baton_checkpoint_batch_size_sum") == 13
    assert 1 <= value("baton_checkpoint_batch_size_count") <= 13
    assert rpc("OK", "WorkerService/RecordStep") not in text
    assert rpc("NOT_FOUND", "WorkflowService/GetWorkflow") not in text  # nothing failed so


def test_json_logs_carry_one_object_per_line(database_url: str, tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
             "--database-url", database_url, "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert process.stdout is not None
    assert "serving on port" in process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert lines, "the server logged nothing"
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["message"].startswith("serving on 127.0.0.1:") for line in lines)


def _dockerfile() -> tuple[list[str], list[str], dict[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    health = json.loads(re.search(r"^HEALTHCHECK .*CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    env = dict(re.findall(r"(BATON_\w+)=(\S+)", re.search(r"^ENV (.*)$", text, re.M).group(1)))  # type: ignore[union-attr]
    return entry + cmd, health, env


def test_the_container_entrypoint_and_healthcheck_work_outside_docker(database_url: str) -> None:
    command, healthcheck, env = _dockerfile()
    port = _free_port()
    # As documented for the image: plaintext inside a private network is asked for.
    env = {**os.environ, **env, "BATON_DATABASE_URL": database_url, "BATON_INSECURE": "true"}
    env["BATON_LISTEN"] = env["BATON_LISTEN"].replace("50051", str(port))
    bindir = Path(sys.executable).parent
    process = subprocess.Popen(
        [str(bindir / command[0]), *command[1:]], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert "serving on port" in process.stdout.readline()
        check = [str(bindir / healthcheck[0]), *healthcheck[1:]]
        check = [part.replace("50051", str(port)) for part in check]
        result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def test_sigterm_of_one_replica_under_load_loses_nothing_and_workers_move_within_2s(
    server_process, spawn_worker, effects_url: str
) -> None:
    import psycopg

    first, second = server_process(), server_process()
    both = f"{first.target},{second.target}"
    for _ in range(2):
        spawn_worker(both, SLOW_IN="step_two", SLOW_SECONDS="0.2")

    def replicas() -> set[str]:
        with psycopg.connect(effects_url) as conn:
            return {row[0] for row in conn.execute("SELECT replica_id FROM workers")}

    wait_until(lambda: len(replicas()) == 1, 30, "both workers on the first replica")
    (first_replica,) = replicas()
    ids = [f"load-{index}" for index in range(40)]
    with Client(second.target) as client:
        for index, workflow_id in enumerate(ids):
            client.start_workflow("three_steps", index, workflow_id=workflow_id)
            if index == 20:
                first.process.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
            time.sleep(0.05)  # a steady trickle of starts, not a synchronisation
        wait_until(lambda: first_replica not in replicas(), 10, "the workers to move")
        moved_after = time.monotonic() - stopped_at
        results = [client.retrieve_workflow(w).result(timeout=60) for w in ids]
    assert first.process.wait(timeout=15) == 0
    assert moved_after < 2.0, f"workers took {moved_after:.2f}s to move"
    assert [r["c"] for r in results] == [(i + 1) * 2 - 3 for i in range(40)]
    for workflow_id in ids:
        ran = [step for step, _ in effects(effects_url, workflow_id)]
        assert ran == ["step_one", "step_two", "step_three"], (workflow_id, ran)


def test_json_log_lines_about_a_workflow_carry_its_id(database_url: str, tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    with open(log_file, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
             "--database-url", database_url, "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().rsplit(" ", 1)[1])
        with Client(f"127.0.0.1:{port}") as client:
            client.start_workflow("three_steps", 1, workflow_id="logged-1", timeout=0.5)
            wait_until(
                lambda: client.get_workflow("logged-1").status == WorkflowStatus.CANCELLED,
                30,
                "the deadline to cancel it",
            )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    about = [line for line in lines if "logged-1" in line["message"]]
    assert about, "nothing was logged about the workflow"
    assert all(line.get("workflow_id") == "logged-1" for line in about)


def test_a_taken_port_is_one_clear_line_not_a_traceback(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "baton_server", "serve", "--listen", f"127.0.0.1:{port}",
             "--database-url", database_url, "--log-level", "ERROR"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"baton serve: cannot listen on 127.0.0.1:{port}: the address is in use" in result.stderr
    assert "Traceback" not in result.stderr
