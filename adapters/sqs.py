"""The TaskQueue port on Amazon SQS (boto3).

The adapter is handed a boto3 SQS client and the URLs of the main queue and of its
dead-letter queue; it never creates clients. The main queue carries the redrive policy
(``maxReceiveCount``) that moves a message to the dead-letter queue on its
``maxReceiveCount + 1``-th receive (see ``adapters/aws_provision.py``).

boto3 blocks, so every call runs in a thread (``asyncio.to_thread``). botocore's own
retry mode handles throttling and 5xx answers; whatever still fails leaves this module as
``InfrastructureError("sqs", ...)``.

The client used for ``receive`` needs a read timeout longer than the long-poll wait
(up to ``MAX_WAIT_SECONDS``), or botocore gives up on a healthy long poll.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from adapters import envelope
from domain.errors import InfrastructureError, QueueSendFailed
from domain.models import DeadLetter, Delivery, QueueDepth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = logging.getLogger(__name__)

T = TypeVar("T")

# SQS quotas, from the Amazon SQS Developer Guide ("Amazon SQS message quotas"):
MAX_BATCH = 10
"""Entries per SendMessageBatch / DeleteMessageBatch / ReceiveMessage call."""
MAX_DELAY_SECONDS = 900
"""DelaySeconds is 0..900 (15 minutes)."""
MAX_VISIBILITY_TIMEOUT = 43_200
"""VisibilityTimeout is 0..43,200 seconds (12 hours)."""
MAX_WAIT_SECONDS = 20
"""ReceiveMessage WaitTimeSeconds (long polling) is 0..20."""
DEFAULT_MAX_MESSAGE_BYTES = 262_144
"""256 KiB: the message (and whole-batch) size limit of older endpoints and of moto.
AWS now accepts 1 MiB; the adapter takes the limit as an argument (a setting)."""

SEND_ATTEMPTS = 3
"""How many times a batch entry that failed on the server's side is sent before giving up."""
RETRY_PAUSE_SECONDS = 0.2
PEEK_VISIBILITY_SECONDS = 5
"""Lease taken while listing dead letters; reset to 0 at once after the look."""
MAX_REASON_CHARS = 1024

# Error codes meaning "this receipt handle no longer designates an in-flight message":
# an outdated receipt, so acking or changing visibility is a no-op. SQS speaks JSON now;
# botocore reports the legacy query-protocol code (``x-amzn-query-error``) as ``Code``,
# sometimes with the ``AWS.SimpleQueueService.`` prefix, and the shape name as
# ``QueryErrorCode``. moto answers ReceiptHandleIsInvalid; AWS and LocalStack answer a
# ChangeMessageVisibility on a deleted message with InvalidParameterValue, "Value ...
# for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not
# available for visibility timeout change."
_LEGACY_PREFIX = "AWS.SimpleQueueService."
_STALE_RECEIPT_CODES = frozenset(
    {"ReceiptHandleIsInvalid", "InvalidReceiptHandle", "MessageNotInflight"}
)
_INVALID_PARAMETER_CODES = frozenset({"InvalidParameterValue", "InvalidParameterValueException"})


def _error_codes(info: Mapping[str, Any]) -> set[str]:
    codes = {str(info.get("Code", "")), str(info.get("QueryErrorCode", ""))}
    return {code.removeprefix(_LEGACY_PREFIX) for code in codes if code}


def is_stale_receipt(info: Mapping[str, Any]) -> bool:
    """Whether an SQS error (a ClientError's ``response["Error"]``, or a batch call's
    ``Failed`` entry) says the receipt no longer designates an in-flight message."""
    codes = _error_codes(info)
    if codes & _STALE_RECEIPT_CODES:
        return True
    message = str(info.get("Message", "")).lower().replace(" ", "")
    return bool(codes & _INVALID_PARAMETER_CODES) and "receipthandle" in message


def _is_stale_receipt(error: ClientError) -> bool:
    return is_stale_receipt(error.response.get("Error", {}))


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Unknown')}: {info.get('Message', '')}"
    return f"{type(error).__name__}: {error}"


def _check_delay(delay_seconds: float) -> None:
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {MAX_DELAY_SECONDS}")


def _whole_seconds(seconds: float, upper: int) -> int:
    """SQS takes whole seconds: round up, so a lease is never shorter than asked."""
    return min(upper, max(0, math.ceil(seconds)))


DELIVERIES_ATTRIBUTE = "taskq-deliveries"
"""Message attribute on a dead letter's copy: its receive count on the main queue."""


