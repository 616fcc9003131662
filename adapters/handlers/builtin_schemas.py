"""JSON Schemas of what the built-in ``image-resize`` and ``data-export`` types accept
and return (shown by GET /task-types and in /openapi.json). Their validators
(images.py, exports.py) are the rule; a test checks these schemas agree with them."""

from __future__ import annotations

from adapters.handlers.exports import DATASET
from adapters.handlers.exports import FORMATS as EXPORT_FORMATS
from adapters.handlers.images import FITS
from adapters.handlers.images import FORMATS as IMAGE_FORMATS
from domain.limits import MAX_IMAGE_SIDE
from domain.models import JSON, TaskStatus

_KEY: dict[str, JSON] = {"type": "string", "pattern": r"\S"}
_SIDE: dict[str, JSON] = {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIDE}
_INTEGER: dict[str, JSON] = {"type": "integer", "minimum": 0}
_STRING: dict[str, JSON] = {"type": "string"}


def _any_case(names: list[str]) -> dict[str, JSON]:
    """A string that is one of ``names`` in any letter case (a pattern, not an enum: a
    generated client would make ``pending`` and ``PENDING`` one enum member twice)."""
    spelled = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in n) for n in names)
    return {"type": "string", "pattern": f"^(?:{'|'.join(spelled)})$"}


_STATUS = _any_case([s.value for s in TaskStatus])

IMAGE_RESIZE_INPUT: dict[str, JSON] = {
    "anyOf": [
        {**_KEY, "description": "The image's blob key (resized to 800 x 600, contain)."},
        {
            "type": "object",
            "properties": {
                "image": {**_KEY, "description": "The image's blob key (POST /blobs)."},
                "width": _SIDE,
                "height": _SIDE,
                "fit": {"enum": list(FITS), "default": "contain"},
                "format": _any_case(list(IMAGE_FORMATS)),
            },
            "required": ["image", "width", "height"],
            "additionalProperties": False,
        },
    ]
}
IMAGE_RESIZE_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {
        "key": {**_STRING, "description": "The resized image's blob key."},
        "width": _INTEGER,
        "height": _INTEGER,
        "bytes": _INTEGER,
        "format": _STRING,
    },
    "required": ["key", "width", "height", "bytes", "format"],
}
DATA_EXPORT_INPUT: dict[str, JSON] = {
    "anyOf": [
        {
            **_KEY,
            "description": "The export's name (all tasks as CSV), or a status (those tasks).",
        },
        {
            "type": "object",
            "properties": {
                "dataset": {"const": DATASET},
                "format": {"enum": list(EXPORT_FORMATS), "default": "csv"},
                "status": {"anyOf": [_STATUS, {"type": "array", "items": _STATUS, "minItems": 1}]},
                "type": _STRING,
                "created_from": {**_STRING, "format": "date-time"},
                "created_to": {**_STRING, "format": "date-time"},
                "name": _KEY,
            },
            "required": ["dataset"],
            "additionalProperties": False,
        },
    ]
}
DATA_EXPORT_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {
        "key": _STRING,
        "rows": _INTEGER,
        "bytes": _INTEGER,
        "format": _STRING,
        "download": {**_STRING, "description": "An absolute URL to download the export."},
    },
    "required": ["key", "rows", "bytes", "format", "download"],
}
