"""The body of ``POST /tasks`` as the use case's ``SubmitRequest``.

Nearly every submission is ``{"type": "...", "payload": ...}``: such a body becomes the
request directly, without building the ``SubmitTask`` model and dumping it back (which
cost more than the rest of parsing). Any other body goes through the model, which
validates it and names what is wrong; a test holds both ways to the same result.
"""

from __future__ import annotations

from typing import Any

from domain.submission import SubmitRequest
from entrypoints.http.schemas import SubmitTask

_PLAIN = frozenset({"type", "payload"})
"""The fields of a body that cannot fail the model's checks when ``type`` is a string
(``payload`` is any JSON value; the domain checks the type and the payload)."""


def submit_request(data: dict[str, Any], traceparent: str | None) -> SubmitRequest:
    """``SubmitTask.model_validate(data).to_request(traceparent)``, at less cost."""
    task_type = data.get("type")
    if type(task_type) is str and data.keys() <= _PLAIN:
        return SubmitRequest(type=task_type, payload=data.get("payload"), traceparent=traceparent)
    return SubmitTask.model_validate(data).to_request(traceparent)
