"""The SDK's public surface is deliberate: this test pins it."""

from __future__ import annotations

import baton


def test_the_public_names_are_exactly_these() -> None:
    assert sorted(baton.__all__) == sorted(
        [
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
    )
    for name in baton.__all__:
        assert hasattr(baton, name), name


def test_every_sdk_exception_derives_from_baton_error() -> None:
    for name in baton.__all__:
        value = getattr(baton, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, baton.BatonError), name


def test_decorators_leave_functions_callable_and_startable_by_reference() -> None:
    from baton._registry import step_definition_of, workflow_name_of

    worker = baton.Worker("localhost:1")

    @worker.step(max_attempts=3, interval=0.5, backoff=3.0)
    def add(a: int, b: int) -> int:
        return a + b

    @worker.workflow(name="renamed")
    def flow(ctx: baton.WorkflowContext) -> None:
        return None

    @worker.workflow
    async def bare(ctx: baton.AsyncWorkflowContext) -> None:
        return None

    assert add(1, 2) == 3
    assert workflow_name_of(flow) == "renamed"
    assert workflow_name_of(bare) == "bare"
    assert workflow_name_of("by-name") == "by-name"
    definition = step_definition_of(add)
    assert (definition.name, definition.max_attempts) == ("add", 3)
    assert [definition.retry_delay(n) for n in range(3)] == [0.5, 1.5, 4.5]
