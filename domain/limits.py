"""How much data a task may carry, and where the number comes from.

A task is stored as one item (a DynamoDB item, an SQLite row, an object in memory), and
every backend enforces the same limit, so a task that works on one works on all. The
binding store is DynamoDB: an item is at most 400 KB, attribute names included
(Amazon DynamoDB Developer Guide, "Item size limit"). A task item holds the payload and
the result, each as JSON text, plus everything else: ids, timestamps, index keys and an
error of at most ``MAX_ERROR_LENGTH`` characters.
"""

from __future__ import annotations

import json

from domain.errors import ResultTooLarge, ValidationError
from domain.models import JSON

DYNAMODB_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit, in bytes."""
TASK_ITEM_OVERHEAD_BYTES = 16 * 1024
"""What a task item needs besides its payload and result: about 2 KB of fields and
keys, and the error (2,048 characters, up to 8 KB in UTF-8), with room to spare."""
MAX_TASK_DATA_BYTES = (DYNAMODB_ITEM_BYTES - TASK_ITEM_OVERHEAD_BYTES) // 2
"""The most a task's payload, and separately its result, may take as JSON (196,608
bytes): with both at the limit the item still fits in DynamoDB."""

SOURCE = "a task is stored as one DynamoDB item, at most 400 KB"


def encoded_size(value: JSON) -> int | None:
    """Bytes of ``value`` as the stores write it (JSON, UTF-8, ``json.dumps``'s default
    separators: the most any backend uses); None when it is not JSON at all, which is
    for other checks to say."""
    try:
        return len(json.dumps(value, ensure_ascii=False).encode())
    except (TypeError, ValueError):  # not JSON, or a lone surrogate (not UTF-8)
        return None


def _over(value: JSON) -> int | None:
    size = encoded_size(value)
    return size if size is not None and size > MAX_TASK_DATA_BYTES else None


def check_payload(payload: JSON) -> None:
    """Raise ``ValidationError`` naming the limit when ``payload`` is too large."""
    size = _over(payload)
    if size is not None:
        raise ValidationError(
            "payload",
            f"is {size:,} bytes as JSON; at most {MAX_TASK_DATA_BYTES:,} are accepted ({SOURCE})",
        )


def result_too_large(result: JSON) -> ResultTooLarge | None:
    """The permanent failure for a handler's ``result`` too large to store, or None."""
    size = _over(result)
    return None if size is None else ResultTooLarge(size, MAX_TASK_DATA_BYTES, SOURCE)
