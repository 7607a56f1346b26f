"""The checkout example (examples/checkout) runs as its README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ThreadServer
from tests.e2e.comms.conftest import ROOT

EXAMPLE = ROOT / "examples" / "checkout"


def _env(target: str) -> dict[str, str]:
    return {**os.environ, "BATON_TARGET": target, "PYTHONPATH": str(ROOT)}


def test_the_checkout_example_publishes_a_url_waits_for_the_webhook_and_streams_progress(
    server: ThreadServer, tmp_path: Path
) -> None:
    env = _env(server.target)
    worker = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "worker.py")],
        env=env,
        stderr=open(tmp_path / "worker.log", "wb"),  # noqa: SIM115
    )
    try:
        shop = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "shop.py"), "42"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert shop.stdout is not None
        first = shop.stdout.readline()
        assert first.startswith("pay at: https://pay.example/session/42-")
        webhook = subprocess.run(
            [sys.executable, str(EXAMPLE / "webhook.py"), "42"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert webhook.returncode == 0, webhook.stderr
        rest, _ = shop.communicate(timeout=60)
        assert shop.returncode == 0
        assert rest.splitlines() == [
            "progress: inventory reserved",
            "progress: waiting for payment",
            "progress: paid",
            "progress: shipped parcel-42",
            "outcome: done",
        ]
    finally:
        worker.kill()
        worker.wait(timeout=10)
