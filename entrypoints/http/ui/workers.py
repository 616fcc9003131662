"""Which workers are gone: the registry answers only the live ones, so the dashboard
remembers the workers this API process has seen live, and shows those that stopped
beating as gone for a while. (Each API process remembers its own sightings.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.models import WorkerInfo

GONE_SHOWN_SECONDS = 3600
"""How long a worker that stopped beating is listed as gone."""
MAX_REMEMBERED_WORKERS = 500
"""Sightings kept at most, the oldest forgotten first: memory stays bounded."""


@dataclass(frozen=True)
class WorkerRow:
    info: WorkerInfo
    live: bool


class WorkerSightings:
    def __init__(self) -> None:
        self._seen: dict[str, WorkerInfo] = {}

    def update(self, live: Sequence[WorkerInfo], now: datetime) -> list[WorkerRow]:
        """The live workers, then the gone ones most recently seen first."""
        live_ids = {w.worker_id for w in live}
        for info in live:
            self._seen.pop(info.worker_id, None)
            self._seen[info.worker_id] = info
        horizon = now - timedelta(seconds=GONE_SHOWN_SECONDS)
        for worker_id, info in list(self._seen.items()):
            if info.worker_id not in live_ids and info.last_seen < horizon:
                del self._seen[worker_id]
        while len(self._seen) > MAX_REMEMBERED_WORKERS:
            del self._seen[next(iter(self._seen))]
        gone = [w for w in self._seen.values() if w.worker_id not in live_ids]
        gone.sort(key=lambda w: w.last_seen, reverse=True)
        return [WorkerRow(w, True) for w in live] + [WorkerRow(w, False) for w in gone]
