"""The reads and adds of one task each, coalesced into batch calls across concurrent
callers (``adapters/coalescing.py``: natural batching, no linger, so a lone call goes
out at once and is not delayed).

Reads: concurrent ``get``\\ s share one strongly consistent BatchGetItem of their state
items (up to 100 keys; keys left unprocessed are asked again), then one of the items
beside them (a large payload or result) for those that have them. The worker receives
up to 10 messages at once and each delivery reads its task: they share a call. A lone
read is one strongly consistent Query of its task's partition (state and payload in
one call, as before). The price of batching: BatchGetItem bills each item rounded up
to 4 KB, a Query the partition's total, so a task read with its large payload in a
batch costs one read unit more ($0.125 per million tasks) for fewer round trips.

Adds: concurrent ``add``\\ s share a BatchWriteItem (up to 25 items; unprocessed items
retried with a growing, jittered pause), the items beside the tasks first so a state
item is never stored without them. A BatchWriteItem cannot be conditional, and the
port refuses an id that is taken (``TaskAlreadyExists``). Why an unconditional put is
sound here:

- Ids are the service's own: ``Task.create`` takes ``domain.models.new_task_id`` (122
  random bits from a generator seeded with 256 bits from the OS, reseeded after a
  fork); no route, command or import lets a client choose a task id. Two tasks drawing
  the same id (about n² / 2^123 for n tasks: 10^-13 at a trillion) is not a case to
  design for, so an item under a new id can only have been written by this very add.
- What an unconditional put could still overwrite is the task itself, if the add were
  *replayed* after the task moved on (a worker may claim it at once: its message is
  sent before the add). Unprocessed items were not written, so retrying them is safe;
  a whole call answered with a 5xx or a lost connection may have been applied, so it
  is never replayed as it is: botocore's own retry of BatchWriteItem is vetoed for
  those answers (``_no_blind_replay``; throttling, where nothing was written, is still
  retried), and its items are put again one by one with ``attribute_not_exists``, a
  failed condition meaning that the first call did land.
- Adding the same ``Task`` twice (a bug in the caller) can only happen in the process
  that made it: the ids this repository added recently are kept, and a second add of
  one raises ``TaskAlreadyExists`` as the port says. A future feature letting clients
  choose ids must not come through here (``add_idempotent`` stays a transaction with
  its conditions, as do the conditional puts of the fallback above).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import random
from typing import Any

from botocore.exceptions import ClientError

from adapters.boto_calls import describe
from adapters.coalescing import Coalescer
from adapters.dynamodb.attributes import Item, req_s
from adapters.dynamodb.calls import RETRY_PAUSE_SECONDS, batch_get, partition, run
from adapters.dynamodb.queries import TaskQueries
from adapters.dynamodb.table import PK, SK, TASK_SK
from adapters.dynamodb.task_items import side_items, task_from_item, task_key
from adapters.dynamodb.writes import TaskWrites
from domain.errors import InfrastructureError, TaskAlreadyExists, TaskNotFound
from domain.limits import MAX_BATCH_GET_KEYS, MAX_BATCH_WRITE_ITEMS
from domain.models import Task

BATCH_CALLS = 1
"""Batch calls in flight at once, for reads and for adds each: one, so every call that
arrives meanwhile goes in the next (on moto, which serialises DynamoDB requests, 4 in
flight made batches half as full for no gain). One call of 25 adds or 100 reads every
few milliseconds is thousands a second, more than a worker process's CPU allows."""
WRITE_ATTEMPTS = 8
"""BatchWriteItem calls for one chunk's unprocessed items before the adds of those
still unprocessed fail (``InfrastructureError``: nothing of theirs was written)."""
THROTTLED = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)
"""A BatchWriteItem refused with these wrote nothing (botocore retried it already)."""
RECENT_ADDS = 10_000
"""Ids of recent adds kept to refuse a second add of the same task."""


def _no_blind_replay(
    response: tuple[Any, Any] | None = None, caught_exception: Exception | None = None, **_: Any
) -> bool | None:
    """botocore's ``needs-retry`` hook for BatchWriteItem: False (do not retry) when the
    call may have been applied, None (botocore decides) when it surely was not."""
    if caught_exception is not None:
        return False
    if response is not None and response[0].status_code >= 500:
        return False
    return None


