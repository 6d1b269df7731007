"""The matching engine's vocabulary: symbol filters, the market view it reads, and the records it keeps.

Everything is an integer in venue units (prices in 10**-price_decimals, quantities in
10**-qty_decimals, notionals at their sum, money at the ledger's money scale). The records are
plain mutable dataclasses owned by the `Ledger`; the other parts read and update them through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "DEFAULT_STARTING_BALANCES",
    "FIRST_ORDER_ID",
    "FIRST_TRADE_ID",
    "LEVERAGE",
    "MAX_CLOSED_ORDERS_PER_ACCOUNT",
    "Account",
    "BookView",
    "Fill",
    "Market",
    "Order",
    "Position",
    "SymbolFilters",
    "Trade",
    "sign",
]

Market = Literal["spot", "usdm"]

FIRST_ORDER_ID = 1_000_001
FIRST_TRADE_ID = 500_001
LEVERAGE = 20
MAX_CLOSED_ORDERS_PER_ACCOUNT = 10_000

DEFAULT_STARTING_BALANCES: dict[str, dict[str, str]] = {
    "spot": {"USDT": "100000", "BTC": "1", "ETH": "10"},
    "usdm": {"USDT": "100000"},
}

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


class BookView(Protocol):
    """Read-only view of one simulated symbol's market, in integer units, best level first."""

    symbol: str
    price_decimals: int
    qty_decimals: int

    def bids(self) -> Iterable[tuple[int, int]]: ...

    def asks(self) -> Iterable[tuple[int, int]]: ...

    def mark_price(self) -> int: ...


@dataclass(frozen=True)
class SymbolFilters:
    """The exchangeInfo filters the venue enforces for one symbol (integer units)."""

    symbol: str
    base_asset: str
    quote_asset: str
    price_decimals: int
    qty_decimals: int
    tick_units: int
    step_units: int
    min_qty_units: int
    max_qty_units: int
    min_notional: str


@dataclass
class Order:
    account_id: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str  # BUY / SELL
    type: str  # LIMIT / MARKET / LIMIT_MAKER
    time_in_force: str
    price: int  # price units; 0 for MARKET
    orig_qty: int
    reduce_only: bool
    time: int
    executed_qty: int = 0
    cum_quote: int = 0  # notional units (price_decimals + qty_decimals)
    status: str = "NEW"
    update_time: int = 0

    @property
    def remaining(self) -> int:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def direction(self) -> int:
        return 1 if self.side == "BUY" else -1


@dataclass
class Position:
    size: int = 0  # signed qty units; + long, - short
    cost: int = 0  # |entry notional| in notional units
    update_time: int = 0


@dataclass(frozen=True)
class Trade:
    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: int
    qty: int
    commission: int  # money units
    realized_pnl: int  # money units (usdm)
    maker: bool
    time: int  # ms


@dataclass
class Account:
    balances: dict[str, int]  # spot: total per asset; usdm: wallet per asset (money units)
    orders: dict[tuple[str, int], Order] = field(default_factory=dict)
    closed: list[tuple[str, int]] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    update_time: int = 0
    # Every execution of the account, oldest first (GET userTrades / myTrades), and the
    # client order id of every order ever accepted (allOrders keeps them past the closed cap).
    trades: list[Trade] = field(default_factory=list)
    history: list[tuple[str, int, str]] = field(default_factory=list)  # (symbol, orderId, clientOrderId)


@dataclass(frozen=True)
class Fill:
    price: int
    qty: int
    trade_id: int
    commission: int  # money units
    realized_pnl: int  # money units (usdm)
    maker: bool


def sign(n: int) -> int:
    return (n > 0) - (n < 0)
