"""``EmailSender`` on Amazon SES (``TASKQ_EMAIL_BACKEND=ses``): one SendRawEmail call
per message, off the event loop (boto3 blocks).

SES takes or refuses the message as a whole: every recipient is accepted, or the call
fails. ``MessageId`` in the result is the id SES gives the message (SES also writes it
into the Message-ID header it delivers, as ``<id@...amazonses.com>``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from adapters.email.mime import mime_message
from domain.email import Email, EmailNotSentYet, EmailRejected, SentEmail

PERMANENT_ERRORS: Final = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "ConfigurationSetDoesNotExist",
        "ConfigurationSetSendingPausedException",
        "AccountSendingPausedException",
        "InvalidParameterValue",
    }
)
"""SES error codes that sending the same message again cannot fix (SES API Reference,
SendRawEmail "Errors"); any other error (throttling, a 5xx, a lost connection) is
retried."""


class SesEmailSender:
    """``client`` is a boto3 ``ses`` client; ``sender`` a verified SES identity."""

    def __init__(self, client: Any, *, sender: str) -> None:
        self._client = client
        self._sender = sender

    async def send(self, email: Email) -> SentEmail:
        message = mime_message(email, self._sender)
        try:
            answer = await asyncio.to_thread(
                self._client.send_raw_email,
                Source=self._sender,
                Destinations=list(email.to),
                RawMessage={"Data": message.as_bytes()},
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            reply = f"SES {code}: {error.get('Message', '')}"
            if code in PERMANENT_ERRORS:
                raise EmailRejected(reply) from None
            raise EmailNotSentYet(reply) from None
        except BotoCoreError as exc:
            raise EmailNotSentYet(f"SES unreachable: {exc}") from None
        return SentEmail(message_id=str(answer["MessageId"]), accepted=email.to)
