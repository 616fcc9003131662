"""The main queue, its dead-letter queue, and the SQS calls made on both.

Batch calls (SendMessageBatch, DeleteMessageBatch) can fail entry by entry: entries
that failed on the server's side are tried again (``SEND_ATTEMPTS`` in all), entries
SQS refused (``SenderFault``) are not, since sending them again cannot help.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from adapters import envelope
from adapters.boto_calls import describe, run_call
from adapters.sqs.errors import is_stale_receipt, is_stale_receipt_error
from domain.errors import InfrastructureError
from domain.priorities import Priority

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = logging.getLogger("adapters.sqs")

T = TypeVar("T")

SEND_ATTEMPTS = 3
"""How many times a batch entry that failed on the server's side is sent before giving up."""
RETRY_PAUSE_SECONDS = 0.2
DELIVERIES_ATTRIBUTE = "taskq-deliveries"
"""Message attribute on a dead letter's copy: its receive count on the main queue."""
REASON_ATTRIBUTE = "reason"
"""Message attribute on a dead letter's copy: why the engine dead-lettered it."""


class SqsCalls:
    """The two queues of one SQS queue pair, and the calls the adapter makes on them.

    ``poll_client`` makes the long polls (ReceiveMessage), ``client`` every other call.
    A long poll holds its connection up to 20 s, so its client needs a read timeout
    past that; with one client for both, a send to an endpoint that accepts connections
    but never answers would wait as long before failing. Without ``poll_client``,
    ``client`` makes the long polls too."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        dlq_url: str,
        *,
        poll_client: SQSClient | None = None,
    ) -> None:
        self._client = client
        self._poll_client = poll_client or client
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.redrive_urls: dict[Priority, str] = {}
        """The main queue of each priority, when there are several (they share one
        dead-letter queue): a dead letter is redriven to its envelope's priority."""

    def redrive_url(self, body: str) -> str:
        """The queue a dead letter with ``body`` goes back to."""
        return self.redrive_urls.get(envelope.priority_of(body), self.queue_url)

    def _by_redrive_url(
        self, messages: Sequence[MessageTypeDef]
    ) -> dict[str, list[tuple[str, str, int]]]:
        """Dead letters as ``_send_chunk`` entries (receipt, body, no delay) by the
        queue each goes back to."""
        chunks: dict[str, list[tuple[str, str, int]]] = {}
        for m in messages:
            body = m.get("Body", "")
            chunks.setdefault(self.redrive_url(body), []).append((m["ReceiptHandle"], body, 0))
        return chunks

    async def _run(self, call: Callable[[], T]) -> T:
        """Run one blocking boto3 call off the event loop, translating its failures."""
        return await run_call("sqs", call)

    async def _run_on_receipt(self, call: Callable[[], object]) -> None:
        """Like ``_run``, for calls on a receipt: an outdated receipt is a no-op."""
        try:
            await asyncio.to_thread(call)
        except ClientError as error:
            if is_stale_receipt_error(error):
                log.debug("sqs: outdated receipt ignored: %s", describe(error))
                return
            raise InfrastructureError("sqs", describe(error)) from None
        except BotoCoreError as error:
            raise InfrastructureError("sqs", describe(error)) from None

    async def _send_chunk(
        self, queue_url: str, chunk: Sequence[tuple[str, str, int]]
    ) -> tuple[list[str], set[str]]:
        """Send up to MAX_QUEUE_BATCH ``(label, body, delay)``; retry entries that failed
        on the server's side. Returns the labels never sent and why."""
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
                reasons.add(describe(error))
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

    async def _delete_batch(self, queue_url: str, receipts: Sequence[str]) -> None:
        """Delete up to MAX_QUEUE_BATCH receipts; retry server-side failures, skip stale
        ones.

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
            response = self._poll_client.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max_messages,
                VisibilityTimeout=visibility_timeout,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=[DELIVERIES_ATTRIBUTE, REASON_ATTRIBUTE],
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


def receive_count(message: MessageTypeDef | dict[str, Any]) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
