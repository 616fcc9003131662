"""The dashboard's session: a signed, expiring cookie, and the CSRF token bound to it.

The cookie holds a random session id, who logged in (the sha256 digest of their API
key, ``anon`` without keys, nothing before login) and when it expires, signed with
HMAC-SHA256 under ``TASKQ_SESSION_SECRET``. It is ``HttpOnly`` (no script reads it)
and ``SameSite=Strict`` (no other site's page sends it). The key itself is never
stored: not in the cookie, a URL or a page.

Each form carries a CSRF token derived from the session id with the same secret; a
POST whose token does not match its session's is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "taskq_session"
COOKIE_PATH = "/ui"
SESSION_MAX_AGE_SECONDS = 8 * 3600
"""A working day: then the dashboard asks for the key again."""
MAX_COOKIE_CHARS = 1024
"""A session cookie is ~200 characters; anything much longer is not one of ours."""


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    caller: str | None
    """The sha256 hex digest of the key logged in with, ``anon`` without keys, or None
    before login (the login form's CSRF token needs a session too)."""
    expires: int
    """Unix time, seconds."""


class SessionCodec:
    """Signs sessions into cookie values and reads them back."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._secret = secret

    def new(self, caller: str | None, now: float) -> Session:
        return Session(secrets.token_hex(16), caller, int(now) + SESSION_MAX_AGE_SECONDS)

    def encode(self, session: Session) -> str:
        body = json.dumps(
            {"sid": session.session_id, "who": session.caller, "exp": session.expires},
            separators=(",", ":"),
        ).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def decode(self, value: str | None, now: float) -> Session | None:
        """The session in ``value`` if its signature holds and it has not expired."""
        if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not same(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(data["sid"]), data["who"], int(data["exp"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        if session.caller is not None and not isinstance(session.caller, str):
            return None
        return session if session.expires > now else None

    def csrf_token(self, session: Session) -> str:
        return self._sign("csrf:" + session.session_id)

    def csrf_matches(self, session: Session, token: str) -> bool:
        return same(token, self.csrf_token(session))

    def _sign(self, text: str) -> str:
        mac = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def same(presented: str, expected: str) -> bool:
    """Constant-time equality for any text a client sends (``compare_digest`` refuses
    non-ASCII ``str``)."""
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def secret_from(setting: str) -> bytes:
    """``TASKQ_SESSION_SECRET``'s bytes, or a random secret for this process only."""
    return setting.encode() if setting else secrets.token_bytes(32)
