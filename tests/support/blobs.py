"""Blob stores for the tests: a directory, and an S3 bucket on the local AWS endpoint
(moto), each fresh per test; and images made in the test."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from PIL import Image

from adapters.blobs import DirectoryBlobStore, S3BlobStore
from domain.ports import BlobStore
from tests.support.aws import aws_endpoint, s3_client, unique_name

BlobHarness = Callable[[Path], AbstractAsyncContextManager[BlobStore]]


@asynccontextmanager
async def directory_store(tmp_path: Path) -> AsyncIterator[BlobStore]:
    yield DirectoryBlobStore(tmp_path / "blobs")


@asynccontextmanager
async def s3_store(tmp_path: Path) -> AsyncIterator[BlobStore]:
    """A fresh bucket on the local endpoint, emptied and deleted afterwards."""
    client = s3_client(aws_endpoint())
    bucket = unique_name("taskq-blobs")
    await asyncio.to_thread(client.create_bucket, Bucket=bucket)
    try:
        yield S3BlobStore(client, bucket)
    finally:

        def remove() -> None:
            listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
            for item in listed:
                client.delete_object(Bucket=bucket, Key=item["Key"])
            client.delete_bucket(Bucket=bucket)

        await asyncio.to_thread(remove)


BLOB_STORES: dict[str, BlobHarness] = {"directory": directory_store, "s3": s3_store}


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(blobs: BlobStore, key: str) -> bytes:
    blob = await blobs.get(key)
    return b"".join([chunk async for chunk in blob.chunks])


async def put_bytes(blobs: BlobStore, key: str, data: bytes, content_type: str) -> None:
    await blobs.put(key, chunks(data), content_type=content_type, max_bytes=len(data) + 1)


def image_bytes(
    size: tuple[int, int],
    fmt: str = "PNG",
    *,
    mode: str = "RGB",
    exif: Iterable[tuple[int, int]] = (),
) -> bytes:
    """An image of ``size`` in ``fmt``: its left half red, its right half blue (so a
    rotation shows), with the EXIF tags given (``(0x0112, 6)``: rotate 90° to show)."""
    image = Image.new(mode, size, "blue")
    image.paste("red", (0, 0, size[0] // 2, size[1]))
    info = Image.Exif()
    for tag, value in exif:
        info[tag] = value
    out = io.BytesIO()
    image.save(out, format=fmt, exif=info.tobytes()) if exif else image.save(out, format=fmt)
    return out.getvalue()
