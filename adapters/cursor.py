"""Opaque pagination cursors: the sort key of the last item of a page, base64 JSON."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from domain.errors import InvalidCursor


def encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *required: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor() from None
    if not isinstance(data, dict) or any(k not in data for k in required):
        raise InvalidCursor()
    return data
