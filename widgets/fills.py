"""Our fills, newest first: time, symbol, side, price, size, fee, maker/taker, order id.

From the snapshot's trading view (the last fills the core keeps for display; the full history
is in storage). The subtitle has the session's fill count.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Label

from epochbot.views.snapshot import WorldSnapshot
from epochbot.widgets._format import clock_utc

__all__ = ["FillsPane"]


class FillsPane(Vertical):
    DEFAULT_CSS = """
    FillsPane { height: 1fr; }
    FillsPane > DataTable { height: 1fr; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="fills-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("UTC", "side", "price", "size", "symbol", "fee", "liq", "order")
        yield table
        yield Label("no fills yet", id="fills-empty", classes="empty")

    def on_mount(self) -> None:
        self.border_title = "Fills"

    def watch_snapshot(self, snap: WorldSnapshot | None) -> None:
        if snap is None or not self.is_mounted:
            return
        trading = getattr(snap, "trading", None)
        fills = tuple(trading.recent_fills) if trading is not None else ()
        count = trading.fill_count if trading is not None else 0
        self.border_subtitle = f"{count} this session · newest first" if trading is not None else "no strategy"
        if fills == self._shown:
            return
        self._shown = fills
        table = self.query_one("#fills-table", DataTable)
        table.clear()
        asset = trading.pnl.quote_asset if trading is not None else ""
        for f in fills:
            side = f.side.lower()
            table.add_row(
                clock_utc(f.ts_ns)[:8],
                side,
                f.price,
                f.qty,
                f.symbol,
                f"{f.fee} {f.fee_asset or asset}".strip(),
                "maker" if f.is_maker else "taker",
                f.client_order_id[-8:],
            )
        table.display = bool(fills)
        self.query_one("#fills-empty").display = not fills
