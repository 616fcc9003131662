"""Blobs: named byte streams kept beside the tasks (uploaded images, resized ones,
exports). The ``BlobStore`` port (``domain/ports.py``) stores them; the rules of a key
live here, so every adapter and the API refuse the same keys with the same words.

A key is a relative path of ``/``-separated parts: ``uploads/3f2a.../photo.png``. It is
never absolute, never climbs (``..``), holds no backslash, no control character (NUL
included), no empty part, no part over ``MAX_BLOB_KEY_PART_BYTES``, and is at most
``MAX_BLOB_KEY_LENGTH`` characters and ``MAX_BLOB_KEY_BYTES`` bytes of UTF-8.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from domain.errors import InvalidInput
from domain.limits import (
    MAX_BLOB_KEY_BYTES,
    MAX_BLOB_KEY_LENGTH,
    MAX_BLOB_KEY_PART_BYTES,
    MAX_BLOB_NAME_LENGTH,
    MAX_CONTENT_TYPE_LENGTH,
)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
UPLOADS_PREFIX = "uploads"


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    """Bytes."""
    content_type: str


@dataclass(frozen=True)
class Blob:
    """A stored blob being read: what it is, and its bytes as they stream in."""

    info: BlobInfo
    chunks: AsyncIterator[bytes]


def _problem(key: str) -> str | None:
    if not key:
        return "must not be empty"
    if len(key) > MAX_BLOB_KEY_LENGTH:
        return f"is {len(key)} characters long; at most {MAX_BLOB_KEY_LENGTH} are allowed"
    try:
        size = len(key.encode())
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    if size > MAX_BLOB_KEY_BYTES:
        return f"is {size} bytes as UTF-8; at most {MAX_BLOB_KEY_BYTES} are allowed"
    if key.startswith("/"):
        return "must be relative: it starts with '/'"
    if "\\" in key:
        return "must not contain a backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return "must not contain control characters (NUL, newline, ...)"
    parts = key.split("/")
    if ".." in parts:
        return "must not contain a '..' part"
    if "." in parts:
        return "must not contain a '.' part"
    if "" in parts:
        return "must not contain an empty part ('//', or '/' at the end)"
    if any(len(part.encode()) > MAX_BLOB_KEY_PART_BYTES for part in parts):
        return f"has a part (between '/') over {MAX_BLOB_KEY_PART_BYTES} bytes"
    return None


def validate_blob_key(key: str, *, field: str = "key") -> str:
    """``key`` if it is a valid blob key; else ``InvalidInput`` naming it and why."""
    problem = _problem(key)
    if problem is not None:
        shown = key if len(key) <= 80 else key[:80] + "..."
        raise InvalidInput(field, f"blob key {shown!r} {problem}")
    return key


def new_upload_key(name: str | None = None) -> str:
    """A fresh key for an upload: ``uploads/<random>/<name>``, ``name`` (a file name:
    one part, no ``/``) kept as its last part, ``blob`` without one."""
    if name is not None:
        if "/" in name:
            raise InvalidInput("name", f"{name[:80]!r} must be a file name, without '/'")
        if len(name) > MAX_BLOB_NAME_LENGTH:
            raise InvalidInput(
                "name", f"is {len(name)} characters long; at most {MAX_BLOB_NAME_LENGTH}"
            )
        validate_blob_key(name, field="name")
    return validate_blob_key(f"{UPLOADS_PREFIX}/{uuid.uuid4().hex}/{name or 'blob'}")


def validate_content_type(content_type: str) -> str:
    """A content type as stored with a blob: printable ASCII, bounded."""
    if len(content_type) > MAX_CONTENT_TYPE_LENGTH:
        raise InvalidInput(
            "Content-Type", f"is {len(content_type)} characters; at most {MAX_CONTENT_TYPE_LENGTH}"
        )
    if not content_type.isascii() or not content_type.isprintable():
        raise InvalidInput("Content-Type", "must be printable ASCII")
    return content_type or DEFAULT_CONTENT_TYPE
