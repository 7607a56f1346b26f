"""What every engine's benchmark runner shares: settings, statistics, child
processes that are always killed, CPU accounting and the results file.

An engine runner (``engine_baton.py``, ``engine_dbos.py``, ``engine_temporal.py``)
is started by ``compare.py`` as its own process with ``--settings JSON --out
PATH``; it writes its measurements to PATH after every workload, so a runner
stopped by its time limit still leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import psutil
import psycopg
from psycopg import sql

HERE = Path(__file__).resolve().parent

# The measure keys, in table order.
W1_P50 = "w1_p50_ms"
W1_P90 = "w1_p90_ms"
W1_P99 = "w1_p99_ms"
W1_ASYNC_P50 = "w1_async_p50_ms"  # Baton only: the same workflow as `async def`
W2_RATE = "w2_wf_per_s"
W2_ASYNC_RATE = "w2_async_wf_per_s"  # Baton only: the same workflow as `async def`
W3_ENQUEUE = "w3_enqueue_per_s"
W3_DRAIN = "w3_drain_per_s"
START_P50 = "enqueue_to_start_p50_ms"
W2_CPU_SERVER = "w2_cpu_ms_per_wf_server"
W2_CPU_WORKER = "w2_cpu_ms_per_wf_worker"
CPU_SERVER = "cpu_s_server"
CPU_WORKER = "cpu_s_worker"


@dataclass(frozen=True)
class Settings:
    """The sizes and limits of one run, the same for every engine."""

    database_url: str = ""
    """This engine's own fresh database (unused by Temporal's dev server)."""
    w1_runs: int = 200
    w2_workflows: int = 2000
    w3_tasks: int = 5000
    start_samples: int = 50
    """Enqueue -> start latency samples, taken one at a time."""
    workload_timeout: float = 240.0
    """Seconds any one workload may take before it is reported as timed out."""
    variant: str = ""
    """Engine-specific: Temporal's "local" (local activities) or "remote"."""

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class Report:
    """One engine's measurements, written to its results file as they come."""

    path: Path
    measures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, key: str, value: float) -> None:
        self.measures[key] = value
        self.save()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.save()

    def save(self) -> None:
        payload = {"measures": self.measures, "notes": self.notes}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(self.path)


def runner_args() -> tuple[Settings, Report]:
    """Parses an engine runner's command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", required=True, help="Settings as JSON")
    parser.add_argument("--out", required=True, type=Path, help="where results go")
    args = parser.parse_args()
    report = Report(args.out)
    report.save()
    return Settings.from_json(args.settings), report


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of a hand-run benchmark script: its docstring as the
    help, and ``--database-url`` (default: BATON_DATABASE_URL, else the machine's
    Postgres at 127.0.0.1:5432)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BATON_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    return parser


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_row(report: Report, prefix: str, millis: Sequence[float]) -> None:
    """Puts p50/p90/p99 of ``millis`` under ``prefix``_p50_ms etc."""
    for q in (50, 90, 99):
        report.put(f"{prefix}_p{q}_ms", percentile(millis, q / 100))


def free_port() -> int:
    """A TCP port free on loopback at this moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_line(stream: IO[str], timeout: float) -> str:
    """The next line of a child's pipe, or TimeoutError after ``timeout`` s."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no output within {timeout:.0f}s")
    return stream.readline()


def wait_for_port(port: int, timeout: float) -> None:
    """Returns once something accepts connections on loopback ``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f}s") from None
            time.sleep(0.1)


class Children:
    """Child processes that are killed (with their own children) on exit."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[str]] = []

    def start(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdout: int | None = None,
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            list(argv),
            env={**os.environ, **(env or {})},
            stdout=stdout,
            text=True,
            start_new_session=True,  # its own process group: killed as a whole
        )
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            kill_group(proc, grace=5.0)
        self._procs.clear()


@contextmanager
def children() -> Iterator[Children]:
    """A `Children` whose processes are all killed when the block ends, however."""
    kids = Children()
    try:
        yield kids
    finally:
        kids.stop_all()


def kill_group(proc: subprocess.Popen[str], *, grace: float) -> None:
    """SIGTERM to the process group, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    _signal_group(proc.pid, signal.SIGKILL)  # whatever it left behind in its group
    if proc.poll() is None:
        proc.wait(timeout=grace)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class CpuMeter:
    """CPU seconds (user + system) used by named groups of processes since a mark."""

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self._groups = {
            name: [psutil.Process(pid) for pid in pids] for name, pids in groups.items()
        }
        self._mark = self.read()

    def read(self) -> dict[str, float]:
        return {name: sum(_cpu(p) for p in procs) for name, procs in self._groups.items()}

    def mark(self) -> None:
        self._mark = self.read()

    def since_mark(self) -> dict[str, float]:
        now = self.read()
        return {name: now[name] - self._mark[name] for name in now}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class Deadline:
    """A workload's time budget."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; TimeoutError once spent."""
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the workload's time budget is spent")
        return remaining


def create_database(admin_url: str, prefix: str) -> str:
    """Creates a new database named ``<prefix>_<random>``; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if "://" in admin_url:  # keep the URL form: DBOS (SQLAlchemy) reads only URLs
        return urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})


def drop_database(admin_url: str, url: str) -> None:
    """Drops the database of ``url``, connections and all."""
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def fresh_database(admin_url: str, engine: str) -> Iterator[str]:
    """A new database for one engine, dropped (connections and all) afterwards."""
    url = create_database(admin_url, f"bench_{engine.replace('-', '_')}")
    try:
        yield url
    finally:
        drop_database(admin_url, url)
