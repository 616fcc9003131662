"""Where the server is and how patient the client is: every number the client works by,
named once, and the base URL read from the argument or the environment.

The client cannot import the engine (``domain.limits``), so the few server limits it
must know are restated here, each with the engine's name for it.
"""

from __future__ import annotations

import os

import httpx

from taskq.errors import InvalidBaseURL

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = "8080"
"""The server's default port (``bootstrap.settings.Settings.port``, env ``PORT``)."""
URL_VARIABLE = "TASKQ_URL"
PORT_VARIABLE = "PORT"
API_KEY_VARIABLE = "TASKQ_API_KEY"
SCHEMES = ("http", "https")
MAX_PORT = 65535

DEFAULT_TIMEOUT_SECONDS = 10.0
"""How long one request may take (connect, each read, write), beyond any server-side
wait it asks for."""
DEFAULT_MAX_RETRIES = 3
"""Retries of a request answered 503 or 429, or (when safe) lost to a connection error."""
MAX_RETRY_AFTER_SECONDS = 60.0
"""The longest the client sleeps before a retry, whatever ``Retry-After`` says."""
RETRY_BACKOFF_SECONDS = 0.2
"""The first pause before retrying without a ``Retry-After`` (doubled each retry)."""

SERVER_MAX_WAIT_SECONDS = 30
"""The longest ``GET /tasks/{id}?wait=N`` the server accepts (more is a 422)."""
DEFAULT_RESULT_TIMEOUT_SECONDS = 30.0
"""How long ``handle.result()`` waits by default."""
POLL_FIRST_PAUSE_SECONDS = 0.05
POLL_MAX_PAUSE_SECONDS = 1.0
"""Bounds of the pause between reads of a task when the server answers at once without
it being finished (a server without ``wait``): doubled from the first to the max."""

MESSAGE_SEARCH_SECONDS = 60.0
"""How long a drop or resend of one dead letter may take: on SQS the server looks for
the message among up to 1,000 (``domain.limits.MAX_DEAD_LETTER_SEARCH``)."""
REDRIVE_DEFAULT_LIMIT = 1000
"""The server's default size of a redrive (``domain.limits.DEFAULT_REDRIVE``)."""
REDRIVE_PER_SECOND = 50.0
"""The server's default pace of a redrive (``domain.limits.DEFAULT_REDRIVE_PER_SECOND``),
from which its request's timeout is reckoned."""
RESENT_PER_SECOND = 100.0
"""A conservative pace of a bulk resend of dead-letter messages (SQS: three calls per
ten messages), from which its request's timeout is reckoned."""


def normalise_url(value: str, *, source: str = "base_url") -> str:
    """The server's base URL from ``value``: ``http(s)://host[:port][/prefix]`` is kept,
    ``host:port`` and ``host`` get ``http://``, ``:port`` means 127.0.0.1.
    ``InvalidBaseURL`` names ``source`` (where the value came from) and the problem."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + (DEFAULT_HOST + text if text.startswith(":") else text)
    try:
        url = httpx.URL(text)
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        problem = f"not a URL ({exc})"
    else:
        problem = _url_problem(url, port)
    if problem:
        raise InvalidBaseURL(
            f"{source}={value!r}: {problem}; give http(s)://host:port, host:port or :port"
        )
    return str(url).rstrip("/")


def _url_problem(url: httpx.URL, port: int | None) -> str:
    if url.scheme not in SCHEMES:
        return "the scheme should be http or https"
    if not url.host:
        return "no host"
    if port is not None and not 1 <= port <= MAX_PORT:
        return f"the port should be between 1 and {MAX_PORT}"
    if url.query or url.fragment:
        return "a server URL has no query or fragment"
    return ""


def resolve_base_url(given: str | None = None, *, source: str = "base_url") -> str:
    """``given`` (named ``source`` in errors), else ``$TASKQ_URL``, else
    ``http://127.0.0.1:$PORT`` (``PORT`` defaults to the server's 8080)."""
    if given:
        return normalise_url(given, source=source)
    from_env = os.environ.get(URL_VARIABLE, "").strip()
    if from_env:
        return normalise_url(from_env, source=URL_VARIABLE)
    port = os.environ.get(PORT_VARIABLE, DEFAULT_PORT)
    return normalise_url(":" + port, source=PORT_VARIABLE)


def resolve_api_key(given: str | None = None) -> str | None:
    """``given``, else ``$TASKQ_API_KEY``, else none."""
    return given or os.environ.get(API_KEY_VARIABLE) or None


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The key as the server reads it (``entrypoints/http/auth.py``): a Bearer token."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def checked_timeout(timeout: float) -> float:
    """``timeout`` if it is a positive number of seconds; ``ValueError`` otherwise."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)
