"""`baton serve` runs its replica on uvloop where it is installed, as
`Worker.run` runs a worker (bench/RESULTS.md says what it saves)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from baton_server import app, cli
from baton_server.config import Config

pytestmark = pytest.mark.timeout(10)


def test_baton_serve_runs_its_replica_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    loops: list[str] = []

    async def serve(config: Config, on_ready: Callable[[int], None] | None = None) -> None:
        loops.append(type(asyncio.get_running_loop()).__module__)

    monkeypatch.setattr(app, "serve", serve)
    monkeypatch.setattr(cli.logs, "configure", lambda *args, **kwargs: None)
    url = "postgresql://nobody@127.0.0.1:1/unused"
    assert cli.main(["serve", "--database-url", url, "--listen", "127.0.0.1:0"]) == 0
    assert len(loops) == 1
    assert loops[0].startswith("uvloop"), loops
