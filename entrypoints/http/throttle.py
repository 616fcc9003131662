"""Token buckets keyed by caller, in bounded memory."""

from __future__ import annotations

from collections.abc import Callable

MAX_TRACKED_KEYS = 10_000
"""Buckets kept at most (about 150 bytes each); past it the least recently used one is
forgotten, which only ever gives that key a full bucket again."""


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens, refilled at ``rate`` a second."""

    def __init__(
        self,
        rate: float,
        burst: int,
        monotonic: Callable[[], float],
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def _tokens(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - then) * self.rate)

    def wait(self, key: str) -> float:
        """0 if a token is available; otherwise the seconds until one is. Takes none."""
        tokens = self._tokens(key, self._monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str) -> float:
        """0 if a token was taken; otherwise the seconds until one is available."""
        now = self._monotonic()
        tokens = self._tokens(key, now)
        taken = tokens >= 1
        self._store(key, tokens - 1 if taken else tokens, now)
        return 0.0 if taken else (1 - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        buckets = self._buckets
        buckets.pop(key, None)  # re-inserted last: the dict's order is least recent first
        buckets[key] = (tokens, now)
        if len(buckets) > self.max_keys:
            del buckets[next(iter(buckets))]

    def __len__(self) -> int:
        return len(self._buckets)
