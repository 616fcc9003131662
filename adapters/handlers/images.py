"""The ``image-resize`` built-in type: a blob resized with Pillow, written back as a blob.

Payload: ``{"image": <blob key>, "width": W, "height": H, "fit"?: "contain" | "cover" |
"exact", "format"?: "png" | "jpeg" | "webp"}``, or the blob key alone (existing
clients), resized to ``DEFAULT_SIZE`` with ``contain``.

- ``contain`` fits the image inside W × H, keeping its proportions (one side may be
  smaller); ``cover`` fills W × H exactly, cropping the overflow from the centre;
  ``exact`` stretches it to W × H.
- The format is the source's (PNG for one Pillow cannot write) unless ``format`` says.
- The output is ``<source key's folder>/<name>-<W>x<H>-<fit>.<ext>``: a retry rewrites
  the same blob. Result: ``{key, width, height, bytes, format}``.

Failures that another attempt would repeat are permanent (``PermanentTaskError``): a
missing image (the error says how to upload one), an image Pillow cannot read, a
decompression bomb (more than ``MAX_IMAGE_PIXELS`` pixels). The CPU part,
``resize_bytes``, is a plain module-level function run in the ``CpuPool``'s processes.
"""

from __future__ import annotations

import io
import posixpath
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image, ImageOps, UnidentifiedImageError

from domain.blobs import validate_blob_key
from domain.errors import BlobNotFound, InvalidInput, PermanentTaskError
from domain.limits import MAX_BLOB_KEY_LENGTH, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE
from domain.models import JSON
from domain.ports import BlobStore, CpuPool
from domain.task_types import parsed_by

DEFAULT_SIZE: Final = (800, 600)
"""What a string payload (a blob key alone) is resized to, with ``contain``."""
FITS: Final = ("contain", "cover", "exact")
FORMATS: Final = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
"""Output formats a payload may ask for (``jpg`` is ``jpeg``)."""
_EXTENSIONS: Final = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif"}
_WRITABLE: Final = frozenset(_EXTENSIONS)
_OPAQUE: Final = frozenset({"JPEG"})


@dataclass(frozen=True)
class ResizeRequest:
    image: str
    width: int
    height: int
    fit: str = "contain"
    format: str | None = None
    """Pillow's name of the output format (``PNG``); None: the source's."""

    @classmethod
    def parse(cls, payload: JSON) -> ResizeRequest:
        """The request ``payload`` makes; ``ValueError``/``InvalidInput`` naming the
        field that is wrong."""
        if isinstance(payload, str):
            if not payload.strip():
                raise ValueError("expected an image's blob key")
            return cls(validate_blob_key(payload, field="payload"), *DEFAULT_SIZE)
        if not isinstance(payload, dict):
            raise ValueError(
                "expected an image's blob key, or an object with 'image', 'width', 'height'"
            )
        unknown = sorted(set(payload) - {"image", "width", "height", "fit", "format"})
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        image = _field(payload, "image", str)
        if not image.strip():
            raise ValueError("field 'image' must not be empty")
        width, height = (_side(payload, side) for side in ("width", "height"))
        if width * height > MAX_IMAGE_PIXELS:
            raise ValueError(f"width × height must be at most {MAX_IMAGE_PIXELS:,} pixels")
        fit = payload.get("fit", "contain")
        if fit not in FITS:
            raise ValueError(f"field 'fit' must be one of {', '.join(FITS)}")
        fmt = payload.get("format")
        if fmt is not None and (not isinstance(fmt, str) or fmt.lower() not in FORMATS):
            raise ValueError(f"field 'format' must be one of {', '.join(FORMATS)}")
        chosen = FORMATS[fmt.lower()] if isinstance(fmt, str) else None
        return cls(validate_blob_key(image, field="payload.image"), width, height, str(fit), chosen)

    def output_key(self, fmt: str) -> str:
        folder, name = posixpath.split(self.image)
        stem = posixpath.splitext(name)[0] or name
        key = f"{stem}-{self.width}x{self.height}-{self.fit}.{_EXTENSIONS[fmt]}"
        key = posixpath.join(folder, key) if folder else f"resized/{key}"
        if len(key) > MAX_BLOB_KEY_LENGTH:
            raise PermanentTaskError(f"the image's key is too long to name its output: {key!r}")
        return key


