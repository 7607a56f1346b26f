"""``baton workflow list|get|steps|cancel|resume|fork|delete``: find and fix
workflows through the SDK `Client`, without SQL."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from baton import Client, SerializationError, StepInfo, WorkflowInfo, WorkflowStatus
from baton_server.cli_connect import add_client_flags, connect
from baton_server.cli_output import compact, plain, print_json, table, when
from baton_server.config import parse_age


def add_workflow_commands(commands: Any) -> None:
    """Registers ``workflow`` and its subcommands on the top-level subparsers."""
    workflow = commands.add_parser("workflow", help="list, inspect and operate workflows")
    verbs = workflow.add_subparsers(dest="verb", required=True)

    listing = verbs.add_parser("list", help="list workflows, newest first")
    listing.add_argument(
        "--status",
        action="append",
        choices=[s.value for s in WorkflowStatus],
        type=str.upper,
        help="only this status (repeat for several)",
    )
    listing.add_argument("--name", help="only workflows with this name")
    listing.add_argument("--queue", help="only workflows on this queue")
    listing.add_argument("--app-version", help="only workflows pinned to this app version")
    listing.add_argument("--parent", help="only children of this workflow")
    listing.add_argument("--prefix", help="only workflow ids starting with this")
    for flag, what in [
        ("--created-after", "created at or after"),
        ("--created-before", "created before"),
        ("--completed-after", "finished at or after"),
        ("--completed-before", "finished before"),
    ]:
        listing.add_argument(
            flag,
            type=_moment,
            metavar="TIME",
            help=f"only workflows {what} TIME (ISO 8601, or an age such as 2h meaning 2 h ago)",
        )
    listing.add_argument("--oldest-first", action="store_true", help="oldest first")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument(
        "--payloads", action="store_true", help="also fetch inputs and outputs (JSON only)"
    )
    listing.set_defaults(run=_list)

    get = verbs.add_parser("get", help="show one workflow")
    get.add_argument("workflow_id")
    get.set_defaults(run=_get)

    steps = verbs.add_parser("steps", help="show a workflow's recorded steps")
    steps.add_argument("workflow_id")
    steps.set_defaults(run=_steps)

    cancel = verbs.add_parser("cancel", help="cancel a workflow (it stops at its next step)")
    cancel.add_argument("workflow_id")
    cancel.add_argument("--children", action="store_true", help="also cancel its descendants")
    cancel.set_defaults(run=_cancel)

    resume = verbs.add_parser(
        "resume", help="resume a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow"
    )
    resume.add_argument("workflow_id")
    resume.add_argument("--app-version", help="run it on workers of this app version from now on")
    resume.set_defaults(run=_resume)

    fork = verbs.add_parser("fork", help="start a copy that re-runs from a step")
    fork.add_argument("workflow_id")
    fork.add_argument(
        "--step", type=int, required=True, help="first step to run again (1: all of them)"
    )
    fork.add_argument("--new-id", help="the fork's workflow id (default: a random UUID)")
    fork.add_argument("--app-version", help="run the fork on workers of this app version")
    fork.set_defaults(run=_fork)

    delete = verbs.add_parser("delete", help="delete a finished workflow and all its rows")
    delete.add_argument("workflow_id")
    delete.add_argument("--children", action="store_true", help="also delete its descendants")
    delete.set_defaults(run=_delete)

    for verb in (listing, get, steps, cancel, resume, fork, delete):
        add_client_flags(verb)


def run_workflow_command(args: argparse.Namespace) -> int:
    """Runs the parsed ``workflow`` subcommand; returns the exit code."""
    with connect(args) as client:
        code: int = args.run(client, args)
        return code


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


def _list(client: Client, args: argparse.Namespace) -> int:
    found = client.list_workflows(
        status=args.status,
        name=args.name,
        limit=args.limit,
        queue=args.queue,
        app_version=args.app_version,
        parent_workflow_id=args.parent,
        workflow_id_prefix=args.prefix,
        created_after=args.created_after,
        created_before=args.created_before,
        completed_after=args.completed_after,
        completed_before=args.completed_before,
        oldest_first=args.oldest_first,
        load_payloads=args.payloads,
    )
    if args.json:
        print_json(found)
        return 0
    headers = ["WORKFLOW ID", "NAME", "STATUS", "CREATED", "COMPLETED", "VERSION", "ATTEMPT"]
    rows = [
        [
            w.workflow_id,
            w.name,
            w.status.value,
            when(w.created_at),
            when(w.completed_at),
            w.app_version or "-",
            str(w.attempt),
        ]
        for w in found
    ]
    if args.payloads:
        headers.append("OUTPUT/ERROR")
        for row, w in zip(rows, found, strict=True):
            row.append(str(w.error) if w.error else compact(w.output))
    print(table(headers, rows) if rows else "no workflows match")
    return 0


def _get(client: Client, args: argparse.Namespace) -> int:
    note = ""
    try:
        info = client.get_workflow(args.workflow_id)
    except SerializationError as exc:
        info = client.get_workflow(args.workflow_id, load_payloads=False)
        note = f"(input and output not shown: {exc})"
    if args.json:
        print_json(info)
        return 0
    print(_describe(info, note))
    return 0


def _describe(w: WorkflowInfo, note: str) -> str:
    fields: list[tuple[str, str]] = [
        ("workflow id", w.workflow_id),
        ("name", w.name),
        ("status", w.status.value),
        ("waiting", w.waiting_reason or "-"),
        ("app version", w.app_version or "(any)"),
        ("queue", w.queue or "-"),
        ("attempt", f"{w.attempt} (max {w.max_attempts or 'default'})"),
        ("owner worker", w.owner_worker_id or "-"),
        ("parent", w.parent_workflow_id or "-"),
        ("forked from", w.forked_from or "-"),
        ("created", when(w.created_at)),
        ("started", when(w.started_at)),
        ("completed", when(w.completed_at)),
        ("deadline", when(w.deadline)),
    ]
    if note:
        fields.append(("payloads", note))
    else:
        fields.append(("input", compact(w.input, 200)))
        if w.status is WorkflowStatus.SUCCESS:
            fields.append(("output", compact(w.output, 200)))
    if w.error is not None:
        fields.append(("error", str(w.error)))
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in fields)


def _steps(client: Client, args: argparse.Namespace) -> int:
    found = client.list_steps(args.workflow_id)
    if args.json:
        print_json(found)
        return 0
    rows = [
        [
            str(s.function_id),
            s.name,
            when(s.started_at),
            _duration(s),
            f"error {s.error}" if s.error else compact(s.output),
            s.child_workflow_id or "-",
        ]
        for s in found
    ]
    headers = ["STEP", "NAME", "STARTED", "TOOK", "OUTPUT/ERROR", "CHILD"]
    print(table(headers, rows) if rows else f"workflow {args.workflow_id} has no recorded steps")
    return 0


def _duration(step: StepInfo) -> str:
    if step.started_at is None or step.completed_at is None:
        return "-"
    return f"{(step.completed_at - step.started_at).total_seconds():.3f}s"


def _cancel(client: Client, args: argparse.Namespace) -> int:
    cancelled = client.cancel_workflow(args.workflow_id, include_children=args.children)
    status = client.get_workflow(args.workflow_id, load_payloads=False).status
    if args.json:
        print_json({"workflow_id": args.workflow_id, "status": status, "cancelled": cancelled})
        return 0
    if args.workflow_id in cancelled:
        print(f"cancelled workflow {args.workflow_id}")
    else:
        print(f"workflow {args.workflow_id} is already finished ({status.value}); not cancelled")
    others = [i for i in cancelled if i != args.workflow_id]
    if others:
        print(f"cancelled {len(others)} descendant(s): {', '.join(others)}")
    return 0


def _resume(client: Client, args: argparse.Namespace) -> int:
    client.resume_workflow(args.workflow_id, app_version=args.app_version)
    info = client.get_workflow(args.workflow_id, load_payloads=False)
    if args.json:
        print_json(info)
        return 0
    print(f"resumed workflow {args.workflow_id} ({info.status.value})")
    return 0


def _fork(client: Client, args: argparse.Namespace) -> int:
    handle = client.fork_workflow(
        args.workflow_id, args.step, new_workflow_id=args.new_id, app_version=args.app_version
    )
    info = client.get_workflow(handle.workflow_id, load_payloads=False)
    if args.json:
        print_json(info)
        return 0
    version = f" on app version {info.app_version}" if info.app_version else ""
    print(
        f"forked workflow {args.workflow_id} from step {args.step} as {handle.workflow_id}{version}"
    )
    return 0


def _delete(client: Client, args: argparse.Namespace) -> int:
    deleted = client.delete_workflow(args.workflow_id, include_children=args.children)
    if args.json:
        print_json(plain({"workflow_id": args.workflow_id, "deleted_count": deleted}))
        return 0
    print(f"deleted {deleted} workflow(s)")
    return 0
