"""Queues with flow control, on two server replicas and several worker
processes sharing one database. Concurrency is measured from the start and end
times the workflows record themselves (the ``runs`` table)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from baton import (
    AlreadyExists,
    AsyncWorkflowContext,
    Client,
    NotFound,
    Worker,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowStart,
    WorkflowStatus,
)
from tests.conftest import ThreadServer, server_config, start_thread_server, worker_in_thread
from tests.e2e.conftest import QUEUE_APP, most_at_once, wait_until


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[ThreadServer, ThreadServer]]:
    """Two server replicas on the test's database."""
    first = start_thread_server(server_config(database_url))
    second = start_thread_server(server_config(database_url))
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def client(replicas: tuple[ThreadServer, ThreadServer]) -> Iterator[Client]:
    with Client(replicas[0].target) as connected:
        yield connected


def _runs(url: str) -> list[tuple[str, str, int, datetime, datetime | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT workflow_id, label, pid, started_at, ended_at FROM runs ORDER BY started_at"
        ).fetchall()


def _finish(client: Client, ids: list[str], timeout: float = 90) -> None:
    for workflow_id in ids:
        assert client.retrieve_workflow(workflow_id).result(timeout=timeout) is not None


def test_global_concurrency_holds_across_replicas_and_workers(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("global3", concurrency=3)
    for index in range(3):
        spawn_worker(replicas[index % 2].target, app=QUEUE_APP, QUEUES="global3")
    handles = client.start_workflows(
        [WorkflowStart("timed", (f"w{i}", 0.3), queue="global3") for i in range(30)]
    )
    _finish(client, [h.workflow_id for h in handles])  # type: ignore[union-attr]
    runs = _runs(effects_url)
    assert len(runs) == 30
    most = most_at_once([(start, end) for _, _, _, start, end in runs if end])
    assert most <= 3
    assert most >= 2  # the budget is used, not just respected
    assert len({pid for _, _, pid, _, _ in runs}) >= 2


@pytest.mark.parametrize("parent", ["fan_out", "async_fan_out"])
def test_a_workflow_fans_out_children_on_a_queue_and_gathers_them_across_a_worker_kill(
    replicas: tuple[ThreadServer, ThreadServer],
    client: Client,
    spawn_worker,
    effects_url: str,
    parent: str,
) -> None:
    # DBOS's queue.enqueue inside a workflow: children on a queue, under its
    # flow control, each started once however often the parent replays.
    client.upsert_queue("fanq", concurrency=2)
    first = spawn_worker(replicas[0].target, app=QUEUE_APP, QUEUES="fanq")
    handle = client.start_workflow(parent, "fanq", 6, 0.3, workflow_id="fan")
    wait_until(lambda: len(_runs(effects_url)) >= 2, 30, "the first children to run")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    spawn_worker(replicas[1].target, app=QUEUE_APP, QUEUES="fanq")
    assert handle.result(timeout=90) == [f"part-{i}" for i in range(6)]
    children = client.list_workflows(name="timed")
    expected = [f"fan-{i}" for i in range(1, 7)]
    assert sorted(w.workflow_id for w in children) == expected
    assert {(w.parent_workflow_id, w.queue) for w in children} == {("fan", "fanq")}
    assert all(w.deadline is not None for w in children)  # timeout=600 reached the service
    steps = client.list_steps("fan")
    assert [s.child_workflow_id for s in steps if s.name == "baton.start_workflow"] == expected
    runs = _runs(effects_url)
    assert sorted({workflow_id for workflow_id, *_ in runs}) == expected
    # A child killed mid-run ran again; its last run stands (`timed` stamps the
    # end on every run of its id, so an earlier one would look long).
    last = {workflow_id: (start, end) for workflow_id, _, _, start, end in runs}
    assert most_at_once([(start, end) for start, end in last.values() if end]) <= 2


def test_worker_concurrency_holds_per_worker(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("perworker", worker_concurrency=1)
    for index in range(3):
        spawn_worker(replicas[index % 2].target, app=QUEUE_APP, QUEUES="perworker")
    wait_until(lambda: _connected(effects_url) >= 3, 30, "three workers")
    handles = client.start_workflows(
        [WorkflowStart("timed", (f"w{i}", 0.2), queue="perworker") for i in range(15)]
    )
    _finish(client, [h.workflow_id for h in handles])  # type: ignore[union-attr]
    runs = _runs(effects_url)
    pids = {pid for _, _, pid, _, _ in runs}
    assert len(pids) == 3
    for pid in pids:
        mine = [(start, end) for _, _, p, start, end in runs if p == pid and end]
        assert most_at_once(mine) == 1
    assert most_at_once([(s, e) for _, _, _, s, e in runs if e]) >= 2


def test_partition_concurrency_one_serializes_each_key(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("tenants", concurrency=1, partitioned=True)
    for index in range(3):
        spawn_worker(replicas[index % 2].target, app=QUEUE_APP, QUEUES="tenants")
    starts = [
        WorkflowStart("timed", (tenant, 0.2), queue="tenants", partition_key=tenant)
        for _ in range(6)
        for tenant in ("acme", "globex", "initech")
    ]
    handles = client.start_workflows(starts)
    _finish(client, [h.workflow_id for h in handles])  # type: ignore[union-attr]
    runs = _runs(effects_url)
    assert len(runs) == 18
    for tenant in ("acme", "globex", "initech"):
        assert most_at_once([(s, e) for _, t, _, s, e in runs if t == tenant and e]) == 1
    assert most_at_once([(s, e) for _, _, _, s, e in runs if e]) >= 2  # keys run side by side


def test_rate_limit_allows_at_most_10_starts_in_any_2_second_window(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("limited", rate_limit=(10, 2.0))
    for index in range(2):
        spawn_worker(replicas[index].target, app=QUEUE_APP, QUEUES="limited")
    handles = client.start_workflows(
        [WorkflowStart("timed", (f"w{i}", 0.0), queue="limited") for i in range(50)]
    )
    _finish(client, [h.workflow_id for h in handles])  # type: ignore[union-attr]
    # A start is the dequeue (the service's clock, recorded by the claim);
    # the workflows' own start records follow it by the dispatch latency.
    with psycopg.connect(effects_url) as conn:
        starts = [
            row[0]
            for row in conn.execute(
                "SELECT dequeued_at FROM workflows WHERE queue = 'limited' ORDER BY dequeued_at"
            )
        ]
    assert len(starts) == 50
    window = timedelta(seconds=2)
    busiest = max(sum(1 for t in starts if first <= t < first + window) for first in starts)
    assert busiest == 10
    recorded = sorted(start for _, _, _, start, _ in _runs(effects_url))
    assert all(run >= dequeued for run, dequeued in zip(recorded, starts, strict=True))
    assert starts[-1] - starts[0] >= timedelta(seconds=8)  # 5 windows of 10


def test_priority_order_then_fifo_within_a_priority(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("ranked", concurrency=1, priority_enabled=True)
    priorities = [5, 1, 5, 0, 1, 3, 0, 5, 1, 3]
    client.start_workflows(
        [
            WorkflowStart("timed", (f"p{p}-{i}", 0.0), queue="ranked", priority=p)
            for i, p in enumerate(priorities)
        ]
    )
    spawn_worker(replicas[0].target, app=QUEUE_APP, QUEUES="ranked")
    spawn_worker(replicas[1].target, app=QUEUE_APP, QUEUES="ranked")
    wait_until(lambda: len(_runs(effects_url)) == 10, 60, "all ten to run")
    expected = [f"p{p}-{i}" for i, p in sorted(enumerate(priorities), key=lambda x: (x[1], x[0]))]
    assert [label for _, label, _, _, _ in _runs(effects_url)] == expected


def test_a_duplicate_deduplication_id_is_refused_or_returns_the_first_until_it_finishes(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("dedup")
    first = client.start_workflow("timed", "first", 0.0, queue="dedup", deduplication_id="order-7")
    with pytest.raises(AlreadyExists) as refused:
        client.start_workflow("timed", "second", 0.0, queue="dedup", deduplication_id="order-7")
    assert refused.value.reason == "DUPLICATE_DEDUPLICATION_ID"
    assert refused.value.metadata["workflow_id"] == first.workflow_id
    same = client.start_workflow(
        "timed", "third", 0.0, queue="dedup", deduplication_id="order-7",
        return_existing_duplicate=True,
    )  # fmt: skip
    assert same.workflow_id == first.workflow_id
    spawn_worker(replicas[1].target, app=QUEUE_APP, QUEUES="dedup")
    assert first.result(timeout=30) == "first"
    again = client.start_workflow("timed", "again", 0.0, queue="dedup", deduplication_id="order-7")
    assert again.workflow_id != first.workflow_id
    assert again.result(timeout=30) == "again"


@pytest.mark.parametrize("parent", ["sync_parent", "async_parent"])
def test_a_child_start_refused_as_a_duplicate_is_refused_again_on_replay(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, parent: str
) -> None:
    # A workflow that handles the refusal and carries on: replayed after the
    # deduplication id is free, it must take the same branch.
    worker = Worker(replicas[0].target)  # serves no queue: the holder stays in flight

    @worker.workflow()
    def child(ctx: WorkflowContext) -> str:
        return "ran"

    @worker.step()
    def after() -> str:
        return "after"

    def outcome(started: str | None, refused: AlreadyExists | None) -> str:
        if refused is not None:
            return f"refused: {refused.reason} {refused.metadata['workflow_id']}"
        return f"started {started}"

    @worker.workflow()
    def sync_parent(ctx: WorkflowContext) -> str:
        try:
            handle = ctx.start_workflow(child, queue="dedupq", deduplication_id="d")
        except AlreadyExists as exc:
            said = outcome(None, exc)
        else:
            said = outcome(handle.workflow_id, None)
        ctx.run(after)
        return said

    @worker.workflow()
    async def async_parent(ctx: AsyncWorkflowContext) -> str:
        try:
            handle = await ctx.start_workflow(child, queue="dedupq", deduplication_id="d")
        except AlreadyExists as exc:
            said = outcome(None, exc)
        else:
            said = outcome(handle.workflow_id, None)
        await ctx.run(after)
        return said

    client.upsert_queue("dedupq")
    client.start_workflow("child", queue="dedupq", deduplication_id="d", workflow_id="holder")
    with worker_in_thread(worker):
        first = client.start_workflow(parent, workflow_id="parent")
        assert first.result(timeout=30) == "refused: DUPLICATE_DEDUPLICATION_ID holder"
        client.cancel_workflow("holder")  # the deduplication id is free from now on
        replay = client.fork_workflow("parent", 2)  # step 1 (the start) from the journal
        assert replay.result(timeout=30) == "refused: DUPLICATE_DEDUPLICATION_ID holder"
        fresh = client.fork_workflow("parent", 1)  # runs the start again: it is free
        assert fresh.result(timeout=30) == f"started {fresh.workflow_id}-1"
    (start, _) = client.list_steps("parent")
    assert (start.name, start.child_workflow_id) == ("baton.start_workflow", "")
    assert start.error is not None and start.error.type == "baton.AlreadyExists"


def test_a_delayed_start_does_not_start_early(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("later")
    spawn_worker(replicas[1].target, app=QUEUE_APP, QUEUES="later")
    asked = datetime.now(UTC)  # `delay` counts from the caller's clock (the same host here)
    handle = client.start_workflow("timed", "late", 0.0, queue="later", delay=1.5)
    assert handle.result(timeout=30) == "late"
    info = handle.get()
    assert info.started_at is not None
    assert info.started_at - asked >= timedelta(seconds=1.5)
    (run,) = _runs(effects_url)
    assert run[3] - asked >= timedelta(seconds=1.5)
    assert info.started_at - asked < timedelta(seconds=3)  # woken, not polled late


def test_a_queue_timeout_cancels_a_workflow_that_runs_too_long(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("bounded", start_to_close_timeout=1.0)
    spawn_worker(replicas[0].target, app=QUEUE_APP, QUEUES="bounded")
    handle = client.start_workflow("many_steps", 40, 0.1, queue="bounded")
    with pytest.raises(WorkflowCancelled) as cancelled:
        handle.result(timeout=30)
    assert cancelled.value.error.type == "baton.QueueTimeout"
    info = handle.get()
    assert info.status == WorkflowStatus.CANCELLED
    assert info.completed_at is not None and info.started_at is not None
    assert timedelta(seconds=1) <= info.completed_at - info.started_at < timedelta(seconds=3)
    count = len(_runs(effects_url))
    # Fenced off at its next checkpoint: at most one more step runs.
    quick = client.start_workflow("timed", "after", 0.0, queue="bounded")
    assert quick.result(timeout=30) == "after"
    assert len([r for r in _runs(effects_url) if r[1].startswith("step-")]) <= count + 1
    assert count < 40


def test_a_worker_takes_only_the_queues_it_serves(
    replicas: tuple[ThreadServer, ThreadServer], client: Client, spawn_worker, effects_url: str
) -> None:
    client.upsert_queue("served")
    client.upsert_queue("unserved")
    spawn_worker(replicas[0].target, app=QUEUE_APP, QUEUES="served")
    skipped = client.start_workflow("timed", "unserved", 0.0, queue="unserved")
    taken = client.start_workflow("timed", "served", 0.0, queue="served")
    plain = client.start_workflow("timed", "plain", 0.0)
    assert taken.result(timeout=30) == "served"
    assert plain.result(timeout=30) == "plain"
    assert skipped.status() == WorkflowStatus.ENQUEUED
    assert client.get_queue("unserved").depth == 1
    with pytest.raises(NotFound):
        client.start_workflow("timed", "x", 0.0, queue="nowhere")


def _connected(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM workers WHERE lease_expires_at > now()").fetchone()
    return int(row[0]) if row else 0
