"""Reads and guarded writes of ``steps`` (the journal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from baton_server.connector import Tx
from baton_server.store.models import Failure, Payload, Step


@dataclass(frozen=True)
class NewStep:
    """A step result to record."""

    workflow_id: str
    function_id: int
    attempt: int
    step_name: str
    output: Payload | None
    error: Failure | None
    started_at: datetime | None

    def recorded(self, completed_at: datetime) -> Step:
        """The journal entry this step became, committed at ``completed_at``."""
        return Step(
            workflow_id=self.workflow_id,
            function_id=self.function_id,
            step_name=self.step_name,
            output=self.output,
            error=self.error,
            child_workflow_id=None,
            attempt=self.attempt,
            started_at=self.started_at,
            completed_at=completed_at,
        )


async def record(tx: Tx, new: NewStep) -> Step | None:
    """Appends the step if ``new.attempt`` still owns the workflow.

    ``None`` means nothing was written: either the attempt is stale (or the
    workflow not PENDING), or the step was recorded before. The caller tells
    them apart with :func:`get`.
    """
    row = await tx.fetch_one("record_step", params(new))
    return new.recorded(row["completed_at"]) if row else None


def params(new: NewStep) -> dict[str, object]:
    """The parameters of `record`'s statement (``record_step``)."""
    return {
        "workflow_id": new.workflow_id,
        "function_id": new.function_id,
        "attempt": new.attempt,
        "step_name": new.step_name,
        **result_params(new.output, new.error),
        "started_at": new.started_at,
    }


def result_params(output: Payload | None, error: Failure | None) -> dict[str, object]:
    """A step's or a workflow's result as the one-row statements' parameters
    (``output_encoding``, ``output``, ``error``)."""
    return {
        "output_encoding": output.encoding if output else None,
        "output": output.data if output else None,
        "error": Jsonb(error.to_json()) if error else None,
    }


def result_arrays(results: list[tuple[Payload | None, Failure | None]]) -> dict[str, list[object]]:
    """Several results as the multi-row statements' array parameters
    (``output_encodings``, ``outputs``, ``errors``), each as `result_params`."""
    each = [result_params(output, error) for output, error in results]
    return {f"{key}s": [one[key] for one in each] for key in ("output_encoding", "output", "error")}


async def record_many(tx: Tx, news: list[NewStep]) -> list[Step]:
    """Appends several steps in one statement, each as :func:`record` would.

    Returns the steps written; one missing from the result was not written
    (stale, or recorded before), and :func:`record` tells which. A single step
    goes through :func:`record`'s statement (no arrays to build and unpack).
    """
    if len(news) == 1:
        step = await record(tx, news[0])
        return [step] if step is not None else []
    rows = await tx.fetch(
        "record_steps",
        {
            "workflow_ids": [n.workflow_id for n in news],
            "function_ids": [n.function_id for n in news],
            "step_names": [n.step_name for n in news],
            **result_arrays([(n.output, n.error) for n in news]),
            "attempts": [n.attempt for n in news],
            "started_ats": [n.started_at for n in news],
        },
    )
    sent = {(n.workflow_id, n.function_id, n.attempt): n for n in news}
    return [
        sent[row["workflow_id"], row["function_id"], row["attempt"]].recorded(row["completed_at"])
        for row in rows
    ]


async def get(tx: Tx, workflow_id: str, function_id: int) -> Step | None:
    """One recorded step, if any."""
    row = await tx.fetch_one("get_step", {"workflow_id": workflow_id, "function_id": function_id})
    return Step.from_row(row) if row else None


async def list_page(tx: Tx, workflow_id: str, *, after: int, limit: int) -> list[Step]:
    """Up to ``limit`` steps numbered above ``after``, in order."""
    rows = await tx.fetch(
        "list_steps", {"workflow_id": workflow_id, "after": after, "limit": limit}
    )
    return [Step.from_row(row) for row in rows]


async def journals(tx: Tx, workflow_ids: list[str]) -> dict[str, list[Step]]:
    """The journals of several workflows, each in step order."""
    found: dict[str, list[Step]] = {workflow_id: [] for workflow_id in workflow_ids}
    for row in await tx.fetch("journals", {"workflow_ids": workflow_ids}):
        found[row["workflow_id"]].append(Step.from_row(row))
    return found


async def record_child(tx: Tx, new: NewStep, child_workflow_id: str) -> Step | None:
    """Records the step that started ``child_workflow_id``; ``None`` as for :func:`record`."""
    row = await tx.fetch_one(
        "record_child_step", {**params(new), "child_workflow_id": child_workflow_id}
    )
    return Step.from_row(row) if row else None
