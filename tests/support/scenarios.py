"""What a reliability scenario observes: the handlers' run log, a watch over the tasks'
statuses (a final record must never change), and the row it adds to
docs/reliability.md. The processes it runs come from ``tests.support.processes``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass
class RunLog:
    """What ``tests.e2e.reliability_handlers`` wrote: starts and finished runs per key."""

    path: Path

    def _lines(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [line.split() for line in self.path.read_text().splitlines() if line.strip()]

    def starts(self) -> dict[str, int]:
        return _count(words[1] for words in self._lines() if words[0] == "start")

    def completions(self) -> dict[str, int]:
        return _count(words[1] for words in self._lines() if words[0] == "done")

    def run_ids(self, key: str) -> set[str]:
        return {w[3] for w in self._lines() if w[0] == "done" and w[1] == key}


def _count(keys: Iterator[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return counts


def submit_tasks(
    client: httpx.Client, task_type: str, payloads: list[dict[str, object]]
) -> list[str]:
    """POST each payload; every submission must be accepted (201)."""
    ids = []
    for payload in payloads:
        response = client.post("/tasks", json={"type": task_type, "payload": payload})
        assert response.status_code == 201, response.text
        ids.append(str(response.json()["id"]))
    return ids


@dataclass
class Violation:
    task_id: str
    what: str


class StatusWatch:
    """Polls tasks by id and checks that a final record never changes.

    A COMPLETED task going back (to PENDING or PROCESSING), or its result or finish time
    changing, means its completion was recorded twice: a violation.
    """

    def __init__(self, client: httpx.Client, ids: list[str]) -> None:
        self.client = client
        self.ids = list(ids)
        self.latest: dict[str, dict[str, object]] = {}
        self.first_final: dict[str, dict[str, object]] = {}
        self.violations: list[Violation] = []
        self.missing: set[str] = set()
        self.max_processing = 0

    def poll(self) -> dict[str, dict[str, object]]:
        processing = 0
        for task_id in self.ids:
            response = self.client.get(f"/tasks/{task_id}")
            if response.status_code == 404:
                self.missing.add(task_id)
                continue
            assert response.status_code == 200, response.text
            task: dict[str, object] = response.json()
            self.latest[task_id] = task
            processing += task["status"] == "PROCESSING"
            first = self.first_final.get(task_id)
            if first is None:
                if task["status"] in FINAL_STATUSES:
                    self.first_final[task_id] = task
                continue
            for field in ("status", "finished_at", "result", "attempts"):
                if task[field] != first[field]:
                    self.violations.append(
                        Violation(
                            task_id,
                            f"{field} changed after final: {first[field]!r} -> {task[field]!r}",
                        )
                    )
        self.max_processing = max(self.max_processing, processing)
        return self.latest

    def count(self, status: str) -> int:
        return sum(1 for t in self.latest.values() if t["status"] == status)

    def lost(self) -> int:
        """Tasks the store no longer knows, or that ended FAILED or CANCELLED though
        every scenario that counts this expects them to complete."""
        return len(self.missing) + self.count("FAILED") + self.count("CANCELLED")

    def all_final(self) -> bool:
        return len(self.first_final) == len(self.ids)

    def wait_all_final(self, timeout: float, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if self.all_final():
                return True
            time.sleep(interval)
        return False

    def not_final(self) -> dict[str, object]:
        return {i: t["status"] for i, t in self.latest.items() if t["status"] not in FINAL_STATUSES}


def wait_for(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "condition"
) -> float:
    """Poll until ``predicate()``; the seconds it took. Raises TimeoutError."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what} not met within {timeout}s")


@dataclass
class ScenarioResult:
    """One row of docs/reliability.md."""

    scenario: str
    backend: str
    tasks: int
    lost: int
    stuck: int
    duplicated_runs: int
    recover_seconds: float | None
    double_completions: int = 0
    notes: str = ""
    healthy_failed: int | None = None
    """Tasks that did nothing wrong but ended FAILED (None: the scenario has none)."""
    reconciler_duplicates: int | None = None
    """Messages the reconciler sent for tasks that already had one (None: not counted)."""

    @classmethod
    def observed(
        cls,
        scenario: str,
        backend: str,
        watch: StatusWatch,
        run_log: RunLog,
        keys: list[str],
        *,
        recover_seconds: float | None = None,
        tasks: int | None = None,
        notes: str = "",
        reconciler_duplicates: int | None = None,
    ) -> ScenarioResult:
        """The row for the tasks ``watch`` saw (``tasks``: how many, all it watched by
        default) and the handler runs of ``keys`` in ``run_log``; ``recover_seconds``
        None: they did not all end in time."""
        return cls(
            scenario=scenario,
            backend=backend,
            tasks=len(watch.ids) if tasks is None else tasks,
            lost=watch.lost(),
            stuck=len(watch.not_final()),
            duplicated_runs=duplicated_runs(run_log, keys),
            recover_seconds=None if recover_seconds is None else round(recover_seconds, 1),
            double_completions=len(watch.violations),
            notes=notes,
            reconciler_duplicates=reconciler_duplicates,
        )

    def check(self) -> None:
        assert self.lost == 0, self
        assert self.stuck == 0, self
        assert self.double_completions == 0, self
        assert not self.healthy_failed, self
        assert not self.reconciler_duplicates, self


def duplicated_runs(run_log: RunLog, keys: list[str]) -> int:
    """Handler runs that finished beyond the first, over ``keys``."""
    done = run_log.completions()
    return sum(max(0, done.get(key, 0) - 1) for key in keys)


def submit_sleepy(client: httpx.Client, count: int, seconds: float) -> tuple[list[str], list[str]]:
    """Submit ``count`` ``sleepy`` tasks of ``seconds`` each: their run-log keys and ids."""
    keys = [uuid.uuid4().hex for _ in range(count)]
    ids = submit_tasks(client, "sleepy", [{"key": key, "seconds": seconds} for key in keys])
    return keys, ids
