"""Patching: ``ctx.patch`` decides from the journal on replay, so a workflow
that ran under the old code keeps its path and a new one takes the new path."""

from __future__ import annotations

from baton import WorkflowContext
from baton._context import ContextCore
from baton._proto.baton.v1 import common_pb2
from tests.unit.contexts import offline_core


def _core(journal: list[common_pb2.Step]) -> ContextCore:
    # No rpc and no loop: deciding from the journal must not reach the service.
    return offline_core(journal)


def _step(function_id: int, name: str) -> common_pb2.Step:
    return common_pb2.Step(
        function_id=function_id, step_name=name, output=common_pb2.Payload(json="null")
    )


def test_a_workflow_that_passed_the_patch_point_under_old_code_takes_the_old_path() -> None:
    core = _core([_step(1, "first"), _step(2, "old_way")])
    core.claim("first")
    assert WorkflowContext(core).patch("new-way") is False
    # The step number was not taken: the old step replays under it.
    assert core.claim("old_way")[0] == 2


def test_a_workflow_that_recorded_the_patch_replays_the_new_path() -> None:
    core = _core([_step(1, "first"), _step(2, "baton.patch:new-way"), _step(3, "new_way")])
    core.claim("first")
    assert WorkflowContext(core).patch("new-way") is True
    assert core.claim("new_way")[0] == 3


def test_a_deprecated_patch_skips_its_marker_and_records_nothing() -> None:
    patched = _core([_step(1, "baton.patch:new-way"), _step(2, "new_way")])
    assert WorkflowContext(patched).deprecate_patch("new-way") is True
    assert patched.claim("new_way")[0] == 2
    fresh = _core([])
    assert WorkflowContext(fresh).deprecate_patch("new-way") is True
    assert fresh.claim("new_way")[0] == 1
