"""A moto server for the benchmarks: ``moto_server`` with DynamoDB calls serialised.

moto's TransactWriteItems deep-copies a table while other request threads write to it,
and under concurrent load fails with ``RuntimeError: dictionary changed size during
iteration`` (a 500). This runs moto's own WSGI app on werkzeug's threaded server, as
``moto_server`` does, but lets one DynamoDB request in at a time; SQS requests (long
polls among them) stay concurrent. Real DynamoDB has no such limit.

    /work/venv/bin/python -m benchmarks.moto_serve -p 5000
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialDynamoDb:
    def __init__(self, app: Wsgi) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            with self._lock:
                return list(self._app(environ, start_response))
        return self._app(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerialDynamoDb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
