"""Turning request bodies and query strings into typed input.

Anything that is not strict JSON is a 400 here, before any use case runs: NaN,
Infinity and numbers like 1e999 (no JSON response could carry them back), integers
too long to parse, invalid UTF-8, and nesting deep enough to exhaust the parser. A
string holding a lone surrogate (``"\\ud800"``: valid JSON, but not Unicode, so no
store can keep it) is a 422 naming its path.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from domain.errors import InvalidInput
from domain.json_values import check_text
from domain.limits import DEFAULT_PAGE_SIZE, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PAGE_SIZE
from domain.models import JSON, TaskStatus
from domain.waiting import WAIT_RANGE
from entrypoints.http.errors import MalformedBody

_LIMIT = re.compile(r"[0-9]{1,9}")
_NUMBER = re.compile(r"\+?(?:[0-9]{1,9}(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
"""A decimal number as a query string carries it (no sign, no ``inf``, no ``_``)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
"""Built once (``json.loads`` with options builds one per call); the body is decoded
as ``json.loads`` decodes bytes."""

_SURROGATE_SOURCE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
"""Where a lone surrogate in a parsed string can come from in a UTF-8 body: a
``\\uD800``-``\\uDFFF`` escape, or a surrogate's own UTF-8 bytes (``json`` decodes with
``surrogatepass``). Surrogate pairs match too: then the strings are looked at."""


def may_hold_lone_surrogate(body: bytes) -> bool:
    """Whether a string parsed from ``body`` can hold a lone surrogate. One scan of the
    bytes, so the common body skips the walk over every parsed string."""
    return json.detect_encoding(body) != "utf-8" or _SURROGATE_SOURCE.search(body) is not None


async def json_object(request: Request, *, items: str | None = None) -> dict[str, Any]:
    """The body as a JSON object. The body limit is enforced while it streams in.

    ``items`` names an array member whose elements the caller checks one by one (a
    batch reports a bad item in its place); everything else is checked here."""
    body = await request.body()
    try:
        data = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except RecursionError:
        raise MalformedBody("request body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, over-long integers
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedBody(f"request body must be a JSON object, not {_kind(data)}")
    if not may_hold_lone_surrogate(body):
        return data
    for name, value in data.items():
        if name != items or not isinstance(value, list):
            check_text("", {name: value})
    return data


async def optional_json_object(request: Request) -> dict[str, Any]:
    """Like ``json_object``, but an empty body is an empty object."""
    if not (await request.body()).strip():
        return {}
    return await json_object(request)


def rfc3339_param(field: str, raw: str | None) -> datetime | None:
    """An RFC 3339 timestamp with a timezone, in UTC (``None`` stays ``None``)."""
    if raw is None:
        return None
    message = "must be an RFC 3339 timestamp with a timezone, e.g. 2026-01-01T09:30:00Z"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(field, message) from None
    if moment.utcoffset() is None:
        raise InvalidInput(field, message)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset
        raise InvalidInput(field, "is out of range") from None


def idempotency_key(field: str, raw: str, caller: str) -> str:
    """The key as stored: scoped to the caller (the digest of its API key, or "anon"),
    so two clients cannot see each other's tasks through a shared key. Hashed, so its
    length is fixed and a client's key is not stored as sent."""
    if not 1 <= len(raw) <= MAX_IDEMPOTENCY_KEY_LENGTH or not raw.isprintable():
        raise InvalidInput(field, f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters")
    return hashlib.sha256(f"{caller}\n{raw}".encode()).hexdigest()


def status_param(raw: str | None) -> TaskStatus:
    valid = ", ".join(s.value for s in TaskStatus)
    if raw is None or not raw:
        raise InvalidInput("status", f"query parameter is required, one of {valid}")
    try:
        return TaskStatus(raw.upper())
    except ValueError:
        raise InvalidInput("status", f"must be one of {valid}") from None


def limit_param(
    raw: str | None, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """The ``limit`` query parameter as a number (``default`` when absent); the use case
    checks its range, up to ``maximum``, which the error for a non-number names."""
    if raw is None:
        return default
    if not _LIMIT.fullmatch(raw):
        raise InvalidInput("limit", f"must be an integer between 1 and {maximum}")
    return int(raw)


def wait_param(raw: str | None) -> float | None:
    """The ``wait`` query parameter in seconds (None when absent); the use case checks
    its range."""
    if raw is None:
        return None
    if not _NUMBER.fullmatch(raw):
        raise InvalidInput("wait", WAIT_RANGE)
    return float(raw)


def _kind(value: JSON) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
