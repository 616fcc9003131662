"""The task types' flow limits, pauses and deferrals as Prometheus metrics, read from
this process's ``FlowGate`` when scraped (the API process reads the store first: its
``/metrics`` handler refreshes the gate).

- ``taskq_task_type_paused{type}``: 1 while the type is paused;
- ``taskq_task_type_max_concurrency{type}``, ``taskq_task_type_rate{type}``: the limits
  of the types that have them;
- ``taskq_task_type_running{type}``: tasks holding a concurrency permit;
- ``taskq_deliveries_deferred_total{type,reason}``: deliveries this process deferred
  (``paused``, ``concurrency``, ``rate``, ``contention``).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.flow_settings import TaskTypeLimits

_GAUGES = (
    ("taskq_task_type_paused", "1 while the task type is paused."),
    ("taskq_task_type_max_concurrency", "Tasks of the type allowed to run at once."),
    ("taskq_task_type_rate", "Starts per second allowed."),
    ("taskq_task_type_running", "Tasks of the type holding a concurrency permit."),
)


class FlowMetrics(Collector):
    def __init__(self, collectors: CollectorRegistry, limits: TaskTypeLimits) -> None:
        self._limits = limits
        collectors.register(self)

    def collect(self) -> Iterator[Metric]:
        flows = self._limits.known()
        paused, most, rate, running = (
            GaugeMetricFamily(name, text, labels=["type"]) for name, text in _GAUGES
        )
        for name, flow in flows.items():
            paused.add_metric([name], 1.0 if flow.limits.paused else 0.0)
            if flow.limits.max_concurrency is not None:
                most.add_metric([name], flow.limits.max_concurrency)
                running.add_metric([name], flow.running or 0)
            if flow.limits.rate is not None:
                rate.add_metric([name], flow.limits.rate)
        yield from (paused, most, rate, running)
        deferred = CounterMetricFamily(
            "taskq_deliveries_deferred",
            "Deliveries deferred by this process: the type over a limit, or paused.",
            labels=["type", "reason"],
        )
        for (name, reason), count in sorted(self._limits.gate.deferred.items()):
            deferred.add_metric([name, reason], count)
        yield deferred
