"""A worker process that hosts only a step (no workflow): ``resize_image``,
called by name from workflows running on other workers.

``EFFECTS_URL`` gets a ``resize_image`` effect per run (with this pid);
``HANG_IN=resize_image`` makes the step block after recording its effect;
``SLOW_SECONDS`` makes it take that long, each run's start and end recorded
in ``runs``; ``STEP_SLOTS`` is the worker's ``step_concurrency``.
"""

from __future__ import annotations

import os
import time

import psycopg

from baton import Worker

worker = Worker(
    os.environ["BATON_TARGET"], step_concurrency=int(os.environ.get("STEP_SLOTS", "16"))
)


@worker.step()
def resize_image(workflow_id: str, width: int) -> dict[str, int]:
    with psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO effects (step, workflow_id, pid) VALUES (%s, %s, %s)",
            ("resize_image", workflow_id, os.getpid()),
        )
    if os.environ.get("HANG_IN") == "resize_image":
        while True:
            time.sleep(3600)
    if "SLOW_SECONDS" in os.environ:
        with psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True) as conn:
            conn.execute(
                "INSERT INTO runs (workflow_id, label, pid) VALUES (%s, 'resize', %s)",
                (workflow_id, os.getpid()),
            )
            time.sleep(float(os.environ["SLOW_SECONDS"]))
            conn.execute(
                "UPDATE runs SET ended_at = clock_timestamp() WHERE workflow_id = %s",
                (workflow_id,),
            )
    return {"width": width // 2, "pid": os.getpid()}


if __name__ == "__main__":
    worker.run()
