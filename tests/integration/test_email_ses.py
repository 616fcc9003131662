"""The ``email`` task type on Amazon SES (the moto server): moto records what SES sent,
read back from its ``/moto-api/data.json``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.email import SesEmailSender
from adapters.handlers.email import email_task_type
from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.models import TaskStatus
from domain.processing import Outcome
from tests.support.aws import ses_client
from tests.support.processes import MotoServer
from tests.support.worker_rig import WorkerRig

pytestmark = pytest.mark.aws

SENDER = "robot@taskq.test"


def sent_by_ses(endpoint: str) -> list[dict[str, Any]]:
    """The raw messages moto's SES sent."""
    response = httpx.get(f"{endpoint}/moto-api/data.json", timeout=10)
    assert response.status_code == 200, f"{endpoint} is not a moto server: {response.text[:200]}"
    messages: list[dict[str, Any]] = response.json().get("ses", {}).get("RawMessage", [])
    return messages


@pytest.fixture(scope="module")
def aws_endpoint_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server process of this module's own: ``/moto-api/data.json`` dumps every
    service's state of its process, which other tests' S3 uploads (in a moto server
    of the test process) can make unreadable."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def ses(aws_endpoint_url: str) -> Any:
    client = ses_client(aws_endpoint_url)
    client.verify_email_identity(EmailAddress=SENDER)
    return client


async def test_an_email_task_is_sent_through_ses(aws_endpoint_url: str, ses: Any) -> None:
    rig = WorkerRig()
    rig.task_types.add(email_task_type(SesEmailSender(ses, sender=SENDER)))
    payload = {"to": ["ann@example.com", "bob@example.com"], "subject": "Via SES", "text": "hi"}
    task = await rig.submit("email", payload)

    assert await rig.process_visible() == [Outcome.COMPLETED]

    done = await rig.service.get(task.id)
    assert isinstance(done.result, dict)
    assert done.result["accepted"] == ["ann@example.com", "bob@example.com"]
    [sent] = [m for m in sent_by_ses(aws_endpoint_url) if m["id"] == done.result["message_id"]]
    assert sent["source"] == SENDER
    # moto adds the To header's addresses to the Destinations it was given: a set
    assert set(sent["destinations"]) == {"ann@example.com", "bob@example.com"}
    assert "Subject: Via SES" in sent["raw_data"]
    assert "To: ann@example.com, bob@example.com" in sent["raw_data"]


async def test_ses_refusing_an_unverified_sender_fails_the_task_at_once(
    aws_endpoint_url: str, ses: Any
) -> None:
    rig = WorkerRig()
    rig.task_types.add(email_task_type(SesEmailSender(ses, sender="stranger@nowhere.test")))
    task = await rig.submit("email", "ann@example.com", max_attempts=3)

    assert await rig.process_visible() == [Outcome.FAILED]

    failed = await rig.service.get(task.id)
    assert failed.status is TaskStatus.FAILED and failed.attempts == 1
    assert failed.error is not None
    assert failed.error.startswith("EmailRejected: the mail server refused the message: SES ")
    assert "MessageRejected" in failed.error and "stranger@nowhere.test" in failed.error


def test_the_ses_backend_is_chosen_by_setting(aws_endpoint_url: str, ses: Any) -> None:
    settings = Settings(backend="memory", email_backend="ses", email_from=SENDER)
    container = build_container(settings)
    container.aws_ses.override(ses)

    assert isinstance(container.mail(), SesEmailSender)
