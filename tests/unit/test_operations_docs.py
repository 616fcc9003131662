"""docs/operations.md and the files it includes: the Prometheus configuration and
alert rules (checked and unit-tested with promtool, where it is installed: `make test`
installs it as root) and the KEDA manifest (the fields KEDA needs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PROMETHEUS = DOCS / "prometheus"
KEDA = DOCS / "keda" / "workers.yaml"

METRICS = {
    "taskq_oldest_due_task_age_seconds",
    "taskq_tasks_failed_total",
    "taskq_tasks_completed_total",
    "taskq_dead_letter_queue_depth",
    "taskq_live_workers",
}
"""The metric names the alerts and the autoscaler read (the metrics module exports
them under these names)."""


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_are_valid() -> None:
    done = promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_each_alert_fires_when_it_should_and_not_before() -> None:
    done = promtool("test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_prometheus_configuration_is_valid(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    (tmp_path / "taskq-api-key").write_text("an-api-key\n")  # the file it names must exist
    done = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_read_the_agreed_metrics() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"taskq_[a-z_]+", rule["expr"])}
    assert used == METRICS
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]


def test_the_scrape_config_sends_the_api_key_to_the_api_only() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["taskq-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["authorization"] == {"type": "Bearer", "credentials_file": "taskq-api-key"}
    assert "authorization" not in jobs["taskq-worker"]
    assert config["rule_files"] == ["alerts.yml"]


def keda_documents() -> dict[str, dict[str, Any]]:
    documents = list(yaml.safe_load_all(KEDA.read_text()))
    assert all(d["apiVersion"] == "keda.sh/v1alpha1" for d in documents)
    return {d["kind"]: d for d in documents}


def test_the_keda_manifest_has_what_keda_needs() -> None:
    documents = keda_documents()
    scaled = documents["ScaledObject"]
    spec = scaled["spec"]
    assert scaled["metadata"]["name"] and spec["scaleTargetRef"]["name"] == "taskq-worker"
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    triggers = {t["type"]: t for t in spec["triggers"]}
    assert set(triggers) == {"aws-sqs-queue", "prometheus"}
    for trigger in spec["triggers"]:
        # KEDA reads trigger metadata as strings: a bare number is rejected
        assert all(isinstance(v, str) for v in trigger["metadata"].values()), trigger
    sqs = triggers["aws-sqs-queue"]
    assert {"queueURL", "queueLength", "awsRegion"} <= set(sqs["metadata"])
    assert int(sqs["metadata"]["queueLength"]) > 0
    auth = documents["TriggerAuthentication"]
    assert sqs["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["metadata"]["namespace"] == scaled["metadata"]["namespace"]
    assert auth["spec"]["podIdentity"]["provider"] == "aws"
    prometheus = triggers["prometheus"]["metadata"]
    assert {"serverAddress", "query", "threshold"} <= set(prometheus)
    assert "taskq_oldest_due_task_age_seconds" in prometheus["query"]
    assert float(prometheus["threshold"]) > float(prometheus["activationThreshold"]) >= 0


def test_the_operations_doc_includes_its_files_and_the_readme_links_it() -> None:
    text = (DOCS / "operations.md").read_text()
    for name in ("prometheus/prometheus.yml", "prometheus/alerts.yml", "keda/workers.yaml"):
        assert f"({name})" in text, name
        assert (DOCS / name).is_file()
    for metric in METRICS:
        assert metric in text
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Operating it", 1)[1].split("\n## ", 1)[0]
    assert "(docs/operations.md)" in section
    assert "taskq_oldest_due_task_age_seconds" in section  # the exposition sample
    assert '"task_id"' in section  # the JSON log line sample
