"""Built-in task types of the original service: ``email``, ``image-resize``,
``data-export``. Their work is simulated for now; payloads are validated for real.

Existing clients send a string payload (an address, an image name, an export name);
an object with the documented fields is accepted too.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

from domain.models import JSON
from domain.task_types import HandlerRegistry, TaskType

SIMULATED_WORK_SECONDS = 0.01
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FORMATS = ("csv", "json", "ndjson")
_MAX_SIDE = 20000

# JSON Schemas of what the validators below accept and the handlers return (shown by
# GET /task-types and in /openapi.json): a name as a string, or an object.
_NAME = {"type": "string", "pattern": r"\S"}
_ADDRESS = {"type": "string", "pattern": _EMAIL.pattern}
_SIDE = {"type": "integer", "minimum": 1, "maximum": _MAX_SIDE}
EMAIL_INPUT: dict[str, JSON] = {
    "anyOf": [
        {**_ADDRESS, "description": "The address to send to."},
        {"type": "object", "properties": {"to": _ADDRESS}, "required": ["to"]},
    ]
}
IMAGE_RESIZE_INPUT: dict[str, JSON] = {
    "anyOf": [
        {**_NAME, "description": "The image's name."},
        {
            "type": "object",
            "properties": {"image": _NAME, "width": _SIDE, "height": _SIDE},
            "required": ["image", "width", "height"],
        },
    ]
}
DATA_EXPORT_INPUT: dict[str, JSON] = {
    "anyOf": [
        {**_NAME, "description": "The dataset's name (exported as CSV)."},
        {
            "type": "object",
            "properties": {
                "dataset": _NAME,
                "format": {"type": "string", "enum": list(_FORMATS), "default": "csv"},
            },
            "required": ["dataset"],
        },
    ]
}
EMAIL_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {"delivered_to": {"type": "string"}},
    "required": ["delivered_to"],
}
IMAGE_RESIZE_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {
        "image": {"type": "string"},
        "size": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
    },
    "required": ["image"],
}
DATA_EXPORT_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {"export": {"type": "string"}},
    "required": ["export"],
}


def _field(payload: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in payload:
        raise ValueError(f"missing field {name!r}")
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"field {name!r} has the wrong type")
    return value


def validate_email(payload: JSON) -> None:
    address = payload
    if isinstance(payload, dict):
        address = _field(payload, "to", str)
    if not isinstance(address, str) or not _EMAIL.match(address):
        raise ValueError("expected an email address, or an object with 'to' set to one")


def _name_or_object(payload: JSON, name: str, fields: str) -> dict[str, JSON] | None:
    """The object ``payload`` is; None if it is a name (a non-empty string) instead."""
    if isinstance(payload, str):
        if not payload.strip():
            raise ValueError(f"expected {name}")
        return None
    if not isinstance(payload, dict):
        raise ValueError(f"expected {name}, or an object with {fields}")
    return payload


def validate_image_resize(payload: JSON) -> None:
    fields = _name_or_object(payload, "an image name", "'image', 'width', 'height'")
    if fields is None:
        return
    image = _field(fields, "image", str)
    if not image.strip():
        raise ValueError("field 'image' must not be empty")
    for side in ("width", "height"):
        value = _field(fields, side, int)
        if not 1 <= value <= _MAX_SIDE:
            raise ValueError(f"field {side!r} must be between 1 and {_MAX_SIDE}")


def validate_data_export(payload: JSON) -> None:
    fields = _name_or_object(payload, "an export name", "'dataset'")
    if fields is None:
        return
    if not _field(fields, "dataset", str).strip():
        raise ValueError("field 'dataset' must not be empty")
    fmt = fields.get("format", "csv")
    if fmt not in _FORMATS:
        raise ValueError(f"field 'format' must be one of {', '.join(_FORMATS)}")


async def send_email(payload: JSON) -> JSON:
    await asyncio.sleep(SIMULATED_WORK_SECONDS)
    to = payload["to"] if isinstance(payload, dict) else payload
    return {"delivered_to": to}


async def resize_image(payload: JSON) -> JSON:
    await asyncio.sleep(SIMULATED_WORK_SECONDS)
    if isinstance(payload, dict):
        return {"image": payload["image"], "size": [payload["width"], payload["height"]]}
    return {"image": payload}


async def export_data(payload: JSON) -> JSON:
    await asyncio.sleep(SIMULATED_WORK_SECONDS)
    name = payload["dataset"] if isinstance(payload, dict) else payload
    fmt = payload.get("format", "csv") if isinstance(payload, dict) else "csv"
    return {"export": f"{name}.{fmt}"}


def register_builtins(task_types: HandlerRegistry) -> HandlerRegistry:
    email = TaskType("email", send_email, 60.0, validate_email)
    resize = TaskType("image-resize", resize_image, 300.0, validate_image_resize)
    export = TaskType("data-export", export_data, 900.0, validate_data_export)
    task_types.add(replace(email, input_schema=EMAIL_INPUT, output_schema=EMAIL_OUTPUT))
    task_types.add(
        replace(resize, input_schema=IMAGE_RESIZE_INPUT, output_schema=IMAGE_RESIZE_OUTPUT)
    )
    task_types.add(
        replace(export, input_schema=DATA_EXPORT_INPUT, output_schema=DATA_EXPORT_OUTPUT)
    )
    return task_types
