"""`PaperVenue`: one simulated Binance market (spot or USD-M) holding paper accounts and their orders.

Theory of operation
-------------------
``PaperVenue`` is a pure state machine. Requests arrive as Binance's own string parameters
plus the current time (``now_ms``) and a read-only view of the simulated market (``BookView``);
each call returns a Binance-shaped, JSON-ready dict or raises ``SimApiError`` and leaves the
state untouched. User-data events (spot ``executionReport``/``outboundAccountPosition``,
USD-M ``ORDER_TRADE_UPDATE``/``ACCOUNT_UPDATE``) are queued and handed out by
``drain_user_events``. No I/O, no clock, no randomness: equal inputs give equal outputs.

The venue wires four parts and keeps the order lifecycle: `validate` (parameters to an order),
`book` (what liquidity an order takes), `Ledger` (accounts, balances, margin, positions) and
`Renderer` (the JSON). Order lifecycle (one place, a table)::

    accepted ──► NEW ──► PARTIALLY_FILLED ──► FILLED
       │          │            │
       │          └────────────┴──► CANCELED (cancel_order) / EXPIRED (IOC, FOK, MARKET
       │                                       remainder; reduce-only that can no longer reduce)
       └──► rejected: SimApiError, nothing recorded, no event

A remainder of a LIMIT GTC/GTX/LIMIT_MAKER order rests; ``on_market`` fills resting orders
*at their limit price* (maker fee) once the market crosses them. The taker pays
``taker_fee_bps``.

Simplifications (documented decisions)
--------------------------------------
- Spot commission is always charged in the quote asset (Binance charges a buyer in the base
  asset).
- USD-M is one-way mode (positionSide BOTH), cross margin, leverage 20 (see `ledger`).
- USD-M POST /fapi/v1/order always answers with the post-match state (like
  ``newOrderRespType=RESULT``). A GTX order that would take is rejected with -5022 and is not
  recorded (Binance: "the Post Only order will be rejected ... will not be recorded").
- MARKET notional filters use the book's mark price; spot ``quoteOrderQty`` is not supported.
- Duplicate ``newClientOrderId`` is checked against the account's *open* orders.
"""

from __future__ import annotations

from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.book import CrossingPool, by_priority, sweep
from epochbot.sim.matching.ledger import Ledger
from epochbot.sim.matching.records import (
    DEFAULT_STARTING_BALANCES,
    FIRST_ORDER_ID,
    FIRST_TRADE_ID,
    Account,
    BookView,
    Fill,
    Market,
    Order,
    SymbolFilters,
    Trade,
    sign,
)
from epochbot.sim.matching.render import Renderer
from epochbot.sim.matching.validate import symbol_filters, validate_new

