"""An email to send: what the ``email`` task type's payload means, and what sending
it came to.

The payload is an address (existing clients: sent with ``DEFAULT_SUBJECT`` and
``DEFAULT_TEXT``) or an object ``{to, subject?, text?, html?, reply_to?}`` whose ``to``
is an address or a list of them. Other fields are ignored: the original service's
clients may send them, and they keep working. An ``EmailSender`` (domain/ports.py) sends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from domain.errors import PermanentTaskError
from domain.limits import (
    MAX_EMAIL_ADDRESS_LENGTH,
    MAX_EMAIL_RECIPIENTS,
    MAX_EMAIL_SUBJECT_CHARS,
)
from domain.models import JSON

DEFAULT_SUBJECT = "Notification from taskq"
DEFAULT_TEXT = "This is a notification sent by taskq."

ADDRESS_PATTERN = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"
_ADDRESS = re.compile(ADDRESS_PATTERN)


@dataclass(frozen=True)
class Email:
    """One message to one or more recipients. ``html``, when set, is sent as an
    alternative to ``text``."""

    to: tuple[str, ...]
    subject: str = DEFAULT_SUBJECT
    text: str = DEFAULT_TEXT
    html: str | None = None
    reply_to: str | None = None

    @classmethod
    def from_payload(cls, payload: JSON) -> Email:
        """The email ``payload`` asks for; ``ValueError`` naming the field that is wrong."""
        if isinstance(payload, str):
            return cls(to=(_address(payload, "payload"),))
        if not isinstance(payload, dict):
            raise ValueError("expected an email address, or an object with 'to' set to one")
        if "to" not in payload:
            raise ValueError("missing field 'to'")
        subject = _text(payload, "subject", DEFAULT_SUBJECT)
        if len(subject) > MAX_EMAIL_SUBJECT_CHARS or "\r" in subject or "\n" in subject:
            raise ValueError(
                f"field 'subject' must be one line of at most {MAX_EMAIL_SUBJECT_CHARS} characters"
            )
        reply_to = payload.get("reply_to")
        return cls(
            to=_recipients(payload["to"]),
            subject=subject,
            text=_text(payload, "text", DEFAULT_TEXT),
            html=_text(payload, "html", None) if "html" in payload else None,
            reply_to=None if reply_to is None else _address(reply_to, "reply_to"),
        )


@dataclass(frozen=True)
class SentEmail:
    """What the mail service accepted: the message's ``Message-ID`` and the recipients
    it took; ``rejected`` maps a recipient it refused to its reply (when it took some)."""

    message_id: str
    accepted: tuple[str, ...]
    rejected: dict[str, str] = field(default_factory=dict)

    def as_result(self) -> JSON:
        result: dict[str, JSON] = {"message_id": self.message_id, "accepted": list(self.accepted)}
        if self.rejected:
            result["rejected"] = dict(self.rejected)
        return result


class EmailRejected(PermanentTaskError):
    """The mail service refused the message for good (an SMTP 5xx reply such as an
    unknown recipient, an SES ``MessageRejected``): sending it again would not help.
    ``reply`` is the service's answer."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        super().__init__(f"the mail server refused the message: {reply}")


class EmailNotSentYet(Exception):
    """The message could not be sent now (an SMTP 4xx reply, a connection error, SES
    throttling): an ordinary failed attempt, retried with backoff. ``reply`` is the
    service's answer or the connection error."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        super().__init__(f"the message could not be sent now, will retry: {reply}")


def _text(payload: dict[str, Any], name: str, default: str | None) -> Any:
    value = payload.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string")
    return value


def _recipients(value: JSON) -> tuple[str, ...]:
    addresses = [value] if isinstance(value, str) else value
    if not isinstance(addresses, list) or not addresses:
        raise ValueError("field 'to' must be an address or a non-empty list of addresses")
    if len(addresses) > MAX_EMAIL_RECIPIENTS:
        raise ValueError(
            f"field 'to' lists {len(addresses)} addresses; at most "
            f"{MAX_EMAIL_RECIPIENTS} are accepted"
        )
    where = "to" if isinstance(value, str) else "to[{}]"
    return tuple(dict.fromkeys(_address(a, where.format(n)) for n, a in enumerate(addresses)))


def _address(value: JSON, where: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(f"{where} is not an email address ({value!r})"[:300])
    if len(value) > MAX_EMAIL_ADDRESS_LENGTH:
        raise ValueError(f"{where} is longer than {MAX_EMAIL_ADDRESS_LENGTH} characters")
    return value
