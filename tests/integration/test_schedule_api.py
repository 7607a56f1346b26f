"""ScheduleService over the SDK and raw gRPC: creation and its clear errors,
pause/resume/delete, trigger, backfill, and worker-declared schedules. No
worker runs here: the started workflows wait, which is all these tests read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest

from baton import AlreadyExists, Client, InvalidArgument, NotFound, WorkflowStatus
from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import schedule_service_pb2 as ss
from baton._proto.baton.v1 import schedule_service_pb2_grpc as ss_grpc
from baton._proto.baton.v1 import worker_service_pb2 as ws
from baton._proto.baton.v1 import worker_service_pb2_grpc as ws_grpc
from tests.conftest import ThreadServer
from tests.grpc_helpers import details

# A cron that does not fire while a test runs (midnight on January 1st).
NEVER = "0 0 1 1 *"


@pytest.fixture
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.target) as connected:
        yield connected


def _input(client: Client, workflow_id: str) -> list[object]:
    info = client.get_workflow(workflow_id)
    assert info.status == WorkflowStatus.ENQUEUED
    return list(info.input)


@pytest.mark.parametrize(
    ("cron", "time_zone", "field"),
    [
        ("* * *", "", "schedule.cron"),
        ("61 * * * *", "", "schedule.cron"),
        ("*/5 * * * * * * *", "", "schedule.cron"),
        ("", "", "schedule.cron"),
        ("* * * * *", "Mars/Olympus_Mons", "schedule.time_zone"),
        ("* * * * *", "../etc/passwd", "schedule.time_zone"),
    ],
)
def test_an_invalid_cron_or_time_zone_is_invalid_argument_naming_the_field(
    client: Client, cron: str, time_zone: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.create_schedule("bad", "job", cron, time_zone=time_zone)
    assert [name for name, _ in caught.value.field_violations] == [field]
    with pytest.raises(NotFound):
        client.get_schedule("bad")


def test_create_refuses_a_long_name_a_pickled_context_an_unknown_queue_and_a_taken_name(
    server: ThreadServer, client: Client
) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = ss_grpc.ScheduleServiceStub(channel)
        for schedule, field in [
            (ss.Schedule(name="x" * 151, cron=NEVER, workflow_name="job"), "schedule.name"),
            (ss.Schedule(name="s", cron=NEVER, workflow_name=""), "schedule.workflow_name"),
            (
                ss.Schedule(
                    name="s", cron=NEVER, workflow_name="job", context=common.Payload(pickle=b"x")
                ),
                "schedule.context",
            ),
            (
                ss.Schedule(
                    name="s", cron=NEVER, workflow_name="job", context=common.Payload(json="{")
                ),
                "schedule.context",
            ),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                stub.CreateSchedule(ss.CreateScheduleRequest(schedule=schedule), timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [f for f, _ in details(caught.value)[1]] == [field]
    with pytest.raises(NotFound) as not_found:
        client.create_schedule("s", "job", NEVER, queue="nope")
    assert not_found.value.reason == "QUEUE_NOT_FOUND"
    client.create_schedule("s", "job", NEVER)
    with pytest.raises(AlreadyExists) as taken:
        client.create_schedule("s", "other", NEVER)
    assert taken.value.reason == "SCHEDULE_EXISTS"


def test_a_schedule_is_stored_listed_paused_resumed_and_deleted(client: Client) -> None:
    created = client.create_schedule(
        "nightly", "job", "30 2 * * *", time_zone="Europe/Paris", context={"n": 1}
    )
    assert (created.cron, created.time_zone, created.workflow_name) == (
        "30 2 * * *",
        "Europe/Paris",
        "job",
    )
    assert created.context == {"n": 1} and not created.paused
    assert created.next_fire_at is not None and created.last_fired_at is None
    paris = created.next_fire_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (paris.hour, paris.minute, paris.second) == (2, 30, 0)
    assert client.get_schedule("nightly") == created
    for name in ["c", "a", "b"]:
        client.create_schedule(name, "job", NEVER)
    assert [s.name for s in client.list_schedules()] == ["a", "b", "c", "nightly"]

    assert client.pause_schedule("nightly").paused
    assert client.get_schedule("nightly").paused
    resumed = client.resume_schedule("nightly")
    assert not resumed.paused and resumed.next_fire_at == created.next_fire_at

    client.delete_schedule("nightly")
    with pytest.raises(NotFound) as caught:
        client.get_schedule("nightly")
    assert caught.value.reason == "SCHEDULE_NOT_FOUND"
    for call in (client.pause_schedule, client.resume_schedule, client.delete_schedule):
        with pytest.raises(NotFound):
            call("nightly")


def test_schedules_page_by_name(server: ThreadServer, client: Client) -> None:
    for name in ["c", "a", "b"]:
        client.create_schedule(name, "job", NEVER)
    with grpc.insecure_channel(server.target) as channel:
        stub = ss_grpc.ScheduleServiceStub(channel)
        first = stub.ListSchedules(ss.ListSchedulesRequest(page_size=2), timeout=10)
        rest = stub.ListSchedules(
            ss.ListSchedulesRequest(page_size=2, page_token=first.next_page_token), timeout=10
        )
    assert [s.name for s in first.schedules] == ["a", "b"]
    assert [s.name for s in rest.schedules] == ["c"] and not rest.next_page_token


def test_backfill_starts_exactly_the_ticks_of_the_window_that_have_not_started(
    client: Client,
) -> None:
    client.create_schedule("every-minute", "job", "* * * * *", context=["ctx"], paused=True)
    start = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    # One tick of the window started already (an earlier, narrower backfill).
    first = client.backfill_schedule(
        "every-minute", start + timedelta(minutes=2), start + timedelta(minutes=3)
    )
    assert [h.workflow_id for h in first] == ["every-minute-2024-05-01T02:02:00Z"]

    handles = client.backfill_schedule("every-minute", start, start + timedelta(minutes=5))
    assert [h.workflow_id for h in handles] == [
        f"every-minute-2024-05-01T02:0{minute}:00Z" for minute in (0, 1, 3, 4)
    ]
    assert _input(client, handles[0].workflow_id) == ["2024-05-01T02:00:00Z", ["ctx"]]
    assert client.backfill_schedule("every-minute", start, start + timedelta(minutes=5)) == []
    assert len(client.list_workflows(workflow_id_prefix="every-minute-")) == 5


def test_backfill_reads_the_cron_in_the_schedule_s_time_zone(client: Client) -> None:
    client.create_schedule("nine", "job", "0 9 * * *", time_zone="America/New_York", paused=True)
    winter = client.backfill_schedule(
        "nine", datetime(2024, 1, 10, tzinfo=UTC), datetime(2024, 1, 12, tzinfo=UTC)
    )
    summer = client.backfill_schedule(
        "nine", datetime(2024, 7, 10, tzinfo=UTC), datetime(2024, 7, 11, tzinfo=UTC)
    )
    assert [h.workflow_id for h in winter + summer] == [
        "nine-2024-01-10T14:00:00Z",
        "nine-2024-01-11T14:00:00Z",
        "nine-2024-07-10T13:00:00Z",
    ]


def test_backfill_refuses_an_empty_window_and_one_of_more_than_10000_ticks(
    client: Client,
) -> None:
    client.create_schedule("secondly", "job", "* * * * * *", paused=True)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(InvalidArgument) as empty:
        client.backfill_schedule("secondly", start, start)
    with pytest.raises(InvalidArgument) as large:
        client.backfill_schedule("secondly", start, start + timedelta(seconds=10_001))
    assert [f for f, _ in empty.value.field_violations] == ["end"]
    assert [f for f, _ in large.value.field_violations] == ["end"]
    assert client.list_workflows(workflow_id_prefix="secondly-") == []
    with pytest.raises(NotFound):
        client.backfill_schedule("missing", start, start + timedelta(seconds=1))


def test_backfill_leaves_ticks_after_now_to_the_schedule(client: Client) -> None:
    client.create_schedule("daily", "job", "0 0 * * *", paused=True)
    now = datetime.now(UTC)
    handles = client.backfill_schedule("daily", now - timedelta(days=1), now + timedelta(days=3))
    assert len(handles) == 1  # the one midnight of the past day, not the coming ones


def test_trigger_starts_the_workflow_now_once_even_when_paused(client: Client) -> None:
    client.create_schedule("manual", "job", NEVER, context={"k": "v"}, paused=True)
    before = datetime.now(UTC)
    first = client.trigger_schedule("manual")
    second = client.trigger_schedule("manual")
    assert first.workflow_id != second.workflow_id
    assert first.workflow_id.startswith("manual-")
    scheduled, context = _input(client, first.workflow_id)
    assert isinstance(scheduled, str) and first.workflow_id == f"manual-{scheduled}"
    assert context == {"k": "v"}
    assert abs(datetime.fromisoformat(scheduled) - before) < timedelta(seconds=5)
    with pytest.raises(NotFound):
        client.trigger_schedule("missing")


def test_a_worker_declaring_an_invalid_schedule_is_refused_naming_the_field(
    server: ThreadServer, client: Client
) -> None:
    def register(schedule: str, zone: str) -> Iterator[ws.ConnectRequest]:
        yield ws.ConnectRequest(
            register=ws.RegisterWorker(
                worker_id="w1",
                workflows=[
                    ws.WorkflowRegistration(name="ok"),
                    ws.WorkflowRegistration(
                        name="ticking", schedule=schedule, schedule_time_zone=zone
                    ),
                ],
            )
        )

    with grpc.insecure_channel(server.target) as channel:
        stub = ws_grpc.WorkerServiceStub(channel)
        for schedule, zone, field in [
            ("every second", "", "register.workflows[1].schedule"),
            ("* * * * * *", "Nowhere/Town", "register.workflows[1].schedule_time_zone"),
            ("", "UTC", "register.workflows[1].schedule_time_zone"),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.Connect(register(schedule, zone), timeout=10))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [f for f, _ in details(caught.value)[1]] == [field]
    assert client.list_schedules() == []


def test_a_worker_declared_schedule_is_created_then_updated_only_when_it_changes(
    server: ThreadServer, client: Client
) -> None:
    def connect(cron: str, zone: str = "") -> None:
        request = ws.ConnectRequest(
            register=ws.RegisterWorker(
                worker_id="w1",
                workflows=[
                    ws.WorkflowRegistration(name="report", schedule=cron, schedule_time_zone=zone)
                ],
            )
        )
        with grpc.insecure_channel(server.target) as channel:
            call = ws_grpc.WorkerServiceStub(channel).Connect(iter([request]), timeout=10)
            assert next(call).HasField("registered")
            call.cancel()

    connect(NEVER)
    stored = client.get_schedule("report")
    assert (stored.workflow_name, stored.cron, stored.time_zone) == ("report", NEVER, "")
    client.pause_schedule("report")
    connect(NEVER)
    assert client.get_schedule("report").paused  # unchanged: left alone
    connect("0 12 * * *", "Asia/Tokyo")
    changed = client.get_schedule("report")
    assert (changed.cron, changed.time_zone, changed.paused) == ("0 12 * * *", "Asia/Tokyo", True)


def test_the_schedule_context_reaches_each_tick_as_json(client: Client) -> None:
    big = 2**63 + 1  # survives as an exact integer: the context is JSON text end to end
    client.create_schedule("ctx", "job", "0 * * * *", context={"big": big}, paused=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    (handle,) = client.backfill_schedule("ctx", start, start + timedelta(hours=1))
    assert _input(client, handle.workflow_id) == ["2024-01-01T00:00:00Z", {"big": big}]
    assert json.loads(json.dumps(client.get_schedule("ctx").context)) == {"big": big}
