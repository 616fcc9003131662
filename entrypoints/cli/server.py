"""Server commands: run the API and the workers, and maintain the store they share.

They read their settings from the environment (see the README's configuration table);
an option overrides the one setting it names, and a command has only the options it
acts on.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from pathlib import Path
from typing import Any

import pydantic
from pydantic import AliasChoices
from pydantic_core import ErrorDetails

from bootstrap.container import Container, build_container
from bootstrap.handlers import HandlerSetupError
from bootstrap.settings import Settings
from entrypoints.cli.common import CommandGroup, ConfigError
from entrypoints.runtime import configure_logging, maybe_await, run_until_stopped

SETTING_OPTIONS = (
    "backend",
    "sqlite_path",
    "host",
    "port",
    "insecure",
    "worker_count",
    "metrics_port",
)
"""The settings an option can override (each option's ``dest`` is the setting's field)."""


def _variable(name: str) -> str:
    """The environment variable of a setting named by its field (``port`` -> ``PORT``)
    or already by its variable."""
    field = Settings.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return name


def _describe(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith("Input should"):
        message = "should" + message.removeprefix("Input should")
    return f"{_variable(field)}={error['input']!r}: {message}"


def settings_for(args: argparse.Namespace) -> Settings:
    """The settings from the environment, overridden by the options given."""
    overrides: dict[str, Any] = {}
    for name in SETTING_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        return Settings(**overrides)
    except pydantic.ValidationError as exc:
        raise ConfigError("; ".join(_describe(error) for error in exc.errors())) from None


def _load_handlers(container: Container) -> None:
    """Import the TASKQ_HANDLERS modules now, so a wrong name is a configuration error
    and not a traceback from deep inside the start."""
    try:
        container.task_types()
    except HandlerSetupError as exc:
        raise ConfigError(str(exc)) from None
    except ImportError as exc:
        raise ConfigError(
            f"{exc} (TASKQ_HANDLERS takes comma-separated module names, importable from "
            "the installed packages or the current directory)"
        ) from None


def _existing_database(settings: Settings) -> None:
    """Maintenance commands act on the server's database: never create an empty one."""
    if settings.backend != "sqlite":
        return
    path = Path(settings.sqlite_path)
    if not path.is_file():
        raise ConfigError(
            f"no database at {path.resolve()} (TASKQ_SQLITE_PATH={settings.sqlite_path!r}): "
            "run this where the server runs, or set TASKQ_SQLITE_PATH to its database file"
        )


def _serve(args: argparse.Namespace, *, api: bool, worker: bool) -> int:
    settings = settings_for(args)
    configure_logging(settings)
    container = build_container(settings)
    _load_handlers(container)
    return run_until_stopped(container, api=api, worker=worker)


def _init(args: argparse.Namespace) -> int:
    """Provision the AWS queues and table (idempotent) and say what changed."""
    settings = settings_for(args).model_copy(update={"backend": "aws"})
    configure_logging(settings)
    result = build_container(settings).backend.provision()
    for line in result.lines():
        print(line)
    if not result.changed:
        print("nothing to do: everything already exists")
    return 0


def _vacuum(args: argparse.Namespace) -> int:
    """SQLite: delete finished tasks past retention, then give the space back."""
    settings = settings_for(args)
    configure_logging(settings)
    if settings.backend != "sqlite":
        print(
            f"nothing to do on the {settings.backend} backend: "
            + (
                "DynamoDB's TTL removes expired tasks itself"
                if settings.backend == "aws"
                else "nothing is kept on disk"
            )
        )
        return 0
    _existing_database(settings)
    container = build_container(settings)
    path = Path(settings.sqlite_path)

    async def once() -> int:
        await maybe_await(container.init_resources())
        try:
            backend = container.backend
            purged = await backend.repository().purge_expired(container.clock().now())
            await backend.database().vacuum()
        finally:
            await maybe_await(container.shutdown_resources())
        return int(purged)

    before = path.stat().st_size if path.exists() else 0
    purged = asyncio.run(once())
    after = path.stat().st_size if path.exists() else 0
    print(f"purged {purged} expired tasks; {path}: {before:,} -> {after:,} bytes")
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    configure_logging(settings)
    _existing_database(settings)
    container = build_container(settings)

    async def once() -> None:
        await maybe_await(container.init_resources())
        try:
            report = await container.reconciler().run_once()
        finally:
            await maybe_await(container.shutdown_resources())
        print(
            f"enqueued {report.scheduled} held tasks now due, "
            f"recovered {report.recovered} abandoned PROCESSING tasks"
        )

    asyncio.run(once())
    return 0


def _setting(field: str) -> str:
    """``(VARIABLE, default D)``: where an option's value comes from when not given."""
    return f"({_variable(field)}, default {Settings.model_fields[field].default})"


def _store_options(parser: argparse.ArgumentParser) -> None:
    """Where the tasks live: every command that opens the store."""
    parser.add_argument(
        "--backend",
        choices=["memory", "sqlite", "aws"],
        help="where tasks and the queue live " + _setting("backend"),
    )
    parser.add_argument(
        "--sqlite-path", help="database file of the sqlite backend (TASKQ_SQLITE_PATH)"
    )


def _listen_options(parser: argparse.ArgumentParser) -> None:
    """Where the HTTP API listens: only the commands that serve it."""
    parser.add_argument("--host", help="address to bind " + _setting("host"))
    parser.add_argument("--port", type=int, help="port to listen on " + _setting("port"))
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="serve without API keys on an address other than loopback (TASKQ_INSECURE)",
    )


def _worker_options(parser: argparse.ArgumentParser) -> None:
    """How much the workers take on: only the commands that run them."""
    parser.add_argument(
        "--workers",
        dest="worker_count",
        type=int,
        help="tasks in flight in this process " + _setting("worker_count"),
    )


RUN_COMMANDS = (
    ("serve", "Run the HTTP API and workers in one process.", True, True),
    ("api", "Run the HTTP API only.", True, False),
    ("worker", "Run workers only (no HTTP port; run as many as you like).", False, True),
)
"""The commands that run the service: name, help, serves the API, runs workers."""


def add_server_commands(group: CommandGroup) -> None:
    for name, help_text, api, worker in RUN_COMMANDS:
        command = group.add(name, help_text, functools.partial(_serve, api=api, worker=worker))
        _store_options(command)
        if api:
            _listen_options(command)
        if worker:
            _worker_options(command)
        if worker and not api:
            command.add_argument(
                "--metrics-port",
                type=int,
                help="serve this process's Prometheus metrics on this port, on "
                "TASKQ_METRICS_HOST (default 127.0.0.1) (TASKQ_METRICS_PORT; unset: not served)",
            )

    group.add(
        "init",
        "Create the SQS queues (with a dead-letter queue) and the DynamoDB table, if "
        "missing; safe to run again.",
        _init,
        details="The AWS settings come from the environment (AWS_REGION, AWS_ENDPOINT_URL, "
        "TASKQ_SQS_QUEUE_NAME or SQS_QUEUE_URL, DYNAMODB_TABLE).",
    )
    reconcile = "Re-send PENDING tasks left without a queue message (once, then exit)."
    _store_options(group.add("reconcile", reconcile, _reconcile))
    vacuum = (
        "Delete finished tasks past TASKQ_RETENTION_SECONDS and reclaim the space (sqlite backend)."
    )
    _store_options(group.add("vacuum", vacuum, _vacuum))
