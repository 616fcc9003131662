"""The wire shapes of the dead-letter queue's messages (``/dead-letters/messages``).

Beside ``schemas.py`` (the tasks' shapes), and like them the source of their component
schemas in ``/openapi.json``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domain.limits import DEFAULT_REDRIVE, MAX_DEAD_LETTER_BODY_CHARS, MAX_REDRIVE
from domain.models import DeadLetter
from entrypoints.http.schemas import Integer

_DEPTH = "Messages on the dead-letter queue now (approximate on SQS)."


class DeadLetterMessage(BaseModel):
    """One message on the dead-letter queue, as it is."""

    message_id: str = Field(description="Names the message to drop or redrive it.")
    task_id: str | None = Field(
        description="The task the message is for; null for a poison message (a body that "
        "names no task)."
    )
    reason: str | None = Field(
        description="Why it was dead-lettered, where the backend keeps it: the worker's "
        "reason (the task's error, `undecodable message body`), `max receives` when the "
        "queue gave up on it; null on SQS for a message its redrive policy moved."
    )
    receive_count: int = Field(description="Deliveries on the main queue before it died.")
    body: str = Field(
        description=f"The body, cut to its first {MAX_DEAD_LETTER_BODY_CHARS} characters; "
        "characters that are not Unicode are shown as U+FFFD."
    )
    body_truncated: bool = Field(description="The body is longer than `body` shows.")
    body_length: int = Field(description="Characters in the whole body.")

    @classmethod
    def of(cls, dead: DeadLetter) -> DeadLetterMessage:
        body, cut = dead.body_preview(MAX_DEAD_LETTER_BODY_CHARS)
        return cls(
            message_id=dead.message_id,
            task_id=dead.task_id,
            reason=dead.reason,
            receive_count=dead.receive_count,
            body=body,
            body_truncated=cut,
            body_length=len(dead.raw_body),
        )


class DeadLetterMessageList(BaseModel):
    messages: list[DeadLetterMessage] = Field(
        description="Oldest first where the backend keeps an order (SQS does not)."
    )
    dead_letter_queue_depth: int = Field(description=_DEPTH)


class RedriveMessages(BaseModel):
    """Optional body of ``POST /dead-letters/messages/redrive``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    limit: Integer = Field(
        DEFAULT_REDRIVE,
        description="At most this many messages; send again while some remain.",
        json_schema_extra={"minimum": 1, "maximum": MAX_REDRIVE},
    )


class MessagesRedriven(BaseModel):
    count: int = Field(description="Messages sent back to the main queue.")
    dead_letter_queue_depth: int = Field(description=_DEPTH)
