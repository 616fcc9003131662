"""``taskq types``: list the task types with their flow limits, pause and resume one,
or set its limits (README: "Concurrency and rate limits, pause")::

    taskq types                                  # the types, their limits and pause
    taskq types pause send-report
    taskq types resume send-report
    taskq types set send-report --max-concurrency 5 --rate 10 --burst 20
    taskq types set send-report --rate none      # removes the rate limit
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from entrypoints.cli.common import CommandGroup, ConfigError
from taskq import Client
from taskq.models import TaskTypeChange

NONE = "none"
"""What ``set`` takes for "no such limit" (``null`` in the API)."""


def _limit(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text.strip().lower() == NONE:
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number or '{NONE}'") from None

    return parse


def _ask(client: Client, args: argparse.Namespace) -> Any:
    action = args.types_action
    if action is None:
        return client.task_types()
    if action in ("pause", "resume"):
        return client.change_task_type(args.type, paused=action == "pause")
    changes: TaskTypeChange = {}
    for name in ("max_concurrency", "rate", "burst"):
        value = getattr(args, name)
        if value is not _UNSET:
            changes[name] = value
    if not changes:
        raise ConfigError("types set: give --max-concurrency, --rate or --burst")
    return client.change_task_type(args.type, **changes)


_UNSET = object()


def add_types_command(
    group: CommandGroup,
    asking: Callable[[Callable[[Client, argparse.Namespace], Any]], Any],
    connection: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    """``taskq types [pause|resume|set]``; ``asking`` and ``connection`` are the client
    commands' request runner and connection options."""
    types = connection(
        group.add(
            "types",
            "List task types with their limits; pause, resume or set one's limits.",
            asking(_ask),
            details="Limits and pauses are shared by every worker (they live in the task "
            "store); a pause takes effect within about 2 s everywhere.",
        )
    )
    actions = types.add_subparsers(
        dest="types_action",
        metavar="{pause,resume,set}",
        help="what to do with a type (none: list the types)",
    )
    for action, text in (
        ("pause", "Pause a type: its tasks are accepted but none starts."),
        ("resume", "Resume a paused type: its waiting tasks start within a few seconds."),
    ):
        one = connection(actions.add_parser(action, help=text, description=text))
        one.add_argument("type", help="the task type")
    change = connection(
        actions.add_parser(
            "set",
            help="Set a type's concurrency and rate limits.",
            description=f"Set a type's limits; '{NONE}' removes one. Unnamed limits stay.",
        )
    )
    change.add_argument("type", help="the task type")
    change.add_argument(
        "--max-concurrency",
        type=_limit(int),
        default=_UNSET,
        help=f"tasks running at once across every worker, or '{NONE}'",
    )
    change.add_argument(
        "--rate", type=_limit(float), default=_UNSET, help=f"starts per second, or '{NONE}'"
    )
    change.add_argument(
        "--burst",
        type=_limit(int),
        default=_UNSET,
        help=f"starts at once after a quiet spell (default: the rate), or '{NONE}'",
    )
