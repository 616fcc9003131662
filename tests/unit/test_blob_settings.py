"""Which blob store a container builds, from settings; the download links' base URL."""

from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

from adapters.blobs import DirectoryBlobStore, S3BlobStore
from bootstrap.container import build_container
from bootstrap.settings import Settings


def test_sqlite_keeps_blobs_beside_its_database(tmp_path: Path) -> None:
    settings = Settings(backend="sqlite", sqlite_path=str(tmp_path / "data" / "taskq.db"))

    store = build_container(settings).blobs()

    assert isinstance(store, DirectoryBlobStore)
    assert store.root == tmp_path / "data" / "blobs"


def test_a_blob_dir_wins_over_the_default(tmp_path: Path) -> None:
    store = build_container(Settings(backend="memory", blob_dir=str(tmp_path / "b"))).blobs()

    assert isinstance(store, DirectoryBlobStore) and store.root == tmp_path / "b"


def test_memory_blobs_live_in_a_temporary_directory_removed_at_shutdown() -> None:
    container = build_container(Settings(backend="memory"))
    container.init_resources()  # no async resource: nothing to await
    store = container.blobs()
    assert isinstance(store, DirectoryBlobStore) and store.root.is_dir()

    container.shutdown_resources()

    assert not store.root.exists()


def test_a_bucket_puts_blobs_on_s3_whatever_the_backend() -> None:
    store = build_container(Settings(backend="sqlite", s3_bucket="my-blobs")).blobs()

    assert isinstance(store, S3BlobStore) and store.bucket == "my-blobs"


def test_links_use_the_public_url_or_the_local_port() -> None:
    assert Settings(port=9000).api_url == "http://127.0.0.1:9000"
    assert Settings(public_url="https://q.example.com/").api_url == "https://q.example.com"
    with pytest.raises(pydantic.ValidationError, match="absolute http"):
        Settings(public_url="q.example.com")


def test_the_cpu_pool_leaves_a_core_to_the_event_loop_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TASKQ_CPU_WORKERS", raising=False)
    for cores, expected in ((1, 1), (2, 1), (8, 7)):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert Settings(backend="memory").cpu_workers == expected
    monkeypatch.setenv("TASKQ_CPU_WORKERS", "3")
    assert Settings(backend="memory").cpu_workers == 3
