"""deploy/cloudformation.yaml deployed on moto's CloudFormation, and the engine run on
what it created: ``taskq api`` and ``taskq worker`` as real processes, each signing
with its own key, so the moto server's request log (``tests.support.request_log``)
tells which actions each called; every one must be allowed by its role's policy as the
stack created it. The resources must equal what ``taskq init`` makes.

moto's CloudFormation does not apply a table's TTL, a bucket's lifecycle rule, or
alarms (it skips the resource type): those are checked against the code in
``tests/unit/test_cloudformation_template.py`` and by cfn-lint.
"""

from __future__ import annotations

import ast
import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from adapters.aws_provision import provision
from tests.support.blobs import image_bytes
from tests.support.processes import FAKE_AWS_ENV, ROOT, MotoServer, ProcessGroup, wait_all_final
from tests.support.request_log import Request, allows, iam_requests, read_log

pytestmark = [pytest.mark.e2e, pytest.mark.aws, pytest.mark.slow]

TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"
SENDER = "taskq@example.com"


def _client(service: str, endpoint: str, key: str) -> Any:
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=FAKE_AWS_ENV["AWS_REGION"],
        aws_access_key_id=key,
        aws_secret_access_key="testing",
    )


def deploy(endpoint: str, name: str) -> dict[str, str]:
    """The stack's outputs, once it is created."""
    cloudformation = _client("cloudformation", endpoint, "admin")
    parameters = {
        "QueueName": name,
        "TableName": name,
        "BucketName": name,
        "RetentionDays": "7",
        "SenderIdentity": SENDER,
        "Priorities": "true",
    }
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.monotonic() + 60
    while True:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_IN_PROGRESS" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def role_policy(endpoint: str, role_arn: str) -> dict[str, Any]:
    """The one inline policy of a role the stack created, its references resolved."""
    iam = _client("iam", endpoint, "admin")
    role = role_arn.rsplit("/", 1)[-1]
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    if not isinstance(document, str):
        return dict(document)
    try:
        return dict(json.loads(document))
    except ValueError:  # moto keeps a policy from a template as Python's repr of it
        return dict(ast.literal_eval(document))


def assert_same_resources(endpoint: str, outputs: dict[str, str]) -> None:
    """The stack's queues and table are those `taskq init` creates (keys, indexes,
    stream, redrive, lease, dead-letter retention)."""
    sqs, dynamodb = (_client(s, endpoint, "admin") for s in ("sqs", "dynamodb"))
    reference = f"init-{uuid.uuid4().hex[:8]}"
    made = provision(
        sqs,
        dynamodb,
        queue_name=reference,
        table_name=reference,
        max_receive_count=20,
        visibility_timeout=30,
    )

    def table(name: str) -> dict[str, Any]:
        found = dynamodb.describe_table(TableName=name)["Table"]
        return {
            "keys": found["KeySchema"],
            "attributes": sorted(found["AttributeDefinitions"], key=str),
            "indexes": sorted(
                (i["IndexName"], str(i["KeySchema"]), str(i["Projection"]))
                for i in found.get("GlobalSecondaryIndexes", [])
            ),
            "stream": found.get("StreamSpecification"),
            "billing": found.get("BillingModeSummary", {}).get("BillingMode"),
        }

    def queue(url: str) -> dict[str, Any]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
        return {
            "visibility": attributes["VisibilityTimeout"],
            "retention": attributes["MessageRetentionPeriod"],
            "receives": str(redrive.get("maxReceiveCount")),
            "dead_letters_to": redrive.get("deadLetterTargetArn", "").rsplit(":", 1)[-1],
        }

    assert table(outputs["TableName"]) == table(reference)
    stack_queue, init_queue = queue(outputs["QueueUrl"]), queue(made.queue_url)
    assert stack_queue["dead_letters_to"] == outputs["DeadLetterQueueUrl"].rsplit("/", 1)[-1]
    assert {**stack_queue, "dead_letters_to": ""} == {**init_queue, "dead_letters_to": ""}
    assert queue(outputs["DeadLetterQueueUrl"]) == queue(made.dlq_url)
    for level in ("High", "Low"):  # the priorities' queues: the main queue's settings
        assert queue(outputs[f"{level}PriorityQueueUrl"]) == stack_queue


