"""``baton queue list|get`` and ``baton schedule list|pause|resume|trigger|backfill``:
inspect queues and operate cron schedules through the SDK `Client`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from baton import Client, QueueInfo, ScheduleInfo
from baton_server.cli_connect import add_client_flags, connect
from baton_server.cli_output import compact, print_json, table, when
from baton_server.config import parse_age


def add_queue_commands(commands: Any) -> None:
    """Registers ``queue list|get``."""
    queue = commands.add_parser("queue", help="inspect queues")
    verbs = queue.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="list queues with their limits and counts")
    listing.set_defaults(run=_queue_list)
    get = verbs.add_parser("get", help="show a queue's configuration, depth and running count")
    get.add_argument("queue_name")
    get.set_defaults(run=_queue_get)
    for parser in (listing, get):
        add_client_flags(parser)


def add_schedule_commands(commands: Any) -> None:
    """Registers ``schedule list|pause|resume|trigger|backfill``."""
    schedule = commands.add_parser("schedule", help="operate cron schedules")
    verbs = schedule.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="list schedules")
    listing.set_defaults(run=_schedule_list)
    parsers = [listing]
    for verb, text, run in [
        ("pause", "stop firing a schedule", _pause),
        ("resume", "fire a paused schedule again, from its next tick", _resume),
        ("trigger", "start the schedule's workflow now, once", _trigger),
    ]:
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("schedule_name")
        parser.set_defaults(run=run)
        parsers.append(parser)
    backfill = verbs.add_parser(
        "backfill", help="start the ticks of a past time range that have not started"
    )
    backfill.add_argument("schedule_name")
    backfill.add_argument(
        "--start",
        required=True,
        type=_moment,
        metavar="TIME",
        help="first tick time (ISO 8601, UTC if no offset, or an age such as 2h meaning 2 h ago)",
    )
    backfill.add_argument(
        "--end",
        type=_moment,
        metavar="TIME",
        help="end of the range, exclusive (same forms; default: now)",
    )
    backfill.set_defaults(run=_backfill)
    parsers.append(backfill)
    for parser in parsers:
        add_client_flags(parser)


def run_queue_command(args: argparse.Namespace) -> tuple[int, str]:
    """Runs a ``queue`` or ``schedule`` command: ``(exit code, error or "")``.

    Failures of the service raise `baton.BatonError`, which the caller reports.
    """
    with connect(args) as client:
        code: int = args.run(client, args)
    return code, ""


def _moment(text: str) -> datetime:
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_age(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO 8601 time nor an age such as 30m, 2h or 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- queues -------------------------------------------------------------------------


def _limit(value: int) -> str:
    return str(value) if value else "-"


def _seconds(value: float | None) -> str:
    return f"{value:g}s" if value is not None else "-"


def _rate(queue: QueueInfo) -> str:
    if queue.rate_limit is None:
        return "-"
    limit, period = queue.rate_limit
    return f"{limit}/{period:g}s"


def _queue_list(client: Client, args: argparse.Namespace) -> int:
    found = client.list_queues()
    if args.json:
        print_json(found)
        return 0
    headers = [
        "QUEUE", "CONCURRENCY", "PER WORKER", "RATE", "PRIORITY", "PARTITIONED", "TIMEOUT",
        "DEPTH", "RUNNING",
    ]  # fmt: skip
    rows = [
        [
            q.name,
            _limit(q.concurrency),
            _limit(q.worker_concurrency),
            _rate(q),
            "yes" if q.priority_enabled else "no",
            "yes" if q.partitioned else "no",
            _seconds(q.start_to_close_timeout),
            str(q.depth),
            str(q.running),
        ]
        for q in found
    ]
    print(table(headers, rows) if rows else "no queues")
    return 0


def _queue_get(client: Client, args: argparse.Namespace) -> int:
    q = client.get_queue(args.queue_name)
    if args.json:
        print_json(q)
        return 0
    fields = [
        ("queue", q.name),
        ("concurrency", _limit(q.concurrency) + (" per partition key" if q.partitioned else "")),
        ("per worker", _limit(q.worker_concurrency)),
        ("rate limit", _rate(q)),
        ("priority", "enabled" if q.priority_enabled else "disabled"),
        ("partitioned", "yes" if q.partitioned else "no"),
        ("timeout", _seconds(q.start_to_close_timeout)),
        ("depth", str(q.depth)),
        ("running", str(q.running)),
    ]
    print(_lines(fields))
    return 0


def _lines(fields: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in fields)


# -- schedules ----------------------------------------------------------------------


def _schedule_list(client: Client, args: argparse.Namespace) -> int:
    found = client.list_schedules()
    if args.json:
        print_json(found)
        return 0
    headers = ["SCHEDULE", "WORKFLOW", "CRON", "ZONE", "QUEUE", "STATE", "NEXT", "LAST", "CONTEXT"]
    rows = [[*_row(s), compact(s.context, 40)] for s in found]
    print(table(headers, rows) if rows else "no schedules")
    return 0


def _row(s: ScheduleInfo) -> list[str]:
    return [
        s.name,
        s.workflow_name,
        s.cron,
        s.time_zone or "UTC",
        s.queue or "-",
        "paused" if s.paused else "active",
        "-" if s.paused else when(s.next_fire_at),
        when(s.last_fired_at),
    ]


def _pause(client: Client, args: argparse.Namespace) -> int:
    schedule = client.pause_schedule(args.schedule_name)
    if args.json:
        print_json(schedule)
        return 0
    print(f"paused schedule {schedule.name}")
    return 0


def _resume(client: Client, args: argparse.Namespace) -> int:
    schedule = client.resume_schedule(args.schedule_name)
    if args.json:
        print_json(schedule)
        return 0
    print(f"resumed schedule {schedule.name}; next tick {when(schedule.next_fire_at)} UTC")
    return 0


def _trigger(client: Client, args: argparse.Namespace) -> int:
    handle = client.trigger_schedule(args.schedule_name)
    if args.json:
        print_json({"workflow_id": handle.workflow_id})
        return 0
    print(f"started workflow {handle.workflow_id}")
    return 0


def _backfill(client: Client, args: argparse.Namespace) -> int:
    end = args.end or datetime.now(UTC)
    handles = client.backfill_schedule(args.schedule_name, args.start, end)
    ids = [h.workflow_id for h in handles]
    if args.json:
        print_json({"workflow_ids": ids})
        return 0
    print(f"started {len(ids)} workflow(s)" + (":" if ids else ""))
    for workflow_id in ids:
        print(f"  {workflow_id}")
    return 0
