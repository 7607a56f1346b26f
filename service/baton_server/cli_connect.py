"""The flags every ``baton`` client command shares, and the SDK `Client` they make."""

from __future__ import annotations

import argparse
from pathlib import Path

from baton import Client, TLSConfig


class UsageError(Exception):
    """A command line that cannot be run as given (exit code 2)."""


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """``--target``, ``--token``, the TLS flags and ``--json``."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target", help="HOST:PORT of the service (env BATON_TARGET; default localhost:50051)"
    )
    group.add_argument("--token", help="bearer token (env BATON_TOKEN)")
    group.add_argument(
        "--tls",
        action="store_true",
        help="connect with TLS and the system's CAs (default: TLS unless the target is "
        "on this machine; env BATON_TLS_CA/BATON_TLS_CERT/BATON_TLS_KEY)",
    )
    group.add_argument(
        "--plaintext", action="store_true", help="connect without TLS, whatever the target"
    )
    group.add_argument("--ca-cert", metavar="FILE", type=Path, help="CA bundle for TLS")
    group.add_argument("--cert", metavar="FILE", type=Path, help="client certificate for mTLS")
    group.add_argument("--key", metavar="FILE", type=Path, help="client key for mTLS")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def connect(args: argparse.Namespace) -> Client:
    """The SDK client the flags describe.

    Raises:
        UsageError: The TLS flags contradict each other.
    """
    tls: TLSConfig | bool | None = None
    if args.plaintext:
        if args.tls or args.ca_cert or args.cert or args.key:
            raise UsageError("--plaintext cannot go with --tls/--ca-cert/--cert/--key")
        tls = False
    elif args.ca_cert or args.cert or args.key:
        if bool(args.cert) != bool(args.key):
            raise UsageError("--cert and --key go together (mutual TLS)")
        tls = TLSConfig(ca_cert=args.ca_cert, client_cert=args.cert, client_key=args.key)
    elif args.tls:
        tls = True
    return Client(args.target, token=args.token, tls=tls)