def engine_env(endpoint: str, outputs: dict[str, str], key: str) -> dict[str, str]:
    return {
        **FAKE_AWS_ENV,
        "AWS_ACCESS_KEY_ID": key,
        "TASKQ_BACKEND": "aws",
        "AWS_ENDPOINT_URL": endpoint,
        "SQS_QUEUE_URL": outputs["QueueUrl"],
        "SQS_DLQ_URL": outputs["DeadLetterQueueUrl"],
        "DYNAMODB_TABLE": outputs["TableName"],
        "TASKQ_S3_BUCKET": outputs["BucketName"],
        "TASKQ_PRIORITIES": "true",
        "SQS_QUEUE_URL_HIGH": outputs["HighPriorityQueueUrl"],
        "SQS_QUEUE_URL_LOW": outputs["LowPriorityQueueUrl"],
        "TASKQ_EMAIL_BACKEND": "ses",
        "TASKQ_EMAIL_FROM": SENDER,
        "TASKQ_POLL_WAIT_SECONDS": "1",
        "TASKQ_INLINE_LIMIT": "1024",  # the long email below goes to S3 (the claim check)
        "WORKER_COUNT": "4",
    }


def run_tasks(api: httpx.Client) -> None:
    """Every kind of work the API and the workers do on AWS: an email (SES), an image
    uploaded, resized and downloaded (S3), a payload kept in S3 (the claim check), an
    export, a schedule added and deleted, listings, counts, dead letters."""
    uploaded = api.post("/blobs?name=cat.png", content=image_bytes((64, 48), "PNG"))
    assert uploaded.status_code == 201, uploaded.text
    submitted = [
        api.post("/tasks", json={"type": t, "payload": p, "priority": priority}).json()["id"]
        for t, p, priority in [
            ("email", "someone@example.com", "high"),
            ("email", {"to": "someone@example.com", "subject": "long", "body": "x" * 4000}, "low"),
            ("image-resize", {"image": uploaded.json()["key"], "width": 32, "height": 24}, None),
            ("data-export", "nightly", None),
        ]
    ]
    schedule = {"name": "nightly", "type": "data-export", "payload": "x", "cron": "0 3 * * *"}
    assert api.post("/schedules", json=schedule).status_code == 201
    assert api.delete("/schedules/nightly").status_code == 204
    tasks = wait_all_final(api, submitted, timeout=60)
    assert {t["status"] for t in tasks.values()} == {"COMPLETED"}, tasks
    resized = tasks[submitted[2]]["result"]
    assert isinstance(resized, dict)
    download = api.get(f"/blobs/{resized['key']}", follow_redirects=True)
    assert download.status_code == 200 and len(download.content) == resized["bytes"]
    assert api.get("/tasks", params={"status": "COMPLETED"}).status_code == 200
    assert api.get("/dead-letters").status_code == 200
    deadline = time.monotonic() + 20
    while api.get("/metrics").json()["completed_tasks"] < len(submitted):  # counted from the stream
        assert time.monotonic() < deadline, api.get("/metrics").json()
        time.sleep(0.5)


def denied(requests: list[Request], policy: dict[str, Any]) -> list[str]:
    return sorted({f"{r.action} on {r.resource}" for r in requests if not allows(policy, r)})


def test_the_engine_runs_on_the_stack_with_only_its_roles_permissions(tmp_path: Path) -> None:
    log_path = tmp_path / "requests.jsonl"
    name = f"taskq-cfn-{uuid.uuid4().hex[:8]}"
    with MotoServer(tmp_path, request_log=log_path) as moto:
        outputs = deploy(moto.url, name)
        assert_same_resources(moto.url, outputs)
        _client("ses", moto.url, "admin").verify_email_identity(EmailAddress=SENDER)

        with ProcessGroup(tmp_path, {}) as group:
            api = group.start("api", env=engine_env(moto.url, outputs, "api"), wait=True)
            worker = group.start("worker", env=engine_env(moto.url, outputs, "worker"))
            try:
                with api.client() as client:
                    run_tasks(client)
            except BaseException:
                print(group.logs())
                raise
            assert worker.terminate() == 0 and api.terminate() == 0, group.logs()

        calls: dict[str, list[Request]] = {"api": [], "worker": []}
        for line in read_log(log_path):
            if line["key"] in calls:
                calls[line["key"]] += iam_requests(line)
        for key, role in (("api", "ApiRoleArn"), ("worker", "WorkerRoleArn")):
            policy = role_policy(moto.url, outputs[role])
            assert calls[key], f"no request signed by {key}"
            assert denied(calls[key], policy) == [], f"{key} needs more than its role grants"

        worker_actions = {r.action for r in calls["worker"]}
        assert {"ses:SendRawEmail", "s3:GetObject", "s3:PutObject"} <= worker_actions
        assert "sqs:ReceiveMessage" in worker_actions
        every = {r.action for r in calls["api"] + calls["worker"]}
        assert "dynamodb:GetRecords" in every  # by whichever holds the counts' lease
        assert {"s3:PutObject", "sqs:SendMessage"} <= {r.action for r in calls["api"]}
