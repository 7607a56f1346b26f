"""Applies the ordered SQL files of ``migrations/`` under an advisory lock, so
several replicas may start at once; applied versions are recorded in
``baton_migrations``.
"""

from __future__ import annotations

import logging
import re
from importlib import resources

import psycopg

log = logging.getLogger("baton.migrate")

# An arbitrary constant that names Baton's migration lock.
_LOCK_ID = 0x0BA7_0A11
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` for every migration, in order."""
    found = []
    for entry in resources.files("baton_server").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(url: str) -> list[str]:
    """Brings the database at ``url`` up to date; returns the files applied."""
    applied: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS baton_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM baton_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for version, name, text in migration_files():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(text)  # our own file, never input
                    await conn.execute(
                        "INSERT INTO baton_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                log.info("applied migration %s", name)
                applied.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied
