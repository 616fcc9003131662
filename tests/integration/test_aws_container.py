"""The container wires the AWS adapters from settings: clients, queue URLs, provisioning.

The clients get fake credentials by overriding the two client providers (the service
itself takes credentials from the environment, as boto3 does); everything else is the
container's own wiring, against a real local endpoint.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

from adapters.aws_provision import dlq_name
from adapters.dynamodb import DynamoDbTaskRepository, DynamoDbWorkerRegistry
from bootstrap.backends import aws_client, aws_sqs_poll_client
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.errors import InfrastructureError
from domain.limits import MAX_LONG_POLL_SECONDS
from domain.models import TaskStatus
from domain.services import SubmitRequest
from tests.support.aws import aws_endpoint, shared_clients, unique_name, use_shared_clients

pytestmark = pytest.mark.aws


async def _call(result: object) -> None:
    if inspect.isawaitable(result):
        await result


def aws_settings(endpoint: str, **changes: object) -> Settings:
    values: dict[str, object] = {
        "backend": "aws",
        "aws_endpoint_url": endpoint,
        "sqs_queue_name": unique_name("taskq-wiring"),
        "dynamodb_table": unique_name("taskq-wiring"),
        "max_receive_count": 4,
        "visibility_timeout": 30,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def with_test_clients(container: Container, endpoint: str) -> Container:
    use_shared_clients(container, endpoint)
    return container


@pytest.fixture
def endpoint() -> Iterator[str]:
    yield aws_endpoint()


def cleanup(endpoint: str, settings: Settings) -> None:
    sqs, dynamodb = shared_clients(endpoint)
    for name in (settings.sqs_queue_name, dlq_name(settings.sqs_queue_name)):
        try:
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except Exception:
            pass
    try:
        dynamodb.delete_table(TableName=settings.dynamodb_table)
    except Exception:
        pass


async def test_aws_backend_provisions_and_runs_a_task_end_to_end(endpoint: str) -> None:
    settings = aws_settings(endpoint, auto_provision=True)
    try:
        container = with_test_clients(build_container(settings), endpoint)
        await _call(container.init_resources())
        service = container.task_service()
        assert isinstance(container.backend_repository(), DynamoDbTaskRepository)
        assert isinstance(container.workers(), DynamoDbWorkerRegistry)
        # Provisioned on start: the queue pair exists under the configured names.
        sqs, _ = shared_clients(endpoint)
        for name in (settings.sqs_queue_name, dlq_name(settings.sqs_queue_name)):
            assert sqs.get_queue_url(QueueName=name)["QueueUrl"]

        task = await service.submit(SubmitRequest(type="email", payload="a@example.com"))
        assert (await service.get(task.id)).status is TaskStatus.PENDING
        [delivery] = await service.queue.receive(
            max_messages=1, visibility_timeout=30, wait_seconds=2
        )
        assert delivery.task_id == task.id
        await container.processor().process(delivery)
        assert (await service.get(task.id)).status is TaskStatus.COMPLETED
        # The counts come from the table's stream, counted in the background: they
        # follow within a few seconds.
        for _ in range(50):
            counts = await service.repository.count_by_status()
            if counts[TaskStatus.COMPLETED] == 1:
                break
            await asyncio.sleep(0.1)
        assert counts[TaskStatus.COMPLETED] == 1
        assert counts[TaskStatus.PENDING] == 0
        await _call(container.shutdown_resources())

        # A second container, without provisioning, finds the queues by name.
        again = with_test_clients(
            build_container(
                aws_settings(
                    endpoint,
                    sqs_queue_name=settings.sqs_queue_name,
                    dynamodb_table=settings.dynamodb_table,
                )
            ),
            endpoint,
        )
        assert (await again.task_service().get(task.id)).status is TaskStatus.COMPLETED
        await again.task_service().queue.ping()
    finally:
        cleanup(endpoint, settings)


async def test_missing_queues_without_provisioning_is_an_infrastructure_error(
    endpoint: str,
) -> None:
    container = with_test_clients(build_container(aws_settings(endpoint)), endpoint)
    with pytest.raises(InfrastructureError, match="taskq init"):
        container.queue()


def test_clients_follow_the_settings() -> None:
    settings = Settings(
        backend="aws",
        aws_region="eu-west-1",
        aws_endpoint_url="http://127.0.0.1:4566",
        aws_retry_mode="adaptive",
        aws_max_attempts=7,
        aws_timeout_seconds=3,
    )
    dynamodb = aws_client("dynamodb", settings)
    sqs = aws_client("sqs", settings)
    poll = aws_sqs_poll_client(settings)
    assert dynamodb.meta.region_name == "eu-west-1"
    assert dynamodb.meta.endpoint_url == "http://127.0.0.1:4566"
    assert dynamodb.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 7}
    assert dynamodb.meta.config.read_timeout == 3
    # Only the long polls' client outlasts the longest long poll: a send to a hanging
    # endpoint fails within the plain timeout.
    assert sqs.meta.config.read_timeout == 3
    assert poll.meta.config.read_timeout == 3 + MAX_LONG_POLL_SECONDS


def test_the_init_provider_provisions_once(endpoint: str) -> None:
    settings = aws_settings(endpoint)
    try:
        container = with_test_clients(build_container(settings), endpoint)
        first = container.backend.provision()
        assert first.changed
        assert any(line == f"created table {settings.dynamodb_table}" for line in first.lines())
        second = container.backend.provision()
        assert not second.changed
        assert (second.queue_url, second.dlq_url) == (first.queue_url, first.dlq_url)
    finally:
        cleanup(endpoint, settings)


def _existing(endpoint: str, settings: Settings) -> set[str]:
    """Which of the settings' queues and table exist on the endpoint."""
    sqs, dynamodb = shared_clients(endpoint)
    found = set()
    for name in (settings.sqs_queue_name, dlq_name(settings.sqs_queue_name)):
        try:
            sqs.get_queue_url(QueueName=name)
            found.add(name)
        except sqs.exceptions.QueueDoesNotExist:
            pass
    try:
        dynamodb.describe_table(TableName=settings.dynamodb_table)
        found.add(settings.dynamodb_table)
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    return found


