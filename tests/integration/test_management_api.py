"""WorkflowService's management RPCs over raw gRPC and the SDK client, with
workflow rows arranged directly in the test's database where no worker is
needed: cancel trees, resume budgets, fork copies, delete, retention, timeouts
and the list filters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest

from baton import (
    AlreadyExists,
    AsyncClient,
    Client,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    WorkflowCancelled,
    WorkflowStatus,
)
from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import worker_service_pb2 as wk
from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc
from tests.conftest import ThreadServer, server_config, start_thread_server
from tests.grpc_helpers import details


@pytest.fixture
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.target) as connected:
        yield connected


def _sql(url: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _make_child(url: str, child: str, parent: str) -> None:
    _sql(url, "UPDATE workflows SET parent_workflow_id = %s WHERE workflow_id = %s", parent, child)


def _finish(url: str, workflow_id: str, status: str = "SUCCESS", ago: timedelta | None = None):
    _sql(
        url,
        "UPDATE workflows SET status = %s, completed_at = now() - %s WHERE workflow_id = %s",
        status,
        ago or timedelta(0),
        workflow_id,
    )


def test_cancel_with_children_cancels_the_whole_unfinished_tree_and_no_more(
    client: Client, database_url: str
) -> None:
    for workflow_id in ["root", "kid", "grandkid", "done-kid", "stranger"]:
        client.start_workflow("nobody_hosts_this", workflow_id=workflow_id)
    _make_child(database_url, "kid", "root")
    _make_child(database_url, "grandkid", "kid")
    _make_child(database_url, "done-kid", "root")
    _finish(database_url, "done-kid")

    assert client.cancel_workflow("kid") == ["kid"]  # without children: itself only
    assert client.get_workflow("grandkid").status == WorkflowStatus.ENQUEUED
    cancelled = client.cancel_workflow("root", include_children=True)
    assert cancelled[0] == "root" and sorted(cancelled) == ["grandkid", "root"]
    statuses = {w: client.get_workflow(w).status for w in ["root", "grandkid", "done-kid"]}
    assert statuses == {
        "root": WorkflowStatus.CANCELLED,
        "grandkid": WorkflowStatus.CANCELLED,
        "done-kid": WorkflowStatus.SUCCESS,
    }
    assert client.get_workflow("stranger").status == WorkflowStatus.ENQUEUED
    assert client.cancel_workflow("root", include_children=True) == []
    with pytest.raises(NotFound):
        client.cancel_workflow("no-such-workflow")


@pytest.mark.parametrize("through", ["same replica", "other replica"])
def test_a_cancel_is_pushed_to_the_owner_s_stream_and_its_checkpoints_are_refused_as_cancelled(
    server: ThreadServer, database_url: str, through: str
) -> None:
    other = start_thread_server(server_config(database_url)) if through == "other replica" else None
    try:
        with Client((other or server).target) as client:
            _cancel_while_connected(server, client)
    finally:
        if other is not None:
            other.stop()


def _cancel_while_connected(server: ThreadServer, client: Client) -> None:
    """A worker connected to ``server`` runs a workflow that ``client`` cancels."""
    client.start_workflow("checkout", workflow_id="fenced")
    with grpc.insecure_channel(server.target) as channel:
        stub = wk_grpc.WorkerServiceStub(channel)
        requests = iter(
            [
                wk.ConnectRequest(
                    register=wk.RegisterWorker(
                        worker_id="w-1",
                        workflows=[wk.WorkflowRegistration(name="checkout")],
                        workflow_slots=1,
                    )
                )
            ]
        )
        stream = stub.Connect(_hold_open(requests), timeout=20)
        kinds = []
        for response in stream:
            kinds.append(response.WhichOneof("message"))
            if response.HasField("dispatch"):
                attempt = response.dispatch.attempt
                assert client.cancel_workflow("fenced") == ["fenced"]
            if response.HasField("cancel"):
                assert response.cancel.workflow_id == "fenced"
                break
        stream.cancel()
        assert kinds == ["registered", "dispatch", "cancel"]
        context = common.WorkflowContext(workflow_id="fenced", function_id=1, attempt=attempt)
        with pytest.raises(grpc.RpcError) as caught:
            stub.RecordStep(
                wk.RecordStepRequest(
                    context=context, step_name="pay", output=common.Payload(json="1")
                ),
                timeout=5,
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details(caught.value)[0] == "WORKFLOW_CANCELLED"
        with pytest.raises(grpc.RpcError) as caught:
            stub.CompleteWorkflow(
                wk.CompleteWorkflowRequest(
                    workflow_id="fenced", attempt=attempt, output=common.Payload(json="1")
                ),
                timeout=5,
            )
        assert details(caught.value)[0] == "WORKFLOW_CANCELLED"


def _hold_open(first: Iterator[wk.ConnectRequest]) -> Iterator[wk.ConnectRequest]:
    yield from first
    while True:  # heartbeats keep the session; the test cancels the stream
        time.sleep(0.2)
        yield wk.ConnectRequest(heartbeat=wk.Heartbeat())


def test_resume_gives_a_fresh_attempt_budget_and_refuses_other_statuses(
    client: Client, database_url: str
) -> None:
    client.start_workflow("nobody_hosts_this", workflow_id="dead")
    _sql(
        database_url,
        "UPDATE workflows SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', attempt = 7,"
        " completed_at = now() WHERE workflow_id = 'dead'",
    )
    client.resume_workflow("dead", app_version="v9")
    info = client.get_workflow("dead")
    assert info.status == WorkflowStatus.ENQUEUED
    assert info.app_version == "v9" and info.attempt == 7 and info.completed_at is None
    assert _sql(database_url, "SELECT attempts_base FROM workflows WHERE workflow_id = 'dead'") == [
        (7,)
    ]
    with pytest.raises(FailedPrecondition) as caught:
        client.resume_workflow("dead")
    assert caught.value.reason == "WORKFLOW_NOT_RESUMABLE"
    with pytest.raises(NotFound):
        client.resume_workflow("no-such-workflow")


def test_a_fork_copies_steps_events_and_stream_values_written_before_its_start_step(
    client: Client, database_url: str
) -> None:
    client.start_workflow("nobody_hosts_this", workflow_id="orig", app_version="v1")
    _finish(database_url, "orig")
    for function_id in range(1, 6):
        _sql(
            database_url,
            "INSERT INTO steps (workflow_id, function_id, step_name, output_encoding, output,"
            " attempt, completed_at) VALUES ('orig', %s, 'st', 'json', %s, 1,"
            " now() - make_interval(secs => 10 - %s))",
            function_id,
            str(function_id).encode(),
            function_id,
        )
    for function_id, key, value in [(1, "stage", b'"one"'), (2, "stage", b'"two"'), (4, "x", b"4")]:
        _sql(
            database_url,
            "INSERT INTO event_history (workflow_id, function_id, key, value_encoding, value)"
            " VALUES ('orig', %s, %s, 'json', %s)",
            function_id,
            key,
            value,
        )
    _sql(database_url, "INSERT INTO events VALUES ('orig', 'stage', 'json', '\"four\"')")
    for offset, function_id in enumerate([1, 2, 4]):
        _sql(
            database_url,
            'INSERT INTO stream_entries (workflow_id, key, "offset", value_encoding, value,'
            " function_id) VALUES ('orig', 'progress', %s, 'json', %s, %s)",
            offset,
            str(offset).encode(),
            function_id,
        )
    _sql(database_url, "INSERT INTO streams VALUES ('orig', 'progress', 3, now())")

    fork = client.fork_workflow("orig", 3, new_workflow_id="forked", app_version="v2")
    info = fork.get()
    assert (info.forked_from, info.app_version, info.status) == ("orig", "v2", "ENQUEUED")
    assert [s.function_id for s in client.list_steps("forked")] == [1, 2]
    assert _sql(database_url, "SELECT key, value FROM events WHERE workflow_id = 'forked'") == [
        ("stage", b'"two"')
    ]
    assert _sql(
        database_url,
        "SELECT \"offset\", function_id FROM stream_entries WHERE workflow_id = 'forked'"
        ' ORDER BY "offset"',
    ) == [(0, 1), (1, 2)]
    # The stream was closed after step 4, so the fork's stream is open at offset 2.
    assert _sql(
        database_url, "SELECT next_offset, closed_at FROM streams WHERE workflow_id = 'forked'"
    ) == [(2, None)]
    client.start_workflow("nobody_hosts_this", workflow_id="taken")
    with pytest.raises(AlreadyExists):
        client.fork_workflow("orig", 3, new_workflow_id="taken")
    with pytest.raises(NotFound):
        client.fork_workflow("no-such-workflow", 1)


def test_delete_removes_a_finished_tree_with_its_rows_and_refuses_an_unfinished_one(
    client: Client, database_url: str
) -> None:
    for workflow_id in ["gone", "gone-kid", "busy", "busy-kid"]:
        client.start_workflow("nobody_hosts_this", workflow_id=workflow_id)
    _make_child(database_url, "gone-kid", "gone")
    _make_child(database_url, "busy-kid", "busy")
    for workflow_id in ["gone", "gone-kid", "busy"]:
        _finish(database_url, workflow_id)
    _sql(
        database_url,
        "INSERT INTO steps (workflow_id, function_id, step_name, attempt)"
        " VALUES ('gone', 1, 's', 1)",
    )

    with pytest.raises(FailedPrecondition) as caught:
        client.delete_workflow("busy", include_children=True)
    assert caught.value.reason == "WORKFLOW_NOT_FINISHED"
    assert "busy-kid" in str(caught.value)
    assert client.delete_workflow("gone", include_children=True) == 2
    remaining = _sql(database_url, "SELECT workflow_id FROM workflows ORDER BY 1")
    assert remaining == [("busy",), ("busy-kid",)]
    assert _sql(database_url, "SELECT count(*) FROM steps") == [(0,)]
    with pytest.raises(NotFound):
        client.delete_workflow("gone")


def _arrange_retention(url: str, client: Client) -> None:
    for workflow_id in ["old-done", "old-failed", "old-running", "new-done"]:
        client.start_workflow("nobody_hosts_this", workflow_id=workflow_id)
    _finish(url, "old-done", "SUCCESS", timedelta(days=2))
    _finish(url, "old-failed", "ERROR", timedelta(days=2))
    _finish(url, "new-done", "SUCCESS", timedelta(minutes=1))
    _sql(url, "UPDATE workflows SET created_at = now() - interval '3 days'")
    for workflow_id in ["old-done", "old-failed", "new-done"]:
        _sql(
            url,
            "INSERT INTO steps (workflow_id, function_id, step_name, attempt)"
            " VALUES (%s, 1, 's', 1)",
            workflow_id,
        )
        _sql(url, "INSERT INTO messages (destination_id) VALUES (%s)", workflow_id)
        _sql(url, "INSERT INTO events (workflow_id, key) VALUES (%s, 'k')", workflow_id)
        _sql(
            url,
            "INSERT INTO event_history (workflow_id, function_id, key) VALUES (%s, 1, 'k')",
            workflow_id,
        )
        _sql(url, "INSERT INTO streams (workflow_id, key) VALUES (%s, 'k')", workflow_id)
        _sql(
            url,
            "INSERT INTO stream_entries (workflow_id, key, \"offset\") VALUES (%s, 'k', 0)",
            workflow_id,
        )


def test_retention_deletes_only_workflows_finished_before_the_cutoff_with_all_their_rows(
    database_url: str,
) -> None:
    # Two replicas sweep the same database side by side, in small batches.
    config = server_config(
        database_url, retention_seconds=3600.0, retention_interval_seconds=0.1, retention_batch=1
    )
    first = start_thread_server(server_config(database_url))
    try:
        with Client(first.target) as client:
            _arrange_retention(database_url, client)
    finally:
        first.stop()
    replicas = [start_thread_server(config), start_thread_server(config)]
    try:
        deadline = time.monotonic() + 20
        while _sql(database_url, "SELECT count(*) FROM workflows")[0][0] > 2:
            assert time.monotonic() < deadline, "retention did not delete in time"
            time.sleep(0.05)
    finally:
        for replica in replicas:
            replica.stop()
    kept = _sql(database_url, "SELECT workflow_id FROM workflows ORDER BY 1")
    assert kept == [("new-done",), ("old-running",)]
    for table, column in [
        ("steps", "workflow_id"),
        ("messages", "destination_id"),
        ("events", "workflow_id"),
        ("event_history", "workflow_id"),
        ("streams", "workflow_id"),
        ("stream_entries", "workflow_id"),
    ]:
        rows = _sql(database_url, f"SELECT DISTINCT {column} FROM {table}")
        assert rows == [("new-done",)], table


def test_a_timeout_becomes_a_deadline_and_cancels_the_workflow_and_its_descendants(
    client: Client, database_url: str
) -> None:
    began = datetime.now(UTC)
    client.start_workflow("nobody_hosts_this", workflow_id="timed-root", timeout=1.5)
    client.start_workflow("nobody_hosts_this", workflow_id="untimed-kid")
    _make_child(database_url, "untimed-kid", "timed-root")
    deadline = client.get_workflow("timed-root").deadline
    assert deadline is not None
    assert timedelta(seconds=1.3) < deadline - began < timedelta(seconds=2)
    with pytest.raises(WorkflowCancelled):
        client.retrieve_workflow("untimed-kid").result(timeout=10)
    root = client.get_workflow("timed-root")
    assert root.status == WorkflowStatus.CANCELLED
    assert root.error is not None and root.error.type == "baton.DeadlineExceeded"
    assert root.completed_at is not None and root.completed_at >= deadline


def test_a_timeout_that_is_not_positive_is_invalid(client: Client) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.start_workflow("checkout", timeout=-1)
    assert caught.value.field_violations[0][0] == "timeout"


def test_list_filters_by_completion_time_prefix_version_and_parent_and_can_omit_payloads(
    client: Client, database_url: str
) -> None:
    for workflow_id, version in [("a-1", "v1"), ("a-2", "v2"), ("b-1", "v1")]:
        client.start_workflow("nobody_hosts_this", {"n": 1}, workflow_id=workflow_id,
                              app_version=version)  # fmt: skip
    _make_child(database_url, "a-2", "a-1")
    _finish(database_url, "a-1", ago=timedelta(hours=2))
    _finish(database_url, "b-1", ago=timedelta(minutes=5))
    hour_ago = datetime.now(UTC) - timedelta(hours=1)

    def ids(**filters: object) -> list[str]:
        return [w.workflow_id for w in client.list_workflows(**filters)]  # type: ignore[arg-type]

    assert ids(completed_after=hour_ago) == ["b-1"]
    assert ids(completed_before=hour_ago) == ["a-1"]
    assert ids(workflow_id_prefix="a-", oldest_first=True) == ["a-1", "a-2"]
    assert ids(app_version="v1") == ["b-1", "a-1"]
    assert ids(parent_workflow_id="a-1") == ["a-2"]
    listed = client.list_workflows(workflow_id_prefix="b-", load_payloads=False)
    assert listed[0].input == []
    assert client.list_workflows(workflow_id_prefix="b-")[0].input == [{"n": 1}]


async def test_the_async_client_operates_workflows_too(server: ThreadServer) -> None:
    async with AsyncClient(server.target) as client:
        handle = await client.start_workflow("nobody_hosts_this", workflow_id="async-op")
        assert await handle.cancel() == ["async-op"]
        resumed = await client.resume_workflow("async-op")
        assert await resumed.status() == WorkflowStatus.ENQUEUED
        await client.cancel_workflow("async-op")
        fork = await client.fork_workflow("async-op", 1, new_workflow_id="async-fork")
        assert (await fork.get()).forked_from == "async-op"
        await fork.cancel()
        assert await client.delete_workflow("async-op") == 1
        listed = await client.list_workflows(workflow_id_prefix="async-", load_payloads=False)
        assert [w.workflow_id for w in listed] == ["async-fork"]
