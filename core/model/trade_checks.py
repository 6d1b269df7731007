"""Validation of trading events decoded from venue messages, before they reach the loop.

`epochbot.venues.binance.user` maps order answers and user-data frames to `epochbot.model.trade_events`;
this module checks every field the order manager, trader, portfolio and risk gate read: types
(ints are ints, never bools), ranges (a fill has a positive quantity and price, cumulative
filled quantities are not negative), finite fee and funding amounts (no NaN or Infinity), known
sides and bounded strings. ``problem(event)`` returns None for a usable event, else the reason.

The gateway drops a message whose events are not all usable (a message is never half applied),
counts it, logs a truncated sample and sends a `VenueDataError` for the order it names, so the
order is reconciled from the venue's own records instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from epochbot.model import trade_events as tev
from epochbot.model.errors import DataError

__all__ = ["TradeCheckError", "check", "problem", "problems"]


class TradeCheckError(DataError):
    """A trading event decoded from a venue message failed `problem` (see the module doc)."""


_MAX_INT = 2**63 - 1
_SIDES = ("BUY", "SELL")
# Binance order statuses (spot and USD-M); anything else is not an answer we understand.
_STATUSES = frozenset(
    {
        "NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "REJECTED",
        "EXPIRED",
        "EXPIRED_IN_MATCH",
        "PENDING_CANCEL",
        "PENDING_NEW",
        "NEW_INSURANCE",
        "NEW_ADL",
    }
)


def _status(value: object) -> bool:
    return type(value) is str and value in _STATUSES


def _order_id(value: object) -> bool:
    """The venue's order id as text: digits, or empty when the answer had none."""
    return type(value) is str and len(value) <= 24 and (value == "" or (value.isdigit() and value.isascii()))


def _int(value: object, lo: int = 0) -> bool:
    return type(value) is int and lo <= value <= _MAX_INT


def _text(value: object, max_len: int = 64, empty: bool = True) -> bool:
    return type(value) is str and len(value) <= max_len and (empty or bool(value))


def _finite(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def problem(event: tev.TradingEvent) -> str | None:
    """Why ``event`` cannot be used, or None when every field it carries is sound."""
    if not _int(event.ts_ns):
        return f"bad timestamp {event.ts_ns!r}"
    coid = getattr(event, "client_order_id", "")
    if not _text(coid, 36, empty=type(event) is tev.FundingSettlement):
        return f"bad client order id {str(coid)[:40]!r}"
    if type(event) is tev.Fill:
        if not _text(event.symbol, 32, empty=False):
            return "fill without a symbol"
        if event.side not in _SIDES:
            return f"fill side {str(event.side)[:10]!r}"
        if not _int(event.qty, 1):
            return f"fill quantity must be positive, got {event.qty!r}"
        if not _int(event.price, 1):
            return f"fill price must be positive, got {event.price!r}"
        if not _finite(event.fee):
            return f"fill fee is not a finite amount: {event.fee!r}"
        if not _text(event.fee_asset, 16) or not _text(event.trade_id, 64) or type(event.is_maker) is not bool:
            return "fill with a bad fee asset, trade id or maker flag"
        return None
    if type(event) is tev.OrderUpdate:
        if not _status(event.status) or not _int(event.filled_qty) or not _order_id(event.venue_order_id):
            return (
                "order update with bad status/filled/order id "
                f"({str(event.status)[:20]!r}, {event.filled_qty!r}, {str(event.venue_order_id)[:20]!r})"
            )
        return None
    if type(event) is tev.OrderAccepted:
        if not _status(event.status) or not _order_id(event.venue_order_id):
            return (
                "order answer with a bad status or order id "
                f"({str(event.status)[:20]!r}, {str(event.venue_order_id)[:20]!r})"
            )
        return None
    if type(event) is tev.OrderQueryResult:
        if event.found and (
            not _status(event.status) or not _int(event.filled_qty) or not _order_id(event.venue_order_id)
        ):
            return "order query answer with a bad status, executed quantity or order id"
        return None
    if type(event) is tev.FundingSettlement:
        if not _finite(event.rate) or not _int(event.mark_price, 1) or not _text(event.symbol, 32, empty=False):
            return "funding settlement with a bad rate, mark price or symbol"
        return None
    return None


def problems(events: Iterable[tev.TradingEvent]) -> str | None:
    """The first problem of a message's events (None: all usable)."""
    for event in events:
        why = problem(event)
        if why is not None:
            return why
    return None


def check(events: Iterable[Any]) -> None:
    """Raise `TradeCheckError` naming the first problem of a message's events, if any."""
    why = problems(events)
    if why is not None:
        raise TradeCheckError(why)
