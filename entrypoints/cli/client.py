"""Client commands: ask a running server through ``taskq.Client`` and print its JSON
answer.

They need no settings of the server's: only where it is (``--url``, else
``$TASKQ_URL``, else ``http://127.0.0.1:$PORT``) and a key (``--api-key``, else
``$TASKQ_API_KEY``). The exit status is 0 for a 2xx answer (and, with ``submit --wait``,
a COMPLETED task), 1 for any other answer or a task that ended otherwise, 2 when the
server cannot be reached or an option is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from domain.limits import (
    DEFAULT_DEAD_LETTER_LIST,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REDRIVE,
    DEFAULT_REDRIVE_PER_SECOND,
    MAX_DEAD_LETTER_LIST,
)
from entrypoints.cli.common import CONFIG_ERROR_STATUS, CommandGroup, ConfigError, Handler
from entrypoints.cli.schedules import add_schedule_commands
from entrypoints.cli.types import add_types_command
from taskq import (
    APIError,
    Client,
    InvalidBaseURL,
    ResultTimeout,
    ServerUnreachable,
    SubmitOptions,
    TaskCancelled,
    TaskFailed,
)
from taskq.config import resolve_base_url

DEFAULT_WAIT_SECONDS = 300.0
"""How long ``submit --wait`` waits for the task when no time is given."""


def server_url(args: argparse.Namespace) -> str:
    """``--url``, else ``$TASKQ_URL``, else loopback on ``$PORT``; one line if it is bad."""
    try:
        return resolve_base_url(args.url, source="--url")
    except InvalidBaseURL as exc:
        raise ConfigError(str(exc)) from None


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _as_json(answer: Any) -> Any:
    """An answer as the server sent it: the fields it set, in its order."""
    if isinstance(answer, BaseModel):
        return answer.model_dump(mode="json", exclude_unset=True)
    if isinstance(answer, list):
        return [_as_json(item) for item in answer]
    return answer


def _answer(args: argparse.Namespace, action: Callable[[Client], Any]) -> int:
    """Run ``action`` with a client for the server ``args`` name; print what it gives
    (or the server's error) and return the exit status."""
    base = server_url(args)
    try:
        with Client(base, api_key=args.api_key) as client:
            answer = action(client)
    except ServerUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR_STATUS
    except APIError as exc:
        if exc.body:
            _print_json(exc.body)
        else:
            print(exc.message)
        return 1
    except (TaskFailed, TaskCancelled, ResultTimeout) as exc:
        _print_json(_as_json(exc.task))
        print(f"taskq: {exc}", file=sys.stderr)
        return 1
    _print_json(_as_json(answer))
    return 0


def _payload(args: argparse.Namespace) -> Any:
    """The payload argument: JSON when it parses as an object or an array (or with
    ``--json``), else the string itself (``2024`` is sent as "2024")."""
    text: str = args.payload
    try:
        value = json.loads(text)
    except ValueError as exc:
        if args.json:
            raise ConfigError(f"payload: not JSON ({exc})") from None
        return text
    return value if args.json or isinstance(value, dict | list) else text


def _submit(args: argparse.Namespace) -> int:
    payload = _payload(args)
    options: SubmitOptions = {}
    if args.idempotency_key is not None:
        options["idempotency_key"] = args.idempotency_key
    if args.max_attempts is not None:
        options["max_attempts"] = args.max_attempts
    if args.timeout_seconds is not None:
        options["timeout_seconds"] = args.timeout_seconds
    if args.delay_seconds is not None:
        options["delay_seconds"] = args.delay_seconds
    if args.run_at is not None:
        options["run_at"] = args.run_at

    def submit(client: Client) -> Any:
        handle = client.submit(args.type, payload, **options)
        return handle.task if args.wait is None else handle.result(timeout=args.wait)

    return _answer(args, submit)


def _asking(ask: Callable[[Client, argparse.Namespace], Any]) -> Handler:
    """The handler of a command that makes one request: ``ask(client, args)``."""
    return lambda args: _answer(args, lambda client: ask(client, args))


def _add_message_commands(group: CommandGroup) -> None:
    """The dead-letter queue's messages, poison ones included (README: "Poison
    messages")."""
    messages = _connection_options(
        group.add(
            "dead-letter-messages",
            "List the messages on the dead-letter queue, poison ones included.",
            _asking(lambda c, a: c.dead_letter_messages(limit=a.limit)),
            details="Each with its message id, task id (none for a poison message), why it "
            "was dead-lettered, its deliveries and its body (cut short).",
        )
    )
    messages.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_DEAD_LETTER_LIST,
        help=f"at most this many messages (default {DEFAULT_DEAD_LETTER_LIST}, "
        f"at most {MAX_DEAD_LETTER_LIST})",
    )
    for name, help_text, handler in (
        (
            "drop-dead-letter",
            "Delete one message from the dead-letter queue.",
            _asking(lambda c, a: c.drop_dead_letter(a.message_id)),
        ),
        (
            "resend-dead-letter",
            "Send one message of the dead-letter queue back to the main queue.",
            _asking(lambda c, a: c.resend_dead_letter(a.message_id)),
        ),
    ):
        one = _connection_options(group.add(name, help_text, handler))
        one.add_argument("message_id", help="the message_id dead-letter-messages shows")
    resend = _connection_options(
        group.add(
            "resend-dead-letters",
            "Send the dead-letter queue's messages back to the main queue.",
            _asking(lambda c, a: c.resend_dead_letters(limit=a.limit)),
        )
    )
    resend.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_REDRIVE,
        help=f"at most this many messages (default {DEFAULT_REDRIVE}); run again for more",
    )


