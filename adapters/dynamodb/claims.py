"""Claiming a due PENDING task in one conditional UpdateItem (``ClaimsInOneWrite``,
``domain/claiming.py``): no read before the claim, and ``ReturnValues=ALL_NEW`` gives
the claimed task back. A task that is not PENDING, is scheduled (``run_at``), or is not
stored fails the condition and is left as it is; the worker then reads it and decides.

The attributes written are those ``Task.claim`` changes, encoded from the model's own
claim of a stand-in task (``_claimed_attributes``), so they are written exactly as a
transition would write them; ``tests/contract`` checks the stored task field by field
against ``Task.claim`` of the task as it was.
"""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from adapters.dynamodb.attributes import Item, s
from adapters.dynamodb.calls import run
from adapters.dynamodb.table import GSI1_PK, HELD_PK, HELD_SK, PK
from adapters.dynamodb.task_items import needs_side, side_key, task_from_item, task_key
from adapters.dynamodb.task_table import TaskTable
from domain.models import Task, TaskStatus

_SET = ("status", "updated_at", "started_at", "lease_token", "lease_expires_at", GSI1_PK)
"""What a claim sets to a new value; ``version`` and ``attempts`` go up by one, and the
hold ends (``held`` and the keys of the ``held`` index removed)."""
_ADD_ONE = ("version", "attempts")
_REMOVE = ("held", HELD_PK, HELD_SK)


class TaskClaims(TaskTable):
    async def claim_pending(
        self, task_id: str, *, lease_token: str, now: datetime, lease_seconds: float
    ) -> Task | None:
        values = self._claimed_attributes(task_id, lease_token, now, lease_seconds)
        names = {f"#s{i}": name for i, name in enumerate(_SET)}
        names |= {f"#i{i}": name for i, name in enumerate(_ADD_ONE)}
        names |= {f"#r{i}": name for i, name in enumerate(_REMOVE)}
        names |= {"#pk": PK, "#run_at": "run_at"}
        expression = (
            "SET "
            + ", ".join(f"#s{i} = :s{i}" for i in range(len(_SET)))
            + ", "
            + ", ".join(f"#i{i} = #i{i} + :one" for i in range(len(_ADD_ONE)))
            + " REMOVE "
            + ", ".join(f"#r{i}" for i in range(len(_REMOVE)))
        )
        attribute_values: Item = {f":s{i}": values[name] for i, name in enumerate(_SET)}
        attribute_values |= {":one": {"N": "1"}, ":pending": s(TaskStatus.PENDING.value)}
        try:
            answer = await run(
                lambda: self._client.update_item(
                    TableName=self.table_name,
                    Key=task_key(task_id),
                    UpdateExpression=expression,
                    ConditionExpression=(
                        "attribute_exists(#pk) AND #s0 = :pending AND attribute_not_exists(#run_at)"
                    ),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attribute_values,
                    ReturnValues="ALL_NEW",
                ),
                passthrough=["ConditionalCheckFailedException"],
            )
        except ClientError:
            return None  # not a plain due PENDING task: read and decided by the caller
        item: Item = answer["Attributes"]
        return task_from_item(item, await self._side(task_id, needs_side(item)))

    def _claimed_attributes(
        self, task_id: str, lease_token: str, now: datetime, lease_seconds: float
    ) -> Item:
        """The attributes ``Task.claim`` gives a task of this id, as stored."""
        stand_in = Task(
            id=task_id, type="", payload=None, status=TaskStatus.PENDING, created_at=now,
            updated_at=now,
        )  # fmt: skip
        return self._to_item(stand_in.claim(lease_token, now, lease_seconds))

    async def _side(self, task_id: str, sort_keys: list[str]) -> dict[str, Item]:
        """The items beside a state item (a large payload), strongly consistent reads."""
        found: dict[str, Item] = {}
        for sk in sort_keys:
            key = side_key(task_id, sk)
            answer = await run(
                lambda key=key: self._client.get_item(  # type: ignore[misc]
                    TableName=self.table_name, Key=key, ConsistentRead=True
                )
            )
            if "Item" in answer:
                found[sk] = answer["Item"]
        return found
