"""What a Dockerfile's final stage sets: environment, entrypoint, command, volumes."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    base: str
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        """What the container runs by default."""
        return [*self.entrypoint, *self.cmd]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in joined]


def final_stage(path: Path) -> Stage:
    stage: Stage | None = None
    for instruction, arguments in instructions(path):
        if instruction == "FROM":
            stage = Stage(base=arguments)
            continue
        assert stage is not None, f"{instruction} before FROM in {path}"
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                stage.env[name] = value
        elif instruction == "ENTRYPOINT":
            stage.entrypoint = json.loads(arguments)
        elif instruction == "CMD":
            stage.cmd = json.loads(arguments)
        elif instruction == "VOLUME":
            listed = arguments.startswith("[")
            stage.volumes += json.loads(arguments) if listed else arguments.split()
        elif instruction == "EXPOSE":
            stage.exposed += arguments.split()
    assert stage is not None, f"no FROM in {path}"
    return stage
