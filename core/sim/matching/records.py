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
    "ALGO_OPEN_STATUSES",
    "CONDITIONAL_TYPES",
    "DEFAULT_STARTING_BALANCES",
    "FIRST_ALGO_ID",
    "FIRST_ORDER_ID",
    "FIRST_TRADE_ID",
    "LEVERAGE",
    "MAINT_MARGIN_BPS",
    "MAX_CLOSED_ORDERS_PER_ACCOUNT",
    "MAX_LEVERAGE",
    "MAX_OPEN_ALGO_ORDERS",
    "Account",
    "AlgoOrder",
    "BookView",
    "Fill",
    "Market",
    "Order",
    "Position",
    "PositionKey",
    "SymbolFilters",
    "SymbolSettings",
    "Trade",
    "max_notional",
    "sign",
]

Market = Literal["spot", "usdm"]

FIRST_ORDER_ID = 1_000_001
FIRST_TRADE_ID = 500_001
FIRST_ALGO_ID = 1_000_000_000_001  # Binance's algo ids are large (1000000033225453 in a 2025-12 capture)
LEVERAGE = 20  # a new account's leverage on every symbol (Binance's default)
MAX_LEVERAGE = 125  # POST /fapi/v1/leverage: "target initial leverage: int from 1 to 125"
MAINT_MARGIN_BPS = 40  # maintenance margin rate 0.40 % (BTCUSDT's first bracket), every symbol: sim choice
MAX_OPEN_ALGO_ORDERS = 200  # conditional orders open at once, across symbols (USD-M change log 2025-12-29)
MAX_CLOSED_ORDERS_PER_ACCOUNT = 10_000

# The USD-M order types Binance moved to the Algo Service on 2025-12-09.
CONDITIONAL_TYPES = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
ALGO_OPEN_STATUSES = ("NEW", "TRIGGERING")

# Leverage brackets, one table for every symbol (sim choice, shaped like Binance's BTCUSDT brackets and
# agreeing with its documented example ``{"leverage": 21, "maxNotionalValue": "1000000"}``):
# (highest leverage of the bracket, the largest position notional allowed at it, in quote units).
LEVERAGE_BRACKETS = ((5, 50_000_000), (10, 10_000_000), (25, 1_000_000), (50, 500_000), (100, 100_000), (125, 50_000))

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

    # The last trade price (price units): what ``workingType=CONTRACT_PRICE`` triggers read.
    last_trade_price: int


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
    position_side: str = "BOTH"  # BOTH (one-way mode), LONG or SHORT (hedge mode)
    close_position: bool = False
    # Set when the Algo Service placed the order: the algo id, its type, trigger and working type.
    algo_id: int = 0
    orig_type: str = ""
    stop_price: int = 0
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False

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
    size: int = 0  # signed qty units; + long, - short (a LONG position is never short, a SHORT never long)
    cost: int = 0  # |entry notional| in notional units
    update_time: int = 0


PositionKey = tuple[str, str]  # (symbol, positionSide): BOTH in one-way mode, LONG and SHORT in hedge mode


@dataclass
class SymbolSettings:
    """An account's settings for one USD-M symbol."""

    leverage: int = LEVERAGE
    margin_type: str = "CROSSED"  # CROSSED or ISOLATED


@dataclass
class AlgoOrder:
    """A conditional order held by the Algo Service until its trigger (prices in price units)."""

    account_id: str
    symbol: str
    algo_id: int
    client_algo_id: str
    order_type: str  # one of CONDITIONAL_TYPES
    side: str
    position_side: str
    time_in_force: str
    quantity: int  # qty units; 0 with closePosition
    price: int  # the limit of STOP / TAKE_PROFIT, else 0
    trigger_price: int  # 0 for TRAILING_STOP_MARKET until it triggers
    working_type: str  # MARK_PRICE or CONTRACT_PRICE
    price_protect: bool
    reduce_only: bool
    close_position: bool
    self_trade_prevention: str
    create_time: int
    activate_price: int = 0  # TRAILING_STOP_MARKET; 0: activated at placement
    callback_bps: int = 0  # TRAILING_STOP_MARKET callback rate in basis points (1 % = 100)
    status: str = "NEW"  # NEW TRIGGERING TRIGGERED FINISHED CANCELED REJECTED EXPIRED
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int = 0  # the order placed into the matching engine when triggered
    actual_type: str = ""
    fail_reason: str = ""
    activated: bool = False  # trailing: the activation price was reached
    extreme: int = 0  # trailing: the highest (SELL) or lowest (BUY) price since activation

    @property
    def is_open(self) -> bool:
        return self.status in ALGO_OPEN_STATUSES

    @property
    def direction(self) -> int:
        return 1 if self.side == "BUY" else -1


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
    position_side: str = "BOTH"


@dataclass
class Account:
    balances: dict[str, int]  # spot: total per asset; usdm: wallet per asset (money units)
    orders: dict[tuple[str, int], Order] = field(default_factory=dict)
    closed: list[tuple[str, int]] = field(default_factory=list)
    positions: dict[PositionKey, Position] = field(default_factory=dict)
    update_time: int = 0
    # Every execution of the account, oldest first (GET userTrades / myTrades), and the
    # client order id of every order ever accepted (allOrders keeps them past the closed cap).
    trades: list[Trade] = field(default_factory=list)
    history: list[tuple[str, int, str]] = field(default_factory=list)  # (symbol, orderId, clientOrderId)
    # USD-M account settings: hedge mode (``dualSidePosition``), Multi-Assets mode, per-symbol
    # leverage and margin type; conditional orders of the Algo Service by algo id (oldest first).
    dual_side: bool = False
    multi_assets: bool = False
    settings: dict[str, SymbolSettings] = field(default_factory=dict)
    algo_orders: dict[int, AlgoOrder] = field(default_factory=dict)

    def symbol_settings(self, symbol: str) -> SymbolSettings:
        """The account's settings for ``symbol`` (created with Binance's defaults on first use)."""
        found = self.settings.get(symbol)
        if found is None:
            found = self.settings[symbol] = SymbolSettings()
        return found


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


def max_notional(leverage: int) -> int:
    """The largest position notional (quote units) allowed at ``leverage`` (`LEVERAGE_BRACKETS`)."""
    for top, cap in LEVERAGE_BRACKETS:
        if leverage <= top:
            return cap
    raise ValueError(f"leverage {leverage} is above every bracket")
