"""The DBOS side of ``bench/queues.py``, run in a process of its own (DBOS is a
singleton per process): the same workflows and measures, in-process against the
given system database. Prints one JSON object of measures on its last line.

    python bench/queues_dbos.py URL --poll 1.0 --latency 200 --drain 5000
"""

from __future__ import annotations

import argparse
import json
import time

import psutil
from common import percentile
from dbos import DBOS, SetEnqueueOptions


@DBOS.workflow()
def stamp(i: int) -> float:
    """Returns when it started (wall clock)."""
    return time.time()


@DBOS.step()
def noop(i: int) -> int:
    return i


@DBOS.workflow()
def one_step(i: int) -> list[float]:
    """One step; returns when it started and ended (wall clock)."""
    began = time.time()
    noop(i)
    return [began, time.time()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--drain", type=int, default=5000)
    args = parser.parse_args()

    DBOS(config={"name": "bench", "system_database_url": args.url, "log_level": "WARNING"})
    DBOS.launch()
    latency_queue = DBOS.register_queue("latency", polling_interval_sec=args.poll)
    drain_queue = DBOS.register_queue("drain", polling_interval_sec=args.poll)
    parked_queue = DBOS.register_queue("parked", polling_interval_sec=args.poll)
    latency_queue.enqueue(stamp, -1).get_result()  # warm-up
    me = psutil.Process()
    cpu0 = me.cpu_times()

    latencies = []
    for i in range(args.latency):
        began = time.time()
        started = latency_queue.enqueue(stamp, i).get_result()
        latencies.append((started - began) * 1000)

    # Enqueue rate: items parked a day ahead, so that nothing runs meanwhile.
    began = time.perf_counter()
    with SetEnqueueOptions(delay_seconds=86_400):
        for i in range(args.drain):
            parked_queue.enqueue(one_step, i)
    enqueue_rate = args.drain / (time.perf_counter() - began)

    # Drain: a backlog released at one instant, after it is all enqueued.
    release = time.time() + 2 + 1.5 * args.drain / enqueue_rate
    handles = []
    for i in range(args.drain):
        with SetEnqueueOptions(delay_seconds=max(release - time.time(), 0.0)):
            handles.append(drain_queue.enqueue(one_step, i))
    spans = [h.get_result() for h in handles]
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    cpu = me.cpu_times()
    DBOS.destroy()
    print(
        json.dumps(
            {
                "latency_p50": percentile(latencies, 0.50),
                "latency_p99": percentile(latencies, 0.99),
                "enqueue_rate": enqueue_rate,
                "drain_rate": args.drain / (last - first),
                "late_release": first < release - 0.5,
                "cpu": (cpu.user + cpu.system) - (cpu0.user + cpu0.system),
            }
        )
    )


if __name__ == "__main__":
    main()
