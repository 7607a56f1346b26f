"""The migrations and the schema file describe the same database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from importlib import resources

import psycopg
import pytest
from psycopg import sql

from baton_server.migrate import migrate, migration_files
from tests.conftest import _with_database

# Everything about the public schema that matters, as comparable rows.
_CATALOG = """
SELECT 'column', table_name || '.' || column_name,
       concat_ws(' ', data_type, is_nullable, column_default)
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger', tgrelid::regclass || '.' || tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'function', proname, pg_get_functiondef(oid)
FROM pg_proc WHERE pronamespace = 'public'::regnamespace
ORDER BY 1, 2
"""


@pytest.fixture
def empty_database(postgres_url: str) -> Iterator[str]:
    name = f"baton_m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _catalog(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(_CATALOG).fetchall()
    return [row for row in rows if "baton_migrations" not in row[1]]


def test_a_migrated_database_equals_the_schema_file(database_url: str, empty_database: str) -> None:
    schema = resources.files("baton_server").joinpath("schema.sql").read_text()
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(schema)  # type: ignore[call-overload]
    assert _catalog(database_url) == _catalog(empty_database)


def test_migrating_twice_and_concurrently_applies_each_file_once(empty_database: str) -> None:
    async def both() -> list[list[str]]:
        return list(await asyncio.gather(migrate(empty_database), migrate(empty_database)))

    first, second = asyncio.run(both())
    assert sorted(first + second) == [name for _, name, _ in migration_files()]
    assert asyncio.run(migrate(empty_database)) == []
