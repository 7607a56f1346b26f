"""Which roles may call which RPC.

``admin`` may call everything. ``worker`` may connect and checkpoint, and make
the calls a running workflow makes (start and await children, send, set and get
events, write and read streams). ``client`` may start, inspect and await
workflows, send, read events and streams, and read queues and schedules.
Cancelling, resuming, forking, deleting, and managing queues and schedules are
``admin``'s. Health and reflection need no token.

Every RPC of the contract must be listed (a test checks it); an RPC missing
here is refused to everyone but ``admin``.
"""

from __future__ import annotations

from baton_server.auth.tokens import Role

W, C, A = Role.WORKER, Role.CLIENT, Role.ADMIN

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
