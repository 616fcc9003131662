"""``SqsTaskQueue``: the TaskQueue port on the main queue: send, receive, settle.

Dead letters (count, list, redrive) come from ``SqsDeadLetters``, the calls with their
retries and error translation from ``SqsCalls``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters import envelope
from adapters.sqs.calls import DELIVERIES_ATTRIBUTE, REASON_ATTRIBUTE, receive_count
from adapters.sqs.dead_letters import SqsDeadLetters
from domain.errors import QueueSendFailed
from domain.limits import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_DEAD_LETTER_REASON_CHARS,
    MAX_LONG_POLL_SECONDS,
    MAX_QUEUE_BATCH,
    MAX_QUEUE_DELAY_SECONDS,
    MAX_VISIBILITY_TIMEOUT_SECONDS,
)
from domain.models import Delivery, QueueDepth
from domain.priorities import Priority, needs_priority_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def _check_delay(delay_seconds: float) -> None:
    if not 0 <= delay_seconds <= MAX_QUEUE_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {MAX_QUEUE_DELAY_SECONDS}")


def _whole_seconds(seconds: float, upper: int) -> int:
    """SQS takes whole seconds: round up, so a lease is never shorter than asked."""
    return min(upper, max(0, math.ceil(seconds)))


class SqsTaskQueue(SqsDeadLetters):
    max_batch = MAX_QUEUE_BATCH

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        dlq_url: str,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        poll_client: SQSClient | None = None,
        priority: Priority = Priority.DEFAULT,
    ) -> None:
        super().__init__(client, queue_url, dlq_url, poll_client=poll_client)
        self.max_message_bytes = max_message_bytes
        self.priority = priority
        """The one priority this queue carries (``SqsPriorityTaskQueue`` has one queue
        per priority); a send of another is refused."""

    def _check_priority(self, priority: Priority) -> None:
        if priority is not self.priority:
            raise needs_priority_queues(priority)

    def _check_size(self, body: str) -> None:
        size = len(body.encode())
        if size > self.max_message_bytes:
            raise ValueError(
                f"message body is {size} bytes; the queue accepts {self.max_message_bytes}"
            )

    # -- sending ---------------------------------------------------------------------

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        self._check_priority(priority)
        await self.send_raw(envelope.encode(task_id, priority), delay_seconds=delay_seconds)

    async def send_raw(self, body: str, *, delay_seconds: int = 0) -> None:
        """Put any body on the main queue (tests use it to inject poison messages)."""
        _check_delay(delay_seconds)
        self._check_size(body)
        await self._run(
            lambda: self._client.send_message(
                QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=int(delay_seconds)
            )
        )

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        self._check_priority(priority)
        for _, delay in items:
            _check_delay(delay)
        bodies = [(task_id, envelope.encode(task_id, priority), delay) for task_id, delay in items]
        for _, body, _ in bodies:
            self._check_size(body)
        not_sent: list[str] = []
        reasons: set[str] = set()
        for start in range(0, len(bodies), MAX_QUEUE_BATCH):
            chunk = bodies[start : start + MAX_QUEUE_BATCH]
            failed, why = await self._send_chunk(self.queue_url, chunk)
            not_sent.extend(failed)
            reasons.update(why)
        if not_sent:
            raise QueueSendFailed(
                not_sent,
                f"{len(not_sent)} of {len(items)} messages not sent: " + "; ".join(sorted(reasons)),
            )

    # -- receiving -------------------------------------------------------------------

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        if not 1 <= max_messages <= MAX_QUEUE_BATCH:
            raise ValueError(f"max_messages must be between 1 and {MAX_QUEUE_BATCH}")
        messages = await self._receive_from(
            self.queue_url,
            max_messages=max_messages,
            visibility_timeout=_whole_seconds(visibility_timeout, MAX_VISIBILITY_TIMEOUT_SECONDS),
            wait_seconds=_whole_seconds(wait_seconds, MAX_LONG_POLL_SECONDS),
        )
        return [
            Delivery(
                receipt=message["ReceiptHandle"],
                task_id=envelope.decode(message.get("Body", "")),
                receive_count=receive_count(message),
                message_id=message["MessageId"],
                raw_body=message.get("Body", ""),
            )
            for message in messages
        ]

    # -- settling --------------------------------------------------------------------

    async def ack(self, delivery: Delivery) -> None:
        await self._run_on_receipt(
            lambda: self._client.delete_message(
                QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt
            )
        )

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        for start in range(0, len(deliveries), MAX_QUEUE_BATCH):
            await self._delete_batch(
                self.queue_url, [d.receipt for d in deliveries[start : start + MAX_QUEUE_BATCH]]
            )

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        await self._change_visibility(delivery, delay_seconds)

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        await self._change_visibility(delivery, visibility_timeout)

    async def _change_visibility(self, delivery: Delivery, seconds: float) -> None:
        timeout = _whole_seconds(seconds, MAX_VISIBILITY_TIMEOUT_SECONDS)
        await self._run_on_receipt(
            lambda: self._client.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=delivery.receipt,
                VisibilityTimeout=timeout,
            )
        )

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        """Copy the body to the dead-letter queue, then delete it from the main queue.

        In that order, so a crash in between leaves a duplicate, never a loss.
        """
        body = delivery.raw_body or envelope.encode(delivery.task_id or "")
        reason_text = reason[:MAX_DEAD_LETTER_REASON_CHARS] or "unspecified"
        await self._run(
            lambda: self._client.send_message(
                QueueUrl=self.dlq_url,
                MessageBody=body,
                MessageAttributes={
                    REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason_text},
                    # The copy starts its own receive count: keep the main queue's.
                    DELIVERIES_ATTRIBUTE: {
                        "DataType": "Number",
                        "StringValue": str(delivery.receive_count),
                    },
                },
            )
        )
        await self.ack(delivery)

    # -- inspection ------------------------------------------------------------------

    async def depth(self) -> QueueDepth:
        attributes = await self._attributes(self.queue_url)
        return QueueDepth(
            visible=attributes.get("ApproximateNumberOfMessages", 0),
            in_flight=attributes.get("ApproximateNumberOfMessagesNotVisible", 0),
            delayed=attributes.get("ApproximateNumberOfMessagesDelayed", 0),
        )

    async def ping(self) -> None:
        await self._attributes(self.queue_url)
