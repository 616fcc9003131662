"""Retry policy: exponential backoff with full jitter, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from domain.limits import MAX_BACKOFF_CAP_SECONDS


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base_seconds < 0:
            raise ValueError("base_seconds must be >= 0")
        if not 0 <= self.cap_seconds <= MAX_BACKOFF_CAP_SECONDS:
            raise ValueError(f"cap_seconds must be between 0 and {MAX_BACKOFF_CAP_SECONDS}")

    def ceiling(self, failed_attempts: int) -> float:
        """The largest delay after ``failed_attempts`` (>= 1) failures."""
        exponent = max(0, failed_attempts - 1)
        if exponent > 60:  # 2**60 * base is past any cap; avoid float overflow
            return self.cap_seconds
        return float(min(self.cap_seconds, self.base_seconds * (2**exponent)))

    def backoff(self, failed_attempts: int) -> float:
        """Full jitter: uniform in [0, ceiling]."""
        return self.rng.uniform(0.0, self.ceiling(failed_attempts))
