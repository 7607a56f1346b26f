"""ScheduleService: cron schedules that start workflows."""

from __future__ import annotations

import base64
from typing import Any

from baton._proto.baton.v1 import schedule_service_pb2 as pb
from baton._proto.baton.v1 import schedule_service_pb2_grpc as pb_grpc
from baton_server.config import Config
from baton_server.engine.engine import Engine
from baton_server.engine.schedules import ScheduleSpec
from baton_server.errors import InvalidArgument
from baton_server.servicers import convert, validate
from baton_server.store.schedules import Schedule

# grpc ships no type information; its servicer context is untyped here.
Context = Any


class ScheduleService(pb_grpc.ScheduleServiceServicer):
    """Implements baton.v1.ScheduleService over the engine."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self._engine = engine
        self._config = config

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.CreateScheduleResponse:
        spec = self._spec_in(request.schedule)
        return pb.CreateScheduleResponse(
            schedule=schedule_out(await self._engine.schedules.create(spec))
        )

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Context
    ) -> pb.GetScheduleResponse:
        validate.name(request.name, "name")
        return pb.GetScheduleResponse(
            schedule=schedule_out(await self._engine.schedules.get(request.name))
        )

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: Context
    ) -> pb.ListSchedulesResponse:
        limit = validate.page_size(request.page_size, default=100)
        after = ""
        if request.page_token:
            try:
                after = base64.urlsafe_b64decode(request.page_token.encode()).decode()
            except ValueError:
                raise InvalidArgument("page_token", "is not a token this service issued") from None
        page = await self._engine.schedules.list_page(after=after, limit=limit + 1)
        token = ""
        if len(page) > limit:
            page = page[:limit]
            token = base64.urlsafe_b64encode(page[-1].name.encode()).decode()
        return pb.ListSchedulesResponse(
            schedules=[schedule_out(s) for s in page], next_page_token=token
        )

    async def PauseSchedule(
        self, request: pb.PauseScheduleRequest, context: Context
    ) -> pb.PauseScheduleResponse:
        validate.name(request.name, "name")
        return pb.PauseScheduleResponse(
            schedule=schedule_out(await self._engine.schedules.pause(request.name))
        )

    async def ResumeSchedule(
        self, request: pb.ResumeScheduleRequest, context: Context
    ) -> pb.ResumeScheduleResponse:
        validate.name(request.name, "name")
        return pb.ResumeScheduleResponse(
            schedule=schedule_out(await self._engine.schedules.resume(request.name))
        )

    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: Context
    ) -> pb.DeleteScheduleResponse:
        validate.name(request.name, "name")
        await self._engine.schedules.delete(request.name)
        return pb.DeleteScheduleResponse()

    async def TriggerSchedule(
        self, request: pb.TriggerScheduleRequest, context: Context
    ) -> pb.TriggerScheduleResponse:
        validate.name(request.name, "name")
        workflow_id = await self._engine.schedules.trigger(request.name)
        return pb.TriggerScheduleResponse(workflow_id=workflow_id)

    async def BackfillSchedule(
        self, request: pb.BackfillScheduleRequest, context: Context
    ) -> pb.BackfillScheduleResponse:
        validate.name(request.name, "name")
        for field in ("start", "end"):
            if not request.HasField(field):
                raise InvalidArgument(field, "is required")
        started = await self._engine.schedules.backfill(
            request.name,
            convert.datetime_in(request.start, "start"),
            convert.datetime_in(request.end, "end"),
        )
        return pb.BackfillScheduleResponse(workflow_ids=started)

    def _spec_in(self, schedule: pb.Schedule) -> ScheduleSpec:
        """A validated schedule to create (the cron and zone are checked by the engine)."""
        validate.schedule_name(schedule.name, "schedule.name")
        if not schedule.cron.strip():
            raise InvalidArgument("schedule.cron", "is required")
        validate.name(schedule.workflow_name, "schedule.workflow_name")
        if schedule.queue:
            validate.name(schedule.queue, "schedule.queue")
        context = None
        if schedule.HasField("context"):
            validate.payload(schedule.context, "schedule.context", self._config.max_payload_bytes)
            if schedule.context.WhichOneof("value") != "json":
                raise InvalidArgument(
                    "schedule.context", "must be JSON (every tick passes it on as JSON)"
                )
            context = convert.payload_in(schedule.context)
        return ScheduleSpec(
            name=schedule.name,
            cron=schedule.cron,
            time_zone=schedule.time_zone,
            workflow_name=schedule.workflow_name,
            queue=schedule.queue,
            context=context,
            paused=schedule.paused,
        )


def schedule_out(schedule: Schedule) -> pb.Schedule:
    """A stored schedule as the contract's Schedule."""
    return pb.Schedule(
        name=schedule.name,
        cron=schedule.cron,
        time_zone=schedule.time_zone,
        workflow_name=schedule.workflow_name,
        queue=schedule.queue,
        context=convert.payload_out(schedule.context),
        paused=schedule.paused,
        last_fired_at=convert.timestamp(schedule.last_fired_at),
        next_fire_at=convert.timestamp(schedule.next_fire_at),
    )
