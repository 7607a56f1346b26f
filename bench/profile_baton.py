"""Where Baton's time goes: py-spy profiles of the server and the worker during
W1 or W2, with the RPCs and Postgres transactions each workflow costs.

    .venv/bin/python bench/profile_baton.py --workload w2 [--n 2000] [--out /tmp/baton-profile]

Starts ``baton serve`` (with its Prometheus endpoint) and one ``noop_app.py``
worker on a fresh database, warms up, then runs ``py-spy record --gil`` (raw
collapsed stacks of the thread holding the GIL, i.e. Python's CPU; C code that
releases the GIL, like grpc's core threads, is not seen) on both processes for
the length of the workload. Prints, per workflow: server RPCs by method (from
``baton_rpc_duration_seconds_count``) and committed Postgres transactions of
the database (``pg_stat_database``, read 11 s after each end so every backend
has reported; the lease and stats tasks add ~1 commit/s); CPU of the
server, the worker (each also by thread) and the database's Postgres backends;
and for each process the functions with the most samples (self and inclusive),
self time by package, and the servicers' inclusive shares. ``--all-threads``
samples every non-idle thread instead of the GIL holder. The raw stacks
stay in ``--out`` (load them into speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from common import HERE, Children, children, free_port, fresh_database, read_line

from baton import Client, WorkflowStart

RPC_COUNT = re.compile(r'^baton_rpc_duration_seconds_count\{code="OK",method="([^"]+)"\} (\S+)$')
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def start(kids: Children, url: str) -> tuple[int, int, str, int]:
    """Server and worker; their pids, the target and the metrics port."""
    metrics_port = free_port()
    server = kids.start(
        [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
         "--database-url", url, "--log-level", "WARNING",
         "--metrics-listen", f"127.0.0.1:{metrics_port}"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    found = re.search(r"port (\d+)", read_line(server.stdout, timeout=60))
    assert found is not None, "baton serve did not say its port"
    target = f"127.0.0.1:{found.group(1)}"
    worker = kids.start(
        [sys.executable, str(HERE / "noop_app.py")], env={"BATON_TARGET": target, "SLOTS": "200"}
    )
    return server.pid, worker.pid, target, metrics_port


def rpc_counts(metrics_port: int) -> Counter[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if found := RPC_COUNT.match(line):
            counts[found.group(1).rsplit("/", 1)[-1]] += int(float(found.group(2)))
    return counts


# A backend reports its counters at most once a second, and within 10 s of
# going idle (PostgreSQL 15), so the commit counter is read after this long.
_STATS_FLUSH_SECONDS = 11.0


def commits(url: str) -> int:
    """Committed transactions of the database so far (after the stats flush)."""
    time.sleep(_STATS_FLUSH_SECONDS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def workload(client: Client, name: str, n: int) -> float:
    """Runs W1 (one at a time) or W2 (all started in batches of 1,000 and
    awaited with ``as_completed``, as ``compare.py`` does); its seconds."""
    began = time.perf_counter()
    if name == "w1":
        for i in range(n):
            client.start_workflow("three_noops", i, workflow_id=f"p-{i}").result(timeout=60)
    else:
        starts = [WorkflowStart("three_noops", (i,), workflow_id=f"p-{i}") for i in range(n)]
        handles = []
        for first in range(0, n, 1000):
            for item in client.start_workflows(starts[first : first + 1000]):
                if isinstance(item, Exception):
                    raise item
                handles.append(item)
        for handle in client.as_completed(handles, 600):
            handle.result()
    return time.perf_counter() - began


def spy(kids: Children, pid: int, out: Path, all_threads: bool) -> subprocess.Popen[str]:
    py_spy = Path(sys.executable).parent / "py-spy"
    return kids.start(
        [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "100",
         "--output", str(out), "--nonblocking", *([] if all_threads else ["--gil"])],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each Postgres backend serving ``database`` (by pid)."""
    used = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and f" {database} " in f"{cmdline} ":
            with suppress(psutil.Error):
                times = proc.cpu_times()
                used[proc.pid] = float(times.user + times.system)
    return used


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``."""
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def inclusive_of(raw: Path, needles: list[str]) -> list[str]:
    """Inclusive sample share of the frames whose function name is in ``needles``."""
    hits: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        names = {_frame(f).split(" (")[0] for f in stack.split(";")}
        for needle in needles:
            if needle in names:
                hits[needle] += count
    return [f"{100 * hits[n] / max(total, 1):5.1f}%  {n}" for n in needles]


HANDLERS = [
    "WorkflowService.StartWorkflow",
    "WorkflowService.AwaitWorkflow",
    "WorkerService.RecordStep",
    "WorkerService.CompleteWorkflow",
    "WorkerService.Connect",
    "Dispatcher._round",
    "Connector.transaction",
    "AsyncConnection.wait",
]


def top_functions(raw: Path, limit: int) -> list[str]:
    """The ``limit`` functions with most samples, as 'self% incl% function (file)'."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    rows = [f"{'self':>6} {'incl':>6}  function  ({total} samples)"]
    for frame, count in own.most_common(limit):
        rows.append(f"{100 * count / total:5.1f}% {100 * inclusive[frame] / total:5.1f}%  {frame}")
    return rows


