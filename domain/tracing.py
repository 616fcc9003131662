"""Trace context carried by a task: the W3C ``traceparent`` of where it was submitted.

A submission's trace context is stored with its task, so the span of the worker's run
is a child of the request that submitted it: one trace from the HTTP request through
the queue to the handler. The format is W3C Trace Context
(https://www.w3.org/TR/trace-context/#traceparent-header):
``version-traceid-parentid-flags``, lower-case hex. What reads and writes spans is the
``Tracer`` port (domain/ports.py); ``NoTracer`` is the default, which records nothing.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domain.models import Task

TRACEPARENT_LENGTH = 55
"""``00-<32 hex>-<16 hex>-<2 hex>``: the header of version 00, and the prefix of any
later version that a reader of version 00 understands."""

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def parse_traceparent(raw: str | None) -> str | None:
    """``raw`` as a stored traceparent (version 00), or None if it is absent or
    malformed: a bad header is ignored, never an error, as the W3C spec asks.

    A later version is read as version 00 from its first 55 characters, when they are
    followed by nothing or by ``-`` (the spec's rule for versions it does not know).
    """
    if raw is None:
        return None
    raw = raw.strip(" \t")
    found = _TRACEPARENT.match(raw)
    if found is None:
        return None
    version, trace_id, parent_id, flags = found.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    if version == "00" and len(raw) != TRACEPARENT_LENGTH:
        return None
    if len(raw) > TRACEPARENT_LENGTH and raw[TRACEPARENT_LENGTH] != "-":
        return None
    return f"00-{trace_id}-{parent_id}-{flags}"


class NoTracer:
    """The ``Tracer`` used when tracing is off: no span, no trace context."""

    def current_traceparent(self) -> str | None:
        return None

    def run_span(self, task: Task) -> AbstractContextManager[None]:
        return _NO_SPAN  # reusable: it keeps no state


_NO_SPAN: AbstractContextManager[None] = nullcontext()
