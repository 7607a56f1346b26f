"""A refusal recorded as a step's error (a child start refused for what it
asked) reads back, on the server and in the SDK, as the error the first call
raised: same code, message, reason, metadata and field violations."""

from __future__ import annotations

import grpc
import pytest

from baton._errors import RpcError, map_status, recorded_refusal
from baton_server.engine.journal import recorded_refusal as server_refusal
from baton_server.engine.journal import refusal_failure
from baton_server.engine.queues import queue_not_found
from baton_server.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    ServiceError,
    Unavailable,
)
from baton_server.servicers.errors import to_status

pytestmark = pytest.mark.timeout(10)


def _refusals() -> list[ServiceError]:
    dedup = AlreadyExists(
        "queue 'q' already has workflow 'w' in flight with deduplication id 'd'",
        reason="DUPLICATE_DEDUPLICATION_ID",
        metadata={"workflow_id": "w", "queue": "q", "deduplication_id": "d"},
    )
    invalid = InvalidArgument("partition_key", "is required on partitioned queue 'q'")
    invalid.violations.append(("priority", "queue 'q' does not have priorities enabled"))
    return [dedup, queue_not_found("late"), invalid]


@pytest.mark.parametrize("refusal", _refusals(), ids=lambda e: type(e).__name__)
def test_a_recorded_refusal_reads_back_as_the_error_the_call_raised(refusal: ServiceError) -> None:
    failure = refusal_failure(refusal)
    assert failure is not None and failure.details is not None
    assert failure.type == f"baton.{type(refusal).__name__}"

    live = map_status(to_status(refusal))  # what the SDK raised the first time
    retried = map_status(to_status(server_refusal(failure)))  # a retried call's answer
    replayed = recorded_refusal(failure.message, failure.details.data.decode())
    assert _said(retried) == _said(live)
    assert _said(replayed) == _said(live)


def _said(error: RpcError) -> tuple[object, ...]:
    return (
        type(error),
        error.code,
        error.message,
        error.reason,
        error.metadata,
        error.field_violations,
    )


def test_a_passing_condition_or_a_fenced_write_is_not_recorded() -> None:
    conflict = Unavailable("conflicted repeatedly; try again", reason="START_CONFLICT")
    stale = FailedPrecondition("attempt 1 is stale", reason="STALE_ATTEMPT")
    assert refusal_failure(conflict) is None
    assert refusal_failure(stale) is None


def test_details_the_sdk_cannot_read_still_raise_a_clear_error() -> None:
    error = recorded_refusal("refused", "not json")
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message == "refused"
