"""The TaskRepository and WorkerRegistry ports on Amazon DynamoDB (boto3).

One table holds three kinds of item, told apart by their partition key (the design,
and why it scales, is in docs/aws.md):

===============  ==========================  =========  ====================================
item             pk                          sk         notes
===============  ==========================  =========  ====================================
task             ``TASK#<id>``               ``TASK``   every Task field; GSI keys below
status counter   ``COUNT#<status>#<shard>``  ``COUNT``  ``n``: a signed share of the count
worker           ``WORKERS``                 ``<id>``   WorkerInfo, ``live_until``
idempotency key  ``IDEM#<key>``              ``IDEM``   task id, fingerprint, claim expiry
===============  ==========================  =========  ====================================

Task items carry the sparse GSI keys ``gsi1pk = STATUS#<status>#<shard>`` (shard: a
stable hash of the id) and ``gsi1sk = <created_at UTC>#<id>``, so listing one status
reads ``index_shards`` partitions in parallel instead of one hot partition.

Held tasks (stored without a queue message, due later than SQS can delay one) also
carry ``heldpk = HELD#<shard>`` (a stable hash of the id, ``HELD_SHARDS`` partitions)
and ``heldsk = <run_at UTC>#<id>``, the keys of the sparse GSI ``held``: every other
item lacks them, so the index holds the held tasks only, ordered by due time, and the
due ones are found with one Query per shard, never a Scan.

Counts are exact: a write that changes a task's status changes the counters in the same
``TransactWriteItems``. Which counter shard a write touches is random (spreading the
writes); only the sum over the shards means anything.

The adapter is handed a low-level boto3 client and never creates one. botocore's retry
mode retries throttling and 5xx answers; what still fails becomes
``InfrastructureError("dynamodb", ...)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from adapters.cursor import decode_cursor, encode_cursor
from domain.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InfrastructureError,
    InvalidCursor,
    TaskAlreadyExists,
    TaskNotFound,
)
from domain.models import DEFAULT_HEARTBEAT_SECONDS, Page, Task, TaskStatus, WorkerInfo
from domain.ports import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        TransactWriteItemTypeDef,
    )

T = TypeVar("T")
Item = dict[str, "AttributeValueTypeDef"]

# -- the table's shape (adapters/aws_provision.py creates it from these) -------------
PK = "pk"
SK = "sk"
GSI1 = "gsi1"
GSI1_PK = "gsi1pk"
GSI1_SK = "gsi1sk"
HELD_INDEX = "held"
HELD_PK = "heldpk"
HELD_SK = "heldsk"
HELD_SHARDS = 4
"""Partitions of the held-task index: held tasks are few (only those due beyond the
queue's delay limit), so a few partitions spread the writes and one Query each finds
every due task."""
TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds after which DynamoDB's TTL may delete the item (within about 48 h)."""

TASK_SK = "TASK"
COUNTER_SK = "COUNT"
WORKERS_PK = "WORKERS"
IDEMPOTENCY_SK = "IDEM"

# DynamoDB quotas, from the DynamoDB Developer Guide ("Service, account, and table
# quotas"):
MAX_BATCH_GET_KEYS = 100
"""Keys per BatchGetItem call."""
MAX_ITEM_BYTES = 400 * 1024
"""Item size limit (400 KB); a larger task is rejected by DynamoDB (ValidationException)."""

TRANSACTION_ATTEMPTS = 4
"""Tries of a transaction cancelled only by a TransactionConflict (another transaction
on the same item in flight): the retry then either wins or sees the other's write."""
RETRY_PAUSE_SECONDS = 0.05
WORKER_TTL_GRACE_SECONDS = 3600
"""Dead workers' items stay this long past their expiry before TTL may delete them."""


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Unknown')}: {info.get('Message', '')}"
    return f"{type(error).__name__}: {error}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# -- attribute values ----------------------------------------------------------------


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": repr(value)}


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def _utc_key(value: datetime) -> str:
    """Fixed-width UTC timestamp: its string order is its time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _epoch_us(value: datetime) -> int:
    """Whole microseconds since the epoch: exact, unlike a float timestamp."""
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _get_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value.get("S")


def _get_dt(item: Item, name: str) -> datetime | None:
    text = _get_s(item, name)
    return None if text is None else datetime.fromisoformat(text)


def _req_s(item: Item, name: str) -> str:
    value = _get_s(item, name)
    if value is None:
        raise InfrastructureError("dynamodb", f"stored item lacks attribute {name!r}")
    return value


def _req_dt(item: Item, name: str) -> datetime:
    return datetime.fromisoformat(_req_s(item, name))


def _get_n(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value.get("N")


def _req_int(item: Item, name: str) -> int:
    text = _get_n(item, name)
    if text is None:
        raise InfrastructureError("dynamodb", f"stored item lacks attribute {name!r}")
    return int(text)


# -- Task <-> item, field by field ----------------------------------------------------
# Driven by the dataclass fields, so a field added to Task is stored without a change
# here; an item written before a field existed reads back with the field's default.
# A flag that is false (``cancel_requested``, ``isolated``) is not written at all.
# ``payload`` and ``result`` are JSON text: DynamoDB numbers would come back as Decimal.

_TASK_FIELDS = dataclasses.fields(Task)
_JSON_FIELDS = frozenset({"payload", "result"})


def _kind(annotation: object) -> str:
    text = str(annotation).replace(" | None", "").replace("None | ", "")
    return text if text in ("datetime", "int", "float", "bool", "str", "TaskStatus") else "json"


def _encode_field(annotation: object, name: str, value: Any) -> AttributeValueTypeDef:
    kind = "json" if name in _JSON_FIELDS else _kind(annotation)
    if kind == "datetime":
        return _s(_iso(value))
    if kind == "bool":
        return {"BOOL": bool(value)}
    if kind == "int":
        return {"N": str(int(value))}
    if kind == "float":
        return _n(float(value))
    if kind == "TaskStatus":
        return _s(TaskStatus(value).value)
    if kind == "str":
        return _s(value)
    return _s(json.dumps(value, ensure_ascii=False))


def _decode_field(annotation: object, name: str, stored: AttributeValueTypeDef) -> Any:
    kind = "json" if name in _JSON_FIELDS else _kind(annotation)
    if kind == "bool":
        return stored.get("BOOL", False)
    if kind in ("int", "float"):
        number = stored.get("N", "0")
        return int(number) if kind == "int" else float(number)
    text = stored.get("S", "")
    if kind == "datetime":
        return datetime.fromisoformat(text)
    if kind == "TaskStatus":
        return TaskStatus(text)
    if kind == "str":
        return text
    return json.loads(text)


class DynamoDbTaskRepository:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_seconds: float | None = None,
        counter_shards: int = 8,
        index_shards: int = 8,
        clock: Clock | None = None,
    ) -> None:
        if counter_shards < 1 or index_shards < 1:
            raise ValueError("counter_shards and index_shards must be at least 1")
        self._client = client
        self.table_name = table_name
        self.retention_seconds = retention_seconds
        self.counter_shards = counter_shards
        self.index_shards = index_shards
        self._clock = clock

    # -- plumbing --------------------------------------------------------------------

    async def _run(self, call: Callable[[], T], *, passthrough: Sequence[str] = ()) -> T:
        """Run one blocking boto3 call in a thread. A ClientError whose code is in
        ``passthrough`` is re-raised for the caller; every other failure leaves as
        ``InfrastructureError``."""
        try:
            return await asyncio.to_thread(call)
        except ClientError as error:
            if _code(error) in passthrough:
                raise
            raise InfrastructureError("dynamodb", _describe(error)) from None
        except BotoCoreError as error:
            raise InfrastructureError("dynamodb", _describe(error)) from None

    def _now_epoch(self) -> float:
        return self._clock.now().timestamp() if self._clock is not None else time.time()

    def _index_shard(self, task_id: str) -> int:
        return self._shard(task_id, self.index_shards)

    @staticmethod
    def _shard(task_id: str, shards: int) -> int:
        # A stable hash (not Python's salted hash()): every process agrees on it.
        digest = hashlib.blake2b(task_id.encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") % shards

    def _counter_update(self, status: TaskStatus, delta: int) -> TransactWriteItemTypeDef:
        shard = random.randrange(self.counter_shards)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {PK: _s(f"COUNT#{status.value}#{shard}"), SK: _s(COUNTER_SK)},
                "UpdateExpression": "ADD #n :d",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {":d": {"N": str(delta)}},
            }
        }

    # -- items -----------------------------------------------------------------------

    def _to_item(self, task: Task) -> Item:
        item: Item = {
            PK: _s(f"TASK#{task.id}"),
            SK: _s(TASK_SK),
            GSI1_PK: _s(f"STATUS#{task.status.value}#{self._index_shard(task.id)}"),
            GSI1_SK: _s(f"{_utc_key(task.created_at)}#{task.id}"),
        }
        if task.held and task.run_at is not None and task.status is TaskStatus.PENDING:
            item[HELD_PK] = _s(f"HELD#{self._shard(task.id, HELD_SHARDS)}")
            item[HELD_SK] = _s(f"{_utc_key(task.run_at)}#{task.id}")
        for field in _TASK_FIELDS:
            value = getattr(task, field.name)
            if value is False and field.default is False:
                continue  # absent reads back as the default: every write stays smaller
            if value is not None or field.name in _JSON_FIELDS:
                item[field.name] = _encode_field(field.type, field.name, value)
        if (
            self.retention_seconds is not None
            and task.status.is_final
            and task.finished_at is not None
        ):
            expires = task.finished_at + timedelta(seconds=self.retention_seconds)
            item[TTL_ATTRIBUTE] = {"N": str(math.ceil(expires.timestamp()))}
        return item

    @staticmethod
    def _from_item(item: Item) -> Task:
        values: dict[str, Any] = {}
        for field in _TASK_FIELDS:
            stored = item.get(field.name)
            if stored is not None:  # absent: None, or the default of a newer field
                values[field.name] = _decode_field(field.type, field.name, stored)
        try:
            return Task(**values)
        except TypeError as error:
            raise InfrastructureError("dynamodb", f"stored task is incomplete: {error}") from None

    def _expired(self, item: Item) -> bool:
        """Past its retention: DynamoDB's TTL deletes late (up to days), so reads hide it."""
        expires = _get_n(item, TTL_ATTRIBUTE)
        return expires is not None and float(expires) <= self._now_epoch()

    @staticmethod
    def _task_key(task_id: str) -> Item:
        return {PK: _s(f"TASK#{task_id}"), SK: _s(TASK_SK)}

    # -- the port --------------------------------------------------------------------

    async def add(self, task: Task) -> None:
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table_name,
                "Item": self._to_item(task),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": PK},
            }
        }
        reasons = await self._transact([put, self._counter_update(task.status, +1)])
        if reasons is not None:
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                raise TaskAlreadyExists(task.id)
            raise InfrastructureError("dynamodb", f"add {task.id} cancelled: {reasons}")

    async def add_idempotent(
        self, task: Task, *, key: str, fingerprint: str, expires_at: datetime, now: datetime
    ) -> str | None:
        """One transaction: claim the key (absent, or its claim expired), put the task,
        count it. A lost claim comes back with the claim's item (ALL_OLD)."""
        claim: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    PK: _s(f"IDEM#{key}"),
                    SK: _s(IDEMPOTENCY_SK),
                    "task_id": _s(task.id),
                    "fingerprint": _s(fingerprint),
                    "claim_until_us": {"N": str(_epoch_us(expires_at))},
                    TTL_ATTRIBUTE: {"N": str(math.ceil(expires_at.timestamp()))},
                },
                "ConditionExpression": "attribute_not_exists(#pk) OR #until <= :now",
                "ExpressionAttributeNames": {"#pk": PK, "#until": "claim_until_us"},
                "ExpressionAttributeValues": {":now": {"N": str(_epoch_us(now))}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table_name,
                "Item": self._to_item(task),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": PK},
            }
        }
        reasons = await self._transact([claim, put, self._counter_update(task.status, +1)])
        if reasons is None:
            return None
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            holder: Item = reasons[0].get("Item") or {}
            if _get_s(holder, "fingerprint") != fingerprint:
                raise IdempotencyKeyReused(key)
            return _req_s(holder, "task_id")
        if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
            raise TaskAlreadyExists(task.id)
        raise InfrastructureError("dynamodb", f"add {task.id} cancelled: {reasons}")

    async def get(self, task_id: str) -> Task:
        response = await self._run(
            lambda: self._client.get_item(
                TableName=self.table_name, Key=self._task_key(task_id), ConsistentRead=True
            )
        )
        item = response.get("Item")
        if item is None or self._expired(item):
            raise TaskNotFound(task_id)
        return self._from_item(item)

    async def transition(self, new: Task, *, expected: Task) -> None:
        if new.id != expected.id:
            raise ValueError("a transition cannot change the task id")
        if new.version <= expected.version:
            raise ValueError("a transition must increase the version")
        condition = {
            "ConditionExpression": "attribute_exists(#pk) AND #st = :st AND #v = :v",
            "ExpressionAttributeNames": {"#pk": PK, "#st": "status", "#v": "version"},
            "ExpressionAttributeValues": {
                ":st": _s(expected.status.value),
                ":v": _n(expected.version),
            },
        }
        item = self._to_item(new)
        if new.status is expected.status:
            # No count changes (a heartbeat, a takeover): one conditional PutItem.
            try:
                await self._run(
                    lambda: self._client.put_item(
                        TableName=self.table_name,
                        Item=item,
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                        **condition,  # type: ignore[arg-type]
                    ),
                    passthrough=["ConditionalCheckFailedException"],
                )
            except ClientError as error:
                self._raise_lost(expected, error.response.get("Item"))  # type: ignore[arg-type]
            return
        put: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                **condition,  # type: ignore[typeddict-item]
            }
        }
        reasons = await self._transact(
            [
                put,
                self._counter_update(expected.status, -1),
                self._counter_update(new.status, +1),
            ]
        )
        if reasons is None:
            return
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            self._raise_lost(expected, reasons[0].get("Item"))
        raise InfrastructureError("dynamodb", f"transition of {new.id} cancelled: {reasons}")

    def _raise_lost(self, expected: Task, current: Item | None) -> None:
        if current is None:
            raise TaskNotFound(expected.id)
        raise ConcurrencyConflict(
            expected.id,
            f"expected {expected.status.value} v{expected.version}, found "
            f"{_get_s(current, 'status')} v{_get_n(current, 'version')}",
        )

    async def _transact(self, items: list[TransactWriteItemTypeDef]) -> list[Any] | None:
        """Run a transaction. None when it committed; else the cancellation reasons
        (one per item). Cancellations caused only by concurrent transactions on the
        same items are retried a few times first."""
        reasons: list[Any] = []
        for attempt in range(TRANSACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt * random.uniform(0.5, 1.5))
            try:
                await self._run(
                    lambda: self._client.transact_write_items(TransactItems=items),
                    passthrough=["TransactionCanceledException"],
                )
                return None
            except ClientError as error:
                reasons = list(error.response.get("CancellationReasons", []))
            codes = {reason.get("Code", "None") for reason in reasons}
            if not reasons or "ConditionalCheckFailed" in codes:
                break
            if not codes <= {"TransactionConflict", "None"}:
                break
        return reasons or [{"Code": "Unknown"}]

    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        before: str | None = None
        if cursor is not None:
            key = decode_cursor(cursor, "k").get("k")
            if not isinstance(key, str):
                raise InvalidCursor()
            before = key
        # limit + 1 from each shard: if the merge holds more than ``limit``, there is a
        # next page; if not, every shard was read to its end.
        shards = await asyncio.gather(
            *(
                self._query_shard(f"STATUS#{status.value}#{shard}", before, limit + 1)
                for shard in range(self.index_shards)
            )
        )
        merged = sorted(
            (item for shard_items in shards for item in shard_items),
            key=lambda item: _req_s(item, GSI1_SK),
            reverse=True,
        )
        page = merged[:limit]
        next_cursor = None
        if len(merged) > limit:
            next_cursor = encode_cursor({"k": _req_s(page[-1], GSI1_SK)})
        tasks = [
            self._from_item(item)
            for item in page
            if not self._expired(item) and _get_s(item, "status") == status.value
        ]
        return Page(items=tasks, next_cursor=next_cursor)

    async def _query_shard(self, partition: str, before: str | None, want: int) -> list[Item]:
        condition = "#pk = :pk"
        names = {"#pk": GSI1_PK}
        values: Item = {":pk": _s(partition)}
        if before is not None:
            condition += " AND #sk < :before"
            names["#sk"] = GSI1_SK
            values[":before"] = _s(before)
        items: list[Item] = []
        start: Item | None = None
        while len(items) < want:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": GSI1,
                "KeyConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ScanIndexForward": False,
                "Limit": want - len(items),
            }
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            response = await self._run(functools.partial(self._client.query, **kwargs))
            items.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if start is None:
                break
        return items

    async def list_due_held(self, before: datetime, *, limit: int) -> list[Task]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # Keys are "<run_at>#<id>": everything below "<before>$" ('$' follows '#') is due.
        upper = f"{_utc_key(before)}$"
        shards = await asyncio.gather(
            *(self._query_held(shard, upper, limit) for shard in range(HELD_SHARDS))
        )
        merged = sorted(
            (item for shard_items in shards for item in shard_items),
            key=lambda item: _req_s(item, HELD_SK),
        )
        return [self._from_item(item) for item in merged[:limit]]

    async def _query_held(self, shard: int, upper: str, limit: int) -> list[Item]:
        items: list[Item] = []
        start: Item | None = None
        while len(items) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": HELD_INDEX,
                "KeyConditionExpression": "#pk = :pk AND #sk < :upper",
                "ExpressionAttributeNames": {"#pk": HELD_PK, "#sk": HELD_SK},
                "ExpressionAttributeValues": {":pk": _s(f"HELD#{shard}"), ":upper": _s(upper)},
                "Limit": limit - len(items),
            }
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            response = await self._run(functools.partial(self._client.query, **kwargs))
            items.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if start is None:
                break
        return items

    async def count_by_status(self) -> dict[TaskStatus, int]:
        keys = [
            {PK: _s(f"COUNT#{status.value}#{shard}"), SK: _s(COUNTER_SK)}
            for status in TaskStatus
            for shard in range(self.counter_shards)
        ]
        counts = dict.fromkeys(TaskStatus, 0)
        for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
            pending: list[Item] = keys[start : start + MAX_BATCH_GET_KEYS]
            attempt = 0
            while pending:
                if attempt:
                    await asyncio.sleep(RETRY_PAUSE_SECONDS * min(attempt, 10))
                attempt += 1
                request = {self.table_name: {"Keys": pending, "ConsistentRead": True}}
                response = await self._run(
                    functools.partial(self._client.batch_get_item, RequestItems=request)  # type: ignore[arg-type]
                )
                for item in response.get("Responses", {}).get(self.table_name, []):
                    status = TaskStatus(_req_s(item, PK).split("#")[1])
                    counts[status] += _req_int(item, "n")
                unprocessed = response.get("UnprocessedKeys", {}).get(self.table_name)
                pending = list(unprocessed["Keys"]) if unprocessed else []
        return counts

    async def ping(self) -> None:
        await self._run(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={PK: _s("PING"), SK: _s("PING")},
            )
        )


