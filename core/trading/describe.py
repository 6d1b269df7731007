"""Log lines for trading events and order commands, in decimal units with symbol and side.

Levels (what an operator reading ``info`` sees): fills at ``info``; rejections, unknown
outcomes and refused cancels at ``warn``; the rest of an order's lifecycle (place, cancel,
query, accepted, status updates) at ``debug``, so a quoting strategy does not flood ``info``.
"""

from __future__ import annotations

from epochbot.model import trade_events as tev
from epochbot.trading.money import decimal_str
from epochbot.trading.state_view import quote_asset

__all__ = ["describe_command", "describe_event"]

_WARN = (tev.OrderRejected, tev.OrderUnknown, tev.CancelRejected, tev.CancelUnknown, tev.VenueDataError)


def _order_fields(trader, coid: str) -> dict:
    order = trader.orders.orders.get(coid)
    if order is None:
        return {"client_order_id": coid}
    f = trader.filters.get(order.symbol)
    out = {
        "client_order_id": coid,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.order_type,
        "qty": f.qty_str(order.qty) if f else str(order.qty),
    }
    if order.price is not None:
        out["price"] = f.price_str(order.price) if f else str(order.price)
    return out


def describe_event(trader, event) -> tuple[str, str, dict]:
    """(level, message, fields) for one venue answer, before the trader applies it."""
    if type(event) is tev.Fill:
        if event.trade_id and (event.symbol, event.trade_id) in trader._seen_trades:
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
    fields = _order_fields(trader, event.client_order_id)
    for key in ("status", "code", "msg", "reason", "error", "found"):
        if hasattr(event, key):
            value = getattr(event, key)
            if value not in ("", None):
                fields["venue_msg" if key == "msg" else key] = value
    if hasattr(event, "filled_qty"):
        f = trader.filters.get(fields.get("symbol", ""))
        fields["filled"] = f.qty_str(event.filled_qty) if f else str(event.filled_qty)
    name = type(event).__name__
    level = "warn" if isinstance(event, _WARN) else "debug"
    if name == "OrderUpdate" and event.status == "REJECTED":
        level = "warn"  # an expiry (IOC/FOK that did not fill) is routine: debug
    what = {
        "OrderRejected": "order rejected",
        "OrderUnknown": "order outcome unknown",
        "CancelRejected": "cancel rejected",
        "CancelUnknown": "cancel outcome unknown",
        "OrderAccepted": "order accepted",
        "OrderUpdate": "order update",
        "OrderQueryResult": "order query result",
        "VenueDataError": "unusable venue message: order reconciled from the venue",
    }.get(name, f"order {name}")
    return level, what, fields


def describe_command(trader, command) -> tuple[str, str, dict] | None:
    name = type(command).__name__
    if name == "PlaceOrder":
        fields = {
            "client_order_id": command.client_order_id,
            "symbol": command.symbol,
            "side": command.side,
            "type": command.order_type,
            "qty": command.qty,
            "price": command.price,
            "reduce_only": command.reduce_only,
        }
        return (
            "debug",
            f"order place {command.side} {command.qty} {command.symbol}"
            + (f" @ {command.price}" if command.price else ""),
            fields,
        )
    if name in ("CancelOrder", "QueryOrder"):
        return "debug", f"order {name[:-5].lower()}", _order_fields(trader, command.client_order_id)
    return None
