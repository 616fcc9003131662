"""The dead-letter queue: counting, looking without consuming, redrive, and dropping
or redriving one message by id.

Messages reach it two ways: ``SqsTaskQueue.dead_letter`` copies a poison message there
(recording its receive count in ``DELIVERIES_ATTRIBUTE`` and why in
``REASON_ATTRIBUTE``), and the main queue's redrive policy moves a message on its
``maxReceiveCount + 1``-th receive (with no reason).

SQS has no call that fetches a message by id: finding one receives dead letters under a
lease, keeps the others hidden while it looks (so each call brings new ones), and hands
them back at once when done. ``domain.limits.MAX_DEAD_LETTER_SEARCH`` bounds it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters import envelope
from adapters.sqs.calls import DELIVERIES_ATTRIBUTE, REASON_ATTRIBUTE, SqsCalls, receive_count
from domain.errors import DeadLetterNotFound, InfrastructureError
from domain.limits import MAX_DEAD_LETTER_SEARCH, MAX_QUEUE_BATCH
from domain.models import DeadLetter

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger("adapters.sqs")

PEEK_VISIBILITY_SECONDS = 5
"""Lease taken while listing dead letters; reset to 0 at once after the look."""
REDRIVE_VISIBILITY_SECONDS = 30
"""Lease taken on a dead letter while it is sent back to the main queue."""
SEARCH_VISIBILITY_SECONDS = 30
"""Lease taken on each dead letter received while looking for one by id, long enough
for the whole search (``SEARCH_CALLS`` receives); handed back at once after it."""
SEARCH_WAIT_SECONDS = 1
"""Each receive of a search long-polls this long: a short poll asks only some of SQS's
servers and can miss messages; the search's last (empty) receive costs this much."""
SEARCH_CALLS = -(-MAX_DEAD_LETTER_SEARCH // MAX_QUEUE_BATCH)
"""Receives a search makes at most: ``MAX_DEAD_LETTER_SEARCH`` messages in full batches."""


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
            await self._hand_back(receipts)
        return [_dead_letter(message) for message in list(seen.values())[:limit]]

    async def _hand_back(self, receipts: Sequence[str]) -> None:
        """Make the received dead letters visible again at once."""
        for start in range(0, len(receipts), MAX_QUEUE_BATCH):
            await self._make_visible(receipts[start : start + MAX_QUEUE_BATCH])

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
            failed, reasons = [], set()
            for url, chunk in self._by_redrive_url(batch).items():
                not_sent, why = await self._send_chunk(url, chunk)
                failed.extend(not_sent)
                reasons.update(why)
            sent = [m["ReceiptHandle"] for m in batch if m["ReceiptHandle"] not in set(failed)]
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

    async def drop_dead_letter(self, message_id: str) -> DeadLetter:
        return await self._take_dead_letter(message_id, resend=False)

    async def redrive_dead_letter(self, message_id: str) -> DeadLetter:
        return await self._take_dead_letter(message_id, resend=True)

    async def _take_dead_letter(self, message_id: str, *, resend: bool) -> DeadLetter:
        """Find ``message_id``; send its body to the main queue if ``resend``; delete it
        from the dead-letter queue. Every other message received is handed back, and so
        is this one if the send or the delete fails."""
        found, others, complete = await self._search(message_id)
        hand_back = list(others)
        try:
            if found is None:
                raise DeadLetterNotFound(
                    message_id,
                    ""
                    if complete
                    else f"not among the first {MAX_DEAD_LETTER_SEARCH} dead letters looked "
                    "at (SQS cannot fetch a message by id); redrive or drop others first",
                )
            receipt, body = found["ReceiptHandle"], found.get("Body", "")
            hand_back.append(receipt)
            if resend:
                await self._run(
                    lambda: self._client.send_message(
                        QueueUrl=self.redrive_url(body), MessageBody=body
                    )
                )
            await self._run(
                lambda: self._client.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=receipt)
            )
            hand_back.pop()
        finally:
            await self._hand_back(hand_back)
        return _dead_letter(found)

    async def _search(self, message_id: str) -> tuple[MessageTypeDef | None, list[str], bool]:
        """Receive dead letters until ``message_id`` comes, none comes, or
        ``SEARCH_CALLS`` receives were made. Returns the message (still leased) or None,
        the receipts of the others (the caller hands them back), and whether every dead
        letter was looked at."""
        seen: set[str] = set()
        others: list[str] = []
        try:
            for _ in range(SEARCH_CALLS):
                batch = await self._receive_from(
                    self.dlq_url,
                    max_messages=MAX_QUEUE_BATCH,
                    visibility_timeout=SEARCH_VISIBILITY_SECONDS,
                    wait_seconds=SEARCH_WAIT_SECONDS,
                )
                found = None
                for message in batch:
                    if message["MessageId"] == message_id and found is None:
                        found = message
                    else:
                        others.append(message["ReceiptHandle"])
                if found is not None:
                    return found, others, True
                fresh = {m["MessageId"] for m in batch} - seen
                if not fresh:
                    return None, others, True
                seen |= fresh
        except BaseException:
            await self._hand_back(others)
            raise
        return None, others, False


def _dead_letter(message: MessageTypeDef) -> DeadLetter:
    body = message.get("Body", "")
    reason = message.get("MessageAttributes", {}).get(REASON_ATTRIBUTE)
    return DeadLetter(
        message_id=message["MessageId"],
        task_id=envelope.decode(body),
        receive_count=_deliveries_before_dead_letter(message),
        raw_body=body,
        reason=None if reason is None else reason.get("StringValue"),
    )


def _deliveries_before_dead_letter(message: MessageTypeDef | dict[str, Any]) -> int:
    """How often a dead letter was delivered on the main queue: recorded by
    ``dead_letter`` on its copy; for one the queue's redrive policy moved, its own
    receive count (SQS carries it over), less the peeks of ``list_dead_letters``
    (approximate)."""
    recorded = message.get("MessageAttributes", {}).get(DELIVERIES_ATTRIBUTE)
    if recorded is not None:
        return int(recorded.get("StringValue", "0"))
    return receive_count(message)
