"""Running the API and the workers in one event loop, with signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import inspect
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn

from bootstrap.container import Container
from bootstrap.observability import configure_logging as configure_logging
from bootstrap.observability import serve_worker_metrics
from bootstrap.settings import Settings
from entrypoints.worker import Worker, WorkerSettings
from entrypoints.worker_first import WorkerFirst

log = logging.getLogger("taskq")

LISTEN_BACKLOG = 2048
"""Connections the kernel queues before the server accepts them (uvicorn's default)."""
FILES_BESIDES_CONNECTIONS = 256
"""File descriptors a process needs besides its connections (database, clients, logs)."""


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_until_stopped(container: Container, *, api: bool, worker: bool) -> int:
    """Run, then exit at once, even if threads are still busy.

    After a graceful stop every unfinished task has been released, but a sync handler
    past the grace period, or a boto3 long poll, may still occupy a thread. Python
    would join those threads at exit (``asyncio.run`` waits for its default executor,
    ``concurrent.futures`` joins its workers), holding SIGTERM up for as long as the
    longest handler. Their results are unwanted now, so the process ends without them.
    """
    loop = _new_event_loop()
    # Blocking clients (boto3, sqlite3 calls) run in the default executor; its stock
    # size (cores + 4) is too small once long polls hold threads for up to 20 s.
    io_threads = max(32, 4 * container.settings().worker_count)
    loop.set_default_executor(ThreadPoolExecutor(io_threads, thread_name_prefix="taskq-io"))
    try:
        loop.run_until_complete(run(container, api=api, worker=worker))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        busy = [
            thread.name
            for thread in threading.enumerate()
            if thread is not threading.current_thread() and not thread.daemon and thread.is_alive()
        ]
        if busy:
            log.warning("exiting with %d busy threads abandoned: %s", len(busy), ", ".join(busy))
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0 if sys.exc_info()[0] is None else 1)
        loop.close()
    return 0


def settle_garbage_collector() -> None:
    """Start-up made objects that live as long as the process (modules, the app, the
    container): collect once, then move them out of the collector's sight, so that
    the collections a busy server makes do not walk them again and again."""
    gc.collect()
    gc.freeze()


async def maybe_await(value: Awaitable[Any] | Any) -> None:
    if inspect.isawaitable(value):
        await value


AWS_RECEIVE_PACE_SECONDS = 0.25
"""The receive pace on aws (``TASKQ_RECEIVE_PACE_SECONDS`` unset): every SQS receive is
a billed request; ``benchmarks/aws_outside.py`` measures what it saves and costs. Local
backends receive for free: no pace."""


def receive_pace(settings: Settings) -> float:
    if settings.receive_pace_seconds is not None:
        return settings.receive_pace_seconds
    return AWS_RECEIVE_PACE_SECONDS if settings.backend == "aws" else 0.0


