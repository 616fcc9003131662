"""Counting AWS requests with botocore event hooks, and what they cost.

Prices (us-east-1, on-demand, as published by AWS; the report states them):
SQS standard queue $0.40 per million requests, each 64 KB chunk of a payload a request;
DynamoDB on-demand $0.625 per million write request units (WRU) and $0.125 per million
read request units (RRU).
"""

from __future__ import annotations

import collections
import threading
from typing import Any

SQS_PER_MILLION = 0.40
WRU_PER_MILLION = 0.625
RRU_PER_MILLION = 0.125

DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


class RequestCounter:
    """Counts every call a boto3 client makes (before-call: retries are not counted
    twice), per service and operation, and the items each DynamoDB write touches."""

    def __init__(self) -> None:
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.write_items: collections.Counter[str] = collections.Counter()
        self.read_keys: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        client.meta.events.register("before-call.*.*", self._call_hook(service))
        client.meta.events.register("before-parameter-build.*.*", self._items_hook)

    def _call_hook(self, service: str) -> Any:
        def count(model: Any, **_: Any) -> None:
            with self._lock:
                self.calls[(service, model.name)] += 1

        return count

    def _items_hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """The API parameters (before-call sees the serialised request instead)."""
        name = model.name
        with self._lock:
            if name == "TransactWriteItems":
                self.write_items[name] += len(params.get("TransactItems", []))
            elif name == "BatchWriteItem":
                self.write_items[name] += sum(
                    len(v) for v in params.get("RequestItems", {}).values()
                )
            elif name in DYNAMODB_WRITES:
                self.write_items[name] += 1
            elif name == "BatchGetItem":
                self.read_keys[name] += sum(
                    len(v.get("Keys", [])) for v in params.get("RequestItems", {}).values()
                )
            elif name == "GetItem":
                self.read_keys[name] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.calls)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.write_items.clear()
            self.read_keys.clear()

    def summary(self, tasks: int) -> dict[str, Any]:
        """Requests per task, units per task and dollars per million tasks.

        Unit assumptions (every item here is under 1 KB and every read under 4 KB):
        a transactional write costs 2 WRU per item, any other write 1 WRU per item; a
        strongly consistent read 1 RRU per item; a Query ~1 RRU per call. Index (GSI)
        writes are not in the client's requests; they are estimated by the caller.
        """
        with self._lock:
            calls = dict(self.calls)
            items = dict(self.write_items)
            keys = dict(self.read_keys)
        sqs = sum(n for (service, _), n in calls.items() if service == "sqs")
        ddb_writes = sum(
            n
            for (service, op), n in calls.items()
            if service == "dynamodb" and op in DYNAMODB_WRITES
        )
        ddb_reads = sum(
            n
            for (service, op), n in calls.items()
            if service == "dynamodb" and op not in DYNAMODB_WRITES
        )
        wru = sum(2 * n if op == "TransactWriteItems" else n for op, n in items.items())
        rru = sum(keys.values()) + calls.get(("dynamodb", "Query"), 0)
        per = 1 / tasks
        return {
            "tasks": tasks,
            "sqs_requests_per_task": round(sqs * per, 3),
            "dynamodb_write_requests_per_task": round(ddb_writes * per, 3),
            "dynamodb_read_requests_per_task": round(ddb_reads * per, 3),
            "wru_per_task": round(wru * per, 3),
            "rru_per_task": round(rru * per, 3),
            "calls": {f"{s}.{op}": n for (s, op), n in sorted(calls.items())},
            "transact_items": items.get("TransactWriteItems", 0),
        }


def dollars_per_million(sqs_per_task: float, wru_per_task: float, rru_per_task: float) -> float:
    return round(
        sqs_per_task * SQS_PER_MILLION
        + wru_per_task * WRU_PER_MILLION
        + rru_per_task * RRU_PER_MILLION,
        2,
    )
