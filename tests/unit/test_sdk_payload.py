"""The SDK's payload encoding: JSON by default, pickle only when asked for."""

from __future__ import annotations

import pytest

from baton import SerializationError
from baton._payload import Serializer
from baton._proto.baton.v1 import common_pb2


def test_json_payloads_are_compact_json_text() -> None:
    payload = Serializer().encode({"id": 7, "items": [1, 2]})
    assert payload.json == '{"id":7,"items":[1,2]}'


def test_arguments_travel_as_a_json_array_of_positional_arguments() -> None:
    serializer = Serializer()
    payload = serializer.encode_args(({"id": 7}, "x"))
    assert payload.json == '[{"id":7},"x"]'
    assert serializer.decode_args(payload) == [{"id": 7}, "x"]


def test_an_empty_payload_is_none_and_no_arguments() -> None:
    serializer = Serializer()
    assert serializer.decode(common_pb2.Payload()) is None
    assert serializer.decode_args(common_pb2.Payload()) == []
    assert serializer.encode_args(()) == common_pb2.Payload()


def test_large_integers_keep_their_precision() -> None:
    serializer = Serializer()
    big = 2**70 + 1
    assert serializer.decode(serializer.encode(big)) == big


def test_values_json_cannot_carry_are_refused_clearly() -> None:
    with pytest.raises(SerializationError, match="serializer='pickle'"):
        Serializer().encode({1, 2})
    with pytest.raises(SerializationError):
        Serializer().encode(float("nan"))
    with pytest.raises(SerializationError, match="surrogate"):
        Serializer().encode(["caf\udce9"])  # os.fsdecode of undecodable bytes


def test_text_travels_as_utf8_not_escapes() -> None:
    assert Serializer().encode(["été", "✓"]).json == '["été","✓"]'


def test_pickle_is_opt_in_and_round_trips_python_objects() -> None:
    serializer = Serializer("pickle")
    payload = serializer.encode({1, 2})
    assert payload.WhichOneof("value") == "pickle"
    assert serializer.decode(payload) == {1, 2}
    assert serializer.decode(common_pb2.Payload(json="[1]")) == [1]


def test_a_json_serializer_never_unpickles() -> None:
    pickled = Serializer("pickle").encode([1])
    with pytest.raises(SerializationError, match="pickled"):
        Serializer().decode(pickled)


def test_arguments_that_are_not_an_array_are_refused() -> None:
    with pytest.raises(SerializationError, match="array"):
        Serializer().decode_args(common_pb2.Payload(json='{"id": 7}'))


def test_an_unknown_serializer_name_is_refused() -> None:
    with pytest.raises(ValueError, match="json"):
        Serializer("yaml")  # type: ignore[arg-type]
