"""The dashboard's ASGI guard: every response gets the security headers, and the
session cookie is read before the handler and (re)written after it.

Handlers find the session in ``scope[SESSION]`` and replace it (login, logout) by
calling ``start_session`` / ``end_session``; this middleware writes the cookie.
Without API keys every visitor gets an anonymous session at once (the API is open
then too, and the runtime serves it on loopback only unless told it is insecure):
the session still carries the CSRF token every form needs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.auth import ANONYMOUS
from entrypoints.http.ui.session import (
    COOKIE,
    COOKIE_PATH,
    SESSION_MAX_AGE_SECONDS,
    Session,
    SessionCodec,
)

SESSION = "taskq.ui.session"
"""Scope key: the request's valid ``Session``, or None."""
_NEW_COOKIE = "taskq.ui.new_cookie"
"""Scope key: the session to write (a ``Session``), or ``_CLEARED`` to delete it."""
_CLEARED = object()

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",  # the app's own file: no inline script, no eval
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def start_session(scope: Scope, session: Session) -> None:
    """Make ``session`` the request's, and send its cookie with the response."""
    scope[SESSION] = session
    scope[_NEW_COOKIE] = session


def end_session(scope: Scope) -> None:
    scope[SESSION] = None
    scope[_NEW_COOKIE] = _CLEARED


class SessionGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        codec: SessionCodec,
        digests: Collection[bytes],
        now: Callable[[], float],
    ) -> None:
        self.app = app
        self.codec = codec
        self.callers = frozenset(d.hex() for d in digests)
        self.now = now

    def valid(self, session: Session | None) -> Session | None:
        """``session`` if its caller may still use the dashboard: a key removed from
        the configuration ends its sessions; an anonymous one is void once keys exist."""
        if session is None or session.caller is None:
            return session
        if self.callers:
            return session if session.caller in self.callers else None
        return session if session.caller == ANONYMOUS else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = self.now()
        cookie = HTTPConnection(scope).cookies.get(COOKIE)
        session = self.valid(self.codec.decode(cookie, now))
        scope[SESSION] = session
        if session is None and not self.callers:
            start_session(scope, self.codec.new(ANONYMOUS, now))
        secure = scope.get("scheme") == "https"

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                new = scope.get(_NEW_COOKIE)
                if new is not None:
                    headers.append("Set-Cookie", self._cookie(new, secure))
            await send(message)

        await self.app(scope, receive, guarded_send)

    def _cookie(self, session: object, secure: bool) -> str:
        jar: SimpleCookie = SimpleCookie()
        if isinstance(session, Session):
            jar[COOKIE] = self.codec.encode(session)
            jar[COOKIE]["max-age"] = SESSION_MAX_AGE_SECONDS
        else:
            jar[COOKIE] = ""
            jar[COOKIE]["max-age"] = 0
        jar[COOKIE]["path"] = COOKIE_PATH
        jar[COOKIE]["httponly"] = True
        jar[COOKIE]["samesite"] = "Strict"
        if secure:
            jar[COOKIE]["secure"] = True
        return jar.output(header="").strip()
