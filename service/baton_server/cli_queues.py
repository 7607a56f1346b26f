"""``baton queue list|get`` and ``baton schedule list|pause|resume|trigger|backfill``.

The queues and schedules release fills these in; until then each command
parses its arguments and says, in one line, that the capability is not
available yet (exit code 1).
"""

from __future__ import annotations

import argparse
from typing import Any

from baton_server.cli_connect import add_client_flags


def add_queue_commands(commands: Any) -> None:
    """Registers ``queue list|get``."""
    queue = commands.add_parser("queue", help="inspect queues (not yet available)")
    verbs = queue.add_subparsers(dest="verb", required=True)
    add_client_flags(verbs.add_parser("list", help="list queues"))
    get = verbs.add_parser("get", help="show a queue's configuration, depth and running count")
    get.add_argument("queue_name")
    add_client_flags(get)


def add_schedule_commands(commands: Any) -> None:
    """Registers ``schedule list|pause|resume|trigger|backfill``."""
    schedule = commands.add_parser("schedule", help="operate cron schedules (not yet available)")
    verbs = schedule.add_subparsers(dest="verb", required=True)
    add_client_flags(verbs.add_parser("list", help="list schedules"))
    for verb, text in [
        ("pause", "stop firing a schedule"),
        ("resume", "fire a paused schedule again"),
        ("trigger", "start the schedule's workflow now"),
    ]:
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("schedule_name")
        add_client_flags(parser)
    backfill = verbs.add_parser("backfill", help="start the ticks of a past time range")
    backfill.add_argument("schedule_name")
    backfill.add_argument("--start", required=True, help="first tick time (ISO 8601)")
    backfill.add_argument("--end", required=True, help="end of the range (ISO 8601, exclusive)")
    add_client_flags(backfill)


def run_queue_command(args: argparse.Namespace) -> tuple[int, str]:
    """Runs a ``queue`` or ``schedule`` command: ``(exit code, error or "")``."""
    capability = "queues" if args.command == "queue" else "cron schedules"
    return (
        1,
        f"baton {args.command} {args.verb}: {capability} are not available in this release yet",
    )
