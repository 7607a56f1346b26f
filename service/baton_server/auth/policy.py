"""Which roles may call which RPC.

``admin`` may call everything. ``worker`` may connect and checkpoint, and make
the calls a running workflow makes (start and await children, send, set and get
events, write and read streams). ``client`` may start, inspect and await
workflows, send, read events and streams, and read queues and schedules.
Cancelling, resuming, forking, deleting, and managing queues and schedules are
``admin``'s. Health and reflection need no token.

A request that carries a ``WorkflowContext`` acts as that running workflow: it
is recorded in the workflow's journal, and a wait may release the workflow from
its worker. Only ``worker`` and ``admin`` may do that; a ``client`` token may
call the same RPCs without a context (``context_fields_set`` finds them).

Every RPC of the contract must be listed (a test checks it); an RPC missing
here is refused to everyone but ``admin``.
"""

from __future__ import annotations

from functools import cache

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from baton_server.auth.tokens import Role

W, C, A = Role.WORKER, Role.CLIENT, Role.ADMIN

# The roles whose calls may carry a WorkflowContext (act as a running workflow).
WORKFLOW_ROLES = frozenset({W, A})
_WORKFLOW_CONTEXT = "baton.v1.WorkflowContext"

_POLICY: dict[str, frozenset[Role]] = {
    name: frozenset(roles)
    for name, roles in {
        # WorkflowService
        "baton.v1.WorkflowService/StartWorkflow": (W, C, A),
        "baton.v1.WorkflowService/StartWorkflows": (W, C, A),
        "baton.v1.WorkflowService/GetWorkflow": (W, C, A),
        "baton.v1.WorkflowService/AwaitWorkflow": (W, C, A),
        "baton.v1.WorkflowService/AwaitWorkflows": (W, C, A),
        "baton.v1.WorkflowService/WatchWorkflow": (W, C, A),
        "baton.v1.WorkflowService/ListWorkflows": (W, C, A),
        "baton.v1.WorkflowService/ListWorkflowSteps": (W, C, A),
        "baton.v1.WorkflowService/CancelWorkflow": (A,),
        "baton.v1.WorkflowService/ResumeWorkflow": (A,),
        "baton.v1.WorkflowService/ForkWorkflow": (A,),
        "baton.v1.WorkflowService/DeleteWorkflow": (A,),
        # QueueService
        "baton.v1.QueueService/UpsertQueue": (A,),
        "baton.v1.QueueService/GetQueue": (C, A),
        "baton.v1.QueueService/ListQueues": (C, A),
        "baton.v1.QueueService/DeleteQueue": (A,),
        # MessageService
        "baton.v1.MessageService/Send": (W, C, A),
        # EventService
        "baton.v1.EventService/SetEvent": (W, A),
        "baton.v1.EventService/GetEvent": (W, C, A),
        "baton.v1.EventService/ListEvents": (W, C, A),
        # StreamService
        "baton.v1.StreamService/WriteStream": (W, A),
        "baton.v1.StreamService/CloseStream": (W, A),
        "baton.v1.StreamService/ReadStream": (W, C, A),
        # ScheduleService
        "baton.v1.ScheduleService/CreateSchedule": (A,),
        "baton.v1.ScheduleService/GetSchedule": (C, A),
        "baton.v1.ScheduleService/ListSchedules": (C, A),
        "baton.v1.ScheduleService/PauseSchedule": (A,),
        "baton.v1.ScheduleService/ResumeSchedule": (A,),
        "baton.v1.ScheduleService/DeleteSchedule": (A,),
        "baton.v1.ScheduleService/TriggerSchedule": (A,),
        "baton.v1.ScheduleService/BackfillSchedule": (A,),
        # WorkerService
        "baton.v1.WorkerService/Connect": (W, A),
        "baton.v1.WorkerService/RecordStep": (W, A),
        "baton.v1.WorkerService/CompleteWorkflow": (W, A),
        "baton.v1.WorkerService/Sleep": (W, A),
        "baton.v1.WorkerService/Recv": (W, A),
        "baton.v1.WorkerService/CallStep": (W, A),
        "baton.v1.WorkerService/CompleteStep": (W, A),
    }.items()
}

# Services anyone may call, with or without a token.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


def listed_methods() -> frozenset[str]:
    """Every RPC the policy names (``package.Service/Method``)."""
    return frozenset(_POLICY)


def allowed_roles(method: str) -> frozenset[Role]:
    """The roles that may call ``method`` (given as ``/package.Service/Method``)."""
    return _POLICY.get(method.lstrip("/"), frozenset({Role.ADMIN}))


def is_open(method: str) -> bool:
    """Whether ``method`` needs no token."""
    return method.lstrip("/").split("/", 1)[0] in OPEN_SERVICES


def context_fields_set(request: Message) -> list[str]:
    """The WorkflowContext fields set in ``request``, as paths
    (``caller``, ``workflows[2].caller``); empty for a call by no workflow."""
    found: list[str] = []
    for path in context_paths(request.DESCRIPTOR):
        _collect(request, path, "", found)
    return found


def _collect(message: Message, path: tuple[str, ...], prefix: str, found: list[str]) -> None:
    name, rest = path[0], path[1:]
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        for index, item in enumerate(getattr(message, name)):
            _collect(item, rest, f"{prefix}{name}[{index}].", found)
    elif message.HasField(name):
        if rest:
            _collect(getattr(message, name), rest, f"{prefix}{name}.", found)
        else:
            found.append(prefix + name)


@cache
def context_paths(descriptor: Descriptor) -> tuple[tuple[str, ...], ...]:
    """Where a message of this type can hold a WorkflowContext (field names
    from the top); a context is never nested deeper than the contract goes."""
    return tuple(_walk(descriptor, frozenset()))


def _walk(descriptor: Descriptor, seen: frozenset[str]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for field in descriptor.fields:
        kind = field.message_type
        if kind is None or kind.full_name in seen or kind.GetOptions().map_entry:
            continue
        if kind.full_name == _WORKFLOW_CONTEXT:
            paths.append((field.name,))
        else:
            inner = _walk(kind, seen | {descriptor.full_name})
            paths.extend((field.name, *path) for path in inner)
    return paths
