"""Encoding user values into `Payload` messages and back.

JSON is the default because every language (and ``grpcurl``) can read it:
compact UTF-8 text in ``Payload.json``, with NaN, infinities and strings holding
lone surrogates refused since JSON cannot carry them (the server refuses them
too). Pickle is a Python-only opt-in (``serializer="pickle"``); a JSON serializer
refuses to unpickle, so a worker that did not opt in never executes pickled
bytes written by someone else.

Workflow and step *inputs* are the list of positional arguments (``[{"id": 7}]``);
outputs are the value itself. An empty payload means "no value": ``None``, or
no arguments.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from typing import Any, Literal

from baton._errors import SerializationError
from baton._proto.baton.v1 import common_pb2

__all__ = ["Serializer", "SerializerName"]

SerializerName = Literal["json", "pickle"]


class Serializer:
    """Encodes values with one encoding and decodes the encodings it accepts.

    Args:
        name: ``"json"`` (the default, portable) or ``"pickle"`` (Python-only;
            also reads JSON).
    """

    def __init__(self, name: SerializerName = "json") -> None:
        if name not in ("json", "pickle"):
            raise ValueError(f"serializer must be 'json' or 'pickle', not {name!r}")
        self.name: SerializerName = name

    def encode(self, value: Any) -> common_pb2.Payload:
        """Encodes one value."""
        if self.name == "pickle":
            try:
                return common_pb2.Payload(pickle=pickle.dumps(value))
            except Exception as exc:
                raise SerializationError(f"cannot pickle {type(value).__name__}: {exc}") from exc
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
            # UTF-8 text; a str holding a lone surrogate cannot be (UnicodeEncodeError).
            return common_pb2.Payload(json=text)
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"cannot encode {type(value).__name__} as JSON: {exc}"
                " (return JSON-compatible values, or use serializer='pickle')"
            ) from exc

    def decode(self, payload: common_pb2.Payload) -> Any:
        """Decodes one value; an empty payload is ``None``."""
        kind = payload.WhichOneof("value")
        if kind is None:
            return None
        if kind == "json":
            try:
                return json.loads(payload.json)
            except ValueError as exc:
                raise SerializationError(f"payload is not valid JSON: {exc}") from exc
        if self.name != "pickle":
            raise SerializationError(
                "payload is pickled; only a client or worker created with"
                " serializer='pickle' reads pickled payloads"
            )
        try:
            return pickle.loads(payload.pickle)
        except Exception as exc:
            raise SerializationError(f"cannot unpickle payload: {exc}") from exc

    def encode_args(self, args: Sequence[Any]) -> common_pb2.Payload:
        """Encodes positional arguments as one list; no arguments is an empty payload."""
        if not args:
            return common_pb2.Payload()
        return self.encode(list(args))

    def decode_args(self, payload: common_pb2.Payload) -> list[Any]:
        """Decodes positional arguments; an empty payload is no arguments."""
        value = self.decode(payload)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return list(value)
        raise SerializationError(
            f"arguments must be an array of positional arguments, not {type(value).__name__}"
        )
