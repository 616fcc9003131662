"""Built-in task types of the original service, doing real work: ``email``
(``email.py``: SMTP, SES or the local mailbox), ``image-resize`` (``images.py``: Pillow,
on the blob store) and ``data-export`` (``exports.py``: the task store to a blob).

Existing clients send a string payload (an address, an image's blob key, an export
name); an object with the documented fields is accepted too.
"""

from __future__ import annotations

from adapters.handlers.builtin_schemas import (
    DATA_EXPORT_INPUT,
    DATA_EXPORT_OUTPUT,
    IMAGE_RESIZE_INPUT,
    IMAGE_RESIZE_OUTPUT,
)
from adapters.handlers.email import email_task_type
from adapters.handlers.exports import TaskExporter, TaskListing, validate_data_export
from adapters.handlers.images import ImageResizer, validate_image_resize
from domain.ports import BlobStore, CpuPool, EmailSender
from domain.task_types import HandlerRegistry, TaskType

IMAGE_RESIZE_TIMEOUT_SECONDS = 300.0
DATA_EXPORT_TIMEOUT_SECONDS = 900.0


def register_builtins(
    task_types: HandlerRegistry,
    *,
    blobs: BlobStore,
    cpu: CpuPool,
    tasks: TaskListing,
    public_url: str,
    mail: EmailSender | None = None,
) -> HandlerRegistry:
    """Add the built-in types to ``task_types``, their handlers bound to what they work
    on: the blob store (images in and out, exports), the CPU pool (resizing), the task
    store (exports), the API's public URL (exports' download links) and the email
    sender (None: an email task fails, saying that no sender is wired)."""
    resizer = ImageResizer(blobs, cpu, timeout_seconds=IMAGE_RESIZE_TIMEOUT_SECONDS)
    exporter = TaskExporter(tasks, blobs, public_url=public_url)
    task_types.add(email_task_type(mail))
    task_types.add(
        TaskType(
            "image-resize",
            resizer.run,
            IMAGE_RESIZE_TIMEOUT_SECONDS,
            validate_image_resize,
            input_schema=IMAGE_RESIZE_INPUT,
            output_schema=IMAGE_RESIZE_OUTPUT,
        )
    )
    task_types.add(
        TaskType(
            "data-export",
            exporter.run,
            DATA_EXPORT_TIMEOUT_SECONDS,
            validate_data_export,
            input_schema=DATA_EXPORT_INPUT,
            output_schema=DATA_EXPORT_OUTPUT,
        )
    )
    return task_types
