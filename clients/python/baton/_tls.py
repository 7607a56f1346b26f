"""Transport security of the SDK's channels, and how targets are spelled.

Plaintext only when asked for: a target on this machine (``localhost``,
``127.0.0.1``, ``[::1]``) is reached in plaintext unless TLS is configured; any
other target uses TLS (with the system's trusted CAs unless ``ca_cert`` is
given) unless ``tls=False`` is passed.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["TLSConfig", "channel_credentials", "channel_target"]


@dataclass(frozen=True)
class TLSConfig:
    """How to connect with TLS (and, with a client certificate, mTLS)."""

    ca_cert: bytes | Path | None = None
    """PEM CA bundle the server's certificate must chain to; ``None``: the system's."""
    client_cert: bytes | Path | None = None
    """PEM client certificate chain, for servers that require mTLS."""
    client_key: bytes | Path | None = None
    """PEM private key of ``client_cert``."""
    server_name: str | None = None
    """The name to verify in the server's certificate, when it differs from the target's host."""

    @classmethod
    def from_env(cls) -> TLSConfig | None:
        """From the paths in ``BATON_TLS_CA``/``BATON_TLS_CERT``/``BATON_TLS_KEY``, if set."""
        ca, cert, key = (
            os.environ.get(n) for n in ("BATON_TLS_CA", "BATON_TLS_CERT", "BATON_TLS_KEY")
        )
        if not (ca or cert or key):
            return None
        return cls(
            ca_cert=Path(ca) if ca else None,
            client_cert=Path(cert) if cert else None,
            client_key=Path(key) if key else None,
        )


def _pem(value: bytes | Path | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.read_bytes()


def _hosts(target: str) -> list[str]:
    hosts = []
    for address in target.split(","):
        address = address.strip().split("://", 1)[-1]
        host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
        hosts.append(host.strip("[]"))
    return hosts


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def channel_credentials(
    tls: TLSConfig | bool | None, target: str
) -> tuple[grpc.ChannelCredentials | None, list[tuple[str, str]]]:
    """Credentials (``None``: plaintext) and channel options for ``target``."""
    if tls is None:
        tls = TLSConfig.from_env()
    if tls is None:
        tls = not all(_is_loopback(host) for host in _hosts(target))
    if tls is False:
        return None, []
    config = TLSConfig() if tls is True else tls
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_pem(config.ca_cert),
        private_key=_pem(config.client_key),
        certificate_chain=_pem(config.client_cert),
    )
    options = [("grpc.ssl_target_name_override", config.server_name)] if config.server_name else []
    return credentials, options


def channel_target(target: str) -> str:
    """gRPC's spelling of a target. A comma-separated list of IP addresses (several
    replicas) becomes one ``ipv4:``/``ipv6:`` target, so the channel moves to the
    next replica when one goes away; anything else is passed through."""
    if "," not in target:
        return target
    addresses = [a.strip().replace("localhost:", "127.0.0.1:") for a in target.split(",")]
    hosts = [a.rsplit(":", 1)[0].strip("[]") for a in addresses]
    try:
        versions = {ipaddress.ip_address(h).version for h in hosts}
    except ValueError:
        raise ValueError(
            f"target {target!r}: a list of replicas must be IP:port addresses "
            "(or use one DNS name that resolves to all of them)"
        ) from None
    if versions == {4}:
        return "ipv4:" + ",".join(addresses)
    if versions == {6}:
        return "ipv6:" + ",".join(addresses)
    raise ValueError(f"target {target!r}: mix of IPv4 and IPv6 addresses")
