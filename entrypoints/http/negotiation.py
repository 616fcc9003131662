"""Choosing an answer's media type from the request's ``Accept`` header (RFC 9110)."""

from __future__ import annotations

from collections.abc import Sequence

JSON = "application/json"
OPENMETRICS = "application/openmetrics-text"
PROMETHEUS_TEXT = "text/plain"
METRICS_TYPES = (JSON, OPENMETRICS, PROMETHEUS_TEXT)
"""What ``GET /metrics`` answers in; JSON first: it wins ties (``*/*``, no header)."""


def preferred(accept: str | None, offers: Sequence[str]) -> str:
    """The offer ``accept`` ranks highest (its most specific matching range's ``q``);
    the first offer on a tie, when nothing matches, or without a header."""
    if not accept:
        return offers[0]
    ranges = [_parse(part) for part in accept.split(",") if part.strip()]
    best, best_q = offers[0], 0.0
    for offer in offers:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    return best


def _parse(part: str) -> tuple[str, float]:
    media, *params = (piece.strip() for piece in part.split(";"))
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = min(1.0, max(0.0, float(value)))
            except ValueError:
                q = 0.0
    return media.lower(), q


def _quality(offer: str, ranges: Sequence[tuple[str, float]]) -> float:
    """The ``q`` of the most specific range matching ``offer`` (the highest among equally
    specific ones); 0 if none matches."""
    kind = offer.split("/", 1)[0] + "/*"
    found: dict[int, float] = {}
    for media, q in ranges:
        specificity = 2 if media == offer else 1 if media == kind else 0 if media == "*/*" else -1
        if specificity >= 0:
            found[specificity] = max(q, found.get(specificity, 0.0))
    return found[max(found)] if found else 0.0
