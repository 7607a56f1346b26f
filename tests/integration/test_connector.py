"""The connector's two ways in: transactions that are all or nothing, and
lone reads without BEGIN/COMMIT; and a start's wake-up that rides on its INSERT."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import psycopg
import pytest
from google.rpc import code_pb2

from baton_server.connector import (
    Connector,
    TransactionAborted,
    Tx,
    is_transient,
    with_connection_defaults,
)
from baton_server.servicers.errors import classify
from baton_server.store import starts, workflows
from baton_server.store.models import Payload
from baton_server.store.starts import NewStart
from baton_server.store.workflows import NewWorkflow


def _new(workflow_id: str) -> NewWorkflow:
    return NewWorkflow(workflow_id, "checkout", Payload("json", b"[1]"))


def test_a_transaction_that_fails_writes_nothing(database_url: str) -> None:
    async def scenario() -> None:
        connector = Connector(database_url, min_size=1, max_size=1)
        await connector.open()
        try:
            with pytest.raises(RuntimeError):
                async with connector.transaction() as tx:
                    assert await workflows.insert(tx, _new("rolled-back")) is not None
                    raise RuntimeError("boom")
            async with connector.read() as tx:
                assert await workflows.get(tx, "rolled-back") is None
        finally:
            await connector.close()

    asyncio.run(scenario())


def test_a_lone_read_sees_committed_rows_and_leaves_no_transaction_open(
    database_url: str,
) -> None:
    async def scenario() -> None:
        connector = Connector(database_url, min_size=1, max_size=1)
        await connector.open()
        try:
            async with connector.transaction() as tx:
                await workflows.insert(tx, _new("committed"))
            async with connector.read() as tx:
                found = await workflows.get(tx, "committed")
                assert found is not None and found.status == "ENQUEUED"
                assert tx.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        finally:
            await connector.close()

    asyncio.run(scenario())


def test_a_batch_start_wakes_the_dispatchers_once_per_workflow_name_or_queue_at_commit(
    database_url: str,
) -> None:
    async def scenario() -> list[str]:
        listener = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await listener.execute("LISTEN baton_enqueued")
        connector = Connector(database_url, min_size=1, max_size=1)
        await connector.open()
        tag = uuid.uuid4().hex[:6]
        try:
            async with connector.transaction() as tx:
                await starts.insert_many(
                    tx,
                    [
                        NewStart(f"{tag}-{i}", name, None)
                        for i, name in enumerate(["a", "a", "b", "a"])
                    ]
                    # Queued: the payload names the queue, so rounds skip plain claims.
                    + [NewStart(f"{tag}-q{i}", "a", None, queue="q") for i in range(2)],
                )
            async with connector.transaction() as tx:  # every id taken: no wake-up
                await starts.insert_many(tx, [NewStart(f"{tag}-0", "a", None)])
            payloads: list[str] = []
            async for notify in listener.notifies(timeout=1.0):
                payloads.append(notify.payload)
            return payloads
        finally:
            await connector.close()
            await listener.close()

    assert sorted(asyncio.run(scenario())) == ["a", "b", "queue/q"]


def test_one_completion_and_a_batch_of_them_decide_alike(database_url: str) -> None:
    """A committer batch of one completion takes a one-row statement; it must
    finish, or refuse, exactly what the many-row statement would."""
    from baton_server.store import steps
    from baton_server.store.models import Failure
    from baton_server.store.steps import NewStep
    from baton_server.store.workflows import Completion

    ok, error = Payload("json", b'"ok"'), Failure("ValueError", "no")
    cases = {  # name -> (completion attempt, follows_step, record that step first, error)
        "plain": (1, 0, False, None),
        "stale": (2, 0, False, None),
        "step-missing": (1, 3, False, None),
        "step-recorded": (1, 3, True, error),
        "queued": (1, 0, False, None),
    }

    async def scenario() -> tuple[dict[str, str], dict[str, str]]:
        connector = Connector(database_url, min_size=1, max_size=1)
        await connector.open()
        decided: dict[str, dict[str, str]] = {"one": {}, "many": {}}
        try:
            async with connector.autocommit() as tx:
                for how in decided:
                    completions = []
                    for name, (attempt, follows, record, failure) in cases.items():
                        workflow_id = f"{how}-{name}"
                        new = NewWorkflow(workflow_id, "checkout", Payload("json", b"[]"))
                        if name == "queued":
                            new = NewWorkflow(workflow_id, "checkout", None, queue="q")
                        await workflows.insert(tx, new, owner="w-1")
                        if record:
                            step = NewStep(workflow_id, follows, 1, "s", ok, None, None)
                            assert await steps.record(tx, step) is not None
                        completions.append(
                            Completion(
                                workflow_id,
                                attempt,
                                None if failure else ok,
                                failure,
                                follows_step=follows,
                            )
                        )
                    if how == "one":
                        finished = [
                            f for c in completions for f in await workflows.complete_many(tx, [c])
                        ]
                    else:
                        finished = await workflows.complete_many(tx, completions)
                    decided[how] = {f.workflow_id.split("-", 1)[1]: f.status for f in finished}
                    # Finished already: neither statement finishes it twice.
                    assert await workflows.complete_many(tx, completions[:1]) == []
        finally:
            await connector.close()
        return decided["one"], decided["many"]

    one, many = asyncio.run(scenario())
    assert one == many == {"plain": "SUCCESS", "step-recorded": "ERROR", "queued": "SUCCESS"}


def test_a_workflow_given_back_undelivered_wakes_every_replica(database_url: str) -> None:
    async def scenario() -> list[str]:
        listener = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await listener.execute("LISTEN baton_enqueued")
        connector = Connector(database_url, min_size=1, max_size=1)
        await connector.open()
        try:
            async with connector.autocommit() as tx:
                plain = await workflows.insert(tx, _new("undelivered"), owner="w-1")
                queued = NewWorkflow("undelivered-q", "checkout", None, queue="q")
                on_queue = await workflows.insert(tx, queued, owner="w-1")
                assert plain is not None and on_queue is not None
            async with connector.transaction() as tx:
                assert await workflows.release(tx, "undelivered", 1)
                assert await workflows.release(tx, "undelivered-q", 1)
                assert not await workflows.release(tx, "undelivered", 1)  # done already
            return [notify.payload async for notify in listener.notifies(timeout=1.0)]
        finally:
            await connector.close()
            await listener.close()

    assert sorted(asyncio.run(scenario())) == ["checkout", "queue/q"]


def test_a_held_connection_runs_every_statement_on_one_backend_until_one_fails(
    database_url: str,
) -> None:
    async def pid(tx: Tx) -> int:
        cur = await tx.conn.execute("SELECT pg_backend_pid() AS pid")
        row = await cur.fetchone()
        assert row is not None
        return int(row["pid"])

    async def scenario() -> None:
        connector = Connector(database_url, min_size=3, max_size=3)
        await connector.open()
        held = connector.held()
        try:
            pids = set()
            for _ in range(5):
                async with held.autocommit() as tx:
                    pids.add(await pid(tx))
                async with connector.read() as tx:  # the pool's others take turns meanwhile
                    await pid(tx)
            assert len(pids) == 1, "the held connection changed between statements"
            (first,) = pids
            with pytest.raises(psycopg.errors.DivisionByZero):
                async with held.autocommit() as tx:
                    await tx.conn.execute("SELECT 1 / 0")
            # Given back after the failure, and healthy: the pool hands it out again.
            async with held.autocommit() as tx:
                assert tx.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                await pid(tx)
            await held.release()
            async with contextlib.AsyncExitStack() as stack:  # the pool's three, all at once
                taken = [await stack.enter_async_context(connector.autocommit()) for _ in range(3)]
                assert first in {await pid(tx) for tx in taken}, "not back in the pool"
        finally:
            await held.release()
            await connector.close()

    asyncio.run(scenario())


def test_a_transaction_the_database_aborts_in_a_deadlock_is_a_transient_error(
    database_url: str,
) -> None:
    # Two transactions lock two workflows in opposite orders: Postgres rolls
    # one back (SQLSTATE 40P01). That one is safe to run again, so it must
    # surface as transient (UNAVAILABLE to a caller), never as INTERNAL.
    async def lock_both(
        connector: Connector, first: str, second: str, both: asyncio.Barrier
    ) -> None:
        async with connector.transaction() as tx:
            await workflows.lock(tx, first)
            await both.wait()
            await workflows.lock(tx, second)

    async def scenario() -> list[BaseException | None]:
        connector = Connector(database_url, min_size=2, max_size=2)
        await connector.open()
        try:
            async with connector.transaction() as tx:
                for workflow_id in ("deadlock-a", "deadlock-b"):
                    assert await workflows.insert(tx, _new(workflow_id)) is not None
            both = asyncio.Barrier(2)
            outcomes = await asyncio.wait_for(
                asyncio.gather(
                    lock_both(connector, "deadlock-a", "deadlock-b", both),
                    lock_both(connector, "deadlock-b", "deadlock-a", both),
                    return_exceptions=True,
                ),
                timeout=30,
            )
            return [o if isinstance(o, BaseException) else None for o in outcomes]
        finally:
            await connector.close()

    outcomes = asyncio.run(scenario())
    [aborted] = [o for o in outcomes if o is not None]
    assert isinstance(aborted, TransactionAborted)
    assert is_transient(aborted)
    assert str(aborted) == "deadlock detected"
    status = classify(aborted, "/baton.v1.WorkflowService/CancelWorkflow")
    assert status.code == code_pb2.UNAVAILABLE
    assert "rolled back this call's transaction" in status.message


def test_connections_notice_a_vanished_host_unless_the_url_says_otherwise(
    database_url: str,
) -> None:
    # TCP keepalives and timeouts, so that a database host that vanished
    # without closing its connections is noticed in seconds; settings the URL
    # gives are kept.
    url = with_connection_defaults(psycopg.conninfo.make_conninfo(database_url, connect_timeout=3))
    settings = psycopg.conninfo.conninfo_to_dict(url)
    assert settings["connect_timeout"] == "3"
    assert (settings["keepalives_idle"], settings["tcp_user_timeout"]) == ("10", "30000")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.get_parameters()["connect_timeout"] == "3"
