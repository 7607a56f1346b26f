"""``baton queue`` and ``baton schedule``, run as a subprocess against a live
server: readable tables, JSON, and the schedule operations."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from baton import Client
from tests.conftest import ThreadServer
from tests.e2e.test_cli import baton


@pytest.fixture
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.target) as connected:
        yield connected


def test_the_cli_lists_and_shows_queues(server: ThreadServer, client: Client) -> None:
    client.upsert_queue("emails", concurrency=3, rate_limit=(10, 2.0), priority_enabled=True)
    client.upsert_queue("plain")
    client.start_workflow("send", queue="emails")

    listed = baton(server, "queue", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == [
        "QUEUE", "CONCURRENCY", "PER", "WORKER", "RATE", "PRIORITY", "PARTITIONED", "TIMEOUT",
        "DEPTH", "RUNNING",
    ]  # fmt: skip
    assert rows[1:] == [
        ["emails", "3", "-", "10/2s", "yes", "no", "-", "1", "0"],
        ["plain", "-", "-", "-", "no", "no", "-", "0", "0"],
    ]
    got = baton(server, "queue", "get", "emails")
    assert "rate limit:  10/2s" in got.stdout and "depth:       1" in got.stdout
    as_json = json.loads(baton(server, "queue", "get", "emails", "--json").stdout)
    assert (as_json["name"], as_json["concurrency"], as_json["depth"]) == ("emails", 3, 1)


def test_the_cli_lists_pauses_resumes_triggers_and_backfills_schedules(
    server: ThreadServer, client: Client
) -> None:
    client.create_schedule("hourly", "report", "0 * * * *", time_zone="Europe/Paris")
    assert baton(server, "schedule", "pause", "hourly").stdout.strip() == "paused schedule hourly"
    listed = baton(server, "schedule", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0][:6] == ["SCHEDULE", "WORKFLOW", "CRON", "ZONE", "QUEUE", "STATE"]
    assert rows[1][:10] == [
        "hourly",
        "report",
        "0",
        "*",
        "*",
        "*",
        "*",
        "Europe/Paris",
        "-",
        "paused",
    ]

    resumed = baton(server, "schedule", "resume", "hourly")
    assert resumed.stdout.startswith("resumed schedule hourly; next tick ")
    assert not client.get_schedule("hourly").paused

    triggered = baton(server, "schedule", "trigger", "hourly")
    assert triggered.returncode == 0, triggered.stderr
    workflow_id = triggered.stdout.strip().removeprefix("started workflow ")
    assert client.get_workflow(workflow_id).name == "report"

    backfilled = baton(
        server, "schedule", "backfill", "hourly",
        "--start", "2024-05-01T00:00:00Z", "--end", "2024-05-01T03:00:00Z",
    )  # fmt: skip
    assert backfilled.stdout.splitlines() == [
        "started 3 workflow(s):",
        "  hourly-2024-05-01T00:00:00Z",
        "  hourly-2024-05-01T01:00:00Z",
        "  hourly-2024-05-01T02:00:00Z",
    ]
    again = baton(
        server, "schedule", "backfill", "hourly", "--start", "2024-05-01T00:00:00", "--end",
        "2024-05-01T03:00:00", "--json",
    )  # fmt: skip
    assert json.loads(again.stdout) == {"workflow_ids": []}

    missing = baton(server, "schedule", "pause", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "baton: error: NOT_FOUND: schedule 'nope' not found (reason SCHEDULE_NOT_FOUND)"
    ]
    bad = baton(server, "schedule", "backfill", "hourly", "--start", "yesterday-ish")
    assert bad.returncode == 2 and "neither an ISO 8601 time" in bad.stderr
