"""One blocking boto3 call, run off the event loop, its failures translated.

boto3 blocks, so the AWS adapters run every call in a thread (``asyncio.to_thread``).
botocore's own retry mode handles throttling and 5xx answers; whatever still fails
leaves the adapter as ``InfrastructureError(<service>, "<Code>: <Message>")``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from domain.errors import InfrastructureError

T = TypeVar("T")


def describe(error: Exception) -> str:
    """``Code: Message`` of a ClientError; the type and text of anything else."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Unknown')}: {info.get('Message', '')}"
    return f"{type(error).__name__}: {error}"


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


async def run_call(service: str, call: Callable[[], T], *, passthrough: Collection[str] = ()) -> T:
    """Run ``call`` in a thread. A ClientError whose code is in ``passthrough`` is
    re-raised for the caller to read; every other failure becomes
    ``InfrastructureError(service, ...)``."""
    try:
        return await asyncio.to_thread(call)
    except ClientError as error:
        if error_code(error) in passthrough:
            raise
        raise InfrastructureError(service, describe(error)) from None
    except BotoCoreError as error:
        raise InfrastructureError(service, describe(error)) from None
