"""Trading mode and risk: the mode (coloured by strictness), who set it and why, the operator
floor, pause, circuit breakers, PnL, and the working orders and positions."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import DataTable, Label, Static

from core.snapshot import RiskView, OrderView, PositionView, WorldSnapshot
from widgets._format import MODE_CLASSES, clock_utc, strictness_class

__all__ = ["ModeRiskPane"]


class ModeRiskPane(Vertical):
    """Mode, risk view, open orders and positions (with empty-state text)."""

    DEFAULT_CSS = """
    ModeRiskPane { height: 1fr; overflow-y: auto; }
    ModeRiskPane > #mode-name { width: 100%; height: 3; content-align: center middle; }
    ModeRiskPane > #mode-detail, ModeRiskPane > #risk-detail { height: auto; }
    ModeRiskPane > DataTable { height: auto; max-height: 8; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown_orders: tuple[OrderView, ...] | None = None
        self._shown_positions: tuple[PositionView, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("-", id="mode-name")
        yield Static("", id="mode-detail")
        yield Static("", id="risk-detail")
        yield Label("open orders", classes="table-title")
        orders = DataTable(id="orders-table", cursor_type="none", show_cursor=False)
        orders.add_columns("id", "symbol", "side", "type", "price", "qty", "filled", "status")
        yield orders
        yield Label("no open orders", id="orders-empty", classes="empty")
        yield Label("positions", classes="table-title")
        positions = DataTable(id="positions-table", cursor_type="none", show_cursor=False)
        positions.add_columns("symbol", "qty", "entry", "uPnL", "rPnL")
        yield positions
        yield Label("flat: no positions", id="positions-empty", classes="empty")

    def on_mount(self) -> None:
        self.border_title = "Mode & risk"

    def watch_snapshot(self, snap: WorldSnapshot | None) -> None:
        if snap is None or not self.is_mounted:
            return
        mode = snap.mode
        name = self.query_one("#mode-name", Static)
        name.update(mode.mode.upper() + ("  (PAUSED)" if mode.paused else ""))
        name.remove_class(*MODE_CLASSES)
        name.add_class(strictness_class(mode.mode))
        self.query_one("#mode-detail", Static).update(
            Content.assemble(
                ("by ", "$foreground-muted"),
                (mode.source, "bold"),
                (f" {clock_utc(mode.at_ns)}", "$foreground-muted"),
                ("  floor ", "$foreground-muted"),
                mode.operator_floor,
                ("\nwhy ", "$foreground-muted"),
                mode.cause or "-",
                ("\nstrategy ", "$foreground-muted"),
                ("PAUSED", "$warning bold") if mode.paused else ("running", "$success"),
            )
        )
        self.query_one("#risk-detail", Static).update(self._risk(snap))
        if snap.orders != self._shown_orders:
            self._fill_orders(snap.orders)
        if snap.positions != self._shown_positions:
            self._fill_positions(snap.positions)

    @staticmethod
    def _risk(snap: WorldSnapshot) -> Content:
        risk = snap.risk
        if snap.trading is None and risk == RiskView():  # no trader: say so, invent no "ok" or "0"
            return Content.assemble(("trading off", "bold"), (" no strategy: no orders, PnL or breakers", "$foreground-muted"))
        tripped = {s: v for s, v in risk.breakers.items() if v != "ok"}
        breaker = (
            ("tripped: " + ", ".join(f"{s} {v}" for s, v in sorted(tripped.items())), "$error bold")
            if tripped
            else ("ok", "$success")
        )
        return Content.assemble(
            ("breaker ", "$foreground-muted"),
            breaker,
            ("\nPnL session ", "$foreground-muted"),
            (risk.session_pnl, "$error" if risk.session_pnl.startswith("-") else ""),
            (" daily ", "$foreground-muted"),
            (risk.daily_pnl, "$error" if risk.daily_pnl.startswith("-") else ""),
        )

    def _fill_orders(self, orders: tuple[OrderView, ...]) -> None:
        table = self.query_one("#orders-table", DataTable)
        table.clear()
        for o in orders:
            table.add_row(o.client_order_id[-10:], o.symbol, o.side, o.order_type, o.price, o.qty, o.filled, o.status)
        table.display = bool(orders)
        self.query_one("#orders-empty").display = not orders
        self._shown_orders = orders

    def _fill_positions(self, positions: tuple[PositionView, ...]) -> None:
        table = self.query_one("#positions-table", DataTable)
        table.clear()
        for p in positions:
            table.add_row(p.symbol, p.qty, p.entry_price, p.unrealized_pnl, p.realized_pnl)
        table.display = bool(positions)
        self.query_one("#positions-empty").display = not positions
        self._shown_positions = positions
