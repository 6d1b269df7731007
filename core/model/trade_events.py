"""Trading events (venue answers, user-data stream) and trading commands: the vocabulary below
the engine, the trader, the venues and persistence (`epochbot.model.trade_events` re-exports it).

The runtime turns REST answers and user-data frames into these events and hands them to the
strategy loop, which routes them to the `Trader` (``kind == "trading"``; the market engine never
sees them). Quantities and prices are integer lots/price units of the symbol's scale; fees are
exact `Decimal` amounts of ``fee_asset``. ``ts_ns`` is the venue's event time (or the local
receive time when the venue gives none) in nanoseconds.

Mapping from Binance (for the runtime):

* POST order 200 -> `OrderAccepted` (status NEW, or FILLED/PARTIALLY_FILLED/EXPIRED for
  IOC/market orders that the response already reports; their fills come as `Fill`).
* POST order 4xx with a code (e.g. -2010, -1013) -> `OrderRejected(code, msg)`.
* timeout, connection reset after sending, any 5xx, or 503 "Unknown error, please check your
  request or try again later." -> `OrderUnknown(reason)`: execution status unknown.
* executionReport / ORDER_TRADE_UPDATE -> `OrderUpdate` (status, cumulative filled) and, for
  execution type TRADE, a `Fill` first.
* GET order -> `OrderQueryResult(found=True, status, executed)`; -2013 "Order does not exist"
  -> ``found=False``; a failed query -> ``error="..."`` (the order stays unknown and is
  queried again on the next timer).
* DELETE order -4xx (-2011 unknown order) -> `CancelRejected`; 5xx/timeout -> `CancelUnknown`.
* USD-M funding settlement (ACCOUNT_UPDATE with reason FUNDING_FEE, or the runtime computing it
  at ``nextFundingTime`` from the mark price stream) -> `FundingSettlement`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Literal

from epochbot.model.events import Command

__all__ = [
    "CLIENT_ID_PATTERN",
    "AccountStreamState",
    "CancelRejected",
    "CancelUnknown",
    "Fill",
    "FundingSettlement",
    "OrderAccepted",
    "OrderQueryResult",
    "OrderRejected",
    "OrderUnknown",
    "OrderUpdate",
    "FetchOrderTrades",
    "QueryOrder",
    "SymbolStatus",
    "TradingEvent",
    "VenueDataError",
]

Side = Literal["BUY", "SELL"]
# Binance's rule for a client order id (newClientOrderId / origClientOrderId), shared by the
# order manager that makes ids and the venue decoders that read them back.
CLIENT_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


@dataclass(slots=True, kw_only=True)
class TradingEvent:
    epoch: int = 0
    recv_ts: int = 0
    process_ts: int = 0
    ts_ns: int = 0
    kind: ClassVar[Literal["trading"]] = "trading"


@dataclass(slots=True, kw_only=True)
class OrderAccepted(TradingEvent):
    """The venue acknowledged the order (REST 200). ``status`` is what the response said."""

    client_order_id: str
    venue_order_id: str = ""
    status: str = "NEW"


@dataclass(slots=True, kw_only=True)
class OrderRejected(TradingEvent):
    """The venue refused the order: it was not placed."""

    client_order_id: str
    code: int | str = 0  # Binance's error code, or ours ("NOT_DURABLE": never sent)
    msg: str = ""


@dataclass(slots=True, kw_only=True)
class OrderUnknown(TradingEvent):
    """The outcome of a place request is unknown (timeout, 5xx, 503 "Unknown error")."""

    client_order_id: str
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class OrderUpdate(TradingEvent):
    """A status change from the user-data stream (NEW, CANCELED, EXPIRED, REJECTED, FILLED...)."""

    client_order_id: str
    status: str
    filled_qty: int = 0  # cumulative lots
    venue_order_id: str = ""
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class AccountStreamState(TradingEvent):
    """The account (user-data) stream came up or went down. While it is down, fills reach us
    only by reconciliation (order queries), and confidence says so (``account_stream_down_ms``)."""

    up: bool
    stream_epoch: int = 0  # the account stream's own session number
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class SymbolStatus(TradingEvent):
    """The symbol's exchangeInfo status changed (TRADING, HALT, BREAK, CANCEL_ONLY, ...): new
    orders are placed only while it is TRADING; cancels always go."""

    symbol: str
    status: str


@dataclass(slots=True, kw_only=True)
class Fill(TradingEvent):
    """One execution of our order."""

    client_order_id: str
    symbol: str
    side: Side
    qty: int  # lots
    price: int  # price units
    fee: Decimal = Decimal(0)
    fee_asset: str = ""  # "" = the quote asset
    is_maker: bool = False
    trade_id: str = ""
    via: str = ""  # how it reached us: "account_stream", "order_response", "" (query/import/replay)


@dataclass(slots=True, kw_only=True)
class OrderQueryResult(TradingEvent):
    """The venue's answer to `QueryOrder`. ``found=False`` means the order was never placed."""

    client_order_id: str
    found: bool = False
    status: str = ""
    filled_qty: int = 0
    venue_order_id: str = ""
    error: str = ""


@dataclass(slots=True, kw_only=True)
class VenueDataError(TradingEvent):
    """A venue message about this order was unusable (failed validation, or its handler
    raised): it was dropped whole, and the order is reconciled from the venue's records."""

    client_order_id: str
    reason: str = ""
    sample: str = ""


@dataclass(slots=True, kw_only=True)
class CancelRejected(TradingEvent):
    client_order_id: str
    code: int = 0
    msg: str = ""


@dataclass(slots=True, kw_only=True)
class CancelUnknown(TradingEvent):
    client_order_id: str
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class FundingSettlement(TradingEvent):
    """A USD-M funding settlement: ``rate`` applied to the position at ``mark_price`` units."""

    symbol: str
    rate: Decimal
    mark_price: int  # price units


@dataclass(slots=True, frozen=True, kw_only=True)
class QueryOrder(Command):
    """Ask the venue for an order's status by client id (GET /api/v3/order, /fapi/v1/order)."""

    symbol: str = ""
    client_order_id: str = ""


@dataclass(slots=True, frozen=True, kw_only=True)
class FetchOrderTrades(Command):
    """The venue says an order executed more than the fills we booked (a lost or unusable
    execution report): fetch its executions from the account's trade history (userTrades /
    myTrades since ``since_ms``, filtered by ``venue_order_id``); they come back as `Fill`
    events, and trade ids make a second copy harmless."""

    symbol: str = ""
    client_order_id: str = ""
    venue_order_id: str = ""
    since_ms: int = 0