__all__ = ["PaperVenue"]


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
        self.ledger = Ledger(
            market,
            self.symbols,
            maker_fee_bps=maker_fee_bps,
            taker_fee_bps=taker_fee_bps,
            starting_balances=starting_balances if starting_balances is not None else DEFAULT_STARTING_BALANCES[market],
        )
        self.render = Renderer(self.ledger)
        self._next_order_id = {s: FIRST_ORDER_ID for s in self.symbols}
        self._next_trade_id = {s: FIRST_TRADE_ID for s in self.symbols}
        self._cancel_seq = 0
        self._events: list[tuple[str, dict]] = []

    @property
    def maker_fee_bps(self) -> int:
        return self.ledger.maker_fee_bps

    @property
    def taker_fee_bps(self) -> int:
        return self.ledger.taker_fee_bps

    @property
    def money_decimals(self) -> int:
        return self.ledger.money_decimals

    # ------------------------------------------------------------------ requests

    def place_order(self, account_id: str, params: dict[str, str], book_view: BookView, now_ms: int) -> dict:
        """POST /api/v3/order (spot) or POST /fapi/v1/order (usdm)."""
        ledger = self.ledger
        account = ledger.account(account_id)
        filters = symbol_filters(self.symbols, params)
        if book_view.symbol != filters.symbol:
            raise ValueError(f"book for {book_view.symbol} passed for an order on {filters.symbol}")
        ledger.set_mark(filters.symbol, book_view.mark_price())
        order, resp_type = validate_new(
            self.market,
            account,
            account_id,
            filters,
            params,
            order_id=self._next_order_id[filters.symbol],
            mark=ledger.mark(filters.symbol, 0),
            now_ms=now_ms,
        )
        levels = list(book_view.asks() if order.side == "BUY" else book_view.bids())
        takes = sweep(order, levels, order.remaining)

        # Post-only: reject before anything is recorded.
        if takes and order.type == "LIMIT_MAKER":
            raise SimApiError(-2010, "Order would immediately match and take.")
        if takes and order.time_in_force == "GTX":
            raise SimApiError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                "The order will not be recorded in the order history",
            )
        ledger.check_funds(account, filters, order, takes)

        self._next_order_id[order.symbol] = order.order_id + 1
        ledger.record(account, order)
        self._emit_order(order, "NEW", now_ms)
        fills: list[Fill] = []
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
        return self.render.new_order_response(order, fills, resp_type, now_ms)

    def cancel_order(self, account_id: str, params: dict[str, str], now_ms: int) -> dict:
        """DELETE /api/v3/order (spot) or DELETE /fapi/v1/order (usdm)."""
        account = self.ledger.account(account_id)
        filters = symbol_filters(self.symbols, params)
        order = self.ledger.lookup(account, filters.symbol, params)
        if order is None or not order.is_open:
            raise SimApiError(-2011, "Unknown order sent.")
        self._finish(account, order, "CANCELED", now_ms)
        self._emit_account(account_id, account, filters, now_ms, traded=False)
        if self.market == "usdm":
            return self.render.usdm_order(order, with_time=False)
        self._cancel_seq += 1
        return self.render.spot_cancel(
            order, params.get("newClientOrderId") or f"sim-cancel-{self._cancel_seq}", now_ms
        )

    def query_order(self, account_id: str, params: dict[str, str]) -> dict:
        """GET /api/v3/order (spot) or GET /fapi/v1/order (usdm)."""
        account = self.ledger.account(account_id)
        filters = symbol_filters(self.symbols, params)
        order = self.ledger.lookup(account, filters.symbol, params)
        if order is None:
            raise SimApiError(-2013, "Order does not exist.")
        return self.render.order(order)

    def open_orders(self, account_id: str, symbol: str | None) -> list[dict]:
        """GET /api/v3/openOrders or /fapi/v1/openOrders, oldest first."""
        account = self.ledger.account(account_id)
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        return [
            self.render.order(o)
            for o in account.orders.values()
            if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def find_order(self, account_id: str, symbol: str, client_order_id: str) -> dict | None:
        """The newest order of that symbol with that clientOrderId, query-shaped, or None."""
        account = self.ledger.account(account_id)
        found = None
        for order in account.orders.values():
            if order.symbol == symbol and order.client_order_id == client_order_id:
                found = order
        return self.render.order(found) if found else None

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
        account = self.ledger.account(account_id)
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
            out.append(self.render.trade(t))
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
        account = self.ledger.account(account_id)
        out = []
        for sym, order_id, coid in account.history:
            if sym != symbol:
                continue
            order = account.orders.get((sym, order_id))
            out.append(
                self.render.order(order)
                if order is not None
                else {"symbol": sym, "orderId": order_id, "clientOrderId": coid, "status": "PURGED"}
            )
        return out[-limit:] if limit else out

    def account(self, account_id: str, now_ms: int) -> dict:
        """GET /api/v3/account (spot) or GET /fapi/v2/account (usdm)."""
        return self.render.account(self.ledger.account(account_id), now_ms)

    def position_risk(self, account_id: str, symbol: str | None, marks: dict[str, int]) -> list[dict]:
        """GET /fapi/v2/positionRisk: one entry per symbol (or just ``symbol``), marks in price units."""
        if self.market != "usdm":
            raise SimApiError(-1000, "positionRisk is a USD-M endpoint.")
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        account = self.ledger.account(account_id)
        names = [symbol] if symbol is not None else list(self.symbols)
        return self.render.position_risk(account, names, marks)

    # ------------------------------------------------------------------ the market moves

    def on_market(self, book_view: BookView, now_ms: int) -> None:
        """Fill resting orders of ``book_view.symbol`` that the market now crosses, at their limit price."""
        filters = self.symbols.get(book_view.symbol)
        if filters is None:
            return
        ledger = self.ledger
        ledger.set_mark(book_view.symbol, book_view.mark_price())
        resting = ledger.resting(book_view.symbol)
        if not resting:
            return
        touched: dict[str, bool] = {}
        for side, levels in (("BUY", book_view.asks()), ("SELL", book_view.bids())):
            candidates = by_priority([(a, o) for a, o in resting if o.side == side])
            if not candidates:
                continue
            pool = CrossingPool(candidates[0][1], levels)
            for account_id, order in candidates:
                account = ledger.account(account_id)
                qty = min(order.remaining, pool.available(order))
                if order.reduce_only:
                    qty = self._reduce_only_room(account, order, qty, now_ms)
                if qty <= 0:
                    continue
                pool.take(qty)
                self._execute(account, filters, order, order.price, qty, maker=True, now_ms=now_ms)
                touched[account_id] = True
        for account_id in touched:
            self._emit_account(account_id, ledger.account(account_id), filters, now_ms, traded=True)

    def drain_user_events(self) -> list[tuple[str, dict]]:
        """(account_id, event) pairs queued since the last drain, in the order they happened."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ lifecycle steps

    def _reduce_only_room(self, account: Account, order: Order, qty: int, now_ms: int) -> int:
        """Clamp a reduce-only fill to the position; expire the order if it can no longer reduce."""
        pos = self.ledger.position(account, order.symbol)
        if pos.size == 0 or sign(pos.size) == order.direction:
            self._finish(account, order, "EXPIRED", now_ms)
            return 0
        return min(qty, abs(pos.size))

    def _execute(
        self, account: Account, f: SymbolFilters, order: Order, price: int, qty: int, *, maker: bool, now_ms: int
    ) -> Fill:
        """Apply one fill to the order, the balances and the position, and queue its event."""
        fee, realized = self.ledger.settle(account, f, order, price, qty, maker=maker, now_ms=now_ms)
        trade_id = self._next_trade_id[f.symbol]
        self._next_trade_id[f.symbol] = trade_id + 1
        order.executed_qty += qty
        order.cum_quote += price * qty
        order.update_time = now_ms
        if order.remaining == 0:
            order.status = "FILLED"
            self.ledger.close(account, order)
        else:
            order.status = "PARTIALLY_FILLED"
        fill = Fill(price, qty, trade_id, fee, realized, maker)
        self.ledger.add_trade(
            account, Trade(f.symbol, trade_id, order.order_id, order.side, price, qty, fee, realized, maker, now_ms)
        )
        self._emit_order(order, "TRADE", now_ms, fill)
        return fill

    def _finish(self, account: Account, order: Order, status: str, now_ms: int) -> None:
        order.status = status
        order.update_time = now_ms
        self.ledger.close(account, order)
        self._emit_order(order, status, now_ms)

    def _emit_order(self, order: Order, execution: str, now_ms: int, fill: Fill | None = None) -> None:
        self._events.append((order.account_id, self.render.order_event(order, execution, now_ms, fill)))

    def _emit_account(self, account_id: str, account: Account, f: SymbolFilters, now_ms: int, *, traded: bool) -> None:
        event = self.render.account_event(account, f, now_ms, traded=traded)
        if event is not None:
            self._events.append((account_id, event))