def build_worker(container: Container, first: WorkerFirst | None = None) -> Worker:
    settings = container.settings()
    return Worker(
        processor=container.processor(),
        queue=container.queue(),
        workers=container.workers(),
        clock=container.clock(),
        settings=WorkerSettings(
            concurrency=settings.worker_count,
            visibility_timeout=settings.visibility_timeout,
            poll_wait_seconds=settings.poll_wait_seconds,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            worker_ttl_seconds=settings.worker_ttl_seconds,
            reconcile_interval_seconds=settings.reconcile_interval_seconds,
            receive_pace_seconds=receive_pace(settings),
        ),
        reconciler=container.reconciler(),
        first=first,
        scheduler=container.scheduler() if settings.scheduler else None,
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``run`` below owns SIGTERM/SIGINT, so
    the process exits 0 after a graceful stop instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def refuse_unsafe_bind(settings: Settings) -> None:
    """Safe by default: without API keys, listen on loopback only, unless insecure."""
    from entrypoints.http.auth import AuthConfigError, is_loopback, load_key_digests

    try:
        keys = load_key_digests(settings)
    except AuthConfigError as exc:
        raise SystemExit(f"taskq: {exc}") from None
    if keys or settings.insecure or is_loopback(settings.host):
        return
    raise SystemExit(
        f"taskq: refusing to serve the API on {settings.host} without authentication: "
        "anyone who can reach that address could submit and cancel tasks. Set "
        "TASKQ_API_KEYS (comma-separated keys) or TASKQ_API_KEY_FILE (sha256 digests), "
        "or bind to 127.0.0.1, or pass --insecure (TASKQ_INSECURE=true) if the network "
        "is trusted."
    )


class BindError(Exception):
    """The API's address cannot be listened on (in use, not local, not permitted)."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, before anything else starts: a second
    server on a busy port fails here, before its worker registers or a resource opens."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:
        raise BindError(f"cannot listen on {host}:{port}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        hint = (
            " (another server is listening there: stop it, or choose another PORT or --port)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    return sock


def allow_connections(max_connections: int) -> None:
    """Raise the soft limit of open files so TASKQ_MAX_CONNECTIONS can be reached (as
    far as the hard limit allows), and say so if it cannot."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    needed = max_connections + FILES_BESIDES_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        log.warning(
            "open files are limited to %d (ulimit -n): fewer than TASKQ_MAX_CONNECTIONS=%d "
            "connections can be accepted",
            soft,
            max_connections,
        )


def _http_server(container: Container, first: WorkerFirst | None) -> _Server:
    from entrypoints.http.app import create_app
    from entrypoints.http.protocol import ConnectionLimits, GuardedHttpToolsProtocol

    settings = container.settings()
    config = uvicorn.Config(
        create_app(container, first=first),
        host=settings.host,
        port=settings.port,
        http=GuardedHttpToolsProtocol.with_limits(ConnectionLimits.from_settings(settings)),
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's lines go through the root logger's format (json/text)
        access_log=False,
        lifespan="off",  # run() owns the container resources, so they outlive the drain
    )
    return _Server(config)


async def run(container: Container, *, api: bool, worker: bool) -> None:
    """Serve the API and/or run a worker until SIGTERM or SIGINT.

    The API's socket is bound first: if that fails, nothing else has started.
    """
    listener = None
    if api:
        settings = container.settings()
        refuse_unsafe_bind(settings)
        try:
            listener = bind_listener(settings.host, settings.port)
        except BindError as exc:
            raise SystemExit(f"taskq: {exc}") from None
        allow_connections(settings.max_connections)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    try:
        await maybe_await(container.init_resources())
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    # A worker-only process serves its own counters and histograms (TASKQ_METRICS_PORT);
    # the API serves the cluster's on /metrics.
    metrics_server = serve_worker_metrics(container) if worker and not api else None
    try:
        jobs: list[asyncio.Task[None]] = []
        # API and worker on one loop: the worker goes first (entrypoints/worker_first.py)
        first = WorkerFirst(container.settings().worker_count) if api and worker else None
        server = _http_server(container, first) if api else None
        if server is not None and listener is not None:
            jobs.append(asyncio.create_task(server.serve(sockets=[listener])))
            host, port = listener.getsockname()[:2]
            log.info("listening on http://%s:%d", host, port)
        if worker:
            jobs.append(asyncio.create_task(build_worker(container, first).run(stop)))
        settle_garbage_collector()

        async def stop_server_on_signal() -> None:
            await stop.wait()
            log.info("stopping")
            if server is not None:
                server.should_exit = True

        watcher = asyncio.create_task(stop_server_on_signal())
        done, _ = await asyncio.wait(jobs, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()  # one part ended (or failed): stop the others too
        await asyncio.gather(*jobs, return_exceptions=True)
        watcher.cancel()
        for job in done:
            if job.exception() is not None:
                raise job.exception()  # type: ignore[misc]
        if server is not None and not server.started and not server.should_exit:
            raise SystemExit(
                f"could not start the HTTP server on {server.config.host}:{server.config.port}"
            )
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await maybe_await(container.shutdown_resources())
