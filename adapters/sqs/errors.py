"""Which SQS errors say a receipt is outdated: acking it or changing its visibility is
then a no-op, as the port requires, not a failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

# Error codes meaning "this receipt handle no longer designates an in-flight message":
# an outdated receipt, so acking or changing visibility is a no-op. SQS speaks JSON now;
# botocore reports the legacy query-protocol code (``x-amzn-query-error``) as ``Code``,
# sometimes with the ``AWS.SimpleQueueService.`` prefix, and the shape name as
# ``QueryErrorCode``. moto answers ReceiptHandleIsInvalid; AWS and LocalStack answer a
# ChangeMessageVisibility on a deleted message with InvalidParameterValue, "Value ...
# for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not
# available for visibility timeout change."
_LEGACY_PREFIX = "AWS.SimpleQueueService."
_STALE_RECEIPT_CODES = frozenset(
    {"ReceiptHandleIsInvalid", "InvalidReceiptHandle", "MessageNotInflight"}
)
_INVALID_PARAMETER_CODES = frozenset({"InvalidParameterValue", "InvalidParameterValueException"})


def _error_codes(info: Mapping[str, Any]) -> set[str]:
    codes = {str(info.get("Code", "")), str(info.get("QueryErrorCode", ""))}
    return {code.removeprefix(_LEGACY_PREFIX) for code in codes if code}


def is_stale_receipt(info: Mapping[str, Any]) -> bool:
    """Whether an SQS error (a ClientError's ``response["Error"]``, or a batch call's
    ``Failed`` entry) says the receipt no longer designates an in-flight message."""
    codes = _error_codes(info)
    if codes & _STALE_RECEIPT_CODES:
        return True
    message = str(info.get("Message", "")).lower().replace(" ", "")
    return bool(codes & _INVALID_PARAMETER_CODES) and "receipthandle" in message


def is_stale_receipt_error(error: ClientError) -> bool:
    return is_stale_receipt(error.response.get("Error", {}))
