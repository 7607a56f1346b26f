"""The fixed cost of one RPC, layer by layer (by hand, not in the tests).

    .venv/bin/python bench/rpc_cost.py [--database-url URL] [-n 300] [--rounds 3] [--pause S]
                                       [--idle MS]

(``--pause`` waits after the server starts, e.g. to attach py-spy to the pid it prints.
``--idle`` leaves the processes idle that long between two calls, as a W1 client is
while its workflow runs: on a virtual machine, a call after an idle spell pays for
waking every thread it crosses. The CPU columns then also count what the server
does meanwhile, its background rounds, a few microseconds per call.)

Starts a server process on loopback against a fresh database (dropped at the
end) and times N sequential calls of each RPC through each path:

- ``grpc sync stub`` / ``grpc.aio stub``: the generated stub on a plain
  channel, no SDK;
- ``baton.Client`` / ``baton.AsyncClient``: the SDK;
- ``Health.Check`` (grpc sync stub): an RPC through the server's interceptors
  that touches no database: the gRPC + interceptor floor;
- ``server's engine, in-process``: the server's own engine calls (pool,
  transactions, store) without gRPC, in this process: the database part of
  the server as it is written;
- ``psycopg sync, autocommit``: the same SELECT on one plain connection: the
  floor of one Postgres round trip.

The RPCs: GetWorkflow of a finished (cancelled) workflow (one SELECT), and StartWorkflow
onto a queue no worker serves (the workflow stays ENQUEUED, so no dispatch
runs). Rounds interleave the paths so that load from elsewhere on the machine
spreads over all of them; p50/p99 are over every call of every round. CPU
columns: microseconds of CPU per call, of the server process and of this
(client) process.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import psutil
import psycopg
from common import bench_parser, create_database, drop_database, percentile  # bench/common.py
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg.rows import dict_row

from baton import AsyncClient, Client
from baton._proto.baton.v1 import common_pb2, workflow_service_pb2, workflow_service_pb2_grpc
from baton_server.config import Config
from baton_server.connector import Connector
from baton_server.engine.engine import Engine
from baton_server.queries import query
from baton_server.store.models import Payload
from baton_server.store.starts import NewStart

QUEUE = "rpccost"
NAME = "three_noops"


@dataclass
class Sample:
    """The calls of one (path, rpc) over all rounds."""

    millis: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    calls: int = 0


class Bench:
    """The targets and the running totals of one run."""

    def __init__(
        self, target: str, url: str, server_pid: int, n: int, idle_seconds: float = 0.0
    ) -> None:
        self.target = target
        self.url = url
        self.server = psutil.Process(server_pid)
        self.n = n
        self.idle_seconds = idle_seconds
        self.done_id = ""
        self.samples: dict[tuple[str, str], Sample] = {}

    def _server_cpu(self) -> float:
        times = self.server.cpu_times()
        return float(times.user + times.system)

    def timed(self, path: str, rpc: str, call: Callable[[int], object]) -> None:
        """Runs ``call(i)`` for i < n (after a few untimed ones) and records it."""
        for i in range(10):
            call(-1 - i)
        sample = self.samples.setdefault((path, rpc), Sample())
        cpu0, own0 = self._server_cpu(), time.process_time()
        for i in range(self.n):
            began = time.perf_counter()
            call(i)
            sample.millis.append((time.perf_counter() - began) * 1000)
            if self.idle_seconds:
                time.sleep(self.idle_seconds)
        sample.server_cpu += self._server_cpu() - cpu0
        sample.client_cpu += time.process_time() - own0
        sample.calls += self.n

    async def timed_async(
        self, path: str, rpc: str, call: Callable[[int], Awaitable[object]]
    ) -> None:
        """`timed` for a coroutine function."""
        for i in range(10):
            await call(-1 - i)
        sample = self.samples.setdefault((path, rpc), Sample())
        cpu0, own0 = self._server_cpu(), time.process_time()
        for i in range(self.n):
            began = time.perf_counter()
            await call(i)
            sample.millis.append((time.perf_counter() - began) * 1000)
            if self.idle_seconds:
                await asyncio.sleep(self.idle_seconds)
        sample.server_cpu += self._server_cpu() - cpu0
        sample.client_cpu += time.process_time() - own0
        sample.calls += self.n


def _ids(prefix: str, round_: int) -> Callable[[int], str]:
    tag = uuid.uuid4().hex[:6]
    return lambda i: f"{prefix}-{round_}-{tag}-{i}"


def _start_request(workflow_id: str) -> workflow_service_pb2.StartWorkflowRequest:
    return workflow_service_pb2.StartWorkflowRequest(
        workflow_name=NAME,
        workflow_id=workflow_id,
        input=common_pb2.Payload(json="[1]"),
        queue=QUEUE,
    )


def grpc_sync(bench: Bench, round_: int) -> None:
    with grpc.insecure_channel(bench.target) as channel:
        stub: Any = workflow_service_pb2_grpc.WorkflowServiceStub(channel)  # type: ignore[no-untyped-call]
        get = workflow_service_pb2.GetWorkflowRequest(workflow_id=bench.done_id)
        bench.timed("grpc sync stub", "GetWorkflow", lambda i: stub.GetWorkflow(get, timeout=30))
        ids = _ids("gs", round_)
        bench.timed(
            "grpc sync stub",
            "StartWorkflow",
            lambda i: stub.StartWorkflow(_start_request(ids(i)), timeout=30),
        )
        health: Any = health_pb2_grpc.HealthStub(channel)
        check = health_pb2.HealthCheckRequest()
        bench.timed("grpc sync stub", "Health.Check (no DB)", lambda i: health.Check(check))


async def _grpc_aio(bench: Bench, round_: int) -> None:
    async with grpc.aio.insecure_channel(bench.target) as channel:
        stub: Any = workflow_service_pb2_grpc.WorkflowServiceStub(channel)  # type: ignore[no-untyped-call]
        get = workflow_service_pb2.GetWorkflowRequest(workflow_id=bench.done_id)

        async def get_one(i: int) -> object:
            return await stub.GetWorkflow(get, timeout=30)

        ids = _ids("ga", round_)

        async def start_one(i: int) -> object:
            return await stub.StartWorkflow(_start_request(ids(i)), timeout=30)

        await bench.timed_async("grpc.aio stub", "GetWorkflow", get_one)
        await bench.timed_async("grpc.aio stub", "StartWorkflow", start_one)


def grpc_aio(bench: Bench, round_: int) -> None:
    asyncio.run(_grpc_aio(bench, round_))


def sdk_sync(bench: Bench, round_: int) -> None:
    with Client(bench.target) as client:
        bench.timed("baton.Client", "GetWorkflow", lambda i: client.get_workflow(bench.done_id))
        ids = _ids("cs", round_)
        bench.timed(
            "baton.Client",
            "StartWorkflow",
            lambda i: client.start_workflow(NAME, 1, workflow_id=ids(i), queue=QUEUE),
        )


async def _sdk_async(bench: Bench, round_: int) -> None:
    async with AsyncClient(bench.target) as client:

        async def get_one(i: int) -> object:
            return await client.get_workflow(bench.done_id)

        ids = _ids("ca", round_)

        async def start_one(i: int) -> object:
            return await client.start_workflow(NAME, 1, workflow_id=ids(i), queue=QUEUE)

        await bench.timed_async("baton.AsyncClient", "GetWorkflow", get_one)
        await bench.timed_async("baton.AsyncClient", "StartWorkflow", start_one)


def sdk_async(bench: Bench, round_: int) -> None:
    asyncio.run(_sdk_async(bench, round_))


async def _engine(bench: Bench, round_: int) -> None:
    path = "server's engine, in-process"
    connector = Connector(bench.url, min_size=1, max_size=2)
    await connector.open()
    engine = Engine(connector, Config(database_url=bench.url))  # not started: no loops
    try:

        async def get_one(i: int) -> object:
            return await engine.get_workflow(bench.done_id)

        ids = _ids("en", round_)

        async def start_one(i: int) -> object:
            return await engine.starts.start_one(
                NewStart(ids(i), NAME, Payload("json", b"[1]"), queue=QUEUE)
            )

        await bench.timed_async(path, "GetWorkflow", get_one)
        await bench.timed_async(path, "StartWorkflow", start_one)
    finally:
        await connector.close()


def engine(bench: Bench, round_: int) -> None:
    asyncio.run(_engine(bench, round_))


def psycopg_sync(bench: Bench, round_: int) -> None:
    with psycopg.connect(bench.url, autocommit=True, row_factory=dict_row) as conn:
        text: Any = query("get_workflow")
        params = {"workflow_id": bench.done_id}
        bench.timed(
            "psycopg sync, autocommit",
            "GetWorkflow",
            lambda i: conn.execute(text, params, prepare=True).fetchone(),
        )


PATHS = [grpc_sync, grpc_aio, sdk_sync, sdk_async, engine, psycopg_sync]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("-n", type=int, default=300, help="calls per path, RPC and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all paths")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds to wait after start (to attach py-spy)"
    )
    parser.add_argument(
        "--idle", type=float, default=0.0, help="milliseconds idle between two calls (default 0)"
    )
    args = parser.parse_args()

    url = create_database(args.database_url, "baton_bench_rpc")
    server = subprocess.Popen(
        [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
         "--database-url", url, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        assert server.stdout is not None
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))  # type: ignore[union-attr]
        print(f"server pid {server.pid}, port {port}", file=sys.stderr, flush=True)
        bench = Bench(f"127.0.0.1:{port}", url, server.pid, args.n, args.idle / 1000)
        with Client(bench.target) as client:
            client.upsert_queue(QUEUE)
            # A finished workflow: GetWorkflow reads one row and nothing else.
            bench.done_id = client.start_workflow(NAME, 1, queue=QUEUE).workflow_id
            client.cancel_workflow(bench.done_id)
        time.sleep(args.pause)
        for round_ in range(args.rounds):
            for path in PATHS:
                path(bench, round_)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        drop_database(args.database_url, url)
    after = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(table(bench))
    idle = f", {args.idle:g} ms idle between calls" if args.idle else ""
    print(
        f"\n{args.rounds} rounds x {args.n} calls{idle}; load average before {load}, after {after}"
    )


def table(bench: Bench) -> str:
    """A Markdown table, one row per (rpc, path)."""
    lines = [
        "| RPC | path | p50 ms | p99 ms | server CPU µs/call | client CPU µs/call |",
        "|---|---|---|---|---|---|",
    ]
    for (path, rpc), s in sorted(bench.samples.items(), key=lambda kv: kv[0][1]):
        lines.append(
            f"| {rpc} | {path} | {percentile(s.millis, 0.5):.3f} | "
            f"{percentile(s.millis, 0.99):.3f} | {s.server_cpu / s.calls * 1e6:.0f} | "
            f"{s.client_cpu / s.calls * 1e6:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
