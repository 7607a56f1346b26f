"""Checks of request fields; each failure names the field and what is wrong."""

from __future__ import annotations

import re

import msgspec
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from baton._proto.baton.v1 import common_pb2 as pb
from baton_server.errors import InvalidArgument

MAX_ID_LENGTH = 200
MAX_NAME_LENGTH = 200
# A schedule's name leaves room in its workflow ids (`<name>-<tick>`) for the tick.
MAX_SCHEDULE_NAME_LENGTH = 150
_ID = re.compile(r"[A-Za-z0-9._:@/+=-]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
# Parses JSON text to check it, building no Python values: microseconds for a
# small payload, ~1 ms per MB (the stdlib's json.loads takes ~15 times longer).
_JSON_SYNTAX = msgspec.json.Decoder(msgspec.Raw)
_JSON_ARRAY = re.compile(r"[ \t\n\r]*\[")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def workflow_id(value: str, field: str = "workflow_id") -> str:
    """A required id: 1-200 of letters, digits and ``._:@/+=-``."""
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(field, f"is {len(value)} characters; the limit is {MAX_ID_LENGTH}")
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            field, f"{value!r} has characters other than letters, digits and ._:@/+=-"
        )
    return value


def name(value: str, field: str) -> str:
    """A required name: 1-200 of letters, digits and ``_.:-``, not starting with a digit."""
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidArgument(field, f"is {len(value)} characters; the limit is {MAX_NAME_LENGTH}")
    if not _NAME.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{value!r} must start with a letter or _ and hold only letters, digits and _.:-",
        )
    return value


def schedule_name(value: str, field: str) -> str:
    """A name (see :func:`name`) of at most 150 characters, so that the workflow
    ids of its ticks (``<name>-<tick>``) fit the id limit."""
    name(value, field)
    if len(value) > MAX_SCHEDULE_NAME_LENGTH:
        raise InvalidArgument(
            field,
            f"is {len(value)} characters; a schedule's name is limited to "
            f"{MAX_SCHEDULE_NAME_LENGTH} so that its workflow ids fit",
        )
    return value


def payload(
    value: pb.Payload | pb.WorkflowError, field: str, limit: int, *, arguments: bool = False
) -> None:
    """A payload within the size limit whose JSON, if it is JSON, is valid JSON
    (a WorkflowError's ``details`` likewise), so that every reader can decode it.

    Args:
        arguments: The payload holds positional arguments: JSON must be an array.
    """
    size = value.ByteSize()
    if size > limit:
        raise InvalidArgument(
            field, f"is {size} bytes; the server's payload limit is {limit} bytes"
        )
    if isinstance(value, pb.WorkflowError):
        if value.HasField("details"):
            json_text(value.details, f"{field}.details")
        return
    json_text(value, field, arguments=arguments)


def json_text(value: pb.Payload, field: str, *, arguments: bool = False) -> None:
    """A Payload whose ``json``, when set, is one JSON value (an array for
    ``arguments``); pickled and empty payloads pass (only Python reads pickles)."""
    if value.WhichOneof("value") != "json":
        return
    text = value.json
    if not text:
        raise InvalidArgument(
            field, "is empty, which is not JSON (leave the Payload unset: no value)"
        )
    try:
        _JSON_SYNTAX.decode(text)
    except msgspec.DecodeError as exc:
        hint = " (a lone UTF-16 surrogate escape?)" if _SURROGATE_ESCAPE.search(text) else ""
        raise InvalidArgument(field, f"is not valid JSON: {exc}{hint}") from None
    except RecursionError:
        raise InvalidArgument(field, "is not valid JSON here: nested too deeply") from None
    if arguments and not _JSON_ARRAY.match(text):
        raise InvalidArgument(
            field, 'must be a JSON array of positional arguments, e.g. [{"id": 7}] or []'
        )


def seconds(value: Duration, field: str, *, default: float, maximum: float) -> float:
    """A duration in seconds: unset gives ``default``; negative or too long is refused."""
    if value.seconds == 0 and value.nanos == 0:
        return default
    total: float = value.ToTimedelta().total_seconds()
    if total < 0:
        raise InvalidArgument(field, "must not be negative")
    if total > maximum:
        raise InvalidArgument(field, f"is {total:g} s; the limit is {maximum:g} s")
    return total


def release_threshold(message: Message, *, maximum: float) -> float | None:
    """A request's ``release_if_longer_than`` in seconds; ``None`` when unset
    (never release), zero when set to zero (release at once)."""
    if not message.HasField("release_if_longer_than"):
        return None
    value: Duration = message.release_if_longer_than  # type: ignore[attr-defined]
    return seconds(value, "release_if_longer_than", default=0.0, maximum=maximum)


def page_size(value: int, field: str = "page_size", *, default: int, maximum: int = 1000) -> int:
    """A page size: 0 gives ``default``; 1 to ``maximum`` otherwise."""
    if value == 0:
        return default
    if value < 0 or value > maximum:
        raise InvalidArgument(field, f"must be between 1 and {maximum}, not {value}")
    return value
