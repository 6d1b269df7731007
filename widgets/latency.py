"""Latency decomposition: transport (the network is slow), queue (we are slow), silence.

The three are shown side by side with the same layout (current, p50/p99 over the window, a
sparkline of recent samples) and labelled in operator terms, so a slow venue and a slow strategy
loop never look alike.
"""

from __future__ import annotations

from functools import partial

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label

from epochbot.views.snapshot import WorldSnapshot
from epochbot.widgets._format import ms
from epochbot.widgets.spark import ScaledSparkline

__all__ = ["LatencyPane"]

_COLUMNS = (
    ("transport", "TRANSPORT", "network slow"),
    ("queue", "QUEUE", "we are slow"),
    ("silence", "SILENCE", "market quiet"),
)


_FLOOR_MS = {"transport": 50.0, "queue": 5.0, "silence": 500.0}


def _style(key: str, value: float) -> str:
    floor = _FLOOR_MS[key]
    if value >= 4 * floor:
        return "$error"
    if value >= floor:
        return "$warning"
    return "$primary"


class LatencyPane(Horizontal):
    """Transport latency, queue delay and market silence, each with a sparkline."""

    DEFAULT_CSS = """
    LatencyPane { height: auto; }
    LatencyPane > Vertical { width: 1fr; height: auto; padding: 0 1 0 0; }
    LatencyPane Label { width: 100%; text-wrap: nowrap; text-overflow: ellipsis; }
    LatencyPane ScaledSparkline { height: 2; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)

    def compose(self) -> ComposeResult:
        for key, title, meaning in _COLUMNS:
            with Vertical(id=f"lat-{key}", classes="lat-column"):
                yield Label(title, classes="lat-title")
                yield Label(meaning, classes="lat-meaning")
                yield Label("-", id=f"lat-{key}-now", classes="lat-now")
                yield Label("", id=f"lat-{key}-p50", classes="lat-pct")
                yield Label("", id=f"lat-{key}-p99", classes="lat-pct")
                yield ScaledSparkline(id=f"lat-{key}-spark")

    def on_mount(self) -> None:
        self.border_title = "Latency (ms)"

    def watch_snapshot(self, snap: WorldSnapshot | None) -> None:
        if snap is None or not self.is_mounted:
            return
        lat = snap.latency
        for key, stats, history in (
            ("transport", lat.transport, lat.transport_history),
            ("queue", lat.queue, lat.queue_history),
        ):
            if stats.count:
                self._column(key, stats.last, f"p50 {ms(stats.p50)}", f"p99 {ms(stats.p99)}", history)
            else:  # nothing measured yet: say so, do not print zeros
                self._column(key, None, "p50 —", "p99 —", history)
        worst = max(lat.silence_by_symbol.items(), key=lambda kv: kv[1], default=None)
        self._column(
            "silence",
            lat.silence_ms,
            f"worst {worst[0]}" if worst else "",
            f"  {ms(worst[1])}" if worst else "",
            lat.silence_history,
        )

    def _column(self, key: str, now: float | None, line2: str, line3: str, history) -> None:
        self.query_one(f"#lat-{key}-now", Label).update(f"now {ms(now) if now is not None else '—'}")
        self.query_one(f"#lat-{key}-p50", Label).update(line2)
        self.query_one(f"#lat-{key}-p99", Label).update(line3)
        # Scale from 0 to the series' max, but never below a floor: all-zero latency draws no
        # bars, and 0.4 ms of jitter is not drawn as a spike.
        hi = max([_FLOOR_MS[key], *history])
        self.query_one(f"#lat-{key}-spark", ScaledSparkline).set_data(history, 0.0, hi, partial(_style, key))
