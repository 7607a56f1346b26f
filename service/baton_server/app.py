"""Assembles and runs one replica: database, engine, gRPC server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from baton._proto.baton.v1 import (
    event_service_pb2,
    event_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    stream_service_pb2,
    stream_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)
from baton_server import tracing
from baton_server.auth.interceptor import AuthInterceptor
from baton_server.auth.tokens import TokenConfigError, TokenStore
from baton_server.config import Config
from baton_server.connector import (
    Connector,
    DatabaseHealth,
    restart_embedded_in_child,
    start_embedded,
)
from baton_server.engine.engine import Engine
from baton_server.metrics import Metrics
from baton_server.migrate import migrate
from baton_server.servicers.errors import ErrorInterceptor
from baton_server.servicers.event import EventService
from baton_server.servicers.limits import StreamLimits
from baton_server.servicers.malformed import MalformedRequests
from baton_server.servicers.message import MessageService
from baton_server.servicers.queue import QueueService
from baton_server.servicers.schedule import ScheduleService
from baton_server.servicers.stream import StreamService
from baton_server.servicers.worker import WorkerService
from baton_server.servicers.workflow import WorkflowService
from baton_server.tls import ListenerConfigError, server_credentials

log = logging.getLogger("baton.server")

# How often `baton serve` looks whether its embedded Postgres still runs, while
# the database is unreachable.
EMBEDDED_CHECK_SECONDS = 2.0


@dataclass
class Running:
    """A started replica."""

    server: grpc.aio.Server
    port: int
    engine: Engine
    connector: Connector
    health: health.aio.HealthServicer
    config: Config
    metrics: Metrics
    metrics_port: int | None = None
    keeper: asyncio.Task[None] | None = None
    """Restarts the embedded Postgres if it dies (no BATON_DATABASE_URL)."""

    async def stop(self) -> None:
        """Graceful shutdown: NOT_SERVING, workers told to reconnect, in-flight RPCs finish."""
        if self.keeper is not None:
            self.keeper.cancel()
        await self.health.enter_graceful_shutdown()
        self.engine.tell_workers_to_reconnect("server shutting down")
        await self.server.stop(self.config.shutdown_grace_seconds)
        await self.engine.stop()
        await self.connector.close()
        self.metrics.stop()


async def database_url(config: Config) -> str:
    """The configured database, or the embedded one started on demand."""
    if config.database_url:
        return config.database_url
    log.info("BATON_DATABASE_URL is not set: starting the embedded Postgres in %s", config.data_dir)
    return await asyncio.to_thread(start_embedded, config.data_dir)


async def keep_embedded(config: Config, health: DatabaseHealth) -> None:
    """While the database is unreachable, starts the embedded Postgres again if
    its process is gone: a dev setup survives a crash of its database, or a
    `kill`, as a real deployment does once its own Postgres is back."""
    while True:
        await asyncio.sleep(EMBEDDED_CHECK_SECONDS)
        if health.down_since is None:
            continue
        try:
            if await asyncio.to_thread(restart_embedded_in_child, config.data_dir):
                log.warning(
                    "the embedded Postgres in %s had stopped: started it again", config.data_dir
                )
        except Exception as exc:
            log.error("cannot start the embedded Postgres in %s again: %s", config.data_dir, exc)


class StartupError(Exception):
    """The configuration cannot work; the message says what to change."""


def _security(config: Config) -> tuple[TokenStore, grpc.ServerCredentials | None]:
    """Tokens and listener credentials, checked before anything starts."""
    try:
        tokens = TokenStore.load(config.tokens_file, config.tokens)
        credentials = server_credentials(config)
    except (TokenConfigError, ListenerConfigError) as exc:
        raise StartupError(str(exc)) from None
    if not tokens.enabled:
        log.warning(
            "no tokens configured: every caller may do everything "
            "(set --tokens-file or BATON_TOKENS; see `baton token new`)"
        )
    return tokens, credentials


async def start(config: Config) -> Running:
    """Migrates the database, starts the engine and the gRPC server."""
    tokens, credentials = _security(config)
    url = await database_url(config)
    await migrate(url)
    connector = Connector(url, min_size=config.pool_min_size, max_size=config.pool_max_size)
    await connector.open()
    metrics = Metrics()
    engine = Engine(connector, config, metrics)
    engine.start()

    # The error interceptor comes first so that it also times and counts refusals.
    interceptors: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor(metrics.observe_rpc)]
    if tokens.enabled:
        interceptors.append(AuthInterceptor(tokens))
    interceptors.append(
        StreamLimits(config.max_streams_per_connection, config.max_readers_per_workflow)
    )
    if tracing.available():
        interceptors.append(tracing.TracingInterceptor())
    interceptors.append(MalformedRequests())  # last: authentication comes first
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    workflow_service_pb2_grpc.add_WorkflowServiceServicer_to_server(  # type: ignore[no-untyped-call]
        WorkflowService(engine, config), server
    )
    worker_service_pb2_grpc.add_WorkerServiceServicer_to_server(  # type: ignore[no-untyped-call]
        WorkerService(engine, config), server
    )
    queue_service_pb2_grpc.add_QueueServiceServicer_to_server(  # type: ignore[no-untyped-call]
        QueueService(engine), server
    )
    message_service_pb2_grpc.add_MessageServiceServicer_to_server(  # type: ignore[no-untyped-call]
        MessageService(engine, config), server
    )
    event_service_pb2_grpc.add_EventServiceServicer_to_server(  # type: ignore[no-untyped-call]
        EventService(engine, config), server
    )
    stream_service_pb2_grpc.add_StreamServiceServicer_to_server(  # type: ignore[no-untyped-call]
        StreamService(engine, config), server
    )
    schedule_service_pb2_grpc.add_ScheduleServiceServicer_to_server(  # type: ignore[no-untyped-call]
        ScheduleService(engine, config), server
    )
    services = [
        workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name,
        worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
        queue_service_pb2.DESCRIPTOR.services_by_name["QueueService"].full_name,
        message_service_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name,
        event_service_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
        stream_service_pb2.DESCRIPTOR.services_by_name["StreamService"].full_name,
        schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
    ]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, credentials)
    except RuntimeError:  # grpc's only signal that the bind failed
        port = 0
    if port == 0:
        await engine.stop()
        await connector.close()
        raise StartupError(
            f"cannot listen on {config.listen}: the address is in use or not available "
            "(choose another with --listen or BATON_LISTEN)"
        )
    await server.start()
    for name in ["", *services]:
        await _set_serving(health_servicer, name)
    metrics_port = metrics.serve(config.metrics_listen) if config.metrics_listen else None
    keeper = (
        None
        if config.database_url
        else asyncio.create_task(keep_embedded(config, connector.health))
    )
    return Running(
        server, port, engine, connector, health_servicer, config, metrics, metrics_port, keeper
    )


async def _set_serving(servicer: health.aio.HealthServicer, name: str) -> None:
    await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def serve(config: Config, on_ready: Callable[[int], None] | None = None) -> None:
    """Runs a replica until SIGTERM or SIGINT, then shuts down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # before "ready": no window to die in
    running = await start(config)
    host = config.listen.rsplit(":", 1)[0]
    log.info("serving on %s:%d (replica %s)", host, running.port, running.engine.replica_id)
    if on_ready is not None:
        on_ready(running.port)
    await stop.wait()
    log.info("shutting down")
    await running.stop()
