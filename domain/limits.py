"""Every limit of the engine, named once, with where its number comes from.

Three kinds of number live here, and each says which it is:

- **quotas** of the services the production backend runs on (Amazon SQS, Amazon
  DynamoDB), quoted from the page of their developer guide that states them. Every
  backend keeps to them, the in-memory and SQLite ones included, so what works on one
  works on all;
- **derived** limits, computed from a quota (a handler timeout is bounded by the longest
  lease the queue can give);
- **our choices**, with the reason for the number.

Adapters, use cases, settings and entrypoints import them from here; nothing else
defines a limit. The checks that go with the size of a task's data are here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.errors import InvalidInput, ResultTooLarge

if TYPE_CHECKING:
    from domain.models import JSON

# -- Amazon SQS quotas (Amazon SQS Developer Guide, "Amazon SQS message quotas") ------

MAX_QUEUE_BATCH = 10
"""Entries per SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch, and
messages per ReceiveMessage (``MaxNumberOfMessages``)."""
MAX_QUEUE_DELAY_SECONDS = 900
"""A message's ``DelaySeconds``: 0 to 900 (15 minutes). Tasks due further off are held
by the engine (stored without a message) and sent when they come this close."""
MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200
"""``VisibilityTimeout`` (the lease of a received message): 0 to 43,200 s (12 hours)."""
MAX_LONG_POLL_SECONDS = 20
"""ReceiveMessage ``WaitTimeSeconds`` (long polling): 0 to 20."""
MAX_MESSAGE_BYTES = 1_048_576
"""Message size (1 MiB), body and attributes; a whole batch is bounded alike."""
LEGACY_MAX_MESSAGE_BYTES = 262_144
"""The message size limit of older SQS endpoints, LocalStack's and moto's (256 KiB)."""
DEFAULT_MAX_MESSAGE_BYTES = LEGACY_MAX_MESSAGE_BYTES
"""Our choice: the limit every endpoint honours, unless the setting
(``TASKQ_SQS_MAX_MESSAGE_BYTES``, up to ``MAX_MESSAGE_BYTES``) says otherwise."""
MAX_RECEIVE_COUNT = 1000
"""A redrive policy's ``maxReceiveCount``: 1 to 1,000 (Amazon SQS Developer Guide,
"Using dead-letter queues")."""

# -- Amazon DynamoDB quotas (Amazon DynamoDB Developer Guide, "Service, account, and
#    table quotas in Amazon DynamoDB") ------------------------------------------------

DYNAMODB_ITEM_BYTES = 400 * 1024
"""An item, attribute names included, is at most 400 KB ("Item size limit")."""
MAX_BATCH_GET_KEYS = 100
"""Keys per BatchGetItem call."""
MAX_BATCH_WRITE_ITEMS = 25
"""Puts and deletes per BatchWriteItem call (moto takes 26: do not test on it)."""
MAX_TRANSACTION_ITEMS = 100
"""Actions per TransactWriteItems call; the engine's transactions take three at most."""
MAX_PAYLOAD_DEPTH = 32
"""Deepest nesting of lists and objects a payload may have: DynamoDB's limit for nested
attributes ("Nested attribute depth"), and far below where JSON encoders give up."""

# -- Attempts and retries ---------------------------------------------------------------

DEFAULT_MAX_RECEIVE_COUNT = 20
"""Our choice: deliveries of one message before the queue moves it to the dead-letter
queue; above any sensible attempt budget, so the worker decides a task's failure."""
DEFAULT_MAX_ATTEMPTS_LIMIT = DEFAULT_MAX_RECEIVE_COUNT - 1
"""Derived: the largest attempt budget a task may ask for is ``max_receive_count - 1``
(19 by default), so the worker fails an exhausted task before the queue's own redrive
policy moves its message away."""
DEFAULT_MAX_ATTEMPTS = 3
"""Our choice, kept from the original service: attempts of a task that names none."""
MAX_BACKOFF_CAP_SECONDS = MAX_QUEUE_DELAY_SECONDS
"""Derived: retries wait on the queue (a message delay or a visibility change), and a
delay is at most ``MAX_QUEUE_DELAY_SECONDS``, so the cap of a backoff stays within it."""
MAX_RELEASE_SECONDS = MAX_VISIBILITY_TIMEOUT_SECONDS
"""Derived: a message given back to wait (``ChangeMessageVisibility``) stays hidden at
most ``MAX_VISIBILITY_TIMEOUT_SECONDS`` (12 h)."""

