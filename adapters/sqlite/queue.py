"""The task queue on the ``messages`` and ``dead_letters`` tables of the SQLite file.

Time on the queue is the Clock's ``now()`` as epoch seconds, not ``monotonic()``: a
monotonic clock is per process, and every process sharing the file must agree.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Sequence
from typing import Final

from adapters import envelope
from adapters.sqlite.database import SqliteDatabase, statement
from domain.errors import DeadLetterNotFound
from domain.limits import MAX_QUEUE_BATCH, MAX_QUEUE_DELAY_SECONDS
from domain.models import RECEIVE_LIMIT_REASON, DeadLetter, Delivery, QueueDepth
from domain.ports import Clock
from domain.priorities import Priority, PriorityOrder, PriorityWeights

POLL_INTERVAL_SECONDS: Final = 0.05
"""How often an idle long poll looks at the file for messages sent by other processes
(sends from this process wake it at once)."""

_SEND: Final = "INSERT INTO messages (body, visible_at, sent_at, priority) VALUES (?, ?, ?, ?)"
_ANY_VISIBLE: Final = "SELECT 1 FROM messages WHERE visible_at <= ? LIMIT 1"
_OLDEST_VISIBLE: Final = (
    "SELECT id, body, receive_count, sent_at FROM messages "
    "WHERE priority = ? AND visible_at <= ? ORDER BY visible_at, id LIMIT ?"
)
"""One priority's visible messages, oldest due first (index ``messages_by_priority``)."""
_LEASE: Final = "UPDATE messages SET receive_count = ?, receipt = ?, visible_at = ? WHERE id = ?"
_ACK: Final = "DELETE FROM messages WHERE id = ? AND receipt = ?"
_SET_VISIBILITY: Final = "UPDATE messages SET visible_at = ? WHERE id = ? AND receipt = ?"
_MESSAGE: Final = "SELECT id, body, receive_count, sent_at FROM messages WHERE id = ?"
_DELETE_MESSAGE: Final = "DELETE FROM messages WHERE id = ?"
_COUNT_VISIBLE: Final = "SELECT COUNT(*) AS visible FROM messages WHERE visible_at <= ?"
_COUNT_HIDDEN: Final = (
    "SELECT COUNT(receipt) AS in_flight, COUNT(*) - COUNT(receipt) AS delayed FROM messages "
    "WHERE visible_at > ?"
)
"""A hidden message with a receipt has been received (in flight); without, it is delayed."""

