"""The ``email`` built-in task type: sends the email its payload describes
(domain/email.py) through an ``EmailSender`` (an SMTP server, Amazon SES, or the local
mailbox file), and returns ``{message_id, accepted: [...]}``.

A refusal for good (an SMTP 5xx) fails the task at once with the server's reply; a
temporary failure (a 4xx, a connection error) is a failed attempt, retried with backoff.
"""

from __future__ import annotations

from domain.email import Email
from domain.errors import PermanentTaskError
from domain.models import JSON
from domain.ports import EmailSender
from domain.task_types import TaskType

EMAIL_TIMEOUT_SECONDS = 60.0


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
    return TaskType("email", EmailHandler(sender).send, EMAIL_TIMEOUT_SECONDS, validate_email)
