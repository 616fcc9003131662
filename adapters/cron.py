"""``CroniterCalendar``: the CronCalendar port (domain/schedules.py) on croniter.

croniter walks the wall-clock times a cron expression names; this module turns each
into the instants it fires at in the schedule's timezone, as Vixie cron does across a
daylight-saving change:

- a wall time that does not exist (skipped by a spring-forward) fires once, at the
  first valid instant after the gap (02:30 on a night that jumps from 02:00 to 03:00
  fires at 03:00); several such times fire once together;
- a wall time that occurs twice (a fall-back repeats an hour) fires once, at its first
  occurrence;
- except for expressions that run every hour (hour field ``*``): they follow elapsed
  time, so they fire in both passes of a repeated hour and have nothing to catch up
  after a skipped one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

_NEAR = timedelta(hours=3)
"""A daylight-saving change closer than this to the instant asked about takes the
careful path (every zone's change is at most two hours)."""
_MAX_STEPS = 100_000
"""Wall times examined on the careful path at most (a per-second expression across a
one-hour change examines about 7,200)."""


class CroniterCalendar:
    def check(self, cron: str) -> None:
        fields = cron.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"has {len(fields)} fields; give 5, or 6 with seconds first")
        try:
            croniter(cron, second_at_beginning=True)
        except (CroniterError, ValueError, KeyError) as exc:
            raise ValueError(str(exc) or type(exc).__name__) from None

    def next_fire(self, cron: str, timezone: ZoneInfo, after: datetime) -> datetime:
        after = after.astimezone(UTC)
        hourly = _every_hour(cron)
        wall_after = after.astimezone(timezone).replace(tzinfo=None)
        change = _offset_change(timezone, after - _NEAR, after + _NEAR)
        if not change:
            walls = croniter(cron, wall_after, second_at_beginning=True)
            wall = walls.get_next(datetime)
            fires = _instants(wall, timezone, hourly=hourly)
            if len(fires) == 1 and fires[0] == _plain(wall, timezone) and fires[0] > after:
                return fires[0]
            change = _offset_change(timezone, after - _NEAR, fires[-1] + _NEAR if fires else after)
        return _careful(
            cron, timezone, after, hourly=hourly, margin=max(change, timedelta(hours=1))
        )


def _careful(
    cron: str, timezone: ZoneInfo, after: datetime, *, hourly: bool, margin: timedelta
) -> datetime:
    """Every wall time from ``margin`` before ``after``'s until ``margin`` past the best
    fire found: near a change, wall order is not instant order."""
    wall_after = after.astimezone(timezone).replace(tzinfo=None)
    walls = croniter(cron, wall_after - 2 * margin, second_at_beginning=True)
    best: datetime | None = None
    for _ in range(_MAX_STEPS):
        wall = walls.get_next(datetime)
        for fire in _instants(wall, timezone, hourly=hourly):
            if fire > after and (best is None or fire < best):
                best = fire
        if best is not None and wall > best.astimezone(timezone).replace(tzinfo=None) + margin:
            return best
    if best is None:
        raise ValueError(f"{cron!r} does not fire in the next {_MAX_STEPS} wall-clock times")
    return best


def _every_hour(cron: str) -> bool:
    fields = cron.split()
    return fields[2 if len(fields) == 6 else 1] == "*"


def _plain(wall: datetime, timezone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=timezone).astimezone(UTC)


def _offset_change(timezone: ZoneInfo, start: datetime, end: datetime) -> timedelta:
    before = start.astimezone(timezone).utcoffset() or timedelta()
    after = end.astimezone(timezone).utcoffset() or timedelta()
    return abs(after - before)


def _instants(wall: datetime, timezone: ZoneInfo, *, hourly: bool) -> list[datetime]:
    """The instants (UTC) that the wall-clock time ``wall`` fires at (module docstring)."""
    first = wall.replace(tzinfo=timezone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=timezone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first.astimezone(timezone).replace(tzinfo=None) == wall:  # a repeated wall time
        return sorted({first, second}) if hourly else [min(first, second)]
    if hourly:  # in a gap: elapsed time skips it
        return []
    return [_gap_end(min(first, second), max(first, second), timezone)]


def _gap_end(low: datetime, high: datetime, timezone: ZoneInfo) -> datetime:
    """The instant the clocks jumped, between ``low`` (the old offset still holds) and
    ``high`` (the new one does), to the second."""
    old = low.astimezone(timezone).utcoffset()
    before, after = int(low.timestamp()), int(high.timestamp()) + 1
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(timezone).utcoffset() == old:
            before = middle
        else:
            after = middle
    return datetime.fromtimestamp(after, UTC)
