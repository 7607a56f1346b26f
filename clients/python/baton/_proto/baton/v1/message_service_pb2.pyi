from baton._proto.baton.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SendRequest(_message.Message):
    __slots__ = ("destination_id", "message", "topic", "idempotency_key", "context")
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    destination_id: str
    message: _common_pb2.Payload
    topic: str
    idempotency_key: str
    context: _common_pb2.WorkflowContext
    def __init__(self, destination_id: _Optional[str] = ..., message: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., topic: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., context: _Optional[_Union[_common_pb2.WorkflowContext, _Mapping]] = ...) -> None: ...

class SendResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
