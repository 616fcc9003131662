"""The flow-control rules (domain/flow_control.py): pure functions of a record, the
limits and the time."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput
from domain.flow_control import (
    Admitted,
    FlowLimits,
    FlowRecord,
    Refused,
    admit,
    change,
    check_change,
    defer_seconds,
    extend,
    release,
)
from domain.limits import MAX_DEFER_SECONDS

LEASE = 30.0


def take(record: FlowRecord, limits: FlowLimits, task_id: str, now: float) -> FlowRecord:
    decision = admit(record, limits, task_id, now, LEASE)
    assert isinstance(decision, Admitted), decision
    return decision.record


def test_no_more_than_max_concurrency_hold_permits() -> None:
    limits = FlowLimits(max_concurrency=2)
    record = take(take(FlowRecord("t"), limits, "a", 0), limits, "b", 0)
    refused = admit(record, limits, "c", 1, LEASE)
    assert isinstance(refused, Refused) and refused.reason == "concurrency"
    freed = release(record, "a", 1)
    assert isinstance(admit(freed, limits, "c", 1, LEASE), Admitted)


def test_an_expired_permit_frees_its_slot_and_a_task_does_not_count_against_itself() -> None:
    limits = FlowLimits(max_concurrency=1)
    record = take(FlowRecord("t"), limits, "a", 0)
    assert isinstance(admit(record, limits, "a", 1, LEASE), Admitted)  # its own takeover
    assert isinstance(admit(record, limits, "b", LEASE - 1, LEASE), Refused)
    assert isinstance(admit(record, limits, "b", LEASE, LEASE), Admitted)  # expired with the lease


def test_extending_a_permit_keeps_the_slot_past_the_first_lease() -> None:
    limits = FlowLimits(max_concurrency=1)
    record = take(FlowRecord("t"), limits, "a", 0)
    extended = extend(record, "a", 2 * LEASE)
    assert extended is not None
    assert isinstance(admit(extended, limits, "b", LEASE + 1, LEASE), Refused)
    assert extend(record, "gone", 99) is None


def test_the_rate_bucket_allows_its_burst_then_one_start_per_interval() -> None:
    limits = FlowLimits(rate=4, burst=2)
    record = take(take(FlowRecord("t"), limits, "a", 100), limits, "b", 100)
    refused = admit(record, limits, "c", 100, LEASE)
    assert isinstance(refused, Refused) and refused.reason == "rate"
    assert refused.wait_seconds == pytest.approx(0.25)
    assert isinstance(admit(record, limits, "c", 100.25, LEASE), Admitted)
    # a rate-only type holds no permits: nothing to give back
    decision = admit(record, limits, "c", 101, LEASE)
    assert isinstance(decision, Admitted) and not decision.holds_permit


def test_a_paused_type_admits_nothing() -> None:
    refused = admit(FlowRecord("t"), FlowLimits(paused=True), "a", 0, LEASE)
    assert isinstance(refused, Refused) and refused.reason == "paused"


def test_overrides_change_the_decorator_limits_and_null_removes_one() -> None:
    defaults = FlowLimits(max_concurrency=3, rate=5)
    record = change(FlowRecord("t"), {"max_concurrency": None, "paused": True})
    limits = defaults.changed(record.overrides)
    assert limits == FlowLimits(max_concurrency=None, rate=5, paused=True)
    resumed = defaults.changed(change(record, {"paused": False}).overrides)
    assert not resumed.paused and resumed.max_concurrency is None


@pytest.mark.parametrize(
    ("change_", "field"),
    [
        ({"max_concurency": 3}, "max_concurency"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 2.5}, "max_concurrency"),
        ({"rate": -1}, "rate"),
        ({"rate": "fast"}, "rate"),
        ({"paused": "yes"}, "paused"),
        ({"burst": True}, "burst"),
    ],
)
def test_a_bad_change_names_the_setting(change_: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_change(change_)
    assert raised.value.field == field


def test_a_deferral_is_a_few_whole_seconds() -> None:
    assert defer_seconds(0.1, 0.0) == 1
    assert defer_seconds(0.1, 0.99) == 3
    assert defer_seconds(3600, 0.5) == MAX_DEFER_SECONDS


def test_a_record_survives_its_stored_form() -> None:
    record = FlowRecord("t", {"rate": 2.0, "paused": True}, {"a": 12.5}, 0.5, 10.0, version=3)
    assert FlowRecord.from_state("t", 3, record.state_json()) == record
