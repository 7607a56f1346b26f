"""What `Client` and `AsyncClient` share: settings, request building, outcomes.

Kept free of I/O so the sync and async clients differ only in how they call.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import grpc

from baton._convert import duration, error_info_from_proto, status_from_proto, status_to_proto
from baton._errors import (
    DeadlineExceeded,
    MaxRecoveryAttemptsExceeded,
    Unavailable,
    WorkflowCancelled,
    WorkflowFailed,
    map_rpc_error,
)
from baton._payload import Serializer
from baton._proto.baton.v1 import common_pb2, event_service_pb2, workflow_service_pb2
from baton._registry import workflow_name_of
from baton._types import WorkflowErrorInfo, WorkflowStatus

logger = logging.getLogger("baton.client")

DEFAULT_TARGET = "localhost:50051"

AWAIT_SLICE = 30.0
"""The longest single AwaitWorkflow wait; `result` loops over such slices."""

MIN_WAIT = 0.001
"""The shortest server-side wait sent (a zero Duration would mean the 30 s default)."""

AWAIT_MARGIN = 10.0
"""Extra time the call deadline allows beyond the server-side wait."""

UNAVAILABLE_PAUSE = 1.0
"""How long `result` pauses before asking again after the service was unreachable."""

STREAM_RETRIES = 5
"""How many times in a row `read_stream` reopens a stream that broke (UNAVAILABLE)."""

StatusFilter = WorkflowStatus | str | Iterable[WorkflowStatus | str] | None


def resolve_target(target: str | None) -> str:
    """The explicit target, else ``BATON_TARGET``, else ``localhost:50051``."""
    return target or os.environ.get("BATON_TARGET") or DEFAULT_TARGET


def resolve_token(token: str | None) -> str | None:
    """The explicit token, else ``BATON_TOKEN``, else none."""
    return token or os.environ.get("BATON_TOKEN") or None


def start_request(
    serializer: Serializer,
    workflow: str | Callable[..., Any],
    args: Sequence[Any],
    *,
    workflow_id: str | None,
    queue: str | None,
    app_version: str | None,
    timeout: float | None,
) -> workflow_service_pb2.StartWorkflowRequest:
    """Builds a StartWorkflow request.

    The workflow id is chosen here when the caller gives none, so that a start
    retried after a lost response finds the workflow it created instead of
    starting a second one.
    """
    request = workflow_service_pb2.StartWorkflowRequest(
        workflow_name=workflow_name_of(workflow),
        workflow_id=workflow_id or str(uuid.uuid4()),
        input=serializer.encode_args(args),
        queue=queue or "",
        app_version=app_version or "",
        timeout=None if timeout is None else duration(timeout),
    )
    return request


@dataclass(frozen=True)
class ListFilters:
    """The ListWorkflows filters beyond status and name; ``None`` means any."""

    queue: str | None = None
    app_version: str | None = None
    parent_workflow_id: str | None = None
    workflow_id_prefix: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None
    oldest_first: bool = False
    load_payloads: bool = True


def list_request(
    *,
    status: StatusFilter,
    name: str | None,
    page_size: int | None,
    limit: int | None,
    filters: ListFilters | None = None,
) -> workflow_service_pb2.ListWorkflowsRequest:
    """Builds the first ListWorkflows request; later pages only add the page token."""
    if isinstance(status, (WorkflowStatus, str)):
        statuses = [status_to_proto(status)]
    else:
        statuses = [status_to_proto(s) for s in status or ()]
    if page_size is None and limit is not None:
        page_size = min(limit, 1000)  # no point fetching a bigger page than wanted
    more = filters or ListFilters()
    return workflow_service_pb2.ListWorkflowsRequest(
        statuses=statuses,
        workflow_name=name or "",
        page_size=page_size or 0,
        queue=more.queue or "",
        app_version=more.app_version or "",
        parent_workflow_id=more.parent_workflow_id or "",
        workflow_id_prefix=more.workflow_id_prefix or "",
        created_after=more.created_after,
        created_before=more.created_before,
        completed_after=more.completed_after,
        completed_before=more.completed_before,
        order=(
            workflow_service_pb2.SORT_ORDER_OLDEST_FIRST
            if more.oldest_first
            else workflow_service_pb2.SORT_ORDER_NEWEST_FIRST
        ),
        omit_payloads=not more.load_payloads,
    )


def fork_request(
    workflow_id: str, start_step: int, *, new_workflow_id: str | None, app_version: str | None
) -> workflow_service_pb2.ForkWorkflowRequest:
    """Builds a ForkWorkflow request, naming the new id here so a retry is idempotent."""
    return workflow_service_pb2.ForkWorkflowRequest(
        workflow_id=workflow_id,
        start_step=start_step,
        new_workflow_id=new_workflow_id or str(uuid.uuid4()),
        app_version=app_version or "",
    )


def check_limit(limit: int | None) -> None:
    """Rejects a negative ``limit`` early."""
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")


def first_wait(timeout: float | None) -> float:
    """The server-side wait of `execute_workflow`'s StartWorkflow: one await
    slice, or ``timeout`` when shorter."""
    wait = AWAIT_SLICE if timeout is None else min(AWAIT_SLICE, timeout)
    return max(wait, MIN_WAIT)


def await_request(workflow_id: str, wait: float) -> workflow_service_pb2.AwaitWorkflowRequest:
    """Builds an AwaitWorkflow request waiting ``wait`` seconds on the server."""
    return workflow_service_pb2.AwaitWorkflowRequest(
        workflow_id=workflow_id, timeout=duration(wait)
    )


def outcome(workflow: common_pb2.Workflow, serializer: Serializer) -> Any:
    """The result of a finished workflow, or the exception its ending calls for.

    Only the output is decoded (not the input), so waiting on a workflow never
    fails because of how its arguments were encoded.
    """
    status = status_from_proto(workflow.status)
    if status is WorkflowStatus.SUCCESS:
        return serializer.decode(workflow.output)
    error = (
        error_info_from_proto(workflow.error)
        if workflow.HasField("error")
        else WorkflowErrorInfo(type=status.value, message="")
    )
    if status is WorkflowStatus.CANCELLED:
        raise WorkflowCancelled(workflow.workflow_id, error)
    if status is WorkflowStatus.MAX_RECOVERY_ATTEMPTS_EXCEEDED:
        raise MaxRecoveryAttemptsExceeded(workflow.workflow_id, error)
    if status is WorkflowStatus.ERROR:
        raise WorkflowFailed(workflow.workflow_id, error)
    raise AssertionError(f"outcome() called for unfinished status {status}")


AWAIT_MANY = 10_000
"""The most workflows one AwaitWorkflows call waits for; `as_completed` waits
for more, that many at a time, in the order given."""


class Finishable(Protocol):
    """A workflow handle `as_completed` can hand the final state to."""

    workflow_id: str
    _finished: common_pb2.Workflow | None


H = TypeVar("H", bound=Finishable)


class AwaitingMany(Generic[H]):
    """The bookkeeping of one `as_completed`, apart from its calls: which
    workflows are left (in chunks of `AWAIT_MANY`), what the next AwaitWorkflows
    call asks and how long it may take, and what a failed call means. The sync
    and async clients only make the calls and pause.

    Raises:
        TypeError: ``workflows`` is one id rather than several.
    """

    def __init__(
        self,
        workflows: Iterable[H | str],
        make: Callable[[str], H],
        timeout: float | None,
        clock: Callable[[], float],
    ) -> None:
        if isinstance(workflows, str):
            raise TypeError("as_completed takes handles or ids, not one id: wrap it in a list")
        self._handles: dict[str, H] = {}  # the caller's handles (new ones for bare ids)
        for item in workflows:
            workflow_id = item if isinstance(item, str) else item.workflow_id
            if workflow_id not in self._handles:
                self._handles[workflow_id] = make(item) if isinstance(item, str) else item
        self._timeout = timeout
        self._clock = clock
        self._deadline = None if timeout is None else clock() + timeout
        self._later: list[str] = []
        self.pending: dict[str, None] = {}
        """The current chunk's workflows not yet finished."""
        self._asked = False

    def chunks(self) -> Iterator[None]:
        """Moves `pending` to each chunk in turn."""
        ids = list(self._handles)
        for first in range(0, len(ids), AWAIT_MANY):
            self.pending = dict.fromkeys(ids[first : first + AWAIT_MANY])
            self._later = ids[first + AWAIT_MANY :]
            self._asked = False
            yield

    def next_call(self) -> tuple[workflow_service_pb2.AwaitWorkflowsRequest, float]:
        """The next request for `pending` and the call's deadline in seconds.

        Raises:
            TimeoutError: The caller's timeout passed (after one call at least
                per chunk, so the workflows finished already still come); its
                ``workflow_ids`` names those not yielded.
        """
        wait = AWAIT_SLICE
        if self._deadline is not None:
            wait = min(wait, self._deadline - self._clock())
            if wait <= 0 and self._asked:
                raise self._timeout_error([*self.pending, *self._later])
            wait = max(wait, MIN_WAIT)
        self._asked = True
        request = workflow_service_pb2.AwaitWorkflowsRequest(
            workflow_ids=list(self.pending), timeout=duration(wait)
        )
        return request, wait + AWAIT_MARGIN

    def finished(self, response: workflow_service_pb2.AwaitWorkflowsResponse) -> list[H]:
        """The handles of the workflows ``response`` reports finished, each
        once, their final state in hand."""
        handles = []
        for workflow in response.finished:
            if workflow.workflow_id in self.pending:
                del self.pending[workflow.workflow_id]
                handle = self._handles[workflow.workflow_id]
                handle._finished = workflow
                handles.append(handle)
        return handles

    def pause_after(self, exc: grpc.RpcError) -> float:
        """How long to pause before asking again after a call failed with ``exc``.

        Raises:
            RpcError: A failure that asking again does not cure.
        """
        error = map_rpc_error(exc)
        if isinstance(error, DeadlineExceeded):
            return 0.0  # a slow consumer outlasted the call: ask again for the rest
        if not isinstance(error, Unavailable):
            raise error from exc
        # The service restarting must not fail a caller prepared to wait.
        logger.warning("waiting for %d workflows: %s; again", len(self.pending), error)
        return UNAVAILABLE_PAUSE

    def _timeout_error(self, left: list[str]) -> TimeoutError:
        named = ", ".join(repr(i) for i in left[:5]) + (", ..." if len(left) > 5 else "")
        error = TimeoutError(
            f"{len(left)} of {len(self._handles)} workflows did not finish"
            f" within {self._timeout}s: {named}"
        )
        error.workflow_ids = left  # type: ignore[attr-defined]
        return error


def timeout_error(workflow_id: str, timeout: float | None) -> TimeoutError:
    """The error `result` raises when the caller's timeout passes first."""
    return TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout}s")


def get_event_request(
    workflow_id: str, key: str, timeout: float
) -> event_service_pb2.GetEventRequest:
    """Builds a GetEvent request waiting ``timeout`` seconds (0: do not wait)."""
    return event_service_pb2.GetEventRequest(
        workflow_id=workflow_id, key=key, timeout=duration(timeout) if timeout > 0 else None
    )
