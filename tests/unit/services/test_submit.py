"""TaskService.submit: what is stored, what is queued and when, and every refusal."""

from __future__ import annotations

import math
from datetime import timedelta, timezone
from typing import Any

import pytest

from domain.errors import (
    InfrastructureError,
    InvalidInput,
    QueueSendFailed,
    TaskNotFound,
    UnknownTaskType,
)
from domain.limits import MAX_DELAY_SECONDS, MAX_QUEUE_DELAY_SECONDS, MAX_TIMEOUT_SECONDS
from domain.models import TaskStatus
from domain.services import SubmissionLimits, SubmitRequest
from tests.support.service_fakes import FullRepository, UnreachableQueue
from tests.support.service_rig import Rig

DAY = 24 * 3600


async def test_a_task_is_stored_pending_readable_at_once_and_queued() -> None:
    rig = Rig()

    task = await rig.submit("email", "a@b.co")

    assert task.status is TaskStatus.PENDING
    assert (task.attempts, task.max_attempts, task.retry_count) == (0, 3, 0)
    assert task.created_at == task.updated_at == rig.clock.now()
    assert (task.run_at, task.timeout_seconds, task.started_at, task.finished_at) == (None,) * 4
    assert await rig.service.get(task.id) == task
    assert await rig.visible() == [task.id]


async def test_the_options_are_kept_on_the_task() -> None:
    rig = Rig()

    task = await rig.submit(
        "image-resize",
        {"image": "cat.png", "width": 64, "height": 48},
        max_attempts=5,
        timeout_seconds=12,
    )

    stored = await rig.service.get(task.id)
    assert (stored.max_attempts, stored.timeout_seconds) == (5, 12.0)
    assert isinstance(stored.timeout_seconds, float)


async def test_the_payload_is_stored_exactly_unicode_included() -> None:
    rig = Rig()
    payload = {"to": "zoë@example.com", "note": "\U0001f600 a pair", "n": [1, 2.5, None]}

    task = await rig.submit("email", payload)

    assert (await rig.service.get(task.id)).payload == payload


async def test_the_limits_set_the_default_and_the_most_attempts() -> None:
    rig = Rig(limits=SubmissionLimits(default_max_attempts=7, max_attempts_limit=9))

    assert (await rig.submit()).max_attempts == 7
    assert (await rig.submit(max_attempts=9)).max_attempts == 9
    with pytest.raises(InvalidInput, match="between 1 and 9"):
        await rig.submit(max_attempts=10)


# -- refusals: the field is named, nothing is stored or queued ----------------------------

NOT_A_NUMBER: list[Any] = ["10", None, [1], True, math.nan, math.inf]


def _cases() -> list[tuple[dict[str, Any], str]]:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": ""}, "type"),
        ({"type": "   "}, "type"),
        ({"type": None}, "type"),
        ({"type": 7}, "type"),
        ({"type": "email\ud800"}, "type"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 20}, "max_attempts"),
        ({"max_attempts": 10**40}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": "3"}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"timeout_seconds": MAX_TIMEOUT_SECONDS + 0.5}, "timeout_seconds"),
        ({"timeout_seconds": 1e300}, "timeout_seconds"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_seconds": MAX_DELAY_SECONDS + 1}, "delay_seconds"),
        ({"delay_seconds": 1e300}, "delay_seconds"),
        ({"payload": "not-an-address"}, "payload"),
        ({"payload": {"to": "a@b.co", "note": "\udfff"}}, "payload.note"),
        ({"payload": {"to": "a@b.co", "\udfff": 1}}, 'payload["\\udfff"]'),  # in a key
        ({"type": "data-export", "payload": ["x", ["\ud800"]]}, "payload[1][0]"),
    ]
    cases += [({"timeout_seconds": v}, "timeout_seconds") for v in NOT_A_NUMBER if v is not None]
    cases += [({"delay_seconds": v}, "delay_seconds") for v in NOT_A_NUMBER]
    return cases


@pytest.mark.parametrize(("fields", "field"), _cases())
async def test_a_bad_field_is_refused_by_name_and_nothing_is_stored(
    fields: dict[str, Any], field: str
) -> None:
    rig = Rig()
    request = SubmitRequest(**{"type": "email", "payload": "a@b.co", **fields})

    with pytest.raises(InvalidInput) as info:
        await rig.service.submit(request)

    assert info.value.field == field
    assert await rig.stored() == 0
    assert (await rig.queue.depth()).total == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"max_attempts": 1},
        {"max_attempts": 19},
        {"timeout_seconds": MAX_TIMEOUT_SECONDS},
        {"timeout_seconds": 0.001},
        {"delay_seconds": MAX_DELAY_SECONDS},
        {"delay_seconds": 0.0},
    ],
)
async def test_the_bounds_themselves_are_accepted(fields: dict[str, Any]) -> None:
    rig = Rig()

    await rig.submit(**fields)

    assert await rig.stored() == 1


