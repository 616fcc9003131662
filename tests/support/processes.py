"""Starting ``taskq`` as a real process for end-to-end tests."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def taskq_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("taskq")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "entrypoints.cli", *args]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def running_server(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, command: str = "serve"
) -> Iterator[Server]:
    """``taskq <command>`` on a free loopback port, ready to answer; killed on exit."""
    server = spawn_taskq(tmp_path, command, *args, env=env)
    try:
        wait_healthy(server)
        yield server
    finally:
        server.kill()


@contextmanager
def keyed_server(tmp_path: Path, api_key: str, **env: str) -> Iterator[Server]:
    """``taskq serve`` (memory unless ``env`` says) with one API key and the end-to-end
    task types (``tests.e2e.serve_handlers``), once its worker has registered."""
    full_env = {"TASKQ_BACKEND": "memory", "TASKQ_HANDLERS": "tests.e2e.serve_handlers", **env}
    with running_server(tmp_path, env={**full_env, "TASKQ_API_KEYS": api_key}) as server:
        headers = {"Authorization": f"Bearer {api_key}"}
        deadline = time.monotonic() + 10
        while not httpx.get(server.url + "/workers", headers=headers).json()["workers"]:
            assert time.monotonic() < deadline, "the worker did not register"
            time.sleep(0.1)
        yield server


def wait_healthy(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"taskq exited early ({server.process.returncode}):\n{server.log()}")
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"taskq did not become healthy in {timeout}s:\n{server.log()}")


def wait_all_final(
    client: httpx.Client, ids: list[str], timeout: float = 60
) -> dict[str, dict[str, object]]:
    """Poll until every task is COMPLETED, FAILED or CANCELLED; return them by id."""
    deadline = time.monotonic() + timeout
    tasks: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        for task_id in ids:
            if task_id in tasks and tasks[task_id]["status"] in {
                "COMPLETED",
                "FAILED",
                "CANCELLED",
            }:
                continue
            response = client.get(f"/tasks/{task_id}")
            assert response.status_code == 200, response.text
            tasks[task_id] = response.json()
        if all(t["status"] in {"COMPLETED", "FAILED", "CANCELLED"} for t in tasks.values()):
            return tasks
        time.sleep(0.2)
    unfinished = {
        i: t["status"] for i, t in tasks.items() if t["status"] not in {"COMPLETED", "FAILED"}
    }
    raise TimeoutError(f"{len(unfinished)} tasks not final after {timeout}s: {unfinished}")


# -- reliability: several processes, run logs, status watching ------------------------


def with_repo_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the repository on PYTHONPATH: task types in ``tests`` (loaded by
    ``TASKQ_HANDLERS``) import in a ``taskq`` process whatever the install mode."""
    paths = [
        str(ROOT),
        *filter(None, env.get("PYTHONPATH", os.environ.get("PYTHONPATH", "")).split(os.pathsep)),
    ]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def spawn_taskq(
    tmp_path: Path, command: str, *args: str, env: dict[str, str] | None = None
) -> Server:
    """``taskq <command>`` started and not waited for (a worker has no HTTP port).

    The caller owns the process: put it in a ``ProcessGroup`` so it is killed on exit.
    """
    port = free_port()
    full_env = {
        **os.environ,
        "PORT": str(port),
        "TASKQ_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        **with_repo_on_path(env or {}),
    }
    log_path = tmp_path / f"taskq-{command}-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            taskq_command(command, *args),
            cwd=ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Server(process, f"http://127.0.0.1:{port}", log_path)


class ProcessGroup:
    """The processes one test started; every one is killed (by its PID) on exit."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.started: list[Server] = []

    def start(
        self, command: str, *args: str, env: dict[str, str] | None = None, wait: bool = False
    ) -> Server:
        server = spawn_taskq(self.tmp_path, command, *args, env={**self.env, **(env or {})})
        self.started.append(server)
        if wait:
            wait_healthy(server)
        return server

    def logs(self) -> str:
        return "\n".join(f"--- {s.log_path.name}\n{s.log()}" for s in self.started)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.started:
            server.kill()


def sqlite_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A sqlite backend in ``tmp_path`` with the reliability task types and a run log."""
    return {
        "TASKQ_BACKEND": "sqlite",
        "TASKQ_SQLITE_PATH": str(tmp_path / "taskq.db"),
        "TASKQ_HANDLERS": "tests.e2e.reliability_handlers",
        "TASKQ_TEST_RUN_LOG": str(tmp_path / "runs.log"),
        "TASKQ_LOG_LEVEL": "INFO",
        **extra,
    }