class DynamoDbWorkerRegistry:
    """Live workers as items of one partition (``pk = WORKERS``), read with one Query.

    Liveness is decided on read against ``live_until``; the TTL attribute only lets
    DynamoDB clean up workers that died without removing themselves.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    async def _run(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except (ClientError, BotoCoreError) as error:
            raise InfrastructureError("dynamodb", _describe(error)) from None

    async def beat(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        live_until = info.live_until
        forget_at = info.last_seen + timedelta(seconds=ttl_seconds)
        item: Item = {
            PK: _s(WORKERS_PK),
            SK: _s(info.worker_id),
            "worker_id": _s(info.worker_id),
            "host": _s(info.host),
            "pid": _n(info.pid),
            "concurrency": _n(info.concurrency),
            "in_flight": _n(info.in_flight),
            "started_at": _s(_iso(info.started_at)),
            "last_seen": _s(_iso(info.last_seen)),
            "live_until": _s(_iso(live_until)),
            "heartbeat_seconds": _n(info.heartbeat_seconds),
            TTL_ATTRIBUTE: {"N": str(math.ceil(forget_at.timestamp()) + WORKER_TTL_GRACE_SECONDS)},
        }
        await self._run(lambda: self._client.put_item(TableName=self.table_name, Item=item))

    async def remove(self, worker_id: str) -> None:
        await self._run(
            lambda: self._client.delete_item(
                TableName=self.table_name, Key={PK: _s(WORKERS_PK), SK: _s(worker_id)}
            )
        )

    async def live(self, now: datetime) -> list[WorkerInfo]:
        workers: list[WorkerInfo] = []
        start: Item | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": PK},
                "ExpressionAttributeValues": {":pk": _s(WORKERS_PK)},
                "ConsistentRead": True,
            }
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            response = await self._run(functools.partial(self._client.query, **kwargs))
            for item in response.get("Items", []):
                if _req_dt(item, "live_until") > now:
                    workers.append(
                        WorkerInfo(
                            worker_id=_req_s(item, "worker_id"),
                            host=_req_s(item, "host"),
                            pid=_req_int(item, "pid"),
                            concurrency=_req_int(item, "concurrency"),
                            in_flight=_req_int(item, "in_flight"),
                            started_at=_req_dt(item, "started_at"),
                            last_seen=_req_dt(item, "last_seen"),
                            heartbeat_seconds=float(
                                item.get("heartbeat_seconds", {}).get(
                                    "N", str(DEFAULT_HEARTBEAT_SECONDS)
                                )
                            ),
                        )
                    )
            start = response.get("LastEvaluatedKey")
            if start is None:
                return workers
