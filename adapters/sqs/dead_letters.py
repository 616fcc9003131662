"""The dead-letter queue: counting, looking without consuming, and redrive.

Messages reach it two ways: ``SqsTaskQueue.dead_letter`` copies a poison message there
(recording its receive count in ``DELIVERIES_ATTRIBUTE``), and the main queue's redrive
policy moves a message on its ``maxReceiveCount + 1``-th receive.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters import envelope
from adapters.sqs.calls import DELIVERIES_ATTRIBUTE, SqsCalls, receive_count
from domain.errors import InfrastructureError
from domain.limits import MAX_QUEUE_BATCH
from domain.models import DeadLetter

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger("adapters.sqs")

PEEK_VISIBILITY_SECONDS = 5
"""Lease taken while listing dead letters; reset to 0 at once after the look."""
REDRIVE_VISIBILITY_SECONDS = 30
"""Lease taken on a dead letter while it is sent back to the main queue."""


class SqsDeadLetters(SqsCalls):
    async def dead_letter_count(self) -> int:
        return sum((await self._attributes(self.dlq_url)).values())

    async def list_dead_letters(self, *, limit: int) -> list[DeadLetter]:
        """Receive from the dead-letter queue under a short lease, then hand every
        message straight back (visibility 0), so looking consumes nothing."""
        seen: dict[str, MessageTypeDef] = {}
        receipts: list[str] = []
        try:
            while len(seen) < limit:
                batch = await self._receive_from(
                    self.dlq_url,
                    max_messages=min(MAX_QUEUE_BATCH, limit - len(seen)),
                    visibility_timeout=PEEK_VISIBILITY_SECONDS,
                    wait_seconds=0,
                )
                receipts.extend(m["ReceiptHandle"] for m in batch)
                fresh = [m for m in batch if m["MessageId"] not in seen]
                if not fresh:
                    break
                for message in fresh:
                    seen[message["MessageId"]] = message
        finally:
            for start in range(0, len(receipts), MAX_QUEUE_BATCH):
                await self._make_visible(receipts[start : start + MAX_QUEUE_BATCH])
        return [
            DeadLetter(
                message_id=message["MessageId"],
                task_id=envelope.decode(message.get("Body", "")),
                receive_count=_deliveries_before_dead_letter(message),
                raw_body=message.get("Body", ""),
            )
            for message in list(seen.values())[:limit]
        ]

    async def _make_visible(self, receipts: Sequence[str]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
            for i, receipt in enumerate(receipts)
        ]
        response = await self._run(
            lambda: self._client.change_message_visibility_batch(
                QueueUrl=self.dlq_url,
                Entries=entries,  # type: ignore[arg-type]
            )
        )
        for failure in response.get("Failed", []):
            log.warning(
                "sqs: dead letter stays hidden for up to %ss: %s",
                PEEK_VISIBILITY_SECONDS,
                failure.get("Message", ""),
            )

    async def redrive_dead_letters(self, *, limit: int | None = None) -> int:
        """Receive from the dead-letter queue, send each body to the main queue as a new
        message (fresh receive count), then delete it from the dead-letter queue.

        Done by hand rather than with StartMessageMoveTask, which some endpoints (moto)
        lack. A crash between the send and the delete can duplicate a message, never
        lose one.
        """
        moved = 0
        while limit is None or moved < limit:
            want = MAX_QUEUE_BATCH if limit is None else min(MAX_QUEUE_BATCH, limit - moved)
            batch = await self._receive_from(
                self.dlq_url,
                max_messages=want,
                visibility_timeout=REDRIVE_VISIBILITY_SECONDS,
                wait_seconds=0,
            )
            if not batch:
                break
            chunk = [(m["ReceiptHandle"], m.get("Body", ""), 0) for m in batch]
            failed, reasons = await self._send_chunk(self.queue_url, chunk)
            sent = [receipt for receipt, _, _ in chunk if receipt not in set(failed)]
            if sent:
                await self._delete_batch(self.dlq_url, sent)
            moved += len(sent)
            if failed:
                raise InfrastructureError(
                    "sqs",
                    f"redrive stopped after {moved}: {len(failed)} dead letters not sent "
                    f"back: {'; '.join(sorted(reasons))}",
                )
        return moved


def _deliveries_before_dead_letter(message: MessageTypeDef | dict[str, Any]) -> int:
    """How often a dead letter was delivered on the main queue: recorded by
    ``dead_letter`` on its copy; for one the queue's redrive policy moved, its own
    receive count (SQS carries it over), less the peeks of ``list_dead_letters``
    (approximate)."""
    recorded = message.get("MessageAttributes", {}).get(DELIVERIES_ATTRIBUTE)
    if recorded is not None:
        return int(recorded.get("StringValue", "0"))
    return receive_count(message)
