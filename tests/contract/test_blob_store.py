"""``BlobStore``: the same tests on every adapter (a directory, S3 on moto)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.blobs import DirectoryBlobStore, S3BlobStore
from domain.errors import BlobNotFound, BlobTooLarge, InvalidInput
from domain.ports import BlobStore
from tests.support.blobs import BLOB_STORES, chunks, put_bytes, read_all

MIB = 1024 * 1024


@pytest.fixture(params=sorted(BLOB_STORES))
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    async with BLOB_STORES[request.param](tmp_path) as store:
        yield store


async def test_a_put_blob_reads_back_with_its_size_and_content_type(blobs: BlobStore) -> None:
    info = await blobs.put(
        "uploads/a/cat.png", chunks(b"abc", b"", b"def"), content_type="image/png", max_bytes=6
    )

    assert (info.key, info.size, info.content_type) == ("uploads/a/cat.png", 6, "image/png")
    head = await blobs.head("uploads/a/cat.png")
    assert (head.size, head.content_type) == (6, "image/png")
    blob = await blobs.get("uploads/a/cat.png")
    assert blob.info == head
    assert b"".join([c async for c in blob.chunks]) == b"abcdef"


async def test_a_put_replaces_the_blob_under_its_key(blobs: BlobStore) -> None:
    await put_bytes(blobs, "k", b"old", "text/plain")
    await put_bytes(blobs, "k", b"newer", "application/json")

    assert await read_all(blobs, "k") == b"newer"
    assert (await blobs.head("k")).content_type == "application/json"


async def test_past_the_limit_nothing_is_stored_and_the_old_blob_stays(blobs: BlobStore) -> None:
    with pytest.raises(BlobTooLarge, match="limit of 5 bytes"):
        await blobs.put("fresh", chunks(b"abc", b"def"), content_type="x/y", max_bytes=5)
    with pytest.raises(BlobNotFound):
        await blobs.head("fresh")

    await put_bytes(blobs, "kept", b"old", "text/plain")
    with pytest.raises(BlobTooLarge):
        await blobs.put("kept", chunks(b"123456"), content_type="x/y", max_bytes=5)
    assert await read_all(blobs, "kept") == b"old"


async def test_a_stream_that_fails_midway_stores_nothing(blobs: BlobStore) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await blobs.put("broken", failing(), content_type="x/y", max_bytes=10**6)
    with pytest.raises(BlobNotFound):
        await blobs.get("broken")


async def test_a_blob_larger_than_a_part_streams_in_and_out(blobs: BlobStore) -> None:
    part = bytes(range(256)) * (MIB // 256)
    parts = [part] * 12  # 12 MiB: S3 sends it as a multipart upload of 8 MiB parts
    info = await blobs.put("big/blob.bin", chunks(*parts), content_type="x/y", max_bytes=20 * MIB)

    assert info.size == 12 * MIB
    assert (await blobs.head("big/blob.bin")).size == 12 * MIB
    blob = await blobs.get("big/blob.bin")
    got = [chunk async for chunk in blob.chunks]
    assert max(len(c) for c in got) < 12 * MIB, "streamed in chunks"
    assert b"".join(got) == part * 12


async def test_a_missing_blob_is_not_found(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound, match="'nope/x.png' not found"):
        await blobs.get("nope/x.png")
    with pytest.raises(BlobNotFound):
        await blobs.head("nope/x.png")


async def test_delete_removes_the_blob_and_a_missing_one_is_a_no_op(blobs: BlobStore) -> None:
    await put_bytes(blobs, "gone/soon", b"x", "text/plain")

    await blobs.delete("gone/soon")
    await blobs.delete("gone/soon")
    await blobs.delete("never/was")

    with pytest.raises(BlobNotFound):
        await blobs.head("gone/soon")


BAD_KEYS = [
    ("", "must not be empty"),
    ("../etc/passwd", "'..'"),
    ("a/../../b", "'..'"),
    ("/etc/passwd", "relative"),
    ("a\\b", "backslash"),
    ("a\x00b", "control"),
    ("a\nb", "control"),
    ("a//b", "empty part"),
    ("a/", "empty part"),
    ("./a", "'.'"),
    ("k" * 513, "at most 512"),
    ("a/" + "p" * 256, "over 255 bytes"),
    ("é" * 600, "at most 512"),
    ("\ud800", "lone surrogate"),
]


@pytest.mark.parametrize(("key", "says"), BAD_KEYS)
async def test_every_method_refuses_an_invalid_key_naming_it(
    blobs: BlobStore, key: str, says: str
) -> None:
    calls = [
        blobs.put(key, chunks(b"x"), content_type="x/y", max_bytes=10),
        blobs.get(key),
        blobs.head(key),
        blobs.delete(key),
        blobs.url_for(key, expires_seconds=60),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match=says) as info:
            await call
        assert info.value.field == "key"
        assert "blob key" in info.value.message


async def test_a_download_link_downloads_the_blob_or_is_left_to_the_api(
    blobs: BlobStore,
) -> None:
    await put_bytes(blobs, "exports/report.csv", b"a,b\r\n1,2\r\n", "text/csv")

    link = await blobs.url_for("exports/report.csv", expires_seconds=60)

    if isinstance(blobs, DirectoryBlobStore):
        assert link is None  # GET /blobs/{key} serves it
        return
    assert isinstance(blobs, S3BlobStore)
    assert link is not None and link.startswith("http")
    response = await asyncio.to_thread(httpx.get, link)  # no credentials: presigned
    assert response.status_code == 200
    assert response.content == b"a,b\r\n1,2\r\n"
    assert response.headers["content-type"] == "text/csv"
