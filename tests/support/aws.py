"""A local AWS endpoint for the tests, and clients, queues and tables on it.

The endpoint is chosen once per test process, in this order:

1. ``AWS_ENDPOINT_URL`` when set (LocalStack from docker-compose, a CI service, ...);
2. LocalStack in a container (testcontainers) when a Docker engine answers a ping;
3. an in-process moto server on 127.0.0.1 with a free port.

When none can be had the test is skipped, or fails when ``CI=true``.

``AWS_ENDPOINT_URL_SQS`` and ``AWS_ENDPOINT_URL_DYNAMODB`` (botocore's per-service
variables) override that endpoint for one service: ``AWS_ENDPOINT_URL_SQS`` alone runs
the SQS tests against any SQS endpoint (LocalStack, AWS) with DynamoDB on moto.

Credentials are fake and passed to each client explicitly; ``os.environ`` is never
changed. Every queue and table gets a unique name and is deleted after its test.
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import os
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
import pytest
from botocore.config import Config
from dependency_injector import providers

from adapters.aws_provision import ProvisionResult, provision
from scripts.local_aws import moto_server

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
LOCALSTACK_IMAGE = "localstack/localstack:3.8"
FAKE_KEY = "testing"
TEST_VISIBILITY_TIMEOUT = 30


class _NoEndpoint(Exception):
    pass


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False
    # docker-py leaks its socket when the engine does not answer; the ResourceWarning
    # would surface in whatever test runs next, so collect it here, silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return _ping_docker()
        finally:
            gc.collect()


def _ping_docker() -> bool:
    try:
        import docker

        client = docker.from_env()  # raises DockerException at once without an engine
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:  # an engine that does not answer, or no permission: no Docker
        return False
    finally:
        client.close()


def _start_localstack() -> str:
    from testcontainers.community.localstack import LocalStackContainer

    container = LocalStackContainer(image=LOCALSTACK_IMAGE).with_services("sqs", "dynamodb", "s3")
    container.start()
    atexit.register(container.stop)
    return str(container.get_url())


def _start_moto() -> str:
    """A moto server (``scripts.local_aws``: DynamoDB requests serialised) on a free
    127.0.0.1 port, in a thread of this process."""
    server = moto_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    atexit.register(server.shutdown)
    return f"http://127.0.0.1:{server.server_port}"


@functools.cache
def _endpoint() -> str:
    configured = os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured
    per_service = [os.environ.get(f"AWS_ENDPOINT_URL_{s}") for s in ("SQS", "DYNAMODB")]
    if all(per_service):
        return str(per_service[0])  # each client uses its own: nothing to start
    if _docker_answers():
        return _start_localstack()
    try:
        return _start_moto()
    except Exception as error:
        raise _NoEndpoint(f"no local AWS endpoint: {error}") from error


def aws_endpoint() -> str:
    """The endpoint URL; skips the calling test (fails it in CI) when there is none."""
    try:
        return _endpoint()
    except _NoEndpoint as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def aws_endpoint_url() -> str:
    return aws_endpoint()


def client_config(**overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "retries": {"mode": "standard", "total_max_attempts": 3},
        "connect_timeout": 5,
        # Longer than the longest long poll (20 s).
        "read_timeout": 30,
        "max_pool_connections": 32,
    }
    settings.update(overrides)
    return Config(**settings)


def service_endpoint(service: str, endpoint: str) -> str:
    """``endpoint``, unless ``AWS_ENDPOINT_URL_<SERVICE>`` names one for ``service``.

    botocore reads that variable only when no ``endpoint_url`` is passed; the clients
    here pass one, so they look it up themselves, as botocore would."""
    return os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or endpoint


def _client(
    service: Literal["sqs", "dynamodb", "ses", "s3"], endpoint: str, config: Config | None
) -> Any:
    """A new client of ``service``: tests that register event hooks on it affect
    nothing else."""
    return boto3.session.Session().client(
        service,
        endpoint_url=service_endpoint(service, endpoint),
        region_name=REGION,
        config=config or client_config(),
        aws_access_key_id=FAKE_KEY,
        aws_secret_access_key=FAKE_KEY,
    )


def sqs_client(endpoint: str, config: Config | None = None) -> SQSClient:
    client: SQSClient = _client("sqs", endpoint, config)
    return client


def dynamodb_client(endpoint: str, config: Config | None = None) -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb", endpoint, config)
    return client


def ses_client(endpoint: str) -> Any:
    """An SES client of ``endpoint`` (moto records what it sent: ``/moto-api/data.json``)."""
    return _client("ses", endpoint, None)


def s3_client(endpoint: str) -> S3Client:
    """An S3 client of ``endpoint``, buckets addressed by path (a local endpoint has no
    per-bucket host names)."""
    client: S3Client = _client(
        "s3", endpoint, client_config(s3={"addressing_style": "path"}, signature_version="s3v4")
    )
    return client


def stream_counts(repository: Any, *, holder: str = "test") -> Any:
    """A counts aggregator (``StreamCounts``) on ``repository``'s table and stream."""
    from adapters.dynamodb.change_stream import DynamoDbChangeStream
    from adapters.dynamodb.stream_counts import StreamCounts

    client = repository._client
    stream = DynamoDbChangeStream.beside(client, repository.table_name)
    return StreamCounts(client, repository.table_name, stream, holder=holder)


