"""docker-compose.yml, the Dockerfile and the CI workflow describe the deployment the
docs promise: LocalStack, a one-shot init, the API and the workers on the aws backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.dockerfile import final_stage

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text())


def test_compose_runs_init_then_api_and_workers_on_localstack() -> None:
    services = load("docker-compose.yml")["services"]
    assert {"localstack", "init", "api", "worker"} <= set(services)
    assert services["localstack"]["image"].startswith("localstack/localstack:")
    assert services["localstack"]["image"] != "localstack/localstack:latest"
    assert "sqs" in services["localstack"]["environment"]["SERVICES"]
    assert "dynamodb" in services["localstack"]["environment"]["SERVICES"]

    for name, command in (("init", ["init"]), ("api", ["api"]), ("worker", ["worker"])):
        service = services[name]
        assert service["command"] == command
        assert service["environment"]["TASKQ_BACKEND"] == "aws"
        assert service["environment"]["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert services["init"]["depends_on"]["localstack"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"


def test_compose_publishes_ports_on_loopback_only() -> None:
    services = load("docker-compose.yml")["services"]
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_dockerfile_is_multi_stage_and_runs_the_cli_unprivileged() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2
    assert any(line.startswith("COPY --from=build") for line in lines)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert 'ENTRYPOINT ["taskq"]' in lines


def test_the_image_serves_on_all_interfaces_with_sqlite_in_a_volume() -> None:
    image = final_stage(ROOT / "Dockerfile")

    assert image.argv == ["taskq", "serve"]
    assert image.env["TASKQ_HOST"] == "0.0.0.0"
    assert image.env["PORT"] in image.exposed
    assert str(Path(image.env["TASKQ_SQLITE_PATH"]).parent) in image.volumes
    assert "TASKQ_INSECURE" not in image.env  # open only with keys, or when told to


def test_compose_api_says_it_is_insecure_and_has_a_healthcheck() -> None:
    api = load("docker-compose.yml")["services"]["api"]

    assert api["environment"]["TASKQ_INSECURE"] == "true"
    assert "TASKQ_INSECURE" in (ROOT / "docker-compose.yml").read_text().split("services:")[0]
    check = api["healthcheck"]
    assert check["test"][0] == "CMD" and "/health" in " ".join(check["test"])
    assert {"interval", "timeout", "retries"} <= set(check)


def test_readme_shows_docker_run_with_keys_or_insecure() -> None:
    readme = (ROOT / "README.md").read_text()
    docker = readme[readme.index("### Docker") :]

    assert "docker run -p 8080:8080 -e TASKQ_API_KEYS=" in docker
    assert "--insecure" in docker and "/data" in docker


def test_ci_tests_builds_and_runs_integration_on_localstack() -> None:
    jobs = load(".github/workflows/ci.yml")["jobs"]
    assert {"test", "integration-localstack", "docker"} <= set(jobs)
    assert any(step.get("run") == "make test" for step in jobs["test"]["steps"])
    integration = jobs["integration-localstack"]
    assert integration["services"]["localstack"]["image"].startswith("localstack/localstack:")
    assert integration["env"]["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert any("docker build" in step.get("run", "") for step in jobs["docker"]["steps"])