class TaskBatches(TaskWrites, TaskQueries):
    _reads: Coalescer[str, Task] | None = None
    _adds: Coalescer[Task, None] | None = None
    _recent: collections.OrderedDict[str, None] | None = None

    async def get(self, task_id: str) -> Task:
        if self._reads is None:
            self._reads = Coalescer(
                self._get_many, max_batch=MAX_BATCH_GET_KEYS, max_calls=BATCH_CALLS
            )
        return await self._reads.submit(task_id)

    async def _get_many(self, ids: list[str]) -> list[Task | BaseException]:
        unique = list(dict.fromkeys(ids))  # BatchGetItem refuses a key twice
        if len(unique) == 1:
            return [await self._get_alone(unique[0])] * len(ids)
        found = await batch_get(self._client, self.table_name, [task_key(i) for i in unique])
        by_pk = {req_s(item, PK): item for item in found if not self._expired(item)}
        items = {i: by_pk[f"TASK#{i}"] for i in unique if f"TASK#{i}" in by_pk}
        tasks = dict(zip(items, await self._tasks_or_errors(list(items.values())), strict=True))
        return [tasks[i] if i in tasks else TaskNotFound(i) for i in ids]

    async def _get_alone(self, task_id: str) -> Task | BaseException:
        """One Query of the task's partition: its state item and the items beside."""
        items = await partition(self._client, self.table_name, f"TASK#{task_id}")
        by_sk = {req_s(item, SK): item for item in items}
        state = by_sk.pop(TASK_SK, None)
        if state is None or self._expired(state):
            return TaskNotFound(task_id)
        return task_from_item(state, by_sk)

    async def add(self, task: Task) -> None:
        recent = self._recent
        if recent is None:
            recent = self._recent = collections.OrderedDict()
        if task.id in recent:
            raise TaskAlreadyExists(task.id)
        recent[task.id] = None
        if len(recent) > RECENT_ADDS:
            recent.popitem(last=False)
        if self._adds is None:
            self._adds = Coalescer(
                self._add_many, max_batch=MAX_BATCH_WRITE_ITEMS, max_calls=BATCH_CALLS
            )
        try:
            await self._adds.submit(task)
        except BaseException:
            recent.pop(task.id, None)  # not stored: the caller may try again
            raise

    async def _add_many(self, tasks: list[Task]) -> list[None | BaseException]:
        # The items beside first: a state item is never stored without them.
        failed = await self._put_all([item for task in tasks for item in side_items(task)])
        states = [self._to_item(task) for task in tasks if f"TASK#{task.id}" not in failed]
        failed |= await self._put_all(states)
        return [failed.get(f"TASK#{task.id}") for task in tasks]

    async def _put_all(self, items: list[Item]) -> dict[str, BaseException]:
        """Put ``items`` (of new tasks), ``MAX_BATCH_WRITE_ITEMS`` a call; the failures
        by the partition key of the items that were not stored."""
        failed: dict[str, BaseException] = {}
        for start in range(0, len(items), MAX_BATCH_WRITE_ITEMS):
            chunk = items[start : start + MAX_BATCH_WRITE_ITEMS]
            left, error = await self._batch_write(chunk)
            if error is not None:  # surely not stored
                for item in left:
                    failed.setdefault(req_s(item, PK), error)
                continue
            # Perhaps stored: one by one, conditionally, all at once (module docstring).
            outcomes = await asyncio.gather(
                *(self._put_if_new(item, req_s(item, PK)) for item in left),
                return_exceptions=True,
            )
            for item, outcome in zip(left, outcomes, strict=True):
                # TaskAlreadyExists: the batch call did land, the id is this add's alone.
                if isinstance(outcome, Exception) and not isinstance(outcome, TaskAlreadyExists):
                    failed.setdefault(req_s(item, PK), outcome)
        return failed

    async def _batch_write(self, items: list[Item]) -> tuple[list[Item], Exception | None]:
        """BatchWriteItem of ``items``, unprocessed ones retried. What is left: the items
        not known to be stored, and the error when they surely were not (throttled to
        the end), or None when a call may have been applied."""
        events = getattr(getattr(self._client, "meta", None), "events", None)
        if events is not None:  # once per client: botocore ignores a repeated unique_id
            events.register_first(
                "needs-retry.dynamodb.BatchWriteItem",
                _no_blind_replay,
                unique_id="taskq-batch-write-no-blind-replay",
            )
        pending: list[Any] = [{"PutRequest": {"Item": i}} for i in items]
        error: Exception | None = None
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt * random.uniform(0.5, 1.5))
            request = {self.table_name: pending}
            try:
                response = await run(
                    functools.partial(self._client.batch_write_item, RequestItems=request),
                    passthrough=THROTTLED,
                )
            except ClientError as throttled:  # nothing of this call was written
                error = InfrastructureError("dynamodb", describe(throttled))
                break
            except InfrastructureError:
                break
            pending = list(response.get("UnprocessedItems", {}).get(self.table_name, []))
            if not pending:
                return [], None
        else:
            error = InfrastructureError("dynamodb", f"{len(pending)} items left unprocessed")
        return [request["PutRequest"]["Item"] for request in pending], error
