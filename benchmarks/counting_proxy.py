"""A loopback HTTP proxy in front of the moto server that counts AWS requests.

A process under test is pointed at it (``AWS_ENDPOINT_URL``), so every SQS, DynamoDB
and DynamoDB Streams request that process makes is seen from outside, whatever client
made it. Each request is forwarded as it came (moto does not check signatures) and
counted by its operation: ``X-Amz-Target`` (DynamoDB, Streams, SQS's JSON protocol)
or the ``Action`` of a form body (SQS's query protocol).

The units are the outside check's simple model (issue 16): 1 WRU per plain write, 1 per
item of a BatchWriteItem, 2 per item of a TransactWriteItems; 1 RRU per read (GetItem,
Query, Scan; per item of a batch get, 2 per item of a transactional one); every SQS
request one request; GetRecords at the Streams price; control-plane calls free.
"""

from __future__ import annotations

import collections
import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SQS_PER_MILLION = 0.40
WRU_PER_MILLION = 0.625
RRU_PER_MILLION = 0.125
STREAM_READS_PER_MILLION = 0.20
INDEX_UNITS_PER_TASK = 5
"""Index writes charged to both sides alike (the client never sees them)."""

_PLAIN_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_PLAIN_READS = frozenset({"GetItem", "Query", "Scan"})
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding"})


def operation_of(headers: Any, body: bytes) -> tuple[str, str]:
    """(service, operation) of one request."""
    target = str(headers.get("X-Amz-Target", ""))
    if target:
        prefix, _, name = target.partition(".")
        if prefix.startswith("DynamoDBStreams"):
            return "streams", name
        if prefix.startswith("DynamoDB"):
            return "dynamodb", name
        if prefix.startswith("AmazonSQS"):
            return "sqs", name
        return prefix, name
    action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    return ("sqs", action) if action else ("other", "request")


def units_of(operation: str, body: bytes) -> tuple[int, int]:
    """(write units, read units) of a DynamoDB request, by the simple model."""
    if operation in _PLAIN_WRITES:
        return 1, 0
    if operation in _PLAIN_READS:
        return 0, 1
    if operation not in {"BatchWriteItem", "TransactWriteItems"} | {
        "BatchGetItem",
        "TransactGetItems",
    }:
        return 0, 0
    request = json.loads(body or b"{}")
    if operation == "TransactWriteItems":
        return 2 * len(request.get("TransactItems", [])), 0
    if operation == "TransactGetItems":
        return 0, 2 * len(request.get("TransactItems", []))
    items = request.get("RequestItems", {}).values()
    if operation == "BatchWriteItem":
        return sum(len(writes) for writes in items), 0
    return 0, sum(len(get.get("Keys", [])) for get in items)


@dataclass
class Counts:
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    wru: int = 0
    rru: int = 0

    def copy(self) -> Counts:
        return Counts(collections.Counter(self.calls), self.wru, self.rru)

    def since(self, before: Counts) -> Counts:
        return Counts(self.calls - before.calls, self.wru - before.wru, self.rru - before.rru)

    def summary(self, tasks: int) -> dict[str, Any]:
        """Per task: every call, the units, and the cost per million tasks."""
        sqs = sum(n for name, n in self.calls.items() if name.startswith("sqs."))
        stream_reads = self.calls["streams.GetRecords"]
        wru = self.wru / tasks
        rru = self.rru / tasks
        dollars = {
            "sqs": sqs / tasks * SQS_PER_MILLION,
            "dynamodb_writes": (wru + INDEX_UNITS_PER_TASK) * WRU_PER_MILLION,
            "dynamodb_reads": rru * RRU_PER_MILLION,
            "stream_reads": stream_reads / tasks * STREAM_READS_PER_MILLION,
        }
        return {
            "tasks": tasks,
            "calls_per_task": {name: round(n / tasks, 3) for name, n in sorted(self.calls.items())},
            "sqs_requests_per_task": round(sqs / tasks, 3),
            "wru_per_task": round(wru, 3),
            "index_units_per_task": INDEX_UNITS_PER_TASK,
            "rru_per_task": round(rru, 3),
            "dollars_per_million_tasks": {k: round(v, 3) for k, v in dollars.items()},
            "cost_per_million_tasks": round(sum(dollars.values()), 3),
        }


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a cancelled long poll at shutdown): nothing to say."""


class CountingProxy:
    """``with CountingProxy(upstream) as proxy``: ``proxy.url`` forwards to ``upstream``
    (``http://127.0.0.1:PORT``); ``proxy.snapshot()`` is what was counted so far."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._counts = Counts()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> Counts:
        with self._lock:
            return self._counts.copy()

    def _count(self, headers: Any, body: bytes) -> None:
        service, operation = operation_of(headers, body)
        wru, rru = units_of(operation, body) if service == "dynamodb" else (0, 0)
        with self._lock:
            self._counts.calls[f"{service}.{operation}"] += 1
            self._counts.wru += wru
            self._counts.rru += rru

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy._count(self.headers, body)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                try:
                    response, data = self._upstream(body, headers)
                except (OSError, http.client.HTTPException):
                    self.send_error(502)
                    return
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _upstream(
                self, body: bytes, headers: dict[str, str]
            ) -> tuple[http.client.HTTPResponse, bytes]:
                """The upstream's answer; once more on a fresh connection if a kept-alive
                one was closed meanwhile (the request is counted once all the same)."""
                for attempt in (1, 2):
                    connection = getattr(local, "connection", None)
                    fresh = connection is None
                    if connection is None:
                        connection = http.client.HTTPConnection(*proxy._upstream, timeout=60)
                        local.connection = connection
                    try:
                        connection.request(self.command, self.path, body=body, headers=headers)
                        response = connection.getresponse()
                        return response, response.read()
                    except (OSError, http.client.HTTPException):
                        connection.close()
                        local.connection = None
                        if fresh or attempt == 2:
                            raise
                raise AssertionError("unreachable")

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
