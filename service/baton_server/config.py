"""The server's configuration, read once at the edge (CLI flags and environment)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_LISTEN = "localhost:50051"


@dataclass(frozen=True)
class Config:
    """Everything the server needs to know; built by :func:`from_env` or by tests."""

    listen: str = DEFAULT_LISTEN
    """Address to listen on (``HOST:PORT``; port 0 picks a free one)."""
    database_url: str | None = None
    """Postgres to use. ``None``: start the embedded Postgres under ``data_dir``."""
    data_dir: Path = field(default_factory=lambda: Path(".baton"))
    """Where the embedded Postgres keeps its data."""
    lease_seconds: float = 5.0
    """How long a worker keeps its workflows without a heartbeat (the grace period)."""
    heartbeat_seconds: float = 1.0
    """How often workers send heartbeats and replicas renew leases."""
    dispatch_poll_seconds: float = 1.0
    """Back-up re-check of waiting work, in case a notification was missed."""
    max_payload_bytes: int = 2 * 1024 * 1024
    """Largest accepted payload (input, output, error details)."""
    max_message_bytes: int = 8 * 1024 * 1024
    """Largest gRPC message received."""
    default_max_attempts: int = 100
    """Dispatches before a workflow stops as MAX_RECOVERY_ATTEMPTS_EXCEEDED."""
    pool_min_size: int = 2
    """Connections kept open."""
    pool_max_size: int = 16
    """Most connections open at once."""
    shutdown_grace_seconds: float = 5.0
    """How long in-flight RPCs may take to finish on SIGTERM."""
    deadline_poll_seconds: float = 1.0
    """Longest pause of the deadline sweep (it also wakes at the nearest deadline)."""
    retention_seconds: float | None = None
    """Delete finished workflows this long after they finished. ``None``: keep them."""
    retention_interval_seconds: float = 60.0
    """How often the retention sweep runs."""
    retention_batch: int = 1000
    """Workflows deleted per retention transaction."""
    tls_cert_file: Path | None = None
    """PEM certificate (chain) of the listener; with ``tls_key_file``, serve TLS."""
    tls_key_file: Path | None = None
    """PEM private key of the listener."""
    tls_client_ca_file: Path | None = None
    """PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."""
    insecure: bool = False
    """Allow plaintext on a non-loopback address (plaintext on loopback is always allowed)."""
    tokens_file: Path | None = None
    """File of ``<role> sha256:<hex> [name]`` lines; no tokens at all: the server runs open."""
    tokens: str | None = None
    """The same entries inline, separated by ``;``."""
    metrics_listen: str | None = None
    """``HOST:PORT`` of the Prometheus endpoint (``/metrics``); unset: no endpoint."""
    max_streams_per_connection: int = 100
    """Server-streaming and bidirectional calls (Connect, WatchWorkflow,
    AwaitWorkflows, ReadStream) open at once on one client connection."""
    max_readers_per_workflow: int = 100
    """Streaming reads (WatchWorkflow, ReadStream) open at once on one workflow."""

    def with_overrides(self, **changes: object) -> Config:
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def from_env(env: Mapping[str, str] | None = None) -> Config:
    """Builds a :class:`Config` from ``BATON_*`` environment variables."""
    env = os.environ if env is None else env
    config = Config()
    return config.with_overrides(
        listen=env.get("BATON_LISTEN") or None,
        database_url=env.get("BATON_DATABASE_URL") or None,
        data_dir=Path(env["BATON_DATA_DIR"]) if env.get("BATON_DATA_DIR") else None,
        lease_seconds=_float(env, "BATON_LEASE_SECONDS"),
        heartbeat_seconds=_float(env, "BATON_HEARTBEAT_SECONDS"),
        max_payload_bytes=_int(env, "BATON_MAX_PAYLOAD_BYTES"),
        default_max_attempts=_int(env, "BATON_MAX_ATTEMPTS"),
        retention_seconds=_age(env, "BATON_RETENTION"),
        retention_interval_seconds=_float(env, "BATON_RETENTION_INTERVAL_SECONDS"),
        tls_cert_file=_path(env, "BATON_TLS_CERT"),
        tls_key_file=_path(env, "BATON_TLS_KEY"),
        tls_client_ca_file=_path(env, "BATON_TLS_CLIENT_CA"),
        insecure=_bool(env, "BATON_INSECURE"),
        tokens_file=_path(env, "BATON_TOKENS_FILE"),
        tokens=env.get("BATON_TOKENS") or None,
        metrics_listen=env.get("BATON_METRICS_LISTEN") or None,
        max_streams_per_connection=_int(env, "BATON_MAX_STREAMS_PER_CONNECTION"),
        max_readers_per_workflow=_int(env, "BATON_MAX_READERS_PER_WORKFLOW"),
    )


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    return Path(value) if value else None


def _bool(env: Mapping[str, str], name: str) -> bool | None:
    value = env.get(name, "").strip().lower()
    if not value:
        return None
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SystemExit(f"{name} must be true or false, not {value!r}")


def _float(env: Mapping[str, str], name: str) -> float | None:
    value = env.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, not {value!r}") from None


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {value!r}") from None


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> float:
    """An age such as ``90``, ``90s``, ``15m``, ``12h`` or ``30d``, in seconds.

    Raises:
        ValueError: The text is not such an age, or not positive.
    """
    text = text.strip().lower()
    factor = _AGE_UNITS.get(text[-1:], 0)
    number = text[:-1] if factor else text
    seconds = float(number) * (factor or 1)
    if not seconds > 0:
        raise ValueError(f"{text!r} is not a positive age")
    return seconds


def _age(env: Mapping[str, str], name: str) -> float | None:
    value = env.get(name)
    if not value:
        return None
    try:
        return parse_age(value)
    except ValueError:
        raise SystemExit(f"{name} must be an age like 3600, 12h or 30d, not {value!r}") from None