# -- Submission ------------------------------------------------------------------------

MAX_DELAY_SECONDS = 366 * 24 * 3600
"""Our choice: a task may be delayed up to a year (a leap year's worth); held tasks are
found by due time, so the number bounds typos, not cost."""
MAX_TIMEOUT_SECONDS = MAX_VISIBILITY_TIMEOUT_SECONDS
"""Derived: a handler's timeout is bounded like an SQS visibility timeout (12 h)."""
MAX_IDEMPOTENCY_KEY_LENGTH = 255
"""Our choice: a key is part of a DynamoDB partition key (2,048 bytes at most) and of
an HTTP header; 255 characters of UTF-8 (up to 1,020 bytes) stay well within both."""
MAX_BATCH_SIZE = 100
"""Our choice: tasks one batch submission may carry; its answer stays small, and each
item is checked and stored on its own."""

# -- Reading -----------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 50
"""Our choice: tasks in a page when the client names no ``limit``."""
MAX_PAGE_SIZE = 500
"""Our choice: the most tasks one page returns; each page costs a Query per index
shard, which this keeps cheap and fast."""
MAX_CURSOR_LENGTH = 1024
"""Our choice: the longest pagination cursor accepted, far above the ones the stores
make (about 120 characters), so a client cannot make the server decode megabytes."""
MAX_TASK_WAIT_SECONDS = 30.0
"""Our choice: the longest ``GET /tasks/{id}?wait=`` a client may ask for; well under
the idle timeouts of common proxies and load balancers (60 s), so a waiting request is
not cut off on its way back."""
WAIT_POLL_FIRST_SECONDS = 0.05
"""Our choice: where another process may finish the task, a waiting request first reads
the store again after this long, then twice as long each time..."""
WAIT_POLL_MAX_SECONDS = 1.0
"""...up to this: a waiter costs at most one read a second, and learns of a finished
task at most a second late."""

# -- Operator actions --------------------------------------------------------------------

DEFAULT_REDRIVE = 1000
"""Our choice: FAILED tasks one redrive retries when the operator names no limit."""
MAX_REDRIVE = 10_000
"""Our choice: the most FAILED tasks one redrive request retries; at the default rate
that is over three minutes of one request."""
DEFAULT_REDRIVE_PER_SECOND = 50.0
"""Our choice: tasks a redrive retries a second by default, so it does not flood the
workers."""
MAX_REDRIVE_PER_SECOND = 1000.0
"""Our choice: the fastest rate an operator may ask a redrive for."""

DEFAULT_DEAD_LETTER_LIST = 20
"""Our choice: dead-letter messages one look shows when the operator names no limit."""
MAX_DEAD_LETTER_LIST = 100
"""Our choice: the most dead-letter messages one look shows. On SQS a look receives
them (``MAX_QUEUE_BATCH`` a call) and hands them straight back, so it stays a few
calls; the bodies shown are cut to ``MAX_DEAD_LETTER_BODY_CHARS``."""
MAX_DEAD_LETTER_BODY_CHARS = 1024
"""Our choice: the characters of a dead letter's body an operator is shown; enough to
recognise a poison message, and a look at ``MAX_DEAD_LETTER_LIST`` of them stays small."""
MAX_DEAD_LETTER_SEARCH = 1000
"""Our choice: the most dead letters SQS is asked for while looking for one message by
id (to drop or redrive it): SQS cannot fetch a message by id, so the search receives
them (``MAX_QUEUE_BATCH`` a call, 100 calls at most) and hands the others back. A
message past the first 1,000 received is reported not found; redrive or drop the rest
in bulk first."""
MAX_MESSAGE_ID_LENGTH = 128
"""Our choice: the longest message id looked for; the backends' ids are far shorter
(an SQS MessageId is a 36-character UUID, SQLite's a row number)."""

# -- Blobs (the BlobStore port: uploads, resized images, exports) ----------------------

