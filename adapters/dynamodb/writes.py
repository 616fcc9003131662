"""The repository's writes: add (with or without an idempotency key) and the
conditional transition, each keeping the status counters exact.

A write that changes a task's status changes the counters in the same
``TransactWriteItems``; which counter shard it touches is random (spreading the
writes), so only the sum over the shards means anything. A write that keeps the status
(a heartbeat, a takeover) is one conditional PutItem.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from adapters.dynamodb.attributes import Item, epoch_us, get_n, get_s, n, req_s, s
from adapters.dynamodb.calls import RETRY_PAUSE_SECONDS, run
from adapters.dynamodb.table import IDEMPOTENCY_SK, PK, SK, TTL_ATTRIBUTE, counter_key
from adapters.dynamodb.task_table import TaskTable
from domain.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InfrastructureError,
    TaskAlreadyExists,
    TaskNotFound,
)
from domain.models import Task, TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

TRANSACTION_ATTEMPTS = 4
"""Tries of a transaction cancelled only by a TransactionConflict (another transaction
on the same item in flight): the retry then either wins or sees the other's write."""


class TaskWrites(TaskTable):
    def _counter_update(self, status: TaskStatus, delta: int) -> TransactWriteItemTypeDef:
        shard = random.randrange(self.counter_shards)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": counter_key(status, shard),
                "UpdateExpression": "ADD #n :d",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {":d": {"N": str(delta)}},
            }
        }

    def _put_new(self, task: Task) -> TransactWriteItemTypeDef:
        """Put ``task``'s item unless an item with its key exists."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": self._to_item(task),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": PK},
            }
        }

    async def add(self, task: Task) -> None:
        reasons = await self._transact([self._put_new(task), self._counter_update(task.status, +1)])
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
                    PK: s(f"IDEM#{key}"),
                    SK: s(IDEMPOTENCY_SK),
                    "task_id": s(task.id),
                    "fingerprint": s(fingerprint),
                    "claim_until_us": {"N": str(epoch_us(expires_at))},
                    TTL_ATTRIBUTE: {"N": str(math.ceil(expires_at.timestamp()))},
                },
                "ConditionExpression": "attribute_not_exists(#pk) OR #until <= :now",
                "ExpressionAttributeNames": {"#pk": PK, "#until": "claim_until_us"},
                "ExpressionAttributeValues": {":now": {"N": str(epoch_us(now))}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        reasons = await self._transact(
            [claim, self._put_new(task), self._counter_update(task.status, +1)]
        )
        if reasons is None:
            return None
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            holder: Item = reasons[0].get("Item") or {}
            if get_s(holder, "fingerprint") != fingerprint:
                raise IdempotencyKeyReused(key)
            return req_s(holder, "task_id")
        if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
            raise TaskAlreadyExists(task.id)
        raise InfrastructureError("dynamodb", f"add {task.id} cancelled: {reasons}")

    async def transition(self, new: Task, *, expected: Task) -> None:
        if new.id != expected.id:
            raise ValueError("a transition cannot change the task id")
        if new.version <= expected.version:
            raise ValueError("a transition must increase the version")
        condition = {
            "ConditionExpression": "attribute_exists(#pk) AND #st = :st AND #v = :v",
            "ExpressionAttributeNames": {"#pk": PK, "#st": "status", "#v": "version"},
            "ExpressionAttributeValues": {
                ":st": s(expected.status.value),
                ":v": n(expected.version),
            },
        }
        item = self._to_item(new)
        if new.status is expected.status:
            # No count changes (a heartbeat, a takeover): one conditional PutItem.
            try:
                await run(
                    lambda: self._client.put_item(
                        TableName=self.table_name,
                        Item=item,
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                        **condition,  # type: ignore[arg-type]
                    ),
                    passthrough=["ConditionalCheckFailedException"],
                )
            except ClientError as error:
                _raise_lost(expected, error.response.get("Item"))  # type: ignore[arg-type]
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
            _raise_lost(expected, reasons[0].get("Item"))
        raise InfrastructureError("dynamodb", f"transition of {new.id} cancelled: {reasons}")

    async def _transact(self, items: list[TransactWriteItemTypeDef]) -> list[Any] | None:
        """Run a transaction. None when it committed; else the cancellation reasons
        (one per item). Cancellations caused only by concurrent transactions on the
        same items are retried a few times first."""
        reasons: list[Any] = []
        for attempt in range(TRANSACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt * random.uniform(0.5, 1.5))
            try:
                await run(
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


def _raise_lost(expected: Task, current: Item | None) -> None:
    if current is None:
        raise TaskNotFound(expected.id)
    found = f"{get_s(current, 'status')} v{get_n(current, 'version')}"
    raise ConcurrencyConflict(
        expected.id, f"expected {expected.status.value} v{expected.version}, found {found}"
    )
