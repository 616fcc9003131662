"""When the client sends a request again, and how long it waits first.

A 503 (back-pressure, a dependency down: nothing was changed) or a 429 is resent after
the server's ``Retry-After``, capped; without the header, after a doubling backoff. A
connection that could not be opened is resent whatever the request; one lost after the
request may have reached the server only when sending it twice is harmless (a read, or
a submit: it always carries an idempotency key). At most ``max_retries`` times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from taskq.config import DEFAULT_MAX_RETRIES, MAX_RETRY_AFTER_SECONDS, RETRY_BACKOFF_SECONDS
from taskq.errors import retry_after_seconds

RETRIED_STATUSES = frozenset({429, 503})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request could reach the server."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = DEFAULT_MAX_RETRIES
    max_delay: float = MAX_RETRY_AFTER_SECONDS
    """The longest pause before a retry, whatever ``Retry-After`` asks."""
    backoff: float = RETRY_BACKOFF_SECONDS
    """The first pause without a ``Retry-After``; doubled at each retry."""

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries!r}")

    def delay(
        self, outcome: httpx.Response | httpx.TransportError, retries: int, idempotent: bool
    ) -> float | None:
        """Seconds to wait before sending the request again after ``outcome`` (the
        ``retries``-th retry was the last sent), or None: ``outcome`` is the answer."""
        if retries >= self.max_retries:
            return None
        if isinstance(outcome, httpx.TransportError):
            if isinstance(outcome, NOT_SENT) or idempotent:
                return self._backoff(retries)
            return None
        if outcome.status_code not in RETRIED_STATUSES:
            return None
        after = retry_after_seconds(outcome.headers.get("retry-after"))
        return self._backoff(retries) if after is None else min(after, self.max_delay)

    def _backoff(self, retries: int) -> float:
        return float(min(self.backoff * 2**retries, self.max_delay))


@dataclass(frozen=True)
class Timing:
    """How the client reads the time and waits: the real clock by default; tests hand
    it fakes to check how long it would have waited without waiting."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
