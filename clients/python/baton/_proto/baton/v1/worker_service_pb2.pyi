import datetime

from baton._proto.baton.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("register", "heartbeat", "slots", "checkpoint", "checkpoints")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    register: RegisterWorker
    heartbeat: Heartbeat
    slots: GrantSlots
    checkpoint: Checkpoint
    checkpoints: CheckpointBatch
    def __init__(self, register: _Optional[_Union[RegisterWorker, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., slots: _Optional[_Union[GrantSlots, _Mapping]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., checkpoints: _Optional[_Union[CheckpointBatch, _Mapping]] = ...) -> None: ...

class CheckpointBatch(_message.Message):
    __slots__ = ("checkpoints", "workflow_slots")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_SLOTS_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    workflow_slots: int
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., workflow_slots: _Optional[int] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("id", "record_step", "complete_workflow", "trace_carrier")
    class TraceCarrierEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_STEP_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    TRACE_CARRIER_FIELD_NUMBER: _ClassVar[int]
    id: int
    record_step: RecordStepRequest
    complete_workflow: CompleteWorkflowRequest
    trace_carrier: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[int] = ..., record_step: _Optional[_Union[RecordStepRequest, _Mapping]] = ..., complete_workflow: _Optional[_Union[CompleteWorkflowRequest, _Mapping]] = ..., trace_carrier: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Checkpointed(_message.Message):
    __slots__ = ("id", "record_step", "complete_workflow", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_STEP_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    record_step: RecordStepResponse
    complete_workflow: CompleteWorkflowResponse
    error: bytes
    def __init__(self, id: _Optional[int] = ..., record_step: _Optional[_Union[RecordStepResponse, _Mapping]] = ..., complete_workflow: _Optional[_Union[CompleteWorkflowResponse, _Mapping]] = ..., error: _Optional[bytes] = ...) -> None: ...

class WorkflowRegistration(_message.Message):
    __slots__ = ("name", "max_attempts", "schedule", "schedule_time_zone")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    name: str
    max_attempts: int
    schedule: str
    schedule_time_zone: str
    def __init__(self, name: _Optional[str] = ..., max_attempts: _Optional[int] = ..., schedule: _Optional[str] = ..., schedule_time_zone: _Optional[str] = ...) -> None: ...

class StepRegistration(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RegisterWorker(_message.Message):
    __slots__ = ("worker_id", "app_version", "workflows", "steps", "queues", "workflow_slots", "running", "sdk", "display_name", "dispatch_batches", "step_slots", "running_steps")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_SLOTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_BATCHES_FIELD_NUMBER: _ClassVar[int]
    STEP_SLOTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_STEPS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    app_version: str
    workflows: _containers.RepeatedCompositeFieldContainer[WorkflowRegistration]
    steps: _containers.RepeatedCompositeFieldContainer[StepRegistration]
    queues: _containers.RepeatedScalarFieldContainer[str]
    workflow_slots: int
    running: _containers.RepeatedCompositeFieldContainer[RunningWorkflow]
    sdk: str
    display_name: str
    dispatch_batches: bool
    step_slots: int
    running_steps: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., app_version: _Optional[str] = ..., workflows: _Optional[_Iterable[_Union[WorkflowRegistration, _Mapping]]] = ..., steps: _Optional[_Iterable[_Union[StepRegistration, _Mapping]]] = ..., queues: _Optional[_Iterable[str]] = ..., workflow_slots: _Optional[int] = ..., running: _Optional[_Iterable[_Union[RunningWorkflow, _Mapping]]] = ..., sdk: _Optional[str] = ..., display_name: _Optional[str] = ..., dispatch_batches: _Optional[bool] = ..., step_slots: _Optional[int] = ..., running_steps: _Optional[_Iterable[str]] = ...) -> None: ...

class RunningWorkflow(_message.Message):
    __slots__ = ("workflow_id", "attempt")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    attempt: int
    def __init__(self, workflow_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GrantSlots(_message.Message):
    __slots__ = ("workflow_slots", "step_slots")
    WORKFLOW_SLOTS_FIELD_NUMBER: _ClassVar[int]
    STEP_SLOTS_FIELD_NUMBER: _ClassVar[int]
    workflow_slots: int
    step_slots: int
    def __init__(self, workflow_slots: _Optional[int] = ..., step_slots: _Optional[int] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("registered", "dispatch", "cancel", "reconnect", "run_step", "checkpointed", "checkpointed_batch", "dispatch_batch")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_FIELD_NUMBER: _ClassVar[int]
    RUN_STEP_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTED_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTED_BATCH_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_BATCH_FIELD_NUMBER: _ClassVar[int]
    registered: Registered
    dispatch: DispatchWorkflow
    cancel: CancelWorkflowCommand
    reconnect: Reconnect
    run_step: RunStep
    checkpointed: Checkpointed
    checkpointed_batch: CheckpointedBatch
    dispatch_batch: DispatchBatch
    def __init__(self, registered: _Optional[_Union[Registered, _Mapping]] = ..., dispatch: _Optional[_Union[DispatchWorkflow, _Mapping]] = ..., cancel: _Optional[_Union[CancelWorkflowCommand, _Mapping]] = ..., reconnect: _Optional[_Union[Reconnect, _Mapping]] = ..., run_step: _Optional[_Union[RunStep, _Mapping]] = ..., checkpointed: _Optional[_Union[Checkpointed, _Mapping]] = ..., checkpointed_batch: _Optional[_Union[CheckpointedBatch, _Mapping]] = ..., dispatch_batch: _Optional[_Union[DispatchBatch, _Mapping]] = ...) -> None: ...

class DispatchBatch(_message.Message):
    __slots__ = ("dispatches",)
    DISPATCHES_FIELD_NUMBER: _ClassVar[int]
    dispatches: _containers.RepeatedCompositeFieldContainer[DispatchWorkflow]
    def __init__(self, dispatches: _Optional[_Iterable[_Union[DispatchWorkflow, _Mapping]]] = ...) -> None: ...

class CheckpointedBatch(_message.Message):
    __slots__ = ("answers",)
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[Checkpointed]
    def __init__(self, answers: _Optional[_Iterable[_Union[Checkpointed, _Mapping]]] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("worker_id", "replica_id", "heartbeat_interval", "lease_duration", "completion_follows_step", "slots_with_checkpoints")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    LEASE_DURATION_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FOLLOWS_STEP_FIELD_NUMBER: _ClassVar[int]
    SLOTS_WITH_CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    replica_id: str
    heartbeat_interval: _duration_pb2.Duration
    lease_duration: _duration_pb2.Duration
    completion_follows_step: bool
    slots_with_checkpoints: bool
    def __init__(self, worker_id: _Optional[str] = ..., replica_id: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., lease_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., completion_follows_step: _Optional[bool] = ..., slots_with_checkpoints: _Optional[bool] = ...) -> None: ...

class DispatchWorkflow(_message.Message):
    __slots__ = ("workflow_id", "workflow_name", "input", "attempt", "journal", "deadline", "app_version", "parent_workflow_id", "trace_carrier")
    class TraceCarrierEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARENT_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_CARRIER_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    workflow_name: str
    input: _common_pb2.Payload
    attempt: int
    journal: _containers.RepeatedCompositeFieldContainer[_common_pb2.Step]
    deadline: _timestamp_pb2.Timestamp
    app_version: str
    parent_workflow_id: str
    trace_carrier: _containers.ScalarMap[str, str]
    def __init__(self, workflow_id: _Optional[str] = ..., workflow_name: _Optional[str] = ..., input: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., attempt: _Optional[int] = ..., journal: _Optional[_Iterable[_Union[_common_pb2.Step, _Mapping]]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., app_version: _Optional[str] = ..., parent_workflow_id: _Optional[str] = ..., trace_carrier: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CancelWorkflowCommand(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class Reconnect(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class RunStep(_message.Message):
    __slots__ = ("task_id", "context", "step_name", "input")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    context: _common_pb2.WorkflowContext
    step_name: str
    input: _common_pb2.Payload
    def __init__(self, task_id: _Optional[str] = ..., context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., step_name: _Optional[str] = ..., input: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ...) -> None: ...

class RecordStepRequest(_message.Message):
    __slots__ = ("context", "step_name", "output", "error", "started_at")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.WorkflowContext
    step_name: str
    output: _common_pb2.Payload
    error: _common_pb2.WorkflowError
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., step_name: _Optional[str] = ..., output: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.WorkflowError, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordStepResponse(_message.Message):
    __slots__ = ("step", "already_recorded")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ALREADY_RECORDED_FIELD_NUMBER: _ClassVar[int]
    step: _common_pb2.Step
    already_recorded: bool
    def __init__(self, step: _Optional[_Union[_common_pb2.Step, _Mapping]] = ..., already_recorded: _Optional[bool] = ...) -> None: ...

class CompleteWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "attempt", "output", "error", "follows_step")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FOLLOWS_STEP_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    attempt: int
    output: _common_pb2.Payload
    error: _common_pb2.WorkflowError
    follows_step: int
    def __init__(self, workflow_id: _Optional[str] = ..., attempt: _Optional[int] = ..., output: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.WorkflowError, _Mapping]] = ..., follows_step: _Optional[int] = ...) -> None: ...

class CompleteWorkflowResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.WorkflowStatus
    def __init__(self, status: _Optional[_Union[_common_pb2.WorkflowStatus, str]] = ...) -> None: ...

class SleepRequest(_message.Message):
    __slots__ = ("context", "duration", "release_if_longer_than")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    RELEASE_IF_LONGER_THAN_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.WorkflowContext
    duration: _duration_pb2.Duration
    release_if_longer_than: _duration_pb2.Duration
    def __init__(self, context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., release_if_longer_than: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SleepResponse(_message.Message):
    __slots__ = ("wake_at", "released")
    WAKE_AT_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    wake_at: _timestamp_pb2.Timestamp
    released: bool
    def __init__(self, wake_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., released: _Optional[bool] = ...) -> None: ...

class RecvRequest(_message.Message):
    __slots__ = ("context", "topic", "timeout", "release_if_longer_than")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_IF_LONGER_THAN_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.WorkflowContext
    topic: str
    timeout: _duration_pb2.Duration
    release_if_longer_than: _duration_pb2.Duration
    def __init__(self, context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., topic: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., release_if_longer_than: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RecvResponse(_message.Message):
    __slots__ = ("found", "message", "released")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    found: bool
    message: _common_pb2.Payload
    released: bool
    def __init__(self, found: _Optional[bool] = ..., message: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., released: _Optional[bool] = ...) -> None: ...

class CallStepRequest(_message.Message):
    __slots__ = ("context", "step_name", "input")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.WorkflowContext
    step_name: str
    input: _common_pb2.Payload
    def __init__(self, context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., step_name: _Optional[str] = ..., input: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ...) -> None: ...

class CallStepResponse(_message.Message):
    __slots__ = ("step", "done")
    STEP_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    step: _common_pb2.Step
    done: bool
    def __init__(self, step: _Optional[_Union[_common_pb2.Step, _Mapping]] = ..., done: _Optional[bool] = ...) -> None: ...

class CompleteStepRequest(_message.Message):
    __slots__ = ("task_id", "output", "error")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    output: _common_pb2.Payload
    error: _common_pb2.WorkflowError
    def __init__(self, task_id: _Optional[str] = ..., output: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.WorkflowError, _Mapping]] = ...) -> None: ...

class CompleteStepResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
