"""CSRF protection for every POST of the dashboard.

Two checks, both required: the form's ``csrf`` field matches the token of the
request's session (a token another site cannot read), and the ``Origin`` header, when
the browser sends one, is this server's own. With a ``SameSite=Strict`` cookie a
cross-site POST carries no session at all; these checks hold even where it would.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.requests import Request

from domain.errors import InvalidInput
from entrypoints.http.ui.security import SESSION
from entrypoints.http.ui.session import Session, SessionCodec

FIELD = "csrf"
MAX_FORM_FIELDS = 20
"""The largest dashboard form has four fields."""


class CsrfRejected(Exception):
    """A POST without this session's CSRF token, or from another origin (403)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"request refused: {reason}; reload the page and try again")


class LoginRequired(Exception):
    """No valid session: the dashboard asks for an API key first."""


def session_of(request: Request) -> Session | None:
    session: Session | None = request.scope.get(SESSION)
    return session


def logged_in(request: Request) -> Session:
    session = session_of(request)
    if session is None or session.caller is None:
        raise LoginRequired()
    return session


Form = Mapping[str, str]
"""A POSTed form: each field's first value."""


async def checked_form(request: Request, codec: SessionCodec) -> Form:
    """The POSTed form, once its CSRF token and origin are this session's."""
    session = session_of(request)
    if session is None:
        raise LoginRequired()
    origin = request.headers.get("origin")
    if origin is not None and origin != own_origin(request):
        raise CsrfRejected(f"the form was sent from another origin ({origin[:100]})")
    form = await read_form(request)
    token = form.get(FIELD)
    if token is None or not codec.csrf_matches(session, token):
        raise CsrfRejected("the form's CSRF token is missing or not this session's")
    return form


async def read_form(request: Request) -> Form:
    """The URL-encoded form the dashboard's pages send (their only kind)."""
    body = await request.body()
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise InvalidInput("body", "must be a form (application/x-www-form-urlencoded)")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "body", f"must be a UTF-8 form of at most {MAX_FORM_FIELDS} fields"
        ) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def own_origin(request: Request) -> str:
    url = request.url
    return f"{url.scheme}://{url.netloc}"


def text_field(form: Form, name: str) -> str:
    """A form field's text, stripped; empty when it is absent."""
    return form.get(name, "").strip()
