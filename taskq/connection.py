"""What both clients are configured with: ``ClientOptions`` as the caller gives them,
``Connection`` as a client uses them (the base URL and key resolved, checked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from taskq.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    auth_headers,
    checked_timeout,
    resolve_api_key,
    resolve_base_url,
)
from taskq.retry import RetryPolicy, Timing


class ClientOptions(TypedDict, total=False):
    api_key: str | None
    """Sent as a Bearer token; default ``$TASKQ_API_KEY``, else none."""
    timeout: float
    """Seconds one request may take, beyond what the server holds it by design (a
    ``wait``, a paced redrive); default 10."""
    max_retries: int
    """Resends of a request answered 503 or 429 (after its ``Retry-After``, capped) or
    lost to a connection error where resending is safe; default 3."""
    timing: Timing
    """The clock and sleeps (tests pass fakes)."""


@dataclass(frozen=True)
class Connection:
    base_url: str
    headers: dict[str, str]
    timeout: float
    policy: RetryPolicy
    timing: Timing

    @classmethod
    def of(cls, base_url: str | None, **options: Unpack[ClientOptions]) -> Connection:
        """``base_url``: the argument, else ``$TASKQ_URL``, else loopback on ``$PORT``."""
        return cls(
            base_url=resolve_base_url(base_url),
            headers=auth_headers(resolve_api_key(options.get("api_key"))),
            timeout=checked_timeout(options.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
            policy=RetryPolicy(max_retries=options.get("max_retries", DEFAULT_MAX_RETRIES)),
            timing=options.get("timing") or Timing(),
        )

    def httpx_options(self) -> dict[str, Any]:
        """The arguments of the ``httpx`` client: pooled, with the key on every request."""
        return {"base_url": self.base_url, "headers": self.headers, "timeout": self.timeout}
