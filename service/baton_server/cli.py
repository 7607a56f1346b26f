"""The ``baton`` command, a thin entry point: ``serve`` and ``migrate`` run the
server; ``workflow`` (``cli_workflows``), ``queue`` and ``schedule``
(``cli_queues``) are clients of a running server through the SDK."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from baton import BatonError
from baton._worker import fastest_loop
from baton_server import __version__, cli_ops, logs
from baton_server.cli_connect import UsageError
from baton_server.cli_output import fail
from baton_server.cli_queues import add_queue_commands, add_schedule_commands, run_queue_command
from baton_server.cli_workflows import add_workflow_commands, run_workflow_command
from baton_server.config import Config, from_env, parse_age


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baton", description="Baton durable workflows.")
    parser.add_argument("--version", action="version", version=f"baton {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a server replica")
    serve.add_argument(
        "--listen",
        help="HOST:PORT to listen on (env BATON_LISTEN; "
        "default localhost:50051; port 0 picks a free port)",
    )
    _database_flags(serve)
    serve.add_argument(
        "--lease-seconds",
        type=float,
        help="grace period before a silent worker's workflows move (default 5)",
    )
    serve.add_argument(
        "--retention",
        type=_age,
        metavar="AGE",
        help="delete finished workflows this long after they finished, e.g. 3600, 12h, 30d "
        "(env BATON_RETENTION; default: keep them)",
    )
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    cli_ops.add_serve_flags(serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    _database_flags(migrate)
    migrate.add_argument("--log-level", default="INFO")

    add_workflow_commands(commands)
    add_queue_commands(commands)
    add_schedule_commands(commands)
    cli_ops.add_commands(commands)
    return parser


def _database_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="Postgres URL (env BATON_DATABASE_URL; "
        "default: the embedded Postgres under --data-dir)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="embedded Postgres data folder (env BATON_DATA_DIR; default .baton)",
    )


def config_from(args: argparse.Namespace) -> Config:
    """Flags override the environment, which overrides the defaults."""
    return from_env().with_overrides(
        listen=getattr(args, "listen", None),
        database_url=args.database_url,
        data_dir=args.data_dir,
        lease_seconds=getattr(args, "lease_seconds", None),
        retention_seconds=getattr(args, "retention", None),
        tls_cert_file=getattr(args, "tls_cert", None),
        tls_key_file=getattr(args, "tls_key", None),
        tls_client_ca_file=getattr(args, "tls_client_ca", None),
        insecure=getattr(args, "insecure", None),
        tokens_file=getattr(args, "tokens_file", None),
        metrics_listen=getattr(args, "metrics_listen", None),
    )


def _age(text: str) -> float:
    try:
        return parse_age(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age such as 3600, 90m, 12h or 30d"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``baton`` command."""
    args = _parser().parse_args(argv)
    if args.command in ("workflow", "queue", "schedule"):
        return _client_command(args)
    if args.command in {"token", "health"}:
        return cli_ops.run(args)
    logs.configure(args.log_level, getattr(args, "log_format", "text"))
    config = config_from(args)
    if args.command == "serve":
        from baton_server.app import StartupError, serve

        def ready(port: int) -> None:
            # One line on stdout that scripts (and the tests) can wait for.
            print(f"baton: serving on port {port}", flush=True)

        try:
            # uvloop where installed: every RPC and query of the replica runs
            # through this loop, and uvloop's costs 5-13 % less server CPU under
            # load than asyncio's own (bench/RESULTS.md, fifteenth session).
            with asyncio.Runner(loop_factory=fastest_loop()) as runner:
                runner.run(serve(config, on_ready=ready))
        except StartupError as exc:
            print(f"baton serve: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "migrate":
        from baton_server.app import database_url
        from baton_server.migrate import migrate

        async def run() -> list[str]:
            return await migrate(await database_url(config))

        applied = asyncio.run(run())
        print(
            f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
        )
        return 0
    return 2


def _client_command(args: argparse.Namespace) -> int:
    """Runs a client command; every failure is one line on stderr and exit 1
    (2 for a command line that cannot work)."""
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    try:
        if args.command == "workflow":
            return run_workflow_command(args)
        code, error = run_queue_command(args)
        return fail(error, code) if error else code
    except UsageError as exc:
        return fail(str(exc), 2)
    except BatonError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
