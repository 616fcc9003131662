"""``BlobStore`` on a directory: the default for the sqlite backend (``./data/blobs``)
and, in a temporary directory, for memory.

Layout under the root: ``objects/<key>`` holds the bytes (a key's parts are the path's
parts, so ``data/blobs/objects/exports/report-2024.csv`` is the export
``exports/report-2024.csv``), ``types/<key>`` its content type, ``tmp/`` the files being
written. A put writes both into ``tmp/`` and renames them into place, the bytes last:
a reader sees the old blob or the new one, never a part of either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from domain.blobs import DEFAULT_CONTENT_TYPE, Blob, BlobInfo, validate_blob_key
from domain.errors import BlobNotFound, BlobTooLarge, InfrastructureError, InvalidInput
from domain.limits import BLOB_CHUNK_BYTES

T = TypeVar("T")


class DirectoryBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._types = self.root / "types"
        self._tmp = self.root / "tmp"

    def _paths(self, key: str) -> tuple[Path, Path]:
        validate_blob_key(key)
        return self._objects / key, self._types / key

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str, max_bytes: int
    ) -> BlobInfo:
        target, type_file = self._paths(key)
        await _io(key, self._tmp.mkdir, parents=True, exist_ok=True)
        fd, name = await _io(key, tempfile.mkstemp, dir=self._tmp, prefix="put-")
        temp = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:  # the source's own errors pass through as they are
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    await _io(key, out.write, chunk)
                await _io(key, _flush, out)
            await _io(key, self._commit, key, temp, target, type_file, content_type)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return BlobInfo(key, size, content_type)

    def _commit(self, key: str, temp: Path, target: Path, type_file: Path, kind: str) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            type_file.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise IsADirectoryError(target)
            with tempfile.NamedTemporaryFile("w", dir=self._tmp, delete=False) as typed:
                typed.write(kind)
            os.replace(typed.name, type_file)
            os.replace(temp, target)
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            raise InvalidInput(
                "key", f"blob key {key!r} clashes with a stored blob's key (one is a prefix)"
            ) from None

    async def get(self, key: str) -> Blob:
        info = await self.head(key)
        target, _ = self._paths(key)
        try:
            handle = await asyncio.to_thread(target.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None
        return Blob(info, _read(handle))

    async def head(self, key: str) -> BlobInfo:
        target, type_file = self._paths(key)
        try:
            return await asyncio.to_thread(self._head, key, target, type_file)
        except OSError as error:  # not a missing file: the store cannot be read
            raise InfrastructureError("blob store", f"cannot read {key!r}: {error}") from None

    def _head(self, key: str, target: Path, type_file: Path) -> BlobInfo:
        try:
            size = target.stat().st_size
            if not target.is_file():
                raise BlobNotFound(key)
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None
        try:
            content_type = type_file.read_text() or DEFAULT_CONTENT_TYPE
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            content_type = DEFAULT_CONTENT_TYPE
        return BlobInfo(key, size, content_type)

    async def delete(self, key: str) -> None:
        target, type_file = self._paths(key)

        def remove() -> None:
            for path in (target, type_file):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    path.unlink()

        await asyncio.to_thread(remove)

    async def url_for(self, key: str, *, expires_seconds: int) -> str | None:
        validate_blob_key(key)
        return None  # the API's GET /blobs/{key} serves it


async def _io(key: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call`` in a thread; a file system error is the store's."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except OSError as error:
        raise InfrastructureError("blob store", f"cannot write {key!r}: {error}") from None


def _flush(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


async def _read(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, BLOB_CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()