def _connection_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--url",
        help="the server: http(s)://host:port, host:port or :port "
        "(default $TASKQ_URL, else http://127.0.0.1:$PORT, PORT default 8080)",
    )
    parser.add_argument(
        "--api-key", help="API key, sent as a Bearer token (default: $TASKQ_API_KEY)"
    )
    return parser


def _page_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        help=f"tasks per page (default {DEFAULT_PAGE_SIZE}; the server caps it)",
    )
    parser.add_argument("--cursor", help="where to go on: the next_cursor of the previous page")


def _id_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="task id")


def add_client_commands(group: CommandGroup) -> None:
    submit = _connection_options(group.add("submit", "Submit a task.", _submit))
    submit.add_argument("type", help="task type, e.g. email")
    submit.add_argument(
        "payload",
        help="the payload: a JSON object or array is sent as JSON, anything else as a "
        'string (2024 is sent as "2024"; give --json to send it as JSON)',
    )
    submit.add_argument(
        "--json", action="store_true", help="the payload is JSON (a number, true, null, ...)"
    )
    submit.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="wait for the task to finish and print its result (at most SECONDS, default "
        f"{DEFAULT_WAIT_SECONDS:g}); exit 1 if it failed, was cancelled or is not finished",
    )
    submit.add_argument(
        "--max-attempts", type=int, help="attempts before the task is FAILED (server default 3)"
    )
    submit.add_argument(
        "--timeout-seconds", type=float, help="how long one attempt may run (task type's default)"
    )
    submit.add_argument("--delay-seconds", type=float, help="run after this long, up to a year")
    submit.add_argument(
        "--run-at", help="when the task is due, RFC 3339 with a timezone (2026-01-01T09:00:00Z)"
    )
    submit.add_argument(
        "--idempotency-key",
        help="submit at most once per key: a retry with the same key returns the first task",
    )

    status = group.add("status", "Show a task.", _asking(lambda c, a: c.get(a.id)))
    _id_argument(_connection_options(status))

    listing = _connection_options(
        group.add(
            "list",
            "List tasks by status, newest first.",
            _asking(lambda c, a: c.list(a.status, limit=a.limit, cursor=a.cursor)),
        )
    )
    listing.add_argument(
        "--status",
        default="PENDING",
        help="PENDING, PROCESSING, COMPLETED, FAILED or CANCELLED (default PENDING)",
    )
    _page_options(listing)

    cancel = group.add(
        "cancel",
        "Cancel a task (a running one cooperatively).",
        _asking(lambda c, a: c.cancel(a.id)),
    )
    _id_argument(_connection_options(cancel))

    retry = _connection_options(
        group.add(
            "retry",
            "Retry a FAILED task with a new attempt budget.",
            _asking(lambda c, a: c.retry(a.id, max_attempts=a.max_attempts)),
        )
    )
    _id_argument(retry)
    retry.add_argument("--max-attempts", type=int, help="further attempts (default 3)")

    dead = group.add(
        "dead-letters",
        "List FAILED tasks and the dead-letter queue depth.",
        _asking(lambda c, a: c.dead_letters(limit=a.limit, cursor=a.cursor)),
    )
    _page_options(_connection_options(dead))

    redrive = _connection_options(
        group.add(
            "redrive",
            "Retry FAILED tasks (all, or of one type) at a bounded rate.",
            _asking(lambda c, a: c.redrive(type=a.type, limit=a.limit, per_second=a.per_second)),
        )
    )
    redrive.add_argument("--type", help="only tasks of this type")
    redrive.add_argument(
        "--limit", type=int, default=DEFAULT_REDRIVE, help=f"at most this many ({DEFAULT_REDRIVE})"
    )
    redrive.add_argument(
        "--per-second",
        type=float,
        help=f"retries a second (server default {DEFAULT_REDRIVE_PER_SECOND:g})",
    )
    _add_message_commands(group)
    add_schedule_commands(group, _asking, _connection_options)

    _connection_options(
        group.add(
            "metrics",
            "Show task counts, queue depth and live workers.",
            _asking(lambda c, a: c.metrics()),
        )
    )
    _connection_options(
        group.add("workers", "List the live workers.", _asking(lambda c, a: c.workers()))
    )
    add_types_command(group, _asking, _connection_options)
