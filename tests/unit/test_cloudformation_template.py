"""deploy/cloudformation.yaml: clean for cfn-lint, and the same definitions as the code
that `taskq init` runs, for what moto's CloudFormation does not apply (TTL, the
bucket's lifecycle rule, alarms). Deployed and run on in
``tests/e2e/test_cloudformation_stack.py``."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.decode import cfn_yaml

from adapters.aws_provision import DLQ_RETENTION_SECONDS, DLQ_SUFFIX, STREAM
from adapters.blobs.bucket import lifecycle_rule
from adapters.dynamodb import table as shape
from bootstrap.settings import Settings
from domain.limits import MAX_RECEIVE_COUNT, MAX_VISIBILITY_TIMEOUT_SECONDS
from tests.support.processes import ROOT

TEMPLATE_PATH = ROOT / "deploy" / "cloudformation.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return loaded


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][name]["Properties"]
    return properties


def lint_in_region(text: str) -> list[str]:
    """cfn-lint's findings in one region (every region: minutes of CPU)."""
    return [str(match) for match in lint(text, regions=["us-east-1"])]


def test_cfn_lint_finds_nothing() -> None:
    assert lint_in_region(TEMPLATE_PATH.read_text()) == []


def test_cfn_lint_finds_a_broken_table() -> None:
    broken = TEMPLATE_PATH.read_text().replace("NEW_AND_OLD_IMAGES", "NEW_AND_OLDIMAGES")
    assert any("NEW_AND_OLDIMAGES" in finding for finding in lint_in_region(broken))


def test_the_table_is_the_one_init_creates(template: dict[str, Any]) -> None:
    table = resource(template, "TaskTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [
        (shape.PK, "HASH"),
        (shape.SK, "RANGE"),
    ]
    indexes = {
        index["IndexName"]: (
            [k["AttributeName"] for k in index["KeySchema"]],
            index["Projection"]["ProjectionType"],
        )
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        shape.GSI1: ([shape.GSI1_PK, shape.GSI1_SK], "ALL"),
        shape.HELD_INDEX: ([shape.HELD_PK, shape.HELD_SK], "ALL"),
    }
    assert table["StreamSpecification"] == {"StreamViewType": STREAM["StreamViewType"]}
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": shape.TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_the_queues_are_those_init_creates(template: dict[str, Any]) -> None:
    dead_letters = resource(template, "DeadLetterQueue")
    assert dead_letters["MessageRetentionPeriod"] == DLQ_RETENTION_SECONDS
    assert dead_letters["QueueName"] == {"Fn::Sub": "${QueueName}" + DLQ_SUFFIX}
    redrive = resource(template, "TaskQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}

    parameters = template["Parameters"]
    defaults = Settings.model_validate({})
    assert parameters["QueueName"]["Default"] == defaults.sqs_queue_name
    assert parameters["TableName"]["Default"] == defaults.dynamodb_table
    assert parameters["VisibilityTimeout"]["Default"] == defaults.visibility_timeout
    assert parameters["VisibilityTimeout"]["MaxValue"] == MAX_VISIBILITY_TIMEOUT_SECONDS
    assert parameters["MaxReceiveCount"]["Default"] == defaults.max_receive_count
    assert parameters["MaxReceiveCount"]["MaxValue"] == MAX_RECEIVE_COUNT


def test_the_bucket_rule_is_the_one_init_writes(template: dict[str, Any]) -> None:
    (rule,) = resource(template, "BlobBucket")["LifecycleConfiguration"]["Rules"]
    kept = lifecycle_rule(None)
    expiring = lifecycle_rule(7 * 86_400)
    assert rule["Id"] == kept["ID"] and rule["Status"] == kept["Status"]
    assert rule["Prefix"] == kept["Filter"]["Prefix"]
    assert rule["AbortIncompleteMultipartUpload"] == kept["AbortIncompleteMultipartUpload"]
    # Retention in days (init: TASKQ_RETENTION_SECONDS rounded up), none when kept forever.
    assert "Expiration" not in kept and expiring["Expiration"] == {"Days": 7}
    assert rule["ExpirationInDays"] == {
        "Fn::If": ["KeepsBlobsForever", {"Ref": "AWS::NoValue"}, {"Ref": "RetentionDays"}]
    }


def test_alarms_watch_the_dead_letters_and_the_oldest_message(template: dict[str, Any]) -> None:
    watched = {
        (alarm["MetricName"], alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0])
        for alarm in (
            r["Properties"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        )
    }
    assert watched == {
        ("ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
        ("ApproximateAgeOfOldestMessage", "TaskQueue"),
    }


def test_no_role_is_granted_a_wildcard_action_or_any_resource(template: dict[str, Any]) -> None:
    for name in ("ApiRole", "WorkerRole"):
        (policy,) = resource(template, name)["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:  # the optional email statement
                statement = statement["Fn::If"][1]
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, (name, action)
            for arn in resources if isinstance(resources, list) else [resources]:
                assert arn != "*", (name, statement)
