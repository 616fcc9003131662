"""The queue message body: a small versioned JSON envelope around a task id.

Every queue adapter (memory, sqlite, sqs) uses it, so a message written by one version
of the engine is read by the next, and anything else is recognised as poison.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quoted

from domain.priorities import Priority

ENVELOPE_VERSION = 1
_HEAD = f'{{"v":{ENVELOPE_VERSION},"task_id":"'
"""How a body ``encode`` wrote starts (``json.dumps``'s output, key for key)."""


def encode(task_id: str, priority: Priority = Priority.DEFAULT) -> str:
    """The body of ``task_id``'s message. A priority other than ``default`` is kept in
    ``"p"`` (so a dead letter goes back to its priority when redriven); a default
    message is byte for byte what engines before priorities wrote."""
    # What json.dumps(..., separators=(",", ":")) writes of the dict, written directly.
    if priority is Priority.DEFAULT:
        return f'{{"v":{ENVELOPE_VERSION},"task_id":{_quoted(task_id)}}}'
    return f'{{"v":{ENVELOPE_VERSION},"task_id":{_quoted(task_id)},"p":{_quoted(priority.value)}}}'


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
    if body.startswith(_HEAD) and body.endswith('"}'):  # as encode writes a default one
        written = body[len(_HEAD) : -2]
        if written.isprintable() and '"' not in written and "\\" not in written and written:
            return written
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
