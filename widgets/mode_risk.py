"""Trading mode and risk: the mode (coloured by strictness), who set it and why, the operator
floor, what the strategy is actually doing, circuit breakers, PnL in the quote asset, and the
working orders and positions.

The mode badge and the strategy line never scroll away: only the tables below them scroll.
The strategy line tells the truth: ``running`` only when the strategy can add exposure on at
least one symbol; ``BLOCKED`` when every breaker (or a loss limit) allows exits only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import DataTable, Label, Static

from epochbot.views.snapshot import OrderView, PositionView, WorldSnapshot
from epochbot.widgets._format import MODE_CLASSES, clock_utc, money, strictness_class

__all__ = ["ModeRiskPane", "breakers_of", "strategy_state", "working_orders"]

TERMINAL = frozenset({"CANCELED", "CANCELLED", "REJECTED", "FILLED", "EXPIRED", "EXPIRED_IN_MATCH"})
PORTFOLIO_LATCHES = ("session-loss", "daily-loss")


@dataclass(frozen=True, slots=True)
class Breaker:
    name: str
    tripped: bool
    cause: str
    until: str  # "" when not tripped or latched for the session/day


def breakers_of(snap: WorldSnapshot) -> tuple[Breaker, ...]:
    """Every breaker the snapshot knows: from its trading view, else from the risk view."""
    trading = getattr(snap, "trading", None)
    if trading is not None:
        return tuple(
            Breaker(b.name, b.tripped, b.cause, clock_utc(b.until_ns)[:8] + " UTC" if b.tripped and b.until_ns else "")
            for b in trading.breakers
        )
    out = []
    for symbol, text in sorted(snap.risk.breakers.items()):
        tripped = text != "ok"
        until = text.split("until", 1)[1].strip() if tripped and "until" in text else ""
        out.append(Breaker(symbol, tripped, "losing round trips" if tripped else "", until))
    for name, key in (("session-loss", "session_latched"), ("daily-loss", "daily_latched")):
        if snap.risk.limits.get(key) == "True":
            out.append(Breaker(name, True, f"{name.replace('-', ' ')} limit", ""))
    return tuple(out)


def working_orders(snap: WorldSnapshot) -> tuple[OrderView, ...]:
    """Orders that may still execute (never CANCELED, REJECTED, FILLED or EXPIRED ones)."""
    trading = getattr(snap, "trading", None)
    if trading is not None:
        return tuple(trading.working_orders)
    return tuple(o for o in snap.orders if o.status.upper() not in TERMINAL)


def has_strategy(snap: WorldSnapshot) -> bool:
    return getattr(snap, "trading", None) is not None or bool(snap.risk.breakers)


def strategy_state(snap: WorldSnapshot) -> tuple[str, str]:
    """(what the strategy is doing, style) — honest about breakers, latches and the mode."""
    if not has_strategy(snap):
        return "off (no strategy trades)", "$foreground-muted"
    if snap.mode.paused:
        return "PAUSED by the operator", "$warning bold"
    breakers = breakers_of(snap)
    latched = [b for b in breakers if b.tripped and b.name in PORTFOLIO_LATCHES]
    symbols = [b for b in breakers if b.name not in PORTFOLIO_LATCHES]
    tripped = [b for b in symbols if b.tripped]
    if latched:
        return f"BLOCKED: {latched[0].cause or latched[0].name}, exits only", "$error bold"
    if symbols and len(tripped) == len(symbols):
        until = max((b.until for b in tripped), default="")
        return f"BLOCKED: all breakers tripped{' until ' + until if until else ''}, exits only", "$error bold"
    if snap.mode.mode != "normal":
        return f"withdrawn: mode {snap.mode.mode}", "$warning bold"
    if tripped:
        return f"running · {len(tripped)} of {len(symbols)} breakers tripped", "$warning"
    return "running", "$success"


def quote_asset(snap: WorldSnapshot) -> str:
    trading = getattr(snap, "trading", None)
    if trading is not None and trading.pnl.quote_asset:
        return trading.pnl.quote_asset
    from epochbot.views.snapshot import quote_asset as guess

    return guess(snap.symbols) if snap.symbols else ""


class ModeRiskPane(Vertical):
    """Mode badge, detail and strategy line on top (fixed); breakers, PnL, orders, positions
    below (scrolling)."""

    DEFAULT_CSS = """
    ModeRiskPane { height: 1fr; }
    ModeRiskPane.pane { overflow: hidden hidden; }
    ModeRiskPane > #mode-name { width: 100%; height: 1; content-align: center middle; }
    ModeRiskPane > #mode-detail { height: auto; }
    ModeRiskPane > #strategy-line, ModeRiskPane > #pnl-line { height: 1; }
    ModeRiskPane > #risk-scroll { height: 1fr; scrollbar-size-vertical: 1; }
    ModeRiskPane #risk-detail { height: auto; }
    ModeRiskPane Static, ModeRiskPane Label { text-wrap: nowrap; text-overflow: ellipsis; width: 100%; }
    ModeRiskPane DataTable { height: auto; max-height: 8; }
    ModeRiskPane > #mode-detail { text-wrap: wrap; }
    ModeRiskPane #risk-detail { text-wrap: wrap; }
    """

    snapshot: reactive[WorldSnapshot | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown_orders: tuple[OrderView, ...] | None = None
        self._shown_positions: tuple[PositionView, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("-", id="mode-name")
        yield Static("", id="strategy-line")
        yield Static("", id="pnl-line")
        yield Static("", id="mode-detail")
        with VerticalScroll(id="risk-scroll"):
            yield Static("", id="risk-detail")
            yield Label("working orders", id="orders-title", classes="table-title")
            orders: DataTable[Any] = DataTable(id="orders-table", cursor_type="none", show_cursor=False)
            orders.add_columns("id", "symbol", "side", "price", "qty", "filled", "status")
            yield orders
            yield Label("no working orders", id="orders-empty", classes="empty")
            yield Label("positions", classes="table-title")
            positions: DataTable[Any] = DataTable(id="positions-table", cursor_type="none", show_cursor=False)
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
        state, style = strategy_state(snap)
        self.query_one("#strategy-line", Static).update(
            Content.assemble(("strategy ", "$foreground-muted"), (state, style))
        )
        self.query_one("#pnl-line", Static).update(self._pnl_line(snap))
        self.query_one("#mode-detail", Static).update(
            Content.assemble(
                ("by ", "$foreground-muted"),
                (mode.source, "bold"),
                (f" {clock_utc(mode.at_ns)}", "$foreground-muted"),
                ("  floor ", "$foreground-muted"),
                mode.operator_floor,
                ("\nwhy ", "$foreground-muted"),
                mode.cause or "-",
            )
        )
        self.query_one("#risk-detail", Static).update(self._risk(snap))
        orders = working_orders(snap)
        if orders != self._shown_orders:
            self._fill_orders(orders)
        if snap.positions != self._shown_positions:
            self._fill_positions(snap.positions, quote_asset(snap))

    @staticmethod
    def _pnl_line(snap: WorldSnapshot) -> Content:
        """Session and daily PnL on one line that never wraps, in the quote asset."""
        if not has_strategy(snap):
            return Content.assemble(("PnL ", "$foreground-muted"), ("— (nothing trades)", "$foreground-muted"))
        asset = quote_asset(snap)
        trading = getattr(snap, "trading", None)
        session = trading.pnl.session if trading is not None else snap.risk.session_pnl
        daily = trading.pnl.daily if trading is not None else snap.risk.daily_pnl
        return Content.assemble(
            ("PnL ", "$foreground-muted"),
            (money(session, asset), "$error" if session.startswith("-") else "$success"),
            (" · day ", "$foreground-muted"),
            (money(daily, asset), "$error" if daily.startswith("-") else ""),
        )

    @staticmethod
    def _risk(snap: WorldSnapshot) -> Content:
        if not has_strategy(snap):  # no trader: say so, invent no "ok" or "0"
            return Content.assemble(
                ("trading off", "bold"), (" no strategy: no orders, PnL or breakers", "$foreground-muted")
            )
        asset = quote_asset(snap)
        breakers = breakers_of(snap)
        tripped = [b for b in breakers if b.tripped]
        parts: list = [("breakers ", "$foreground-muted")]
        if not breakers:
            parts.append(("-", "$foreground-muted"))
        elif not tripped:
            parts.append(("ok", "$success"))
        else:
            parts.append((f"{len(tripped)} tripped", "$error bold"))
            for b in tripped:
                until = f" until {b.until}" if b.until else ""
                parts.append((f"\n {b.name}{until}", "$error"))
                if b.cause:
                    parts.append((f"\n   {b.cause}", "$foreground-muted"))
        trading = getattr(snap, "trading", None)

        def amount(text: str):
            return (money(text, asset), "$error" if text.startswith("-") else "")

        if trading is not None:
            parts += [
                ("\nnet ", "$foreground-muted"),
                amount(trading.pnl.net),
                ("  fees ", "$foreground-muted"),
                money(trading.pnl.fees, asset, signed=False),
                ("\nunrealised ", "$foreground-muted"),
                amount(trading.pnl.unrealized),
                ("  fills ", "$foreground-muted"),
                str(trading.fill_count),
            ]
        return Content.assemble(*parts)

    def _fill_orders(self, orders: tuple[OrderView, ...]) -> None:
        table = self.query_one("#orders-table", DataTable)
        table.clear()
        for o in orders:
            table.add_row(o.client_order_id[-8:], o.symbol, o.side.lower(), o.price or "mkt", o.qty, o.filled, o.status)
        table.display = bool(orders)
        self.query_one("#orders-title", Label).update(f"working orders ({len(orders)})")
        self.query_one("#orders-empty").display = not orders
        self._shown_orders = orders

    def _fill_positions(self, positions: tuple[PositionView, ...], asset: str) -> None:
        table = self.query_one("#positions-table", DataTable)
        table.clear()
        shown = [p for p in positions if p.qty.strip("-0.") != ""]
        for p in shown:
            table.add_row(
                p.symbol,
                p.qty,
                p.entry_price.rstrip("0").rstrip(".") if "." in p.entry_price else p.entry_price,
                money(p.unrealized_pnl),
                money(p.realized_pnl),
            )
        table.display = bool(shown)
        self.query_one("#positions-empty").display = not shown
        self._shown_positions = positions