async def test_an_unknown_type_is_refused_listing_the_known_ones() -> None:
    rig = Rig()

    with pytest.raises(UnknownTaskType) as info:
        await rig.submit("sms", "hi")

    assert info.value.field == "type" and "'sms'" in info.value.message
    assert "counted, data-export, echo, email, image-resize" in info.value.message


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        ("a list", "payload", "invalid payload for 'counted': expected an object"),  # TypeError
        ({}, "payload", "invalid payload for 'counted': missing field 'n'"),  # ValueError
        ({"n": "1"}, "payload.n", "must be an integer"),  # the validator's own field
    ],
)
async def test_a_validator_refusal_names_the_type_or_its_own_field(
    payload: Any, field: str, says: str
) -> None:
    rig = Rig()

    with pytest.raises(InvalidInput) as info:
        await rig.submit("counted", payload)

    assert (info.value.field, info.value.message) == (field, says)
    assert await rig.stored() == 0


CAT = {"image": "cat.png", "width": 10, "height": 10}
ACCEPTED: dict[str, list[Any]] = {
    "email": ["user@example.com", {"to": "user@example.com"}, {"to": "a@b.co", "subject": "hi"}],
    "image-resize": [
        "cat.png",
        {"image": "cat.png", "width": 1, "height": 20000},
        {"image": "uploads/a/cat.png", "width": 9, "height": 9, "fit": "cover", "format": "jpg"},
    ],
    "data-export": [
        "users",
        "failed",
        {"dataset": "tasks"},
        *({"dataset": "tasks", "format": f} for f in ("csv", "json", "ndjson", "jsonl")),
        {"dataset": "tasks", "status": "failed", "type": "email", "created_from": "2026-01-01"},
    ],
}
REFUSED: dict[str, list[Any]] = {
    "email": [None, "not-an-address", 42, {"to": 5}, {}, ["user@example.com"]],
    "image-resize": [
        *(None, "", "   ", 3),
        *({**CAT, "width": w} for w in (0, "10", True)),
        {**CAT, "height": 20001},
        {"image": "cat.png", "width": 10},
        {**CAT, "image": ""},
        {**CAT, "image": "../etc/passwd"},
        {**CAT, "fit": "stretch"},
        {**CAT, "format": "bmp"},
        {**CAT, "width": 20000, "height": 20000},
    ],
    "data-export": [
        *(None, "", [], {}, {"dataset": ""}, {"dataset": "users"}, "../up"),
        {"dataset": "tasks", "format": "xml"},
        {"dataset": "tasks", "status": "DONE"},
    ],
}


@pytest.mark.parametrize(
    ("task_type", "payload"), [(t, p) for t, ps in ACCEPTED.items() for p in ps]
)
async def test_the_builtin_types_take_their_payloads(task_type: str, payload: Any) -> None:
    rig = Rig()

    task = await rig.submit(task_type, payload)

    assert (await rig.service.get(task.id)).payload == payload


@pytest.mark.parametrize(
    ("task_type", "payload"), [(t, p) for t, ps in REFUSED.items() for p in ps]
)
async def test_the_builtin_types_refuse_bad_payloads(task_type: str, payload: Any) -> None:
    rig = Rig()

    with pytest.raises(InvalidInput) as info:
        await rig.submit(task_type, payload)

    assert info.value.field == "payload"
    assert info.value.message.startswith(f"invalid payload for {task_type!r}: ")
    assert await rig.stored() == 0


def _nested(depth: int) -> Any:
    payload: Any = 1
    for _ in range(depth):
        payload = [payload]
    return payload


async def test_a_payload_nested_past_the_limit_is_refused() -> None:
    rig = Rig()

    await rig.submit("echo", _nested(32))
    with pytest.raises(InvalidInput) as info:
        await rig.submit("echo", _nested(33))

    assert str(info.value) == "payload: nested deeper than 32 levels"
    assert await rig.stored() == 1


# -- delays and run_at ------------------------------------------------------------------


