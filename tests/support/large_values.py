"""A task type whose result is as large as its payload (loaded through TASKQ_HANDLERS),
and a blob store that counts the calls made to it: the claim check's tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from domain.blobs import Blob, BlobInfo
from domain.ports import BlobStore
from domain.task_types import task_type

MB = 1_000_000


@task_type("mirror", timeout_seconds=60)
def mirror(payload: Any) -> Any:
    """The payload's text reversed: a result as large as the payload."""
    return {"reversed": payload["text"][::-1]}


def large_text(size: int) -> str:
    """``size`` characters that read differently backwards."""
    return ("abcdefghij" * (size // 10 + 1))[:size]


class CountingBlobStore:
    """A ``BlobStore`` that counts the calls made to ``inner``, by method."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str, max_bytes: int
    ) -> BlobInfo:
        self.calls["put"] += 1
        return await self.inner.put(key, chunks, content_type=content_type, max_bytes=max_bytes)

    async def get(self, key: str) -> Blob:
        self.calls["get"] += 1
        return await self.inner.get(key)

    async def head(self, key: str) -> BlobInfo:
        self.calls["head"] += 1
        return await self.inner.head(key)

    async def delete(self, key: str) -> None:
        self.calls["delete"] += 1
        await self.inner.delete(key)

    async def url_for(self, key: str, *, expires_seconds: int) -> str | None:
        self.calls["url_for"] += 1
        return await self.inner.url_for(key, expires_seconds=expires_seconds)
