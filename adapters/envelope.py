"""The queue message body: a small versioned JSON envelope around a task id.

Every queue adapter (memory, sqlite, sqs) uses it, so a message written by one version
of the engine is read by the next, and anything else is recognised as poison.
"""

from __future__ import annotations

import json

ENVELOPE_VERSION = 1


def encode(task_id: str) -> str:
    return json.dumps({"v": ENVELOPE_VERSION, "task_id": task_id}, separators=(",", ":"))


def decode(body: str) -> str | None:
    """The task id, or ``None`` if ``body`` is not an envelope this engine understands."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("v") != ENVELOPE_VERSION:
        return None
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        return None
    return task_id
