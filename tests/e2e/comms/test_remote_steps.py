"""Remote steps: a step hosted by one worker, called by name from a workflow
running on another; routed again when its worker dies."""

from __future__ import annotations

import os
import signal

from baton import Client
from tests.conftest import ThreadServer
from tests.e2e.comms.conftest import STEPS_APP
from tests.e2e.conftest import effects, wait_until


def test_a_step_hosted_only_by_a_second_worker_completes_a_workflow_on_the_first(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    workflows = spawn_comms(server.target)
    steps = spawn_comms(server.target, app=STEPS_APP)
    with Client(server.target) as client:
        handle = client.start_workflow("uses_remote_step", 640, workflow_id="remote")
        result = handle.result(timeout=60)
        recorded = client.list_steps("remote")
    assert result == {"resized": {"width": 320, "pid": steps.pid}, "runs_here": workflows.pid}
    assert (recorded[0].name, recorded[0].output) == (
        "resize_image",
        {"width": 320, "pid": steps.pid},
    )
    assert effects(effects_url, "remote") == [
        ("resize_image", steps.pid),
        ("after_remote", workflows.pid),
    ]


def test_killing_the_step_s_worker_mid_step_reruns_it_on_a_third(
    server: ThreadServer, spawn_comms, effects_url: str
) -> None:
    spawn_comms(server.target)
    doomed = spawn_comms(server.target, app=STEPS_APP, HANG_IN="resize_image")
    with Client(server.target) as client:
        handle = client.start_workflow("uses_remote_step", 100, workflow_id="remote-kill")
        wait_until(lambda: effects(effects_url, "remote-kill"), 30, "the step to start")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        third = spawn_comms(server.target, app=STEPS_APP)
        result = handle.result(timeout=60)
    assert result["resized"] == {"width": 50, "pid": third.pid}
    assert [pid for step, pid in effects(effects_url, "remote-kill") if step == "resize_image"] == [
        doomed.pid,
        third.pid,
    ]
