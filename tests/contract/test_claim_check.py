"""The claim check on every backend, through the real HTTP API (memory, sqlite, and aws
on the local endpoint with S3 there): a 5 MB payload and a 5 MB result round-trip with
TASKQ_MAX_BODY_BYTES raised, the task store holding references only; small tasks make
no blob call at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from adapters.blobs import DirectoryBlobStore, S3BlobStore
from adapters.claim_check import reference_key
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.processing import Outcome
from entrypoints.http.app import create_app
from tests.support.http_app import serve_app
from tests.support.large_values import MB, CountingBlobStore, large_text

BODY_LIMIT = 8 * MB


def _settings(backend: str, tmp_path: Path, **more: Any) -> Settings:
    return Settings(
        backend=backend,
        sqlite_path=str(tmp_path / "taskq.db"),
        handlers="tests.support.large_values",
        max_body_bytes=BODY_LIMIT,
        **more,
    )


@pytest.fixture(params=["memory", "sqlite", pytest.param("aws", marks=pytest.mark.aws)])
def container(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param != "aws":
        built = build_container(_settings(request.param, tmp_path))
        built.blobs.override(
            providers.Object(CountingBlobStore(DirectoryBlobStore(tmp_path / "blobs")))
        )
        yield built
        return

    from tests.support.aws import (
        aws_endpoint,
        fresh_resources,
        s3_client,
        unique_name,
        use_shared_clients,
    )

    endpoint = aws_endpoint()
    s3 = s3_client(endpoint)
    bucket = unique_name("taskq-claims")
    s3.create_bucket(Bucket=bucket)
    with fresh_resources(endpoint, max_receive_count=5) as aws:
        built = build_container(
            _settings(
                "aws",
                tmp_path,
                aws_endpoint_url=endpoint,
                sqs_queue_url=aws.provisioned.queue_url,
                sqs_dlq_url=aws.provisioned.dlq_url,
                dynamodb_table=aws.table_name,
                s3_bucket=bucket,
            )
        )
        use_shared_clients(built, endpoint)
        built.blobs.override(providers.Object(CountingBlobStore(S3BlobStore(s3, bucket))))
        yield built
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(create_app(container)) as client:
        yield client


async def run_one(container: Container) -> Outcome:
    """Receive one message and process it, as a worker does."""
    deliveries = await container.queue().receive(
        max_messages=1, visibility_timeout=60, wait_seconds=5
    )
    assert deliveries, "the task's message was not received"
    return await container.processor().process(deliveries[0])


async def test_a_5_mb_payload_and_result_round_trip_through_the_blob_store(
    container: Container, client: httpx.AsyncClient
) -> None:
    text = large_text(5 * MB)
    submitted = await client.post("/tasks", json={"type": "mirror", "payload": {"text": text}})
    assert submitted.status_code == 201, submitted.text[:500]
    task_id = submitted.json()["id"]

    assert await run_one(container) is Outcome.COMPLETED
    got = await client.get(f"/tasks/{task_id}")

    assert got.status_code == 200
    body = got.json()
    assert body["status"] == "COMPLETED"
    assert body["payload"] == {"text": text}
    assert body["result"] == {"reversed": text[::-1]}
    stored = await container.backend.repository().get(task_id)
    payload_key, result_key = reference_key(stored.payload), reference_key(stored.result)
    assert payload_key is not None and payload_key.startswith(f"tasks/{task_id}/payload-")
    assert result_key is not None and result_key.startswith(f"tasks/{task_id}/result-")
    blobs: CountingBlobStore = container.blobs()
    assert (await blobs.inner.head(payload_key)).size > 5 * MB
    assert (await blobs.inner.head(result_key)).size > 5 * MB


async def test_a_list_gives_the_reference_without_fetching_a_blob(
    container: Container, client: httpx.AsyncClient
) -> None:
    text = large_text(300_000)
    submitted = await client.post("/tasks", json={"type": "mirror", "payload": {"text": text}})
    assert submitted.status_code == 201
    blobs: CountingBlobStore = container.blobs()
    before = blobs.calls["get"]

    listed = (await client.get("/tasks", params={"status": "PENDING"})).json()

    [item] = [t for t in listed["tasks"] if t["id"] == submitted.json()["id"]]
    key = reference_key(item["payload"])
    assert key is not None and item["payload"]["$taskq_blob"]["bytes"] > 300_000
    assert blobs.calls["get"] == before
    download = await client.get(f"/blobs/{key}")
    if download.status_code == 307:  # S3: a presigned URL
        async with httpx.AsyncClient() as outside:
            download = await outside.get(download.headers["location"])
    assert download.status_code == 200 and download.json() == {"text": text}


async def test_small_tasks_make_no_blob_call(
    container: Container, client: httpx.AsyncClient
) -> None:
    submitted = await client.post("/tasks", json={"type": "mirror", "payload": {"text": "abc"}})
    assert submitted.status_code == 201
    assert await run_one(container) is Outcome.COMPLETED

    got = (await client.get(f"/tasks/{submitted.json()['id']}")).json()
    listed = await client.get("/tasks", params={"status": "COMPLETED"})

    assert got["result"] == {"reversed": "cba"} and listed.status_code == 200
    blobs: CountingBlobStore = container.blobs()
    assert sum(blobs.calls.values()) == 0


async def test_past_the_blob_limit_a_payload_is_refused_naming_it(tmp_path: Path) -> None:
    container = build_container(_settings("memory", tmp_path, max_blob_bytes=MB))
    async with serve_app(create_app(container)) as client:
        refused = await client.post(
            "/tasks", json={"type": "mirror", "payload": {"text": large_text(MB)}}
        )
        too_big = await client.post(
            "/tasks", json={"type": "mirror", "payload": {"text": large_text(BODY_LIMIT)}}
        )

    assert refused.status_code == 422
    assert "1,000,000" in refused.text and "TASKQ_MAX_BLOB_BYTES" in refused.text
    assert too_big.status_code == 413
