"""Logging in to the dashboard with an API key, and out.

The key is POSTed once (never put in a URL), checked against the configured digests
exactly as the API checks it, and exchanged for a new session (a new id: a session
set before login is never promoted). Failed attempts are throttled per client
address with the API's own buckets, so the form is no faster way to guess keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from entrypoints.http.auth import matching_digest
from entrypoints.http.client_address import ClientAddress
from entrypoints.http.throttle import TokenBuckets
from entrypoints.http.ui.csrf import checked_form, session_of, text_field
from entrypoints.http.ui.render import Renderer
from entrypoints.http.ui.security import end_session, start_session
from entrypoints.http.ui.session import SessionCodec


class Login:
    def __init__(
        self,
        codec: SessionCodec,
        renderer: Renderer,
        digests: Collection[bytes],
        failures: TokenBuckets | None,
        client_address: ClientAddress,
        now: Callable[[], float],
    ) -> None:
        self.codec = codec
        self.renderer = renderer
        self.digests = tuple(digests)
        self.failures = failures
        self.client_address = client_address
        self.now = now

    async def form(self, request: Request) -> Response:
        session = session_of(request)
        if session is not None and session.caller is not None:
            return RedirectResponse("/ui", status_code=303)
        if session is None:  # the login form's CSRF token needs a session
            start_session(request.scope, self.codec.new(None, self.now()))
        return self.renderer.page(request, "login.html", error=None)

    async def submit(self, request: Request) -> Response:
        form = await checked_form(request, self.codec)
        address = self.client_address.of(request.scope)
        if self.failures is not None:
            wait = self.failures.wait(address)
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                message = f"Too many failed logins from this address: wait {seconds} s."
                return self._refused(request, message, 429, {"Retry-After": str(seconds)})
        key = text_field(form, "key")
        matched = matching_digest(key, self.digests) if key else None
        if matched is None:
            if self.failures is not None:
                self.failures.take(address)
            return self._refused(request, "That API key is not valid.", 403)
        start_session(request.scope, self.codec.new(matched.hex(), self.now()))
        return RedirectResponse("/ui", status_code=303)

    async def logout(self, request: Request) -> Response:
        await checked_form(request, self.codec)
        end_session(request.scope)
        target = "/ui/login" if self.digests else "/ui"
        return RedirectResponse(target + "?notice=logged-out", status_code=303)

    def _refused(
        self, request: Request, error: str, status: int, headers: dict[str, str] | None = None
    ) -> Response:
        response = self.renderer.page(request, "login.html", status_code=status, error=error)
        response.headers.update(headers or {})
        return response
