"""What a scrape of `/metrics` answers (docs/metrics.md), built once per app.

Under gunicorn every worker's values are read from the instance's multiprocess directory, so a
scrape answers for the whole instance whichever worker takes it. The gauges that live in the
instance's shared files (deployments in cooldown, spool files) are read at the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .instruments import CallMetrics

CONTENT_TYPE = CONTENT_TYPE_LATEST


class InstanceGauges(Collector):
    """Gauges read when scraped: what the instance's shared files say now."""

    def __init__(self, cooling: Callable[[], int], spool_files: Callable[[], int]) -> None:
        self.cooling = cooling
        self.spool_files = spool_files

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "switchboard_deployments_cooling_down",
            "Deployments out of rotation on this instance now.",
            value=self.cooling(),
        )
        yield GaugeMetricFamily(
            "switchboard_spool_files",
            "Ledger spool files on this instance (rows waiting for the database).",
            value=self.spool_files(),
        )


class Exposition:
    """The registry a scrape reads: every worker's files (or this app's own registry), plus
    the instance gauges."""

    def __init__(
        self, metrics: CallMetrics, cooling: Callable[[], int], spool_files: Callable[[], int]
    ) -> None:
        if metrics.registry is None:
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry)
        else:
            self.registry = metrics.registry
        self.registry.register(InstanceGauges(cooling, spool_files))

    def render(self) -> bytes:
        return generate_latest(self.registry)
