"""Prometheus metrics with ``prometheus_client``, each container on a registry of its own
(never the library's global one, so tests and containers stay apart).

- ``PrometheusTaskEvents``: the ``TaskEvents`` port as counters and histograms, labelled
  by task type (registered types only; any other is counted as ``other``).
- ``ClusterGauges``: what the whole cluster holds (tasks by status, queue depth, dead
  letters, workers, the oldest due task's age), computed when scraped, from the API process alone.
- ``HttpMetrics``: requests by route template, method and status, and their latency.
- ``MetricsExposition``: the registry as the Prometheus text or OpenMetrics exposition.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from domain.events import TaskEvent, TaskEventKind
from domain.models import COUNTS_NOTE, MetricsSnapshot, TaskStatus

DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Seconds, from 1 ms to 1 h: task waits and run times."""
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Seconds: request latencies."""
OTHER_TYPE = "other"
"""The ``type`` label of a task whose type is not registered (bounded label values)."""

_COUNTED = {
    TaskEventKind.SUBMITTED: "Tasks submitted.",
    TaskEventKind.STARTED: "Attempts started.",
    TaskEventKind.COMPLETED: "Tasks completed.",
    TaskEventKind.RETRIED: "Failed attempts scheduled for a retry.",
    TaskEventKind.FAILED: "Tasks that became FAILED.",
    TaskEventKind.DEAD_LETTERED: "Task messages moved to the dead-letter queue.",
    TaskEventKind.CANCELLED: "Tasks cancelled.",
    TaskEventKind.TIMED_OUT: "Attempts whose handler ran past its timeout.",
    TaskEventKind.LEASE_LOST: "Attempts whose worker lost the lease before recording them.",
    TaskEventKind.RECOVERED: "Abandoned PROCESSING tasks settled by the reconciler.",
}


class PrometheusTaskEvents(Collector):
    """Counts task events (``taskq_tasks_<event>_total{type}``) and observes their
    durations (``taskq_task_queue_wait_seconds``, ``taskq_task_run_seconds``,
    ``taskq_task_end_to_end_seconds``, by type).

    Recorded in plain counts (one lock, a dict and a bisect per event: it runs three
    times a task on the delivery and request paths) and turned into metric families
    only when scraped: ``prometheus_client``'s own ``Counter.inc`` and
    ``Histogram.observe`` cost several times more per event."""

    def __init__(self, collectors: CollectorRegistry, task_types: Iterable[str]) -> None:
        self.task_types = frozenset(task_types)
        self._lock = threading.Lock()
        self._created = time.time()
        # every series exists from the start
        self._series = {name: _TypeSeries() for name in (*self.task_types, OTHER_TYPE)}
        collectors.register(self)

    def record(self, event: TaskEvent) -> None:
        kind = event.kind
        series = self._series.get(event.task.type) or self._series[OTHER_TYPE]
        with self._lock:
            series.counts[kind] += 1
            for index, seconds in _DURATIONS[kind]:
                value = seconds(event)
                if value is not None:
                    series.histograms[index].observe(value)

    def describe(self) -> Iterator[Metric]:
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        with self._lock:
            snapshot = {
                name: (dict(s.counts), [h.cumulative() for h in s.histograms])
                for name, s in self._series.items()
            }
        for kind, text in _COUNTED.items():
            counter = CounterMetricFamily(f"taskq_tasks_{kind.value}", text, labels=["type"])
            for name, (counts, _) in snapshot.items() if with_samples else ():
                counter.add_metric([name], counts[kind], created=self._created)
            yield counter
        for index, (metric, text) in enumerate(_HISTOGRAMS):
            histogram = HistogramMetricFamily(metric, text, labels=["type"])
            for name, (_, histograms) in snapshot.items() if with_samples else ():
                buckets, total = histograms[index]
                histogram.add_metric([name], buckets, total)
                histogram.add_sample(f"{metric}_created", {"type": name}, self._created)
            yield histogram


_HISTOGRAMS = (
    ("taskq_task_queue_wait_seconds", "From due to started (first attempts)."),
    ("taskq_task_run_seconds", "From started to finished."),
    ("taskq_task_end_to_end_seconds", "From created to a final status."),
)


def _queue_wait(event: TaskEvent) -> float | None:
    return event.queue_wait_seconds


def _run(event: TaskEvent) -> float | None:
    return event.run_seconds


def _total(event: TaskEvent) -> float | None:
    return event.total_seconds


_DURATIONS: dict[TaskEventKind, tuple[tuple[int, Callable[[TaskEvent], float | None]], ...]] = {
    **dict.fromkeys(TaskEventKind, ()),
    TaskEventKind.STARTED: ((0, _queue_wait),),
    TaskEventKind.COMPLETED: ((1, _run), (2, _total)),
    TaskEventKind.RETRIED: ((1, _run),),
    TaskEventKind.FAILED: ((1, _run), (2, _total)),
    TaskEventKind.CANCELLED: ((2, _total),),
}
"""The durations (a histogram's index in ``_HISTOGRAMS``, how to read it) an event of
each kind may carry (each still says None when it has none): the others are not read."""
_LE = (*(repr(float(bound)) for bound in DURATION_BUCKETS), "+Inf")  # as the library writes them


class _Histogram:
    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
        self.total += value

    def cumulative(self) -> tuple[list[tuple[str, float]], float]:
        return list(zip(_LE, itertools.accumulate(self.buckets), strict=True)), self.total


class _TypeSeries:
    """One task type's counts and histograms."""

    def __init__(self) -> None:
        self.counts: dict[TaskEventKind, int] = dict.fromkeys(_COUNTED, 0)
        self.histograms = tuple(_Histogram() for _ in _HISTOGRAMS)


class ClusterGauges(Collector):
    """The cluster's state at the last scrape (``update``), as gauges. Registered only
    in the API process, so a sum over processes counts each figure once."""

    def __init__(self, collectors: CollectorRegistry) -> None:
        self._snapshot: MetricsSnapshot | None = None
        collectors.register(self)

    def update(self, snapshot: MetricsSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        if snap is None:
            return
        tasks = GaugeMetricFamily(
            "taskq_tasks", f"Tasks stored, by status. {COUNTS_NOTE}", labels=["status"]
        )
        for status in TaskStatus:
            tasks.add_metric([status.value], snap.counts.get(status, 0))
        yield tasks
        queue = GaugeMetricFamily(
            "taskq_queue_messages", "Messages on the task queue, by state.", labels=["state"]
        )
        queue.add_metric(["visible"], snap.depth.visible)
        queue.add_metric(["in_flight"], snap.depth.in_flight)
        queue.add_metric(["delayed"], snap.depth.delayed)
        yield queue
        for name, text, value in (
            ("taskq_dead_letter_queue_depth", "Messages on the dead-letter queue.",
             snap.dead_letter_queue_depth),
            ("taskq_live_workers", "Worker processes alive (beating).", snap.live_workers),
            ("taskq_worker_slots", "Tasks the live workers can run at once.",
             snap.active_workers),
            ("taskq_worker_slots_busy", "Slots running a task, as last reported.",
             snap.busy_slots),
            ("taskq_oldest_due_task_age_seconds",
             "Age of the oldest PENDING task that is due (0 when none is).",
             snap.oldest_due_age_seconds),
        ):  # fmt: skip
            yield GaugeMetricFamily(name, text, value=value)
        if snap.max_backlog is not None:
            yield GaugeMetricFamily(
                "taskq_max_backlog",
                "PENDING tasks beyond which submissions are refused (TASKQ_MAX_BACKLOG).",
                value=snap.max_backlog,
            )
        yield CounterMetricFamily(
            "taskq_backlog_refusals",
            "Submissions refused (503) because the backlog was full.",
            value=snap.backlog_refusals,
        )


class HttpMetrics:
    """``taskq_http_requests_total{route,method,status}`` and
    ``taskq_http_request_duration_seconds{route,method}``. ``route`` is the route's
    template (``/tasks/{task_id}``), never the raw path."""

    def __init__(self, collectors: CollectorRegistry) -> None:
        self._requests = Counter(
            "taskq_http_requests",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=collectors,
        )
        self._latency = Histogram(
            "taskq_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=collectors,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        pair = self._children.get(key)
        if pair is None:
            pair = self._children[key] = (
                self._requests.labels(route, method, str(status)),
                self._latency.labels(route, method),
            )
        pair[0].inc()
        pair[1].observe(seconds)


OPENMETRICS = "application/openmetrics-text"
PROMETHEUS_TEXT = "text/plain"
PROMETHEUS_TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The text format every Prometheus reads (our metric names need no UTF-8 escaping)."""


class MetricsExposition:
    """The registry's metrics, as a scraper asked for them."""

    def __init__(self, collectors: CollectorRegistry, cluster: ClusterGauges | None = None) -> None:
        self.collectors = collectors
        self.cluster = cluster

    def render(self, media_type: str, snapshot: MetricsSnapshot | None = None) -> tuple[bytes, str]:
        """The exposition in ``media_type`` (``OPENMETRICS`` or ``PROMETHEUS_TEXT``) and
        its Content-Type; the cluster gauges from ``snapshot`` when given."""
        if snapshot is not None and self.cluster is not None:
            self.cluster.update(snapshot)
        if media_type == OPENMETRICS:
            body: bytes = generate_openmetrics(self.collectors)  # type: ignore[no-untyped-call]
            return body, OPENMETRICS_CONTENT_TYPE
        return generate_latest(self.collectors), PROMETHEUS_TEXT_CONTENT_TYPE

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serve the exposition on ``host:port`` (``/metrics``) from a thread."""
        server, thread = start_http_server(port, addr=host, registry=self.collectors)
        return MetricsServer(server, thread)


class MetricsServer:
    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
