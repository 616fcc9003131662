"""What an ``email`` payload means (domain/email.py), where emails go by settings, and
the local mailbox sender."""

from __future__ import annotations

import mailbox
import pickle
from pathlib import Path
from typing import Any

import pytest

from adapters.email import MailboxEmailSender, SmtpEmailSender
from adapters.handlers.email import EmailHandler
from bootstrap.container import build_container
from bootstrap.mail import mailbox_path
from bootstrap.settings import Settings
from domain.email import DEFAULT_SUBJECT, DEFAULT_TEXT, Email
from domain.errors import PermanentTaskError


def test_an_address_alone_gets_the_default_subject_and_text() -> None:
    assert Email.from_payload("ann@example.com") == Email(
        to=("ann@example.com",), subject=DEFAULT_SUBJECT, text=DEFAULT_TEXT
    )


def test_an_object_names_its_recipients_subject_text_html_and_reply_to() -> None:
    email = Email.from_payload(
        {
            "to": ["ann@example.com", "bob@example.com", "ann@example.com"],
            "subject": "Hi",
            "text": "plain",
            "html": "<p>rich</p>",
            "reply_to": "help@example.com",
            "note": "ignored, as the original service's clients may send it",
        }
    )
    assert email == Email(
        to=("ann@example.com", "bob@example.com"),
        subject="Hi",
        text="plain",
        html="<p>rich</p>",
        reply_to="help@example.com",
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "missing field 'to'"),
        ({"to": []}, "non-empty list"),
        ({"to": ["ann@example.com", "nope"]}, "to[1] is not an email address"),
        ({"to": "a@b.co", "subject": "two\nlines"}, "field 'subject' must be one line"),
        ({"to": "a@b.co", "subject": "x" * 999}, "at most 998 characters"),
        ({"to": "a@b.co", "text": 5}, "field 'text' must be a string"),
        ({"to": "a@b.co", "reply_to": "me"}, "reply_to is not an email address"),
        ({"to": [f"u{n}@example.com" for n in range(51)]}, "at most 50 are accepted"),
        ("a@b.co\r\nBcc: x@y.co", "not an email address"),
        (["a@b.co"], "expected an email address"),
    ],
)
def test_a_bad_payload_is_refused_naming_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Email.from_payload(payload)


async def test_the_mailbox_sender_delivers_to_an_mbox_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "mailbox"
    sender = MailboxEmailSender(str(path), sender="robot@taskq.test")
    first = await sender.send(Email(to=("ann@example.com",), subject="One"))
    await sender.send(Email(to=("bob@example.com", "cy@example.com"), subject="Two"))
    sender.close()

    box = mailbox.mbox(str(path))
    try:
        got = [(m["To"], m["Subject"], m["From"], m["Message-ID"]) for m in box]
    finally:
        box.close()
    assert got[0] == ("ann@example.com", "One", "robot@taskq.test", first.message_id)
    assert got[1][:2] == ("bob@example.com, cy@example.com", "Two")
    assert first.accepted == ("ann@example.com",)


async def test_an_email_handler_on_the_mailbox_can_run_isolated(tmp_path: Path) -> None:
    """An isolated attempt (after a lost one) sends the handler to a child process."""
    handler = EmailHandler(MailboxEmailSender(str(tmp_path / "mailbox"))).send
    copy = pickle.loads(pickle.dumps(handler))

    result = await copy("ann@example.com")
    copy.__self__.sender.close()

    assert isinstance(result, dict) and result["accepted"] == ["ann@example.com"]


async def test_an_email_task_with_no_sender_wired_fails_saying_so() -> None:
    with pytest.raises(PermanentTaskError, match="no EmailSender is wired"):
        await EmailHandler(None).send("ann@example.com")


def test_the_mailbox_is_the_default_beside_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(backend="sqlite", sqlite_path=str(tmp_path / "d" / "taskq.db"))
    assert settings.mail_backend == "mailbox"
    assert mailbox_path(settings) == str(tmp_path / "d" / "mailbox")
    memory = mailbox_path(Settings(backend="memory"))
    assert memory.endswith("/mailbox") and not Path(memory).parent.exists()  # made on use
    assert mailbox_path(Settings(mailbox_path="/srv/mail/box")) == "/srv/mail/box"


def test_an_smtp_host_sends_through_smtp() -> None:
    container = build_container(Settings(backend="memory", smtp_host="mail.example.com"))
    assert isinstance(container.mail(), SmtpEmailSender)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"email_backend": "smtp"}, "needs TASKQ_SMTP_HOST"),
        ({"smtp_tls": True, "smtp_starttls": True}, "TASKQ_SMTP_TLS=true already encrypts"),
        ({"email_from": "nobody"}, "should match pattern"),
    ],
)
def test_bad_mail_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**settings)
