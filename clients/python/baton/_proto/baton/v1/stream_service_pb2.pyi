from baton._proto.baton.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WriteStreamRequest(_message.Message):
    __slots__ = ("context", "key", "value")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.WorkflowContext
    key: str
    value: _common_pb2.Payload
    def __init__(self, context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ...) -> None: ...

class WriteStreamResponse(_message.Message):
    __slots__ = ("offset",)
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    offset: int
    def __init__(self, offset: _Optional[int] = ...) -> None: ...

class CloseStreamRequest(_message.Message):
    __slots__ = ("context", "key")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.WorkflowContext
    key: str
    def __init__(self, context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class CloseStreamResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadStreamRequest(_message.Message):
    __slots__ = ("workflow_id", "key", "from_offset")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    key: str
    from_offset: int
    def __init__(self, workflow_id: _Optional[str] = ..., key: _Optional[str] = ..., from_offset: _Optional[int] = ...) -> None: ...

class ReadStreamResponse(_message.Message):
    __slots__ = ("offset", "value")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    offset: int
    value: _common_pb2.Payload
    def __init__(self, offset: _Optional[int] = ..., value: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ...) -> None: ...
