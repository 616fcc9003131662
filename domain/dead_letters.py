"""Use cases on the messages of the dead-letter queue: the operator's path for poison
messages (an undecodable body, a message whose task is gone) and for any message the
queue gave up on.

These work on messages, not tasks. A FAILED task is retried with ``TaskService.retry``
(its old message is not needed: the retry sends a new one); a message whose task is
FAILED, COMPLETED or CANCELLED is skipped by the worker if it is redriven.
"""

from __future__ import annotations

from domain.errors import DeadLetterNotFound, InvalidInput
from domain.limits import (
    DEFAULT_DEAD_LETTER_LIST,
    DEFAULT_REDRIVE,
    MAX_DEAD_LETTER_LIST,
    MAX_MESSAGE_ID_LENGTH,
    MAX_REDRIVE,
)
from domain.models import DeadLetter
from domain.ports import TaskQueue


class DeadLetterMessages:
    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue

    async def list(self, *, limit: int = DEFAULT_DEAD_LETTER_LIST) -> list[DeadLetter]:
        """Up to ``limit`` (1 to ``MAX_DEAD_LETTER_LIST``) messages of the dead-letter
        queue as they are, poison ones included, without consuming them."""
        if not 1 <= limit <= MAX_DEAD_LETTER_LIST:
            raise InvalidInput("limit", f"must be between 1 and {MAX_DEAD_LETTER_LIST}")
        return await self.queue.list_dead_letters(limit=limit)

    async def count(self) -> int:
        """Messages on the dead-letter queue (approximate on SQS)."""
        return await self.queue.dead_letter_count()

    async def drop(self, message_id: str) -> DeadLetter:
        """Delete one message for good; returns it as it was. Raises
        ``DeadLetterNotFound`` for an id the dead-letter queue does not hold."""
        return await self.queue.drop_dead_letter(_checked(message_id))

    async def redrive(self, message_id: str) -> DeadLetter:
        """Send one message back to the main queue (a new message, received afresh);
        returns it as it was. Raises ``DeadLetterNotFound`` like ``drop``."""
        return await self.queue.redrive_dead_letter(_checked(message_id))

    async def redrive_all(self, *, limit: int = DEFAULT_REDRIVE) -> int:
        """Send up to ``limit`` (1 to ``MAX_REDRIVE``) messages back to the main queue,
        oldest first where the backend keeps an order; returns how many moved. Bounded,
        so one call ends: call again while messages remain."""
        if not 1 <= limit <= MAX_REDRIVE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_REDRIVE}")
        return await self.queue.redrive_dead_letters(limit=limit)


def _checked(message_id: str) -> str:
    """``message_id`` if some backend could have made it; an id no backend makes (empty,
    or longer than ``MAX_MESSAGE_ID_LENGTH``) is not found without asking the queue."""
    if not 1 <= len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        raise DeadLetterNotFound(
            message_id, f"message ids are 1 to {MAX_MESSAGE_ID_LENGTH} characters"
        )
    return message_id
