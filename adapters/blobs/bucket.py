"""Create the blob bucket for `taskq init`, idempotently, with a lifecycle rule that
matches task retention: a blob lives as long as the tasks that name it
(``TASKQ_RETENTION_SECONDS``, rounded up to whole days, S3's unit), and an upload left
incomplete is aborted after a day. Nothing is ever deleted by provisioning itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from domain.errors import InfrastructureError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LIFECYCLE_RULE_ID = "taskq-retention"
INCOMPLETE_UPLOAD_DAYS = 1
_SECONDS_A_DAY = 86_400
Change = Literal["created", "updated", "existing"]


def lifecycle_rule(retention_seconds: float | None) -> dict[str, Any]:
    """The bucket's one rule: blobs expire with task retention (kept when tasks are
    kept forever), incomplete multipart uploads after a day."""
    rule: dict[str, Any] = {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": INCOMPLETE_UPLOAD_DAYS},
    }
    if retention_seconds is not None:
        rule["Expiration"] = {"Days": max(1, math.ceil(retention_seconds / _SECONDS_A_DAY))}
    return rule


def provision_bucket(
    s3: S3Client, bucket: str, *, region: str, retention_seconds: float | None
) -> Change:
    """Blocking (boto3). Whether the bucket was created, its rule updated, or both
    were already as wanted."""
    try:
        return _provision(s3, bucket, region, retention_seconds)
    except (ClientError, BotoCoreError) as error:
        raise InfrastructureError("s3", f"provisioning bucket {bucket!r} failed: {error}") from None


def _provision(s3: S3Client, bucket: str, region: str, retention: float | None) -> Change:
    change: Change = "existing"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) not in {"404", "NoSuchBucket"}:
            raise
        if region == "us-east-1":  # the one region that refuses a LocationConstraint
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
        change = "created"
    wanted = lifecycle_rule(retention)
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as error:
        if "NoSuchLifecycleConfiguration" not in str(error):
            raise
        rules = []
    current = next((r for r in rules if r.get("ID") == LIFECYCLE_RULE_ID), None)
    if current is None or _differs(dict(current), wanted):
        others = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID]
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={"Rules": [*others, wanted]},  # type: ignore[list-item]
        )
        change = "created" if change == "created" else "updated"
    return change


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return any(current.get(k) != v for k, v in wanted.items()) or (
        "Expiration" in current and "Expiration" not in wanted
    )
