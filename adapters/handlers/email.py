"""The ``email`` built-in task type: sends the email its payload describes
(domain/email.py) through an ``EmailSender`` (an SMTP server, Amazon SES, or the local
mailbox file), and returns ``{message_id, accepted: [...]}``.

A refusal for good (an SMTP 5xx) fails the task at once with the server's reply; a
temporary failure (a 4xx, a connection error) is a failed attempt, retried with backoff.
"""

from __future__ import annotations

from domain.email import ADDRESS_PATTERN, Email
from domain.errors import PermanentTaskError
from domain.limits import MAX_EMAIL_ADDRESS_LENGTH, MAX_EMAIL_RECIPIENTS, MAX_EMAIL_SUBJECT_CHARS
from domain.models import JSON
from domain.ports import EmailSender
from domain.task_types import TaskType

EMAIL_TIMEOUT_SECONDS = 60.0

# JSON Schemas of what ``validate_email`` accepts and the handler returns (shown by
# GET /task-types and in /openapi.json).
_ADDRESS: dict[str, JSON] = {
    "type": "string",
    "pattern": ADDRESS_PATTERN,
    "maxLength": MAX_EMAIL_ADDRESS_LENGTH,
}
_TEXT: dict[str, JSON] = {"type": "string"}
EMAIL_INPUT: dict[str, JSON] = {
    "anyOf": [
        {**_ADDRESS, "description": "The address to send to (a default subject and text)."},
        {
            "type": "object",
            "properties": {
                "to": {
                    "anyOf": [
                        _ADDRESS,
                        {
                            "type": "array",
                            "items": _ADDRESS,
                            "minItems": 1,
                            "maxItems": MAX_EMAIL_RECIPIENTS,
                        },
                    ]
                },
                "subject": {
                    "type": "string",
                    "maxLength": MAX_EMAIL_SUBJECT_CHARS,
                    "pattern": "^[^\\r\\n]*$",
                },
                "text": _TEXT,
                "html": _TEXT,
                "reply_to": _ADDRESS,
            },
            "required": ["to"],
        },
    ]
}
EMAIL_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {
        "message_id": {"type": "string"},
        "accepted": {"type": "array", "items": {"type": "string"}},
        "rejected": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["message_id", "accepted"],
}


def validate_email(payload: JSON) -> None:
    Email.from_payload(payload)


class EmailHandler:
    """The handler is the bound method ``send``: an async function of the payload that
    carries its sender (pickled with it when the task runs isolated)."""

    def __init__(self, sender: EmailSender | None) -> None:
        self.sender = sender

    async def send(self, payload: JSON) -> JSON:
        try:
            email = Email.from_payload(payload)
        except ValueError as exc:  # stored before this check existed
            raise PermanentTaskError(f"invalid email payload: {exc}") from None
        if self.sender is None:
            raise PermanentTaskError(
                "no EmailSender is wired: build the task types with "
                "register_builtins(task_types, mail=...)"
            )
        return (await self.sender.send(email)).as_result()


def email_task_type(sender: EmailSender | None) -> TaskType:
    return TaskType(
        "email",
        EmailHandler(sender).send,
        EMAIL_TIMEOUT_SECONDS,
        validate_email,
        input_schema=EMAIL_INPUT,
        output_schema=EMAIL_OUTPUT,
    )
