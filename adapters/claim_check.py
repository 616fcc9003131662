"""The claim check: a task's large payload or result is kept in the blob store, and the
task holds a small reference to it.

``ClaimCheckTaskRepository`` wraps any ``TaskRepository`` (bootstrap wraps every
backend's): what the wrapped store keeps of a payload or result whose JSON is over
``inline_limit`` bytes is a reference, so no store is ever asked to hold more than
that (DynamoDB's 400 KB item limit never refuses a task, and a large task costs S3
requests instead of write units). The same semantics on every backend.

A stored value is one of three things:

- the value itself, when its JSON is ``inline_limit`` bytes or less;
- a reference ``{"$taskq_blob": {"key": <blob key>, "bytes": <size>}}`` to the blob
  that holds its JSON (content type ``application/json``). The key is
  ``tasks/<task id>/<payload|result>-<sha256 of the JSON, 32 hex digits>``: derived from
  the task and the value alone, so a transition recomputes a task's references without
  reading anything, and a late write of a worker that lost its lease (another result)
  lands under another key: it never replaces the result of the worker that won;
- ``{"$taskq_blob": {"inline": <value>}}``: a small value of the caller's own that
  happens to look like a reference, kept as such so it is never mistaken for one.

Reads of one task (``get``) fetch the blobs and give back the values. Lists
(``list_by_status``, ``list_due_held``) never fetch a blob: a large value is listed as
its reference (``GET /blobs/{key}`` or ``GET /tasks/{id}`` give the value), and a
transition handed a task from a list keeps the reference as it is.

Blobs are written before the task that names them (never a reference to nothing) and
are never deleted when a write loses: a write whose answer was lost may have landed,
and then its blob is the stored task's. A blob goes with its task: the S3 bucket's
lifecycle rule matches retention (adapters/blobs/bucket.py), and the SQLite purge
hands the references of the tasks it deletes to ``PurgedBlobs``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any, Literal, cast

from domain.errors import BlobNotFound, InfrastructureError
from domain.limits import BLOB_CHUNK_BYTES
from domain.models import JSON, Page, Task, TaskStatus
from domain.ports import BlobStore, ClaimsInOneWrite, TaskRepository

MARK = "$taskq_blob"
"""The one key of a stored value that is not the value itself."""
CONTENT_TYPE = "application/json"
Kind = Literal["payload", "result"]


def blob_prefix(task_id: str) -> str:
    """Where the blobs of one task's values are kept."""
    return f"tasks/{task_id}/"


def _marked(value: JSON) -> dict[str, Any] | None:
    """The inside of a value shaped ``{MARK: {...}}``, else None."""
    if isinstance(value, dict) and len(value) == 1:
        inside = value.get(MARK)
        if isinstance(inside, dict):
            return inside
    return None


def reference_key(value: JSON) -> str | None:
    """The blob key of a stored reference; None for any other value."""
    inside = _marked(value)
    key = None if inside is None else inside.get("key")
    return key if isinstance(key, str) else None


def _chunks(data: bytes) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(data), BLOB_CHUNK_BYTES):
            yield bytes(view[start : start + BLOB_CHUNK_BYTES])

    return chunks()


