"""W1's bare shape as a column of ``compare.py`` (started by it; see there).

The chain of processes and messages of a Baton W1 workflow with nothing of
Baton in it (``floor.py``: a ``grpc.aio`` server passing raw bytes, a worker
holding one stream, a sync client; five autocommit statements on one
connection). Baton/bare says how far Baton's W1 stays above what its shape
costs on this host in the same minutes, which an absolute figure cannot say
on a host whose speed varies.
"""

from __future__ import annotations

from common import W1_ASYNC_P50, latency_row, percentile, runner_args
from floor import time_case


def main() -> None:
    settings, report = runner_args()
    runs, url = settings.w1_runs, settings.database_url
    millis, _ = time_case(url, runs, start_waits=True)
    latency_row(report, "w1", millis)
    millis, _ = time_case(url, runs, on_loop=True, start_waits=True)
    report.put(W1_ASYNC_P50, percentile(millis, 0.5))
    report.note(
        '`floor.py`\'s rows "+ 5 commits, start waits" (W1: the workflow in a'
        ' thread) and "asyncio worker, + 5 commits, start waits" (the `async def`'
        " row); five commits where Baton writes four"
    )


if __name__ == "__main__":
    main()
