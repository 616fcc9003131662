"""Client commands: ask a running server over HTTP (httpx) and print its JSON answer.

They need no settings of the server's: only where it is (``--url``) and a key
(``--api-key``). The exit status is 0 for a 2xx answer, 1 for any other answer, 2 when
the server cannot be reached or an option is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import quote

import httpx

from domain.limits import (
    DEFAULT_DEAD_LETTER_LIST,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REDRIVE,
    DEFAULT_REDRIVE_PER_SECOND,
    MAX_DEAD_LETTER_LIST,
)
from entrypoints.cli.common import CONFIG_ERROR_STATUS, CommandGroup, ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = "8080"
SCHEMES = ("http", "https")
MAX_PORT = 65535


def normalise_url(value: str, *, source: str = "--url") -> str:
    """The server's base URL from ``value``: ``http(s)://host[:port][/prefix]`` is kept,
    ``host:port`` and ``host`` get ``http://``, ``:port`` means 127.0.0.1. ``source``
    names where the value came from in the error."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + (DEFAULT_HOST + text if text.startswith(":") else text)
    try:
        url = httpx.URL(text)
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        problem = f"not a URL ({exc})"
    else:
        problem = _url_problem(url, port)
    if problem:
        raise ConfigError(
            f"{source}={value!r}: {problem}; give http(s)://host:port, host:port or :port"
        )
    return str(url).rstrip("/")


def _url_problem(url: httpx.URL, port: int | None) -> str:
    if url.scheme not in SCHEMES:
        return "the scheme should be http or https"
    if not url.host:
        return "no host"
    if port is not None and not 1 <= port <= MAX_PORT:
        return f"the port should be between 1 and {MAX_PORT}"
    if url.query or url.fragment:
        return "a server URL has no query or fragment"
    return ""


def server_url(args: argparse.Namespace) -> str:
    if args.url:
        return normalise_url(str(args.url))
    return normalise_url(":" + os.environ.get("PORT", DEFAULT_PORT), source="PORT")


def _auth_headers(args: argparse.Namespace) -> dict[str, str]:
    key = args.api_key or os.environ.get("TASKQ_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _print_response(response: httpx.Response) -> int:
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.is_success else 1


def _request(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    **kwargs: Any,
) -> int:
    base = server_url(args)
    try:
        response = httpx.request(
            method,
            base + path,
            timeout=timeout,
            headers={**_auth_headers(args), **(headers or {})},
            **kwargs,
        )
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the server at {base}: {exc}", file=sys.stderr)
        return CONFIG_ERROR_STATUS
    return _print_response(response)


def _page_params(args: argparse.Namespace, **params: Any) -> dict[str, Any]:
    params["limit"] = args.limit
    if args.cursor:
        params["cursor"] = args.cursor
    return params


def _submit(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError:
        payload = args.payload  # a bare string, as the original clients send
    body: dict[str, Any] = {"type": args.type, "payload": payload}
    for option in ("max_attempts", "timeout_seconds", "delay_seconds", "run_at"):
        value = getattr(args, option)
        if value is not None:
            body[option] = value
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    return _request(args, "POST", "/tasks", json=body, headers=headers)


def _retry(args: argparse.Namespace) -> int:
    body = {} if args.max_attempts is None else {"max_attempts": args.max_attempts}
    return _request(args, "POST", f"/tasks/{args.id}/retry", json=body)


def _redrive(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"limit": args.limit}
    if args.type is not None:
        body["type"] = args.type
    if args.per_second is not None:
        body["per_second"] = args.per_second
    # The server paces the retries, so the answer of a large redrive takes a while.
    rate = args.per_second or DEFAULT_REDRIVE_PER_SECOND
    return _request(
        args, "POST", "/dead-letters/redrive", json=body, timeout=30 + args.limit / rate
    )


MESSAGE_SEARCH_TIMEOUT_SECONDS = 60
"""How long a drop or resend of one dead letter may take: on SQS the server looks for
the message among up to 1,000 (``domain.limits.MAX_DEAD_LETTER_SEARCH``)."""
RESENT_PER_SECOND = 100
"""A conservative pace of a bulk resend (SQS: three calls per ten messages), from which
the request's timeout is reckoned."""


def _resend_all(args: argparse.Namespace) -> int:
    return _request(
        args,
        "POST",
        "/dead-letters/messages/redrive",
        json={"limit": args.limit},
        timeout=30 + args.limit / RESENT_PER_SECOND,
    )


def _message_path(args: argparse.Namespace) -> str:
    return f"/dead-letters/messages/{quote(args.message_id, safe='')}"


def _drop(args: argparse.Namespace) -> int:
    return _request(args, "DELETE", _message_path(args), timeout=MESSAGE_SEARCH_TIMEOUT_SECONDS)


def _resend(args: argparse.Namespace) -> int:
    path = _message_path(args) + "/redrive"
    return _request(args, "POST", path, timeout=MESSAGE_SEARCH_TIMEOUT_SECONDS)


def _add_message_commands(group: CommandGroup) -> None:
    """The dead-letter queue's messages, poison ones included (README: "Poison
    messages")."""
    messages = _connection_options(
        group.add(
            "dead-letter-messages",
            "List the messages on the dead-letter queue, poison ones included.",
            lambda a: _request(a, "GET", "/dead-letters/messages", params={"limit": a.limit}),
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
        ("drop-dead-letter", "Delete one message from the dead-letter queue.", _drop),
        (
            "resend-dead-letter",
            "Send one message of the dead-letter queue back to the main queue.",
            _resend,
        ),
    ):
        one = _connection_options(group.add(name, help_text, handler))
        one.add_argument("message_id", help="the message_id dead-letter-messages shows")
    resend = _connection_options(
        group.add(
            "resend-dead-letters",
            "Send the dead-letter queue's messages back to the main queue.",
            _resend_all,
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
        "(default http://127.0.0.1:$PORT, PORT default 8080)",
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
    submit.add_argument("payload", help="JSON payload, or a plain string")
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

    status = group.add("status", "Show a task.", lambda a: _request(a, "GET", f"/tasks/{a.id}"))
    _id_argument(_connection_options(status))

    listing = _connection_options(
        group.add(
            "list",
            "List tasks by status, newest first.",
            lambda a: _request(a, "GET", "/tasks", params=_page_params(a, status=a.status)),
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
        lambda a: _request(a, "POST", f"/tasks/{a.id}/cancel"),
    )
    _id_argument(_connection_options(cancel))

    retry = _connection_options(
        group.add("retry", "Retry a FAILED task with a new attempt budget.", _retry)
    )
    _id_argument(retry)
    retry.add_argument("--max-attempts", type=int, help="further attempts (default 3)")

    dead = group.add(
        "dead-letters",
        "List FAILED tasks and the dead-letter queue depth.",
        lambda a: _request(a, "GET", "/dead-letters", params=_page_params(a)),
    )
    _page_options(_connection_options(dead))

    redrive = _connection_options(
        group.add(
            "redrive", "Retry FAILED tasks (all, or of one type) at a bounded rate.", _redrive
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

    _connection_options(
        group.add(
            "metrics",
            "Show task counts, queue depth and live workers.",
            lambda a: _request(a, "GET", "/metrics"),
        )
    )
    _connection_options(
        group.add("workers", "List the live workers.", lambda a: _request(a, "GET", "/workers"))
    )