PACKAGES = [
    ("grpc", "grpc (Python + Cython aio)"),
    ("psycopg_pool", "psycopg pool"),
    ("psycopg", "psycopg"),
    ("baton_server", "baton_server"),
    ("baton/", "baton SDK"),
    ("asyncio", "asyncio"),
    ("selectors", "asyncio"),
    ("concurrent/futures", "threads / futures"),
    ("threading", "threads / futures"),
    ("google/protobuf", "protobuf"),
    ("prometheus_client", "prometheus_client"),
    ("opentelemetry", "opentelemetry"),
    ("json/", "json"),
]


def by_package(raw: Path) -> list[str]:
    """Self samples by the package of the innermost frame. A sample whose
    innermost frame is ``Handle._run`` ran C code called straight from the loop
    (grpc's Cython aio callbacks, C task steps): it is counted as such."""
    shares: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        leaf = stack.split(";")[-1]
        if leaf.startswith("Handle._run "):
            shares["C called from the loop (grpc Cython, C tasks)"] += count
            continue
        shares[next((label for key, label in PACKAGES if key in leaf), "other")] += count
    return [f"{100 * c / max(total, 1):5.1f}%  {label}" for label, c in shares.most_common()]


def _frame(text: str) -> str:
    found = FRAME.match(text)
    if found is None:
        return text
    path = found.group("file")
    short = "/".join(path.split("/")[-2:])
    return f"{found.group('func')} ({short})"


@dataclass
class Measured:
    """What one profiled workload cost, before dividing by its size."""

    seconds: float
    transactions: int
    rpcs: Counter[str]
    cpu: dict[str, float]
    """CPU seconds used by the server, the worker and the database's backends."""
    threads: dict[str, dict[int, float]]
    """CPU seconds used by each thread of the server and of the worker."""


def measure(args: argparse.Namespace, n: int, raws: dict[str, Path]) -> Measured:
    """Runs the workload under py-spy on a fresh database and server."""
    with fresh_database(args.database_url, "profile") as url, children() as kids:
        server_pid, worker_pid, target, metrics_port = start(kids, url)
        pids = {"server": server_pid, "worker": worker_pid}
        database = url.rsplit("/", 1)[-1]
        with Client(target) as client:
            client.start_workflow("three_noops", 0, workflow_id="warmup").result(timeout=60)
            rpcs0, commits0 = rpc_counts(metrics_port), commits(url)
            spies = [spy(kids, pid, raws[name], args.all_threads) for name, pid in pids.items()]
            time.sleep(1.0)  # py-spy attaches
            pg0 = backend_cpu(database)
            cpu0 = {name: cpu_of(pid) for name, pid in pids.items()}
            threads0 = {name: thread_cpu(pid) for name, pid in pids.items()}
            seconds = workload(client, args.workload, n)
            cpu = {name: cpu_of(pid) - cpu0[name] for name, pid in pids.items()}
            threads = {name: thread_cpu(pid) for name, pid in pids.items()}
            pg = backend_cpu(database)
            for proc in spies:
                proc.send_signal(signal.SIGINT)
            for proc in spies:
                proc.wait(timeout=60)
            rpcs = rpc_counts(metrics_port) - rpcs0
            transactions = commits(url) - commits0
    cpu["postgres"] = sum(pg.values()) - sum(pg0.get(p, 0.0) for p in pg)
    split = {
        name: {t: used - threads0[name].get(t, 0.0) for t, used in threads[name].items()}
        for name in threads
    }
    return Measured(seconds, transactions, rpcs, cpu, split)


def print_report(name: str, n: int, measured: Measured, raws: dict[str, Path], top: int) -> None:
    print(f"{name}: {n} workflows in {measured.seconds:.1f}s ({n / measured.seconds:.0f} wf/s)")
    print(f"Postgres commits per workflow: {measured.transactions / n:.2f}")
    print("CPU ms per workflow (profiler attached): " + ", ".join(
        f"{who} {used * 1000 / n:.2f}" for who, used in measured.cpu.items()
    ))  # fmt: skip
    for who, threads in measured.threads.items():
        busiest = sorted(((used, t) for t, used in threads.items() if used > 0), reverse=True)
        print(f"{who} CPU ms per workflow by thread: " + ", ".join(
            f"tid {t} {used * 1000 / n:.2f}" for used, t in busiest
        ))  # fmt: skip
    print("server RPCs per workflow: " + ", ".join(
        f"{method} {count / n:.2f}" for method, count in measured.rpcs.most_common()
    ))  # fmt: skip
    for who, raw in raws.items():
        print(f"\n{who} (py-spy samples; {raw}):")
        print("\n".join(top_functions(raw, top)))
        print("self by package:\n" + "\n".join(by_package(raw)))
        if who == "server":
            print("inclusive:\n" + "\n".join(inclusive_of(raw, HANDLERS)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workload", choices=["w1", "w2"], default="w2")
    parser.add_argument("--n", type=int, help="workflows (default: w1 300, w2 2000)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/baton-profile"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every non-idle thread, not only the one holding the GIL",
    )
    args = parser.parse_args()
    n = args.n or (300 if args.workload == "w1" else 2000)
    args.out.mkdir(parents=True, exist_ok=True)
    raws = {name: args.out / f"{args.workload}-{name}.txt" for name in ("server", "worker")}
    for raw in raws.values():
        raw.unlink(missing_ok=True)
    print_report(args.workload, n, measure(args, n, raws), raws, args.top)


if __name__ == "__main__":
    main()
