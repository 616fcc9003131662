"""``image-resize`` on real blob stores (a directory, S3 on moto) and a real process
pool: images made in the test, resized, written back, read with Pillow."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image

from adapters.handlers.images import ImageResizer, resize_bytes
from adapters.stoppable_pool import StoppableProcessPool
from domain.errors import PermanentTaskError
from domain.ports import BlobStore
from tests.support.blobs import BLOB_STORES, image_bytes, put_bytes, read_all

EXIF_ORIENTATION = 0x0112
ROTATED_90_CW = 6  # EXIF orientation 6: the camera was turned; show it rotated 90° clockwise


@pytest.fixture(scope="module")
def cpu() -> Iterator[StoppableProcessPool]:
    pool = StoppableProcessPool(1)
    yield pool
    pool.kill_all()


@pytest.fixture(params=sorted(BLOB_STORES))
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    async with BLOB_STORES[request.param](tmp_path) as store:
        yield store


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("fit", "expected"), [("contain", (200, 150)), ("cover", (200, 200)), ("exact", (200, 200))]
)
async def test_a_png_is_resized_into_the_blob_store(
    blobs: BlobStore, cpu: StoppableProcessPool, fit: str, expected: tuple[int, int]
) -> None:
    await put_bytes(blobs, "uploads/u1/cat.png", image_bytes((400, 300)), "image/png")
    resizer = ImageResizer(blobs, cpu, timeout_seconds=60)

    result = await resizer.run(
        {"image": "uploads/u1/cat.png", "width": 200, "height": 200, "fit": fit}
    )

    assert result == {
        "key": f"uploads/u1/cat-200x200-{fit}.png",
        "width": expected[0],
        "height": expected[1],
        "bytes": result["bytes"] if isinstance(result, dict) else None,
        "format": "png",
    }
    assert isinstance(result, dict)
    stored = await read_all(blobs, str(result["key"]))
    assert len(stored) == result["bytes"]
    image = opened(stored)
    assert (image.format, image.size) == ("PNG", expected)
    assert (await blobs.head(str(result["key"]))).content_type == "image/png"


async def test_a_string_payload_is_resized_to_the_default_size(
    blobs: BlobStore, cpu: StoppableProcessPool
) -> None:
    await put_bytes(blobs, "photo.png", image_bytes((1600, 1600)), "image/png")

    result = await ImageResizer(blobs, cpu, timeout_seconds=60).run("photo.png")

    assert isinstance(result, dict)
    assert (result["key"], result["width"], result["height"]) == (
        "resized/photo-800x600-contain.png",
        600,
        600,
    )


async def test_the_exif_orientation_is_applied(blobs: BlobStore, cpu: StoppableProcessPool) -> None:
    # 40 wide, 20 high, left half red: shown rotated 90° clockwise it is 20 × 40, red on top.
    jpeg = image_bytes((40, 20), "JPEG", exif=[(EXIF_ORIENTATION, ROTATED_90_CW)])
    await put_bytes(blobs, "uploads/u2/turned.jpg", jpeg, "image/jpeg")

    result = await ImageResizer(blobs, cpu, timeout_seconds=60).run(
        {"image": "uploads/u2/turned.jpg", "width": 100, "height": 100, "format": "png"}
    )

    assert isinstance(result, dict)
    image = opened(await read_all(blobs, str(result["key"]))).convert("RGB")
    assert image.size == (50, 100) and (result["width"], result["height"]) == (50, 100)
    top, bottom = image.getpixel((25, 5)), image.getpixel((25, 95))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60, f"red on top, got {top}"
    assert bottom[2] > 200 and bottom[0] < 60, f"blue at the bottom, got {bottom}"


async def test_a_missing_image_fails_permanently_saying_how_to_upload_it(
    blobs: BlobStore, cpu: StoppableProcessPool
) -> None:
    with pytest.raises(PermanentTaskError) as info:
        await ImageResizer(blobs, cpu, timeout_seconds=60).run("photo.png")

    assert "image 'photo.png' not found" in str(info.value)
    assert "POST /blobs" in str(info.value)


async def test_garbage_bytes_fail_permanently_through_the_pool(
    blobs: BlobStore, cpu: StoppableProcessPool
) -> None:
    await put_bytes(blobs, "uploads/u3/notes.png", b"this is not an image", "image/png")

    with pytest.raises(PermanentTaskError, match="not an image Pillow can read"):
        await ImageResizer(blobs, cpu, timeout_seconds=60).run("uploads/u3/notes.png")


def test_a_decompression_bomb_is_a_permanent_error_naming_it() -> None:
    bomb = image_bytes((9000, 9000), mode="1")  # 81 million pixels in a few kilobytes
    assert len(bomb) < 100_000

    with pytest.raises(PermanentTaskError, match="decompression bomb"):
        resize_bytes(bomb, 100, 100)


def test_a_truncated_image_is_a_permanent_error_naming_it() -> None:
    whole = image_bytes((300, 300), "JPEG")

    with pytest.raises(PermanentTaskError, match="corrupt or truncated"):
        resize_bytes(whole[: len(whole) // 2], 100, 100)


def test_an_image_with_transparency_becomes_an_opaque_jpeg() -> None:
    png = image_bytes((64, 64), mode="RGBA")

    data, width, height, fmt = resize_bytes(png, 32, 32, "exact", "JPEG")

    assert (width, height, fmt) == (32, 32, "JPEG")
    assert opened(data).mode == "RGB"
