"""Operator commands: ``baton token new|hash`` and ``baton health``, and the
serve flags for TLS, tokens, metrics and logs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from baton_server.auth.tokens import Role, hash_token, new_token


def add_serve_flags(serve: argparse.ArgumentParser) -> None:
    """TLS, token, metrics and log flags of ``baton serve``."""
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain (env BATON_TLS_CERT)")
    serve.add_argument("--tls-key", type=Path, help="PEM private key (env BATON_TLS_KEY)")
    serve.add_argument(
        "--tls-client-ca",
        type=Path,
        help="require client certificates signed by this CA: mTLS (env BATON_TLS_CLIENT_CA)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow plaintext on a non-loopback address (env BATON_INSECURE=true)",
    )
    serve.add_argument(
        "--tokens-file",
        type=Path,
        help="file of '<role> sha256:<hex> [name]' lines (env BATON_TOKENS_FILE); "
        "without tokens the server runs open",
    )
    serve.add_argument(
        "--metrics-listen", help="HOST:PORT for Prometheus /metrics (env BATON_METRICS_LISTEN)"
    )
    serve.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="log lines (default text)"
    )


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``token`` and ``health``."""
    token = commands.add_parser("token", help="make bearer tokens for the server's tokens file")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    new = token_commands.add_parser("new", help="print a new token and its tokens-file line")
    new.add_argument("--role", required=True, choices=[r.value for r in Role])
    new.add_argument("--name", default="", help="a name for logs, e.g. payments-workers")
    token_commands.add_parser("hash", help="print the tokens-file hash of a token read on stdin")

    health = commands.add_parser("health", help="exit 0 when the server answers SERVING")
    health.add_argument("--target", default="localhost:50051")
    health.add_argument(
        "--tls-ca", type=Path, help="trust this CA (PEM) and use TLS (env BATON_TLS_CA)"
    )
    health.add_argument("--timeout", type=float, default=3.0)


def run(args: argparse.Namespace) -> int:
    """Runs ``token`` or ``health``; returns the exit code."""
    if args.command == "token":
        if args.token_command == "new":
            token = new_token()
            name = args.name or f"{args.role}-token"
            print(f"token (give it to the caller; it is not stored anywhere): {token}")
            print(f"tokens-file line: {args.role} {hash_token(token)} {name}")
        else:
            print(hash_token(sys.stdin.readline().strip()))
        return 0
    tls_ca = args.tls_ca or (
        Path(os.environ["BATON_TLS_CA"]) if os.environ.get("BATON_TLS_CA") else None
    )
    return _health(args.target, tls_ca, args.timeout)


def _health(target: str, tls_ca: Path | None, timeout: float) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if tls_ca is not None:
        credentials = grpc.ssl_channel_credentials(tls_ca.read_bytes())
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.RpcError as exc:
            print(f"baton health: {target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{target}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1
