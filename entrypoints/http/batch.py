"""``POST /tasks/batch`` at the HTTP edge: each item read on its own, each outcome shown
as its result. The batch's rules (validate all, store, send the due ones together) are
``TaskService.submit_batch``'s."""

from __future__ import annotations

from typing import Any

import pydantic

from domain.errors import InvalidInput
from domain.json_values import check_text
from domain.services import BatchEntry, SubmitOutcome
from entrypoints.http.errors import as_invalid_input, problem
from entrypoints.http.parsing import idempotency_key
from entrypoints.http.schemas import BatchItem, BatchResult, TaskOut


def read_item(
    raw: Any, caller: str, traceparent: str | None = None, *, check_strings: bool = True
) -> BatchEntry | InvalidInput:
    """One item as the use case takes it (with the request's ``traceparent``), or what
    is wrong with it. ``check_strings`` False: the body was seen to hold no lone
    surrogate (``parsing.may_hold_lone_surrogate``), so its strings need no walk."""
    if not isinstance(raw, dict):
        return InvalidInput("body", "each task must be a JSON object")
    try:
        if check_strings:
            check_text("", raw)
        item = BatchItem.model_validate(raw)
        key = None
        if item.idempotency_key is not None:
            key = idempotency_key("idempotency_key", item.idempotency_key, caller)
        return BatchEntry(item.to_request(traceparent), key)
    except pydantic.ValidationError as exc:
        return as_invalid_input(exc)
    except InvalidInput as exc:
        return exc


def result(outcome: SubmitOutcome) -> BatchResult:
    if outcome.task is not None:
        return BatchResult(status=201 if outcome.new else 200, task=TaskOut.of(outcome.task))
    assert outcome.error is not None, "an outcome holds a task or an error"
    found = problem(outcome.error)
    return BatchResult(status=found.status, error=found.message)
