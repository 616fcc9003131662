"""A schedule as the JSON text the stores keep, and back. ``fired_through`` is kept
apart by each store (it is the one field that concurrent schedulers write)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from domain.schedules import MissedFires, Schedule


def dumps(schedule: Schedule) -> str:
    return json.dumps(
        {
            "name": schedule.name,
            "type": schedule.type,
            "cron": schedule.cron,
            "created_at": schedule.created_at.isoformat(),
            "payload": schedule.payload,
            "timezone": schedule.timezone,
            "missed": schedule.missed.value,
            "enabled": schedule.enabled,
            "declared": schedule.declared,
        },
        separators=(",", ":"),
    )


def loads(text: str, fired_through: datetime | None) -> Schedule:
    data: dict[str, Any] = json.loads(text)
    return Schedule(
        name=data["name"],
        type=data["type"],
        cron=data["cron"],
        created_at=datetime.fromisoformat(data["created_at"]),
        payload=data["payload"],
        timezone=data["timezone"],
        missed=MissedFires(data["missed"]),
        enabled=data["enabled"],
        declared=data["declared"],
        fired_through=fired_through,
    )
