"""The TaskQueue port on Amazon SQS (boto3).

The adapter is handed a boto3 SQS client and the URLs of the main queue and of its
dead-letter queue; it never creates clients. The main queue carries the redrive policy
(``maxReceiveCount``) that moves a message to the dead-letter queue on its
``maxReceiveCount + 1``-th receive (see ``adapters/aws_provision.py``).

boto3 blocks, so every call runs in a thread (``adapters/boto_calls.py``). botocore's
own retry mode handles throttling and 5xx answers; whatever still fails leaves this
package as ``InfrastructureError("sqs", ...)``.

The client used for ``receive`` needs a read timeout longer than the long-poll wait
(up to ``domain.limits.MAX_LONG_POLL_SECONDS``), or botocore gives up on a healthy long
poll.

=================  ==============================================================
module             holds
=================  ==============================================================
``queue``          ``SqsTaskQueue``: send, receive, ack, release, extend, dead_letter
``dead_letters``   the dead-letter queue: count, list without consuming, redrive
``calls``          the two queue URLs and the calls on them: batches with retries,
                   the long poll, queue attributes
``errors``         ``is_stale_receipt``: which errors mean an outdated receipt
=================  ==============================================================
"""

from adapters.sqs.calls import DELIVERIES_ATTRIBUTE
from adapters.sqs.errors import is_stale_receipt
from adapters.sqs.queue import SqsTaskQueue

__all__ = ["DELIVERIES_ATTRIBUTE", "SqsTaskQueue", "is_stale_receipt"]
