"""Readiness judged from the writes the service already makes.

A ping answers while every write fails (a full disk still reads; a DynamoDB table
throttling writes still answers a describe), so readiness also looks at the outcome of
recent writes: after ``failures_to_trip`` failed writes in a row to a dependency, and no
success since, that dependency is failing and ``/ready`` answers 503 naming it.

Recovery needs a write, but a service that is not ready gets no traffic to write with.
So while a dependency is failing, a readiness check may make one small probe write to it
(``probes``), at most once per ``probe_interval`` seconds, the first one interval after
it tripped; when healthy, checks write nothing (on AWS a write per probe would cost
capacity). A probe is smaller than a task, so its success only half-opens: the
dependency is ready again, but its next failed write trips it at once; its next
successful write clears it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from domain.errors import InfrastructureError
from domain.models import WorkerInfo, new_lease_token
from domain.ports import Clock, WorkerRegistry

log = logging.getLogger("taskq.health")

FAILURES_TO_TRIP = 3
"""Failed writes in a row that make a dependency not ready: one failure is a blip (the
caller got its 503 and may retry); three in a row with no success between is a state."""
PROBE_INTERVAL_SECONDS = 5.0
"""At most one probe write per dependency this often, and only while it is failing."""
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass
class _Record:
    failures: int = 0
    detail: str = ""
    next_probe: float = float("-inf")


class WriteHealth:
    """The outcome of recent writes, per dependency (``"repository"``, ``"queue"``)."""

    def __init__(
        self,
        clock: Clock,
        probes: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
        *,
        failures_to_trip: int = FAILURES_TO_TRIP,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
    ) -> None:
        if failures_to_trip < 1:
            raise ValueError("failures_to_trip must be at least 1")
        self._clock = clock
        self._probes = dict(probes or {})
        self._failures_to_trip = failures_to_trip
        self._probe_interval = probe_interval
        self._records: dict[str, _Record] = {}

    def succeeded(self, dependency: str) -> None:
        record = self._records.pop(dependency, None)
        if record is not None and record.failures >= self._failures_to_trip:
            log.warning("%s: writes succeed again", dependency)

    def failed(self, dependency: str, detail: str) -> None:
        record = self._records.setdefault(dependency, _Record())
        record.failures += 1
        record.detail = detail
        if record.failures == self._failures_to_trip:
            record.next_probe = self._clock.monotonic() + self._probe_interval
            log.error("%s: %d writes in a row failed: %s", dependency, record.failures, detail)

    def failing(self) -> dict[str, str]:
        """Each failing dependency and why (the last failure's detail)."""
        return {
            name: f"the last {record.failures} writes failed: {record.detail}"
            for name, record in self._records.items()
            if record.failures >= self._failures_to_trip
        }

    async def check(self) -> dict[str, str]:
        """``failing()``, after a probe write to each failing dependency whose probe is
        due: a probe that succeeds makes its dependency ready again."""
        for name in list(self.failing()):
            probe = self._probes.get(name)
            record = self._records[name]
            now = self._clock.monotonic()
            if probe is None or now < record.next_probe:
                continue
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
            except InfrastructureError as exc:
                self.failed(name, exc.detail)
            except TimeoutError:
                self.failed(name, f"a probe write got no answer in {PROBE_TIMEOUT_SECONDS:g} s")
            except Exception as exc:  # a readiness check reports, it does not crash
                log.warning("%s: probe write raised %s", name, type(exc).__name__)
                self.failed(name, f"a probe write raised {type(exc).__name__}")
            else:
                record.failures = self._failures_to_trip - 1  # half-open: see above
                log.warning("%s: a probe write succeeded", name)
            record.next_probe = now + self._probe_interval
        return self.failing()


def store_probe(workers: WorkerRegistry, clock: Clock) -> Callable[[], Awaitable[None]]:
    """A probe write to the task store: a heartbeat of a worker with no handler slots,
    removed at once. On every backend the worker registry lives in the task store (the
    same SQLite file, the same DynamoDB table), so this write fails when task writes do."""

    async def probe() -> None:
        now, probe_id = clock.now(), f"readiness-probe-{new_lease_token()[:12]}"
        # No handler slots (active_workers is unchanged), no pid, live for a second.
        info = WorkerInfo(probe_id, "readiness-probe", 0, 0, 0, now, now, heartbeat_seconds=0)
        await workers.beat(info, ttl_seconds=PROBE_INTERVAL_SECONDS)
        await workers.remove(info.worker_id)

    return probe
