"""The flags every ``baton`` client command shares, and the SDK `Client` they make."""

from __future__ import annotations

import argparse

from baton import Client


class UsageError(Exception):
    """A command line that cannot be run as given (exit code 2)."""


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """``--target``, ``--token``, the TLS flags and ``--json``."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target", help="HOST:PORT of the service (env BATON_TARGET; default localhost:50051)"
    )
    group.add_argument("--token", help="bearer token (env BATON_TOKEN)")
    group.add_argument("--tls", action="store_true", help="connect with TLS (not yet supported)")
    group.add_argument("--ca-cert", metavar="FILE", help="CA bundle for TLS (not yet supported)")
    group.add_argument("--cert", metavar="FILE", help="client certificate for mutual TLS")
    group.add_argument("--key", metavar="FILE", help="client key for mutual TLS")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def connect(args: argparse.Namespace) -> Client:
    """The SDK client the flags describe.

    Raises:
        UsageError: TLS was asked for; this release speaks plaintext only.
    """
    if args.tls or args.ca_cert or args.cert or args.key:
        raise UsageError(
            "TLS is not supported by this release yet; drop --tls/--ca-cert/--cert/--key "
            "(plaintext only)"
        )
    return Client(args.target, token=args.token)
