import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkflowStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKFLOW_STATUS_UNSPECIFIED: _ClassVar[WorkflowStatus]
    WORKFLOW_STATUS_ENQUEUED: _ClassVar[WorkflowStatus]
    WORKFLOW_STATUS_PENDING: _ClassVar[WorkflowStatus]
    WORKFLOW_STATUS_SUCCESS: _ClassVar[WorkflowStatus]
    WORKFLOW_STATUS_ERROR: _ClassVar[WorkflowStatus]
    WORKFLOW_STATUS_CANCELLED: _ClassVar[WorkflowStatus]
    WORKFLOW_STATUS_MAX_RECOVERY_ATTEMPTS_EXCEEDED: _ClassVar[WorkflowStatus]
WORKFLOW_STATUS_UNSPECIFIED: WorkflowStatus
WORKFLOW_STATUS_ENQUEUED: WorkflowStatus
WORKFLOW_STATUS_PENDING: WorkflowStatus
WORKFLOW_STATUS_SUCCESS: WorkflowStatus
WORKFLOW_STATUS_ERROR: WorkflowStatus
WORKFLOW_STATUS_CANCELLED: WorkflowStatus
WORKFLOW_STATUS_MAX_RECOVERY_ATTEMPTS_EXCEEDED: WorkflowStatus

class Payload(_message.Message):
    __slots__ = ("json", "pickle")
    JSON_FIELD_NUMBER: _ClassVar[int]
    PICKLE_FIELD_NUMBER: _ClassVar[int]
    json: str
    pickle: bytes
    def __init__(self, json: _Optional[str] = ..., pickle: _Optional[bytes] = ...) -> None: ...

class WorkflowError(_message.Message):
    __slots__ = ("type", "message", "traceback", "details")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    traceback: str
    details: Payload
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ..., details: _Optional[_Union[Payload, _Mapping]] = ...) -> None: ...

class WorkflowContext(_message.Message):
    __slots__ = ("workflow_id", "function_id", "attempt")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    function_id: int
    attempt: int
    def __init__(self, workflow_id: _Optional[str] = ..., function_id: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class Workflow(_message.Message):
    __slots__ = ("workflow_id", "workflow_name", "status", "input", "output", "error", "queue", "app_version", "attempt", "max_attempts", "owner_worker_id", "created_at", "updated_at", "started_at", "completed_at", "deadline", "parent_workflow_id", "forked_from", "waiting_reason")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OWNER_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PARENT_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_FIELD_NUMBER: _ClassVar[int]
    WAITING_REASON_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    workflow_name: str
    status: WorkflowStatus
    input: Payload
    output: Payload
    error: WorkflowError
    queue: str
    app_version: str
    attempt: int
    max_attempts: int
    owner_worker_id: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    parent_workflow_id: str
    forked_from: str
    waiting_reason: str
    def __init__(self, workflow_id: _Optional[str] = ..., workflow_name: _Optional[str] = ..., status: _Optional[_Union[WorkflowStatus, str]] = ..., input: _Optional[_Union[Payload, _Mapping]] = ..., output: _Optional[_Union[Payload, _Mapping]] = ..., error: _Optional[_Union[WorkflowError, _Mapping]] = ..., queue: _Optional[str] = ..., app_version: _Optional[str] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., owner_worker_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parent_workflow_id: _Optional[str] = ..., forked_from: _Optional[str] = ..., waiting_reason: _Optional[str] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("function_id", "step_name", "output", "error", "child_workflow_id", "started_at", "completed_at")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHILD_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    function_id: int
    step_name: str
    output: Payload
    error: WorkflowError
    child_workflow_id: str
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, function_id: _Optional[int] = ..., step_name: _Optional[str] = ..., output: _Optional[_Union[Payload, _Mapping]] = ..., error: _Optional[_Union[WorkflowError, _Mapping]] = ..., child_workflow_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
