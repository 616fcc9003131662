"""DynamoDB attribute values (``{"S": ...}``, ``{"N": ...}``) to and from Python values.

A required attribute that is missing means the stored item is not one this adapter
wrote: ``InfrastructureError("dynamodb", ...)``, naming the attribute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from domain.errors import InfrastructureError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, "AttributeValueTypeDef"]


def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: float) -> AttributeValueTypeDef:
    return {"N": repr(value)}


def iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def utc_key(value: datetime) -> str:
    """Fixed-width UTC timestamp: its string order is its time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def epoch_us(value: datetime) -> int:
    """Whole microseconds since the epoch: exact, unlike a float timestamp."""
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def get_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value.get("S")


def get_n(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value.get("N")


def req_s(item: Item, name: str) -> str:
    value = get_s(item, name)
    if value is None:
        raise InfrastructureError("dynamodb", f"stored item lacks attribute {name!r}")
    return value


def req_dt(item: Item, name: str) -> datetime:
    return datetime.fromisoformat(req_s(item, name))


def req_int(item: Item, name: str) -> int:
    text = get_n(item, name)
    if text is None:
        raise InfrastructureError("dynamodb", f"stored item lacks attribute {name!r}")
    return int(text)
