"""The keyword options a workflow's ``start_workflow`` takes for a child."""

from __future__ import annotations

import pytest

from baton._queues import checked_queue_options


def test_the_queue_options_pass_and_anything_else_is_a_type_error() -> None:
    options = {"queue": "q", "deduplication_id": "d", "priority": 2, "delay": 1.0}
    assert checked_queue_options(dict(options), "start_workflow") == options
    # Unpack[QueueOptions] is checked by type checkers only: a misspelt option
    # must not be dropped without a word.
    with pytest.raises(
        TypeError, match="start_workflow\\(\\) got an unexpected keyword argument 'dedup_id'"
    ):
        checked_queue_options({"queue": "q", "dedup_id": "d"}, "start_workflow")
