"""A running task's progress, as its handler reports it (``TaskContext.progress``) and
the API shows it: a percentage, an optional message, and when it was reported."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.limits import MAX_PROGRESS_MESSAGE_LENGTH

TRUNCATED = "... [truncated]"
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float
    """0 to 100."""
    message: str | None
    updated_at: datetime
    """When the handler reported it."""

    @classmethod
    def report(cls, percent: float, message: str | None, now: datetime) -> Progress:
        """A handler's report, checked: ``ValueError`` naming what is wrong with
        ``percent`` (a number from 0 to 100) or ``message`` (text, cut to
        ``MAX_PROGRESS_MESSAGE_LENGTH`` characters)."""
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int | float)
            or not math.isfinite(percent)
            or not 0 <= percent <= 100
        ):
            raise ValueError(f"progress percent must be a number from 0 to 100, not {percent!r}")
        if message is not None:
            if not isinstance(message, str):
                raise ValueError(f"progress message must be a string, not {type(message).__name__}")
            if _SURROGATE.search(message):  # not Unicode: no store could write it
                raise ValueError("progress message holds a lone surrogate")
            if len(message) > MAX_PROGRESS_MESSAGE_LENGTH:
                message = message[: MAX_PROGRESS_MESSAGE_LENGTH - len(TRUNCATED)] + TRUNCATED
        return cls(float(percent), message, now)

    def to_json(self) -> dict[str, Any]:
        """As the stores keep it and the API shows it (``updated_at`` in ISO 8601)."""
        return {
            "percent": self.percent,
            "message": self.message,
            "updated_at": self.updated_at.isoformat(timespec="microseconds"),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Progress:
        """What ``to_json`` wrote."""
        return cls(
            float(value["percent"]),
            value.get("message"),
            datetime.fromisoformat(value["updated_at"]),
        )
