"""The repository's writes: add (with or without an idempotency key) and the
conditional transition.

No write here touches a counter: counts come from the table's stream
(``stream_counts.py``). So an add is one PutItem of the state item (and one of a large
payload beside it), a transition one conditional UpdateItem of the attributes that
change, and only an add with an idempotency key is a transaction (the key and the task
together). The state item stays small (``task_items.INLINE_VALUE_BYTES``): a status
change costs 1 WRU whatever the payload's size.
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
from adapters.dynamodb.table import IDEMPOTENCY_SK, PAYLOAD_SK, PK, SK, TTL_ATTRIBUTE
from adapters.dynamodb.task_items import (
    PAYLOAD_APART,
    RESULT_APART,
    result_sk,
    side_item,
    side_items,
    side_key,
    stored_apart,
)
from adapters.dynamodb.task_table import TaskTable
from domain.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InfrastructureError,
    TaskAlreadyExists,
    TaskNotFound,
)
from domain.models import Task

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

TRANSACTION_ATTEMPTS = 4
"""Tries of a transaction cancelled only by a TransactionConflict (another transaction
on the same item in flight): the retry then either wins or sees the other's write."""
_NEW_ITEM = "attribute_not_exists(#pk)"
RESULT_KEYS = 10**9
"""Random numbers a large result's key is made unique with, per version."""
_UNCHANGED = frozenset({"payload", PAYLOAD_APART})
"""Never rewritten by a transition: the payload is immutable."""


class TaskWrites(TaskTable):
    def _put_new(self, item: Item) -> TransactWriteItemTypeDef:
        """Put ``item`` unless an item with its key exists."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": _NEW_ITEM,
                "ExpressionAttributeNames": {"#pk": PK},
            }
        }

    async def _put_if_new(self, item: Item, task_id: str) -> None:
        try:
            await run(
                lambda: self._client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression=_NEW_ITEM,
                    ExpressionAttributeNames={"#pk": PK},
                ),
                passthrough=["ConditionalCheckFailedException"],
            )
        except ClientError:
            raise TaskAlreadyExists(task_id) from None

    async def add(self, task: Task) -> None:
        # A large payload first: a state item is never stored without it.
        for beside in side_items(task):
            await self._put_if_new(beside, task.id)
        await self._put_if_new(self._to_item(task), task.id)

    async def add_idempotent(
        self, task: Task, *, key: str, fingerprint: str, expires_at: datetime, now: datetime
    ) -> str | None:
        """One transaction: claim the key (absent, or its claim expired) and put the
        task. A lost claim comes back with the claim's item (ALL_OLD)."""
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
        items = [self._put_new(item) for item in (self._to_item(task), *side_items(task))]
        reasons = await self._transact([claim, *items])
        if reasons is None:
            return None
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            holder: Item = reasons[0].get("Item") or {}
            if get_s(holder, "fingerprint") != fingerprint:
                raise IdempotencyKeyReused(key)
            return req_s(holder, "task_id")
        if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons[1:]):
            raise TaskAlreadyExists(task.id)
        raise InfrastructureError("dynamodb", f"add {task.id} cancelled: {reasons}")

    async def transition(self, new: Task, *, expected: Task) -> None:
        """One conditional UpdateItem of the attributes that differ (a large new result
        is put beside first, under a key of its version and a random number: two writers
        of one version, both from a PENDING task (claim at finish), never overwrite each
        other's; the loser's is deleted)."""
        if new.id != expected.id:
            raise ValueError("a transition cannot change the task id")
        if new.version <= expected.version:
            raise ValueError("a transition must increase the version")
        skip = set(_UNCHANGED)
        old_item, new_item = self._to_item(expected), self._to_item(new)
        expiry = new_item.get(TTL_ATTRIBUTE)
        result_key = None
        if new.result == expected.result:
            skip |= {"result", RESULT_APART}
        elif new.result is not None and stored_apart(new.result):
            apart = new.version * RESULT_KEYS + random.randrange(RESULT_KEYS)
            new_item[RESULT_APART] = n(apart)
            result = side_item(new.id, result_sk(apart), new.result)
            result_key = side_key(new.id, result_sk(apart))
            if expiry is not None:  # expires with its state item
                result[TTL_ATTRIBUTE] = expiry
            await run(lambda: self._client.put_item(TableName=self.table_name, Item=result))
        changed = {k: v for k, v in new_item.items() if k not in skip and old_item.get(k) != v}
        gone = [k for k in old_item if k not in new_item and k not in skip]
        names = {"#pk": PK, "#st": "status", "#v": "version"}
        values: Item = {":st": s(expected.status.value), ":v": n(expected.version)}
        sets = []
        for i, (name, value) in enumerate(changed.items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
        removes = []
        for i, name in enumerate(gone):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expression = "SET " + ", ".join(sets)  # the version always changes
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            await run(
                lambda: self._client.update_item(
                    TableName=self.table_name,
                    Key={PK: new_item[PK], SK: new_item[SK]},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(#pk) AND #st = :st AND #v = :v",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ),
                passthrough=["ConditionalCheckFailedException"],
            )
        except ClientError as error:
            if result_key is not None:  # not ours to keep: the state item names another
                key = result_key
                await run(lambda: self._client.delete_item(TableName=self.table_name, Key=key))
            _raise_lost(expected, error.response.get("Item"))  # type: ignore[arg-type]
        if expiry is not None and TTL_ATTRIBUTE not in old_item and PAYLOAD_APART in new_item:
            await self._expire_payload(new.id, expiry)

    async def _expire_payload(self, task_id: str, expiry: AttributeValueTypeDef) -> None:
        """The payload item expires with its state item: its TTL is set when the task
        finishes (billed by the payload item's size; only with retention on)."""
        await run(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key=side_key(task_id, PAYLOAD_SK),
                UpdateExpression="SET #ttl = :ttl",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":ttl": expiry},
            )
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
