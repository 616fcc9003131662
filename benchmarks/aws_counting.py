"""Counting AWS requests with botocore event hooks, and what they cost.

Every request of every client attached (SQS, the long-poll SQS client, DynamoDB, the
DynamoDB Streams client, S3) is counted once (``after-call``: botocore's retries are
inside one call), with the capacity it is billed for, by DynamoDB's rules applied to
the items themselves (``aws_units.py``):

- a write: 1 WRU per started KB of the item; an update or a replacing put by the larger
  of the item's old and new size (the old one known from the writes this counter saw);
  a failed conditional write by the item as it is; a delete by the deleted item; a
  transactional item twice that;
- index writes, which the client never sees: for each global secondary index, 1 unit
  per KB of the index item written, a delete 1 unit, so 2 when its key changes; none
  when the item neither enters, leaves, moves in nor changes what the index projects;
- a read: 1 RRU per started 4 KB (a Query: of all the items it returns, together),
  half for an eventually consistent read;
- DynamoDB Streams: GetRecords calls (other Streams calls are not billed);
- SQS: every request, each 64 KB chunk of a message a request of its own;
- S3: PUT/COPY/POST/LIST at one price, GET/HEAD at another (DELETE is free).

To see the new image of an update, the counter asks for it: an UpdateItem without
``ReturnValues`` is sent with ``ReturnValues=ALL_NEW`` (it is not billed, and no caller
here reads an update's answer unless it asked for one).

Prices (us-east-1, on-demand, as published by AWS; the report states them).
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from benchmarks.aws_units import Index, Ledger, read_units, write_units

SQS_PER_MILLION = 0.40
WRU_PER_MILLION = 0.625
RRU_PER_MILLION = 0.125
STREAM_READS_PER_MILLION = 0.20
"""$0.02 per 100,000 GetRecords calls."""
S3_WRITES_PER_MILLION = 5.0
"""PUT, COPY, POST, LIST: $0.005 per 1,000."""
S3_READS_PER_MILLION = 0.40
"""GET, HEAD: $0.0004 per 1,000."""
SQS_CHUNK_BYTES = 64 * 1024

DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
_S3_READS = frozenset({"GetObject", "HeadObject"})
_S3_FREE = frozenset({"DeleteObject", "DeleteObjects"})


@dataclass
class CallCost:
    """What the calls of one operation came to."""

    calls: int = 0
    wru: float = 0.0
    index_units: float = 0.0
    rru: float = 0.0
    billed_requests: float = 0.0
    """SQS requests (by 64 KB chunk), S3 requests, GetRecords calls."""

    def dollars(self, service: str, operation: str) -> float:
        if service == "sqs":
            per = SQS_PER_MILLION
        elif service == "dynamodbstreams":
            per = STREAM_READS_PER_MILLION
        elif service == "s3":
            per = S3_READS_PER_MILLION if operation in _S3_READS else S3_WRITES_PER_MILLION
        else:
            per = 0.0
        return (
            self.billed_requests * per
            + (self.wru + self.index_units) * WRU_PER_MILLION
            + self.rru * RRU_PER_MILLION
        )


@dataclass
class RequestCounter:
    """Counts every call the attached boto3 clients make and the capacity each is
    billed for. ``indexes`` maps a table name to its global secondary indexes (those
    a table is created with, ``Index.of_table``, or assumed, ``Index(...)``)."""

    indexes: dict[str, list[Index]] = field(default_factory=dict)
    costs: dict[tuple[str, str], CallCost] = field(
        default_factory=lambda: collections.defaultdict(CallCost)
    )
    ledger: Ledger = field(default_factory=Ledger)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        client.meta.events.register("before-parameter-build.*.*", self._keep_params)
        client.meta.events.register("after-call.*.*", self._after_call(service))

    def learn_table(self, dynamodb: Any, table: str) -> None:
        """Read ``table``'s indexes (DescribeTable: attach after this, or it is counted)."""
        description = dynamodb.describe_table(TableName=table)["Table"]
        self.indexes[table] = Index.of_table(description)

    @staticmethod
    def _keep_params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name == "UpdateItem" and "ReturnValues" not in params:
            params["ReturnValues"] = "ALL_NEW"
            context["taskq_asked_new"] = True
        context["taskq_params"] = dict(params)

    def _after_call(self, service: str) -> Any:
        def count(
            http_response: Any,
            parsed: dict[str, Any],
            model: Any,
            context: dict[str, Any],
            **_: Any,
        ) -> None:
            params = context.get("taskq_params", {})
            ok = http_response.status_code < 300
            with self._lock:
                cost = self.costs[(service, model.name)]
                cost.calls += 1
                if service == "dynamodb":
                    self._dynamodb(cost, model.name, params, parsed, ok)
                elif service == "sqs":
                    cost.billed_requests += _sqs_requests(model.name, params)
                elif service == "dynamodbstreams":
                    cost.billed_requests += model.name == "GetRecords"
                elif service == "s3":
                    cost.billed_requests += model.name not in _S3_FREE
            if context.pop("taskq_asked_new", False):
                parsed.pop("Attributes", None)  # the caller did not ask for it

        return count

    def _dynamodb(
        self, cost: CallCost, name: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool
    ) -> None:
        if name in DYNAMODB_WRITES:
            wru, index = write_units(name, params, parsed, ok, self.ledger, self.indexes)
            cost.wru += wru
            cost.index_units += index
        else:
            cost.rru += read_units(name, params, parsed, ok)

    def reset(self) -> None:
        with self._lock:
            self.costs.clear()

    def summary(self, tasks: int) -> dict[str, Any]:
        """Per task: requests, units and dollars per million tasks, in all and for every
        operation (``table``)."""
        with self._lock:
            costs = {key: CallCost(**vars(cost)) for key, cost in self.costs.items()}
        per = 1 / tasks

        def total(service: str | None, attr: str) -> float:
            return sum(
                float(getattr(c, attr))
                for (s, _), c in costs.items()
                if service is None or s == service
            )

        ddb_writes = sum(
            c.calls for (s, op), c in costs.items() if s == "dynamodb" and op in DYNAMODB_WRITES
        )
        ddb_reads = sum(
            c.calls for (s, op), c in costs.items() if s == "dynamodb" and op not in DYNAMODB_WRITES
        )
        dollars = sum(c.dollars(s, op) for (s, op), c in costs.items()) * per
        return {
            "tasks": tasks,
            "sqs_requests_per_task": round(total("sqs", "billed_requests") * per, 3),
            "dynamodb_write_requests_per_task": round(ddb_writes * per, 3),
            "dynamodb_read_requests_per_task": round(ddb_reads * per, 3),
            "wru_per_task": round(total("dynamodb", "wru") * per, 3),
            "index_units_per_task": round(total("dynamodb", "index_units") * per, 3),
            "rru_per_task": round(total("dynamodb", "rru") * per, 3),
            "stream_reads_per_task": round(total("dynamodbstreams", "billed_requests") * per, 4),
            "s3_requests_per_task": round(total("s3", "billed_requests") * per, 4),
            "dollars_per_million_tasks": round(dollars, 3),
            "calls": {f"{s}.{op}": c.calls for (s, op), c in sorted(costs.items())},
            "table": [
                {
                    "call": f"{s}.{op}",
                    "per_task": round(c.calls * per, 4),
                    "wru": round(c.wru * per, 3),
                    "index_units": round(c.index_units * per, 3),
                    "rru": round(c.rru * per, 3),
                    "billed_requests": round(c.billed_requests * per, 4),
                    "dollars_per_million": round(c.dollars(s, op) * per, 3),
                }
                for (s, op), c in sorted(costs.items())
            ],
        }


def _sqs_requests(name: str, params: dict[str, Any]) -> int:
    """Billed SQS requests of one call: each 64 KB chunk of a sent payload is one."""
    if name == "SendMessage":
        return _chunks(len(str(params.get("MessageBody", "")).encode()))
    if name == "SendMessageBatch":
        size = sum(len(str(e.get("MessageBody", "")).encode()) for e in params.get("Entries", []))
        return _chunks(size)
    return 1


def _chunks(size: int) -> int:
    return max(1, math.ceil(size / SQS_CHUNK_BYTES))


def dollars_per_million(sqs_per_task: float, wru_per_task: float, rru_per_task: float) -> float:
    return round(
        sqs_per_task * SQS_PER_MILLION
        + wru_per_task * WRU_PER_MILLION
        + rru_per_task * RRU_PER_MILLION,
        2,
    )
