"""Blobs on S3 (moto): the API redirects downloads to presigned URLs, and `taskq init`
creates the bucket with a lifecycle rule matching task retention."""

from __future__ import annotations

import asyncio

import httpx
from dependency_injector import providers

from adapters.blobs.bucket import LIFECYCLE_RULE_ID, provision_bucket
from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.support.aws import aws_endpoint, s3_client, unique_name
from tests.support.http_app import serve_app


async def test_uploads_land_in_the_bucket_and_downloads_redirect_to_it() -> None:
    s3 = s3_client(aws_endpoint())
    bucket = unique_name("taskq-api")
    await asyncio.to_thread(s3.create_bucket, Bucket=bucket)
    container = build_container(Settings(backend="memory", s3_bucket=bucket))
    container.aws_s3.override(providers.Object(s3))
    async with serve_app(create_app(container)) as client:
        created = await client.post(
            "/blobs?name=a.txt", content=b"hello", headers={"Content-Type": "text/plain"}
        )
        assert created.status_code == 201
        key = created.json()["key"]
        stored = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key=key)
        assert stored["Body"].read() == b"hello" and stored["ContentType"] == "text/plain"

        download = await client.get(f"/blobs/{key}")
        assert download.status_code == 307
        presigned = download.headers["location"]
        assert "X-Amz-Signature" in presigned
        fetched = await asyncio.to_thread(httpx.get, presigned)
        assert fetched.content == b"hello"

        assert (await client.get("/blobs/uploads/none/a.txt")).status_code == 404


def test_init_creates_the_bucket_with_a_lifecycle_rule_matching_retention() -> None:
    s3 = s3_client(aws_endpoint())
    bucket = unique_name("taskq-init")

    first = provision_bucket(s3, bucket, region="us-east-1", retention_seconds=3 * 86_400 + 1)
    again = provision_bucket(s3, bucket, region="us-east-1", retention_seconds=3 * 86_400 + 1)
    changed = provision_bucket(s3, bucket, region="us-east-1", retention_seconds=86_400)

    assert (first, again, changed) == ("created", "existing", "updated")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    rule = next(r for r in rules if r.get("ID") == LIFECYCLE_RULE_ID)
    assert rule["Expiration"] == {"Days": 1}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    s3.delete_bucket(Bucket=bucket)
