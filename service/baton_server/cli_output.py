"""How the ``baton`` client commands print: aligned tables for people, JSON
for programs (``--json``), and one-line errors."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def when(value: datetime | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` UTC, or ``-``."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def compact(value: Any, width: int = 60) -> str:
    """A value as one line of JSON, shortened to ``width`` characters."""
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on the widest cell; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def plain(value: Any) -> Any:
    """Dataclasses, enums and datetimes as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Prints ``value`` as indented JSON on stdout."""
    print(json.dumps(plain(value), indent=2, default=str))


def fail(message: str, code: int = 1) -> int:
    """Prints one ``baton: error: ...`` line on stderr; returns the exit code."""
    print(f"baton: error: {message}", file=sys.stderr)
    return code
