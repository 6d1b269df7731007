"""Log lines for trading events and order commands, in decimal units with symbol and side.

Levels (what an operator reading ``info`` sees): fills at ``info``; rejections, unknown
outcomes and refused cancels at ``warn``; the rest of an order's lifecycle (place, cancel,
query, accepted, status updates) at ``debug``, so a quoting strategy does not flood ``info``.

What each event and command becomes is a table keyed by type (`_ORDER_EVENTS`, `_COMMANDS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.trading.money import decimal_str
from epochbot.trading.state_view import quote_asset

if TYPE_CHECKING:
    from epochbot.trading.readout import TraderReadout

__all__ = ["describe_command", "describe_event"]

LogLine = tuple[str, str, dict[str, Any]]  # (level, message, fields), as epochbot.engine.trader_port


@dataclass(frozen=True, slots=True)
class _EventLine:
    level: str
    message: str
    venue_fields: tuple[str, ...] = ()  # the event's own fields worth a log field, when set
    filled: bool = False  # the event carries the order's cumulative filled quantity


_ORDER_EVENTS: dict[type[tev.TradingEvent], _EventLine] = {
    tev.OrderAccepted: _EventLine("debug", "order accepted", ("status",)),
    tev.OrderRejected: _EventLine("warn", "order rejected", ("code", "msg")),
    tev.OrderUnknown: _EventLine("warn", "order outcome unknown", ("reason",)),
    tev.OrderUpdate: _EventLine("debug", "order update", ("status", "reason"), filled=True),
    tev.OrderQueryResult: _EventLine("debug", "order query result", ("status", "error", "found"), filled=True),
    tev.VenueDataError: _EventLine("warn", "unusable venue message: order reconciled from the venue", ("reason",)),
    tev.CancelRejected: _EventLine("warn", "cancel rejected", ("code", "msg")),
    tev.CancelUnknown: _EventLine("warn", "cancel outcome unknown", ("reason",)),
}


def _order_fields(trader: TraderReadout, coid: str) -> dict[str, Any]:
    order = trader.orders.orders.get(coid)
    if order is None:
        return {"client_order_id": coid}
    f = trader.filters.get(order.symbol)
    out: dict[str, Any] = {
        "client_order_id": coid,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.order_type,
        "qty": f.qty_str(order.qty) if f else str(order.qty),
    }
    if order.price is not None:
        out["price"] = f.price_str(order.price) if f else str(order.price)
    return out


def describe_event(trader: TraderReadout, event: Any) -> LogLine:
    """(level, message, fields) for one venue answer about an order, before the trader applies it."""
    if type(event) is tev.Fill:
        return _describe_fill(trader, event)
    fields = _order_fields(trader, event.client_order_id)
    line = _ORDER_EVENTS.get(type(event))
    if line is None:  # an order event this table does not know yet: still logged, plainly
        return "debug", f"order {type(event).__name__}", fields
    for key in line.venue_fields:
        value = getattr(event, key)
        if value not in ("", None):
            fields["venue_msg" if key == "msg" else key] = value
    if line.filled:
        f = trader.filters.get(fields.get("symbol", ""))
        fields["filled"] = f.qty_str(event.filled_qty) if f else str(event.filled_qty)
    level = line.level
    if type(event) is tev.OrderUpdate and event.status == "REJECTED":
        level = "warn"  # an expiry (IOC/FOK that did not fill) is routine: debug
    return level, line.message, fields


def _describe_fill(trader: TraderReadout, event: tev.Fill) -> LogLine:
    if trader.already_booked(event):
        return (
            "debug",
            "fill already booked (replayed)",
            {"symbol": event.symbol, "trade_id": event.trade_id, "client_order_id": event.client_order_id},
        )
    f = trader.filters.get(event.symbol)
    qty = f.qty_str(event.qty) if f else str(event.qty)
    price = f.price_str(event.price) if f else str(event.price)
    position = trader.portfolio.qty(event.symbol) + (event.qty if event.side == "BUY" else -event.qty)
    fields = {
        "symbol": event.symbol,
        "side": event.side,
        "qty": qty,
        "price": price,
        "fee": decimal_str(event.fee),
        "fee_asset": event.fee_asset or quote_asset([event.symbol]),
        "maker": event.is_maker,
        "position": f.qty_str(position) if f else str(position),
        "client_order_id": event.client_order_id,
        "trade_id": event.trade_id,
    }
    return "info", f"fill {event.side} {qty} {event.symbol} @ {price}", fields


def _describe_place(trader: TraderReadout, command: ev.PlaceOrder) -> LogLine:
    fields = {
        "client_order_id": command.client_order_id,
        "symbol": command.symbol,
        "side": command.side,
        "type": command.order_type,
        "qty": command.qty,
        "price": command.price,
        "reduce_only": command.reduce_only,
    }
    at = f" @ {command.price}" if command.price else ""
    return "debug", f"order place {command.side} {command.qty} {command.symbol}{at}", fields


def _describe_cancel(trader: TraderReadout, command: ev.CancelOrder) -> LogLine:
    return "debug", "order cancel", _order_fields(trader, command.client_order_id)


def _describe_query(trader: TraderReadout, command: tev.QueryOrder) -> LogLine:
    return "debug", "order query", _order_fields(trader, command.client_order_id)


_COMMANDS: dict[type[ev.Command], Callable[[TraderReadout, Any], LogLine]] = {
    ev.PlaceOrder: _describe_place,
    ev.CancelOrder: _describe_cancel,
    tev.QueryOrder: _describe_query,
}


def describe_command(trader: TraderReadout, command: ev.Command) -> LogLine | None:
    """(level, message, fields) for an order command the trader produced; None: not logged."""
    describe = _COMMANDS.get(type(command))
    return None if describe is None else describe(trader, command)
