"""The Task state machine, the retry policy, and the purity of the domain package."""

from __future__ import annotations

import ast
import random
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import IllegalTransition
from domain.limits import MAX_ERROR_LENGTH
from domain.models import ALLOWED_TRANSITIONS, DeadLetter, Task, TaskStatus
from domain.retry import RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DOMAIN = Path(__file__).resolve().parents[2] / "domain"


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    offenders = []
    for path in DOMAIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "domain" and top not in sys.stdlib_module_names:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def pending() -> Task:
    return Task.create("email", "a@b.co", NOW)


def at(status: TaskStatus) -> Task:
    task = pending()
    if status is TaskStatus.PENDING:
        return task
    if status is TaskStatus.CANCELLED:
        return task.cancel(NOW)
    running = task.claim("lease", NOW, 30)
    return {
        TaskStatus.PROCESSING: running,
        TaskStatus.COMPLETED: running.complete(None, NOW),
        TaskStatus.FAILED: running.fail("x", NOW),
    }[status]


MOVES = {
    TaskStatus.PROCESSING: lambda t: t.claim("other", NOW, 30),
    TaskStatus.COMPLETED: lambda t: t.complete(1, NOW),
    TaskStatus.FAILED: lambda t: t.fail("e", NOW),
    TaskStatus.PENDING: lambda t: t.retry_later("e", NOW),
    TaskStatus.CANCELLED: lambda t: t.cancel(NOW),
}


@given(st.sampled_from(list(TaskStatus)), st.sampled_from(list(TaskStatus)))
def test_only_allowed_transitions_succeed(source: TaskStatus, target: TaskStatus) -> None:
    task = at(source)
    if target in ALLOWED_TRANSITIONS[source]:
        moved = MOVES[target](task)
        assert moved.status is target
        assert moved.version == task.version + 1
    else:
        with pytest.raises(IllegalTransition) as info:
            MOVES[target](task)
        assert info.value.current == source.value


def test_final_states_accept_nothing_but_a_retry_of_a_failure() -> None:
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        assert status.is_final
    assert ALLOWED_TRANSITIONS[TaskStatus.COMPLETED] == frozenset()
    assert ALLOWED_TRANSITIONS[TaskStatus.CANCELLED] == frozenset()
    assert ALLOWED_TRANSITIONS[TaskStatus.FAILED] == {TaskStatus.PENDING}


def test_a_retried_failure_keeps_its_history_and_gets_a_new_budget() -> None:
    failed = at(TaskStatus.FAILED)
    retried = failed.retry_failed(NOW, extra_attempts=3)
    assert retried.status is TaskStatus.PENDING
    assert (retried.attempts, retried.max_attempts) == (1, 4)
    assert retried.error == failed.error
    assert retried.finished_at is None


def test_only_a_running_task_takes_a_cancel_request() -> None:
    flagged = at(TaskStatus.PROCESSING).request_cancel(NOW)
    assert flagged.cancel_requested and flagged.status is TaskStatus.PROCESSING
    with pytest.raises(IllegalTransition):
        pending().request_cancel(NOW)


def test_claim_counts_an_attempt_and_takes_a_lease() -> None:
    claimed = pending().claim("lease-1", NOW, 30)
    assert claimed.attempts == 1
    assert claimed.lease_token == "lease-1"
    assert claimed.lease_expired(NOW) is False


@pytest.mark.parametrize(
    ("attempts", "permanent", "status"),
    [
        (1, False, TaskStatus.PENDING),  # budget left: retried
        (3, False, TaskStatus.FAILED),  # the last attempt
        (1, True, TaskStatus.FAILED),  # a permanent error ends it at once
    ],
)
def test_a_failed_attempt_is_retried_while_budget_is_left(
    attempts: int, permanent: bool, status: TaskStatus
) -> None:
    task = replace(pending().claim("lease-1", NOW, 30), attempts=attempts, max_attempts=3)
    settled = task.fail_attempt("boom", NOW, permanent=permanent)
    assert (settled.status, settled.error, settled.retry_count) == (status, "boom", 1)


def test_errors_are_truncated_to_a_bounded_size() -> None:
    failed = at(TaskStatus.PROCESSING).fail("x" * 100_000, NOW)
    assert failed.error is not None
    assert len(failed.error) == MAX_ERROR_LENGTH
    assert failed.error.endswith("[truncated]")


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_within_zero_and_a_capped_exponential(failures: int, seed: int) -> None:
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=60, rng=random.Random(seed))
    delay = policy.backoff(failures)
    assert 0 <= delay <= min(60, 0.5 * 2 ** min(failures - 1, 64))


def test_backoff_ceiling_doubles_until_the_cap() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=10)
    assert [policy.ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_backoff_uses_full_jitter() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=100, rng=random.Random(1))
    delays = [policy.backoff(5) for _ in range(200)]
    assert min(delays) < 4 and max(delays) > 12  # spread over [0, 16], not clustered


def test_a_cap_beyond_the_queue_delay_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(cap_seconds=901)


def test_task_ids_are_version_4_uuids_and_a_forked_child_draws_different_ones() -> None:
    import os
    import uuid

    from domain.models import new_task_id

    ids = {new_task_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert {uuid.UUID(i).version for i in ids} == {4}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave at once
        os.write(write, new_task_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child_id != new_task_id()
    assert uuid.UUID(child_id).version == 4


@pytest.mark.parametrize(
    ("body", "shown", "cut"),
    [
        ("short", "short", False),
        ("x" * 10, "x" * 10, False),
        ("x" * 11, "x" * 10, True),
        ("\u00e9" * 12, "\u00e9" * 10, True),  # characters, never half of one
        ("ok \ud800 \udfff", "ok \ufffd \ufffd", False),  # lone surrogates: not UTF-8
    ],
)
def test_a_dead_letters_body_is_shown_cut_and_safe(body: str, shown: str, cut: bool) -> None:
    preview = DeadLetter("m-1", None, 1, body).body_preview(10)

    assert preview == (shown, cut)
    preview[0].encode()  # printable and sendable as JSON whatever the body held
