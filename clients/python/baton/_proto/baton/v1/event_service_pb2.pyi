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

class SetEventRequest(_message.Message):
    __slots__ = ("context", "key", "value")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.WorkflowContext
    key: str
    value: _common_pb2.Payload
    def __init__(self, context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ...) -> None: ...

class SetEventResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("workflow_id", "key", "timeout", "context", "release_if_longer_than")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_IF_LONGER_THAN_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    key: str
    timeout: _duration_pb2.Duration
    context: _common_pb2.WorkflowContext
    release_if_longer_than: _duration_pb2.Duration
    def __init__(self, workflow_id: _Optional[str] = ..., key: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., release_if_longer_than: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ("found", "value", "released")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: _common_pb2.Payload
    released: bool
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., released: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("key", "value", "updated_at")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _common_pb2.Payload
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...