# -- aws mode: a moto server in its own process ---------------------------------------

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class _OneDynamoDbRequestAtATime:
    """WSGI middleware: DynamoDB requests one at a time. moto runs a transaction on a
    copy of the table and puts the copy back, undoing a concurrent request's write;
    real DynamoDB transactions are serialisable. SQS requests stay concurrent."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


def _serve_moto(port: int, request_log: str | None = None) -> None:
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app: Any = _OneDynamoDbRequestAtATime(DomainDispatcherApplication(create_backend_app))
    if request_log:
        from tests.support.request_log import RecordingApp

        app = RecordingApp(app, Path(request_log))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


class MotoServer:
    """A moto server process on 127.0.0.1; ``stop`` and ``start`` again keep the port
    (its state is lost: provision again after a restart)."""

    def __init__(
        self, tmp_path: Path, port: int | None = None, *, request_log: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"moto-{self.port}.log"
        self.request_log = request_log
        """A JSON line per request there (``tests.support.request_log``), when set."""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "tests.support.processes", "moto", str(self.port)),
                    *([str(self.request_log)] if self.request_log else []),
                ],
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited: {self.log_path.read_text(errors='replace')}")
            try:
                httpx.get(self.url + "/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"moto did not answer on {self.url} in {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


T = TypeVar("T")


def on_moto(tmp_path: Path, run: Callable[[dict[str, str]], T], *, visibility: float) -> T:
    """``run`` given the env of a queue pair and table provisioned on a moto server
    process of its own (lease ``visibility`` seconds), stopped when ``run`` returns."""
    with MotoServer(tmp_path) as moto:
        return run(aws_env(tmp_path, moto.url, visibility=visibility))


def aws_env(
    tmp_path: Path,
    endpoint: str,
    *,
    visibility: float = 30,
    max_receive_count: int = 20,
    name: str | None = None,
) -> dict[str, str]:
    """A queue pair and table provisioned on ``endpoint`` (named ``name``, or a fresh
    name), and the env that names them."""
    import boto3

    from adapters.aws_provision import provision

    name = name or f"taskq-rel-{uuid.uuid4().hex[:10]}"

    def client(service: str) -> Any:
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    provision(
        client("sqs"),
        client("dynamodb"),
        queue_name=name,
        table_name=name,
        max_receive_count=max_receive_count,
        visibility_timeout=math.ceil(visibility),
    )
    return {
        **FAKE_AWS_ENV,
        "TASKQ_BACKEND": "aws",
        "AWS_ENDPOINT_URL": endpoint,
        "TASKQ_SQS_QUEUE_NAME": name,
        "DYNAMODB_TABLE": name,
        "TASKQ_MAX_RECEIVE_COUNT": str(max_receive_count),
        "TASKQ_VISIBILITY_TIMEOUT": str(visibility),
        "TASKQ_HANDLERS": "tests.e2e.reliability_handlers",
        "TASKQ_TEST_RUN_LOG": str(tmp_path / "runs.log"),
        "TASKQ_LOG_LEVEL": "INFO",
    }


@asynccontextmanager
async def engine_container(env: dict[str, str]) -> AsyncIterator[Any]:
    """The container the ``taskq`` processes of ``env`` build, in this process, with
    its resources open (to write into the same store and queue as they do). On aws the
    clients get the fake credentials explicitly: ``os.environ`` is not changed."""
    import boto3
    from dependency_injector import providers

    from bootstrap.container import build_container
    from bootstrap.settings import Settings
    from entrypoints.runtime import maybe_await

    settings = Settings.model_validate(env)
    container = build_container(settings)
    if settings.backend == "aws":
        for name, service in (("aws_sqs", "sqs"), ("aws_dynamodb", "dynamodb")):
            client = boto3.session.Session().client(
                service,  # type: ignore[call-overload]
                endpoint_url=settings.aws_endpoint_url,
                region_name=settings.aws_region,
                aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            )
            getattr(container, name).override(providers.Object(client))
    await maybe_await(container.init_resources())
    try:
        yield container
    finally:
        await maybe_await(container.shutdown_resources())


class Blackhole:
    """A listener on a loopback port that accepts connections and never answers: a
    dependency that hangs rather than refuses."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for conn in self.held:
            conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["moto"]:
        _serve_moto(int(sys.argv[2]), *sys.argv[3:4])