MAX_BLOB_KEY_LENGTH = 512
"""Characters in a blob key (our choice: room for a prefix and a file name)."""
MAX_BLOB_KEY_BYTES = 1024
"""A blob key's UTF-8 bytes: the S3 object key limit (Amazon S3 User Guide, "Naming
Amazon S3 objects")."""
MAX_BLOB_KEY_PART_BYTES = 255
"""A part of a blob key (between ``/``), in UTF-8 bytes: the longest file name of the
common file systems (ext4, XFS, APFS, NTFS), where the directory store keeps each part
as a directory or file name."""
MAX_BLOB_NAME_LENGTH = 128
"""The ``?name=`` hint of an upload, kept as the last part of its key: our choice, long
enough for any file name, short enough to leave room for the generated prefix."""
DEFAULT_MAX_BLOB_BYTES = 50 * 1024 * 1024
"""``TASKQ_MAX_BLOB_BYTES``' default: an upload of 50 MB at most (our choice: a large
photo or a data file, not a disk image)."""
MAX_CONTENT_TYPE_LENGTH = 255
"""A blob's content type: RFC 6838 bounds a media type's names to 127 characters each."""
BLOB_CHUNK_BYTES = 64 * 1024
"""What a blob is read in: one chunk held in memory per stream (our choice)."""
S3_PART_BYTES = 8 * 1024 * 1024
"""One part of an S3 multipart upload: at least 5 MiB (the S3 minimum for every part
but the last, Amazon S3 User Guide, "Amazon S3 multipart upload limits"); a put holds
one part in memory, and a blob no larger is sent in one PutObject."""
MAX_S3_PARTS = 10_000
"""Parts in one S3 multipart upload (Amazon S3 User Guide, "Amazon S3 multipart upload
limits")."""
MAX_EXPORT_BYTES = S3_PART_BYTES * MAX_S3_PARTS
"""An export's size: as many parts as one S3 upload takes (about 78 GiB)."""
DEFAULT_LINK_SECONDS = 3600
"""How long a download link (an S3 presigned URL) stays valid: an hour (our choice)."""
MAX_LINK_SECONDS = 7 * 24 * 3600
"""A presigned URL's longest life: 7 days (Amazon S3 API Reference, "Signature
Version 4": X-Amz-Expires at most 604,800)."""

# -- Built-in task types -----------------------------------------------------------------

MAX_IMAGE_SIDE = 20_000
"""A resized image's width or height, in pixels (our choice, kept from the first
validator)."""
MAX_IMAGE_PIXELS = 64_000_000
"""Pixels in an image to resize, and in the image a resize makes: Pillow's
decompression-bomb guard is set to this (about 256 MB decoded as RGBA; our choice,
between Pillow's own warning at 89 million pixels and a phone's 50-megapixel photo)."""
EXPORT_PAGE_SIZE = MAX_PAGE_SIZE
"""Tasks read per page while exporting: ``MAX_PAGE_SIZE``, the most one listing gives."""


# -- What a task carries -------------------------------------------------------------

MAX_ERROR_LENGTH = 2048
"""Our choice: a stored error message is truncated to this many characters; enough for
the message and the end of a traceback, and small against ``DYNAMODB_ITEM_BYTES``."""
MAX_DEAD_LETTER_REASON_CHARS = 1024
"""Our choice: a dead letter's reason travels as a message attribute, which counts
toward the message size; the first 1,024 characters say why."""
MAX_TRACEBACK_BYTES = 4 * 1024
"""Our choice: the last handler traceback kept on a task (``Task.traceback``), in UTF-8
bytes; a longer one keeps its end, where the exception was raised."""
TASK_ITEM_OVERHEAD_BYTES = 16 * 1024
"""Our choice: what a task item needs besides its payload and result: about 2 KB of
fields and keys, the error (``MAX_ERROR_LENGTH`` characters, up to 8 KB in UTF-8) and
the traceback (``MAX_TRACEBACK_BYTES``), with room to spare."""
MAX_TASK_DATA_BYTES = (DYNAMODB_ITEM_BYTES - TASK_ITEM_OVERHEAD_BYTES) // 2
"""Derived: the most a task's payload, and separately its result, may take as JSON
(196,608 bytes). A task is stored as one item (a DynamoDB item, an SQLite row, an
object in memory); with both at the limit the item still fits in DynamoDB."""

# -- A running handler's context (domain/run_context.py) -------------------------------

PROGRESS_INTERVAL_SECONDS = 1.0
"""Our choice: at most one progress write per running task a second. A handler may
report as often as it likes; reports in between are coalesced and the latest is written
at the next slot, so a chatty handler costs the store one write a second at most."""
MAX_PROGRESS_MESSAGE_LENGTH = 500
"""Our choice: a progress message is cut to this many characters: a line for a person
to read, small against ``TASK_ITEM_OVERHEAD_BYTES`` (every progress write rewrites the
task's state)."""
CANCEL_GRACE_SECONDS = 2.0
"""Our choice: how long a handler told (``TaskContext.cancelled``) that its task was
cancelled or its lease lost may take to return by itself before it is cancelled (an
async one) or abandoned (a sync one); a cooperating handler stops in well under this."""

# -- The email task type (adapters/handlers/email.py) ------------------------------

MAX_EMAIL_RECIPIENTS = 50
"""Recipients of one message: Amazon SES's quota ("Amazon SES sending quotas": 50
recipients per message), kept on every email backend."""
MAX_EMAIL_ADDRESS_LENGTH = 254
"""An address: RFC 5321's 256-character path, less its angle brackets."""
MAX_EMAIL_SUBJECT_CHARS = 998
"""A subject: RFC 5322's longest line (998 characters)."""

# -- Periodic schedules (domain/schedules.py, domain/scheduler.py) ----------------------

SCHEDULE_ON_TIME_SECONDS = 60.0
"""Our choice: a fire is submitted as on time up to this long after its time; older
fires count as missed (nothing ran the scheduler then) and follow the schedule's
``missed`` rule (skip them, or run one task for all of them). A minute covers a
scheduler pass delayed by a slow store or a restart."""
SCHEDULE_FIRE_WINDOW_SECONDS = 7 * 24 * 3600
"""Our choice: how long the idempotency key of one fire (``schedule:<name>:<time>``)
keeps a second scheduler from submitting it again: far longer than any process can lag
behind the others (a scheduler reads the schedules afresh every pass)."""
MAX_SCHEDULE_FIRES_PER_PASS = 100
"""Our choice: on-time fires one scheduler pass submits per schedule at most (a
seconds-resolution schedule after a pause of a minute); the rest go next pass."""
MAX_SCHEDULE_NAME_LENGTH = 100
"""Our choice: a schedule's name is a path segment (``DELETE /schedules/{name}``) and
part of an idempotency key, which must stay under ``MAX_IDEMPOTENCY_KEY_LENGTH``."""
MAX_SCHEDULES = 1000
"""Our choice: schedules stored at most; every scheduler pass reads them all (one
Query on DynamoDB), so the number is kept to what one read returns quickly."""
DEFAULT_SCHEDULER_INTERVAL_SECONDS = 1.0
"""Our choice: the longest a scheduler sleeps between passes (it wakes earlier for a
fire due sooner): a new or changed schedule is seen within this, and a store read a
second per process is cheap."""

SOURCE = "a task is stored as one DynamoDB item, at most 400 KB"

# -- The claim check (adapters/claim_check.py) ----------------------------------------

DEFAULT_INLINE_LIMIT_BYTES = 64 * 1024
"""``TASKQ_INLINE_LIMIT``'s default: a payload or result whose JSON is larger goes to
the blob store and the task keeps a reference to it (a claim check). Our choice: far
under ``MAX_TASK_DATA_BYTES`` (so a task stays well within DynamoDB's item limit), and
a value this large costs 64 WRU a write on DynamoDB against one PUT ($0.005 per 1,000)
and one GET ($0.0004 per 1,000) on S3."""
MAX_INLINE_LIMIT_BYTES = MAX_TASK_DATA_BYTES
"""Derived: ``TASKQ_INLINE_LIMIT`` at most; a value kept in the task must fit there."""
BLOB_SOURCE = "TASKQ_MAX_BLOB_BYTES: a payload or result over TASKQ_INLINE_LIMIT is kept as a blob"
"""Why a value kept as a blob has the limit it has: the end of the error past it."""


@dataclass(frozen=True)
class TaskDataLimit:
    """How large a task's payload, or its result, may be as JSON (bytes), and why:
    ``source`` ends the error that refuses a larger one."""

    max_bytes: int
    source: str

    @classmethod
    def with_claim_check(cls, *, inline_limit: int, max_blob_bytes: int) -> TaskDataLimit:
        """The limit where a value over ``inline_limit`` is kept as a blob of at most
        ``max_blob_bytes``: whichever is larger (a value no larger than ``inline_limit``
        stays in the task whatever the blob limit)."""
        if inline_limit >= max_blob_bytes:
            return cls(inline_limit, "TASKQ_INLINE_LIMIT: a value this large stays in the task")
        return cls(max_blob_bytes, BLOB_SOURCE)


