"""A client generated from the live ``/openapi.json`` (openapi-python-client) submits a
typed task to ``taskq serve`` and reads its typed result."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.processes import running_server

pytestmark = pytest.mark.e2e

PACKAGE = "taskq_generated_client"


def generate(document: dict[str, Any], where: Path) -> None:
    spec = where / "openapi.json"
    spec.write_text(httpx.Response(200, json=document).text)
    config = where / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    cli = Path(sys.executable).with_name("openapi-python-client")
    assert cli.exists(), "openapi-python-client is in the dev extra: pip install -e .[dev]"
    done = subprocess.run(
        [str(cli), "generate", "--path", str(spec), "--config", str(config)]
        + ["--output-path", str(where / PACKAGE), "--meta", "none"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.fixture
def imported(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path`` on the import path for the test, and the generated modules forgotten
    afterwards."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_submits_a_typed_task_and_reads_its_typed_result(
    tmp_path: Path, imported: Path
) -> None:
    env = {"TASKQ_BACKEND": "memory", "WORKER_COUNT": "2"}
    with running_server(tmp_path, env=env) as server, server.client() as raw:
        generate(raw.get("/openapi.json").json(), imported)
        uploaded = raw.post("/blobs", content=png(80, 40), headers={"Content-Type": "image/png"})
        assert uploaded.status_code == 201, uploaded.text
        generated = module("client").Client(base_url=server.url, raise_on_unexpected_status=True)
        with generated as client:
            submit_and_read(client, uploaded.json()["key"])


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, format="PNG")
    return out.getvalue()


def submit_and_read(client: Any, image: str) -> None:
    models = module("models")
    submit = module("api.default.submit_task")
    get = module("api.default.get_task")
    list_types = module("api.default.list_task_types")

    body = models.SubmitImageResizeTask(
        type_="image-resize",
        payload=models.ImageResizePayloadType1(
            image=image, width=64, height=32, fit=models.ImageResizePayloadType1Fit("exact")
        ),
    )
    created = submit.sync_detailed(client=client, body=body)
    assert created.status_code == 201, created.content
    task = created.parsed
    assert isinstance(task, models.TaskOut)
    assert task.status == models.TaskStatus.PENDING

    done = get.sync(task_id=task.id, client=client, wait=20)

    assert isinstance(done, models.TaskOut), done
    assert done.status == models.TaskStatus.COMPLETED
    assert isinstance(done.result, models.ImageResizeResult)
    assert (done.result.width, done.result.height, done.result.format_) == (64, 32, "png")
    assert done.result.key != image and done.result.bytes_ > 0

    # an old client's form, a string payload, is one of the typed ones too
    email = models.SubmitEmailTask(type_="email", payload="a@b.io")
    sent = get.sync(task_id=submit.sync(client=client, body=email).id, client=client, wait=20)
    assert isinstance(sent.result, models.EmailResult)
    assert sent.status == models.TaskStatus.COMPLETED
    assert sent.result.accepted == ["a@b.io"] and sent.result.message_id

    listed = list_types.sync(client=client)
    assert [t.type_ for t in listed.task_types] == ["data-export", "email", "image-resize"]
