"""Messages, events and streams as a caller meets them over raw gRPC: operations
from a workflow are recorded once (a retried call changes nothing), stale
attempts and closed streams are refused with a reason, bad input names its field.

A workflow is made "running under attempt 1" by marking its row directly, so
these tests need no worker.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest

from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import event_service_pb2 as ev
from baton._proto.baton.v1 import message_service_pb2 as msg
from baton._proto.baton.v1 import stream_service_pb2 as st
from baton._proto.baton.v1 import workflow_service_pb2 as wf
from tests.conftest import ThreadServer
from tests.grpc_helpers import details
from tests.integration.conftest import Stubs, ctx, running


def _steps(stubs: Stubs, workflow_id: str) -> list[str]:
    response = stubs.workflows.ListWorkflowSteps(
        wf.ListWorkflowStepsRequest(workflow_id=workflow_id), timeout=10
    )
    return [step.step_name for step in response.steps]


def test_a_retried_workflow_write_returns_its_first_offset_and_writes_once(
    stubs: Stubs, database_url: str
) -> None:
    running(stubs, database_url, "w")
    write = st.WriteStreamRequest(context=ctx("w", 1), key="k", value=common.Payload(json="1"))
    assert stubs.streams.WriteStream(write, timeout=10).offset == 0
    assert stubs.streams.WriteStream(write, timeout=10).offset == 0  # retried: same step
    again = st.WriteStreamRequest(context=ctx("w", 2), key="k", value=common.Payload(json="2"))
    assert stubs.streams.WriteStream(again, timeout=10).offset == 1
    from_step = st.WriteStreamRequest(context=ctx("w", 0), key="k", value=common.Payload(json="3"))
    assert stubs.streams.WriteStream(from_step, timeout=10).offset == 2
    stubs.streams.CloseStream(st.CloseStreamRequest(context=ctx("w", 3), key="k"), timeout=10)
    values = [
        (r.offset, r.value.json)
        for r in stubs.streams.ReadStream(st.ReadStreamRequest(workflow_id="w", key="k"))
    ]
    assert values == [(0, "1"), (1, "2"), (2, "3")]
    assert _steps(stubs, "w") == ["baton.write_stream", "baton.write_stream", "baton.close_stream"]

    closed = st.WriteStreamRequest(context=ctx("w", 4), key="k", value=common.Payload(json="4"))
    with pytest.raises(grpc.RpcError) as caught:
        stubs.streams.WriteStream(closed, timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(caught.value)[0] == "STREAM_CLOSED"


def test_writes_from_a_stale_attempt_are_refused(stubs: Stubs, database_url: str) -> None:
    running(stubs, database_url, "stale")
    for call, request in [
        (
            stubs.streams.WriteStream,
            st.WriteStreamRequest(context=ctx("stale", 1, attempt=7), key="k"),
        ),
        (
            stubs.streams.WriteStream,
            st.WriteStreamRequest(context=ctx("stale", 0, attempt=7), key="k"),
        ),
        (stubs.events.SetEvent, ev.SetEventRequest(context=ctx("stale", 1, attempt=7), key="k")),
        (
            stubs.messages.Send,
            msg.SendRequest(destination_id="stale", context=ctx("stale", 1, attempt=7)),
        ),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details(caught.value)[0] == "STALE_ATTEMPT"
    assert _steps(stubs, "stale") == []


def test_a_set_event_is_recorded_once_and_kept_in_the_latest_value(
    stubs: Stubs, database_url: str
) -> None:
    running(stubs, database_url, "ev")
    first = ev.SetEventRequest(context=ctx("ev", 1), key="k", value=common.Payload(json='"a"'))
    stubs.events.SetEvent(first, timeout=10)
    second = ev.SetEventRequest(context=ctx("ev", 2), key="k", value=common.Payload(json='"b"'))
    stubs.events.SetEvent(second, timeout=10)
    stubs.events.SetEvent(first, timeout=10)  # a late retry of step 1 changes nothing
    got = stubs.events.GetEvent(ev.GetEventRequest(workflow_id="ev", key="k"), timeout=10)
    assert got.found and got.value.json == '"b"'
    listed = stubs.events.ListEvents(ev.ListEventsRequest(workflow_id="ev"), timeout=10)
    assert [(e.key, e.value.json) for e in listed.events] == [("k", '"b"')]
    missing = stubs.events.GetEvent(ev.GetEventRequest(workflow_id="ev", key="nope"), timeout=10)
    assert not missing.found


def test_bad_input_names_its_field(stubs: Stubs) -> None:
    cases = [
        (stubs.messages.Send, msg.SendRequest(), "destination_id"),
        (stubs.events.SetEvent, ev.SetEventRequest(key="k"), "context"),
        (stubs.events.GetEvent, ev.GetEventRequest(workflow_id="x"), "key"),
        (stubs.streams.WriteStream, st.WriteStreamRequest(key="k"), "context"),
        (
            stubs.streams.WriteStream,
            st.WriteStreamRequest(context=ctx("x", -1), key="k"),
            "context.function_id",
        ),
    ]
    for call, request, field in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert details(caught.value)[1][0][0] == field
    with pytest.raises(grpc.RpcError) as caught:
        list(stubs.streams.ReadStream(st.ReadStreamRequest(workflow_id="nope", key="k")))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_recv_whose_attempt_loses_the_workflow_stops_waiting_and_is_refused(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    from baton._proto.baton.v1 import worker_service_pb2 as wk
    from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc

    running(stubs, database_url, "zombie")
    with grpc.insecure_channel(server.target) as channel:
        recv = wk_grpc.WorkerServiceStub(channel).Recv.future(
            wk.RecvRequest(context=ctx("zombie", 1), timeout={"seconds": 600}), timeout=60
        )
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(  # what a lease sweep does to a lost worker's workflow
                "UPDATE workflows SET status = 'ENQUEUED' WHERE workflow_id = 'zombie';"
                " SELECT pg_notify('baton_status', 'zombie')"
            )
        with pytest.raises(grpc.RpcError) as caught:
            recv.result(timeout=30)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(caught.value)[0] == "STALE_ATTEMPT"


def test_a_wait_with_release_if_longer_than_releases_the_workflow_at_once(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    from baton._proto.baton.v1 import worker_service_pb2 as wk
    from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc

    def row(workflow_id: str) -> tuple[object, ...] | None:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT w.status, w.start_at = d.deadline, w.wait_topic, w.attempts_base,"
                "       w.owner_worker_id FROM workflows w"
                " JOIN wait_deadlines d USING (workflow_id) WHERE workflow_id = %s",
                (workflow_id,),
            ).fetchone()

    running(stubs, database_url, "napper")
    running(stubs, database_url, "listener")
    with grpc.insecure_channel(server.target) as channel:
        worker = wk_grpc.WorkerServiceStub(channel)
        slept = worker.Sleep(
            wk.SleepRequest(
                context=ctx("napper", 1),
                duration={"seconds": 600},
                release_if_longer_than={"seconds": 1},
            ),
            timeout=10,
        )
        received = worker.Recv(
            wk.RecvRequest(
                context=ctx("listener", 1),
                topic="t",
                timeout={"seconds": 600},
                release_if_longer_than={},  # zero: at once
            ),
            timeout=10,
        )
        assert (slept.released, received.released, received.found) == (True, True, False)
        assert row("napper") == ("ENQUEUED", True, None, 1, None)
        assert row("listener") == ("ENQUEUED", True, "t", 1, None)
        # The released attempt is stale now.
        with pytest.raises(grpc.RpcError) as caught:
            worker.Sleep(
                wk.SleepRequest(context=ctx("napper", 1), duration={"seconds": 600}), timeout=10
            )
        assert details(caught.value)[0] == "STALE_ATTEMPT"
        # A message on another topic leaves the recv waiting; one on its topic ends the wait.
        stubs.messages.Send(msg.SendRequest(destination_id="listener", topic="u"), timeout=10)
        assert row("listener") == ("ENQUEUED", True, "t", 1, None)
        stubs.messages.Send(msg.SendRequest(destination_id="listener", topic="t"), timeout=10)
        assert row("listener") == ("ENQUEUED", None, None, 1, None)
        with pytest.raises(grpc.RpcError) as caught:
            worker.Sleep(
                wk.SleepRequest(
                    context=ctx("napper", 2),
                    duration={"seconds": 1},
                    release_if_longer_than={"seconds": -1},
                ),
                timeout=10,
            )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[1][0][0] == "release_if_longer_than"


def test_an_await_with_release_if_longer_than_releases_the_workflow_until_the_end(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    def row(workflow_id: str) -> tuple[object, ...] | None:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT status, start_at > now() + interval '50 minutes', wait_workflow_id,"
                "       attempts_base, awaited FROM workflows WHERE workflow_id = %s",
                (workflow_id,),
            ).fetchone()

    def await_(caller: str, awaited: str, attempt: int = 1) -> wf.AwaitWorkflowResponse:
        request = wf.AwaitWorkflowRequest(
            workflow_id=awaited,
            caller=ctx(caller, 1, attempt),
            timeout={"seconds": 5},
            release_if_longer_than={},  # zero: at once
        )
        return stubs.workflows.AwaitWorkflow(request, timeout=10)

    running(stubs, database_url, "mom")
    running(stubs, database_url, "kid")
    released = await_("mom", "kid")
    assert (released.released, released.done) == (True, False)
    assert row("mom") == ("ENQUEUED", True, "kid", 1, False)
    assert row("kid")[-1] is True  # its end wakes mom
    assert _steps(stubs, "mom") == []  # nothing recorded
    with pytest.raises(grpc.RpcError) as caught:
        await_("mom", "kid")  # the released attempt is stale
    assert details(caught.value)[0] == "STALE_ATTEMPT"
    got = stubs.workflows.GetWorkflow(wf.GetWorkflowRequest(workflow_id="mom"), timeout=10)
    assert got.workflow.waiting_reason == (
        "waiting for workflow 'kid' to finish (released from its worker while it waits)"
    )
    # kid's end (here a cancel) makes mom claimable at once.
    stubs.workflows.CancelWorkflow(wf.CancelWorkflowRequest(workflow_id="kid"), timeout=10)
    assert row("mom") == ("ENQUEUED", None, None, 1, False)

    # Awaiting a workflow that has finished records its outcome, releasing nothing.
    running(stubs, database_url, "dad")
    done = await_("dad", "kid")
    assert (done.released, done.done) == (False, True)
    assert row("dad")[0] == "PENDING"
    assert _steps(stubs, "dad") == ["baton.await_workflow"]


def test_an_await_the_caller_may_not_make_is_refused_by_field(stubs: Stubs) -> None:
    cases = [
        (wf.AwaitWorkflowRequest(workflow_id="x", release_if_longer_than={"seconds": 1}),
         "release_if_longer_than", "set caller too"),
        (wf.AwaitWorkflowRequest(workflow_id="x", caller=ctx("y", 1),
                                 release_if_longer_than={"seconds": -1}),
         "release_if_longer_than", "must not be negative"),
        (wf.AwaitWorkflowRequest(workflow_id="x", caller=ctx("y", 1),
                                 release_if_longer_than={"seconds": 3601}),
         "release_if_longer_than", "the limit is 3600 s"),
        (wf.AwaitWorkflowRequest(workflow_id="y", caller=ctx("y", 1)),
         "workflow_id", "cannot await itself"),
    ]  # fmt: skip
    for request, field, says in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stubs.workflows.AwaitWorkflow(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert says in caught.value.details()
        assert details(caught.value)[1][0][0] == field


def test_a_workflow_cancelled_while_released_resumes_at_once(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    from baton._proto.baton.v1 import worker_service_pb2 as wk
    from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc

    running(stubs, database_url, "dozer")
    with grpc.insecure_channel(server.target) as channel:
        slept = wk_grpc.WorkerServiceStub(channel).Sleep(
            wk.SleepRequest(
                context=ctx("dozer", 1), duration={"seconds": 600}, release_if_longer_than={}
            ),
            timeout=10,
        )
    assert slept.released
    stubs.workflows.CancelWorkflow(wf.CancelWorkflowRequest(workflow_id="dozer"), timeout=10)
    stubs.workflows.ResumeWorkflow(wf.ResumeWorkflowRequest(workflow_id="dozer"), timeout=10)
    with psycopg.connect(database_url) as conn:
        resumed = conn.execute(
            "SELECT status, start_at FROM workflows WHERE workflow_id = 'dozer'"
        ).fetchone()
    # Claimable now; its replay sleeps what is left of the recorded 600 s.
    assert resumed == ("ENQUEUED", None)


def test_the_end_of_an_awaited_workflow_does_not_wait_for_its_awaiters_lock(
    stubs: Stubs, database_url: str
) -> None:
    # A cancel of the tree locks the parent, then the child; the child's end
    # must not wait for the parent (a deadlock), so the trigger skips it.
    running(stubs, database_url, "gran")
    running(stubs, database_url, "gran-1")
    request = wf.AwaitWorkflowRequest(
        workflow_id="gran-1", caller=ctx("gran", 1), release_if_longer_than={}
    )
    assert stubs.workflows.AwaitWorkflow(request, timeout=10).released
    with (
        psycopg.connect(database_url) as holder,
        psycopg.connect(database_url, autocommit=True) as ender,
    ):
        holder.execute("SELECT 1 FROM workflows WHERE workflow_id = 'gran' FOR UPDATE")
        ender.execute("SET lock_timeout = '5s'")
        ender.execute("UPDATE workflows SET status = 'SUCCESS' WHERE workflow_id = 'gran-1'")
        holder.rollback()
        # Skipped: the lock's holder decides (a cancel would end it); the
        # hourly re-check dispatches it otherwise.
        [(waiting_for,)] = ender.execute(
            "SELECT wait_workflow_id FROM workflows WHERE workflow_id = 'gran'"
        ).fetchall()
    assert waiting_for == "gran-1"


def _wait_for_a_lock_wait(database_url: str, *events: str) -> None:
    """Returns once a backend of this database waits for a lock of one of these kinds."""
    deadline = time.monotonic() + 10
    with psycopg.connect(database_url, autocommit=True) as conn:
        while not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = ANY(%s)",
            (list(events),),
        ).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, f"no backend came to wait for a {events} lock"
            time.sleep(0.01)


def test_a_retried_send_wakes_a_receiver_the_first_send_did_not(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    # The wake follows the Send's commit; a Send that crashed between the two
    # left its message and a sleeping receiver, which the retry must wake.
    from baton._proto.baton.v1 import worker_service_pb2 as wk
    from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc

    running(stubs, database_url, "inbox")
    with grpc.insecure_channel(server.target) as channel:
        recv = wk.RecvRequest(
            context=ctx("inbox", 1), topic="t", timeout={"seconds": 600},
            release_if_longer_than={},
        )  # fmt: skip
        assert wk_grpc.WorkerServiceStub(channel).Recv(recv, timeout=10).released
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(  # the first Send, committed but never woken
            "INSERT INTO messages (destination_id, topic, idempotency_key)"
            " VALUES ('inbox', 't', 'once')"
        )
    send = msg.SendRequest(destination_id="inbox", topic="t", idempotency_key="once")
    stubs.messages.Send(send, timeout=10)
    with psycopg.connect(database_url) as conn:
        woken = conn.execute(
            "SELECT status, start_at, wait_topic FROM workflows WHERE workflow_id = 'inbox'"
        ).fetchone()
        (messages,) = conn.execute("SELECT count(*) FROM messages").fetchone()  # type: ignore[misc]
    assert woken == ("ENQUEUED", None, None)
    assert messages == 1


def test_a_message_sent_while_its_recv_releases_the_workflow_is_received(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    # The release, holding the receiver's row, waits for the Send's inbox lock;
    # the Send's statements must not wait for that row (the receiver is still
    # PENDING, so ending a released recv matches nothing), or the two deadlock.
    from baton._proto.baton.v1 import worker_service_pb2 as wk
    from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc
    from baton_server.queries import query

    running(stubs, database_url, "mailbox")
    params = {"workflow_id": "mailbox", "destination_id": "mailbox", "topic": "t",
              "payload_encoding": None, "payload": None, "idempotency_key": None}  # fmt: skip
    with (
        grpc.insecure_channel(server.target) as channel,
        psycopg.connect(database_url) as sender,
        ThreadPoolExecutor(1) as pool,
    ):
        sender.execute("SET lock_timeout = '5s'")
        sender.execute(query("lock_inbox"), params)  # a Send, midway
        receiving = pool.submit(
            wk_grpc.WorkerServiceStub(channel).Recv,
            wk.RecvRequest(
                context=ctx("mailbox", 1),
                topic="t",
                timeout={"seconds": 600},
                release_if_longer_than={},  # zero: at once
            ),
            timeout=20,
        )
        _wait_for_a_lock_wait(database_url, "advisory")
        sender.execute(query("insert_message"), params)
        sender.execute(query("wake_released_recv"), params)
        sender.commit()
        received = receiving.result(timeout=20)
    # The release waited for the send, then saw its message.
    assert (received.found, received.released) == (True, False)


def test_a_get_event_with_release_if_longer_than_releases_the_reader_until_it_is_set(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    def row(workflow_id: str) -> tuple[object, ...] | None:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT w.status, w.start_at = d.deadline, w.wait_workflow_id, w.wait_event_key,"
                "       w.attempts_base FROM workflows w"
                " JOIN wait_deadlines d USING (workflow_id) WHERE workflow_id = %s",
                (workflow_id,),
            ).fetchone()

    def get(reader: str, key: str, attempt: int = 1) -> ev.GetEventResponse:
        request = ev.GetEventRequest(
            workflow_id="crier",
            key=key,
            timeout={"seconds": 600},
            context=ctx(reader, 1, attempt),
            release_if_longer_than={},  # zero: at once
        )
        return stubs.events.GetEvent(request, timeout=10)

    def set_(function_id: int, key: str) -> None:
        request = ev.SetEventRequest(context=ctx("crier", function_id), key=key)
        stubs.events.SetEvent(request, timeout=10)

    for workflow_id in ("crier", "ear", "deaf", "late", "mom"):
        running(stubs, database_url, workflow_id)
    released = get("ear", "news")
    assert (released.released, released.found) == (True, False)
    assert row("ear") == ("ENQUEUED", True, "crier", "news", 1)
    assert _steps(stubs, "ear") == []  # nothing recorded
    got = stubs.workflows.GetWorkflow(wf.GetWorkflowRequest(workflow_id="ear"), timeout=10)
    assert got.workflow.waiting_reason.startswith("waiting for event 'news' of workflow 'crier'")
    with pytest.raises(grpc.RpcError) as caught:
        get("ear", "news")  # the released attempt is stale
    assert details(caught.value)[0] == "STALE_ATTEMPT"

    # Another key leaves it waiting, and so does the end of its workflow,
    # which wakes only those awaiting that end.
    assert get("deaf", "never").released
    set_(1, "weather")
    assert row("ear") == ("ENQUEUED", True, "crier", "news", 1)
    # Its key makes it claimable at once.
    set_(2, "news")
    assert row("ear") == ("ENQUEUED", None, None, None, 1)

    # A set event is read and recorded, releasing nothing.
    read = get("late", "news")
    assert (read.released, read.found) == (False, True)
    assert _steps(stubs, "late") == ["baton.get_event"]

    mom = wf.AwaitWorkflowRequest(
        workflow_id="crier", caller=ctx("mom", 1), release_if_longer_than={}
    )
    assert stubs.workflows.AwaitWorkflow(mom, timeout=10).released
    stubs.workflows.CancelWorkflow(wf.CancelWorkflowRequest(workflow_id="crier"), timeout=10)
    with psycopg.connect(database_url) as conn:
        woken = conn.execute(
            "SELECT workflow_id FROM workflows WHERE workflow_id IN ('mom', 'deaf')"
            " AND start_at IS NULL"
        ).fetchall()
    assert woken == [("mom",)]
    assert row("deaf") == ("ENQUEUED", True, "crier", "never", 1)


def test_a_get_event_the_caller_may_not_release_is_refused_by_field(stubs: Stubs) -> None:
    cases = [
        (ev.GetEventRequest(workflow_id="x", key="k", release_if_longer_than={"seconds": 1}),
         "set context too"),
        (ev.GetEventRequest(workflow_id="x", key="k", context=ctx("y", 1),
                            release_if_longer_than={"seconds": -1}),
         "must not be negative"),
        (ev.GetEventRequest(workflow_id="x", key="k", context=ctx("y", 1),
                            release_if_longer_than={"seconds": 3601}),
         "the limit is 3600 s"),
    ]  # fmt: skip
    for request, says in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stubs.events.GetEvent(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert says in caught.value.details()
        assert details(caught.value)[1][0][0] == "release_if_longer_than"


def test_an_event_set_while_its_reader_is_released_wakes_it_or_is_seen(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    # A release that waits for a SetEvent's events lock sees the value after it.
    from baton_server.queries import query

    running(stubs, database_url, "setter")
    running(stubs, database_url, "getter")
    request = ev.GetEventRequest(
        workflow_id="setter",
        key="k",
        timeout={"seconds": 600},
        context=ctx("getter", 1),
        release_if_longer_than={},
    )
    with psycopg.connect(database_url) as holder, ThreadPoolExecutor(1) as pool:
        holder.execute(query("lock_events"), {"workflow_id": "setter"})  # a SetEvent, midway
        getting = pool.submit(stubs.events.GetEvent, request, timeout=20)
        _wait_for_a_lock_wait(database_url, "advisory")
        holder.execute(
            "INSERT INTO events (workflow_id, key, value_encoding, value)"
            " VALUES ('setter', 'k', 'json', '1')"
        )
        holder.commit()
        got = getting.result(timeout=20)
    assert (got.found, got.released, got.value.json) == (True, False, "1")


def test_a_child_s_send_does_not_deadlock_with_a_cancel_of_its_released_parent_s_tree(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    # A parent released in a recv; a cancel of its tree locks the parent, then
    # the child, while the child sends to the parent. The Send holds the
    # child's row (its journal) and must not wait on the parent's: neither for
    # the message's foreign key nor to wake the parent.
    from baton._proto.baton.v1 import worker_service_pb2 as wk
    from baton._proto.baton.v1 import worker_service_pb2_grpc as wk_grpc
    from baton_server.queries import query

    running(stubs, database_url, "keeper")
    running(stubs, database_url, "keeper-1")
    with grpc.insecure_channel(server.target) as channel:
        recv = wk.RecvRequest(
            context=ctx("keeper", 1), topic="t", timeout={"seconds": 600},
            release_if_longer_than={},
        )  # fmt: skip
        assert wk_grpc.WorkerServiceStub(channel).Recv(recv, timeout=10).released
    cancel_tree = {"include_children": False, "error": None}
    sending = msg.SendRequest(destination_id="keeper", topic="t", context=ctx("keeper-1", 1))
    with psycopg.connect(database_url) as cancel, ThreadPoolExecutor(1) as pool:
        cancel.execute("SET lock_timeout = '5s'")
        cancel.execute(query("cancel_workflows"), {**cancel_tree, "workflow_ids": ["keeper"]})
        send = pool.submit(stubs.messages.Send, sending, timeout=20)
        _wait_for_a_lock_wait(database_url, "transactionid", "tuple")  # the wake, on 'keeper'
        cancel.execute(query("cancel_workflows"), {**cancel_tree, "workflow_ids": ["keeper-1"]})
        cancel.commit()
        send.result(timeout=20)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT w.workflow_id, w.status, count(m.*) FROM workflows w"
            " LEFT JOIN messages m ON m.destination_id = w.workflow_id"
            " WHERE w.workflow_id LIKE 'keeper%' GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
    assert rows == [("keeper", "CANCELLED", 1), ("keeper-1", "CANCELLED", 0)]


def test_a_released_reader_whose_event_s_workflow_was_deleted_reads_it_as_unset(
    stubs: Stubs, database_url: str
) -> None:
    # As a reader waiting in place would: the workflow existed when the read
    # began, so its deletion during the wait is not the reader's mistake.
    running(stubs, database_url, "fan")
    running(stubs, database_url, "idol")
    read = ev.GetEventRequest(
        workflow_id="idol", key="k", timeout={"seconds": 1}, context=ctx("fan", 1),
        release_if_longer_than={},
    )  # fmt: skip
    assert stubs.events.GetEvent(read, timeout=10).released
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM workflows WHERE workflow_id = 'idol'")
        # Its next run, once the read's deadline has passed.
        conn.execute("UPDATE workflows SET status = 'PENDING' WHERE workflow_id = 'fan'")
        conn.execute("UPDATE wait_deadlines SET deadline = now() WHERE workflow_id = 'fan'")
    again = stubs.events.GetEvent(read, timeout=10)
    assert (again.found, again.released) == (False, False)
    assert _steps(stubs, "fan") == ["baton.get_event"]
    # A read that begins after the deletion is a caller's mistake.
    with pytest.raises(grpc.RpcError) as caught:
        stubs.events.GetEvent(
            ev.GetEventRequest(workflow_id="idol", key="k", context=ctx("fan", 2),
                               timeout={"seconds": 1}),
            timeout=10,
        )  # fmt: skip
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_set_event_does_not_deadlock_with_a_cancel_of_its_released_reader_s_tree(
    server: ThreadServer, stubs: Stubs, database_url: str
) -> None:
    # A parent released reading its child's event; a cancel of the parent's
    # tree locks the parent, then the child. The child's SetEvent must not hold
    # the child's row while it waits for the parent's to wake it.
    running(stubs, database_url, "elder")
    running(stubs, database_url, "elder-1")
    read = ev.GetEventRequest(
        workflow_id="elder-1",
        key="ready",
        timeout={"seconds": 600},
        context=ctx("elder", 1),
        release_if_longer_than={},
    )
    assert stubs.events.GetEvent(read, timeout=10).released
    setting = ev.SetEventRequest(context=ctx("elder-1", 1), key="ready")
    with (
        psycopg.connect(database_url) as cancel,
        ThreadPoolExecutor(1) as pool,
    ):
        cancel.execute("SET lock_timeout = '5s'")
        cancel.execute("SELECT 1 FROM workflows WHERE workflow_id = 'elder' FOR UPDATE")
        set_ = pool.submit(stubs.events.SetEvent, setting, timeout=20)
        _wait_for_a_lock_wait(database_url, "transactionid", "tuple")  # the wake, on 'elder'
        cancel.execute("SELECT 1 FROM workflows WHERE workflow_id = 'elder-1' FOR UPDATE")
        cancel.rollback()
        set_.result(timeout=20)
    with psycopg.connect(database_url) as conn:
        woken = conn.execute(
            "SELECT start_at, wait_event_key FROM workflows WHERE workflow_id = 'elder'"
        ).fetchone()
    assert woken == (None, None)