class ClaimCheckTaskRepository:
    """``TaskRepository`` over ``inner``, keeping values over ``inline_limit`` bytes of
    JSON in the blob store ``blobs()`` (looked up on first use: a service that never
    sees a large value never opens it), each at most ``max_blob_bytes``.

    Every other attribute is ``inner``'s own (a backend's extra methods stay reachable).
    """

    def __init__(
        self,
        inner: TaskRepository,
        blobs: Callable[[], BlobStore],
        *,
        inline_limit: int,
        max_blob_bytes: int,
    ) -> None:
        if inline_limit < 0:
            raise ValueError("inline_limit must be 0 or more")
        self.inner = inner
        self._blobs = blobs
        self.inline_limit = inline_limit
        self.max_blob_bytes = max_blob_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # -- writes -------------------------------------------------------------------

    async def add(self, task: Task) -> None:
        await self.inner.add(await self._stored(task, put=True))

    async def add_idempotent(
        self, task: Task, *, key: str, fingerprint: str, expires_at: datetime, now: datetime
    ) -> str | None:
        stored = await self._stored(task, put=True)
        return await self.inner.add_idempotent(
            stored, key=key, fingerprint=fingerprint, expires_at=expires_at, now=now
        )

    async def transition(self, new: Task, *, expected: Task) -> None:
        """The payload is immutable: its blob was put by ``add``. A new result is put
        before the write that names it."""
        old = await self._stored(expected, put=False)
        put_result = new.result is not expected.result and new.result != expected.result
        stored = await self._stored(new, put=put_result)
        await self.inner.transition(stored, expected=old)

    # -- reads --------------------------------------------------------------------

    async def get(self, task_id: str) -> Task:
        return await self._resolved(await self.inner.get(task_id))

    async def _resolved(self, stored: Task) -> Task:
        """``stored`` with its payload and result read from the blob store where it
        holds references to them."""
        payload = await self._read(stored.id, "payload", stored.payload)
        result = await self._read(stored.id, "result", stored.result)
        if payload is stored.payload and result is stored.result:
            return stored
        return dataclasses.replace(stored, payload=payload, result=result)

    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page:
        page = await self.inner.list_by_status(status, limit=limit, cursor=cursor)
        return dataclasses.replace(page, items=[_listed(task) for task in page.items])

    async def list_due_held(self, before: datetime, *, limit: int) -> list[Task]:
        return [_listed(task) for task in await self.inner.list_due_held(before, limit=limit)]

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        return await self.inner.oldest_due_pending(now)

    async def count_by_status(self) -> dict[TaskStatus, int]:
        return await self.inner.count_by_status()

    async def ping(self) -> None:
        await self.inner.ping()

    # -- the values -----------------------------------------------------------------

    async def _stored(self, task: Task, *, put: bool) -> Task:
        payload = await self._store(task.id, "payload", task.payload, put=put)
        result = await self._store(task.id, "result", task.result, put=put)
        if payload is task.payload and result is task.result:
            return task
        return dataclasses.replace(task, payload=payload, result=result)

    async def _store(self, task_id: str, kind: Kind, value: JSON, *, put: bool) -> JSON:
        """What the inner store keeps of ``value``; its blob put first when ``put``."""
        if value is None:
            return None
        key = reference_key(value)
        if key is not None and key.startswith(blob_prefix(task_id)):
            return value  # a reference from a list: kept as it is
        data = json.dumps(value, ensure_ascii=False).encode()
        if len(data) <= self.inline_limit:
            return {MARK: {"inline": value}} if _marked(value) is not None else value
        key = f"{blob_prefix(task_id)}{kind}-{hashlib.sha256(data).hexdigest()[:32]}"
        if put:
            await self._blobs().put(
                key, _chunks(data), content_type=CONTENT_TYPE, max_bytes=self.max_blob_bytes
            )
        return {MARK: {"key": key, "bytes": len(data)}}

    async def _read(self, task_id: str, kind: Kind, stored: JSON) -> JSON:
        """The value ``stored`` stands for: a blob fetched, a look-alike unwrapped."""
        inside = _marked(stored)
        if inside is None:
            return stored
        if "inline" in inside:
            return inside["inline"]
        key = reference_key(stored)
        if key is None:
            return stored
        try:
            blob = await self._blobs().get(key)
            data = b"".join([chunk async for chunk in blob.chunks])
        except BlobNotFound:
            raise InfrastructureError(
                "blobs", f"task {task_id}'s {kind} is missing from the blob store (key {key!r})"
            ) from None
        return await asyncio.to_thread(json.loads, data)


class OneWriteClaimCheckTaskRepository(ClaimCheckTaskRepository):
    """The claim check over a store that claims in one write (``ClaimsInOneWrite``):
    the claimed task comes back with its values read."""

    async def claim_pending(
        self, task_id: str, *, lease_token: str, now: datetime, lease_seconds: float
    ) -> Task | None:
        claimed = await cast(ClaimsInOneWrite, self.inner).claim_pending(
            task_id, lease_token=lease_token, now=now, lease_seconds=lease_seconds
        )
        return None if claimed is None else await self._resolved(claimed)


def claim_checked(
    inner: TaskRepository,
    blobs: Callable[[], BlobStore],
    *,
    inline_limit: int,
    max_blob_bytes: int,
) -> ClaimCheckTaskRepository:
    """``inner`` behind the claim check; it claims in one write exactly when ``inner``
    does, so the processor sees the capability as the store has it."""
    kind = (
        OneWriteClaimCheckTaskRepository
        if isinstance(inner, ClaimsInOneWrite)
        else ClaimCheckTaskRepository
    )
    return kind(inner, blobs, inline_limit=inline_limit, max_blob_bytes=max_blob_bytes)


class PurgedBlobs:
    """What a retention purge calls with the stored values (short ones at least) of the
    tasks it deleted: the blobs of the references among them are deleted."""

    def __init__(self, blobs: Callable[[], BlobStore]) -> None:
        self._blobs = blobs

    async def __call__(self, stored_values: Iterable[JSON]) -> None:
        for value in stored_values:
            key = reference_key(value)
            if key is not None and key.startswith("tasks/"):
                await self._blobs().delete(key)


def _listed(task: Task) -> Task:
    """A task as a list gives it: references kept, look-alikes unwrapped."""
    payload, result = _unwrapped(task.payload), _unwrapped(task.result)
    if payload is task.payload and result is task.result:
        return task
    return dataclasses.replace(task, payload=payload, result=result)


def _unwrapped(stored: JSON) -> JSON:
    inside = _marked(stored)
    if inside is not None and "inline" in inside:
        return inside["inline"]
    return stored
