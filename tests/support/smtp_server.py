"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the email tests, in the test's own
event loop, that keeps what it received and can be told to refuse.

``refuse_rcpt`` maps a recipient to the reply its RCPT gets (``"550 5.1.1 no such
user"``); ``defer_data`` is a list of replies the next DATA commands get, in order,
before the server accepts again (``["451 4.3.0 try later"]``). A self-signed
certificate for ``localhost``/127.0.0.1 serves STARTTLS and implicit TLS.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    """The session was encrypted (STARTTLS or implicit TLS)."""


@dataclass
class Handler:
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    defer_data: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    data_commands: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_commands += 1
        if self.defer_data:
            return self.defer_data.pop(0)
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(
                sender=str(envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                message=message,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    port: int
    handler: Handler
    client_tls: ssl.SSLContext
    """Trusts the server's certificate: what the sender is given."""


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for localhost and
    127.0.0.1, and a client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


@asynccontextmanager
async def smtp_server(
    directory: Path, *, starttls: bool = False, implicit_tls: bool = False
) -> AsyncIterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 (a free port) that offers STARTTLS with
    ``starttls``, or speaks TLS from the first byte with ``implicit_tls``."""
    server_tls, client_tls = self_signed(directory)
    handler = Handler()

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname="localhost",
            tls_context=server_tls if starttls else None,
            require_starttls=starttls,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        protocol, "127.0.0.1", 0, ssl=server_tls if implicit_tls else None
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield SmtpServer(port, handler, client_tls)
    finally:
        server.close()
        await server.wait_closed()
