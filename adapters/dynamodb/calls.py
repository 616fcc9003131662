"""The DynamoDB calls the adapters share: one call with its failures translated, and a
Query read page by page."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.boto_calls import run_call
from adapters.dynamodb.attributes import Item
from adapters.dynamodb.table import PK
from domain.limits import MAX_BATCH_GET_KEYS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")

RETRY_PAUSE_SECONDS = 0.05
"""The first pause before a call is tried again: a transaction cancelled by a conflict,
keys a BatchGetItem left unprocessed. Later pauses grow with the attempt."""


async def run(call: Callable[[], T], *, passthrough: Collection[str] = ()) -> T:
    """Run one blocking boto3 call in a thread. A ClientError whose code is in
    ``passthrough`` is re-raised for the caller; every other failure leaves as
    ``InfrastructureError("dynamodb", ...)``."""
    return await run_call("dynamodb", call, passthrough=passthrough)


async def query(
    client: DynamoDBClient,
    table_name: str,
    index_name: str | None,
    *,
    want: int | None,
    **request: Any,
) -> list[Item]:
    """The items of one Query of the table (or of its index ``index_name``), following
    ``LastEvaluatedKey`` until ``want`` items (None: all of them) were read or the
    query ends. ``request`` holds the rest of the Query's parameters."""
    items: list[Item] = []
    start: Item | None = None
    while want is None or len(items) < want:
        page = {"TableName": table_name, **request}
        if index_name is not None:
            page["IndexName"] = index_name
        if want is not None:
            page["Limit"] = want - len(items)
        if start is not None:
            page["ExclusiveStartKey"] = start
        response = await run(functools.partial(client.query, **page))
        items.extend(response.get("Items", []))
        start = response.get("LastEvaluatedKey")
        if start is None:
            break
    return items


async def partition(client: DynamoDBClient, table_name: str, pk: str) -> list[Item]:
    """Every item of the partition ``pk``: a strongly consistent Query."""
    return await query(
        client,
        table_name,
        None,
        want=None,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": PK},
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )


async def batch_get(
    client: DynamoDBClient, table_name: str, keys: list[Item], *, consistent: bool = True
) -> list[Item]:
    """The items of ``keys`` that exist, in any order: BatchGetItem calls of at most
    ``MAX_BATCH_GET_KEYS``, asking again for the keys a call left unprocessed."""
    found: list[Item] = []
    for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
        pending: list[Item] = keys[start : start + MAX_BATCH_GET_KEYS]
        attempt = 0
        while pending:
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * min(attempt, 10))
            attempt += 1
            request = {table_name: {"Keys": pending, "ConsistentRead": consistent}}
            response = await run(
                functools.partial(client.batch_get_item, RequestItems=request)  # type: ignore[arg-type]
            )
            found.extend(response.get("Responses", {}).get(table_name, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(table_name)
            pending = list(unprocessed["Keys"]) if unprocessed else []
    return found
