"""Acks sent in the background, in batches: an ack costs its worker no slot.

``BackgroundAcks.add`` queues a delivery and returns at once. One drainer task sends
what is queued in batch calls of up to ``max_batch`` (DeleteMessageBatch on SQS): it
lingers up to ``linger_seconds`` for company, cut short as soon as a batch is full, so
at a modest rate one request carries several acks instead of one each. A failed batch
is retried (``retries`` more times, pausing longer each time), then logged and dropped;
``aclose`` sends whatever is still queued and waits for it (the queue's owner calls it on
shutdown).

Why an ack may wait, or even be lost: by the time a delivery is acked its task is
already recorded as finished in the repository (``domain/processing.py`` records the
outcome first, then acks). Meanwhile the message stays leased, invisible to other
workers, so the linger must stay far below the visibility timeout (half a second
against tens of seconds). If an ack is lost (the process dies before the flush, or every
retry fails), the message is delivered again when its lease ends; the processor finds
the task finished, acks that delivery and skips it: a duplicate receive, never a
duplicate run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from domain.models import Delivery

log = logging.getLogger("taskq.queue.acks")

ACK_RETRIES = 3
ACK_RETRY_PAUSE_SECONDS = 0.2


@dataclass(eq=False)
class BackgroundAcks:
    flush: Callable[[Sequence[Delivery]], Awaitable[None]]
    max_batch: int
    linger_seconds: float
    max_calls: int = 4
    retries: int = ACK_RETRIES
    retry_pause_seconds: float = ACK_RETRY_PAUSE_SECONDS
    batches: int = field(init=False, default=0)
    """Batch calls made, retries included."""
    dropped: int = field(init=False, default=0)
    """Acks given up after every retry failed (their messages come back)."""
    _pending: list[Delivery] = field(init=False, default_factory=list)
    _filled: asyncio.Future[None] | None = field(init=False, default=None)
    """Resolved when a batch fills (or on close) while the drainer lingers."""
    _drainer: asyncio.Task[None] | None = field(init=False, default=None)
    _sending: set[asyncio.Task[None]] = field(init=False, default_factory=set)
    _closing: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.linger_seconds < 0:
            raise ValueError("a linger cannot be negative")

    @property
    def queued(self) -> int:
        """Acks not yet handed to a batch call."""
        return len(self._pending)

    def add(self, delivery: Delivery) -> None:
        self._pending.append(delivery)
        if len(self._pending) >= self.max_batch:
            self._cut_linger_short()
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _cut_linger_short(self) -> None:
        if self._filled is not None and not self._filled.done():
            self._filled.set_result(None)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                lingering = len(self._pending) < self.max_batch and not self._closing
                if lingering and self.linger_seconds:
                    # One future per wait: nothing outlives the event loop it was made on.
                    self._filled = loop.create_future()
                    await asyncio.wait({self._filled}, timeout=self.linger_seconds)
                    self._filled = None
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                if len(self._sending) >= self.max_calls:
                    await asyncio.wait(self._sending, return_when=asyncio.FIRST_COMPLETED)
                sending = loop.create_task(self._send(batch))
                self._sending.add(sending)
                sending.add_done_callback(self._sending.discard)
        finally:
            self._drainer = None

    async def _send(self, batch: list[Delivery]) -> None:
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.retry_pause_seconds * attempt)
            self.batches += 1
            try:
                await self.flush(batch)
                return
            except Exception as exc:  # every failure is logged; the last one drops
                if attempt < self.retries:
                    log.warning("ack of %d messages failed, retrying: %s", len(batch), exc)
                else:
                    self.dropped += len(batch)
                    log.error(
                        "ack of %d messages failed %d times, given up (they will be "
                        "delivered again and skipped as finished): %s",
                        len(batch),
                        attempt + 1,
                        exc,
                    )

    async def aclose(self) -> None:
        """Send everything queued at once (no linger) and wait for every batch call."""
        self._closing = True
        self._cut_linger_short()
        while self._drainer is not None or self._sending:
            if self._drainer is not None:
                await asyncio.shield(self._drainer)
            if self._sending:
                await asyncio.gather(*self._sending, return_exceptions=True)
        self._closing = False
