"""POST /blobs and GET /blobs/{key} through the app (directory store, memory backend)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.support.http_app import serve_app

KEY = re.compile(r"uploads/[0-9a-f]{32}/cat\.png")


async def test_an_upload_keeps_its_bytes_and_content_type(http_client: httpx.AsyncClient) -> None:
    body = bytes(range(256)) * 4

    created = await http_client.post(
        "/blobs?name=cat.png", content=body, headers={"Content-Type": "image/png"}
    )

    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert KEY.fullmatch(key)
    assert created.json() == {"key": key, "size": 1024, "content_type": "image/png"}
    assert created.headers["location"] == f"/blobs/{key}"
    got = await http_client.get(f"/blobs/{key}")
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == "1024"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''cat.png"


async def test_an_upload_without_a_name_or_type_is_a_generic_blob(
    http_client: httpx.AsyncClient,
) -> None:
    created = await http_client.post("/blobs", content=b"x")

    assert created.status_code == 201
    assert created.json()["key"].endswith("/blob")
    got = await http_client.get(f"/blobs/{created.json()['key']}")
    assert got.headers["content-type"] == "application/octet-stream"


async def small_blob_app(limit: int) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(backend="memory", max_blob_bytes=limit, max_body_bytes=1024)
    async with serve_app(create_app(build_container(settings))) as client:
        yield client


async def test_only_the_upload_is_exempt_from_the_general_body_limit() -> None:
    async for client in small_blob_app(10_000):
        body = b"a" * 5000  # over TASKQ_MAX_BODY_BYTES (1,024), under the blob limit

        assert (await client.post("/blobs", content=body)).status_code == 201
        refused = await client.post("/tasks", content=body)
        assert refused.status_code == 413


async def test_an_upload_over_the_blob_limit_is_refused_and_nothing_is_kept() -> None:
    async for client in small_blob_app(1000):
        declared = await client.post("/blobs", content=b"a" * 1001)
        assert declared.status_code == 413
        assert "limit of 1,000 bytes" in declared.json()["error"]

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"b" * 100  # chunked: no Content-Length, counted as it streams

        streamed = await client.post("/blobs", content=stream())
        assert streamed.status_code == 413
        assert (await client.post("/blobs", content=b"a" * 1000)).status_code == 201


async def test_invalid_keys_and_names_are_422_naming_them(http_client: httpx.AsyncClient) -> None:
    # a part over 255 bytes: longer than a file name may be (it was a 500 on the directory)
    too_long_part = "/blobs/" + "0" * 300
    for path in (
        "/blobs/a%5Cb",
        "/blobs/a//b",
        "/blobs/a%00b",
        "/blobs/" + "k" * 513,
        too_long_part,
    ):
        response = await http_client.get(path)
        assert response.status_code == 422, path
        assert response.json()["error"].startswith("key: blob key")

    named = await http_client.post("/blobs?name=a/b.png", content=b"x")
    assert named.status_code == 422
    assert named.json()["error"].startswith("name:")
    dots = await http_client.post("/blobs?name=..", content=b"x")
    assert dots.status_code == 422


async def test_an_empty_upload_is_refused(http_client: httpx.AsyncClient) -> None:
    response = await http_client.post("/blobs?name=cat.png")

    assert response.status_code == 422
    assert response.json()["error"] == "body: is empty: send the file's bytes as the request body"


async def test_a_missing_blob_is_404(http_client: httpx.AsyncClient) -> None:
    response = await http_client.get("/blobs/uploads/none/cat.png")

    assert response.status_code == 404
    assert response.json() == {"error": "blob 'uploads/none/cat.png' not found"}


async def test_blobs_need_the_api_key_like_everything_else() -> None:
    container = build_container(Settings(backend="memory", api_keys="sesame"))
    async with serve_app(create_app(container)) as client:
        assert (await client.post("/blobs", content=b"x")).status_code == 401
        assert (await client.get("/blobs/uploads/a/b")).status_code == 401
        ok = await client.post("/blobs", content=b"x", headers={"X-API-Key": "sesame"})
        assert ok.status_code == 201


async def test_the_blob_routes_are_documented(http_client: httpx.AsyncClient) -> None:
    paths = (await http_client.get("/openapi.json")).json()["paths"]

    upload = paths["/blobs"]["post"]
    assert upload["operationId"] == "uploadBlob"
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert {"201", "413", "422"} <= set(upload["responses"])
    download = paths["/blobs/{key}"]["get"]
    assert download["parameters"][0]["name"] == "key"
    assert {"200", "307", "404", "422"} <= set(download["responses"])
    assert "Location" in download["responses"]["307"]["headers"]
