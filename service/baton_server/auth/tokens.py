"""Bearer tokens and their roles.

The server never stores or logs a token in clear: it is configured with the
SHA-256 of each token (``baton token new`` prints a token and its line). One
entry per line, in a file (``--tokens-file`` / ``BATON_TOKENS_FILE``) or in
``BATON_TOKENS`` separated by ``;``::

    worker  sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 payments
    client  sha256:...  checkout-api
    admin   sha256:...  oncall

Blank lines and ``#`` comments are ignored; the third column is a free-form name
used in logs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Role(StrEnum):
    """What a token may do (see ``auth.policy``)."""

    WORKER = "worker"
    CLIENT = "client"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who made a call."""

    role: Role
    """The token's role."""
    name: str
    """The token's name from the configuration (never the token)."""


class TokenConfigError(ValueError):
    """The token configuration cannot be read; the message says where and why."""


def hash_token(token: str) -> str:
    """The configured form of a token: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return "bt_" + secrets.token_urlsafe(32)


class TokenStore:
    """Resolves bearer tokens to principals; empty means "no authentication"."""

    def __init__(self, entries: dict[str, Principal]) -> None:
        self._by_hash = entries

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (otherwise the server runs open)."""
        return bool(self._by_hash)

    def __len__(self) -> int:
        return len(self._by_hash)

    def resolve(self, token: str) -> Principal | None:
        """The principal of ``token``, or ``None`` when it is not configured."""
        digest = hash_token(token)
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    @classmethod
    def parse(cls, text: str, source: str) -> TokenStore:
        """Reads entries (see the module docstring); ``source`` names them in errors."""
        entries: dict[str, Principal] = {}
        for number, raw in enumerate(text.replace(";", "\n").splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) < 2:
                raise TokenConfigError(f"{source}:{number}: expected '<role> sha256:<hex> [name]'")
            role_text, digest, *rest = parts
            try:
                role = Role(role_text)
            except ValueError:
                raise TokenConfigError(
                    f"{source}:{number}: unknown role {role_text!r}; use worker, client or admin"
                ) from None
            if not digest.startswith("sha256:") or len(digest) != 71:
                raise TokenConfigError(
                    f"{source}:{number}: expected a token hash 'sha256:<64 hex digits>' "
                    "(tokens themselves are never configured; see `baton token new`)"
                )
            entries[digest.lower()] = Principal(role, " ".join(rest) or f"{role}-{number}")
        return cls(entries)

    @classmethod
    def load(cls, file: Path | None, inline: str | None) -> TokenStore:
        """Reads the tokens file and/or the inline entries."""
        text, sources = "", []
        if file is not None:
            try:
                text += file.read_text(encoding="utf-8") + "\n"
            except OSError as exc:
                raise TokenConfigError(f"cannot read tokens file {file}: {exc}") from None
            sources.append(str(file))
        if inline:
            text += inline
            sources.append("BATON_TOKENS")
        return cls.parse(text, " + ".join(sources) or "tokens")
