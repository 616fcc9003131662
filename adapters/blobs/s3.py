"""``BlobStore`` on Amazon S3 (``TASKQ_S3_BUCKET``); moto's S3 in development and tests.

A put sends parts of ``S3_PART_BYTES`` as they fill (a multipart upload, completed at
the end, aborted on any failure or past the size limit), or one PutObject for a blob no
larger than a part: memory holds one part at most. S3 makes an object visible only when
its upload completes, so a put is atomic. Downloads are presigned GET URLs.

boto3 blocks: every call runs in a thread. The client is handed in (bootstrap builds it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from domain.blobs import DEFAULT_CONTENT_TYPE, Blob, BlobInfo, validate_blob_key
from domain.errors import BlobNotFound, BlobTooLarge, InfrastructureError
from domain.limits import BLOB_CHUNK_BYTES, MAX_LINK_SECONDS, S3_PART_BYTES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _unavailable(error: Exception) -> InfrastructureError:
    return InfrastructureError("s3", str(error))


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str, *, part_bytes: int = S3_PART_BYTES) -> None:
        self._s3 = client
        self.bucket = bucket
        self._part_bytes = part_bytes

    async def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(error) from None

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str, max_bytes: int
    ) -> BlobInfo:
        validate_blob_key(key)
        buffer = bytearray()
        size = 0
        upload: _Multipart | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BlobTooLarge(max_bytes)
                buffer += chunk
                while len(buffer) >= self._part_bytes:
                    if upload is None:
                        upload = await _Multipart.start(self, key, content_type)
                    await upload.send(bytes(buffer[: self._part_bytes]))
                    del buffer[: self._part_bytes]
            if upload is None:
                await self._call(
                    self._s3.put_object, Key=key, Body=bytes(buffer), ContentType=content_type
                )
            else:
                if buffer:
                    await upload.send(bytes(buffer))
                await upload.complete()
        except BaseException:
            if upload is not None:
                await asyncio.shield(upload.abort())
            raise
        return BlobInfo(key, size, content_type)

    async def _object(self, call: Callable[..., Any], key: str) -> Any:
        """``call(Bucket=..., Key=key)`` (a GetObject or HeadObject): ``BlobNotFound``
        when there is no such object, ``InfrastructureError`` when S3 cannot answer."""
        validate_blob_key(key)
        try:
            return await asyncio.to_thread(call, Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                raise BlobNotFound(key) from None
            raise _unavailable(error) from None
        except BotoCoreError as error:
            raise _unavailable(error) from None

    async def get(self, key: str) -> Blob:
        answer = await self._object(self._s3.get_object, key)
        info = BlobInfo(
            key, int(answer["ContentLength"]), answer.get("ContentType") or DEFAULT_CONTENT_TYPE
        )
        return Blob(info, _stream(answer["Body"]))

    async def head(self, key: str) -> BlobInfo:
        answer = await self._object(self._s3.head_object, key)
        content_type = answer.get("ContentType") or DEFAULT_CONTENT_TYPE
        return BlobInfo(key, int(answer["ContentLength"]), content_type)

    async def delete(self, key: str) -> None:
        validate_blob_key(key)
        await self._call(self._s3.delete_object, Key=key)

    async def url_for(self, key: str, *, expires_seconds: int) -> str | None:
        validate_blob_key(key)
        if not 1 <= expires_seconds <= MAX_LINK_SECONDS:
            raise ValueError(f"expires_seconds must be 1 to {MAX_LINK_SECONDS}")
        params = {"Bucket": self.bucket, "Key": key}
        try:  # signed locally: no request
            return self._s3.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_seconds
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(error) from None


class _Multipart:
    """One multipart upload under way."""

    def __init__(self, store: S3BlobStore, key: str, upload_id: str) -> None:
        self._store = store
        self._key = key
        self._id = upload_id
        self._parts: list[CompletedPartTypeDef] = []

    @classmethod
    async def start(cls, store: S3BlobStore, key: str, content_type: str) -> _Multipart:
        answer = await store._call(
            store._s3.create_multipart_upload, Key=key, ContentType=content_type
        )
        return cls(store, key, str(answer["UploadId"]))

    async def send(self, part: bytes) -> None:
        number = len(self._parts) + 1
        answer = await self._store._call(
            self._store._s3.upload_part,
            Key=self._key,
            UploadId=self._id,
            PartNumber=number,
            Body=part,
        )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    async def complete(self) -> None:
        await self._store._call(
            self._store._s3.complete_multipart_upload,
            Key=self._key,
            UploadId=self._id,
            MultipartUpload={"Parts": self._parts},
        )

    async def abort(self) -> None:
        try:
            await self._store._call(
                self._store._s3.abort_multipart_upload, Key=self._key, UploadId=self._id
            )
        except InfrastructureError:
            pass  # a lifecycle rule removes incomplete uploads (adapters/blobs/bucket.py)


async def _stream(body: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(body.read, BLOB_CHUNK_BYTES):
            yield chunk
    except (ClientError, BotoCoreError) as error:
        raise _unavailable(error) from None
    finally:
        body.close()
