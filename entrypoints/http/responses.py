"""JSON responses that can always be rendered.

Starlette's ``JSONResponse`` writes UTF-8 without escaping, which fails on a lone
surrogate (valid in a JSON string, so a payload can hold one). Escaping to ASCII keeps
every stored payload renderable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("ascii")


_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))
"""Built once: ``json.dumps`` with these options builds an encoder per call."""
