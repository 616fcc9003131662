"""Opaque pagination cursors: the sort key of the last item of a page, base64 JSON.

A cursor is a flat JSON object of strings. A client can send anything as a cursor, so
decoding checks that shape before parsing (no nesting, hence no recursion) and refuses
what the stores cannot take (lone surrogates) with ``InvalidCursor``."""

from __future__ import annotations

import base64
import binascii
import json
import re

from domain.errors import InvalidCursor
from domain.json_values import lone_surrogate
from domain.limits import MAX_CURSOR_LENGTH

_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_MEMBER = rf"\s*{_STRING}\s*:\s*{_STRING}\s*"
_FLAT_OBJECT = re.compile(rf"\{{(?:{_MEMBER}(?:,{_MEMBER})*)?\}}")


def encode_cursor(key: dict[str, str]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *required: str) -> dict[str, str]:
    """The key ``encode_cursor`` made; ``InvalidCursor`` for anything else."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor(f"longer than {MAX_CURSOR_LENGTH} characters")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor("not base64url of UTF-8 text") from None
    if not _FLAT_OBJECT.fullmatch(text):
        raise InvalidCursor("not a flat JSON object of strings")
    data: dict[str, str] = json.loads(text)
    if any(k not in data for k in required):
        raise InvalidCursor(f"needs the keys {', '.join(required)}")
    if any(lone_surrogate(k) or lone_surrogate(v) for k, v in data.items()):
        raise InvalidCursor("holds a lone surrogate")
    return data
