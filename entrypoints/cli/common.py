"""What every ``taskq`` command shares: how a command is declared, and how an error
that stops it is printed (one line on stderr, exit status 2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

CONFIG_ERROR_STATUS = 2
"""Exit status of a command that cannot run with its settings or options (argparse
exits with the same status for a wrong option)."""

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:  # generic for the type checker only
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


class ConfigError(Exception):
    """A setting or an option the command cannot run with: one line, exit status 2."""


class CommandGroup:
    """The commands of one kind (server or client), added to the root's subcommands."""

    def __init__(self, subparsers: Subparsers) -> None:
        self._subparsers = subparsers
        self.names: list[str] = []

    def add(
        self, name: str, help_text: str, handler: Handler, *, details: str = ""
    ) -> argparse.ArgumentParser:
        """A subcommand ``name`` that runs ``handler``; ``help_text`` is its line in
        ``taskq --help``, and with ``details`` its description in ``taskq name --help``."""
        description = f"{help_text} {details}".strip()
        command = self._subparsers.add_parser(name, help=help_text, description=description)
        command.set_defaults(handler=handler)
        self.names.append(name)
        return command


def print_error(message: str) -> int:
    """Say on stderr why the command stopped; the exit status of a configuration error."""
    print(f"taskq: {message}", file=sys.stderr)
    return CONFIG_ERROR_STATUS
