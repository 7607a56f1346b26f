"""The named SQL blocks as psycopg will read them: each parameter is passed in
one format (psycopg refuses a block that asks for one value both as text and
in binary, and it reads placeholders in comments too)."""

from __future__ import annotations

import re

from baton_server.queries import _load

_PLACEHOLDER = re.compile(r"%\(([a-z0-9_]+)\)([sbt])")
_TEXT_ARRAY = re.compile(r"%\([a-z0-9_]+\)s::[a-z0-9_ ]+\[\]")


def test_each_parameter_of_a_block_has_one_format() -> None:
    mixed = {}
    for name, body in _load().items():
        formats: dict[str, set[str]] = {}
        for parameter, kind in _PLACEHOLDER.findall(body):
            formats.setdefault(parameter, set()).add(kind)
        both = sorted(p for p, kinds in formats.items() if len(kinds) > 1)
        if both:
            mixed[name] = both
    assert mixed == {}


def test_arrays_cast_to_their_type_are_passed_in_binary() -> None:
    as_text = {name: _TEXT_ARRAY.findall(body) for name, body in _load().items()}
    assert {name: found for name, found in as_text.items() if found} == {}
