"""An outdated receipt is a no-op on SQS, whatever shape of error says so.

The error answers are the ones AWS (and LocalStack, which answers as AWS does) sends
for a receipt that no longer designates an in-flight message; moto answers only
``ReceiptHandleIsInvalid``. Each is parsed by a real botocore client (no server: a
``before-send`` hook hands botocore the HTTP answer), then given to the adapter.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from adapters.sqs import SqsTaskQueue, is_stale_receipt
from domain.errors import InfrastructureError
from domain.models import Delivery
from tests.support.aws import json_error_response, sqs_client

STALE_ANSWERS = {
    # AWS and LocalStack: ChangeMessageVisibility after the message was deleted.
    "invalid parameter naming ReceiptHandle": (
        "com.amazonaws.sqs#InvalidParameterValue",
        "Value AQEBz0...== for parameter ReceiptHandle is invalid. Reason: Message does "
        "not exist or is not available for visibility timeout change.",
        "InvalidParameterValue;Sender",
    ),
    "receipt handle is invalid": (
        "com.amazonaws.sqs#ReceiptHandleIsInvalid",
        'The input receipt handle "AQEBz0...==" is not a valid receipt handle.',
        "ReceiptHandleIsInvalid;Sender",
    ),
    "message not in flight": (
        "com.amazonaws.sqs#MessageNotInflight",
        "The message referred to isn't in flight.",
        "AWS.SimpleQueueService.MessageNotInflight;Sender",
    ),
    "moto": ("ReceiptHandleIsInvalid", "The input receipt handle is invalid.", None),
}
OTHER_ANSWERS = {
    "invalid visibility timeout": (
        "com.amazonaws.sqs#InvalidParameterValue",
        "Value 50000 for parameter VisibilityTimeout is invalid. Reason: Must be between "
        "0 and 43200.",
        "InvalidParameterValue;Sender",
    ),
    "queue gone": (
        "com.amazonaws.sqs#QueueDoesNotExist",
        "The specified queue does not exist.",
        "AWS.SimpleQueueService.NonExistentQueue;Sender",
    ),
    "access denied": ("AccessDenied", "not authorized: sqs:ChangeMessageVisibility", None),
}
DELIVERY = Delivery(receipt="AQEBz0...==", task_id="t-1", receive_count=1)


def answering(answer: tuple[str, str, str | None]) -> SqsTaskQueue:
    """The adapter on a real client whose every call gets ``answer`` (HTTP 400)."""
    error_type, message, query_error = answer
    client = sqs_client("http://127.0.0.1:9")  # never reached

    def reply(**_: Any) -> Any:
        return json_error_response(400, error_type, message, query_error=query_error)

    client.meta.events.register("before-send.sqs.*", reply)
    return SqsTaskQueue(client, "http://127.0.0.1:9/000/q", "http://127.0.0.1:9/000/q-dlq")


def parsed_error(answer: tuple[str, str, str | None]) -> ClientError:
    queue = answering(answer)
    with pytest.raises(ClientError) as caught:
        queue._client.change_message_visibility(
            QueueUrl=queue.queue_url, ReceiptHandle="x", VisibilityTimeout=0
        )
    return caught.value


@pytest.mark.parametrize("answer", STALE_ANSWERS.values(), ids=STALE_ANSWERS.keys())
async def test_every_aws_answer_for_an_outdated_receipt_is_a_no_op(
    answer: tuple[str, str, str | None],
) -> None:
    assert is_stale_receipt(parsed_error(answer).response["Error"])
    queue = answering(answer)
    await queue.extend(DELIVERY, visibility_timeout=30)
    await queue.release(DELIVERY, delay_seconds=5)
    await queue.ack(DELIVERY)


@pytest.mark.parametrize("answer", OTHER_ANSWERS.values(), ids=OTHER_ANSWERS.keys())
async def test_other_errors_on_a_receipt_still_raise(answer: tuple[str, str, str | None]) -> None:
    assert not is_stale_receipt(parsed_error(answer).response["Error"])
    queue = answering(answer)
    with pytest.raises(InfrastructureError, match="sqs unavailable"):
        await queue.extend(DELIVERY, visibility_timeout=30)
    with pytest.raises(InfrastructureError, match="sqs unavailable"):
        await queue.release(DELIVERY)


@pytest.mark.parametrize(
    ("failure", "stale"),
    [
        ({"Code": "ReceiptHandleIsInvalid", "Message": "invalid", "SenderFault": True}, True),
        ({"Code": "AWS.SimpleQueueService.MessageNotInflight", "SenderFault": True}, True),
        (
            {"Code": "InvalidParameterValue", "Message": "ReceiptHandle is invalid"},
            True,
        ),
        ({"Code": "InternalError", "Message": "retry", "SenderFault": False}, False),
    ],
)
def test_batch_failure_entries_are_classified_alike(failure: dict[str, Any], stale: bool) -> None:
    assert is_stale_receipt(failure) is stale