MAX_REFERENCE_CHARS = 1024
"""Our choice: a claim check's reference is at most this long as JSON (its key is about
90 characters); a retention purge hands the stored values this short, where references
are, to the claim check to delete their blobs, and never the large ones."""


STORED_IN_TASK = TaskDataLimit(MAX_TASK_DATA_BYTES, SOURCE)
"""Derived: the limit of a value kept in the task itself (no claim check)."""


def encoded_size(value: JSON) -> int | None:
    """Bytes of ``value`` as the stores write it (JSON, UTF-8, ``json.dumps``'s default
    separators: the most any backend uses); None when it is not JSON at all, which is
    for other checks to say."""
    if value is None:  # most results: no encoding to find that out
        return len("null")
    try:
        return len(json.dumps(value, ensure_ascii=False).encode())
    except (TypeError, ValueError):  # not JSON, or a lone surrogate (not UTF-8)
        return None


def _over(value: JSON, limit: TaskDataLimit) -> int | None:
    size = encoded_size(value)
    return size if size is not None and size > limit.max_bytes else None


def check_payload(payload: JSON, limit: TaskDataLimit = STORED_IN_TASK) -> None:
    """Raise ``InvalidInput`` naming the limit when ``payload`` is too large."""
    size = _over(payload, limit)
    if size is not None:
        raise InvalidInput(
            "payload",
            f"is {size:,} bytes as JSON; at most {limit.max_bytes:,} are accepted ({limit.source})",
        )


def result_too_large(result: JSON, limit: TaskDataLimit = STORED_IN_TASK) -> ResultTooLarge | None:
    """The permanent failure for a handler's ``result`` too large to store, or None."""
    size = _over(result, limit)
    return None if size is None else ResultTooLarge(size, limit.max_bytes, limit.source)


DEFAULT_MEMORY_MAX_BACKLOG = 100_000
"""Accepted, unstarted (PENDING) tasks the memory backend holds before ``POST /tasks``
answers 503 (``TASKQ_MAX_BACKLOG``): each costs about 2 KB of RAM, so 100,000 bound
the backlog's memory to a few hundred MB. SQLite keeps its backlog on disk: unbounded
by default. On aws the queue is SQS: no bound."""


# -- Flow control of task types (domain/flow_control.py) ----------------------------------

MAX_DEFER_SECONDS = 5
"""Our choice: the longest a delivery over its type's limit (or paused) waits before it
is looked at again, so that a resumed type, or a slot that frees, is used within a few
seconds. Whole seconds: a message's ``DelaySeconds`` is an integer."""
PAUSED_RECHECK_SECONDS = 3.0
"""Our choice: how long a delivery of a paused type waits (before jitter) to be looked
at again; with the jitter it stays within ``MAX_DEFER_SECONDS``."""
DEFER_JITTER_SECONDS = 2.0
"""Our choice: a deferral waits up to this much more, at random, so that the deliveries
deferred together do not all come back in the same instant."""
FLOW_REFRESH_SECONDS = 1.0
"""Our choice (``TASKQ_FLOW_REFRESH_SECONDS``): how old a process's copy of the types'
run-time settings may grow before it reads them again; a pause made in another process
takes effect here within this plus one read (the issue asks for 2 s)."""
FLOW_WRITE_ATTEMPTS = 8
"""Our choice: compare-and-set tries on a type's flow record (its permits and tokens)
before a delivery that lost every race is deferred instead."""
MAX_CONCURRENCY_LIMIT = 1000
"""Derived: a type's permits live in one item (DynamoDB: at most 400 KB), about 60 bytes
each; 1,000 keeps the item small, so each compare-and-set stays cheap."""
MAX_RATE_PER_SECOND = 10_000.0
"""Our choice: the highest ``rate`` (starts per second) accepted; above it, a rate limit
would not limit."""
DEFER_PHASE_SECONDS = 1.0
"""Our choice: a deferred delivery is re-sent after a random pause below this (off its
worker's slot), so that deliveries refused together come back spread over the second:
a queue delays by whole seconds, which would otherwise keep them in step for ever."""
DEFAULT_UI_REFRESH_SECONDS = 3.0
"""Our choice (``TASKQ_UI_REFRESH_SECONDS``): how often the dashboard's overview fetches
its figures while the tab is visible; each fetch adds one interval to its chart."""
