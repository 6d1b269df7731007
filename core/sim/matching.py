"""Paper-trading matching engine for the embedded Binance simulator (spot and USD-M).

Theory of operation
-------------------
``PaperVenue`` is a pure state machine. Requests arrive as Binance's own string parameters
plus the current time (``now_ms``) and a read-only view of the simulated market (``BookView``);
each call returns a Binance-shaped, JSON-ready dict or raises ``SimApiError`` and leaves the
state untouched. User-data events (spot ``executionReport``/``outboundAccountPosition``,
USD-M ``ORDER_TRADE_UPDATE``/``ACCOUNT_UPDATE``) are queued and handed out by
``drain_user_events``. No I/O, no clock, no randomness: equal inputs give equal outputs.

Order lifecycle (one place, a table)::

    accepted ──► NEW ──► PARTIALLY_FILLED ──► FILLED
       │          │            │
       │          └────────────┴──► CANCELED (cancel_order) / EXPIRED (IOC, FOK, MARKET
       │                                       remainder; reduce-only that can no longer reduce)
       └──► rejected: SimApiError, nothing recorded, no event

Matching
--------
Paper orders never trade with each other and never move the shared market. An incoming order
takes liquidity from the ``BookView``'s visible levels, best first, up to its limit price;
each level is used at most once by that order (the order keeps its own copy). The taker pays
``taker_fee_bps``. A remainder of a LIMIT GTC/GTX/LIMIT_MAKER order rests; ``on_market``
fills resting orders *at their limit price* (maker fee) once the market crosses them, using
the crossing volume as one pool shared by all resting orders of the symbol in price-time
priority, so one market update cannot fill the same volume twice.

Numbers
-------
Prices and quantities are integers in units of 10**-price_decimals / 10**-qty_decimals.
Notional (price x qty) is exact at scale ``price_decimals + qty_decimals``. Balances,
fees, PnL and margin are integers at one venue-wide *money scale* ``money_decimals =
max(price_decimals + qty_decimals) + 4`` (the ``+4`` holds basis-point fees exactly), so
nothing is ever rounded: ``wallet change == realized PnL - fees`` holds to the last unit.
Money strings are padded to 8 decimals like Binance and only longer when the exact value
needs it.

Simplifications (documented decisions)
--------------------------------------
- Spot commission is always charged in the quote asset (Binance charges a buyer in the base
  asset). A resting spot BUY locks ``remaining x price x (1 + max fee)`` of quote asset; a
  SELL locks the base quantity. Locks are derived from open orders, never stored.
- USD-M is one-way mode (positionSide BOTH), cross margin, leverage 20. Position cost is kept
  exactly; partial closes release cost pro rata (floor), so a full close realises exactly
  ``sum(sell notional) - sum(buy notional)``. Margin check: the part of an order that adds
  exposure needs ``notional / 20`` of available balance (-2019 otherwise).
- USD-M POST /fapi/v1/order always answers with the post-match state (like
  ``newOrderRespType=RESULT``). A GTX order that would take is rejected with -5022 and is not
  recorded (Binance: "the Post Only order will be rejected ... will not be recorded").
- MARKET notional filters use the book's mark price; spot ``quoteOrderQty`` is not supported.
- Duplicate ``newClientOrderId`` is checked against the account's *open* orders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import takewhile
from typing import Literal, Protocol

from epochbot.model.numeric import DecimalFormatError, format_units, parse_units
from epochbot.sim.auth import SimApiError

__all__ = [
    "BookView",
    "PaperVenue",
    "SymbolFilters",
    "FIRST_ORDER_ID",
    "FIRST_TRADE_ID",
    "LEVERAGE",
]

Market = Literal["spot", "usdm"]

FIRST_ORDER_ID = 1_000_001
FIRST_TRADE_ID = 500_001
LEVERAGE = 20
MAX_CLOSED_ORDERS_PER_ACCOUNT = 10_000
_BINANCE_MIN_DECIMALS = 8

_CLIENT_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")

DEFAULT_STARTING_BALANCES: dict[str, dict[str, str]] = {
    "spot": {"USDT": "100000", "BTC": "1", "ETH": "10"},
    "usdm": {"USDT": "100000"},
}

# Accepted enumerations per market.
_ORDER_TYPES = {"spot": ("LIMIT", "MARKET", "LIMIT_MAKER"), "usdm": ("LIMIT", "MARKET")}
_TIME_IN_FORCE = {"spot": ("GTC", "IOC", "FOK"), "usdm": ("GTC", "IOC", "FOK", "GTX")}
_OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


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
class _Order:
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
        return self.status in _OPEN_STATUSES

    @property
    def direction(self) -> int:
        return 1 if self.side == "BUY" else -1


@dataclass
class _Position:
    size: int = 0  # signed qty units; + long, - short
    cost: int = 0  # |entry notional| in notional units
    update_time: int = 0


@dataclass(frozen=True)
class _Trade:
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
class _Account:
    balances: dict[str, int]  # spot: total per asset; usdm: wallet per asset (money units)
    orders: dict[tuple[str, int], _Order] = field(default_factory=dict)
    closed: list[tuple[str, int]] = field(default_factory=list)
    positions: dict[str, _Position] = field(default_factory=dict)
    update_time: int = 0
    # Every execution of the account, oldest first (GET userTrades / myTrades), and the
    # client order id of every order ever accepted (allOrders keeps them past the closed cap).
    trades: list[_Trade] = field(default_factory=list)
    history: list[tuple[str, int, str]] = field(default_factory=list)  # (symbol, orderId, clientOrderId)


@dataclass(frozen=True)
class _Fill:
    price: int
    qty: int
    trade_id: int
    commission: int  # money units
    realized_pnl: int  # money units (usdm)
    maker: bool


def _fmt_padded(units: int, decimals: int, min_decimals: int) -> str:
    """Exact decimal string with at least ``min_decimals`` fractional digits."""
    text = format_units(units, decimals)
    whole, _, frac = text.partition(".")
    if len(frac) < min_decimals:
        frac = frac.ljust(min_decimals, "0")
    return f"{whole}.{frac}" if frac else whole


def _fmt_ratio(numerator: int, denominator: int, scale: int, places: int) -> str:
    """``numerator / denominator * 10**-scale`` rounded half-even to ``places`` decimals."""
    if denominator == 0 or numerator == 0:
        return "0." + "0" * places if places else "0"
    with localcontext() as ctx:
        ctx.prec = 60
        value = (Decimal(numerator) / Decimal(denominator)).scaleb(-scale)
        return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


class PaperVenue:
    """One simulated Binance market (spot or USD-M) holding paper accounts and their orders.

    Accounts are created on first use with ``starting_balances`` (spot default
    USDT 100000 / BTC 1 / ETH 10; USD-M default USDT 100000 wallet).
    """

    def __init__(
        self,
        market: Market,
        symbols: dict[str, SymbolFilters],
        *,
        maker_fee_bps: int = 2,
        taker_fee_bps: int = 4,
        starting_balances: dict[str, str] | None = None,
    ) -> None:
        if market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', not {market!r}")
        if maker_fee_bps < 0 or taker_fee_bps < 0:
            raise ValueError("fees must be non-negative basis points")
        self.market: Market = market
        self.symbols = dict(symbols)
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        widest = max((f.price_decimals + f.qty_decimals for f in self.symbols.values()), default=0)
        self.money_decimals = max(widest + 4, _BINANCE_MIN_DECIMALS)
        spec = starting_balances if starting_balances is not None else DEFAULT_STARTING_BALANCES[market]
        self._starting = {asset: parse_units(text, self.money_decimals) for asset, text in spec.items()}
        self._accounts: dict[str, _Account] = {}
        self._next_order_id = {s: FIRST_ORDER_ID for s in self.symbols}
        self._next_trade_id = {s: FIRST_TRADE_ID for s in self.symbols}
        self._cancel_seq = 0
        self._marks: dict[str, int] = {}
        self._events: list[tuple[str, dict]] = []

    # ------------------------------------------------------------------ public API

    def place_order(self, account_id: str, params: dict[str, str], book: BookView, now_ms: int) -> dict:
        """POST /api/v3/order (spot) or POST /fapi/v1/order (usdm)."""
        account = self._account(account_id)
        filters = self._filters(params)
        if book.symbol != filters.symbol:
            raise ValueError(f"book for {book.symbol} passed for an order on {filters.symbol}")
        self._marks[filters.symbol] = book.mark_price()
        order, resp_type = self._validate_new(account, account_id, filters, params, now_ms)
        levels = list(book.asks() if order.side == "BUY" else book.bids())
        takes = self._sweep(order, levels, order.remaining)

        # Post-only: reject before anything is recorded.
        if takes and order.type == "LIMIT_MAKER":
            raise SimApiError(-2010, "Order would immediately match and take.")
        if takes and order.time_in_force == "GTX":
            raise SimApiError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                "The order will not be recorded in the order history",
            )
        self._check_funds(account, filters, order, takes)

        self._record(account, order)
        self._emit_order(order, "NEW", now_ms)
        fills: list[_Fill] = []
        if order.time_in_force == "FOK" and sum(q for _, q in takes) < order.orig_qty:
            takes = []
            self._finish(account, order, "EXPIRED", now_ms)
        else:
            for price, qty in takes:
                fills.append(self._execute(account, filters, order, price, qty, maker=False, now_ms=now_ms))
            if order.remaining == 0:
                pass  # status set to FILLED by _execute
            elif order.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
                self._finish(account, order, "EXPIRED", now_ms)
        order.update_time = now_ms
        self._emit_account(account_id, account, filters, now_ms, traded=bool(fills))
        return self._new_order_response(order, fills, resp_type, now_ms)

    def cancel_order(self, account_id: str, params: dict[str, str], now_ms: int) -> dict:
        """DELETE /api/v3/order (spot) or DELETE /fapi/v1/order (usdm)."""
        account = self._account(account_id)
        filters = self._filters(params)
        order = self._lookup(account, filters.symbol, params)
        if order is None or not order.is_open:
            raise SimApiError(-2011, "Unknown order sent.")
        self._finish(account, order, "CANCELED", now_ms)
        self._emit_account(account_id, account, filters, now_ms, traded=False)
        if self.market == "usdm":
            return self._usdm_order_json(order, with_time=False)
        self._cancel_seq += 1
        return {
            "symbol": order.symbol,
            "origClientOrderId": order.client_order_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": params.get("newClientOrderId") or f"sim-cancel-{self._cancel_seq}",
            "transactTime": now_ms,
            **self._spot_order_core(order),
            "selfTradePreventionMode": "NONE",
        }

    def query_order(self, account_id: str, params: dict[str, str]) -> dict:
        """GET /api/v3/order (spot) or GET /fapi/v1/order (usdm)."""
        account = self._account(account_id)
        filters = self._filters(params)
        order = self._lookup(account, filters.symbol, params)
        if order is None:
            raise SimApiError(-2013, "Order does not exist.")
        return self._order_json(order)

    def open_orders(self, account_id: str, symbol: str | None) -> list[dict]:
        """GET /api/v3/openOrders or /fapi/v1/openOrders, oldest first."""
        account = self._account(account_id)
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        return [
            self._order_json(o) for o in account.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def find_order(self, account_id: str, symbol: str, client_order_id: str) -> dict | None:
        """The newest order of that symbol with that clientOrderId, query-shaped, or None."""
        account = self._account(account_id)
        found = None
        for order in account.orders.values():
            if order.symbol == symbol and order.client_order_id == client_order_id:
                found = order
        return self._order_json(found) if found else None

    def user_trades(
        self,
        account_id: str,
        symbol: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[dict]:
        """GET /fapi/v1/userTrades (usdm) or GET /api/v3/myTrades (spot), oldest first.

        ``fromId`` returns trades with id >= fromId (and then ignores the time window, as
        Binance does for spot); otherwise ``startTime``/``endTime`` bound the trade time.
        """
        if symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        if not 1 <= limit <= 1000:
            raise SimApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        if start_time is not None and end_time is not None and end_time < start_time:
            raise SimApiError(-1127, "More than 24 hours between startTime and endTime.")
        account = self._account(account_id)
        out = []
        for t in account.trades:
            if t.symbol != symbol:
                continue
            if from_id is not None:
                if t.trade_id < from_id:
                    continue
            else:
                if start_time is not None and t.time < start_time:
                    continue
                if end_time is not None and t.time > end_time:
                    continue
            out.append(self._trade_json(t))
            if len(out) >= limit:
                break
        return out

    def all_orders(self, account_id: str, symbol: str, limit: int = 1000) -> list[dict]:
        """GET /fapi/v1/allOrders or /api/v3/allOrders: every order of ``symbol``, oldest first.

        Orders forgotten past the closed-order cap appear with only their ids (``status``
        ``"PURGED"``) so a caller can still see every client order id the venue accepted.
        """
        if symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        account = self._account(account_id)
        out = []
        for sym, order_id, coid in account.history:
            if sym != symbol:
                continue
            order = account.orders.get((sym, order_id))
            out.append(
                self._order_json(order)
                if order is not None
                else {"symbol": sym, "orderId": order_id, "clientOrderId": coid, "status": "PURGED"}
            )
        return out[-limit:] if limit else out

    def _trade_json(self, t: _Trade) -> dict:
        f = self.symbols[t.symbol]
        notional_decimals = f.price_decimals + f.qty_decimals
        if self.market == "usdm":
            return {
                "buyer": t.side == "BUY",
                "commission": self._money(t.commission),
                "commissionAsset": f.quote_asset,
                "id": t.trade_id,
                "maker": t.maker,
                "orderId": t.order_id,
                "price": _fmt_padded(t.price, f.price_decimals, f.price_decimals),
                "qty": _fmt_padded(t.qty, f.qty_decimals, f.qty_decimals),
                "quoteQty": _fmt_padded(t.price * t.qty, notional_decimals, notional_decimals),
                "realizedPnl": self._money(t.realized_pnl),
                "side": t.side,
                "positionSide": "BOTH",
                "symbol": t.symbol,
                "time": t.time,
            }
        return {
            "symbol": t.symbol,
            "id": t.trade_id,
            "orderId": t.order_id,
            "orderListId": -1,
            "price": _fmt_padded(t.price, f.price_decimals, 8),
            "qty": _fmt_padded(t.qty, f.qty_decimals, 8),
            "quoteQty": _fmt_padded(t.price * t.qty, notional_decimals, 8),
            "commission": self._money(t.commission),
            "commissionAsset": f.quote_asset,
            "time": t.time,
            "isBuyer": t.side == "BUY",
            "isMaker": t.maker,
            "isBestMatch": True,
        }

    def account(self, account_id: str, now_ms: int) -> dict:
        """GET /api/v3/account (spot) or GET /fapi/v2/account (usdm)."""
        account = self._account(account_id)
        if self.market == "spot":
            return self._spot_account_json(account, now_ms)
        return self._usdm_account_json(account, now_ms)

    def position_risk(self, account_id: str, symbol: str | None, marks: dict[str, int]) -> list[dict]:
        """GET /fapi/v2/positionRisk: one entry per symbol (or just ``symbol``), marks in price units."""
        if self.market != "usdm":
            raise SimApiError(-1000, "positionRisk is a USD-M endpoint.")
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        account = self._account(account_id)
        names = [symbol] if symbol is not None else list(self.symbols)
        out = []
        for name in names:
            f = self.symbols[name]
            pos = account.positions.get(name, _Position())
            mark = marks.get(name, self._marks.get(name, 0))
            notional_units = pos.size * mark
            out.append(
                {
                    "symbol": name,
                    "positionAmt": _fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
                    "entryPrice": self._entry_price(f, pos),
                    "breakEvenPrice": self._entry_price(f, pos),
                    "markPrice": _fmt_padded(mark, f.price_decimals, 8),
                    "unRealizedProfit": self._money(self._unrealized(f, pos, mark)),
                    "liquidationPrice": "0",
                    "leverage": str(LEVERAGE),
                    "maxNotionalValue": "1000000",
                    "marginType": "cross",
                    "isolatedMargin": "0.00000000",
                    "isAutoAddMargin": "false",
                    "positionSide": "BOTH",
                    "notional": _fmt_padded(notional_units, f.price_decimals + f.qty_decimals, 8),
                    "isolatedWallet": "0",
                    "updateTime": pos.update_time,
                }
            )
        return out

    def on_market(self, book: BookView, now_ms: int) -> None:
        """Fill resting orders of ``book.symbol`` that the market now crosses, at their limit price."""
        filters = self.symbols.get(book.symbol)
        if filters is None:
            return
        self._marks[book.symbol] = book.mark_price()
        resting = [
            (account_id, order)
            for account_id, account in self._accounts.items()
            for order in account.orders.values()
            if order.symbol == book.symbol and order.is_open and order.type != "MARKET"
        ]
        if not resting:
            return
        touched: dict[str, bool] = {}
        for side, levels in (("BUY", book.asks()), ("SELL", book.bids())):
            candidates = [(a, o) for a, o in resting if o.side == side]
            if not candidates:
                continue
            # Price-time priority: best price first, then the older order.
            candidates.sort(key=lambda ao: (-ao[1].price * ao[1].direction, ao[1].order_id))
            # Only the levels the most aggressive resting order crosses can trade.
            pool = [[p, q] for p, q in takewhile(lambda lv: self._crosses(candidates[0][1], lv[0]), levels)]
            for account_id, order in candidates:
                account = self._accounts[account_id]
                available = 0
                for level in pool:
                    if not self._crosses(order, level[0]):
                        break
                    available += level[1]
                qty = min(order.remaining, available)
                if order.reduce_only:
                    qty = self._reduce_only_room(account, order, qty, now_ms)
                if qty <= 0:
                    continue
                left = qty
                for level in pool:
                    if left == 0:
                        break
                    used = min(level[1], left)
                    level[1] -= used
                    left -= used
                self._execute(account, filters, order, order.price, qty, maker=True, now_ms=now_ms)
                touched[account_id] = True
        for account_id in touched:
            self._emit_account(account_id, self._accounts[account_id], filters, now_ms, traded=True)

    def drain_user_events(self) -> list[tuple[str, dict]]:
        """(account_id, event) pairs queued since the last drain, in the order they happened."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ validation

    def _account(self, account_id: str) -> _Account:
        account = self._accounts.get(account_id)
        if account is None:
            account = _Account(balances=dict(self._starting))
            self._accounts[account_id] = account
        return account

    def _filters(self, params: dict[str, str]) -> SymbolFilters:
        symbol = params.get("symbol")
        if not symbol:
            raise _missing("symbol")
        filters = self.symbols.get(symbol)
        if filters is None:
            raise SimApiError(-1121, "Invalid symbol.")
        return filters

    def _validate_new(
        self, account: _Account, account_id: str, f: SymbolFilters, params: dict[str, str], now_ms: int
    ) -> tuple[_Order, str]:
        side = params.get("side")
        if not side:
            raise _missing("side")
        if side not in ("BUY", "SELL"):
            raise SimApiError(-1117, "Invalid side.")
        order_type = params.get("type")
        if not order_type:
            raise _missing("type")
        if order_type not in _ORDER_TYPES[self.market]:
            raise SimApiError(-1116, "Invalid orderType.")

        tif = params.get("timeInForce")
        if order_type == "LIMIT":
            if not tif:
                raise _missing("timeInForce")
            if tif not in _TIME_IN_FORCE[self.market]:
                raise SimApiError(-1115, "Invalid timeInForce.")
        elif tif and self.market == "spot":
            raise SimApiError(-1106, "Parameter 'timeInForce' sent when not required.")
        else:
            tif = "GTC"

        qty = self._parse_param(params, "quantity", f.qty_decimals, "LOT_SIZE")
        if order_type == "MARKET":
            if params.get("price") and self.market == "spot":
                raise SimApiError(-1106, "Parameter 'price' sent when not required.")
            price = 0
        else:
            price = self._parse_param(params, "price", f.price_decimals, "PRICE_FILTER")
            if price <= 0 or price % f.tick_units:
                raise _filter_failure("PRICE_FILTER")
        if qty <= 0 or qty % f.step_units or qty < f.min_qty_units or qty > f.max_qty_units:
            raise _filter_failure("LOT_SIZE")

        reduce_text = params.get("reduceOnly", "false")
        if reduce_text not in ("true", "false"):
            raise SimApiError(-1130, "Data sent for parameter 'reduceOnly' is not valid.")
        reduce_only = reduce_text == "true"
        if reduce_only and self.market == "spot":
            raise SimApiError(-1104, "Not all sent parameters were read (reduceOnly is a futures parameter).")

        # Notional filter (MARKET orders are valued at the mark price).
        ref_price = price if price else self._marks.get(f.symbol, 0)
        notional = ref_price * qty
        min_notional = parse_units(f.min_notional, f.price_decimals + f.qty_decimals)
        if notional < min_notional and not reduce_only:
            if self.market == "spot":
                raise _filter_failure("NOTIONAL")
            raise SimApiError(
                -4164, f"Order's notional must be no smaller than {f.min_notional} (unless you choose reduce only)."
            )

        client_id = params.get("newClientOrderId") or ""
        if client_id:
            if not _CLIENT_ID_PATTERN.match(client_id):
                raise SimApiError(
                    -1100,
                    "Illegal characters found in parameter 'newClientOrderId'; "
                    "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
                )
            for other in account.orders.values():
                if other.is_open and other.symbol == f.symbol and other.client_order_id == client_id:
                    if self.market == "spot":
                        raise SimApiError(-2010, "Duplicate order sent.")
                    raise SimApiError(-4116, "ClientOrderId is duplicated.")

        resp_type = params.get("newOrderRespType") or ("FULL" if order_type in ("LIMIT", "MARKET") else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise SimApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")

        if reduce_only:
            pos = account.positions.get(f.symbol, _Position())
            direction = 1 if side == "BUY" else -1
            if pos.size == 0 or _sign(pos.size) == direction or qty > abs(pos.size):
                raise SimApiError(-2022, "ReduceOnly Order is rejected.")

        order_id = self._next_order_id[f.symbol]
        order = _Order(
            account_id=account_id,
            symbol=f.symbol,
            order_id=order_id,
            client_order_id=client_id or f"sim-{f.symbol}-{order_id}",
            side=side,
            type=order_type,
            time_in_force=tif,
            price=price,
            orig_qty=qty,
            reduce_only=reduce_only,
            time=now_ms,
            update_time=now_ms,
        )
        return order, resp_type

    @staticmethod
    def _parse_param(params: dict[str, str], name: str, decimals: int, filter_name: str) -> int:
        text = params.get(name)
        if not text:
            raise _missing(name)
        try:
            return parse_units(text, decimals)
        except DecimalFormatError:
            if re.fullmatch(r"[0-9]{1,20}(\.[0-9]{1,20})?", text):
                raise _filter_failure(filter_name) from None  # finer than the grid
            raise SimApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
            ) from None

    def _check_funds(self, account: _Account, f: SymbolFilters, order: _Order, takes: list[tuple[int, int]]) -> None:
        """Reject before recording if the account cannot pay for the order."""
        if self.market == "spot":
            free = self._free(account)
            if order.side == "BUY":
                if order.type == "MARKET":
                    need = sum(p * q for p, q in takes) * self._shift_notional(f)
                    need += sum(p * q for p, q in takes) * self.taker_fee_bps * self._shift_fee(f)
                else:
                    need = self._buy_lock(f, order.price, order.orig_qty)
                if need > free.get(f.quote_asset, 0):
                    raise SimApiError(-2010, "Account has insufficient balance for requested action.")
            elif order.orig_qty * self._shift_qty(f) > free.get(f.base_asset, 0):
                raise SimApiError(-2010, "Account has insufficient balance for requested action.")
            return
        # USD-M: the part that adds exposure needs initial margin.
        pos = account.positions.get(f.symbol, _Position())
        adds = order.orig_qty
        if pos.size and _sign(pos.size) != order.direction:
            adds = max(0, order.orig_qty - abs(pos.size))
        if adds == 0 or order.reduce_only:
            return
        ref_price = order.price or self._marks.get(f.symbol, 0)
        need = self._margin(f, ref_price * adds)
        if need > self._usdm_available(account):
            raise SimApiError(-2019, "Margin is insufficient.")

    # ------------------------------------------------------------------ matching

    @staticmethod
    def _crosses(order: _Order, level_price: int) -> bool:
        if order.type == "MARKET":
            return True
        return level_price <= order.price if order.side == "BUY" else level_price >= order.price

    def _sweep(self, order: _Order, levels: list[tuple[int, int]], qty: int) -> list[tuple[int, int]]:
        """The (price, qty) slices the order would take from the visible levels, best first."""
        takes: list[tuple[int, int]] = []
        left = qty
        for price, size in levels:
            if left == 0 or not self._crosses(order, price):
                break
            if size <= 0:
                continue
            used = min(size, left)
            takes.append((price, used))
            left -= used
        return takes

    def _reduce_only_room(self, account: _Account, order: _Order, qty: int, now_ms: int) -> int:
        """Clamp a reduce-only fill to the position; expire the order if it can no longer reduce."""
        pos = account.positions.get(order.symbol, _Position())
        if pos.size == 0 or _sign(pos.size) == order.direction:
            self._finish(account, order, "EXPIRED", now_ms)
            return 0
        return min(qty, abs(pos.size))

    def _execute(
        self, account: _Account, f: SymbolFilters, order: _Order, price: int, qty: int, *, maker: bool, now_ms: int
    ) -> _Fill:
        """Apply one fill to the order, the balances and the position, and queue its event."""
        notional = price * qty
        fee = notional * (self.maker_fee_bps if maker else self.taker_fee_bps) * self._shift_fee(f)
        realized = 0
        if self.market == "spot":
            quote = notional * self._shift_notional(f)
            base = qty * self._shift_qty(f)
            bal = account.balances
            if order.side == "BUY":
                bal[f.quote_asset] = bal.get(f.quote_asset, 0) - quote - fee
                bal[f.base_asset] = bal.get(f.base_asset, 0) + base
            else:
                bal[f.base_asset] = bal.get(f.base_asset, 0) - base
                bal[f.quote_asset] = bal.get(f.quote_asset, 0) + quote - fee
        else:
            pos = account.positions.setdefault(f.symbol, _Position())
            realized = self._apply_to_position(pos, order.direction, price, qty) * self._shift_notional(f)
            pos.update_time = now_ms
            account.balances[f.quote_asset] = account.balances.get(f.quote_asset, 0) + realized - fee
        account.update_time = now_ms

        trade_id = self._next_trade_id[f.symbol]
        self._next_trade_id[f.symbol] = trade_id + 1
        order.executed_qty += qty
        order.cum_quote += notional
        order.update_time = now_ms
        if order.remaining == 0:
            order.status = "FILLED"
            self._close(account, order)
        else:
            order.status = "PARTIALLY_FILLED"
        fill = _Fill(price, qty, trade_id, fee, realized, maker)
        account.trades.append(
            _Trade(f.symbol, trade_id, order.order_id, order.side, price, qty, fee, realized, maker, now_ms)
        )
        self._emit_order(order, "TRADE", now_ms, fill)
        return fill

    @staticmethod
    def _apply_to_position(pos: _Position, direction: int, price: int, qty: int) -> int:
        """One-way position update; returns realized PnL in notional units (exact)."""
        if pos.size == 0 or _sign(pos.size) == direction:
            pos.size += direction * qty
            pos.cost += price * qty
            return 0
        held = abs(pos.size)
        closing = min(qty, held)
        released = pos.cost if closing == held else pos.cost * closing // held
        realized = _sign(pos.size) * (price * closing - released)
        pos.cost -= released
        pos.size += direction * closing
        rest = qty - closing
        if rest:  # flip: the remainder opens a fresh position at this price
            pos.size = direction * rest
            pos.cost = price * rest
        return realized

    def _record(self, account: _Account, order: _Order) -> None:
        self._next_order_id[order.symbol] = order.order_id + 1
        account.orders[(order.symbol, order.order_id)] = order
        account.history.append((order.symbol, order.order_id, order.client_order_id))

    def _finish(self, account: _Account, order: _Order, status: str, now_ms: int) -> None:
        order.status = status
        order.update_time = now_ms
        self._close(account, order)
        self._emit_order(order, status, now_ms)

    def _close(self, account: _Account, order: _Order) -> None:
        """Remember a closed order for queries, forgetting the oldest beyond the cap."""
        account.closed.append((order.symbol, order.order_id))
        if len(account.closed) > MAX_CLOSED_ORDERS_PER_ACCOUNT:
            account.orders.pop(account.closed.pop(0), None)

    def _lookup(self, account: _Account, symbol: str, params: dict[str, str]) -> _Order | None:
        order_id_text = params.get("orderId")
        client_id = params.get("origClientOrderId")
        if not order_id_text and not client_id:
            raise SimApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id_text:
            if not order_id_text.isdigit():
                raise SimApiError(
                    -1100, "Illegal characters found in parameter 'orderId'; legal range is '^[0-9]{1,20}$'."
                )
            order = account.orders.get((symbol, int(order_id_text)))
            if order is not None and client_id and order.client_order_id != client_id:
                return None
            return order
        # A client id may be reused once its order closed: prefer the open one, else the newest.
        found = None
        for order in account.orders.values():
            if order.symbol == symbol and order.client_order_id == client_id:
                if found is None or not found.is_open:
                    found = order
        return found

    # ------------------------------------------------------------------ money

    def _shift_notional(self, f: SymbolFilters) -> int:
        return 10 ** (self.money_decimals - f.price_decimals - f.qty_decimals)

    def _shift_fee(self, f: SymbolFilters) -> int:
        return 10 ** (self.money_decimals - f.price_decimals - f.qty_decimals - 4)

    def _shift_qty(self, f: SymbolFilters) -> int:
        return 10 ** (self.money_decimals - f.qty_decimals)

    def _money(self, units: int) -> str:
        return _fmt_padded(units, self.money_decimals, _BINANCE_MIN_DECIMALS)

    def _buy_lock(self, f: SymbolFilters, price: int, qty: int) -> int:
        worst_bps = max(self.maker_fee_bps, self.taker_fee_bps)
        return price * qty * (10_000 + worst_bps) * self._shift_fee(f)

    def _locked(self, account: _Account) -> dict[str, int]:
        """Spot locks derived from open orders (never stored, so they cannot drift)."""
        locked: dict[str, int] = {}
        for order in account.orders.values():
            if not order.is_open:
                continue
            f = self.symbols[order.symbol]
            if order.side == "BUY":
                locked[f.quote_asset] = locked.get(f.quote_asset, 0) + self._buy_lock(f, order.price, order.remaining)
            else:
                locked[f.base_asset] = locked.get(f.base_asset, 0) + order.remaining * self._shift_qty(f)
        return locked

    def _free(self, account: _Account) -> dict[str, int]:
        locked = self._locked(account)
        return {a: total - locked.get(a, 0) for a, total in account.balances.items()}

    def _margin(self, f: SymbolFilters, notional: int) -> int:
        """Initial margin at LEVERAGE for a notional (notional units -> money units, exact)."""
        return notional * self._shift_notional(f) // LEVERAGE

    def _unrealized(self, f: SymbolFilters, pos: _Position, mark: int) -> int:
        if pos.size == 0:
            return 0
        return (pos.size * mark - _sign(pos.size) * pos.cost) * self._shift_notional(f)

    def _usdm_totals(self, account: _Account) -> dict[str, int]:
        unrealized = position_im = order_im = 0
        for name, pos in account.positions.items():
            f = self.symbols[name]
            mark = self._marks.get(name) or (pos.cost // abs(pos.size) if pos.size else 0)
            unrealized += self._unrealized(f, pos, mark)
            position_im += self._margin(f, abs(pos.size) * mark)
        for order in account.orders.values():
            if order.is_open and not order.reduce_only:
                order_im += self._margin(self.symbols[order.symbol], order.remaining * order.price)
        wallet = sum(account.balances.values())
        return {
            "wallet": wallet,
            "unrealized": unrealized,
            "position_im": position_im,
            "order_im": order_im,
            "available": wallet + unrealized - position_im - order_im,
        }

    def _usdm_available(self, account: _Account) -> int:
        return self._usdm_totals(account)["available"]

    def _entry_price(self, f: SymbolFilters, pos: _Position) -> str:
        if pos.size == 0:
            return _fmt_padded(0, f.price_decimals, f.price_decimals)
        text = _fmt_ratio(pos.cost, abs(pos.size), f.price_decimals, f.price_decimals + 4)
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0").ljust(f.price_decimals, "0")
        return f"{whole}.{frac}" if frac else whole

    # ------------------------------------------------------------------ JSON shapes

    def _spot_order_core(self, o: _Order) -> dict:
        f = self.symbols[o.symbol]
        return {
            "price": _fmt_padded(o.price, f.price_decimals, 8),
            "origQty": _fmt_padded(o.orig_qty, f.qty_decimals, 8),
            "executedQty": _fmt_padded(o.executed_qty, f.qty_decimals, 8),
            "cummulativeQuoteQty": _fmt_padded(o.cum_quote, f.price_decimals + f.qty_decimals, 8),
            "status": o.status,
            "timeInForce": o.time_in_force,
            "type": o.type,
            "side": o.side,
        }

    def _usdm_order_json(self, o: _Order, *, with_time: bool) -> dict:
        f = self.symbols[o.symbol]
        notional_decimals = f.price_decimals + f.qty_decimals
        out = {
            "orderId": o.order_id,
            "symbol": o.symbol,
            "status": o.status,
            "clientOrderId": o.client_order_id,
            "price": _fmt_padded(o.price, f.price_decimals, f.price_decimals),
            "avgPrice": _fmt_ratio(o.cum_quote, o.executed_qty, f.price_decimals, f.price_decimals + 3),
            "origQty": _fmt_padded(o.orig_qty, f.qty_decimals, f.qty_decimals),
            "executedQty": _fmt_padded(o.executed_qty, f.qty_decimals, f.qty_decimals),
            "cumQty": _fmt_padded(o.executed_qty, f.qty_decimals, f.qty_decimals),
            "cumQuote": _fmt_padded(o.cum_quote, notional_decimals, notional_decimals),
            "timeInForce": o.time_in_force,
            "type": o.type,
            "reduceOnly": o.reduce_only,
            "closePosition": False,
            "side": o.side,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": o.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "updateTime": o.update_time,
        }
        if with_time:
            out["time"] = o.time
            del out["cumQty"]  # GET /fapi/v1/order has no cumQty
        return out

    def _order_json(self, o: _Order) -> dict:
        """GET /api/v3/order or GET /fapi/v1/order shape."""
        if self.market == "usdm":
            return self._usdm_order_json(o, with_time=True)
        f = self.symbols[o.symbol]
        return {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_order_id,
            **self._spot_order_core(o),
            "stopPrice": _fmt_padded(0, f.price_decimals, 8),
            "icebergQty": _fmt_padded(0, f.qty_decimals, 8),
            "time": o.time,
            "updateTime": o.update_time,
            "isWorking": True,
            "workingTime": o.time,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE",
        }

    def _new_order_response(self, o: _Order, fills: list[_Fill], resp_type: str, now_ms: int) -> dict:
        if self.market == "usdm":
            return self._usdm_order_json(o, with_time=False)
        out: dict = {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_order_id,
            "transactTime": now_ms,
        }
        if resp_type == "ACK":
            return out
        out.update(self._spot_order_core(o))
        out["workingTime"] = now_ms
        out["origQuoteOrderQty"] = "0.00000000"
        out["selfTradePreventionMode"] = "NONE"
        if resp_type == "FULL":
            f = self.symbols[o.symbol]
            out["fills"] = [
                {
                    "price": _fmt_padded(x.price, f.price_decimals, 8),
                    "qty": _fmt_padded(x.qty, f.qty_decimals, 8),
                    "commission": self._money(x.commission),
                    "commissionAsset": f.quote_asset,
                    "tradeId": x.trade_id,
                }
                for x in fills
            ]
        return out

    def _spot_account_json(self, account: _Account, now_ms: int) -> dict:
        locked = self._locked(account)
        rate = lambda bps: _fmt_padded(bps, 4, 8)  # noqa: E731 - bps -> "0.00020000"
        return {
            "makerCommission": self.maker_fee_bps,
            "takerCommission": self.taker_fee_bps,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": rate(self.maker_fee_bps),
                "taker": rate(self.taker_fee_bps),
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": account.update_time or now_ms,
            "accountType": "SPOT",
            "balances": [
                {
                    "asset": asset,
                    "free": self._money(total - locked.get(asset, 0)),
                    "locked": self._money(locked.get(asset, 0)),
                }
                for asset, total in account.balances.items()
            ],
            "permissions": ["SPOT"],
            "uid": 0,
        }

    def _usdm_account_json(self, account: _Account, now_ms: int) -> dict:
        t = self._usdm_totals(account)
        m = self._money
        positions = []
        for name, f in self.symbols.items():
            pos = account.positions.get(name, _Position())
            mark = self._marks.get(name, 0)
            order_im = sum(
                self._margin(f, o.remaining * o.price)
                for o in account.orders.values()
                if o.symbol == name and o.is_open and not o.reduce_only
            )
            positions.append(
                {
                    "symbol": name,
                    "initialMargin": m(self._margin(f, abs(pos.size) * mark) + order_im),
                    "maintMargin": m(0),
                    "unrealizedProfit": m(self._unrealized(f, pos, mark)),
                    "positionInitialMargin": m(self._margin(f, abs(pos.size) * mark)),
                    "openOrderInitialMargin": m(order_im),
                    "leverage": str(LEVERAGE),
                    "isolated": False,
                    "entryPrice": self._entry_price(f, pos),
                    "breakEvenPrice": self._entry_price(f, pos),
                    "maxNotional": "1000000",
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": "BOTH",
                    "positionAmt": _fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
                    "updateTime": pos.update_time,
                }
            )
        margin_balance = t["wallet"] + t["unrealized"]
        assets = [
            {
                "asset": asset,
                "walletBalance": m(wallet),
                "unrealizedProfit": m(t["unrealized"]),
                "marginBalance": m(wallet + t["unrealized"]),
                "maintMargin": m(0),
                "initialMargin": m(t["position_im"] + t["order_im"]),
                "positionInitialMargin": m(t["position_im"]),
                "openOrderInitialMargin": m(t["order_im"]),
                "crossWalletBalance": m(wallet),
                "crossUnPnl": m(t["unrealized"]),
                "availableBalance": m(t["available"]),
                "maxWithdrawAmount": m(max(0, min(wallet, t["available"]))),
                "marginAvailable": True,
                "updateTime": account.update_time,
            }
            for asset, wallet in account.balances.items()
        ]
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": False,
            "canWithdraw": False,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": m(t["position_im"] + t["order_im"]),
            "totalMaintMargin": m(0),
            "totalWalletBalance": m(t["wallet"]),
            "totalUnrealizedProfit": m(t["unrealized"]),
            "totalMarginBalance": m(margin_balance),
            "totalPositionInitialMargin": m(t["position_im"]),
            "totalOpenOrderInitialMargin": m(t["order_im"]),
            "totalCrossWalletBalance": m(t["wallet"]),
            "totalCrossUnPnl": m(t["unrealized"]),
            "availableBalance": m(t["available"]),
            "maxWithdrawAmount": m(max(0, min(t["wallet"], t["available"]))),
            "assets": assets,
            "positions": positions,
        }

    # ------------------------------------------------------------------ user events

    def _emit_order(self, o: _Order, execution: str, now_ms: int, fill: _Fill | None = None) -> None:
        f = self.symbols[o.symbol]
        if self.market == "spot":
            last_qty = fill.qty if fill else 0
            last_price = fill.price if fill else 0
            event = {
                "e": "executionReport",
                "E": now_ms,
                "s": o.symbol,
                "c": o.client_order_id,
                "S": o.side,
                "o": o.type,
                "f": o.time_in_force,
                "q": _fmt_padded(o.orig_qty, f.qty_decimals, 8),
                "p": _fmt_padded(o.price, f.price_decimals, 8),
                "P": "0.00000000",
                "F": "0.00000000",
                "g": -1,
                "C": o.client_order_id if execution == "CANCELED" else "",
                "x": execution,
                "X": o.status,
                "r": "NONE",
                "i": o.order_id,
                "l": _fmt_padded(last_qty, f.qty_decimals, 8),
                "z": _fmt_padded(o.executed_qty, f.qty_decimals, 8),
                "L": _fmt_padded(last_price, f.price_decimals, 8),
                "n": self._money(fill.commission) if fill else "0",
                "N": f.quote_asset if fill else None,
                "T": now_ms,
                "t": fill.trade_id if fill else -1,
                "I": 0,
                "w": o.is_open,
                "m": fill.maker if fill else False,
                "M": False,
                "O": o.time,
                "Z": _fmt_padded(o.cum_quote, f.price_decimals + f.qty_decimals, 8),
                "Y": _fmt_padded(last_qty * last_price, f.price_decimals + f.qty_decimals, 8),
                "Q": "0.00000000",
                "W": o.time,
                "V": "NONE",
            }
        else:
            event = {
                "e": "ORDER_TRADE_UPDATE",
                "E": now_ms,
                "T": now_ms,
                "o": {
                    "s": o.symbol,
                    "c": o.client_order_id,
                    "S": o.side,
                    "o": o.type,
                    "f": o.time_in_force,
                    "q": _fmt_padded(o.orig_qty, f.qty_decimals, f.qty_decimals),
                    "p": _fmt_padded(o.price, f.price_decimals, f.price_decimals),
                    "ap": _fmt_ratio(o.cum_quote, o.executed_qty, f.price_decimals, f.price_decimals + 3),
                    "sp": "0",
                    "x": execution,
                    "X": o.status,
                    "i": o.order_id,
                    "l": _fmt_padded(fill.qty if fill else 0, f.qty_decimals, f.qty_decimals),
                    "z": _fmt_padded(o.executed_qty, f.qty_decimals, f.qty_decimals),
                    "L": _fmt_padded(fill.price if fill else 0, f.price_decimals, f.price_decimals),
                    "N": f.quote_asset,
                    "n": self._money(fill.commission) if fill else "0",
                    "T": now_ms,
                    "t": fill.trade_id if fill else 0,
                    "b": "0",
                    "a": "0",
                    "m": fill.maker if fill else False,
                    "R": o.reduce_only,
                    "wt": "CONTRACT_PRICE",
                    "ot": o.type,
                    "ps": "BOTH",
                    "cp": False,
                    "rp": self._money(fill.realized_pnl) if fill else "0",
                    "pP": False,
                    "si": 0,
                    "ss": 0,
                    "V": "NONE",
                    "pm": "NONE",
                    "gtd": 0,
                },
            }
        self._events.append((o.account_id, event))

    def _emit_account(self, account_id: str, account: _Account, f: SymbolFilters, now_ms: int, *, traded: bool) -> None:
        """Spot: outboundAccountPosition after any balance/lock change. USD-M: ACCOUNT_UPDATE after fills."""
        if self.market == "spot":
            locked = self._locked(account)
            self._events.append(
                (
                    account_id,
                    {
                        "e": "outboundAccountPosition",
                        "E": now_ms,
                        "u": account.update_time or now_ms,
                        "B": [
                            {
                                "a": asset,
                                "f": self._money(account.balances.get(asset, 0) - locked.get(asset, 0)),
                                "l": self._money(locked.get(asset, 0)),
                            }
                            for asset in (f.base_asset, f.quote_asset)
                        ],
                    },
                )
            )
            return
        if not traded:
            return
        pos = account.positions.get(f.symbol, _Position())
        mark = self._marks.get(f.symbol, 0)
        wallet = account.balances.get(f.quote_asset, 0)
        self._events.append(
            (
                account_id,
                {
                    "e": "ACCOUNT_UPDATE",
                    "E": now_ms,
                    "T": now_ms,
                    "a": {
                        "m": "ORDER",
                        "B": [{"a": f.quote_asset, "wb": self._money(wallet), "cw": self._money(wallet), "bc": "0"}],
                        "P": [
                            {
                                "s": f.symbol,
                                "pa": _fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
                                "ep": self._entry_price(f, pos),
                                "bep": self._entry_price(f, pos),
                                "cr": "0",
                                "up": self._money(self._unrealized(f, pos, mark)),
                                "mt": "cross",
                                "iw": "0",
                                "ps": "BOTH",
                            }
                        ],
                    },
                },
            )
        )


def _missing(name: str) -> SimApiError:
    return SimApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _filter_failure(name: str) -> SimApiError:
    return SimApiError(-1013, f"Filter failure: {name}")
