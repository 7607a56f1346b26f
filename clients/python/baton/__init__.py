"""Baton: durable workflows as a service. The Python SDK.

A `Worker` hosts workflow and step functions and runs them for the Baton
service; a `Client` (or `AsyncClient`) starts workflows and follows them.

```python
from baton import Client, Worker, WorkflowContext

worker = Worker("localhost:50051", app_version="v1")

@worker.step(max_attempts=5, interval=1.0, backoff=2.0)
def create_payment(order: dict) -> str: ...

@worker.workflow()
def checkout(ctx: WorkflowContext, order: dict) -> str:
    return ctx.run(create_payment, order)

worker.run()
```
"""

from baton._async_client import AsyncClient, AsyncWorkflowHandle
from baton._client import Client, WorkflowHandle
from baton._context import AsyncWorkflowContext, WorkflowContext
from baton._errors import (
    AlreadyExists,
    BatonError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    MaxRecoveryAttemptsExceeded,
    NonDeterministicError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    RpcError,
    SerializationError,
    StepError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    WorkflowCancelled,
    WorkflowFailed,
)
from baton._queues import QueueInfo, WorkflowStart
from baton._schedules import ScheduleInfo
from baton._step_api import write_stream, write_stream_async
from baton._tls import TLSConfig
from baton._types import StepInfo, WorkflowErrorInfo, WorkflowInfo, WorkflowStatus
from baton._worker import Worker
from baton._workflow_ops import AsyncChildHandle, ChildHandle

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "AsyncChildHandle",
    "AsyncClient",
    "AsyncWorkflowContext",
    "AsyncWorkflowHandle",
    "BatonError",
    "ChildHandle",
    "Client",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "MaxRecoveryAttemptsExceeded",
    "NonDeterministicError",
    "NotFound",
    "PermissionDenied",
    "QueueInfo",
    "ResourceExhausted",
    "RpcError",
    "ScheduleInfo",
    "SerializationError",
    "StepError",
    "StepInfo",
    "TLSConfig",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Worker",
    "WorkflowCancelled",
    "WorkflowContext",
    "WorkflowErrorInfo",
    "WorkflowFailed",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowStart",
    "WorkflowStatus",
    "__version__",
    "write_stream",
    "write_stream_async",
]