@pytest.mark.parametrize("auto_provision", [False, True])
async def test_the_start_provisions_only_with_auto_provision(
    endpoint: str, auto_provision: bool
) -> None:
    settings = aws_settings(endpoint, auto_provision=auto_provision)
    everything = {
        settings.sqs_queue_name,
        dlq_name(settings.sqs_queue_name),
        settings.dynamodb_table,
    }
    try:
        container = with_test_clients(build_container(settings), endpoint)
        await _call(container.init_resources())
        # The start alone (no use case, no queue lookup ran yet): all, or nothing.
        assert _existing(endpoint, settings) == (everything if auto_provision else set())
        await _call(container.shutdown_resources())
    finally:
        cleanup(endpoint, settings)


async def test_looking_up_the_queues_never_provisions_them(endpoint: str) -> None:
    settings = aws_settings(endpoint, auto_provision=True)
    try:
        container = with_test_clients(build_container(settings), endpoint)
        # Not started: auto-provisioning is a step of the start, not of a lookup.
        with pytest.raises(InfrastructureError, match="taskq init"):
            container.queue()
        assert _existing(endpoint, settings) == set()
    finally:
        cleanup(endpoint, settings)


async def test_an_ack_still_queued_at_shutdown_is_sent_by_the_shutdown(endpoint: str) -> None:
    """Acks go out in the background, lingering for company; the process's shutdown
    (``shutdown_resources``) sends the ones still queued."""
    settings = aws_settings(endpoint, auto_provision=True)
    try:
        container = with_test_clients(build_container(settings), endpoint)
        await _call(container.init_resources())
        queue = container.queue()
        await queue.send("t-1")
        [delivery] = await queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=5)
        await queue.ack(delivery)
        assert (await queue.depth()).in_flight == 1, "queued, not sent yet"
        await _call(container.shutdown_resources())
        assert (await container.backend.sqs_queue().depth()).total == 0
    finally:
        cleanup(endpoint, settings)
