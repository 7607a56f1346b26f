"""Where one W1 workflow's time goes, hop by hop, across its three processes.

    .venv/bin/python bench/timeline.py [--database-url URL] [-n 300] [--two-calls | --queued]

Copies ``clients/`` and ``service/`` to a temporary directory, applies
``bench/timeline.patch`` there (timestamps at each hand-off: the client's
calls, the server's interceptor, handlers, committer and stream writes, the
worker's stream reads and writes and its workflow thread; nothing else
changes), and runs ``baton serve``, one ``noop_app.py`` worker and a client
from that copy. The client runs W1 (``three_noops`` one at a time, with
``Client.execute_workflow``, or with ``--two-calls`` ``start_workflow`` then
``result``; with ``--queued``, enqueue -> start: the step-less ``stamp``
started on a queue, then awaited). Every mark is ``CLOCK_MONOTONIC``, shared by the three processes,
so one workflow's marks line up into a timeline; the table shows, for the
runs whose marks came in the most common order, the median time of each mark
after the client's call began and the median gap since the mark before it.

The patch applies to the code it was made from, and CI checks that it still
does. When the code has moved on: in a clean checkout, ``patch -p1 <
bench/timeline.patch`` applies what it can, the ``.rej`` files show the marks
to place by hand; then ``git diff -- clients service > bench/timeline.patch``.
"""

from __future__ import annotations

import collections
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import HERE, bench_parser, children, fresh_database, read_line

ROOT = HERE.parent
QUEUE = "bench"


def patched_copy(into: Path) -> dict[str, str]:
    """The tree with the timeline patch applied; the environment that runs it."""
    for part in ("clients", "service"):
        shutil.copytree(ROOT / part, into / part, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "apply", str(HERE / "timeline.patch")], cwd=into, check=True)
    marks = into / "marks"
    marks.mkdir()
    return {
        **os.environ,
        "PYTHONPATH": f"{into / 'clients' / 'python'}{os.pathsep}{into / 'service'}",
        "BATON_TIMELINE_DIR": str(marks),
    }


def client(target: str, n: int, mode: str) -> None:
    """Runs in a child process on the patched copy (see `main`)."""
    from baton import Client

    # Only in the patched copy this runs on.
    mark = importlib.import_module("baton._timeline").mark

    with Client(target) as baton:
        if mode == "queued":
            baton.upsert_queue(QUEUE)
        for i in range(-50, n):  # the first 50 warm up and are not counted
            if i == 0:
                mark("c.counted")
            mark("c.start_begin")
            if mode == "queued":
                handle = baton.start_workflow("stamp", workflow_id=f"t-{i}", queue=QUEUE)
                mark("c.start_end")
                handle.result(timeout=60)
            elif mode == "two-calls":
                baton.start_workflow("three_noops", i, workflow_id=f"t-{i}").result(timeout=60)
            else:
                baton.execute_workflow("three_noops", i, workflow_id=f"t-{i}", result_timeout=60)
            mark("c.result_end")


def table(marks_dir: Path) -> list[str]:
    events: list[tuple[int, str]] = []
    for log in marks_dir.glob("*.log"):
        for line in log.read_text().splitlines():
            text, label = line.split(" ", 1)
            events.append((int(text), label))
    events.sort()
    counted = next(t for t, name in events if name == "c.counted")
    runs: list[list[tuple[int, str]]] = []
    for stamp, name in events:
        if stamp < counted:
            continue
        if name == "c.start_begin":
            runs.append([])
        if runs:
            runs[-1].append((stamp, name))
    orders = collections.Counter(tuple(name for _, name in run) for run in runs)
    common, count = orders.most_common(1)[0]
    chosen = [run for run in runs if tuple(name for _, name in run) == common]
    rows = [
        f"{count} of {len(runs)} runs had their marks in this order",
        "",
        "| mark | at (ms, p50) | since the previous mark (ms, p50) |",
        "|---|---|---|",
    ]
    for k, name in enumerate(common):
        at = sorted((run[k][0] - run[0][0]) / 1e6 for run in chosen)
        gap = sorted((run[k][0] - run[k - 1][0]) / 1e6 for run in chosen) if k else [0.0]
        rows.append(f"| {name} | {at[len(at) // 2]:.3f} | {gap[len(gap) // 2]:.3f} |")
    return rows


def main() -> None:
    if sys.argv[1:2] == ["client"]:
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = bench_parser(__doc__)
    parser.add_argument("-n", type=int, default=300, help="workflows timed (default 300)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--two-calls", action="store_true", help="start_workflow + result, not execute_workflow"
    )
    how.add_argument(
        "--queued",
        action="store_true",
        help="enqueue -> start instead: `stamp` (no steps) started on a queue, then awaited",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-timeline-") as tmp:
        env = patched_copy(Path(tmp))
        with fresh_database(args.database_url, "timeline") as url, children() as kids:
            server = kids.start(
                [sys.executable, "-m", "baton_server", "serve", "--listen", "127.0.0.1:0",
                 "--database-url", url, "--log-level", "WARNING"],
                stdout=subprocess.PIPE, env=env,
            )  # fmt: skip
            assert server.stdout is not None
            port = read_line(server.stdout, timeout=60).split("port ")[1].split()[0]
            target = f"127.0.0.1:{port}"
            kids.start(
                [sys.executable, str(HERE / "noop_app.py")],
                env={**env, "BATON_TARGET": target, "SLOTS": "200", "BATON_QUEUES": QUEUE},
            )
            mode = "queued" if args.queued else "two-calls" if args.two_calls else "one-call"
            subprocess.run(
                [sys.executable, __file__, "client", target, str(args.n), mode],
                env=env, check=True, timeout=600,
            )  # fmt: skip
        print("\n".join(table(Path(env["BATON_TIMELINE_DIR"]))))


if __name__ == "__main__":
    main()
