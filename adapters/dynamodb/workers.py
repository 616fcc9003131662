"""``DynamoDbWorkerRegistry``: the WorkerRegistry port on the task table.

Live workers are items of one partition (``pk = WORKERS``), read with one Query.
Liveness is decided on read against ``live_until``; the TTL attribute only lets
DynamoDB clean up workers that died without removing themselves.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from adapters.dynamodb.attributes import Item, iso, n, req_dt, req_int, req_s, s
from adapters.dynamodb.calls import partition, run
from adapters.dynamodb.table import PK, SK, TTL_ATTRIBUTE, WORKERS_PK
from domain.models import DEFAULT_HEARTBEAT_SECONDS, WorkerInfo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WORKER_TTL_GRACE_SECONDS = 3600
"""Dead workers' items stay this long past their expiry before TTL may delete them."""


class DynamoDbWorkerRegistry:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    async def beat(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        live_until = info.live_until
        forget_at = info.last_seen + timedelta(seconds=ttl_seconds)
        item: Item = {
            PK: s(WORKERS_PK),
            SK: s(info.worker_id),
            "worker_id": s(info.worker_id),
            "host": s(info.host),
            "pid": n(info.pid),
            "concurrency": n(info.concurrency),
            "in_flight": n(info.in_flight),
            "started_at": s(iso(info.started_at)),
            "last_seen": s(iso(info.last_seen)),
            "live_until": s(iso(live_until)),
            "heartbeat_seconds": n(info.heartbeat_seconds),
            TTL_ATTRIBUTE: {"N": str(math.ceil(forget_at.timestamp()) + WORKER_TTL_GRACE_SECONDS)},
        }
        await run(lambda: self._client.put_item(TableName=self.table_name, Item=item))

    async def remove(self, worker_id: str) -> None:
        await run(
            lambda: self._client.delete_item(
                TableName=self.table_name, Key={PK: s(WORKERS_PK), SK: s(worker_id)}
            )
        )

    async def live(self, now: datetime) -> list[WorkerInfo]:
        items = await partition(self._client, self.table_name, WORKERS_PK)
        return [_worker(item) for item in items if req_dt(item, "live_until") > now]


def _worker(item: Item) -> WorkerInfo:
    return WorkerInfo(
        worker_id=req_s(item, "worker_id"),
        host=req_s(item, "host"),
        pid=req_int(item, "pid"),
        concurrency=req_int(item, "concurrency"),
        in_flight=req_int(item, "in_flight"),
        started_at=req_dt(item, "started_at"),
        last_seen=req_dt(item, "last_seen"),
        heartbeat_seconds=float(
            item.get("heartbeat_seconds", {}).get("N", str(DEFAULT_HEARTBEAT_SECONDS))
        ),
    )
