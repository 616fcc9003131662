"""The ``taskq`` command line: the argparse root and ``main`` (the console script).

Server commands (``server.py``) run or maintain the service where it runs and read its
settings; client commands (``client.py``) talk HTTP to a running server.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from entrypoints.cli.client import add_client_commands
from entrypoints.cli.common import CommandGroup, ConfigError, Handler, print_error
from entrypoints.cli.server import add_server_commands

__all__ = ["build_parser", "main"]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The root parser, and each command's parser by name."""
    parser = argparse.ArgumentParser(
        prog="taskq",
        description="Task Queue Engine: HTTP API, workers and tools.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        title="commands",
        help="one of these; `taskq COMMAND --help` shows its options",
    )
    server, client = CommandGroup(subparsers), CommandGroup(subparsers)
    add_server_commands(server)
    add_client_commands(client)
    parser.epilog = (
        f"server commands: {', '.join(server.names)}\n"
        "  run or maintain the service where it runs, configured by the environment\n"
        f"client commands: {', '.join(client.names)}\n"
        "  talk HTTP to a running server (--url, --api-key)"
    )
    return parser, dict(subparsers.choices)


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _refuse(
    command: argparse.ArgumentParser, commands: dict[str, argparse.ArgumentParser], extra: list[str]
) -> None:
    """argparse's error for options the command does not take, naming the commands that
    do take them (``worker --port``: ``--port`` is an option of serve, api)."""
    hints = []
    for word in extra:
        option = word.split("=", 1)[0]
        takers = [name for name, sub in commands.items() if option in sub._option_string_actions]
        if option.startswith("--") and takers:
            hints.append(f"{option} is an option of {', '.join(takers)}")
    hint = f" ({'; '.join(hints)})" if hints else ""
    command.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = _build()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _refuse(commands[args.command], commands, extra)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        return print_error(str(exc))
