"""``taskq schedules ...``: the periodic schedules of a running server, through
``taskq.Client`` (``list``, ``add``, ``delete``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from entrypoints.cli.common import CommandGroup, ConfigError, Handler
from taskq import Client


def _payload(text: str | None) -> Any:
    """The payload argument as JSON; a bare word (not JSON) is sent as a string."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _ask(client: Client, args: argparse.Namespace) -> Any:
    if args.action == "list":
        return client.schedules()
    if args.action == "delete":
        client.delete_schedule(args.name)
        return {"deleted": args.name}
    if args.action == "add":
        return client.put_schedule(
            args.name,
            args.type,
            args.cron,
            _payload(args.payload),
            timezone=args.timezone,
            missed=args.missed,
            enabled=not args.disabled,
        )
    raise ConfigError(f"unknown schedules action {args.action!r}")


def add_schedule_commands(
    group: CommandGroup,
    asking: Callable[[Callable[[Client, argparse.Namespace], Any]], Handler],
    connection_options: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    """``taskq schedules list | add NAME TYPE CRON [PAYLOAD] | delete NAME``;
    ``asking`` and ``connection_options`` are the client commands' own helpers."""
    command = group.add(
        "schedules",
        "List, add (or replace) and delete periodic schedules.",
        asking(_ask),
        details="`taskq schedules list`; `taskq schedules add NAME TYPE CRON [PAYLOAD] "
        "[--timezone Europe/Paris] [--missed run_once] [--disabled]`; "
        "`taskq schedules delete NAME`.",
    )
    actions = command.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list, add or delete"
    )
    connection_options(actions.add_parser("list", help="every schedule, with its next fire"))
    add = connection_options(
        actions.add_parser("add", help="create a schedule, or replace the one of that name")
    )
    add.add_argument("name", help="the schedule's name (letters, digits, . _ : -)")
    add.add_argument("type", help="the task type each fire submits")
    add.add_argument(
        "cron", help="5 fields ('*/5 * * * *'), or 6 with seconds first ('*/10 * * * * *')"
    )
    add.add_argument("payload", nargs="?", help="the tasks' payload, as JSON (default null)")
    add.add_argument("--timezone", default="UTC", help="IANA timezone of cron (default UTC)")
    add.add_argument(
        "--missed",
        choices=["skip", "run_once"],
        default="skip",
        help="fires missed while no worker ran: skip them (default), or run once for all",
    )
    add.add_argument("--disabled", action="store_true", help="store it disabled")
    delete = connection_options(actions.add_parser("delete", help="delete a schedule"))
    delete.add_argument("name", help="the schedule's name")
