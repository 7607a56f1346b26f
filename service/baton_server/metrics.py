"""Prometheus metrics of one replica, served at ``/metrics`` when configured.

Counters and histograms are this replica's (sum them across replicas); the
``baton_workflows`` gauge is read from Postgres, so every replica reports the
same, whole-cluster value (take one, or the max).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("baton.metrics")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    """The metrics a replica keeps; each replica has its own registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.workflows_started = Counter(
            "baton_workflows_started",
            "Workflows created: direct, queued, batch, child or scheduled starts.",
            ["workflow_name"], registry=r,
        )  # fmt: skip
        self.workflows_finished = Counter(
            "baton_workflows_finished", "Workflows that reached a terminal status.",
            ["workflow_name", "status"], registry=r,
        )  # fmt: skip
        self.workflows = Gauge(
            "baton_workflows", "Unfinished workflows by queue and status (from Postgres).",
            ["queue", "status"], registry=r,
        )  # fmt: skip
        self.dispatch_latency = Histogram(
            "baton_dispatch_latency_seconds", "From a workflow's start to its first dispatch.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.step_duration = Histogram(
            "baton_step_duration_seconds", "From a step's start (worker clock) to its record.",
            ["step_name"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rpc_duration = Histogram(
            "baton_rpc_duration_seconds", "Server-side RPC latency by method and status code.",
            ["method", "code"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.checkpoint_batch = Histogram(
            "baton_checkpoint_batch_size",
            "Checkpoints (step results, completions) written per transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r,
        )  # fmt: skip
        self.connected_workers = Gauge(
            "baton_connected_workers", "Workers connected to this replica.", registry=r
        )

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        """One finished RPC (``method`` as ``/package.Service/Method``)."""
        self.rpc_duration.labels(method.lstrip("/"), code).observe(seconds)

    def set_unfinished(self, counts: dict[tuple[str, str], int]) -> None:
        """Replaces the ``baton_workflows`` gauge with fresh ``(queue, status)`` counts."""
        self.workflows.clear()
        for (queue, status), count in counts.items():
            self.workflows.labels(queue or "(none)", status).set(count)

    def stop(self) -> None:
        """Stops serving ``/metrics``, if it was."""
        http = getattr(self, "_http", None)
        if http is not None:
            http.shutdown()
            http.server_close()

    def serve(self, listen: str) -> int:
        """Serves ``/metrics`` on ``HOST:PORT`` in a thread; returns the port."""
        host, _, port = listen.rpartition(":")
        server, _thread = start_http_server(
            int(port), addr=host.strip("[]"), registry=self.registry
        )
        self._http = server
        bound: int = server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound
