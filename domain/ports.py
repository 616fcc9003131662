"""The ports: what the core needs from the outside world.

The docstrings are the specification. Every adapter (memory, sqlite, aws) honours them,
and ``tests/contract/`` checks each adapter against the same tests.

All methods are coroutines. Adapters whose client library blocks (boto3, sqlite3) run
their calls off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from domain.blobs import Blob, BlobInfo
from domain.email import Email, SentEmail
from domain.models import (
    JSON,
    DeadLetter,
    Delivery,
    Page,
    QueueDepth,
    Task,
    TaskStatus,
    WorkerInfo,
)
from domain.priorities import Priority
from domain.task_types import TaskType

R = TypeVar("R")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the running event loop ``seconds`` from now, unless the
        returned timer is cancelled first (a timer without a task waiting on it)."""
        ...


class Timer(Protocol):
    """A call scheduled by ``Clock.call_later``."""

    def cancel(self) -> object: ...


class TaskRepository(Protocol):
    """Durable record of every task.

    Raises ``InfrastructureError`` when the store cannot be reached.
    """

    async def add(self, task: Task) -> None:
        """Store a new task. Raises ``TaskAlreadyExists`` if the id is taken."""
        ...

    async def get(self, task_id: str) -> Task:
        """The stored task. Raises ``TaskNotFound``."""
        ...

    async def add_idempotent(
        self, task: Task, *, key: str, fingerprint: str, expires_at: datetime, now: datetime
    ) -> str | None:
        """Store ``task`` and claim the idempotency ``key`` for it, atomically.

        If ``key`` is already claimed and the claim has not expired (its
        ``expires_at`` is after ``now``), nothing is stored and the id of the task
        it was claimed for is returned; if that claim's fingerprint differs,
        ``IdempotencyKeyReused`` is raised instead. Returns None when ``task`` was
        stored. Of concurrent calls with one key, exactly one stores its task.
        """
        ...

    async def transition(self, new: Task, *, expected: Task) -> None:
        """Replace ``expected`` by ``new`` if the stored task still has ``expected``'s
        status and version (compare-and-set). ``new.version`` must be greater.

        Raises ``ConcurrencyConflict`` when the stored task differs (a lost race: the
        write never silently overwrites) and ``TaskNotFound`` when it is gone.
        """
        ...

    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page:
        """Tasks with ``status``, newest first (by ``created_at``, then id).

        ``cursor`` is the opaque ``next_cursor`` of a previous page; it stays valid while
        tasks are added or change status. Raises ``InvalidCursor`` for a cursor this
        repository did not issue.
        """
        ...

    async def list_due_held(self, before: datetime, *, limit: int) -> list[Task]:
        """Held tasks (``Task.held``: stored without a queue message) whose ``run_at``
        is at or before ``before`` (timezone-aware), earliest ``run_at`` first, at most
        ``limit`` (at least 1) of them.

        Found through an index on the due time of held tasks only, so the cost depends
        on ``limit``, never on how many other tasks are stored or PENDING. A task stops
        being listed once a transition stores it unheld. On DynamoDB the index is
        eventually consistent: a task unheld a moment ago may still be listed (the
        caller's conditional transition then loses). Raises ``ValueError`` for a
        ``limit`` below 1.
        """
        ...

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        """The earliest ``Task.due_at`` among PENDING tasks due at or before ``now``
        (timezone-aware); None when no PENDING task is due. The age of the oldest due
        task is ``now`` minus it: the signal to page and to autoscale on.

        Cheap on every backend, whatever the number of tasks: an index on the due time
        of PENDING tasks (memory, SQLite). DynamoDB has no such index: one Query (one
        page, ascending) per shard of the status index reads the first
        ``OLDEST_DUE_READ`` (adapters/dynamodb/table.py) PENDING tasks by creation and
        the earliest due time among those that are due is answered, so a task created
        after that many not-yet-due ones in its shard is not seen (and the index is
        eventually consistent). A retried task counts from when its attempt failed
        (``Task.due_at``).
        """
        ...

    async def count_by_status(self) -> dict[TaskStatus, int]:
        """Exact number of tasks in each status (every status present), at a cost that
        does not depend on how many tasks are stored."""
        ...

    async def ping(self) -> None:
        """Return if the store answers; raise ``InfrastructureError`` otherwise."""
        ...


class TaskQueue(Protocol):
    """At-least-once delivery of task ids, with leases (visibility timeouts).

    A received message is invisible to other receivers until its lease expires; it is
    then delivered again with ``receive_count`` incremented. When a message would be
    delivered for the ``max_receive_count + 1``-th time it is moved to the dead-letter
    queue instead. Time is in seconds.

    Every message has a priority (domain/priorities.py): the queue keeps the three apart
    and each ``receive`` looks at them in a weighted order (``PriorityOrder``), so high
    messages are received before the others but low ones still progress. A delivery,
    release or redelivery stays in its message's priority.

    Raises ``InfrastructureError`` when the queue cannot be reached.
    """

    max_batch: int
    """How many messages one send_batch / receive / ack_batch call handles at most."""

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        """Enqueue one message of ``priority``, visible after ``delay_seconds`` (0 to
        ``domain.limits.MAX_QUEUE_DELAY_SECONDS``). Raises ``InvalidInput`` for a
        priority the queue does not keep (SQS without its priority queues)."""
        ...

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        """Enqueue ``(task_id, delay_seconds)`` pairs, all of ``priority``, splitting
        into calls of at most ``max_batch``. Every item is sent, or the call raises
        ``QueueSendFailed`` whose ``task_ids`` are the ones that were not (none is
        dropped silently), or an ``InfrastructureError`` when none was. Raises
        ``InvalidInput`` for a priority the queue does not keep, before sending any."""
        ...

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        """Up to ``max_messages`` (1..max_batch) deliveries, leased for
        ``visibility_timeout``. Waits up to ``wait_seconds`` for the first message and
        returns as soon as one is available; returns ``[]`` on timeout.

        The priorities are looked at in the order of the queue's ``PriorityOrder`` for
        this call: the first one's visible messages (oldest due first), then the
        next one's to fill ``max_messages``."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """Delete the message. Acking with an outdated receipt is a no-op."""
        ...

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None: ...

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        """Make the message visible again after ``delay_seconds`` (retry later)."""
        ...

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        """Heartbeat: the lease now ends ``visibility_timeout`` from now."""
        ...

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        """Move the delivered message to the dead-letter queue now."""
        ...

    async def depth(self) -> QueueDepth:
        """Messages visible, in flight (leased) and delayed on the main queue."""
        ...

    async def dead_letter_count(self) -> int:
        """Messages on the dead-letter queue (approximate on SQS)."""
        ...

    async def list_dead_letters(self, *, limit: int) -> list[DeadLetter]:
        """Look at up to ``limit`` dead letters without consuming them, poison messages
        included (``task_id`` None), oldest first where the backend keeps an order (SQS
        does not). Each carries its ``reason`` where the backend keeps one: the memory
        and SQLite queues always (``RECEIVE_LIMIT_REASON`` for a message the queue moved
        itself), SQS for a message ``dead_letter`` moved (a message attribute), None for
        one its redrive policy moved. On SQS the look receives the messages under a short
        lease and hands them straight back; it may see fewer than are there."""
        ...

    async def redrive_dead_letters(self, *, limit: int | None = None) -> int:
        """Move up to ``limit`` (all when None) dead letters back to the main queue,
        with a fresh receive count. Returns how many moved."""
        ...

    async def drop_dead_letter(self, message_id: str) -> DeadLetter:
        """Delete the dead letter ``message_id`` (its ``DeadLetter.message_id``) for good.

        Returns it as it was. Raises ``DeadLetterNotFound`` when the dead-letter queue
        holds no message with that id (it never did, or it was dropped or redriven).

        Cost: one indexed delete on SQLite. SQS cannot fetch a message by id: the search
        receives dead letters (``MAX_QUEUE_BATCH`` a call, each hidden for a short lease),
        stops at the message or after ``domain.limits.MAX_DEAD_LETTER_SEARCH`` of them,
        and hands the others back at once (one ChangeMessageVisibilityBatch per
        ``MAX_QUEUE_BATCH``): at most about 200 calls. A message beyond that bound is
        reported not found (``DeadLetterNotFound.detail`` says so).
        """
        ...

    async def redrive_dead_letter(self, message_id: str) -> DeadLetter:
        """Send the dead letter ``message_id``'s body back to the main queue as a new
        message (visible at once, receive count 0, a new message id), then delete it from
        the dead-letter queue. Returns the dead letter as it was.

        Raises ``DeadLetterNotFound`` as ``drop_dead_letter`` does, and costs the same
        plus one send. A failure between the send and the delete leaves the message on
        both queues (a duplicate, never a loss).
        """
        ...

    async def ping(self) -> None: ...


class WorkerRegistry(Protocol):
    """Where workers in any process record that they are alive."""

    async def beat(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        """Record ``info`` (replacing the worker's previous beat). It counts as live
        until ``info.live_until`` (a missed heartbeat ends it); the record itself may be
        kept up to ``ttl_seconds`` after ``last_seen``, then it is deleted."""
        ...

    async def remove(self, worker_id: str) -> None:
        """Forget the worker at once (a graceful stop)."""
        ...

    async def live(self, now: datetime) -> list[WorkerInfo]:
        """The workers live at ``now`` (``WorkerInfo.is_live``), as last recorded."""
        ...


class HandlerSandbox(Protocol):
    """Runs one handler call alone, in a process of its own that can be stopped on its
    own: whatever the handler does to its process (a signal, ``os._exit``, a segfault,
    a hang) ends that process only, and is attributed to that handler."""

    async def run(self, task_type: TaskType, payload: JSON, *, timeout_seconds: float) -> JSON:
        """Call ``task_type.handler(payload)`` in a fresh child process (an async handler
        under its own event loop there) and return its result.

        Raises what the handler raised (``PermanentTaskError`` included); ``HandlerCrashed``
        when the process ended without a result, naming its exit code or signal;
        ``HandlerTimeout`` after ``timeout_seconds`` (seconds, > 0), when the child has
        been terminated; ``HandlerNotIsolatable`` when the handler cannot be sent to a
        child process. If the awaiting coroutine is cancelled, the child is terminated
        before the ``CancelledError`` propagates.
        """
        ...


class EmailSender(Protocol):
    """Sends email: an SMTP server, Amazon SES, or a local mailbox file
    (adapters/email/)."""

    async def send(self, email: Email) -> SentEmail:
        """Send ``email`` (domain/email.py) and say what the mail service accepted.

        Raises ``EmailRejected`` (a ``PermanentTaskError``) when the service refuses it
        for good (an SMTP 5xx reply, every recipient refused; SES ``MessageRejected``),
        with the service's reply; ``EmailNotSentYet`` when it cannot be sent now (an SMTP
        4xx reply, a connection error or timeout, throttling): a retry may succeed.
        """


class BlobStore(Protocol):
    """Named byte streams (``domain/blobs.py``): uploads, resized images, exports.

    Every method validates its key first (``validate_blob_key``: ``InvalidInput`` naming
    the key) and raises ``InfrastructureError`` when the store cannot be reached. Bytes
    stream through in bounded chunks: no method holds a whole blob in memory.
    """

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str, max_bytes: int
    ) -> BlobInfo:
        """Store the bytes ``chunks`` yields under ``key`` with ``content_type``,
        replacing a blob stored there. Atomic: a reader sees the old blob or the whole
        new one, never a part. Raises ``BlobTooLarge`` as soon as more than ``max_bytes``
        (bytes) arrive, and then nothing is stored (a previous blob stays)."""
        ...

    async def get(self, key: str) -> Blob:
        """The blob under ``key``, its bytes streamed as the caller iterates
        ``Blob.chunks``. Raises ``BlobNotFound`` (before any byte is read)."""
        ...

    async def head(self, key: str) -> BlobInfo:
        """Size (bytes) and content type of the blob. Raises ``BlobNotFound``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a key with no blob is a no-op."""
        ...

    async def url_for(self, key: str, *, expires_seconds: int) -> str | None:
        """An absolute URL that downloads the blob without credentials, valid for
        ``expires_seconds`` (1 to ``MAX_LINK_SECONDS``), or None when the store has no
        such URL and the API's ``GET /blobs/{key}`` serves the blob itself. Does not
        check that the blob exists."""
        ...


class CpuPool(Protocol):
    """Runs CPU-bound functions in worker processes, never on the event loop."""

    async def run(self, function: Callable[..., R], *args: Any, timeout_seconds: float) -> R:
        """``function(*args)`` in a worker process; its result.

        ``function`` must be a module-level function and ``args`` and the result
        picklable. Raises what ``function`` raised; ``HandlerTimeout`` when it ran past
        ``timeout_seconds`` (seconds, > 0); ``HandlerCrashed`` when its process ended
        without a result. A stoppable pool (adapters/stoppable_pool.py) terminates the
        process at the timeout or when the awaiting coroutine is cancelled.
        """
        ...


class Tracer(Protocol):
    """Spans around task runs, joined to the trace the task was submitted in
    (domain/tracing.py). ``NoTracer`` is the default; adapters/observability/ has the
    OpenTelemetry one."""

    def current_traceparent(self) -> str | None:
        """The W3C traceparent of the span current in the caller's context (the HTTP
        request being served, an application's own span around a submit), or None
        when there is none."""
        ...

    def run_span(self, task: Task) -> AbstractContextManager[None]:
        """A span around one run of ``task``'s handler, current while the context
        manager is open: a child of ``task.traceparent`` when it has one, else the
        root of a new trace. An exception raised through it is recorded on the span
        (and propagates)."""
        ...


@runtime_checkable
class ClaimsInOneWrite(Protocol):
    """A TaskRepository that can claim a due PENDING task in one conditional write and
    hand the claimed task back, with no read before it (domain/claiming.py)."""

    async def claim_pending(
        self, task_id: str, *, lease_token: str, now: datetime, lease_seconds: float
    ) -> Task | None:
        """If the stored task is PENDING with no ``run_at``, store
        ``task.claim(lease_token, now, lease_seconds)`` (compare-and-set) and return
        it; otherwise (absent, scheduled, leased, finished, or a lost race) change
        nothing and return None."""
        ...
