"""The ``email`` task type on a real SMTP server (aiosmtpd on 127.0.0.1): what the
server receives, its refusals and deferrals through the worker, and the TLS rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.email import SmtpEmailSender, SmtpSettings, StartTls
from adapters.email.smtp import is_loopback
from adapters.handlers.builtin import register_builtins
from domain.email import Email, EmailNotSentYet, EmailRejected
from domain.errors import PermanentTaskError
from domain.models import TaskStatus
from domain.processing import Outcome
from tests.support.processes import free_port
from tests.support.smtp_server import SmtpServer, smtp_server
from tests.support.worker_rig import WorkerRig


def sender(server: SmtpServer, **options: object) -> SmtpEmailSender:
    settings = SmtpSettings(
        host="127.0.0.1",
        port=server.port,
        sender="robot@taskq.test",
        tls_context=server.client_tls,
        timeout_seconds=10,
    )
    return SmtpEmailSender(settings.__class__(**{**settings.__dict__, **options}))


def email_rig(mail: SmtpEmailSender) -> WorkerRig:
    rig = WorkerRig()
    register_builtins(rig.task_types, mail=mail)
    return rig


async def test_the_server_receives_the_message_its_headers_body_and_recipients(
    tmp_path: Path,
) -> None:
    async with smtp_server(tmp_path) as server:
        rig = email_rig(sender(server))
        payload = {
            "to": ["ann@example.com", "bob@example.com"],
            "subject": "Your report",
            "text": "It is ready.",
            "html": "<p>It is <b>ready</b>.</p>",
            "reply_to": "help@example.com",
        }
        task = await rig.submit("email", payload)

        assert await rig.process_visible() == [Outcome.COMPLETED]

    [got] = server.handler.received
    assert got.sender == "robot@taskq.test"
    assert got.recipients == ["ann@example.com", "bob@example.com"]
    message = got.message
    assert message["To"] == "ann@example.com, bob@example.com"
    assert message["From"] == "robot@taskq.test"
    assert message["Subject"] == "Your report"
    assert message["Reply-To"] == "help@example.com"
    assert message["Date"]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and text.get_content().strip() == "It is ready."
    assert html is not None and "<b>ready</b>" in html.get_content()
    done = await rig.service.get(task.id)
    assert done.result == {
        "message_id": message["Message-ID"],
        "accepted": ["ann@example.com", "bob@example.com"],
    }
    assert message["Message-ID"].endswith("@taskq.test>")


async def test_an_address_alone_gets_the_default_subject_and_body(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        rig = email_rig(sender(server))
        await rig.submit("email", "user@example.com")
        assert await rig.process_visible() == [Outcome.COMPLETED]

    [got] = server.handler.received
    assert got.recipients == ["user@example.com"]
    assert got.message["Subject"] == "Notification from taskq"
    body = got.message.get_body(("plain",))
    assert body is not None and "notification sent by taskq" in body.get_content()


async def test_a_550_reply_fails_the_task_after_one_attempt_with_the_reply(
    tmp_path: Path,
) -> None:
    async with smtp_server(tmp_path) as server:
        server.handler.refuse_rcpt["nobody@example.com"] = (
            "550 5.1.1 <nobody@example.com>: no such user"
        )
        rig = email_rig(sender(server))
        task = await rig.submit("email", "nobody@example.com", max_attempts=3)

        assert await rig.process_visible() == [Outcome.FAILED]

    failed = await rig.service.get(task.id)
    assert failed.status is TaskStatus.FAILED
    assert failed.attempts == 1
    assert failed.error is not None
    assert "550 5.1.1 <nobody@example.com>: no such user" in failed.error
    assert server.handler.received == []


async def test_a_451_reply_is_retried_with_backoff_and_then_succeeds(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        server.handler.defer_data.append("451 4.3.0 mailbox busy, try again later")
        rig = email_rig(sender(server))
        task = await rig.submit("email", "user@example.com")

        assert await rig.process_visible() == [Outcome.RETRY_SCHEDULED]
        retried = await rig.service.get(task.id)
        assert retried.status is TaskStatus.PENDING
        assert retried.error is not None and "451 4.3.0 mailbox busy" in retried.error
        assert await rig.process_visible() == []  # the backoff has not passed

        await rig.clock.advance(2)
        assert await rig.process_visible() == [Outcome.COMPLETED]

    done = await rig.service.get(task.id)
    assert done.status is TaskStatus.COMPLETED and done.attempts == 2
    assert server.handler.data_commands == 2
    [got] = server.handler.received
    assert got.recipients == ["user@example.com"]


async def test_some_recipients_refused_the_others_get_it_and_the_result_says_which(
    tmp_path: Path,
) -> None:
    async with smtp_server(tmp_path) as server:
        server.handler.refuse_rcpt["gone@example.com"] = "550 5.1.1 gone"
        email = Email(to=("ann@example.com", "gone@example.com"))
        sent = await sender(server).send(email)

    assert sent.accepted == ("ann@example.com",)
    assert sent.rejected == {"gone@example.com": "550 5.1.1 gone"}
    assert server.handler.received[0].recipients == ["ann@example.com"]


async def test_every_recipient_refused_temporarily_is_retried(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        server.handler.refuse_rcpt["ann@example.com"] = "450 4.2.1 try later"
        with pytest.raises(EmailNotSentYet, match="450 4.2.1 try later"):
            await sender(server).send(Email(to=("ann@example.com",)))


async def test_a_server_that_is_not_there_is_a_retry_not_a_failure() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), timeout_seconds=5)
    with pytest.raises(EmailNotSentYet, match=r"127\.0\.0\.1:\d+"):
        await SmtpEmailSender(settings).send(Email(to=("ann@example.com",)))


async def test_starttls_is_used_whenever_the_server_offers_it(tmp_path: Path) -> None:
    async with smtp_server(tmp_path, starttls=True) as server:
        await sender(server).send(Email(to=("ann@example.com",)))

    [got] = server.handler.received
    assert got.tls


async def test_a_loopback_server_without_starttls_is_used_in_plain_text(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        await sender(server).send(Email(to=("ann@example.com",)))

    [got] = server.handler.received
    assert not got.tls


async def test_starttls_required_refuses_a_server_that_does_not_offer_it(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        with pytest.raises(PermanentTaskError, match="does not offer STARTTLS"):
            await sender(server, starttls=StartTls.REQUIRED).send(Email(to=("a@example.com",)))

    assert server.handler.received == []


async def test_implicit_tls_speaks_tls_from_the_first_byte(tmp_path: Path) -> None:
    async with smtp_server(tmp_path, implicit_tls=True) as server:
        await sender(server, implicit_tls=True).send(Email(to=("ann@example.com",)))

    [got] = server.handler.received
    assert got.tls


def test_implicit_tls_defaults_to_port_465_and_plain_smtp_to_25() -> None:
    assert SmtpSettings(host="mail.example.com").effective_port == 25
    assert SmtpSettings(host="mail.example.com", implicit_tls=True).effective_port == 465


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("192.0.2.7", False),
        ("2001:db8::1", False),
        ("", False),
        ("localhost", False),  # a name is not an address: the peer's address decides
    ],
)
def test_plain_text_is_allowed_only_when_the_peer_address_is_loopback(
    address: str, loopback: bool
) -> None:
    assert is_loopback(address) is loopback


async def test_a_rejection_names_the_server_reply() -> None:
    rejected = EmailRejected("550 5.7.1 relaying denied")
    assert str(rejected) == "the mail server refused the message: 550 5.7.1 relaying denied"