def use_shared_clients(container: Any, endpoint: str) -> None:
    """Hand ``container`` this process's shared clients of ``endpoint`` (the long
    polls' client too)."""
    sqs, dynamodb = shared_clients(endpoint)
    container.aws_sqs.override(providers.Object(sqs))
    container.aws_sqs_poll.override(providers.Object(sqs))
    container.aws_dynamodb.override(providers.Object(dynamodb))


@functools.cache
def shared_clients(endpoint: str) -> tuple[SQSClient, DynamoDBClient]:
    """Clients reused across tests (creating one costs tens of milliseconds)."""
    return sqs_client(endpoint), dynamodb_client(endpoint)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class AwsResources:
    endpoint: str
    sqs: SQSClient
    dynamodb: DynamoDBClient
    queue_name: str
    table_name: str
    provisioned: ProvisionResult


def provision_fresh(
    endpoint: str,
    *,
    max_receive_count: int,
    sqs: SQSClient | None = None,
    priorities: bool = False,
) -> AwsResources:
    shared_sqs, shared_dynamodb = shared_clients(endpoint)
    queue_name = unique_name("taskq-test")
    table_name = unique_name("taskq-test")
    result = provision(
        sqs or shared_sqs,
        shared_dynamodb,
        queue_name=queue_name,
        table_name=table_name,
        max_receive_count=max_receive_count,
        visibility_timeout=TEST_VISIBILITY_TIMEOUT,
        priorities=priorities,
    )
    return AwsResources(
        endpoint, sqs or shared_sqs, shared_dynamodb, queue_name, table_name, result
    )


def delete_resources(resources: AwsResources) -> None:
    """Best effort: a leftover queue on a throwaway endpoint harms nothing."""
    sqs, dynamodb = shared_clients(resources.endpoint)
    provisioned = resources.provisioned
    for url in {
        provisioned.queue_url,
        provisioned.dlq_url,
        *provisioned.priority_queue_urls.values(),
    }:
        try:
            sqs.delete_queue(QueueUrl=url)
        except Exception:
            pass
    try:
        dynamodb.delete_table(TableName=resources.table_name)
    except Exception:
        pass


@asynccontextmanager
async def aws_resources(
    *, max_receive_count: int, priorities: bool = False
) -> AsyncIterator[AwsResources]:
    import asyncio

    endpoint = aws_endpoint()
    resources = await asyncio.to_thread(
        functools.partial(
            provision_fresh, endpoint, max_receive_count=max_receive_count, priorities=priorities
        )
    )
    try:
        yield resources
    finally:
        await asyncio.to_thread(delete_resources, resources)


@contextmanager
def fresh_resources(
    endpoint: str, *, max_receive_count: int = 3, priorities: bool = False
) -> Iterator[AwsResources]:
    """A provisioned queue pair (with priorities: a queue per priority) and table for
    one test, deleted afterwards."""
    resources = provision_fresh(
        endpoint, max_receive_count=max_receive_count, priorities=priorities
    )
    try:
        yield resources
    finally:
        delete_resources(resources)


class FakeRawResponse:
    """What a ``before-send`` event hook hands botocore as the body of a made-up
    response (botocore reads it with ``raw.stream()``)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def json_error_response(
    status: int, error_type: str, message: str, *, query_error: str | None = None
) -> Any:
    """An AWS JSON-protocol error answer (SQS and DynamoDB both speak it), for
    ``before-send`` hooks that inject failures into a real client. ``query_error`` is
    the ``x-amzn-query-error`` header SQS adds (``"<legacy code>;Sender"``)."""
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": error_type, "message": message}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if query_error is not None:
        headers["x-amzn-query-error"] = query_error
    return AWSResponse(
        "http://injected",
        status,
        # AWSResponse wraps any mapping in its own HeadersDict; the stubs ask for more.
        headers,  # type: ignore[arg-type]
        FakeRawResponse(body),
    )
