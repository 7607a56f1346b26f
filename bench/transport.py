"""What one round trip between two Python processes costs here, by transport
(by hand, not in the tests; no database).

    .venv/bin/python bench/transport.py [-n 400] [--idle 0,2]

W1 crosses processes eight times (four round trips: client-server, and
server-worker for the dispatch and each checkpoint). This script times the
smallest such exchange, an 8-byte echo, one at a time, between this process
and a server process on loopback, through:

- ``tcp, asyncio``: a plain asyncio TCP stream on both sides (what the
  kernel and the event loops cost);
- ``grpc.aio stream``: a ``grpc.aio`` bidirectional stream, as the worker's
  ``Connect`` is, raw bytes, no protobuf;
- ``grpc sync stream``: the same stream from grpc's sync stub;
- ``grpc.aio unary``: one unary call per exchange, as a client's call is.

Both sides run on uvloop, as ``baton serve`` and ``baton.Worker`` do.
``--idle`` sleeps that many milliseconds between exchanges (W1's processes
each sit idle while the others work); each value makes its own rows.

CPU columns: microseconds of CPU per exchange in the server process, split
into its event loop's thread, gRPC's poller thread (the one that hands
completions to the loop) and gRPC's ``event_engine`` threads, and in this
(client) process.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine

import grpc
import psutil
import uvloop
from common import free_port, percentile, read_line

_SERVICE = "bench.Echo"
_PAYLOAD = b"12345678"

Exchange = Callable[[], None] | Callable[[], Coroutine[object, object, None]]


def _serve(kind: str, port: int) -> None:
    async def echo_stream(requests: object, context: object) -> object:
        async for message in requests:  # type: ignore[attr-defined]
            yield message

    async def echo_unary(request: bytes, context: object) -> bytes:
        return request

    async def grpc_server() -> None:
        server = grpc.aio.server()
        handlers = {
            "Stream": grpc.stream_stream_rpc_method_handler(echo_stream),
            "Unary": grpc.unary_unary_rpc_method_handler(echo_unary),
        }
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(_SERVICE, handlers)])
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    async def tcp_server() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    writer.write(await reader.readexactly(len(_PAYLOAD)))
            except asyncio.IncompleteReadError:
                writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", port)
        print("ready", flush=True)
        await server.serve_forever()

    uvloop.run(grpc_server() if kind == "grpc" else tcp_server())


class _Threads:
    """CPU seconds of a process's threads, grouped by what they are."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._pid = pid

    def _group(self, tid: int) -> str:
        if tid == self._pid:
            return "loop"
        try:
            with open(f"/proc/{self._pid}/task/{tid}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            return "other"
        return (
            "event_engine" if name == "event_engine" else "poller" if name == "python" else "other"
        )

    def sample(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for thread in self._process.threads():
            group = self._group(thread.id)
            totals[group] = totals.get(group, 0.0) + thread.user_time + thread.system_time
        return totals


def _timed(
    n: int, idle: float, exchange: Exchange, loop: asyncio.AbstractEventLoop, server: _Threads
) -> dict[str, float]:
    """Times ``n`` exchanges, one at a time; an ``async`` one runs them all
    in one coroutine on ``loop``, as a program on an event loop would."""
    seconds: list[float] = []

    def run_sync() -> None:
        assert not asyncio.iscoroutinefunction(exchange)
        for _ in range(n):
            began = time.perf_counter()
            exchange()
            seconds.append(time.perf_counter() - began)
            if idle:
                time.sleep(idle)

    async def run_async() -> None:
        assert asyncio.iscoroutinefunction(exchange)
        for _ in range(n):
            began = time.perf_counter()
            await exchange()
            seconds.append(time.perf_counter() - began)
            if idle:
                time.sleep(idle)  # the loop sits idle too

    def run() -> None:
        if asyncio.iscoroutinefunction(exchange):
            loop.run_until_complete(run_async())
        else:
            run_sync()

    run()  # connected and warm
    seconds.clear()
    me = psutil.Process()
    before, mine = server.sample(), me.cpu_times()
    run()
    after, mine_after = server.sample(), me.cpu_times()
    row = {
        "p50": percentile(seconds, 0.5) * 1e6,
        "p90": percentile(seconds, 0.9) * 1e6,
        "client": (sum(mine_after[:2]) - sum(mine[:2])) / n * 1e6,
    }
    for group in ("loop", "poller", "event_engine"):
        row[group] = (after.get(group, 0.0) - before.get(group, 0.0)) / n * 1e6
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=400, help="exchanges per row")
    parser.add_argument(
        "--idle", default="0,2", help="milliseconds idle between exchanges, comma-separated"
    )
    args = parser.parse_args()
    idles = [float(value) / 1000 for value in args.idle.split(",")]

    grpc_port, tcp_port = free_port(), free_port()
    servers = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for kind, port in (("grpc", grpc_port), ("tcp", tcp_port))
    ]
    try:
        for server in servers:
            assert server.stdout is not None
            read_line(server.stdout, timeout=30)
        grpc_threads, tcp_threads = (_Threads(server.pid) for server in servers)
        loop = uvloop.new_event_loop()

        async def tcp_connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection("127.0.0.1", tcp_port)

        reader, writer = loop.run_until_complete(tcp_connect())

        async def tcp_exchange() -> None:
            writer.write(_PAYLOAD)
            await reader.readexactly(len(_PAYLOAD))

        async def aio_parts() -> tuple[grpc.aio.Channel, object]:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
            return channel, channel.stream_stream(f"/{_SERVICE}/Stream")()

        channel, call = loop.run_until_complete(aio_parts())
        unary = channel.unary_unary(f"/{_SERVICE}/Unary")

        async def aio_stream_exchange() -> None:
            await call.write(_PAYLOAD)  # type: ignore[attr-defined]
            await call.read()  # type: ignore[attr-defined]

        async def aio_unary_exchange() -> None:
            await unary(_PAYLOAD)

        sync_channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        incoming = sync_channel.stream_stream(f"/{_SERVICE}/Stream")(iter(outgoing.get, None))

        def sync_exchange() -> None:
            outgoing.put(_PAYLOAD)
            next(incoming)

        paths: list[tuple[str, Exchange, _Threads]] = [
            ("tcp, asyncio", tcp_exchange, tcp_threads),
            ("grpc.aio stream", aio_stream_exchange, grpc_threads),
            ("grpc sync stream", sync_exchange, grpc_threads),
            ("grpc.aio unary", aio_unary_exchange, grpc_threads),
        ]
        rows = [
            (name, idle, _timed(args.n, idle, exchange, loop, threads))
            for idle in idles
            for name, exchange, threads in paths
        ]
        outgoing.put(None)
        sync_channel.close()
        loop.run_until_complete(channel.close())
        writer.close()
    finally:
        for server in servers:
            server.kill()
            server.wait()

    print(
        "| path | idle (ms) | p50 (µs) | p90 (µs)"
        " | server CPU µs: loop · poller · event_engine | client CPU µs |"
    )
    print("|---|---|---|---|---|---|")
    for name, idle, row in rows:
        cpu = f"{row['loop']:.0f} · {row['poller']:.0f} · {row['event_engine']:.0f}"
        timing = f"{row['p50']:.0f} | {row['p90']:.0f}"
        print(f"| {name} | {idle * 1000:g} | {timing} | {cpu} | {row['client']:.0f} |")
    print(f"\nn = {args.n} per row; CPU per exchange; the tcp rows' server has no grpc threads")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
