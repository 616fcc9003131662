"""Templates: one Jinja environment, autoescaping everything it renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from entrypoints.http.ui.csrf import FIELD, session_of
from entrypoints.http.ui.session import SessionCodec
from entrypoints.http.ui.views import NOTICES, pretty_json, when

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


class Renderer:
    def __init__(self, codec: SessionCodec, *, login_required: bool) -> None:
        self.codec = codec
        self.login_required = login_required
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,  # every template, whatever its name
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = when
        self.env.filters["json"] = pretty_json

    def page(
        self, request: Request, template: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        session = session_of(request)
        notice = NOTICES.get(request.query_params.get("notice", ""))
        html = self.env.get_template(template).render(
            csrf_field=FIELD,
            csrf=self.codec.csrf_token(session) if session is not None else "",
            login_required=self.login_required,
            logged_in=session is not None and session.caller is not None,
            notice=notice,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)
