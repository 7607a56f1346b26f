"""Timestamps are converted by hand on the hot paths (a third of protobuf's
cost); they must agree with Timestamp.FromDatetime and ToDatetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from baton._convert import datetime_from_proto, timestamp
from baton._proto.baton.v1 import worker_service_pb2
from baton_server.errors import InvalidArgument
from baton_server.servicers import convert

pytestmark = pytest.mark.timeout(10)

MOMENTS = [
    datetime(2026, 11, 21, 22, 6, 1, 123456, tzinfo=UTC),
    datetime(2026, 11, 21, 23, 6, 1, 999999, tzinfo=timezone(timedelta(hours=1))),
    datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    datetime(1950, 5, 3, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_moment_converts_as_protobuf_converts_it(moment: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(moment)
    assert timestamp(moment) == expected
    assert convert.timestamp(moment) == expected
    assert convert.datetime_in(expected, "at") == moment == expected.ToDatetime(tzinfo=UTC)
    request = worker_service_pb2.RecordStepRequest(started_at=expected)
    assert datetime_from_proto(request, "started_at") == moment


def test_a_naive_datetime_is_local_time_on_the_server() -> None:
    naive = datetime(2026, 11, 21, 22, 6, 1)
    assert convert.timestamp(naive) == convert.timestamp(naive.astimezone(UTC))


@pytest.mark.parametrize(
    "stamp", [Timestamp(seconds=1, nanos=-1), Timestamp(nanos=10**9), Timestamp(seconds=2**40)]
)
def test_a_timestamp_out_of_range_is_refused_by_field(stamp: Timestamp) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.datetime_in(stamp, "created_after")
    assert caught.value.violations[0][0] == "created_after"
