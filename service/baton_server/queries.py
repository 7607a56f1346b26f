"""Loads the named SQL blocks of ``sql/*.sql`` once.

A block starts with ``-- name --`` and one comment line saying what it does;
parameters are ``%(name)s``, never interpolated text. An array cast to its
type is passed in binary, ``%(name)b::text[]``: psycopg dumps a list of a
thousand strings, timestamps or byte strings 6 to 15 times faster than as
text, where the text dumps took half the service's own time in its batched
statements (`bench/RESULTS.md`, fourteenth session).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    blocks: dict[str, str] = {}
    folder = resources.files("baton_server").joinpath("sql")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        parts = _HEADER.split(entry.read_text(encoding="utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in blocks:
                raise RuntimeError(f"SQL block {name!r} is defined twice")
            blocks[name] = body.strip()
    return blocks


def query(name: str) -> str:
    """Returns the SQL text of the block called ``name``."""
    try:
        return _load()[name]
    except KeyError:
        raise KeyError(f"no SQL block named {name!r} in baton_server/sql/") from None
