"""``EmailSender`` on an SMTP server, with aiosmtplib.

Security: with ``TASKQ_SMTP_TLS=true`` the connection is TLS from the start (port 465).
Otherwise STARTTLS is used whenever the server offers it; a server that does not offer
it is used in plain text only when it is on loopback (the connection's peer address) or
``TASKQ_SMTP_STARTTLS=false``; ``TASKQ_SMTP_STARTTLS=true`` requires it even on loopback.
A password is never sent in plain text off loopback, since that case is refused.

Replies: a 5xx (an unknown recipient, a refused message) is ``EmailRejected``, a
permanent failure with the server's reply; a 4xx, a connection error or a timeout is
``EmailNotSentYet``, retried with backoff by the engine.
"""

from __future__ import annotations

import enum
import ipaddress
import ssl
from dataclasses import dataclass
from typing import Final

import aiosmtplib

from adapters.email.mime import mime_message
from domain.email import Email, EmailNotSentYet, EmailRejected, SentEmail
from domain.errors import PermanentTaskError

SMTP_PORT: Final = 25
SMTPS_PORT: Final = 465
"""The port of SMTP over implicit TLS (RFC 8314)."""
DEFAULT_TIMEOUT_SECONDS: Final = 30.0
"""Our choice: how long one SMTP command (the connection included) may take."""


class StartTls(enum.Enum):
    WHEN_OFFERED = "when_offered"
    """Unset: upgrade when offered; plain text without it only on loopback."""
    REQUIRED = "required"
    """``TASKQ_SMTP_STARTTLS=true``: never plain text, even on loopback."""
    NEVER = "never"
    """``TASKQ_SMTP_STARTTLS=false``: plain text, whatever the server offers."""

    @classmethod
    def from_setting(cls, value: bool | None) -> StartTls:
        return {None: cls.WHEN_OFFERED, True: cls.REQUIRED, False: cls.NEVER}[value]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int | None = None
    """None: 465 with ``implicit_tls``, else 25."""
    username: str | None = None
    password: str | None = None
    starttls: StartTls = StartTls.WHEN_OFFERED
    implicit_tls: bool = False
    sender: str = "taskq@localhost"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    tls_context: ssl.SSLContext | None = None
    """The certificates to trust (None: the system's)."""

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return SMTPS_PORT if self.implicit_tls else SMTP_PORT


class SmtpEmailSender:
    """One connection per message: a task is one email, and a worker may sit idle for
    hours, longer than a server keeps a connection open."""

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.implicit_tls and settings.starttls is StartTls.REQUIRED:
            raise ValueError("TASKQ_SMTP_TLS=true already encrypts: unset TASKQ_SMTP_STARTTLS")
        self._settings = settings

    async def send(self, email: Email) -> SentEmail:
        settings = self._settings
        message = mime_message(email, settings.sender)
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            use_tls=settings.implicit_tls,
            start_tls=False,
            tls_context=settings.tls_context,
            timeout=settings.timeout_seconds,
        )
        try:
            await client.connect()
            await self._secure(client)
            if settings.username:
                await client.login(settings.username, settings.password or "")
            refused, _ = await client.send_message(
                message, sender=settings.sender, recipients=list(email.to)
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _all_refused(exc) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, f"{exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:  # connection, timeout
            raise EmailNotSentYet(f"{settings.host}:{settings.effective_port}: {exc}") from None
        finally:
            client.close()
        rejected = {to: f"{reply.code} {reply.message}" for to, reply in refused.items()}
        return SentEmail(
            message_id=str(message["Message-ID"]),
            accepted=tuple(to for to in email.to if to not in refused),
            rejected=rejected,
        )

    async def _secure(self, client: aiosmtplib.SMTP) -> None:
        """STARTTLS as the settings and the server's offer say (see the module's doc)."""
        settings = self._settings
        if settings.implicit_tls or settings.starttls is StartTls.NEVER:
            return
        await client.ehlo()
        if client.supports_extension("starttls"):
            await client.starttls()
            return
        peer = client.get_transport_info("peername")
        if settings.starttls is StartTls.WHEN_OFFERED and is_loopback(peer[0] if peer else ""):
            return
        raise PermanentTaskError(
            f"the SMTP server {settings.host} does not offer STARTTLS and "
            + (
                "TASKQ_SMTP_STARTTLS=true requires it"
                if settings.starttls is StartTls.REQUIRED
                else "is not on loopback: refusing to send in plain text "
                "(set TASKQ_SMTP_TLS=true for implicit TLS, or TASKQ_SMTP_STARTTLS=false "
                "to allow plain text)"
            )
        )


def is_loopback(address: str) -> bool:
    """True for a loopback IP address (127.0.0.0/8, ::1, an IPv4-mapped one)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


def _by_code(code: int, reply: str) -> EmailRejected | EmailNotSentYet:
    return EmailRejected(reply) if code >= 500 else EmailNotSentYet(reply)


def _all_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> EmailRejected | EmailNotSentYet:
    """Every recipient was refused: for good if every refusal is a 5xx, else (one may
    be accepted later) a retry."""
    replies = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    permanent = all(r.code >= 500 for r in exc.recipients)
    return EmailRejected(replies) if permanent else EmailNotSentYet(replies)
