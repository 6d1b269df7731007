"""`PaperVenue`: one simulated Binance market (spot or USD-M) holding paper accounts and their orders.

Theory of operation
-------------------
``PaperVenue`` is a pure state machine. Requests arrive as Binance's own string parameters
plus the current time (``now_ms``) and a read-only view of the simulated market (``BookView``);
each call returns a Binance-shaped, JSON-ready dict or raises ``SimApiError`` and leaves the
state untouched. User-data events (spot ``executionReport``/``outboundAccountPosition``,
USD-M ``ORDER_TRADE_UPDATE``/``ACCOUNT_UPDATE``/``ALGO_UPDATE``) are queued and handed out by
``drain_user_events``. No I/O, no clock, no randomness: equal inputs give equal outputs.

The venue wires its parts and keeps the order lifecycles: `validate` (parameters to an order),
`algo` (conditional orders' parameters and triggers), `settings` (USD-M account settings),
`Countdowns` (the dead-man switch), `book` (what liquidity an order takes), `Ledger` (accounts,
balances, margin, positions) and `Renderer` (the JSON). Order lifecycle (one place, a table)::

    accepted ──► NEW ──► PARTIALLY_FILLED ──► FILLED
       │          │            │
       │          └────────────┴──► CANCELED (cancel_order, countdownCancelAll) / EXPIRED (IOC,
       │                                       FOK, MARKET remainder; reduce-only that can no
       │                                       longer reduce)
       └──► rejected: SimApiError, nothing recorded, no event

A remainder of a LIMIT GTC/GTX/LIMIT_MAKER order rests; ``on_market`` fills resting orders
*at their limit price* (maker fee) once the market crosses them. The taker pays
``taker_fee_bps``.

USD-M conditional orders (the Algo Service, ``place_algo``) and their ``ALGO_UPDATE`` statuses::

    accepted ──► NEW ──► TRIGGERING ──► TRIGGERED ──► FINISHED (its order filled, canceled or expired)
                  │           │
                  │           └──► REJECTED (the matching engine refused the order: margin,
                  │                           reduce-only, notional; ``rm`` says why)
                  └──► CANCELED (cancel_algo, cancel_all_algos)

``on_market`` checks every open conditional order of the symbol against the price it watches
(the mark price for ``workingType=MARK_PRICE``, the last trade price for CONTRACT_PRICE) before
filling resting orders; a trigger places the child order (MARKET, or LIMIT at ``price`` for
STOP/TAKE_PROFIT; ``closePosition`` takes the whole position of its side; reduce-only never
grows a position) into the matching engine with the algo's ``clientAlgoId`` as client order id,
in this order of events: ALGO_UPDATE TRIGGERING, the order's ORDER_TRADE_UPDATEs and
ACCOUNT_UPDATE, ALGO_UPDATE TRIGGERED, and ALGO_UPDATE FINISHED once the order is closed.
``on_clock`` fires the countdowns that ran out: every open regular order of the symbol is
canceled (conditional orders are not).

Simplifications (documented decisions)
--------------------------------------
- Spot commission is always charged in the quote asset (Binance charges a buyer in the base
  asset).
- USD-M cross and isolated positions draw on one available balance (see `ledger`).
- USD-M POST /fapi/v1/order always answers with the post-match state (like
  ``newOrderRespType=RESULT``). A GTX order that would take is rejected with -5022 and is not
  recorded (Binance: "the Post Only order will be rejected ... will not be recorded").
- MARKET notional filters use the book's mark price; spot ``quoteOrderQty`` is not supported.
- Duplicate ``newClientOrderId`` is checked against the account's *open* orders.
"""

from __future__ import annotations

from epochbot.model.numeric import parse_units
from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.algo import child_order_type, fires, protected, validate_algo, watched_price
from epochbot.sim.matching.book import CrossingPool, by_priority, sweep
from epochbot.sim.matching.countdown import Countdowns
from epochbot.sim.matching.ledger import Ledger
from epochbot.sim.matching.records import (
    DEFAULT_STARTING_BALANCES,
    FIRST_ALGO_ID,
    FIRST_ORDER_ID,
    FIRST_TRADE_ID,
    MAX_CLOSED_ORDERS_PER_ACCOUNT,
    Account,
    AlgoOrder,
    BookView,
    Fill,
    Market,
    Order,
    SymbolFilters,
    Trade,
    sign,
)
from epochbot.sim.matching.render import Renderer
from epochbot.sim.matching.settings import (
    change_leverage,
    change_margin_type,
    change_multi_assets,
    change_position_mode,
)
from epochbot.sim.matching.validate import missing, symbol_filters, validate_new

