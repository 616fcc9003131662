"""The age of the oldest due PENDING task: computed by the metrics use case on the clock,
and exported by the cluster gauges as ``taskq_oldest_due_task_age_seconds``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from adapters.observability.metrics import PROMETHEUS_TEXT, ClusterGauges, MetricsExposition
from domain.models import MetricsSnapshot
from tests.support.service_rig import Rig


def scraped_age(snapshot: MetricsSnapshot) -> float:
    collectors = CollectorRegistry()
    exposition = MetricsExposition(collectors, ClusterGauges(collectors))
    body, _ = exposition.render(PROMETHEUS_TEXT, snapshot)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    [sample] = families["taskq_oldest_due_task_age_seconds"].samples
    return sample.value


async def test_the_age_is_zero_when_nothing_is_due() -> None:
    rig = Rig()
    await rig.submit(delay_seconds=60)

    snapshot = await rig.service.metrics()

    assert snapshot.oldest_due_age_seconds == 0.0
    assert scraped_age(snapshot) == 0.0


async def test_the_age_is_how_long_the_oldest_due_task_has_waited() -> None:
    rig = Rig()
    oldest = await rig.submit()
    await rig.clock.advance(30)
    await rig.submit()
    await rig.submit(delay_seconds=3600)  # not due: not counted
    await rig.clock.advance(12.5)

    snapshot = await rig.service.metrics()

    assert snapshot.oldest_due_age_seconds == 42.5
    assert scraped_age(snapshot) == 42.5
    await rig.start(oldest.id)  # started: no longer waiting
    assert (await rig.service.metrics()).oldest_due_age_seconds == 12.5
