"""What a JSON value must be for the engine to store it: every backend writes UTF-8 and
nests attributes to a bounded depth, so a lone surrogate (``"\\ud800"``, valid in a JSON
string but not in Unicode) or a deep nesting is refused before anything is stored."""

from __future__ import annotations

import json
import re

from domain.errors import InvalidInput
from domain.limits import MAX_PAYLOAD_DEPTH
from domain.models import JSON

_SURROGATE = re.compile("[\ud800-\udfff]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate of ``text``, escaped (``\\ud800``), or None.

    Python decodes a JSON surrogate *pair* to one code point, so any surrogate left in
    a ``str`` is a lone one."""
    found = _SURROGATE.search(text)
    return None if found is None else f"\\u{ord(found.group()):04x}"


def child_path(path: str, key: str | int) -> str:
    """``payload.to``, ``tasks[1]``, ``payload["a b"]``: a key as the client wrote it."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _NAME.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"  # ASCII-escaped: safe to show, surrogates included


def check_text(path: str, value: JSON) -> None:
    """Raise ``InvalidInput`` naming the path of the first string or key of ``value``
    that holds a lone surrogate. Iterative: no depth of nesting can exhaust the stack."""
    _walk(path, value, depth_limit=None)


def check_storable(path: str, value: JSON) -> None:
    """Everything the engine asks of a JSON value it stores (a payload, a result), in
    one walk: nesting no deeper than ``MAX_PAYLOAD_DEPTH``, no lone surrogate."""
    _walk(path, value, depth_limit=MAX_PAYLOAD_DEPTH)


def _walk(path: str, value: JSON, *, depth_limit: int | None) -> None:
    """Visit every value of ``value`` once (iteratively), refusing a nesting deeper than
    ``depth_limit`` (None: any) and a lone surrogate in a string or key."""
    stack: list[tuple[str, JSON, int]] = [(path, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(where, item, "")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth_limit is not None and depth + 1 > depth_limit:
            raise InvalidInput(path, f"nested deeper than {depth_limit} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_string(child_path(where, key), key, "its name ")
                stack.append((child_path(where, key), child, depth + 1))
        else:
            stack.extend((child_path(where, i), child, depth + 1) for i, child in enumerate(item))


def _check_string(path: str, text: str, what: str) -> None:
    escaped = lone_surrogate(text)
    if escaped is not None:
        raise InvalidInput(
            path or "body",
            f"{what}holds a lone surrogate ({escaped}): not valid Unicode, so it cannot be "
            "stored; send surrogates only as pairs",
        )