class SqsTaskQueue:
    max_batch = MAX_BATCH

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        dlq_url: str,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.max_message_bytes = max_message_bytes

    async def _run(self, call: Callable[[], T]) -> T:
        """Run one blocking boto3 call off the event loop, translating its failures."""
        try:
            return await asyncio.to_thread(call)
        except (ClientError, BotoCoreError) as error:
            raise InfrastructureError("sqs", _describe(error)) from None

    async def _run_on_receipt(self, call: Callable[[], object]) -> None:
        """Like ``_run``, for calls on a receipt: an outdated receipt is a no-op."""
        try:
            await asyncio.to_thread(call)
        except ClientError as error:
            if _is_stale_receipt(error):
                log.debug("sqs: outdated receipt ignored: %s", _describe(error))
                return
            raise InfrastructureError("sqs", _describe(error)) from None
        except BotoCoreError as error:
            raise InfrastructureError("sqs", _describe(error)) from None

    def _check_size(self, body: str) -> None:
        size = len(body.encode())
        if size > self.max_message_bytes:
            raise ValueError(
                f"message body is {size} bytes; the queue accepts {self.max_message_bytes}"
            )

    # -- sending ---------------------------------------------------------------------

    async def send(self, task_id: str, *, delay_seconds: int = 0) -> None:
        await self.send_raw(envelope.encode(task_id), delay_seconds=delay_seconds)

    async def send_raw(self, body: str, *, delay_seconds: int = 0) -> None:
        """Put any body on the main queue (tests use it to inject poison messages)."""
        _check_delay(delay_seconds)
        self._check_size(body)
        await self._run(
            lambda: self._client.send_message(
                QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=int(delay_seconds)
            )
        )

    async def send_batch(self, items: Sequence[tuple[str, int]]) -> None:
        for _, delay in items:
            _check_delay(delay)
        bodies = [(task_id, envelope.encode(task_id), delay) for task_id, delay in items]
        for _, body, _ in bodies:
            self._check_size(body)
        not_sent: list[str] = []
        reasons: set[str] = set()
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start : start + MAX_BATCH]
            failed, why = await self._send_chunk(self.queue_url, chunk)
            not_sent.extend(failed)
            reasons.update(why)
        if not_sent:
            raise QueueSendFailed(
                not_sent,
                f"{len(not_sent)} of {len(items)} messages not sent: " + "; ".join(sorted(reasons)),
            )

    async def _send_chunk(
        self, queue_url: str, chunk: Sequence[tuple[str, str, int]]
    ) -> tuple[list[str], set[str]]:
        """Send up to MAX_BATCH ``(label, body, delay)``; retry entries that failed on
        the server's side. Returns the labels never sent and why."""
        pending = {str(i): entry for i, entry in enumerate(chunk)}
        reasons: set[str] = set()
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": entry_id, "MessageBody": body, "DelaySeconds": int(delay)}
                for entry_id, (_, body, delay) in pending.items()
            ]
            try:
                response = await asyncio.to_thread(
                    functools.partial(
                        self._client.send_message_batch, QueueUrl=queue_url, Entries=entries
                    )
                )
            except (ClientError, BotoCoreError) as error:
                # The whole call failed: nothing of it is known to be sent.
                reasons.add(_describe(error))
                continue
            retry: dict[str, tuple[str, str, int]] = {}
            for failure in response.get("Failed", []):
                entry_id = failure["Id"]
                reasons.add(f"{failure.get('Code', '')}: {failure.get('Message', '')}")
                if entry_id not in pending:
                    continue
                if failure.get("SenderFault"):
                    # Our request is wrong (size, delay): sending it again cannot help.
                    return [label for label, _, _ in pending.values()], reasons
                retry[entry_id] = pending[entry_id]
            pending = retry
            if not pending:
                return [], set()
        return [label for label, _, _ in pending.values()], reasons

    # -- receiving -------------------------------------------------------------------

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        if not 1 <= max_messages <= MAX_BATCH:
            raise ValueError(f"max_messages must be between 1 and {MAX_BATCH}")
        messages = await self._receive_from(
            self.queue_url,
            max_messages=max_messages,
            visibility_timeout=_whole_seconds(visibility_timeout, MAX_VISIBILITY_TIMEOUT),
            wait_seconds=_whole_seconds(wait_seconds, MAX_WAIT_SECONDS),
        )
        return [
            Delivery(
                receipt=message["ReceiptHandle"],
                task_id=envelope.decode(message.get("Body", "")),
                receive_count=_receive_count(message),
                message_id=message["MessageId"],
                raw_body=message.get("Body", ""),
            )
            for message in messages
        ]

    async def _receive_from(
        self, queue_url: str, *, max_messages: int, visibility_timeout: int, wait_seconds: int
    ) -> list[MessageTypeDef]:
        """One ReceiveMessage call.

        Cancelling the caller cannot stop a long poll already running in its thread; if
        that poll then gets messages nobody will see, it hands them straight back
        (visibility 0) instead of leaving them hidden for a whole lease.
        """
        abandoned = threading.Event()

        def poll() -> list[MessageTypeDef]:
            response = self._client.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max_messages,
                VisibilityTimeout=visibility_timeout,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=[DELIVERIES_ATTRIBUTE],
            )
            messages = list(response.get("Messages", []))
            if messages and abandoned.is_set():
                self._client.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(messages)
                    ],
                )
                return []
            return messages

        try:
            return await self._run(poll)
        except asyncio.CancelledError:
            abandoned.set()
            raise

    # -- settling --------------------------------------------------------------------

    async def ack(self, delivery: Delivery) -> None:
        await self._run_on_receipt(
            lambda: self._client.delete_message(
                QueueUrl=self.queue_url, ReceiptHandle=delivery.receipt
            )
        )

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        for start in range(0, len(deliveries), MAX_BATCH):
            await self._delete_batch(
                self.queue_url, [d.receipt for d in deliveries[start : start + MAX_BATCH]]
            )

    async def _delete_batch(self, queue_url: str, receipts: Sequence[str]) -> None:
        """Delete up to MAX_BATCH receipts; retry server-side failures, skip stale ones.

        A delete that still fails is logged, not raised: the message is then delivered
        again, which at-least-once delivery already allows for.
        """
        pending = {str(i): receipt for i, receipt in enumerate(receipts)}
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": entry_id, "ReceiptHandle": receipt} for entry_id, receipt in pending.items()
            ]
            response = await self._run(
                functools.partial(
                    self._client.delete_message_batch, QueueUrl=queue_url, Entries=entries
                )
            )
            retry: dict[str, str] = {}
            for failure in response.get("Failed", []):
                if is_stale_receipt(failure) or failure.get("SenderFault"):
                    log.debug(
                        "sqs: delete skipped: %s %s", failure.get("Code"), failure.get("Message")
                    )
                    continue
                if failure["Id"] in pending:
                    retry[failure["Id"]] = pending[failure["Id"]]
            pending = retry
            if not pending:
                return
        log.warning("sqs: %d messages could not be deleted; they will be redelivered", len(pending))

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        await self._change_visibility(delivery, delay_seconds)

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        await self._change_visibility(delivery, visibility_timeout)

    async def _change_visibility(self, delivery: Delivery, seconds: float) -> None:
        timeout = _whole_seconds(seconds, MAX_VISIBILITY_TIMEOUT)
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
        reason_text = reason[:MAX_REASON_CHARS] or "unspecified"
        await self._run(
            lambda: self._client.send_message(
                QueueUrl=self.dlq_url,
                MessageBody=body,
                MessageAttributes={
                    "reason": {"DataType": "String", "StringValue": reason_text},
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

    async def _attributes(self, queue_url: str) -> dict[str, int]:
        response = await self._run(
            lambda: self._client.get_queue_attributes(
                QueueUrl=queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )
        )
        return {name: int(value) for name, value in response.get("Attributes", {}).items()}

    async def depth(self) -> QueueDepth:
        attributes = await self._attributes(self.queue_url)
        return QueueDepth(
            visible=attributes.get("ApproximateNumberOfMessages", 0),
            in_flight=attributes.get("ApproximateNumberOfMessagesNotVisible", 0),
            delayed=attributes.get("ApproximateNumberOfMessagesDelayed", 0),
        )

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
                    max_messages=min(MAX_BATCH, limit - len(seen)),
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
            for start in range(0, len(receipts), MAX_BATCH):
                await self._make_visible(receipts[start : start + MAX_BATCH])
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
            want = MAX_BATCH if limit is None else min(MAX_BATCH, limit - moved)
            batch = await self._receive_from(
                self.dlq_url, max_messages=want, visibility_timeout=30, wait_seconds=0
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

    async def ping(self) -> None:
        await self._attributes(self.queue_url)


def _deliveries_before_dead_letter(message: MessageTypeDef | dict[str, Any]) -> int:
    """How often a dead letter was delivered on the main queue: recorded by
    ``dead_letter`` on its copy; for one the queue's redrive policy moved, its own
    receive count (SQS carries it over), less the peeks of ``list_dead_letters``
    (approximate)."""
    recorded = message.get("MessageAttributes", {}).get(DELIVERIES_ATTRIBUTE)
    if recorded is not None:
        return int(recorded.get("StringValue", "0"))
    return _receive_count(message)


def _receive_count(message: MessageTypeDef | dict[str, Any]) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