async def test_a_delayed_task_becomes_visible_when_its_delay_ends() -> None:
    rig = Rig()

    task = await rig.submit(delay_seconds=30)

    assert task.run_at == task.created_at + timedelta(seconds=30)
    await rig.clock.advance(29)
    assert await rig.visible() == []
    await rig.clock.advance(1)
    assert await rig.visible() == [task.id]


async def test_a_fraction_of_a_second_of_delay_rounds_up() -> None:
    task = await Rig().submit(delay_seconds=0.2)

    assert task.run_at == task.created_at + timedelta(seconds=1)


async def test_the_queue_takes_delays_up_to_its_limit_and_the_engine_holds_longer_ones() -> None:
    rig = Rig()

    await rig.submit(delay_seconds=MAX_QUEUE_DELAY_SECONDS)
    held = await rig.submit(delay_seconds=MAX_QUEUE_DELAY_SECONDS + 1)

    depth = await rig.queue.depth()
    assert (depth.delayed, depth.total) == (1, 1), "the longer delay has no message yet"
    assert (await rig.service.get(held.id)).status is TaskStatus.PENDING


async def test_a_task_held_by_the_engine_is_stored_while_the_queue_is_down() -> None:
    rig = Rig(queue=UnreachableQueue)

    task = await rig.submit(delay_seconds=30 * DAY)

    assert (await rig.service.get(task.id)).run_at == task.created_at + timedelta(days=30)


async def test_run_at_in_the_future_is_kept_in_utc() -> None:
    rig = Rig()
    due = rig.clock.now() + timedelta(minutes=5)
    kolkata = timezone(timedelta(hours=5, minutes=30))

    task = await rig.submit(run_at=due.astimezone(kolkata))

    assert task.run_at == due and task.run_at.utcoffset() == timedelta(0)
    assert (await rig.queue.depth()).delayed == 1


@pytest.mark.parametrize("ago", [timedelta(days=400), timedelta(seconds=1), timedelta(0)])
async def test_run_at_now_or_in_the_past_means_now(ago: timedelta) -> None:
    rig = Rig()

    task = await rig.submit(run_at=rig.clock.now() - ago)

    assert task.run_at is None
    assert await rig.visible() == [task.id]


async def test_run_at_a_month_ahead_is_held_until_then() -> None:
    rig = Rig()
    due = rig.clock.now() + timedelta(days=30)

    task = await rig.submit(run_at=due)

    assert (await rig.service.get(task.id)).run_at == due
    assert (await rig.queue.depth()).total == 0


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"run_at_in": timedelta(days=367)}, "must be at most a year from now"),
        ({"run_at_in": timedelta(days=1), "naive": True}, "must include a timezone (e.g. Z)"),
        (
            {"run_at_in": timedelta(days=1), "delay_seconds": 5},
            "give either run_at or delay_seconds, not both",
        ),
    ],
)
async def test_a_bad_run_at_is_refused_saying_why(fields: dict[str, Any], says: str) -> None:
    rig = Rig()
    run_at = rig.clock.now() + fields.pop("run_at_in")
    if fields.pop("naive", False):
        run_at = run_at.replace(tzinfo=None)

    with pytest.raises(InvalidInput) as info:
        await rig.submit(run_at=run_at, **fields)

    assert (info.value.field, info.value.message) == ("run_at", says)
    assert await rig.stored() == 0


# -- when a dependency fails ------------------------------------------------------------


async def test_a_failed_write_stores_nothing_and_leaves_a_spare_message() -> None:
    """The send came first: its message names no task and the worker drops it after
    its grace (``orphan_grace_seconds``)."""
    rig = Rig(repository=FullRepository())

    with pytest.raises(InfrastructureError) as info:
        await rig.submit()

    assert info.value.dependency == "repository"
    assert await rig.stored() == 0
    owned, spares = await rig.messages()
    assert (owned, len(spares)) == ([], 1)


async def test_a_failed_send_stores_nothing_and_names_the_task_it_would_have_been() -> None:
    """A task is stored only once its message is sent, so nothing is left for the
    reconciler to send; the client learns the submission failed and may repeat it."""
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)

    with pytest.raises(QueueSendFailed) as info:
        await rig.submit()

    assert "connection refused" in str(info.value) and "not enqueued" in str(info.value)
    with pytest.raises(TaskNotFound):
        await rig.service.get(info.value.task_id)
    assert await rig.stored() == 0
    rig.queue.down = False
    task = await rig.submit()
    assert await rig.visible() == [task.id]
