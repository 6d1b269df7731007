"""Operating several daemons as a fleet with ordinary tools: the ``instance`` label on /metrics.

Every sample the control endpoint exposes carries ``instance="<name>"`` (config ``instance``;
default ``<hostname>:<first symbols>``), so one Prometheus can scrape many daemons (one per
symbol group or account) and a Grafana dashboard (docs/grafana/epochbot-fleet.json) can group
and filter by it. Prometheus sets its own ``instance`` target label too: scrape with
``honor_labels: true`` to keep the daemon's name (otherwise it is kept as ``exported_instance``).
"""

from __future__ import annotations

import socket

__all__ = ["InstanceLabelled", "default_instance", "instance_name"]


def default_instance(symbols) -> str:
    symbols = list(symbols)
    head = ",".join(symbols[:3]) + (f"+{len(symbols) - 3}" if len(symbols) > 3 else "")
    return f"{socket.gethostname()}:{head}" if head else socket.gethostname()


def instance_name(settings) -> str:
    name = getattr(settings, "instance", None)
    return name if name else default_instance(getattr(settings, "symbols", ()))


class InstanceLabelled:
    """A Prometheus collector that adds ``instance`` to every sample of ``inner``."""

    def __init__(self, inner, instance: str) -> None:
        self._inner = inner
        self.instance = instance

    def describe(self):
        return []

    def collect(self):
        for metric in self._inner.collect():
            metric.samples = [s._replace(labels={**s.labels, "instance": self.instance}) for s in metric.samples]
            yield metric
