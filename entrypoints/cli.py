"""The ``taskq`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.runtime import configure_logging, maybe_await, run_until_stopped


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("backend", "host", "port", "worker_count", "sqlite_path"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "insecure", False):
        overrides["insecure"] = True
    return Settings(**overrides)


def _serve(args: argparse.Namespace, *, api: bool, worker: bool) -> int:
    settings = _settings(args)
    configure_logging(settings)
    return run_until_stopped(build_container(settings), api=api, worker=worker)


def _init(args: argparse.Namespace) -> int:
    """Provision the AWS queues and table (idempotent) and say what changed."""
    settings = _settings(args).model_copy(update={"backend": "aws"})
    configure_logging(settings)
    result = build_container(settings).aws_provision()
    for line in result.lines():
        print(line)
    if not result.changed:
        print("nothing to do: everything already exists")
    return 0


def _vacuum(args: argparse.Namespace) -> int:
    """SQLite: delete finished tasks past retention, then give the space back."""
    settings = _settings(args)
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
    container = build_container(settings)
    path = Path(settings.sqlite_path)

    async def once() -> int:
        await maybe_await(container.init_resources())
        try:
            purged = await container.sqlite_repository().purge_expired(container.clock().now())
            database = container.sqlite_database()
            assert database is not None  # opened on the sqlite backend
            await database.vacuum()
        finally:
            await maybe_await(container.shutdown_resources())
        return int(purged)

    before = path.stat().st_size if path.exists() else 0
    purged = asyncio.run(once())
    after = path.stat().st_size if path.exists() else 0
    print(f"purged {purged} expired tasks; {path}: {before:,} -> {after:,} bytes")
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings)
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


def _server_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('PORT', '8080')}"


def _print_response(response: httpx.Response) -> int:
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.is_success else 1


def _auth_headers(args: argparse.Namespace) -> dict[str, str]:
    key = getattr(args, "api_key", None) or os.environ.get("TASKQ_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _request(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    **kwargs: Any,
) -> int:
    try:
        response = httpx.request(
            method,
            _server_url(args) + path,
            timeout=timeout,
            headers={**_auth_headers(args), **(headers or {})},
            **kwargs,
        )
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the server at {_server_url(args)}: {exc}", file=sys.stderr)
        return 2
    return _print_response(response)


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


def _cancel(args: argparse.Namespace) -> int:
    return _request(args, "POST", f"/tasks/{args.id}/cancel")


def _retry(args: argparse.Namespace) -> int:
    body = {} if args.max_attempts is None else {"max_attempts": args.max_attempts}
    return _request(args, "POST", f"/tasks/{args.id}/retry", json=body)


def _dead_letters(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.cursor:
        params["cursor"] = args.cursor
    return _request(args, "GET", "/dead-letters", params=params)


def _redrive(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"limit": args.limit}
    if args.type is not None:
        body["type"] = args.type
    if args.per_second is not None:
        body["per_second"] = args.per_second
    # The server paces the retries, so the answer of a large redrive takes a while.
    rate = args.per_second or 50.0
    return _request(
        args, "POST", "/dead-letters/redrive", json=body, timeout=30 + args.limit / rate
    )


def _status(args: argparse.Namespace) -> int:
    return _request(args, "GET", f"/tasks/{args.id}")


def _metrics(args: argparse.Namespace) -> int:
    return _request(args, "GET", "/metrics")


def _workers(args: argparse.Namespace) -> int:
    return _request(args, "GET", "/workers")


def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"status": args.status, "limit": args.limit}
    if args.cursor:
        params["cursor"] = args.cursor
    return _request(args, "GET", "/tasks", params=params)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["memory", "sqlite", "aws"], help="TASKQ_BACKEND")
    parser.add_argument("--host", help="address to bind (TASKQ_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (PORT, default 8080)")
    parser.add_argument(
        "--workers", dest="worker_count", type=int, help="tasks in flight (WORKER_COUNT)"
    )
    parser.add_argument("--sqlite-path", help="database file (TASKQ_SQLITE_PATH)")


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="server URL (default http://127.0.0.1:$PORT)")
    parser.add_argument(
        "--api-key", help="API key, sent as a Bearer token (default: $TASKQ_API_KEY)"
    )


def _add_insecure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="serve without API keys on an address other than loopback (TASKQ_INSECURE)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskq", description="Task Queue Engine: HTTP API, workers and tools."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    serve = command(
        "serve",
        "Run the HTTP API and workers in one process.",
        lambda a: _serve(a, api=True, worker=True),
    )
    _add_server_options(serve)
    _add_insecure_option(serve)
    api = command("api", "Run the HTTP API only.", lambda a: _serve(a, api=True, worker=False))
    _add_server_options(api)
    _add_insecure_option(api)
    _add_server_options(
        command("worker", "Run workers only.", lambda a: _serve(a, api=False, worker=True))
    )

    _add_server_options(
        command(
            "init",
            "Create the SQS queues (with a dead-letter queue) and the DynamoDB table, "
            "if missing; safe to run again.",
            _init,
        )
    )
    _add_server_options(
        command(
            "vacuum",
            "Delete finished tasks past TASKQ_RETENTION_SECONDS and reclaim the space "
            "(sqlite backend).",
            _vacuum,
        )
    )
    _add_server_options(
        command(
            "reconcile",
            "Re-send PENDING tasks left without a queue message (once, then exit).",
            _reconcile,
        )
    )

    submit = command("submit", "Submit a task to a running server.", _submit)
    submit.add_argument("type", help="task type, e.g. email")
    submit.add_argument("payload", help="JSON payload, or a plain string")
    submit.add_argument("--max-attempts", type=int)
    submit.add_argument("--timeout-seconds", type=float)
    submit.add_argument("--delay-seconds", type=float, help="up to a year")
    submit.add_argument(
        "--run-at", help="when the task is due, RFC 3339 with a timezone (2026-01-01T09:00:00Z)"
    )
    submit.add_argument(
        "--idempotency-key",
        help="submit at most once per key: a retry with the same key returns the first task",
    )
    _add_client_options(submit)

    cancel = command("cancel", "Cancel a task (a running one cooperatively).", _cancel)
    cancel.add_argument("id", help="task id")
    _add_client_options(cancel)

    retry = command("retry", "Retry a FAILED task with a new attempt budget.", _retry)
    retry.add_argument("id", help="task id")
    retry.add_argument("--max-attempts", type=int, help="further attempts (default 3)")
    _add_client_options(retry)

    dead = command(
        "dead-letters", "List FAILED tasks and the dead-letter queue depth.", _dead_letters
    )
    dead.add_argument("--limit", type=int, default=50)
    dead.add_argument("--cursor")
    _add_client_options(dead)

    redrive = command(
        "redrive", "Retry FAILED tasks (all, or of one type) at a bounded rate.", _redrive
    )
    redrive.add_argument("--type", help="only tasks of this type")
    redrive.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    redrive.add_argument("--per-second", type=float, help="retries a second (server default 50)")
    _add_client_options(redrive)

    status = command("status", "Show a task of a running server.", _status)
    status.add_argument("id", help="task id")
    _add_client_options(status)

    listing = command("list", "List tasks by status.", _list)
    listing.add_argument("--status", default="PENDING")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor")
    _add_client_options(listing)

    _add_client_options(command("metrics", "Show the metrics of a running server.", _metrics))
    _add_client_options(command("workers", "List the live workers of a running server.", _workers))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
