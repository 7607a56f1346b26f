"""The ``baton`` command, run as a subprocess against a live server and real
workers: it lists, inspects, cancels, resumes and forks workflows."""

from __future__ import annotations

import json
import subprocess
import sys

from baton import Client, WorkflowStatus
from tests.conftest import ThreadServer
from tests.e2e.conftest import wait_until
from tests.e2e.test_management import Spawn, _ran, _release, client, spawn_app

__all__ = ["client", "spawn_app"]  # fixtures shared with test_management


def baton(server: ThreadServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton_server", *args, "--target", server.target],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_lists_inspects_cancels_resumes_and_forks_workflows(
    server: ThreadServer, client: Client, spawn_app: Spawn, effects_url: str
) -> None:
    spawn_app(server.target)
    client.start_workflow("five_steps", workflow_id="cli-five").result(timeout=30)
    client.start_workflow("hold_then_finish", workflow_id="cli-held")
    wait_until(lambda: "held" in _ran(effects_url, "cli-held"), 30, "the long step")

    listed = baton(server, "workflow", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "WORKFLOW", "ID", "NAME", "STATUS", "CREATED", "COMPLETED", "VERSION", "ATTEMPT",
    ]  # fmt: skip
    assert [line.split()[:3] for line in lines[1:]] == [
        ["cli-held", "hold_then_finish", "PENDING"],
        ["cli-five", "five_steps", "SUCCESS"],
    ]
    only = json.loads(baton(server, "workflow", "list", "--status", "success", "--json").stdout)
    assert [w["workflow_id"] for w in only] == ["cli-five"]

    got = baton(server, "workflow", "get", "cli-five")
    assert got.returncode == 0, got.stderr
    assert "status:       SUCCESS" in got.stdout
    assert 'output:       ["s1","s2","s3","s4","s5"]' in got.stdout

    steps = baton(server, "workflow", "steps", "cli-five")
    rows = [line.split() for line in steps.stdout.splitlines()]
    assert rows[0][:2] == ["STEP", "NAME"]
    assert [(row[0], row[1], row[-2]) for row in rows[1:]] == [
        (str(i), "note", f'"s{i}"') for i in range(1, 6)
    ]

    cancelled = baton(server, "workflow", "cancel", "cli-held")
    assert cancelled.stdout.strip() == "cancelled workflow cli-held"
    again = baton(server, "workflow", "cancel", "cli-held")
    assert again.returncode == 0
    assert "already finished (CANCELLED); not cancelled" in again.stdout

    _release(effects_url, "cli-held")
    resumed = baton(server, "workflow", "resume", "cli-held")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed workflow cli-held")
    assert client.retrieve_workflow("cli-held").result(timeout=30) == "finished"

    forked = baton(server, "workflow", "fork", "cli-five", "--step", "4", "--new-id", "cli-fork")
    assert forked.stdout.strip() == "forked workflow cli-five from step 4 as cli-fork"
    assert client.retrieve_workflow("cli-fork").result(timeout=30) == ["s1", "s2", "s3", "s4", "s5"]
    assert _ran(effects_url, "cli-fork") == ["s4", "s5"]
    info = json.loads(baton(server, "workflow", "get", "cli-fork", "--json").stdout)
    assert info["forked_from"] == "cli-five" and info["status"] == WorkflowStatus.SUCCESS


def test_cli_errors_are_one_clear_line_and_a_non_zero_exit(server: ThreadServer) -> None:
    missing = baton(server, "workflow", "get", "no-such-workflow")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        "baton: error: NOT_FOUND: workflow 'no-such-workflow' not found (reason WORKFLOW_NOT_FOUND)"
    ]
    refused = baton(server, "workflow", "resume", "no-such-workflow")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    queue = baton(server, "queue", "get", "no-such-queue")
    assert queue.returncode == 1
    assert queue.stderr.strip().splitlines() == [
        "baton: error: NOT_FOUND: queue 'no-such-queue' not found (reason QUEUE_NOT_FOUND)"
    ]
