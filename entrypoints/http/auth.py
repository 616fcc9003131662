"""API keys and per-key rate limits, as ASGI middleware.

A key arrives as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Only sha256
digests of the configured keys are kept, and the presented key's digest is compared
with every one of them with ``hmac.compare_digest``, so neither the comparison nor the
number of keys checked depends on how much of a key matched. Keys are never logged.

Failed authentication is throttled per client address (see ``client_address`` for
how a load balancer's ``X-Forwarded-For`` is believed), so keys cannot be guessed at
full speed.

With no key configured there is no authentication (the runtime then refuses to listen
on anything but loopback unless told it is insecure on purpose).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
from collections.abc import Collection
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bootstrap.settings import Settings
from entrypoints.http.client_address import ClientAddress
from entrypoints.http.errors import error_response
from entrypoints.http.throttle import TokenBuckets

OPEN_PATHS = frozenset({"/health", "/ready"})
"""Answered without a key: load balancers and orchestrators probe them."""
CALLER = "taskq.caller"
"""Scope key: the sha256 hex digest of the caller's API key, or "anon" without auth."""
ANONYMOUS = "anon"

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class AuthConfigError(ValueError):
    """The key file cannot be read or holds a line that is not a sha256 hex digest."""


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def load_key_digests(settings: Settings) -> frozenset[bytes]:
    """The sha256 digests of every configured key (``TASKQ_API_KEYS`` and the file)."""
    digests = {digest(key.strip()) for key in settings.api_keys.split(",") if key.strip()}
    if settings.api_key_file:
        path = Path(settings.api_key_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthConfigError(f"cannot read the API key file {path}: {exc}") from None
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if not _HEX_DIGEST.fullmatch(text):
                raise AuthConfigError(
                    f"{path} line {number}: not a sha256 hex digest (64 hex characters)"
                )
            digests.add(bytes.fromhex(text))
    return frozenset(digests)


def matching_digest(key: str, digests: Collection[bytes]) -> bytes | None:
    """The digest of ``key`` if it is one of ``digests``, else None. Every digest is
    compared, whatever matched, in constant time (the dashboard's login uses it too)."""
    presented = digest(key)
    matched = False
    for known in digests:
        matched |= hmac.compare_digest(presented, known)
    return presented if matched else None


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def presented_key(headers: Headers) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    key = headers.get("x-api-key")
    if key is not None and key.strip():
        return key.strip()
    return None


class AuthMiddleware:
    """Keys, then the per-key rate limit.

    ``failures``, when given, throttles failed authentication (401 and 403) per client
    address: past its burst an address gets 429 with ``Retry-After`` and its keys are
    not even compared, so keys cannot be guessed at full speed.
    """

    def __init__(
        self,
        app: ASGIApp,
        digests: Collection[bytes],
        limiter: TokenBuckets | None = None,
        open_paths: Collection[str] = OPEN_PATHS,
        failures: TokenBuckets | None = None,
        client_address: ClientAddress | None = None,
    ) -> None:
        self.app = app
        self.digests = tuple(digests)
        self.limiter = limiter
        self.open_paths = frozenset(open_paths)
        self.failures = failures
        self.client_address = client_address or ClientAddress()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        refusal = self.admit(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def admit(self, scope: Scope) -> Response | None:
        """Set the caller in ``scope`` (``CALLER``) and return None, or return the
        response that refuses the request (401, 403, 429). The fast path of
        ``fast_path.py`` asks this too, so both paths admit alike."""
        caller = ANONYMOUS
        if self.digests:
            outcome = self._authenticate(scope)
            if not isinstance(outcome, str):
                return outcome
            caller = outcome
        if self.limiter is not None:
            wait = self.limiter.take(caller)
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                return error_response(
                    429,
                    f"rate limit of {self.limiter.rate:g} requests a second (burst "
                    f"{self.limiter.burst}) exceeded for this API key; retry in {seconds} s",
                    headers={"Retry-After": str(seconds)},
                )
        scope[CALLER] = caller
        return None

    def _authenticate(self, scope: Scope) -> str | Response:
        """The caller (the digest of its key), or the response that refuses it."""
        address = None
        if self.failures is not None:
            address = self.client_address.of(scope)
            wait = self.failures.wait(address)
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                return error_response(
                    429,
                    f"too many failed authentications from this address; retry in {seconds} s",
                    headers={"Retry-After": str(seconds)},
                )
        key = presented_key(Headers(scope=scope))
        if key is None:
            refusal = error_response(
                401,
                "authentication required: send the API key as "
                "'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        else:
            presented = matching_digest(key, self.digests)
            if presented is not None:
                return presented.hex()
            refusal = error_response(403, "the API key is not valid")
        if self.failures is not None and address is not None:
            self.failures.take(address)
        return refusal
