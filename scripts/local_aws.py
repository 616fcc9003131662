"""A local AWS endpoint (moto) for development, tests and benchmarks.

moto's own server, on werkzeug's threaded server, with one difference: DynamoDB
requests are handled one at a time. moto runs a transaction on a deep copy of the table
and, when a condition fails, puts the copy back, undoing any write another request
committed meanwhile (and under load fails with "dictionary changed size during
iteration"). Real DynamoDB transactions are serialisable; this gives the stand-in the
same isolation. Its streams' requests take the same turn, and an undone transaction
leaves no stream record behind: moto puts back a copy of the table with a new stream
shard, while an open shard iterator still reads the old one, records of the cancelled
transaction included (real DynamoDB emits none). SQS requests, long polls among them,
stay concurrent.

    python -m scripts.local_aws --port 5000
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialDynamoDb:
    """WSGI middleware: DynamoDB and DynamoDB Streams requests one at a time, everything
    else concurrent."""

    def __init__(self, app: Wsgi) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith(("DynamoDB_", "DynamoDBStreams_")):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


def keep_stream_shards() -> None:
    """Patch moto so that a cancelled transaction keeps each table's stream shard (the
    object open iterators read), cut back to the records it had before."""
    from moto.dynamodb.models import DynamoDBBackend

    transact = DynamoDBBackend.transact_write_items
    if getattr(transact, "keeps_stream_shards", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        before = {
            name: (table, table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if getattr(table, "stream_shard", None) is not None
        }
        try:
            transact(self, transact_items)
        finally:
            for name, (table, shard, length) in before.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:
                    del shard.items[length:]
                    shard.table = restored
                    restored.stream_shard = shard

    transact_write_items.keeps_stream_shards = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def moto_server(host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """A moto server bound to ``host:port`` (0: a free port), not yet serving."""
    keep_stream_shards()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per request
    app = SerialDynamoDb(DomainDispatcherApplication(create_backend_app))
    return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local AWS endpoint (moto) on loopback.")
    parser.add_argument("--host", "-H", default="127.0.0.1")
    parser.add_argument("--port", "-p", type=int, default=5000)
    args = parser.parse_args()
    server = moto_server(args.host, args.port)
    print(f"moto listening on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
