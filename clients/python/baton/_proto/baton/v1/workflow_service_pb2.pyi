import datetime

from baton._proto.baton.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_NEWEST_FIRST: _ClassVar[SortOrder]
    SORT_ORDER_OLDEST_FIRST: _ClassVar[SortOrder]
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_NEWEST_FIRST: SortOrder
SORT_ORDER_OLDEST_FIRST: SortOrder

class StartWorkflowRequest(_message.Message):
    __slots__ = ("workflow_name", "workflow_id", "input", "queue", "app_version", "timeout", "deduplication_id", "priority", "partition_key", "start_at", "caller", "max_attempts", "queue_timeout", "return_existing_duplicate", "wait")
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETURN_EXISTING_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    workflow_name: str
    workflow_id: str
    input: _common_pb2.Payload
    queue: str
    app_version: str
    timeout: _duration_pb2.Duration
    deduplication_id: str
    priority: int
    partition_key: str
    start_at: _timestamp_pb2.Timestamp
    caller: _common_pb2.WorkflowContext
    max_attempts: int
    queue_timeout: _duration_pb2.Duration
    return_existing_duplicate: bool
    wait: _duration_pb2.Duration
    def __init__(self, workflow_name: _Optional[str] = ..., workflow_id: _Optional[str] = ..., input: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., queue: _Optional[str] = ..., app_version: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., deduplication_id: _Optional[str] = ..., priority: _Optional[int] = ..., partition_key: _Optional[str] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., caller: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., max_attempts: _Optional[int] = ..., queue_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., return_existing_duplicate: _Optional[bool] = ..., wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StartWorkflowResponse(_message.Message):
    __slots__ = ("workflow", "created", "done")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    created: bool
    done: bool
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ..., created: _Optional[bool] = ..., done: _Optional[bool] = ...) -> None: ...

class StartWorkflowsRequest(_message.Message):
    __slots__ = ("workflows",)
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[StartWorkflowRequest]
    def __init__(self, workflows: _Optional[_Iterable[_Union[StartWorkflowRequest, _Mapping]]] = ...) -> None: ...

class StartWorkflowsResult(_message.Message):
    __slots__ = ("started", "error")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    started: StartWorkflowResponse
    error: ItemError
    def __init__(self, started: _Optional[_Union[StartWorkflowResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    reason: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StartWorkflowsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StartWorkflowsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[StartWorkflowsResult, _Mapping]]] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "omit_payloads")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    OMIT_PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    omit_payloads: bool
    def __init__(self, workflow_id: _Optional[str] = ..., omit_payloads: _Optional[bool] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ...) -> None: ...

class AwaitWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "timeout", "caller", "release_if_longer_than")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    RELEASE_IF_LONGER_THAN_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    timeout: _duration_pb2.Duration
    caller: _common_pb2.WorkflowContext
    release_if_longer_than: _duration_pb2.Duration
    def __init__(self, workflow_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., caller: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., release_if_longer_than: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AwaitWorkflowResponse(_message.Message):
    __slots__ = ("workflow", "done", "released")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    done: bool
    released: bool
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ..., done: _Optional[bool] = ..., released: _Optional[bool] = ...) -> None: ...

class AwaitWorkflowsRequest(_message.Message):
    __slots__ = ("workflow_ids", "timeout")
    WORKFLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    workflow_ids: _containers.RepeatedScalarFieldContainer[str]
    timeout: _duration_pb2.Duration
    def __init__(self, workflow_ids: _Optional[_Iterable[str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AwaitWorkflowsResponse(_message.Message):
    __slots__ = ("finished",)
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    finished: _containers.RepeatedCompositeFieldContainer[_common_pb2.Workflow]
    def __init__(self, finished: _Optional[_Iterable[_Union[_common_pb2.Workflow, _Mapping]]] = ...) -> None: ...

class WatchWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class WatchWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ("statuses", "workflow_name", "page_size", "page_token", "queue", "app_version", "parent_workflow_id", "workflow_id_prefix", "created_after", "created_before", "order", "omit_payloads", "completed_after", "completed_before")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARENT_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    OMIT_PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AFTER_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.WorkflowStatus]
    workflow_name: str
    page_size: int
    page_token: str
    queue: str
    app_version: str
    parent_workflow_id: str
    workflow_id_prefix: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    order: SortOrder
    omit_payloads: bool
    completed_after: _timestamp_pb2.Timestamp
    completed_before: _timestamp_pb2.Timestamp
    def __init__(self, statuses: _Optional[_Iterable[_Union[_common_pb2.WorkflowStatus, str]]] = ..., workflow_name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., queue: _Optional[str] = ..., app_version: _Optional[str] = ..., parent_workflow_id: _Optional[str] = ..., workflow_id_prefix: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., order: _Optional[_Union[SortOrder, str]] = ..., omit_payloads: _Optional[bool] = ..., completed_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows", "next_page_token")
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[_common_pb2.Workflow]
    next_page_token: str
    def __init__(self, workflows: _Optional[_Iterable[_Union[_common_pb2.Workflow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListWorkflowStepsRequest(_message.Message):
    __slots__ = ("workflow_id", "page_size", "page_token")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    page_size: int
    page_token: str
    def __init__(self, workflow_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorkflowStepsResponse(_message.Message):
    __slots__ = ("steps", "next_page_token")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[_common_pb2.Step]
    next_page_token: str
    def __init__(self, steps: _Optional[_Iterable[_Union[_common_pb2.Step, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "include_children")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CHILDREN_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    include_children: bool
    def __init__(self, workflow_id: _Optional[str] = ..., include_children: _Optional[bool] = ...) -> None: ...

class CancelWorkflowResponse(_message.Message):
    __slots__ = ("workflow", "cancelled", "cancelled_workflow_ids")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_WORKFLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    cancelled: bool
    cancelled_workflow_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ..., cancelled: _Optional[bool] = ..., cancelled_workflow_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResumeWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "app_version")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    app_version: str
    def __init__(self, workflow_id: _Optional[str] = ..., app_version: _Optional[str] = ...) -> None: ...

class ResumeWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ...) -> None: ...

class ForkWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "start_step", "new_workflow_id", "app_version")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    START_STEP_FIELD_NUMBER: _ClassVar[int]
    NEW_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    start_step: int
    new_workflow_id: str
    app_version: str
    def __init__(self, workflow_id: _Optional[str] = ..., start_step: _Optional[int] = ..., new_workflow_id: _Optional[str] = ..., app_version: _Optional[str] = ...) -> None: ...

class ForkWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _common_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_common_pb2.Workflow, _Mapping]] = ...) -> None: ...

class DeleteWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "include_children")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CHILDREN_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    include_children: bool
    def __init__(self, workflow_id: _Optional[str] = ..., include_children: _Optional[bool] = ...) -> None: ...

class DeleteWorkflowResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...
