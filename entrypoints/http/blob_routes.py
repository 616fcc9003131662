"""``POST /blobs`` and ``GET /blobs/{key}``: the blob store over HTTP (images to resize
are uploaded here; resized images and exports are downloaded from here).

An upload is the raw body, streamed to the store as it arrives, its ``Content-Type``
kept; it is bounded by ``TASKQ_MAX_BLOB_BYTES`` instead of the API's general body limit
(``UPLOAD`` is exempt from it: ``body_limit.py``). A download streams the blob from a
directory store; on S3 it is a 307 redirect to a presigned URL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Final
from urllib.parse import quote

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from domain.blobs import (
    DEFAULT_CONTENT_TYPE,
    new_upload_key,
    validate_blob_key,
    validate_content_type,
)
from domain.errors import BlobTooLarge, InvalidInput
from domain.limits import DEFAULT_LINK_SECONDS, MAX_BLOB_KEY_LENGTH, MAX_BLOB_NAME_LENGTH
from domain.ports import BlobStore
from entrypoints.http.operation import Param, Raw, operation
from entrypoints.http.responses import JSONResponse

UPLOAD: Final = ("POST", "/blobs")
"""The one route exempt from the general body limit."""
_DIGITS = re.compile(r"[0-9]+")


class BlobCreated(BaseModel):
    key: str
    """Where the blob is stored: give it to a task (``image-resize``'s ``image``)."""
    size: int
    """Bytes stored."""
    content_type: str


NAME = Param(
    "name",
    "query",
    {"type": "string", "minLength": 1, "maxLength": MAX_BLOB_NAME_LENGTH},
    "A file name (no `/`), kept as the last part of the generated key: "
    "`uploads/<random>/<name>`. Without it the last part is `blob`.",
)
KEY = Param(
    "key",
    "path",
    {"type": "string", "minLength": 1, "maxLength": MAX_BLOB_KEY_LENGTH},
    "The blob's key, as an upload or a task's result gave it (`/` separates its parts).",
    required=True,
)
_NOSNIFF = "`nosniff`: the browser keeps to the blob's content type."


class BlobEndpoints:
    def __init__(self, blobs: Callable[[], BlobStore], *, max_blob_bytes: int) -> None:
        """``blobs`` gives the store (the container's provider)."""
        self._blobs = blobs
        self._max = max_blob_bytes

    @operation(
        "uploadBlob",
        params=[NAME],
        raw_body="application/octet-stream",
        responses={
            201: (BlobCreated, "Stored: its key, size and content type."),
            400: "The client went away before the whole body arrived: nothing stored.",
            413: "The body is over TASKQ_MAX_BLOB_BYTES (default 50 MB): nothing stored.",
            422: "An empty body, an invalid `name`, or a Content-Type that is not printable ASCII.",
            503: "The blob store is unavailable: nothing stored.",
        },
    )
    async def upload(self, request: Request) -> Response:
        """Upload a blob

        The body is the file's bytes, as they are (not JSON, not a form), with the file's
        `Content-Type`, which is kept and served back. Answers the generated key:
        `POST /tasks` with `{"type": "image-resize", "payload": {"image": <key>, ...}}`.
        """
        declared = request.headers.get("content-length", "").strip()
        if _DIGITS.fullmatch(declared) and int(declared) > self._max:
            raise BlobTooLarge(self._max)  # refused before a byte of the body is read
        key = new_upload_key(request.query_params.get("name"))
        content_type = validate_content_type(
            request.headers.get("content-type", DEFAULT_CONTENT_TYPE)
        )
        body = await _non_empty(request.stream())
        stored = await self._blobs().put(key, body, content_type=content_type, max_bytes=self._max)
        created = BlobCreated(key=key, size=stored.size, content_type=content_type)
        headers = {"Location": f"/blobs/{quote(key)}"}
        return JSONResponse(created.model_dump(), status_code=201, headers=headers)

    @operation(
        "downloadBlob",
        params=[KEY],
        responses={
            200: Raw(
                "The blob's bytes, as an attachment, with the content type it was stored with "
                "(`application/octet-stream` when none was given).",
                media_type="application/octet-stream",
                headers={"X-Content-Type-Options": _NOSNIFF},
            ),
            307: Raw(
                "On S3: the blob is downloaded from a presigned URL, valid for an hour.",
                media_type=None,
                headers={"Location": "The presigned URL."},
            ),
            404: "No blob has this key.",
            422: "An invalid key (absolute, with `..`, a backslash, a control character, "
            "an empty part, or too long).",
            503: "The blob store is unavailable.",
        },
    )
    async def download(self, request: Request) -> Response:
        """Download a blob

        Same authentication as the rest of the API. On S3 the answer is a redirect to a
        presigned URL (no credentials needed there): follow it (`curl -L`).
        """
        key = validate_blob_key(request.path_params["key"])
        blobs = self._blobs()
        link = await blobs.url_for(key, expires_seconds=DEFAULT_LINK_SECONDS)
        if link is not None:
            await blobs.head(key)  # a missing blob is a 404 here, not at S3
            return RedirectResponse(link, status_code=307)
        blob = await blobs.get(key)
        name = quote(key.rsplit("/", 1)[-1])
        headers = {
            "Content-Length": str(blob.info.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "X-Content-Type-Options": "nosniff",
        }
        return StreamingResponse(blob.chunks, media_type=blob.info.content_type, headers=headers)

    def routes(self) -> list[Route]:
        return [
            Route(UPLOAD[1], self.upload, methods=[UPLOAD[0]], name="upload_blob"),
            Route("/blobs/{key:path}", self.download, methods=["GET"], name="download_blob"),
        ]


async def _non_empty(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``stream`` from its first byte; ``InvalidInput`` when it has none (an empty
    upload is a client's mistake: a file was not attached)."""
    async for first in stream:
        if first:
            return _chain(first, stream)
    raise InvalidInput("body", "is empty: send the file's bytes as the request body")


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk
