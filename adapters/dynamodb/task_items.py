"""A Task as a DynamoDB item and back, field by field.

Driven by the dataclass fields, so a field added to Task is stored without a change
here; an item written before a field existed reads back with the field's default.
A flag that is false (``cancel_requested``, ``isolated``) is not written at all.
``payload`` and ``result`` are JSON text: DynamoDB numbers would come back as Decimal.

Besides its fields, a task item carries its keys: ``gsi1pk = STATUS#<status>#<shard>``
and ``gsi1sk = <created_at UTC>#<id>`` always; ``heldpk = HELD#<shard>`` and
``heldsk = <run_at UTC>#<id>`` while it is held; ``expires_at`` once finished, if
finished tasks are kept for a limited time.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.dynamodb.attributes import Item, iso, n, s, utc_key
from adapters.dynamodb.table import (
    GSI1_PK,
    GSI1_SK,
    HELD_PK,
    HELD_SHARDS,
    HELD_SK,
    PK,
    SK,
    TASK_SK,
    TTL_ATTRIBUTE,
    stable_shard,
)
from domain.errors import InfrastructureError
from domain.models import Task, TaskStatus
from domain.progress import Progress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_TASK_FIELDS = dataclasses.fields(Task)
_JSON_FIELDS = frozenset({"payload", "result"})


def task_key(task_id: str) -> Item:
    return {PK: s(f"TASK#{task_id}"), SK: s(TASK_SK)}


def task_item(task: Task, *, index_shards: int, retention_seconds: float | None) -> Item:
    """The item of ``task``: its keys, its fields, and its expiry if it is finished and
    ``retention_seconds`` is set."""
    item: Item = {
        **task_key(task.id),
        GSI1_PK: s(f"STATUS#{task.status.value}#{stable_shard(task.id, index_shards)}"),
        GSI1_SK: s(f"{utc_key(task.created_at)}#{task.id}"),
    }
    if task.held and task.run_at is not None and task.status is TaskStatus.PENDING:
        item[HELD_PK] = s(f"HELD#{stable_shard(task.id, HELD_SHARDS)}")
        item[HELD_SK] = s(f"{utc_key(task.run_at)}#{task.id}")
    for field in _TASK_FIELDS:
        value = getattr(task, field.name)
        if value is False and field.default is False:
            continue  # absent reads back as the default: every write stays smaller
        if value is not None or field.name in _JSON_FIELDS:
            item[field.name] = _encode_field(field.type, field.name, value)
    if retention_seconds is not None and task.status.is_final and task.finished_at is not None:
        expires = task.finished_at + timedelta(seconds=retention_seconds)
        item[TTL_ATTRIBUTE] = {"N": str(math.ceil(expires.timestamp()))}
    return item


def task_from_item(item: Item) -> Task:
    values: dict[str, Any] = {}
    for field in _TASK_FIELDS:
        stored = item.get(field.name)
        if stored is not None:  # absent: None, or the default of a newer field
            values[field.name] = _decode_field(field.type, field.name, stored)
    try:
        return Task(**values)
    except TypeError as error:
        raise InfrastructureError("dynamodb", f"stored task is incomplete: {error}") from None


def _kind(annotation: object) -> str:
    text = str(annotation).replace(" | None", "").replace("None | ", "")
    kinds = ("datetime", "int", "float", "bool", "str", "TaskStatus", "Progress")
    return text if text in kinds else "json"


def _encode_field(annotation: object, name: str, value: Any) -> AttributeValueTypeDef:
    kind = "json" if name in _JSON_FIELDS else _kind(annotation)
    if kind == "datetime":
        return s(iso(value))
    if kind == "bool":
        return {"BOOL": bool(value)}
    if kind == "int":
        return {"N": str(int(value))}
    if kind == "float":
        return n(float(value))
    if kind == "TaskStatus":
        return s(TaskStatus(value).value)
    if kind == "str":
        return s(value)
    if kind == "Progress":
        value = value.to_json()
    return s(json.dumps(value, ensure_ascii=False))


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
    if kind == "Progress":
        return Progress.from_json(json.loads(text))
    return json.loads(text)
