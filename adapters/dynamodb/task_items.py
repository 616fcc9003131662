"""A Task as a DynamoDB item and back, field by field.

Driven by the dataclass fields, so a field added to Task is stored without a change
here; an item written before a field existed reads back with the field's default.
A flag that is false (``cancel_requested``, ``isolated``) is not written at all, nor is
a ``default`` priority.
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
import zlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.dynamodb.attributes import Item, get_n, get_s, iso, n, req_s, s, utc_key
from adapters.dynamodb.table import (
    GSI1_PK,
    GSI1_SK,
    HELD_PK,
    HELD_SHARDS,
    HELD_SK,
    PAYLOAD_SK,
    PK,
    RESULT_SK_PREFIX,
    SK,
    TASK_SK,
    TTL_ATTRIBUTE,
    stable_shard,
)
from domain.errors import InfrastructureError
from domain.models import Task, TaskStatus
from domain.priorities import Priority
from domain.progress import Progress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_TASK_FIELDS = dataclasses.fields(Task)
_JSON_FIELDS = frozenset({"payload", "result"})
_SIDE_FIELDS = frozenset({"payload", "result"})
"""Stored in the state item while small, else in an item of their own."""
PAYLOAD_APART = "px"
"""Set on a state item whose payload is in the ``PAYLOAD`` item beside it."""
RESULT_APART = "rx"
"""On a state item whose result is in ``RESULT#<rx>`` beside it: the version that
stored it, so a late write of a worker that lost its lease never overwrites it."""
_COMPRESSED = "z"
INLINE_VALUE_BYTES = 320
"""A payload or result whose JSON text is longer is stored in an item of its own: the
state item stays under ``WRITE_UNIT_BYTES`` (``table.py``), so a status change costs
1 WRU whatever the payload's size (an update is billed by the whole item)."""
COMPRESS_RATIO = 0.9
"""A payload or result stored apart is zlib-compressed when that saves a tenth or more
(DynamoDB bills by stored bytes)."""


def task_key(task_id: str) -> Item:
    return {PK: s(f"TASK#{task_id}"), SK: s(TASK_SK)}


def side_key(task_id: str, sk: str) -> Item:
    return {PK: s(f"TASK#{task_id}"), SK: s(sk)}


def result_sk(version: int) -> str:
    return f"{RESULT_SK_PREFIX}{version}"


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def stored_apart(value: Any) -> bool:
    return len(json_text(value).encode()) > INLINE_VALUE_BYTES


def side_item(task_id: str, sk: str, value: Any) -> Item:
    """The item holding a large payload or result: JSON text, compressed if it pays."""
    raw = json_text(value).encode()
    packed = zlib.compress(raw, 6)
    item = side_key(task_id, sk)
    if len(packed) <= COMPRESS_RATIO * len(raw):
        item[_COMPRESSED] = {"B": packed}
    else:
        item["v"] = s(raw.decode())
    return item


def side_value(item: Item) -> Any:
    packed = item.get(_COMPRESSED)
    if packed is not None:
        return json.loads(zlib.decompress(packed["B"]))
    return json.loads(req_s(item, "v"))


def task_item(task: Task, *, index_shards: int, retention_seconds: float | None) -> Item:
    """The state item of ``task``: its keys, its fields (a large payload or result
    replaced by a marker, ``side_items`` holds them), and its expiry if it is finished
    and ``retention_seconds`` is set."""
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
        if value is field.default and (value is False or value is Priority.DEFAULT):
            continue  # absent reads back as the default: every write stays smaller
        if field.name in _SIDE_FIELDS:
            if value is None and field.name == "result":
                continue
            if stored_apart(value):
                if field.name == "payload":
                    item[PAYLOAD_APART] = {"BOOL": True}
                else:
                    item[RESULT_APART] = {"N": str(task.version)}
                continue
        if value is not None or field.name in _JSON_FIELDS:
            item[field.name] = _encode_field(field.type, field.name, value)
    if retention_seconds is not None and task.status.is_final and task.finished_at is not None:
        expires = task.finished_at + timedelta(seconds=retention_seconds)
        item[TTL_ATTRIBUTE] = {"N": str(math.ceil(expires.timestamp()))}
    return item


def side_items(task: Task) -> list[Item]:
    """The items beside the state item: a large payload, a large result."""
    items = []
    if stored_apart(task.payload):
        items.append(side_item(task.id, PAYLOAD_SK, task.payload))
    if task.result is not None and stored_apart(task.result):
        items.append(side_item(task.id, result_sk(task.version), task.result))
    return items


def task_from_item(item: Item, side: dict[str, Item] | None = None) -> Task:
    """The task of a state item; ``side`` maps the sort keys of the items beside it
    (a large payload or result) to them."""
    values: dict[str, Any] = {}
    for field in _TASK_FIELDS:
        stored = item.get(field.name)
        if stored is not None:  # absent: None, or the default of a newer field
            values[field.name] = _decode_field(field.type, field.name, stored)
    if PAYLOAD_APART in item:
        values["payload"] = side_value(_beside(item, side, PAYLOAD_SK))
    version = get_n(item, RESULT_APART)
    if version is not None:
        values["result"] = side_value(_beside(item, side, result_sk(int(version))))
    try:
        return Task(**values)
    except TypeError as error:
        raise InfrastructureError("dynamodb", f"stored task is incomplete: {error}") from None


def task_without_side(item: Item) -> Task:
    """The task of a state item with a payload or result stored apart left None: for
    reads that look at its state only."""
    plain = {k: v for k, v in item.items() if k not in (PAYLOAD_APART, RESULT_APART)}
    plain.setdefault("payload", s("null"))
    return task_from_item(plain)


def needs_side(item: Item) -> list[str]:
    """The sort keys of the items a state item's task is read with."""
    wanted = [PAYLOAD_SK] if PAYLOAD_APART in item else []
    version = get_n(item, RESULT_APART)
    if version is not None:
        wanted.append(result_sk(int(version)))
    return wanted


def _beside(item: Item, side: dict[str, Item] | None, sk: str) -> Item:
    found = (side or {}).get(sk)
    if found is None:
        raise InfrastructureError("dynamodb", f"task {get_s(item, 'id')!r} lacks its {sk} item")
    return found


def item_size(item: Item) -> int:
    """DynamoDB's size of an item in bytes (names and values; numbers estimated at
    their digits), what a write is billed by."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        if "S" in value:
            total += len(value["S"].encode())
        elif "N" in value:
            total += 1 + (len(value["N"]) + 1) // 2
        elif "B" in value:
            total += len(value["B"])
        else:
            total += 1
    return total


def _kind(annotation: object) -> str:
    text = str(annotation).replace(" | None", "").replace("None | ", "")
    kinds = ("datetime", "int", "float", "bool", "str", "TaskStatus", "Progress", "Priority")
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
    if kind == "Priority":
        return s(Priority(value).value)
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
    if kind == "Priority":
        return Priority(text)
    if kind == "str":
        return text
    if kind == "Progress":
        return Progress.from_json(json.loads(text))
    return json.loads(text)
