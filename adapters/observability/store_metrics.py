"""The SQLite file's write lock as Prometheus metrics, read from this process's
connection when scraped: how often its write transactions found another process
holding the lock, and how long they waited for it. With the API and workers in separate
processes on one file, a wait rate near one second per second means the processes
spend their time taking turns rather than working (docs/sqlite.md, several processes).

- ``taskq_sqlite_write_transactions_total``: write transactions this process began;
- ``taskq_sqlite_loop_write_transactions_total``: of those, the ones on the event
  loop's own connection (docs/sqlite.md, how calls run);
- ``taskq_sqlite_write_lock_waits_total``: those that found the lock held;
- ``taskq_sqlite_write_lock_wait_seconds_total``: the time they waited.

Nothing is exposed on other backends (``stats`` is None).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.sqlite import WriteLockStats


class SqliteWriteLockMetrics(Collector):
    def __init__(self, collectors: CollectorRegistry, stats: WriteLockStats | None) -> None:
        self._stats = stats
        collectors.register(self)

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        if stats is None:
            return
        yield CounterMetricFamily(
            "taskq_sqlite_write_transactions",
            "Write transactions this process began on the SQLite file.",
            value=stats.transactions,
        )
        yield CounterMetricFamily(
            "taskq_sqlite_loop_write_transactions",
            "Of those, the ones run on the event loop's own connection (the others ran on"
            " the database's thread: the lock was held elsewhere, a bulk write, FULL).",
            value=stats.on_loop,
        )
        yield CounterMetricFamily(
            "taskq_sqlite_write_lock_waits",
            "Write transactions that found the file's write lock held by another process.",
            value=stats.waits,
        )
        yield CounterMetricFamily(
            "taskq_sqlite_write_lock_wait_seconds",
            "Time this process's write transactions waited for the file's write lock.",
            value=stats.wait_seconds,
        )
