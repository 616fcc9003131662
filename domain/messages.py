"""Queue messages as the domain sees them: one delivery of a message, a message on the
dead-letter queue, and how deep the queue is. Ports speak these, never a backend's
shapes (a ReceiptHandle, an SQS attribute map)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """One receipt of a queue message.

    ``task_id`` is ``None`` when the body could not be decoded (a poison message).
    ``receipt`` is the opaque handle that acks, releases or extends this delivery.
    """

    receipt: str
    task_id: str | None
    receive_count: int
    message_id: str = ""
    raw_body: str = ""


@dataclass(frozen=True, slots=True)
class QueueDepth:
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


_SURROGATE = re.compile("[\ud800-\udfff]")

RECEIVE_LIMIT_REASON = "max receives"
"""The reason a queue that records one gives a message it moved to the dead-letter
queue on its ``max_receive_count + 1``-th receive (its redrive policy)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message on the dead-letter queue. ``receive_count`` is how often it was
    delivered on the main queue before it was dead-lettered; looking does not change it.
    ``task_id`` is ``None`` for a body that names no task (a poison message); ``reason``
    is why it was dead-lettered, ``None`` where the backend kept no reason.
    """

    message_id: str
    task_id: str | None
    receive_count: int
    raw_body: str = ""
    reason: str | None = None

    def body_preview(self, max_chars: int) -> tuple[str, bool]:
        """The body to show an operator: its first ``max_chars`` characters, and whether
        it was cut there. Safe to print and to send as JSON whatever the body holds: a
        lone surrogate (possible in a body that never was valid UTF-8) becomes U+FFFD."""
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        shown = self.raw_body[:max_chars]
        return _SURROGATE.sub("\ufffd", shown), len(self.raw_body) > max_chars
