"""Built-in task types of the original service: ``email``, ``image-resize``
(``images.py``), ``data-export`` (``exports.py``). ``email``'s work is simulated for now;
payloads are validated for real.

Existing clients send a string payload (an address, an image name, an export name);
an object with the documented fields is accepted too.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from adapters.handlers.exports import TaskExporter, TaskListing, validate_data_export
from adapters.handlers.images import ImageResizer, validate_image_resize
from domain.models import JSON
from domain.ports import BlobStore, CpuPool
from domain.task_types import HandlerRegistry, TaskType

SIMULATED_WORK_SECONDS = 0.01
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IMAGE_RESIZE_TIMEOUT_SECONDS = 300.0


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


async def send_email(payload: JSON) -> JSON:
    await asyncio.sleep(SIMULATED_WORK_SECONDS)
    to = payload["to"] if isinstance(payload, dict) else payload
    return {"delivered_to": to}


def register_builtins(
    task_types: HandlerRegistry,
    *,
    blobs: BlobStore,
    cpu: CpuPool,
    tasks: TaskListing,
    public_url: str,
) -> HandlerRegistry:
    """Add the built-in types to ``task_types``, their handlers bound to what they work
    on: the blob store (images in and out, exports), the CPU pool (resizing), the task
    store (exports) and the API's public URL (exports' download links)."""
    resizer = ImageResizer(blobs, cpu, timeout_seconds=IMAGE_RESIZE_TIMEOUT_SECONDS)
    exporter = TaskExporter(tasks, blobs, public_url=public_url)
    task_types.add(TaskType("email", send_email, 60.0, validate_email))
    task_types.add(
        TaskType("image-resize", resizer.run, IMAGE_RESIZE_TIMEOUT_SECONDS, validate_image_resize)
    )
    task_types.add(TaskType("data-export", exporter.run, 900.0, validate_data_export))
    return task_types
