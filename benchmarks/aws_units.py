"""DynamoDB capacity units of one request, from the items it reads and writes.

``Ledger`` keeps the last image of every item the counted clients wrote (or read), so
an update is charged by the larger of its old and new image and an index write is
known to move, enter, leave or merely change an index item. An item this process never
saw (written before the counting began) counts as absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from adapters.dynamodb.task_items import item_size

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
COUNT_ITEM_BYTES = 512
"""A ``Select=COUNT`` Query returns no items to size: each one it counted is charged at
this (the state items it counts are smaller than a KB)."""

Item = dict[str, Any]


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and what it projects (``ALL``,
    ``KEYS_ONLY``, or the names of an ``INCLUDE``)."""

    name: str
    hash_key: str
    range_key: str | None
    projection: str | tuple[str, ...]

    @classmethod
    def of_table(cls, description: dict[str, Any]) -> list[Index]:
        indexes = []
        for gsi in description.get("GlobalSecondaryIndexes", []):
            keys = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
            projection = gsi.get("Projection", {})
            kind = projection.get("ProjectionType", "ALL")
            included = tuple(projection.get("NonKeyAttributes", ()))
            indexes.append(cls(gsi["IndexName"], keys["HASH"], keys.get("RANGE"), included or kind))
        return indexes

    def key(self, item: Item | None) -> tuple[Any, ...] | None:
        """The item's key in this index; None when the item is not in it (sparse)."""
        if item is None or self.hash_key not in item:
            return None
        if self.range_key is not None and self.range_key not in item:
            return None
        return (_plain(item[self.hash_key]), _plain(item.get(self.range_key or "", None)))

    def projected(self, item: Item, table_keys: tuple[str, ...]) -> Item:
        if self.projection == "ALL":
            return item
        names = {*table_keys, self.hash_key, self.range_key or self.hash_key}
        if self.projection != "KEYS_ONLY":
            names |= set(self.projection)
        return {k: v for k, v in item.items() if k in names}


def table_keys(item: Item) -> tuple[str, ...]:
    """The key attribute names of the tables measured: ``pk``/``sk`` (the engine's) or
    ``id`` (the original's)."""
    return ("pk", "sk") if "pk" in item else ("id",)


def _plain(value: Any) -> Any:
    if value is None:
        return None
    return next(iter(value.values()))


def key_of(table: str, item: Item) -> tuple[Any, ...]:
    return (table, *(_plain(item.get(k)) for k in table_keys(item)))


class Ledger:
    """The last known image of every item, by table and key."""

    def __init__(self) -> None:
        self.items: dict[tuple[Any, ...], Item] = {}

    def get(self, table: str, key: Item) -> Item | None:
        return self.items.get(key_of(table, key))

    def put(self, table: str, item: Item) -> None:
        self.items[key_of(table, item)] = item

    def delete(self, table: str, key: Item) -> None:
        self.items.pop(key_of(table, key), None)


def _write_units(*items: Item | None) -> int:
    largest = max((item_size(i) for i in items if i is not None), default=0)
    return max(1, math.ceil(largest / WRITE_UNIT_BYTES))


def index_units(indexes: list[Index], old: Item | None, new: Item | None) -> int:
    """Index writes of one item's change from ``old`` to ``new`` (None: absent)."""
    units = 0
    for index in indexes:
        old_key, new_key = index.key(old), index.key(new)
        if old_key is None and new_key is None:
            continue
        keys = table_keys(new or old or {})
        if old_key is not None and new_key is not None and old_key == new_key:
            assert old is not None and new is not None
            if index.projected(old, keys) != index.projected(new, keys):
                units += _write_units(index.projected(new, keys))
            continue
        if old_key is not None:
            units += 1  # the old index item deleted
        if new_key is not None:
            assert new is not None
            units += _write_units(index.projected(new, keys))
    return units


def write_units(
    name: str,
    params: dict[str, Any],
    parsed: dict[str, Any],
    ok: bool,
    ledger: Ledger,
    indexes: dict[str, list[Index]],
) -> tuple[float, float]:
    """(WRU, index units) of one write request; the ledger follows what it wrote."""
    if name == "TransactWriteItems":
        wru = index = 0.0
        for entry in params.get("TransactItems", []):
            ((kind, part),) = entry.items()
            w, i = _one_write(kind, part, None, ok, ledger, indexes)
            wru += 2 * w
            index += i
        return wru, index
    if name == "BatchWriteItem":
        # Each item is billed as its own PutItem or DeleteItem; a refused call (throttled)
        # and the items it left unprocessed wrote nothing and cost nothing.
        wru = index = 0.0
        for table, requests in (params.get("RequestItems", {}) if ok else {}).items():
            left = parsed.get("UnprocessedItems", {}).get(table, [])
            for request in requests:
                if request in left:
                    continue
                ((kind, part),) = request.items()
                w, i = _one_write(
                    kind[:-7], {"TableName": table, **part}, None, ok, ledger, indexes
                )
                wru += w
                index += i
        return wru, index
    kind = name[:-4]  # PutItem -> Put
    return _one_write(kind, params, parsed, ok, ledger, indexes)


def _one_write(
    kind: str,
    part: dict[str, Any],
    parsed: dict[str, Any] | None,
    ok: bool,
    ledger: Ledger,
    indexes: dict[str, list[Index]],
) -> tuple[float, float]:
    table = part["TableName"]
    key = part.get("Key") or part.get("Item") or {}
    old = ledger.get(table, key)
    if kind == "ConditionCheck":
        return _write_units(old), 0
    if not ok:
        return _write_units(old), 0  # a failed condition is billed by the item as it is
    if kind == "Put":
        new: Item | None = part["Item"]
    elif kind == "Delete":
        new = None
    else:  # Update: its new image when the answer has it, else assumed the old size
        new = (parsed or {}).get("Attributes") or old
    units = _write_units(old, new)
    index = index_units(indexes.get(table, []), old, new)
    if new is None:
        ledger.delete(table, key)
    else:
        ledger.put(table, new)
    return units, index


def read_units(name: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool = True) -> float:
    """RRU of one read request (0 for the control plane: DescribeTable and the like,
    and for a refused one)."""
    if not ok:
        return 0.0
    factor = 1.0 if params.get("ConsistentRead") else 0.5
    if name == "GetItem":
        item = parsed.get("Item")
        return factor * max(1, math.ceil(item_size(item) / READ_UNIT_BYTES) if item else 1)
    if name in ("Query", "Scan"):
        if "Items" in parsed:
            size = sum(item_size(item) for item in parsed["Items"])
        else:
            size = int(parsed.get("ScannedCount", 0)) * COUNT_ITEM_BYTES
        return factor * max(1, math.ceil(size / READ_UNIT_BYTES))
    if name == "BatchGetItem":
        units = 0.0
        for table, request in params.get("RequestItems", {}).items():
            # Each key is read as its own GetItem (its item's size rounded up to 4 KB, an
            # absent one at the minimum); keys left unprocessed were not read.
            per = 1.0 if request.get("ConsistentRead") else 0.5
            found = parsed.get("Responses", {}).get(table, [])
            left = parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            units += per * sum(max(1, math.ceil(item_size(i) / READ_UNIT_BYTES)) for i in found)
            units += per * max(0, len(request.get("Keys", [])) - len(found) - len(left))
        return units
    return 0.0