_DEAD_LETTER: Final = (
    "INSERT INTO dead_letters (message_id, body, receive_count, sent_at, dead_at, reason) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_COUNT_DEAD_LETTERS: Final = "SELECT COUNT(*) AS n FROM dead_letters"
_LIST_DEAD_LETTERS: Final = (
    "SELECT message_id, body, receive_count, reason FROM dead_letters ORDER BY seq LIMIT ?"
)
_DEAD_LETTER_BY_ID: Final = (
    "SELECT seq, message_id, body, receive_count, reason FROM dead_letters "
    "WHERE message_id = ? ORDER BY seq LIMIT 1"
)
_OLDEST_DEAD_LETTERS: Final = "SELECT seq, body FROM dead_letters ORDER BY seq LIMIT ?"
_DELETE_DEAD_LETTER: Final = "DELETE FROM dead_letters WHERE seq = ?"


def _check_batch(max_messages: int) -> None:
    if not 1 <= max_messages <= MAX_QUEUE_BATCH:
        raise ValueError(f"max_messages must be between 1 and {MAX_QUEUE_BATCH}")


def _check_delay(delay_seconds: float) -> None:
    if not 0 <= delay_seconds <= MAX_QUEUE_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {MAX_QUEUE_DELAY_SECONDS}")


def _message_id(delivery: Delivery) -> int | None:
    try:
        return int(delivery.message_id)
    except ValueError:
        return None


class SqliteTaskQueue:
    """The queue in the ``messages`` table, with the memory queue's semantics.

    A receive claims messages in one ``BEGIN IMMEDIATE`` transaction and gives each a
    fresh random receipt, so two processes never hold the same lease, and an ack,
    release or extend with an older receipt changes nothing.
    """

    max_batch = MAX_QUEUE_BATCH

    def __init__(
        self,
        db: SqliteDatabase,
        clock: Clock,
        *,
        max_receive_count: int,
        priority_weights: PriorityWeights | None = None,
    ) -> None:
        if max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        self._order = PriorityOrder(priority_weights or PriorityWeights())
        self._db = db
        self._clock = clock
        self.max_receive_count = max_receive_count
        self.poll_interval = POLL_INTERVAL_SECONDS
        self._wakeup = asyncio.Event()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    # -- sending ---------------------------------------------------------------------

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        await self._put([(envelope.encode(task_id, priority), delay_seconds)], priority)

    async def send_raw(self, body: str, *, delay_seconds: int = 0) -> None:
        """Put any body on the queue (tests use it to inject poison messages)."""
        await self._put([(body, delay_seconds)])

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        """All items in one transaction: every one is sent, or none and this raises."""
        bodies = [(envelope.encode(task_id, priority), delay) for task_id, delay in items]
        await self._put(bodies, priority)

    async def _put(
        self, bodies: Sequence[tuple[str, float]], priority: Priority = Priority.DEFAULT
    ) -> None:
        for _, delay in bodies:
            _check_delay(delay)
        if not bodies:
            return
        now = self._now()
        rows = [(body, now + delay, now, priority.rank) for body, delay in bodies]
        await self._db.write(statement(_SEND, rows, many=True))
        self._wakeup.set()

    # -- receiving -------------------------------------------------------------------

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        _check_batch(max_messages)
        # As in the memory queue, the wait is real time; visibility is on the Clock.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        woken = True
        while True:
            self._wakeup.clear()
            deliveries: list[Delivery] = []
            # After a quiet poll interval, look before taking the write lock.
            if woken or await self._any_visible():
                deliveries = await self._claim(max_messages, visibility_timeout)
            remaining = deadline - loop.time()
            if deliveries or remaining <= 0:
                return deliveries
            try:
                await asyncio.wait_for(self._wakeup.wait(), min(remaining, self.poll_interval))
                woken = True
            except TimeoutError:
                woken = False

    async def _any_visible(self) -> bool:
        now = self._now()
        row = await self._db.read(lambda conn: conn.execute(_ANY_VISIBLE, (now,)).fetchone())
        return row is not None

    async def _claim(self, max_messages: int, visibility_timeout: float) -> list[Delivery]:
        now = self._now()
        visible_at = now + max(0.0, visibility_timeout)
        limit = self.max_receive_count
        order = [priority.rank for priority in self._order.next_round()]

        def run(conn: sqlite3.Connection) -> list[Delivery]:
            out: list[Delivery] = []
            ranks = iter(order)
            rank = next(ranks)
            while len(out) < max_messages:
                rows = conn.execute(
                    _OLDEST_VISIBLE, (rank, now, max_messages - len(out))
                ).fetchall()
                if not rows:
                    if (rank := next(ranks, -1)) < 0:
                        break
                    continue
                for message in rows:
                    if message["receive_count"] >= limit:
                        # The redrive policy: dead-lettered instead of delivered.
                        _move_to_dead_letters(conn, message, now, RECEIVE_LIMIT_REASON)
                        continue
                    message_id, body = message["id"], message["body"]
                    count = message["receive_count"] + 1
                    receipt = f"{message_id}:{count}:{secrets.token_hex(8)}"
                    conn.execute(_LEASE, (count, receipt, visible_at, message_id))
                    out.append(
                        Delivery(
                            receipt=receipt,
                            task_id=envelope.decode(body),
                            receive_count=count,
                            message_id=str(message_id),
                            raw_body=body,
                        )
                    )
            return out

        return await self._db.write(run)

    # -- settling --------------------------------------------------------------------

    async def ack(self, delivery: Delivery) -> None:
        await self.ack_batch([delivery])

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        keys = [
            (message_id, d.receipt)
            for d in deliveries
            if (message_id := _message_id(d)) is not None
        ]
        if not keys:
            return
        await self._db.write(statement(_ACK, keys, many=True))

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        await self._set_visibility(delivery, delay_seconds)
        self._wakeup.set()

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        await self._set_visibility(delivery, visibility_timeout)

    async def _set_visibility(self, delivery: Delivery, seconds: float) -> None:
        message_id = _message_id(delivery)
        if message_id is None:
            return
        visible_at = self._now() + max(0.0, seconds)
        await self._db.write(statement(_SET_VISIBILITY, (visible_at, message_id, delivery.receipt)))

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        message_id = _message_id(delivery)
        if message_id is None:
            return
        now = self._now()

        def run(conn: sqlite3.Connection) -> None:
            message = conn.execute(_MESSAGE, (message_id,)).fetchone()
            if message is not None:
                _move_to_dead_letters(conn, message, now, reason)

        await self._db.write(run)

    # -- inspection ------------------------------------------------------------------

    async def depth(self) -> QueueDepth:
        now = self._now()

        def run(conn: sqlite3.Connection) -> QueueDepth:
            visible = conn.execute(_COUNT_VISIBLE, (now,)).fetchone()
            hidden = conn.execute(_COUNT_HIDDEN, (now,)).fetchone()
            return QueueDepth(
                visible=visible["visible"],
                in_flight=hidden["in_flight"],
                delayed=hidden["delayed"],
            )

        return await self._db.read(run)

    async def dead_letter_count(self) -> int:
        row = await self._db.read(lambda conn: conn.execute(_COUNT_DEAD_LETTERS).fetchone())
        return int(row["n"])

    async def list_dead_letters(self, *, limit: int) -> list[DeadLetter]:
        rows = await self._db.read(
            lambda conn: conn.execute(_LIST_DEAD_LETTERS, (max(0, limit),)).fetchall()
        )
        return [_dead_letter(row) for row in rows]

    async def redrive_dead_letters(self, *, limit: int | None = None) -> int:
        now = self._now()

        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                _OLDEST_DEAD_LETTERS, (-1 if limit is None else max(0, limit),)
            ).fetchall()
            conn.executemany(_SEND, [_resend(row["body"], now) for row in rows])
            conn.executemany(_DELETE_DEAD_LETTER, [(row["seq"],) for row in rows])
            return len(rows)

        moved = await self._db.bulk_write(run)  # every dead letter, unless limited
        if moved:
            self._wakeup.set()
        return moved

    async def drop_dead_letter(self, message_id: str) -> DeadLetter:
        return await self._take_dead_letter(message_id, resend=False)

    async def redrive_dead_letter(self, message_id: str) -> DeadLetter:
        found = await self._take_dead_letter(message_id, resend=True)
        self._wakeup.set()
        return found

    async def _take_dead_letter(self, message_id: str, *, resend: bool) -> DeadLetter:
        """Delete the dead letter ``message_id`` (found by its index) and, if ``resend``,
        put its body on the queue, in one transaction; the dead letter as it was."""
        now = self._now()

        def run(conn: sqlite3.Connection) -> DeadLetter | None:
            row = conn.execute(_DEAD_LETTER_BY_ID, (message_id,)).fetchone()
            if row is None:
                return None
            if resend:
                conn.execute(_SEND, _resend(row["body"], now))
            conn.execute(_DELETE_DEAD_LETTER, (row["seq"],))
            return _dead_letter(row)

        found = await self._db.write(run)
        if found is None:
            raise DeadLetterNotFound(message_id)
        return found

    async def ping(self) -> None:
        await self._db.ping()


def _resend(body: str, now: float) -> tuple[str, float, float, int]:
    """The ``_SEND`` row that puts a dead letter's body back, visible at once, in the
    priority its envelope names."""
    return (body, now, now, envelope.priority_of(body).rank)


def _dead_letter(row: sqlite3.Row) -> DeadLetter:
    """A row of ``dead_letters`` (message_id, body, receive_count, reason)."""
    return DeadLetter(
        row["message_id"],
        envelope.decode(row["body"]),
        row["receive_count"],
        row["body"],
        row["reason"],
    )


def _move_to_dead_letters(
    conn: sqlite3.Connection, message: sqlite3.Row, now: float, reason: str
) -> None:
    """Move a row of ``messages`` (id, body, receive_count, sent_at) to ``dead_letters``."""
    conn.execute(
        _DEAD_LETTER,
        (
            str(message["id"]),
            message["body"],
            message["receive_count"],
            message["sent_at"],
            now,
            reason,
        ),
    )
    conn.execute(_DELETE_MESSAGE, (message["id"],))
