"""The table's DynamoDB stream, as the counts aggregator reads it: its shards with
their parents, an iterator per shard, pages of records.

``ChangeStream`` is what the aggregator needs; ``DynamoDbChangeStream`` is it on the
``dynamodbstreams`` API. Tests hand the aggregator a fake with several shards, splits
and a 24-hour trim, which moto (one shard that never splits) cannot show.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.exceptions import ClientError

from adapters.boto_calls import error_code, run_call

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Record = dict[str, Any]
"""One stream record as the API gives it (``eventName``, ``dynamodb.Keys`` ...)."""

RECORDS_PER_READ = 1000
"""The most records one GetRecords returns (the API's limit)."""


class StreamTrimmed(Exception):
    """The position asked for is older than the stream keeps (24 hours)."""


class IteratorExpired(Exception):
    """A shard iterator older than the 15 minutes it is valid for: ask for a new one."""


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None
    closed: bool = False
    """No record will be added (it split, or the stream was disabled)."""


class ChangeStream(Protocol):
    async def arn(self) -> str:
        """The stream's ARN ("" when the table has no stream)."""
        ...

    async def shards(self) -> list[Shard]:
        """Every shard the stream keeps, open and closed."""
        ...

    async def iterator(self, shard_id: str, after: str | None) -> str:
        """An iterator just after sequence number ``after`` (None: the oldest record
        kept). Raises ``StreamTrimmed`` when ``after`` is no longer kept."""
        ...

    async def latest(self, shard_id: str) -> str:
        """An iterator at the shard's end: records written from now on."""
        ...

    async def read(self, iterator: str) -> tuple[list[Record], str | None]:
        """Up to ``RECORDS_PER_READ`` records and the next iterator (None: the shard
        is closed and was read to its end)."""
        ...


class DynamoDbChangeStream:
    def __init__(self, streams: Any, dynamodb: DynamoDBClient, table_name: str) -> None:
        self.client = streams
        self._streams = streams
        self._dynamodb = dynamodb
        self.table_name = table_name
        self._arn: str | None = None

    @classmethod
    def beside(cls, dynamodb: DynamoDBClient, table_name: str) -> DynamoDbChangeStream:
        """The stream of ``table_name``, read with a ``dynamodbstreams`` client made
        like ``dynamodb`` (its endpoint, region, configuration and credentials): the
        DynamoDB client handed in decides where the stream is read too."""
        signer = dynamodb._request_signer  # type: ignore[attr-defined]
        credentials = signer._credentials
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        streams = boto3.session.Session().client(
            "dynamodbstreams",
            endpoint_url=dynamodb.meta.endpoint_url,
            region_name=dynamodb.meta.region_name,
            config=dynamodb.meta.config,
            aws_access_key_id=frozen.access_key if frozen else None,
            aws_secret_access_key=frozen.secret_key if frozen else None,
            aws_session_token=frozen.token if frozen else None,
        )
        return cls(streams, dynamodb, table_name)

    async def _call(self, name: str, **params: Any) -> Any:
        method = getattr(self._streams, name)
        return await run_call(
            "dynamodbstreams",
            functools.partial(method, **params),
            passthrough=["TrimmedDataAccessException", "ExpiredIteratorException"],
        )

    async def arn(self) -> str:
        if self._arn is None:
            table = await run_call(
                "dynamodb", lambda: self._dynamodb.describe_table(TableName=self.table_name)
            )
            arn = str(table["Table"].get("LatestStreamArn", ""))
            if not arn:
                return ""  # no stream (yet): asked again next time
            self._arn = arn
        return self._arn

    async def shards(self) -> list[Shard]:
        shards: list[Shard] = []
        start: str | None = None
        while True:
            params: dict[str, Any] = {"StreamArn": await self.arn()}
            if start is not None:
                params["ExclusiveStartShardId"] = start
            description = (await self._call("describe_stream", **params))["StreamDescription"]
            for shard in description.get("Shards", []):
                closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
                shards.append(Shard(shard["ShardId"], shard.get("ParentShardId"), closed))
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    async def iterator(self, shard_id: str, after: str | None) -> str:
        params: dict[str, Any] = {"StreamArn": await self.arn(), "ShardId": shard_id}
        if after is None:
            params["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            params["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            params["SequenceNumber"] = after
        try:
            return str((await self._call("get_shard_iterator", **params))["ShardIterator"])
        except ClientError as error:
            raise StreamTrimmed(shard_id) from error

    async def latest(self, shard_id: str) -> str:
        answer = await self._call(
            "get_shard_iterator",
            StreamArn=await self.arn(),
            ShardId=shard_id,
            ShardIteratorType="LATEST",
        )
        return str(answer["ShardIterator"])

    async def read(self, iterator: str) -> tuple[list[Record], str | None]:
        try:
            answer = await self._call("get_records", ShardIterator=iterator, Limit=RECORDS_PER_READ)
        except ClientError as error:
            if error_code(error) == "ExpiredIteratorException":
                raise IteratorExpired() from error
            raise StreamTrimmed(iterator[:40]) from error
        return list(answer.get("Records", [])), answer.get("NextShardIterator")
