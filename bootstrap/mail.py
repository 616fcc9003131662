"""Where the ``email`` task type sends (``Settings.mail_backend``), and the processes
that stop handlers (the stoppable handler pool and the CPU pool)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from adapters.email import (
    MailboxEmailSender,
    SesEmailSender,
    SmtpEmailSender,
    SmtpSettings,
    StartTls,
)
from adapters.stoppable_pool import PooledHandlerSandbox, StoppableProcessPool
from bootstrap.settings import Settings
from domain.ports import EmailSender

MAILBOX_FILE = "mailbox"


def mailbox_path(settings: Settings) -> str:
    """``TASKQ_MAILBOX_PATH``; else ``mailbox`` beside the SQLite file (the data
    directory; the aws backend keeps it there too), or in a directory of its own under
    the system's temporary directory for the memory backend (made on the first email)."""
    if settings.mailbox_path:
        return settings.mailbox_path
    if settings.backend == "memory":
        directory = os.path.join(tempfile.gettempdir(), f"taskq-{uuid.uuid4().hex[:12]}")
        return os.path.join(directory, MAILBOX_FILE)
    return os.path.join(os.path.dirname(settings.sqlite_path) or ".", MAILBOX_FILE)


def smtp_settings(settings: Settings) -> SmtpSettings:
    assert settings.smtp_host is not None  # the settings refuse smtp without a host
    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=StartTls.from_setting(settings.smtp_starttls),
        implicit_tls=settings.smtp_tls,
        sender=settings.email_from,
    )


def open_email_sender(settings: Settings, ses_client: Any) -> Iterator[EmailSender]:
    """The sender ``settings.mail_backend`` names (``ses_client`` is a provider called
    only for SES); a mailbox is closed on shutdown."""
    backend = settings.mail_backend
    if backend == "smtp":
        yield SmtpEmailSender(smtp_settings(settings))
    elif backend == "ses":
        yield SesEmailSender(ses_client(), sender=settings.email_from)
    else:
        mailbox = MailboxEmailSender(mailbox_path(settings), sender=settings.email_from)
        try:
            yield mailbox
        finally:
            mailbox.close()


def open_pool(size: int, preload: list[str], name: str) -> Iterator[StoppableProcessPool]:
    """A pool whose processes start on first use and are killed on shutdown."""
    pool = StoppableProcessPool(size, preload=preload, name=name)
    try:
        yield pool
    finally:
        pool.kill_all()


def stoppable_handlers(pool: StoppableProcessPool) -> PooledHandlerSandbox:
    return PooledHandlerSandbox(pool)
