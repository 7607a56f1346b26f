"""The listener's transport security, from the configuration."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import grpc

from baton_server.config import Config


class ListenerConfigError(ValueError):
    """The TLS settings are incomplete or unreadable; the message says which."""


def is_loopback(listen: str) -> bool:
    """Whether ``HOST:PORT`` names a loopback address."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ListenerConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """TLS (or mTLS) credentials, or ``None`` for plaintext where that is allowed."""
    if config.tls_cert_file is None and config.tls_key_file is None:
        if config.tls_client_ca_file is not None:
            raise ListenerConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        if not config.insecure and not is_loopback(config.listen):
            raise ListenerConfigError(
                f"refusing to serve plaintext on {config.listen}: give --tls-cert and "
                "--tls-key, or --insecure (BATON_INSECURE=true) to allow plaintext"
            )
        return None
    if config.tls_cert_file is None or config.tls_key_file is None:
        raise ListenerConfigError("TLS needs both --tls-cert and --tls-key")
    pair = (_read(config.tls_key_file, "TLS key"), _read(config.tls_cert_file, "TLS certificate"))
    client_ca = (
        _read(config.tls_client_ca_file, "client CA bundle")
        if config.tls_client_ca_file is not None
        else None
    )
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
