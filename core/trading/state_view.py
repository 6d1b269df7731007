"""The trader's state as an immutable `epochbot.views.snapshot.TradingView` (for /status, reports, panes).

Read-only over a `epochbot.trading.trader.Trader`; called from the strategy loop when a snapshot
is built. Money is exact inside (`Fraction`) and leaves here as decimal strings in the quote
asset, rounded to 8 places only when it does not terminate.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING

from epochbot.trading.money import decimal_str
from epochbot.views.snapshot import QUOTE_ASSETS, BreakerView, FillView, PnLView, TradingView, quote_asset

if TYPE_CHECKING:
    from epochbot.model.trade_events import Fill
    from epochbot.trading.filters import SymbolFilters
    from epochbot.trading.readout import TraderReadout
    from epochbot.trading.risk import RiskLimits

__all__ = ["QUOTE_ASSETS", "quote_asset", "trading_view", "fill_view", "breaker_cause"]

RECENT_FILLS = 20


def fill_view(fill: Fill, filters: Mapping[str, SymbolFilters]) -> FillView:
    f = filters.get(fill.symbol)
    qty = f.qty_str(fill.qty) if f else str(fill.qty)
    price = f.price_str(fill.price) if f else str(fill.price)
    return FillView(
        fill.ts_ns,
        fill.client_order_id,
        fill.symbol,
        fill.side,
        qty,
        price,
        decimal_str(Fraction(fill.fee)) if fill.fee else "0",
        fill.fee_asset,
        bool(fill.is_maker),
        str(fill.trade_id),
    )


def breaker_cause(limits: RiskLimits) -> str:
    window = limits.breaker_window_ns // 1_000_000_000
    return f"{limits.breaker_losses} losing round trips within {window} s"


def trading_view(trader: TraderReadout) -> TradingView:
    now = trader.now_ns
    risk = trader.risk
    state = risk.state
    marks = trader.marks()
    realized = unrealized = fees = funding = Fraction(0)
    for symbol, pos in trader.portfolio.positions.items():
        realized += pos.realized
        fees += pos.fees
        funding += pos.funding
        mark = marks.get(symbol)
        if mark is not None and pos.qty:
            unrealized += pos.unrealized(mark)
    pnl = PnLView(
        quote_asset=quote_asset(trader.filters),
        session=decimal_str(state.session_pnl),
        daily=decimal_str(state.daily_pnl),
        realized=decimal_str(realized),
        unrealized=decimal_str(unrealized),
        fees=decimal_str(fees),
        funding=decimal_str(funding),
        net=decimal_str(realized + unrealized + funding - fees),
    )
    breakers = []
    cause = breaker_cause(risk.limits)
    for symbol in sorted(trader.filters):
        until = state.breakers.get(symbol, 0)
        tripped = until > now
        breakers.append(BreakerView(symbol, tripped, cause if tripped else "", until if tripped else 0))
    lim = risk.limits
    breakers.append(
        BreakerView(
            "session-loss",
            state.session_latched,
            f"session PnL {decimal_str(state.session_pnl)} <= -{decimal_str(lim.session_loss_limit)}"
            if state.session_latched and lim.session_loss_limit is not None
            else ("session loss limit" if state.session_latched else ""),
            0,
        )
    )
    breakers.append(
        BreakerView(
            "daily-loss",
            state.daily_latched,
            f"daily PnL {decimal_str(state.daily_pnl)} <= -{decimal_str(lim.daily_loss_limit)}"
            if state.daily_latched and lim.daily_loss_limit is not None
            else ("daily loss limit" if state.daily_latched else ""),
            0,
        )
    )
    working_ids = {o.client_order_id for o in trader.orders.working()}
    working = tuple(v for v in trader.orders.views() if v.client_order_id in working_ids)
    fills = trader.fills
    recent = tuple(fill_view(f, trader.filters) for f in reversed(fills[-RECENT_FILLS:]))
    outcomes = dict(getattr(trader, "order_outcomes", {}))
    outcomes["placed"] = trader.orders.counters.get("placed", 0)
    refusal_reasons = dict(risk.refusals)
    return TradingView(
        pnl=pnl,
        breakers=tuple(breakers),
        working_orders=working,
        fill_count=getattr(trader, "fill_count", len(fills)),
        recent_fills=recent,
        orders_by_outcome=outcomes,
        refusals=sum(refusal_reasons.values()),
        refusal_reasons=refusal_reasons,
    )