def _field(payload: dict[str, Any], name: str, kind: type) -> Any:
    if name not in payload:
        raise ValueError(f"missing field {name!r}")
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"field {name!r} has the wrong type")
    return value


def _side(payload: dict[str, Any], name: str) -> int:
    value: int = _field(payload, name, int)
    if not 1 <= value <= MAX_IMAGE_SIDE:
        raise ValueError(f"field {name!r} must be between 1 and {MAX_IMAGE_SIDE}")
    return value


validate_image_resize = parsed_by(ResizeRequest.parse)
"""Refuses at submission what the handler would refuse."""


def resize_bytes(
    data: bytes, width: int, height: int, fit: str = "contain", fmt: str | None = None
) -> tuple[bytes, int, int, str]:
    """``data`` (an encoded image) resized: the encoded output, its width, height and
    Pillow format name. EXIF orientation is applied first. Raises ``PermanentTaskError``
    naming the problem for a bomb, a corrupt or an unsupported image."""
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _resize(data, width, height, fit, fmt)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PermanentTaskError(
                f"the image is too large to resize (a decompression bomb?): {exc}"
            ) from None
        except UnidentifiedImageError:
            raise PermanentTaskError(
                "the blob is not an image Pillow can read (unsupported format or not an image)"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise PermanentTaskError(f"the image is corrupt or truncated: {exc}") from None


def _resize(
    data: bytes, width: int, height: int, fit: str, fmt: str | None
) -> tuple[bytes, int, int, str]:
    with Image.open(io.BytesIO(data)) as opened:
        source_format = opened.format or "PNG"
        opened.load()
        image = ImageOps.exif_transpose(opened)
    out_format = fmt or (source_format if source_format in _WRITABLE else "PNG")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if out_format in _OPAQUE:
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if has_alpha else "RGB")
    size = (width, height)
    resample = Image.Resampling.LANCZOS
    if fit == "contain":
        image = ImageOps.contain(image, size, method=resample)
    elif fit == "cover":
        image = ImageOps.fit(image, size, method=resample)
    else:
        image = image.resize(size, resample)
    buffer = io.BytesIO()
    image.save(buffer, format=out_format)
    return buffer.getvalue(), image.width, image.height, out_format


class ImageResizer:
    """The handler, with the blob store it reads and writes and the pool it resizes in."""

    def __init__(self, blobs: BlobStore, cpu: CpuPool, *, timeout_seconds: float) -> None:
        self._blobs = blobs
        self._cpu = cpu
        self._timeout = timeout_seconds

    async def run(self, payload: JSON) -> JSON:
        try:
            request = ResizeRequest.parse(payload)
        except (ValueError, InvalidInput) as exc:
            raise PermanentTaskError(f"invalid payload: {exc}") from None
        try:
            blob = await self._blobs.get(request.image)
        except BlobNotFound:
            raise PermanentTaskError(
                f"image {request.image!r} not found in the blob store: upload it first "
                "(POST /blobs?name=<file name> with the image as the body) and submit the "
                "key that answers"
            ) from None
        data = b"".join([chunk async for chunk in blob.chunks])
        output, width, height, fmt = await self._cpu.run(
            resize_bytes,
            data,
            request.width,
            request.height,
            request.fit,
            request.format,
            timeout_seconds=self._timeout,
        )
        key = request.output_key(fmt)
        stored = await self._blobs.put(
            key,
            _once(output),
            content_type=Image.MIME.get(fmt, "application/octet-stream"),
            max_bytes=len(output),
        )
        return {
            "key": key,
            "width": width,
            "height": height,
            "bytes": stored.size,
            "format": _EXTENSIONS[fmt],
        }


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