__all__ = ["PaperVenue"]

REDUCE_ONLY_REJECT = "Reduce Only reject"  # ``rm`` of a trigger the matching engine refused as reduce-only


class PaperVenue:
    """One simulated Binance market (spot or USD-M) holding paper accounts and their orders.

    Accounts are created on first use with ``starting_balances`` (spot default
    USDT 100000 / BTC 1 / ETH 10; USD-M default USDT 100000 wallet), in one-way mode unless
    ``hedge_mode`` (USD-M ``dualSidePosition=true`` from the start).
    """

    def __init__(
        self,
        market: Market,
        symbols: dict[str, SymbolFilters],
        *,
        maker_fee_bps: int = 2,
        taker_fee_bps: int = 4,
        starting_balances: dict[str, str] | None = None,
        hedge_mode: bool = False,
    ) -> None:
        if market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', not {market!r}")
        if maker_fee_bps < 0 or taker_fee_bps < 0:
            raise ValueError("fees must be non-negative basis points")
        if hedge_mode and market != "usdm":
            raise ValueError("hedge mode is a USD-M setting")
        self.market: Market = market
        self.symbols = dict(symbols)
        self.hedge_mode = hedge_mode
        self.ledger = Ledger(
            market,
            self.symbols,
            maker_fee_bps=maker_fee_bps,
            taker_fee_bps=taker_fee_bps,
            starting_balances=starting_balances if starting_balances is not None else DEFAULT_STARTING_BALANCES[market],
            hedge_mode=hedge_mode,
        )
        self.render = Renderer(self.ledger)
        self.countdowns = Countdowns()
        self._next_order_id = {s: FIRST_ORDER_ID for s in self.symbols}
        self._next_trade_id = {s: FIRST_TRADE_ID for s in self.symbols}
        self._next_algo_id = FIRST_ALGO_ID  # one sequence: the algo endpoints name an order without its symbol
        self._last_price: dict[str, int] = {}
        self._cancel_seq = 0
        self._events: list[tuple[str, dict]] = []
        self._watching: dict[str, list[AlgoOrder]] = {s: [] for s in self.symbols}  # NEW algos, by symbol
        self._told_later: list[AlgoOrder] = []  # algos whose status changed in a fill: told after its account event

    @property
    def maker_fee_bps(self) -> int:
        return self.ledger.maker_fee_bps

    @property
    def taker_fee_bps(self) -> int:
        return self.ledger.taker_fee_bps

    @property
    def money_decimals(self) -> int:
        return self.ledger.money_decimals

    def _account(self, account_id: str) -> Account:
        return self.ledger.account(account_id)

    def _usdm(self, what: str) -> None:
        if self.market != "usdm":
            raise SimApiError(-1000, f"{what} is a USD-M endpoint.")

    # ------------------------------------------------------------------ orders

    def place_order(self, account_id: str, params: dict[str, str], book_view: BookView, now_ms: int) -> dict:
        """POST /api/v3/order (spot) or POST /fapi/v1/order (usdm)."""
        ledger = self.ledger
        account = self._account(account_id)
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
        fills = self._submit(account, filters, order, book_view, now_ms)
        self._flush_finished(now_ms)
        return self.render.new_order_response(order, fills, resp_type, now_ms)

    def _submit(
        self, account: Account, filters: SymbolFilters, order: Order, book_view: BookView, now_ms: int
    ) -> list[Fill]:
        """Match a checked order against the visible market and record it; SimApiError (nothing
        recorded) when it is post-only and would take or the account cannot pay for it."""
        ledger = self.ledger
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
        self._emit_account(order.account_id, account, filters, now_ms, traded=bool(fills), side=order.position_side)
        return fills

    def cancel_order(self, account_id: str, params: dict[str, str], now_ms: int) -> dict:
        """DELETE /api/v3/order (spot) or DELETE /fapi/v1/order (usdm)."""
        account = self._account(account_id)
        filters = symbol_filters(self.symbols, params)
        order = self.ledger.lookup(account, filters.symbol, params)
        if order is None or not order.is_open:
            raise SimApiError(-2011, "Unknown order sent.")
        self._finish(account, order, "CANCELED", now_ms)
        self._emit_account(account_id, account, filters, now_ms, traded=False)
        self._flush_finished(now_ms)
        if self.market == "usdm":
            return self.render.usdm_order(order, with_time=False)
        self._cancel_seq += 1
        return self.render.spot_cancel(
            order, params.get("newClientOrderId") or f"sim-cancel-{self._cancel_seq}", now_ms
        )

    def cancel_all_orders(self, account_id: str, params: dict[str, str], now_ms: int) -> dict:
        """DELETE /fapi/v1/allOpenOrders: every open regular order of the symbol (not conditional ones)."""
        self._usdm("allOpenOrders")
        account = self._account(account_id)
        filters = symbol_filters(self.symbols, params)
        self._cancel_open(account, filters, now_ms)
        self._flush_finished(now_ms)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _cancel_open(self, account: Account, filters: SymbolFilters, now_ms: int) -> None:
        for order in [o for o in account.orders.values() if o.is_open and o.symbol == filters.symbol]:
            self._finish(account, order, "CANCELED", now_ms)

    def query_order(self, account_id: str, params: dict[str, str]) -> dict:
        """GET /api/v3/order (spot) or GET /fapi/v1/order (usdm)."""
        account = self._account(account_id)
        filters = symbol_filters(self.symbols, params)
        order = self.ledger.lookup(account, filters.symbol, params)
        if order is None:
            raise SimApiError(-2013, "Order does not exist.")
        return self.render.order(order)

    def open_orders(self, account_id: str, symbol: str | None) -> list[dict]:
        """GET /api/v3/openOrders or /fapi/v1/openOrders, oldest first."""
        account = self._account(account_id)
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        return [
            self.render.order(o)
            for o in account.orders.values()
            if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def find_order(self, account_id: str, symbol: str, client_order_id: str) -> dict | None:
        """The newest order of that symbol with that clientOrderId, query-shaped, or None."""
        account = self._account(account_id)
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
        account = self._account(account_id)
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

    # ------------------------------------------------------------------ account

    def account(self, account_id: str, now_ms: int, *, version: int = 2) -> dict:
        """GET /api/v3/account (spot), GET /fapi/v2/account or (``version=3``) /fapi/v3/account."""
        account = self._account(account_id)
        if self.market == "usdm" and version == 3:
            return self.render.usdm_account_v3(account, now_ms)
        return self.render.account(account, now_ms)

    def position_risk(
        self, account_id: str, symbol: str | None, marks: dict[str, int], *, version: int = 2
    ) -> list[dict]:
        """GET /fapi/v2/positionRisk (``version=3``: /fapi/v3/positionRisk), marks in price units."""
        self._usdm("positionRisk")
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        account = self._account(account_id)
        names = [symbol] if symbol is not None else list(self.symbols)
        if version == 3:
            return self.render.position_risk_v3(account, names, marks)
        return self.render.position_risk(account, names, marks)

    def change_leverage(self, account_id: str, params: dict[str, str]) -> dict:
        """POST /fapi/v1/leverage."""
        self._usdm("leverage")
        return change_leverage(self.ledger, self._account(account_id), symbol_filters(self.symbols, params), params)

    def change_margin_type(self, account_id: str, params: dict[str, str]) -> dict:
        """POST /fapi/v1/marginType."""
        self._usdm("marginType")
        return change_margin_type(self._account(account_id), symbol_filters(self.symbols, params), params)

    def position_mode(self, account_id: str) -> dict:
        """GET /fapi/v1/positionSide/dual."""
        self._usdm("positionSide/dual")
        return {"dualSidePosition": self._account(account_id).dual_side}

    def change_position_mode(self, account_id: str, params: dict[str, str]) -> dict:
        """POST /fapi/v1/positionSide/dual."""
        self._usdm("positionSide/dual")
        return change_position_mode(self._account(account_id), params)

    def multi_assets_mode(self, account_id: str) -> dict:
        """GET /fapi/v1/multiAssetsMargin."""
        self._usdm("multiAssetsMargin")
        return {"multiAssetsMargin": self._account(account_id).multi_assets}

    def change_multi_assets_mode(self, account_id: str, params: dict[str, str]) -> dict:
        """POST /fapi/v1/multiAssetsMargin."""
        self._usdm("multiAssetsMargin")
        return change_multi_assets(self._account(account_id), params)

    def account_config(self, account_id: str) -> dict:
        """GET /fapi/v1/accountConfig."""
        self._usdm("accountConfig")
        return self.render.account_config(self._account(account_id))

    def symbol_config(self, account_id: str, symbol: str | None) -> list[dict]:
        """GET /fapi/v1/symbolConfig (every symbol, or just ``symbol``)."""
        self._usdm("symbolConfig")
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        names = [symbol] if symbol is not None else list(self.symbols)
        return self.render.symbol_config(self._account(account_id), names)

    # ------------------------------------------------------------------ the dead-man switch

    def countdown_cancel_all(self, account_id: str, params: dict[str, str], now_ms: int) -> dict:
        """POST /fapi/v1/countdownCancelAll: arm, renew (or with 0, stop) the symbol's countdown."""
        self._usdm("countdownCancelAll")
        self._account(account_id)
        filters = symbol_filters(self.symbols, params)
        text = params.get("countdownTime")
        if text is None or text == "":
            raise missing("countdownTime")
        if not text.isdigit():
            raise SimApiError(
                -1100, "Illegal characters found in parameter 'countdownTime'; legal range is '^[0-9]{1,20}$'."
            )
        countdown = int(text)
        self.countdowns.arm(account_id, filters.symbol, countdown, now_ms)
        return {"symbol": filters.symbol, "countdownTime": str(countdown)}

    def on_clock(self, symbol: str, now_ms: int) -> None:
        """Time passed on ``symbol`` (the market generator's step, running or paused): fire the
        countdowns that ran out, canceling the symbol's open regular orders of those accounts."""
        filters = self.symbols.get(symbol)
        if filters is None:
            return
        for account_id in self.countdowns.due(symbol, now_ms):
            self._cancel_open(self._account(account_id), filters, now_ms)
        self._flush_finished(now_ms)

    # ------------------------------------------------------------------ the Algo Service

    def place_algo(self, account_id: str, params: dict[str, str], book_view: BookView, now_ms: int) -> dict:
        """POST /fapi/v1/algoOrder (and the WebSocket API's ``algoOrder.place``)."""
        self._usdm("algoOrder")
        account = self._account(account_id)
        filters = symbol_filters(self.symbols, params)
        if book_view.symbol != filters.symbol:
            raise ValueError(f"book for {book_view.symbol} passed for an order on {filters.symbol}")
        mark = book_view.mark_price()
        self.ledger.set_mark(filters.symbol, mark)
        last = self._last_price[filters.symbol] = book_view.last_trade_price
        algo = validate_algo(
            account, account_id, filters, params, algo_id=self._next_algo_id, mark=mark, last=last, now_ms=now_ms
        )
        self._next_algo_id += 1
        fires(algo, watched_price(algo, mark, last))  # a trailing order starts from the price now
        account.algo_orders[algo.algo_id] = algo
        self._watching[algo.symbol].append(algo)
        self._forget_closed_algos(account)
        self._emit_algo(algo, now_ms)
        return self.render.algo_placed(algo)

    def _lookup_algo(self, account: Account, params: dict[str, str]) -> AlgoOrder | None:
        algo_id_text = params.get("algoId")
        client_id = params.get("clientAlgoId")
        if not algo_id_text and not client_id:
            raise SimApiError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        if algo_id_text:
            if not algo_id_text.isdigit():
                raise SimApiError(
                    -1100, "Illegal characters found in parameter 'algoId'; legal range is '^[0-9]{1,20}$'."
                )
            algo = account.algo_orders.get(int(algo_id_text))
            if algo is not None and client_id and algo.client_algo_id != client_id:
                return None
            return algo
        found = None  # a client id may be reused once its order closed: prefer the open one, else the newest
        for algo in account.algo_orders.values():
            if algo.client_algo_id == client_id and (found is None or not found.is_open):
                found = algo
        return found

    def cancel_algo(self, account_id: str, params: dict[str, str], now_ms: int) -> dict:
        """DELETE /fapi/v1/algoOrder (and ``algoOrder.cancel``): only a not yet triggered order."""
        self._usdm("algoOrder")
        account = self._account(account_id)
        algo = self._lookup_algo(account, params)
        if algo is None or not algo.is_open:
            raise SimApiError(-2011, "Unknown order sent.")
        self._close_algo(algo, "CANCELED", now_ms)
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}

    def cancel_all_algos(self, account_id: str, params: dict[str, str], now_ms: int) -> dict:
        """DELETE /fapi/v1/algoOpenOrders: every open conditional order of the symbol."""
        self._usdm("algoOpenOrders")
        account = self._account(account_id)
        filters = symbol_filters(self.symbols, params)
        for algo in [a for a in account.algo_orders.values() if a.is_open and a.symbol == filters.symbol]:
            self._close_algo(algo, "CANCELED", now_ms)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def query_algo(self, account_id: str, params: dict[str, str]) -> dict:
        """GET /fapi/v1/algoOrder."""
        self._usdm("algoOrder")
        account = self._account(account_id)
        algo = self._lookup_algo(account, params)
        if algo is None:
            raise SimApiError(-2013, "Order does not exist.")
        return self.render.algo_query(algo, self._child(account, algo))

    def open_algos(self, account_id: str, symbol: str | None, params: dict[str, str]) -> list[dict]:
        """GET /fapi/v1/openAlgoOrders: the account's conditional orders not yet triggered, oldest
        first (``algoType``, ``algoId`` narrow the list)."""
        self._usdm("openAlgoOrders")
        if symbol is not None and symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        algo_type = params.get("algoType")
        if algo_type and algo_type != "CONDITIONAL":
            raise SimApiError(-1130, "Data sent for parameter 'algoType' is not valid.")
        algo_id = params.get("algoId")
        account = self._account(account_id)
        return [
            self.render.algo_listed(a, None)
            for a in account.algo_orders.values()
            if a.is_open and (symbol is None or a.symbol == symbol) and (not algo_id or str(a.algo_id) == algo_id)
        ]

    def all_algos(
        self,
        account_id: str,
        symbol: str,
        *,
        algo_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[dict]:
        """GET /fapi/v1/allAlgoOrders: ``algoId`` gives the orders from that id on, else the most
        recent ones (within ``startTime``/``endTime`` when given), oldest first."""
        self._usdm("allAlgoOrders")
        if symbol not in self.symbols:
            raise SimApiError(-1121, "Invalid symbol.")
        if not 1 <= limit <= 1000:
            raise SimApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        if start_time is not None and end_time is not None and end_time < start_time:
            raise SimApiError(-1023, "Start time is greater than end time.")
        account = self._account(account_id)
        rows = [a for a in account.algo_orders.values() if a.symbol == symbol]
        if algo_id is not None:
            rows = [a for a in rows if a.algo_id >= algo_id][:limit]
        else:
            rows = [
                a
                for a in rows
                if (start_time is None or a.create_time >= start_time)
                and (end_time is None or a.create_time <= end_time)
            ][-limit:]
        return [self.render.algo_listed(a, self._child(account, a)) for a in rows]

    def _child(self, account: Account, algo: AlgoOrder) -> Order | None:
        if not algo.actual_order_id:
            return None
        return account.orders.get((algo.symbol, algo.actual_order_id))

    def _close_algo(self, algo: AlgoOrder, status: str, now_ms: int, reason: str = "") -> None:
        algo.status = status
        algo.update_time = now_ms
        if reason:
            algo.fail_reason = reason
        self._emit_algo(algo, now_ms)

    def _forget_closed_algos(self, account: Account) -> None:
        """Keep at most the closed-order cap of closed conditional orders (the oldest go first)."""
        closed = [i for i, a in account.algo_orders.items() if not a.is_open and a.status != "TRIGGERED"]
        for algo_id in closed[: max(0, len(closed) - MAX_CLOSED_ORDERS_PER_ACCOUNT)]:
            del account.algo_orders[algo_id]

    def _trigger_algos(self, book_view: BookView, now_ms: int) -> None:
        """Trigger every open conditional order of the symbol whose watched price has been reached,
        oldest first."""
        symbol = book_view.symbol
        mark = self.ledger.mark(symbol, 0)
        last = self._last_price[symbol] = book_view.last_trade_price
        watching = self._watching[symbol] = [a for a in self._watching[symbol] if a.status == "NEW"]
        due = [a for a in watching if not protected(a, mark, last) and fires(a, watched_price(a, mark, last))]
        for algo in due:
            if algo.status == "NEW":  # an earlier trigger's fill may have expired it (GTE_GTC)
                self._trigger(self._account(algo.account_id), algo, book_view, now_ms)

    def _trigger(self, account: Account, algo: AlgoOrder, book_view: BookView, now_ms: int) -> None:
        """TRIGGERING, then the child order into the matching engine: TRIGGERED (and FINISHED once
        the child is closed), or REJECTED with the matching engine's reason."""
        f = self.symbols[algo.symbol]
        algo.status = "TRIGGERING"
        algo.trigger_time = algo.update_time = now_ms
        self._emit_algo(algo, now_ms)
        try:
            order = self._child_order(account, f, algo, now_ms)
            self._submit(account, f, order, book_view, now_ms)
        except SimApiError as e:
            self._close_algo(algo, "REJECTED", now_ms, REDUCE_ONLY_REJECT if e.code == -2022 else e.msg)
            return
        algo.status = "TRIGGERED"
        algo.actual_order_id = order.order_id
        algo.actual_type = order.type
        self._emit_algo(algo, now_ms)
        if not order.is_open:
            self._close_algo(algo, "FINISHED", now_ms)
        self._flush_finished(now_ms)

    def _child_order(self, account: Account, f: SymbolFilters, algo: AlgoOrder, now_ms: int) -> Order:
        """The order a trigger places, or SimApiError as the matching engine would refuse it."""
        order_type = child_order_type(algo.order_type)
        pos = self.ledger.position(account, f.symbol, algo.position_side)
        direction = algo.direction
        reduces = (
            algo.reduce_only
            or algo.close_position
            or (algo.position_side, algo.side)
            in (
                ("LONG", "SELL"),
                ("SHORT", "BUY"),
            )
        )
        qty = abs(pos.size) if algo.close_position else algo.quantity
        if reduces and (pos.size == 0 or sign(pos.size) == direction or qty > abs(pos.size) or qty == 0):
            raise SimApiError(-2022, "ReduceOnly Order is rejected.")
        if not reduces:
            ref = algo.price or self.ledger.mark(f.symbol, 0)
            if ref * qty < parse_units(f.min_notional, f.price_decimals + f.qty_decimals):
                raise SimApiError(
                    -4164, f"Order's notional must be no smaller than {f.min_notional} (unless you choose reduce only)."
                )
        return Order(
            account_id=algo.account_id,
            symbol=f.symbol,
            order_id=self._next_order_id[f.symbol],
            client_order_id=algo.client_algo_id,
            side=algo.side,
            type=order_type,
            time_in_force=algo.time_in_force if order_type == "LIMIT" and algo.time_in_force != "GTE_GTC" else "GTC",
            price=algo.price if order_type == "LIMIT" else 0,
            orig_qty=qty,
            reduce_only=algo.reduce_only or (algo.close_position and algo.position_side == "BOTH"),
            time=now_ms,
            update_time=now_ms,
            position_side=algo.position_side,
            close_position=algo.close_position,
            algo_id=algo.algo_id,
            orig_type=algo.order_type,
            stop_price=algo.trigger_price,
            working_type=algo.working_type,
            price_protect=algo.price_protect,
        )

    # ------------------------------------------------------------------ the market moves

    def on_market(self, book_view: BookView, now_ms: int) -> None:
        """The market of ``book_view.symbol`` moved: trigger the conditional orders its prices
        reached, then fill resting orders it now crosses, at their limit price."""
        filters = self.symbols.get(book_view.symbol)
        if filters is None:
            return
        ledger = self.ledger
        ledger.set_mark(book_view.symbol, book_view.mark_price())
        if self.market == "usdm":
            self._trigger_algos(book_view, now_ms)
        resting = ledger.resting(book_view.symbol)
        if not resting:
            return
        self._fill_resting(filters, book_view, resting, now_ms)
        self._flush_finished(now_ms)

    def _fill_resting(
        self, filters: SymbolFilters, book_view: BookView, resting: list[tuple[str, Order]], now_ms: int
    ) -> None:
        ledger = self.ledger
        touched: dict[tuple[str, str], Account] = {}
        for side, levels in (("BUY", book_view.asks()), ("SELL", book_view.bids())):
            candidates = by_priority([(a, o) for a, o in resting if o.side == side])
            if not candidates:
                continue
            pool = CrossingPool(candidates[0][1], levels)
            for account_id, order in candidates:
                if not order.is_open:
                    continue
                account = self._account(account_id)
                qty = min(order.remaining, pool.available(order))
                if not ledger.adds_exposure(order):
                    qty = self._reduce_only_room(account, order, qty, now_ms)
                if qty <= 0:
                    continue
                pool.take(qty)
                self._execute(account, filters, order, order.price, qty, maker=True, now_ms=now_ms)
                touched[(account_id, order.position_side)] = account
        for (account_id, position_side), account in touched.items():
            self._emit_account(account_id, account, filters, now_ms, traded=True, side=position_side)

    def drain_user_events(self) -> list[tuple[str, dict]]:
        """(account_id, event) pairs queued since the last drain, in the order they happened."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ lifecycle steps

    def _reduce_only_room(self, account: Account, order: Order, qty: int, now_ms: int) -> int:
        """Clamp a reducing fill to the position; expire the order if it can no longer reduce."""
        pos = self.ledger.position(account, order.symbol, order.position_side)
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
            account,
            Trade(
                f.symbol,
                trade_id,
                order.order_id,
                order.side,
                price,
                qty,
                fee,
                realized,
                maker,
                now_ms,
                order.position_side,
            ),
        )
        self._emit_order(order, "TRADE", now_ms, fill)
        if order.remaining == 0:
            self._child_closed(account, order, now_ms)
        if self.ledger.position(account, f.symbol, order.position_side).size == 0:
            self._expire_with_position(account, f.symbol, order.position_side, now_ms)
        return fill

    def _finish(self, account: Account, order: Order, status: str, now_ms: int) -> None:
        order.status = status
        order.update_time = now_ms
        self.ledger.close(account, order)
        self._emit_order(order, status, now_ms)
        self._child_closed(account, order, now_ms)

    def _child_closed(self, account: Account, order: Order, now_ms: int) -> None:
        """A triggered conditional order's child closed: its algo order becomes FINISHED once the
        fills' ACCOUNT_UPDATE is out (`_flush_finished`; a child closed while its trigger is still
        being handled is finished there)."""
        if not order.algo_id:
            return
        algo = account.algo_orders.get(order.algo_id)
        if algo is not None and algo.status == "TRIGGERED":
            self._tell_later(algo, "FINISHED", now_ms)

    def _expire_with_position(self, account: Account, symbol: str, side: str, now_ms: int) -> None:
        """The position of (symbol, side) closed: its GTE_GTC conditional orders are EXPIRED."""
        for algo in account.algo_orders.values():
            if (
                algo.status == "NEW"
                and algo.time_in_force == "GTE_GTC"
                and (algo.symbol, algo.position_side) == (symbol, side)
            ):
                self._tell_later(algo, "EXPIRED", now_ms)

    def _tell_later(self, algo: AlgoOrder, status: str, now_ms: int) -> None:
        algo.status = status
        algo.update_time = now_ms
        self._told_later.append(algo)

    def _flush_finished(self, now_ms: int) -> None:
        """The ALGO_UPDATEs of the status changes a fill made, after the fill's own events."""
        told, self._told_later = self._told_later, []
        for algo in told:
            self._emit_algo(algo, now_ms)

    def _emit_order(self, order: Order, execution: str, now_ms: int, fill: Fill | None = None) -> None:
        self._events.append((order.account_id, self.render.order_event(order, execution, now_ms, fill)))

    def _emit_algo(self, algo: AlgoOrder, now_ms: int) -> None:
        account = self.ledger.account(algo.account_id)
        self._events.append((algo.account_id, self.render.algo_event(algo, self._child(account, algo), now_ms)))

    def _emit_account(
        self, account_id: str, account: Account, f: SymbolFilters, now_ms: int, *, traded: bool, side: str = "BOTH"
    ) -> None:
        event = self.render.account_event(account, f, now_ms, traded=traded, side=side)
        if event is not None:
            self._events.append((account_id, event))
