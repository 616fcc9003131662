"""The queue message body: a small versioned JSON envelope around a task id.

Every queue adapter (memory, sqlite, sqs) uses it, so a message written by one version
of the engine is read by the next, and anything else is recognised as poison.
"""

from __future__ import annotations

import json

from domain.priorities import Priority

ENVELOPE_VERSION = 1


def encode(task_id: str, priority: Priority = Priority.DEFAULT) -> str:
    """The body of ``task_id``'s message. A priority other than ``default`` is kept in
    ``"p"`` (so a dead letter goes back to its priority when redriven); a default
    message is byte for byte what engines before priorities wrote."""
    data: dict[str, object] = {"v": ENVELOPE_VERSION, "task_id": task_id}
    if priority is not Priority.DEFAULT:
        data["p"] = priority.value
    return json.dumps(data, separators=(",", ":"))


def priority_of(body: str) -> Priority:
    """The priority a body was sent with; ``default`` when it names none (or none
    this engine knows, or it is poison)."""
    try:
        data = json.loads(body)
        return Priority(data["p"]) if isinstance(data, dict) and "p" in data else Priority.DEFAULT
    except (ValueError, TypeError, KeyError):
        return Priority.DEFAULT


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
