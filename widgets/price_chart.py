"""Price of the selected symbol: the mid (one point a second, the last ten minutes) with our own
fills marked on it (buys ▲ below in green, sells ▼ in red), drawn with textual-plotext.

The x axis is seconds before the snapshot's own time (never the wall clock). The chart is
redrawn only when a new mid sample, a new fill or another symbol arrives, not 15 times a second.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from epochbot.views.snapshot import WorldSnapshot

__all__ = ["PriceChart", "fills_for"]


def fills_for(snap: WorldSnapshot, symbol: str) -> tuple:
    trading = getattr(snap, "trading", None)
    if trading is None:
        return ()
    return tuple(f for f in trading.recent_fills if f.symbol == symbol)


class PriceChart(Vertical):
    DEFAULT_CSS = """
    PriceChart { height: 1fr; }
    PriceChart > #chart-empty { height: 1fr; color: $foreground-muted; text-style: italic; }
    PriceChart > PlotextPlot { height: 1fr; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)
    symbol: reactive[str] = reactive("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static("no price yet: waiting for a synced book", id="chart-empty")
        yield PlotextPlot(id="chart-plot")

    def on_mount(self) -> None:
        self.border_title = "Price"
        self.query_one("#chart-plot").display = False

    def watch_snapshot(self) -> None:
        self._draw()

    def watch_symbol(self) -> None:
        self._draw()

    def _draw(self) -> None:
        snap = self.snapshot
        if snap is None or not self.is_mounted or not snap.books:
            return
        book = snap.book(self.symbol) or snap.books[0]
        history = book.mid_history
        fills = fills_for(snap, book.symbol)
        key = (book.symbol, history[-1][0] if history else 0, len(history), tuple(f.trade_id for f in fills))
        if key == self._drawn:
            return
        self._drawn = key
        plot = self.query_one("#chart-plot", PlotextPlot)
        empty = self.query_one("#chart-empty", Static)
        last = history[-1][1] if history else "-"
        self.border_title = f"Price {book.symbol}"
        self.border_subtitle = f"mid {last} · our fills ▲ buy ▼ sell ({len(fills)})"
        if len(history) < 2:
            plot.display = False
            empty.display = True
            return
        plot.display = True
        empty.display = False
        now = history[-1][0]
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        xs = [(ts - now) / 1e9 for ts, _ in history]
        ys = [float(mid) for _, mid in history]  # display only: the chart needs floats
        plt.plot(xs, ys, marker="braille", color="cyan")
        oldest = xs[0]
        for side, marker, color in (("BUY", "▲", "green"), ("SELL", "▼", "red")):
            points = [
                ((f.ts_ns - now) / 1e9, float(f.price))
                for f in fills
                if f.side.upper() == side and (f.ts_ns - now) / 1e9 >= oldest
            ]
            if points:
                plt.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, color=color)
        plt.xlabel("seconds ago")
        plt.frame(False)
        plot.refresh()
