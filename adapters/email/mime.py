"""An ``Email`` as the MIME message every backend sends: headers, a text part, and an
HTML alternative when the email has one."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from domain.email import Email


def mime_message(email: Email, sender: str) -> EmailMessage:
    """The message to send from ``sender``, with a new ``Message-ID`` (in the sender's
    domain) and the date."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(email.to)
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    if email.reply_to is not None:
        message["Reply-To"] = email.reply_to
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message
