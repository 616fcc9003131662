"""Pagination cursors: what the stores make round-trips; anything else is InvalidCursor."""

from __future__ import annotations

import base64

import pytest

from adapters.cursor import decode_cursor, encode_cursor
from domain.errors import InvalidCursor
from domain.limits import MAX_CURSOR_LENGTH


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_round_trips() -> None:
    key = {"c": "2026-01-01T00:00:00.000001Z", "i": "0b9e4c1a-2f1e-4d8e-9a55-0f3c7d2b1a00"}
    assert decode_cursor(encode_cursor(key), "c", "i") == key


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        (b64(b"[" * 5000), "longer than"),
        (b64(b"[" * 700), "not a flat JSON object"),
        (b64(b'{"c": {"c": "x"}, "i": "y"}'), "not a flat JSON object"),
        (b64(b'{"c": 1, "i": "y"}'), "not a flat JSON object"),
        (b64(b'{"c": ["x"], "i": "y"}'), "not a flat JSON object"),
        (b64(b'["c", "i"]'), "not a flat JSON object"),
        (b64(b'{"c": "\\ud800", "i": "y"}'), "lone surrogate"),
        (b64(b'{"\\udfff": "x", "c": "x", "i": "y"}'), "lone surrogate"),
        (b64(b'{"c": "x"}'), "needs the keys"),
        (b64(b"\xff\xfe"), "not base64url of UTF-8"),
        ("not a cursor!", "not base64url of UTF-8"),
        ("R", "not base64url of UTF-8"),
        ("A" * (MAX_CURSOR_LENGTH + 1), "longer than"),
    ],
)
def test_anything_else_is_invalid_saying_why(cursor: str, reason: str) -> None:
    with pytest.raises(InvalidCursor) as info:
        decode_cursor(cursor, "c", "i")
    assert reason in info.value.message
    assert info.value.field == "cursor"
