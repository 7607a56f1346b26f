"""The floor of W1's shape: the same messages as a Baton workflow, with nothing else.

    .venv/bin/python bench/floor.py [--database-url URL] [-n 500] [--timeline]

W1 (one 3-step workflow at a time, start -> result) crosses three Python
processes. This script builds that chain out of bare parts and times it, so
that Baton's W1 can be read against what the shape itself costs here:

- a ``grpc.aio`` server process (generic handlers, payloads as raw bytes);
- a worker process holding one bidirectional stream to it, whose workflow
  runs in a thread like a plain ``def`` workflow in ``baton.Worker``: each of
  its three steps hands a checkpoint to the event loop, which sends it on the
  stream, and the thread waits for the server's answer before the next step;
  its event loop is uvloop's where installed, as ``baton.Worker.run``'s is
  (``FLOOR_WORKER_LOOP=asyncio`` keeps asyncio's);
- a sync ``grpc`` client (this process) calling Start, then Await.

One workflow's messages: Start (client -> server, answered), the dispatch
(server -> worker), three checkpoints (worker -> server, each answered),
the completion (worker -> server), Await's answer (server -> client).

Rows, each over N sequential workflows:

- ``messages only``: the chain above, no database;
- ``+ 5 commits``: the server also writes what Baton writes (the start, three
  steps, the completion), one autocommit statement each, on one dedicated
  psycopg async connection (tables of its own in a fresh database);
- ``+ 5 commits, start waits``: as above, but Start answers only when the
  workflow has finished (one client call instead of two);
- ``asyncio worker, messages only``: the steps run on the worker's event
  loop (an ``async def`` workflow), no thread hop, no database;
- ``asyncio worker, + 5 commits, start waits``: the same with the five
  commits and one client call: the bare counterpart of Baton's ``async def``
  W1 row, with one commit and one round trip more than Baton (which sends the
  last step and the completion together and writes them in one statement), as
  in the other commit rows.

CPU columns: milliseconds of CPU per workflow in the server and the worker.

``--timeline`` runs only the ``+ 5 commits, start waits`` row and prints its
hop-by-hop table, in the form and with the mark names of ``bench/timeline.py``
(where they mean the same hand-off), so that Baton's W1 can be read against
the bare shape hop by hop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import psycopg
from common import bench_parser, create_database, drop_database, percentile, read_line
from timeline import table

_MARKS = "FLOOR_TIMELINE_DIR"
_marks_file: Any = None


def mark(name: str) -> None:
    """With ``--timeline``: records that this process reached ``name`` now
    (as ``baton._timeline.mark`` does in timeline.py's patched copy)."""
    global _marks_file
    folder = os.environ.get(_MARKS)
    if not folder:
        return
    if _marks_file is None:
        _marks_file = open(f"{folder}/{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115
    _marks_file.write(f"{time.monotonic_ns()} {name}\n")


SERVICE = "floor.Floor"
IDENTITY: Any = None  # bytes in, bytes out: no (de)serializer

SCHEMA = """
CREATE TABLE IF NOT EXISTS wf (id text PRIMARY KEY, status text NOT NULL, output bytea);
CREATE TABLE IF NOT EXISTS step (wf text NOT NULL, n int NOT NULL, output bytea,
                                 PRIMARY KEY (wf, n));
"""


# --- server --------------------------------------------------------------------------


class Server:
    """Start -> dispatch on the worker's stream; checkpoint -> (write) -> answer;
    completion -> (write) -> Await's answer."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.db: psycopg.AsyncConnection[Any] | None = None
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.finished: dict[str, asyncio.Future[bytes]] = {}

    async def write(self, sql: str, *args: Any) -> None:
        if self.db is not None:
            await self.db.execute(sql, args)

    def future(self, wf: str) -> asyncio.Future[bytes]:
        if wf not in self.finished:
            self.finished[wf] = asyncio.get_running_loop().create_future()
        return self.finished[wf]

    async def start(self, request: bytes, context: Any) -> bytes:
        wait, wf = request[:1] == b"w", request[1:].decode()
        mark("s.start_in")
        await self.write("INSERT INTO wf (id, status) VALUES (%s, 'PENDING')", wf)
        self.future(wf)
        mark("s.started")
        self.outbox.put_nowait(b"D" + wf.encode())
        if wait:
            done = await self.result(wf)
            mark("s.start_out")
            return done
        return b"ok"

    async def await_(self, request: bytes, context: Any) -> bytes:
        return await self.result(request.decode())

    async def result(self, wf: str) -> bytes:
        done = await self.future(wf)
        del self.finished[wf]
        return done

    async def connect(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async def read() -> None:
            async for message in requests:
                kind, rest = message[:1], message[1:].decode()
                mark("s.msg_in")
                if kind == b"S":  # step checkpoint: "S<wf>:<n>"
                    wf, n = rest.split(":")
                    mark("s.step_sql")
                    await self.write(
                        "INSERT INTO step (wf, n, output) VALUES (%s, %s, %s)", wf, int(n), b"x"
                    )
                    mark("s.step_sql_done")
                    self.outbox.put_nowait(b"A" + message[1:])
                else:  # completion: "C<wf>"
                    mark("s.compl_sql")
                    await self.write(
                        "UPDATE wf SET status = 'SUCCESS', output = %s WHERE id = %s", b"x", rest
                    )
                    mark("s.compl_sql_done")
                    self.future(rest).set_result(b"done")

        reader = asyncio.create_task(read())
        try:
            while True:
                message = await self.outbox.get()
                mark("s.answer_yield" if message[:1] == b"A" else "s.dispatch_yield")
                yield message
        finally:
            reader.cancel()

    async def serve(self) -> None:
        if self.url:
            self.db = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            await self.db.execute(SCHEMA)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    SERVICE,
                    {
                        "Start": grpc.unary_unary_rpc_method_handler(self.start),
                        "Await": grpc.unary_unary_rpc_method_handler(self.await_),
                        "Connect": grpc.stream_stream_rpc_method_handler(self.connect),
                    },
                )
            ]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(f"port {port}", flush=True)
        await server.wait_for_termination()


# --- worker --------------------------------------------------------------------------


class Worker:
    """One stream; each dispatch runs a 3-step workflow in a thread (or, with
    ``on_loop``, as a coroutine on the loop)."""

    def __init__(self, target: str, on_loop: bool) -> None:
        self.target = target
        self.on_loop = on_loop
        self.send: asyncio.Queue[bytes] = asyncio.Queue()
        self.answers: dict[bytes, asyncio.Future[None]] = {}
        self.pool = concurrent.futures.ThreadPoolExecutor(4)
        self.running: set[asyncio.Task[None]] = set()

    async def checkpoint(self, key: bytes) -> None:
        answered = asyncio.get_running_loop().create_future()
        self.answers[key] = answered
        self.send.put_nowait(b"S" + key)
        await answered

    def run_in_thread(self, wf: str, loop: asyncio.AbstractEventLoop) -> None:
        for n in range(3):
            key = f"{wf}:{n}".encode()
            mark("w.step_begin")
            asyncio.run_coroutine_threadsafe(self.checkpoint(key), loop).result()
        mark("w.exec_done")
        loop.call_soon_threadsafe(self.send.put_nowait, b"C" + wf.encode())

    async def run_on_loop(self, wf: str) -> None:
        for n in range(3):
            await self.checkpoint(f"{wf}:{n}".encode())
        self.send.put_nowait(b"C" + wf.encode())

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        async with grpc.aio.insecure_channel(self.target) as channel:
            call = channel.stream_stream(f"/{SERVICE}/Connect")(self.outgoing())
            print("connected", flush=True)
            async for message in call:
                kind, rest = message[:1], message[1:]
                mark("w.dispatch_in" if kind == b"D" else "w.answer_in")
                if kind == b"D":
                    wf = rest.decode()
                    if self.on_loop:
                        task = asyncio.create_task(self.run_on_loop(wf))
                        self.running.add(task)
                        task.add_done_callback(self.running.discard)
                    else:
                        loop.run_in_executor(self.pool, self.run_in_thread, wf, loop)
                else:
                    self.answers.pop(rest).set_result(None)

    async def outgoing(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.send.get()
            mark("w.ckpt_yield")
            yield message


# --- the runner (this process) -------------------------------------------------------


def run_case(
    label: str, url: str | None, n: int, *, on_loop: bool = False, start_waits: bool = False
) -> list[str]:
    """One row of the table: ``label``, p50 and p99 (ms), server and worker CPU
    ms per workflow."""
    millis, used = time_case(url, n, on_loop=on_loop, start_waits=start_waits)
    return [
        label,
        f"{percentile(millis, 0.5):.2f}",
        f"{percentile(millis, 0.99):.2f}",
        f"{used['server']:.2f}",
        f"{used['worker']:.2f}",
    ]


def time_case(
    url: str | None, n: int, *, on_loop: bool = False, start_waits: bool = False
) -> tuple[list[float], dict[str, float]]:
    """Starts the bare server (with five commits per workflow on ``url``; none
    without) and worker, runs ``n`` workflows one at a time after a warm-up;
    the milliseconds of each, and the CPU ms per workflow of ``server`` and
    ``worker``."""
    me = [sys.executable, __file__]
    server = subprocess.Popen(
        [*me, "server", url or ""], stdout=subprocess.PIPE, text=True
    )  # fmt: skip
    worker = None
    try:
        assert server.stdout is not None
        target = "127.0.0.1:" + read_line(server.stdout, timeout=30).split()[1]
        mode = "loop" if on_loop else "thread"
        worker = subprocess.Popen([*me, "worker", target, mode], stdout=subprocess.PIPE, text=True)
        assert worker.stdout is not None
        read_line(worker.stdout, timeout=30)
        procs = {"server": psutil.Process(server.pid), "worker": psutil.Process(worker.pid)}
        with grpc.insecure_channel(target) as channel:
            start = channel.unary_unary(f"/{SERVICE}/Start")
            await_ = channel.unary_unary(f"/{SERVICE}/Await")

            def one(i: int) -> None:
                wf = f"{uuid.uuid4().hex[:12]}-{i}".encode()
                mark("c.start_begin")
                if start_waits:
                    start(b"w" + wf, timeout=10)
                else:
                    start(b"s" + wf, timeout=10)
                    await_(wf, timeout=10)
                mark("c.result_end")

            for i in range(50):  # warm up
                one(-i - 1)
            cpu = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
            millis = []
            mark("c.counted")
            for i in range(n):
                began = time.perf_counter()
                one(i)
                millis.append((time.perf_counter() - began) * 1000)
            used = {k: (sum(p.cpu_times()[:2]) - cpu[k]) * 1000 / n for k, p in procs.items()}
        return millis, used
    finally:
        for proc in (worker, server):
            if proc is not None:
                proc.kill()
                proc.wait()


def uvloop_factory() -> Any:
    """uvloop's event loop factory, or ``None`` where it is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "server":
        asyncio.run(Server(sys.argv[2] or None).serve())
        return
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        # On uvloop where installed, as `baton.Worker.run` is (FLOOR_WORKER_LOOP=asyncio: not).
        factory = None if os.environ.get("FLOOR_WORKER_LOOP") == "asyncio" else uvloop_factory()
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(Worker(sys.argv[2], sys.argv[3] == "loop").serve())
        return
    parser = bench_parser(__doc__)
    parser.add_argument("-n", type=int, default=500, help="workflows per row (default 500)")
    parser.add_argument(
        "--timeline", action="store_true", help="one row, hop by hop (see the docstring)"
    )
    args = parser.parse_args()
    url = create_database(args.database_url, "floor")
    if args.timeline:
        try:
            with tempfile.TemporaryDirectory(prefix="floor-timeline-") as marks:
                os.environ[_MARKS] = marks  # the server and worker inherit it
                run_case("+ 5 commits, start waits", url, args.n, start_waits=True)
                print("\n".join(table(Path(marks))))
        finally:
            drop_database(args.database_url, url)
        return
    try:
        rows = [
            run_case("messages only", None, args.n),
            run_case("+ 5 commits", url, args.n),
            run_case("+ 5 commits, start waits", url, args.n, start_waits=True),
            run_case("asyncio worker, messages only", None, args.n, on_loop=True),
            run_case(
                "asyncio worker, + 5 commits, start waits",
                url,
                args.n,
                on_loop=True,
                start_waits=True,
            ),
        ]
    finally:
        drop_database(args.database_url, url)
    print("| W1's shape, bare | p50 (ms) | p99 (ms) | server CPU ms/wf | worker CPU ms/wf |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nthreads: {threading.active_count()}; n = {args.n}")


if __name__ == "__main__":
    main()
