"""Wire rendering: the matching engine's records as Binance's JSON (REST answers and user-data events).

Strings are exact decimals: prices and quantities padded to the venue's decimals (spot to 8,
like Binance), money at the ledger's scale padded to 8 and longer only when the exact value
needs it, ratios (average prices) rounded half-even. Rendering reads the `Ledger` and changes
nothing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from epochbot.model.numeric import format_units
from epochbot.sim.matching.algo import child_order_type
from epochbot.sim.matching.ledger import BINANCE_MIN_DECIMALS, Ledger
from epochbot.sim.matching.records import (
    Account,
    AlgoOrder,
    Fill,
    Order,
    Position,
    PositionKey,
    SymbolFilters,
    Trade,
    max_notional,
)

__all__ = ["Renderer", "fmt_padded", "fmt_ratio"]


def fmt_padded(units: int, decimals: int, min_decimals: int) -> str:
    """Exact decimal string with at least ``min_decimals`` fractional digits."""
    text = format_units(units, decimals)
    whole, _, frac = text.partition(".")
    if len(frac) < min_decimals:
        frac = frac.ljust(min_decimals, "0")
    return f"{whole}.{frac}" if frac else whole


def fmt_ratio(numerator: int, denominator: int, scale: int, places: int) -> str:
    """``numerator / denominator * 10**-scale`` rounded half-even to ``places`` decimals."""
    if denominator == 0 or numerator == 0:
        return "0." + "0" * places if places else "0"
    with localcontext() as ctx:
        ctx.prec = 60
        value = (Decimal(numerator) / Decimal(denominator)).scaleb(-scale)
        return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


class Renderer:
    """Binance's JSON shapes for one market, from the ledger's records."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.market = ledger.market
        self.symbols = ledger.symbols

    def money(self, units: int) -> str:
        """Money units as Binance prints them (at least 8 decimals)."""
        return fmt_padded(units, self._ledger.money_decimals, BINANCE_MIN_DECIMALS)

    def trade(self, t: Trade) -> dict:
        """One row of GET /fapi/v1/userTrades (usdm) or GET /api/v3/myTrades (spot)."""
        f = self.symbols[t.symbol]
        notional_decimals = f.price_decimals + f.qty_decimals
        if self.market == "usdm":
            return {
                "buyer": t.side == "BUY",
                "commission": self.money(t.commission),
                "commissionAsset": f.quote_asset,
                "id": t.trade_id,
                "maker": t.maker,
                "orderId": t.order_id,
                "price": fmt_padded(t.price, f.price_decimals, f.price_decimals),
                "qty": fmt_padded(t.qty, f.qty_decimals, f.qty_decimals),
                "quoteQty": fmt_padded(t.price * t.qty, notional_decimals, notional_decimals),
                "realizedPnl": self.money(t.realized_pnl),
                "side": t.side,
                "positionSide": t.position_side,
                "symbol": t.symbol,
                "time": t.time,
            }
        return {
            "symbol": t.symbol,
            "id": t.trade_id,
            "orderId": t.order_id,
            "orderListId": -1,
            "price": fmt_padded(t.price, f.price_decimals, 8),
            "qty": fmt_padded(t.qty, f.qty_decimals, 8),
            "quoteQty": fmt_padded(t.price * t.qty, notional_decimals, 8),
            "commission": self.money(t.commission),
            "commissionAsset": f.quote_asset,
            "time": t.time,
            "isBuyer": t.side == "BUY",
            "isMaker": t.maker,
            "isBestMatch": True,
        }

    def _position_keys(self, account: Account, names: list[str]) -> list[PositionKey]:
        sides = self._ledger.position_sides(account)
        return [(name, side) for name in names for side in sides]

    def _position_core(self, account: Account, key: PositionKey, marks: dict[str, int]) -> dict:
        """What /fapi/v2 and /fapi/v3 positionRisk rows share, for one (symbol, positionSide)."""
        name, side = key
        f = self.symbols[name]
        ledger = self._ledger
        pos = ledger.position(account, name, side)
        mark = marks.get(name, ledger.mark(name, 0))
        upnl = ledger.unrealized(f, pos, mark)
        iwallet = ledger.isolated_wallet(account, f, pos)
        return {
            "symbol": name,
            "positionSide": side,
            "positionAmt": fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
            "entryPrice": self.entry_price(f, pos),
            "breakEvenPrice": self.entry_price(f, pos),
            "markPrice": fmt_padded(mark, f.price_decimals, 8),
            "unRealizedProfit": self.money(upnl),
            "liquidationPrice": self.liquidation_price(account, key),
            "isolatedMargin": self.money(iwallet + upnl if iwallet else 0),
            "notional": fmt_padded(pos.size * mark, f.price_decimals + f.qty_decimals, 8),
            "isolatedWallet": self.money(iwallet) if iwallet else "0",
            "updateTime": pos.update_time,
        }

    def position_risk(self, account: Account, names: list[str], marks: dict[str, int]) -> list[dict]:
        """GET /fapi/v2/positionRisk rows for ``names`` (one per symbol in one-way mode, LONG and
        SHORT in hedge mode); ``marks`` (price units) win over the last seen."""
        out = []
        for key in self._position_keys(account, names):
            leverage = self._ledger.leverage(account, key[0])
            core = self._position_core(account, key, marks)
            out.append(
                {
                    **core,
                    "leverage": str(leverage),
                    "maxNotionalValue": str(max_notional(leverage)),
                    "marginType": "isolated" if self._ledger.isolated(account, key[0]) else "cross",
                    "isAutoAddMargin": "false",
                }
            )
        return out

    def position_risk_v3(self, account: Account, names: list[str], marks: dict[str, int]) -> list[dict]:
        """GET /fapi/v3/positionRisk: only the positions that are open or have open orders."""
        ledger = self._ledger
        out = []
        for key in self._position_keys(account, names):
            name, side = key
            pos = ledger.position(account, name, side)
            order_im = ledger.open_order_margin(account, name, side)
            has_orders = any(
                o.is_open and o.symbol == name and o.position_side == side for o in account.orders.values()
            )
            if not pos.size and not has_orders:
                continue
            f = self.symbols[name]
            _, position_im, maint = ledger.position_margin(account, key)
            out.append(
                {
                    **self._position_core(account, key, marks),
                    "marginAsset": f.quote_asset,
                    "initialMargin": self.money(position_im + order_im),
                    "maintMargin": self.money(maint),
                    "positionInitialMargin": self.money(position_im),
                    "openOrderInitialMargin": self.money(order_im),
                    "adl": 0,
                    "bidNotional": "0",
                    "askNotional": "0",
                }
            )
        return out

    def liquidation_price(self, account: Account, key: PositionKey) -> str:
        """The position's liquidation price (`Ledger.liquidation_price`) at the symbol's price
        decimals, rounded half-even; "0" when it has none."""
        ratio = self._ledger.liquidation_price(account, key)
        if ratio is None:
            return "0"
        f = self.symbols[key[0]]
        return fmt_ratio(ratio[0], ratio[1], f.price_decimals, f.price_decimals)

    def entry_price(self, f: SymbolFilters, pos: Position) -> str:
        """The position's average entry price, Binance-style (trailing zeros cut to the tick)."""
        if pos.size == 0:
            return fmt_padded(0, f.price_decimals, f.price_decimals)
        text = fmt_ratio(pos.cost, abs(pos.size), f.price_decimals, f.price_decimals + 4)
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0").ljust(f.price_decimals, "0")
        return f"{whole}.{frac}" if frac else whole

    def _spot_order_core(self, o: Order) -> dict:
        f = self.symbols[o.symbol]
        return {
            "price": fmt_padded(o.price, f.price_decimals, 8),
            "origQty": fmt_padded(o.orig_qty, f.qty_decimals, 8),
            "executedQty": fmt_padded(o.executed_qty, f.qty_decimals, 8),
            "cummulativeQuoteQty": fmt_padded(o.cum_quote, f.price_decimals + f.qty_decimals, 8),
            "status": o.status,
            "timeInForce": o.time_in_force,
            "type": o.type,
            "side": o.side,
        }

    def spot_cancel(self, o: Order, client_order_id: str, now_ms: int) -> dict:
        """The answer to a spot DELETE /api/v3/order (``clientOrderId`` names the cancel request)."""
        return {
            "symbol": o.symbol,
            "origClientOrderId": o.client_order_id,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": client_order_id,
            "transactTime": now_ms,
            **self._spot_order_core(o),
            "selfTradePreventionMode": "NONE",
        }

    def usdm_order(self, o: Order, *, with_time: bool) -> dict:
        """A USD-M order: with ``time`` for queries, with ``cumQty`` for placement and cancel answers."""
        f = self.symbols[o.symbol]
        notional_decimals = f.price_decimals + f.qty_decimals
        out = {
            "orderId": o.order_id,
            "symbol": o.symbol,
            "status": o.status,
            "clientOrderId": o.client_order_id,
            "price": fmt_padded(o.price, f.price_decimals, f.price_decimals),
            "avgPrice": fmt_ratio(o.cum_quote, o.executed_qty, f.price_decimals, f.price_decimals + 3),
            "origQty": fmt_padded(o.orig_qty, f.qty_decimals, f.qty_decimals),
            "executedQty": fmt_padded(o.executed_qty, f.qty_decimals, f.qty_decimals),
            "cumQty": fmt_padded(o.executed_qty, f.qty_decimals, f.qty_decimals),
            "cumQuote": fmt_padded(o.cum_quote, notional_decimals, notional_decimals),
            "timeInForce": o.time_in_force,
            "type": o.type,
            "reduceOnly": o.reduce_only,
            "closePosition": o.close_position,
            "side": o.side,
            "positionSide": o.position_side,
            "stopPrice": fmt_padded(o.stop_price, f.price_decimals, f.price_decimals) if o.stop_price else "0",
            "workingType": o.working_type,
            "priceProtect": o.price_protect,
            "origType": o.orig_type or o.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "updateTime": o.update_time,
        }
        if with_time:
            out["time"] = o.time
            del out["cumQty"]  # GET /fapi/v1/order has no cumQty
        return out

    def order(self, o: Order) -> dict:
        """GET /api/v3/order or GET /fapi/v1/order shape."""
        if self.market == "usdm":
            return self.usdm_order(o, with_time=True)
        f = self.symbols[o.symbol]
        return {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_order_id,
            **self._spot_order_core(o),
            "stopPrice": fmt_padded(0, f.price_decimals, 8),
            "icebergQty": fmt_padded(0, f.qty_decimals, 8),
            "time": o.time,
            "updateTime": o.update_time,
            "isWorking": True,
            "workingTime": o.time,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE",
        }

    def new_order_response(self, o: Order, fills: list[Fill], resp_type: str, now_ms: int) -> dict:
        """The answer to a new order (spot by ``newOrderRespType``; USD-M always the post-match state)."""
        if self.market == "usdm":
            return self.usdm_order(o, with_time=False)
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
                    "price": fmt_padded(x.price, f.price_decimals, 8),
                    "qty": fmt_padded(x.qty, f.qty_decimals, 8),
                    "commission": self.money(x.commission),
                    "commissionAsset": f.quote_asset,
                    "tradeId": x.trade_id,
                }
                for x in fills
            ]
        return out

    def account(self, account: Account, now_ms: int) -> dict:
        """GET /api/v3/account (spot) or GET /fapi/v2/account (usdm)."""
        if self.market == "spot":
            return self._spot_account(account, now_ms)
        return self._usdm_account(account, now_ms)

    def _spot_account(self, account: Account, now_ms: int) -> dict:
        locked = self._ledger.locked(account)
        rate = lambda bps: fmt_padded(bps, 4, 8)  # noqa: E731 - bps -> "0.00020000"
        return {
            "makerCommission": self._ledger.maker_fee_bps,
            "takerCommission": self._ledger.taker_fee_bps,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": rate(self._ledger.maker_fee_bps),
                "taker": rate(self._ledger.taker_fee_bps),
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
                    "free": self.money(total - locked.get(asset, 0)),
                    "locked": self.money(locked.get(asset, 0)),
                }
                for asset, total in account.balances.items()
            ],
            "permissions": ["SPOT"],
            "uid": 0,
        }

    def _usdm_assets(self, account: Account, t: dict[str, int], *, v3: bool) -> list[dict]:
        m = self.money
        out = []
        for asset, wallet in account.balances.items():
            row: dict[str, str | bool | int] = {
                "asset": asset,
                "walletBalance": m(wallet),
                "unrealizedProfit": m(t["unrealized"]),
                "marginBalance": m(wallet + t["unrealized"]),
                "maintMargin": m(t["maint"]),
                "initialMargin": m(t["position_im"] + t["order_im"]),
                "positionInitialMargin": m(t["position_im"]),
                "openOrderInitialMargin": m(t["order_im"]),
                "crossWalletBalance": m(wallet),
                "crossUnPnl": m(t["unrealized"]),
                "availableBalance": m(t["available"]),
                "maxWithdrawAmount": m(max(0, min(wallet, t["available"]))),
            }
            if not v3:
                row["marginAvailable"] = True
            row["updateTime"] = account.update_time
            out.append(row)
        return out

    def _usdm_totals_fields(self, t: dict[str, int]) -> dict:
        m = self.money
        return {
            "totalInitialMargin": m(t["position_im"] + t["order_im"]),
            "totalMaintMargin": m(t["maint"]),
            "totalWalletBalance": m(t["wallet"]),
            "totalUnrealizedProfit": m(t["unrealized"]),
            "totalMarginBalance": m(t["wallet"] + t["unrealized"]),
            "totalPositionInitialMargin": m(t["position_im"]),
            "totalOpenOrderInitialMargin": m(t["order_im"]),
            "totalCrossWalletBalance": m(t["wallet"]),
            "totalCrossUnPnl": m(t["unrealized"]),
            "availableBalance": m(t["available"]),
            "maxWithdrawAmount": m(max(0, min(t["wallet"], t["available"]))),
        }

    def _usdm_account(self, account: Account, now_ms: int) -> dict:
        """GET /fapi/v2/account: every symbol's position rows (per side in hedge mode)."""
        ledger = self._ledger
        t = ledger.usdm_totals(account)
        m = self.money
        positions = []
        for key in self._position_keys(account, list(self.symbols)):
            name, side = key
            f = self.symbols[name]
            pos = ledger.position(account, name, side)
            upnl, position_im, maint = ledger.position_margin(account, key)
            order_im = ledger.open_order_margin(account, name, side)
            leverage = ledger.leverage(account, name)
            positions.append(
                {
                    "symbol": name,
                    "initialMargin": m(position_im + order_im),
                    "maintMargin": m(maint),
                    "unrealizedProfit": m(upnl),
                    "positionInitialMargin": m(position_im),
                    "openOrderInitialMargin": m(order_im),
                    "leverage": str(leverage),
                    "isolated": ledger.isolated(account, name),
                    "entryPrice": self.entry_price(f, pos),
                    "breakEvenPrice": self.entry_price(f, pos),
                    "maxNotional": str(max_notional(leverage)),
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": side,
                    "positionAmt": fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
                    "updateTime": pos.update_time,
                }
            )
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": False,
            "canWithdraw": False,
            "updateTime": 0,
            "multiAssetsMargin": account.multi_assets,
            "tradeGroupId": -1,
            **self._usdm_totals_fields(t),
            "assets": self._usdm_assets(account, t, v3=False),
            "positions": positions,
        }

    def usdm_account_v3(self, account: Account, now_ms: int) -> dict:
        """GET /fapi/v3/account: only positions that are open or have open orders, v3's fields."""
        ledger = self._ledger
        t = ledger.usdm_totals(account)
        positions = []
        for row in self.position_risk_v3(account, list(self.symbols), {}):
            positions.append(
                {
                    "symbol": row["symbol"],
                    "positionSide": row["positionSide"],
                    "positionAmt": row["positionAmt"],
                    "unrealizedProfit": row["unRealizedProfit"],
                    "isolatedMargin": row["isolatedMargin"],
                    "notional": row["notional"],
                    "isolatedWallet": row["isolatedWallet"],
                    "initialMargin": row["initialMargin"],
                    "maintMargin": row["maintMargin"],
                    "updateTime": row["updateTime"],
                }
            )
        return {
            **self._usdm_totals_fields(t),
            "assets": self._usdm_assets(account, t, v3=True),
            "positions": positions,
        }

    def account_config(self, account: Account) -> dict:
        """GET /fapi/v1/accountConfig."""
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": False,
            "canWithdraw": False,
            "dualSidePosition": account.dual_side,
            "updateTime": 0,
            "multiAssetsMargin": account.multi_assets,
            "tradeGroupId": -1,
        }

    def symbol_config(self, account: Account, names: list[str]) -> list[dict]:
        """GET /fapi/v1/symbolConfig."""
        out = []
        for name in names:
            leverage = self._ledger.leverage(account, name)
            out.append(
                {
                    "symbol": name,
                    "marginType": "ISOLATED" if self._ledger.isolated(account, name) else "CROSSED",
                    "isAutoAddMargin": False,
                    "leverage": leverage,
                    "maxNotionalValue": str(max_notional(leverage)),
                }
            )
        return out

    def order_event(self, o: Order, execution: str, now_ms: int, fill: Fill | None = None) -> dict:
        """Spot ``executionReport`` or USD-M ``ORDER_TRADE_UPDATE`` for one step of an order."""
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
                "q": fmt_padded(o.orig_qty, f.qty_decimals, 8),
                "p": fmt_padded(o.price, f.price_decimals, 8),
                "P": "0.00000000",
                "F": "0.00000000",
                "g": -1,
                "C": o.client_order_id if execution == "CANCELED" else "",
                "x": execution,
                "X": o.status,
                "r": "NONE",
                "i": o.order_id,
                "l": fmt_padded(last_qty, f.qty_decimals, 8),
                "z": fmt_padded(o.executed_qty, f.qty_decimals, 8),
                "L": fmt_padded(last_price, f.price_decimals, 8),
                "n": self.money(fill.commission) if fill else "0",
                "N": f.quote_asset if fill else None,
                "T": now_ms,
                "t": fill.trade_id if fill else -1,
                "I": 0,
                "w": o.is_open,
                "m": fill.maker if fill else False,
                "M": False,
                "O": o.time,
                "Z": fmt_padded(o.cum_quote, f.price_decimals + f.qty_decimals, 8),
                "Y": fmt_padded(last_qty * last_price, f.price_decimals + f.qty_decimals, 8),
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
                    "q": fmt_padded(o.orig_qty, f.qty_decimals, f.qty_decimals),
                    "p": fmt_padded(o.price, f.price_decimals, f.price_decimals),
                    "ap": fmt_ratio(o.cum_quote, o.executed_qty, f.price_decimals, f.price_decimals + 3),
                    "sp": fmt_padded(o.stop_price, f.price_decimals, f.price_decimals) if o.stop_price else "0",
                    "x": execution,
                    "X": o.status,
                    "i": o.order_id,
                    "l": fmt_padded(fill.qty if fill else 0, f.qty_decimals, f.qty_decimals),
                    "z": fmt_padded(o.executed_qty, f.qty_decimals, f.qty_decimals),
                    "L": fmt_padded(fill.price if fill else 0, f.price_decimals, f.price_decimals),
                    "N": f.quote_asset,
                    "n": self.money(fill.commission) if fill else "0",
                    "T": now_ms,
                    "t": fill.trade_id if fill else 0,
                    "b": "0",
                    "a": "0",
                    "m": fill.maker if fill else False,
                    "R": o.reduce_only,
                    "wt": o.working_type,
                    "ot": o.orig_type or o.type,
                    "ps": o.position_side,
                    "cp": o.close_position,
                    "rp": self.money(fill.realized_pnl) if fill else "0",
                    "pP": o.price_protect,
                    "si": 0,
                    "ss": 0,
                    "V": "NONE",
                    "pm": "NONE",
                    "gtd": 0,
                },
            }
        return event

    def account_event(
        self, account: Account, f: SymbolFilters, now_ms: int, *, traded: bool, side: str = "BOTH"
    ) -> dict | None:
        """Spot: outboundAccountPosition after any balance/lock change. USD-M: ACCOUNT_UPDATE after fills,
        with the position of the side that traded (None: nothing to tell)."""
        if self.market == "spot":
            locked = self._ledger.locked(account)
            return {
                "e": "outboundAccountPosition",
                "E": now_ms,
                "u": account.update_time or now_ms,
                "B": [
                    {
                        "a": asset,
                        "f": self.money(account.balances.get(asset, 0) - locked.get(asset, 0)),
                        "l": self.money(locked.get(asset, 0)),
                    }
                    for asset in (f.base_asset, f.quote_asset)
                ],
            }
        if not traded:
            return None
        ledger = self._ledger
        pos = ledger.position(account, f.symbol, side)
        mark = ledger.mark(f.symbol, 0)
        wallet = account.balances.get(f.quote_asset, 0)
        iwallet = ledger.isolated_wallet(account, f, pos)
        return {
            "e": "ACCOUNT_UPDATE",
            "E": now_ms,
            "T": now_ms,
            "a": {
                "m": "ORDER",
                "B": [{"a": f.quote_asset, "wb": self.money(wallet), "cw": self.money(wallet), "bc": "0"}],
                "P": [
                    {
                        "s": f.symbol,
                        "pa": fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
                        "ep": self.entry_price(f, pos),
                        "bep": self.entry_price(f, pos),
                        "cr": "0",
                        "up": self.money(ledger.unrealized(f, pos, mark)),
                        "mt": "isolated" if ledger.isolated(account, f.symbol) else "cross",
                        "iw": self.money(iwallet) if iwallet else "0",
                        "ps": side,
                    }
                ],
            },
        }

    # ------------------------------------------------------------------ the Algo Service

    def _algo_core(self, a: AlgoOrder) -> dict:
        f = self.symbols[a.symbol]
        return {
            "algoId": a.algo_id,
            "clientAlgoId": a.client_algo_id,
            "algoType": "CONDITIONAL",
            "orderType": a.order_type,
            "symbol": a.symbol,
            "side": a.side,
            "positionSide": a.position_side,
            "timeInForce": a.time_in_force,
            "quantity": fmt_padded(a.quantity, f.qty_decimals, f.qty_decimals),
            "algoStatus": a.status,
        }

    def _algo_prices(self, a: AlgoOrder) -> dict:
        f = self.symbols[a.symbol]
        pd = f.price_decimals
        return {
            "triggerPrice": fmt_padded(a.trigger_price, pd, pd),
            "price": fmt_padded(a.price, pd, pd),
            "icebergQuantity": None,
        }

    def _algo_flags(self, a: AlgoOrder) -> dict:
        return {
            "selfTradePreventionMode": a.self_trade_prevention,
            "workingType": a.working_type,
            "priceMatch": "NONE",
            "closePosition": a.close_position,
            "priceProtect": a.price_protect,
            "reduceOnly": a.reduce_only,
        }

    def _algo_times(self, a: AlgoOrder) -> dict:
        return {
            "createTime": a.create_time,
            "updateTime": a.update_time,
            "triggerTime": a.trigger_time,
            "goodTillDate": 0,
        }

    def _trailing(self, a: AlgoOrder) -> dict:
        if a.order_type != "TRAILING_STOP_MARKET":
            return {"activatePrice": "", "callbackRate": ""}
        pd = self.symbols[a.symbol].price_decimals
        return {
            "activatePrice": fmt_padded(a.activate_price, pd, pd) if a.activate_price else "",
            "callbackRate": fmt_padded(a.callback_bps, 2, 1),
        }

    def _actual(self, a: AlgoOrder, child: Order | None) -> dict:
        f = self.symbols[a.symbol]
        pd = f.price_decimals
        return {
            "actualOrderId": str(a.actual_order_id) if a.actual_order_id else "",
            "actualPrice": fmt_ratio(child.cum_quote, child.executed_qty, pd, pd) if child else fmt_padded(0, pd, pd),
        }

    def algo_placed(self, a: AlgoOrder) -> dict:
        """The answer to POST /fapi/v1/algoOrder (and ``algoOrder.place``)."""
        return {
            **self._algo_core(a),
            **self._algo_prices(a),
            **self._algo_flags(a),
            **self._trailing(a),
            **self._algo_times(a),
        }

    def algo_query(self, a: AlgoOrder, child: Order | None) -> dict:
        """GET /fapi/v1/algoOrder."""
        f = self.symbols[a.symbol]
        actual_qty = child.executed_qty if child else a.quantity
        return {
            **self._algo_core(a),
            **self._actual(a, child),
            "actualType": a.actual_type or child_order_type(a.order_type),
            "actualQty": fmt_padded(actual_qty, f.qty_decimals, f.qty_decimals),
            **self._algo_prices(a),
            "tpOrderType": "",
            **self._algo_flags(a),
            **self._algo_times(a),
        }

    def algo_listed(self, a: AlgoOrder, child: Order | None) -> dict:
        """A row of GET /fapi/v1/openAlgoOrders and /fapi/v1/allAlgoOrders."""
        pd = self.symbols[a.symbol].price_decimals
        zero = fmt_padded(0, pd, pd)
        return {
            **self._algo_core(a),
            **self._actual(a, child),
            **self._algo_prices(a),
            "tpTriggerPrice": zero,
            "tpPrice": zero,
            "slTriggerPrice": zero,
            "slPrice": zero,
            "tpOrderType": "",
            **self._algo_flags(a),
            **self._algo_times(a),
        }

    def algo_event(self, a: AlgoOrder, child: Order | None, now_ms: int) -> dict:
        """The ``ALGO_UPDATE`` user-data event of the algo order's current status."""
        f = self.symbols[a.symbol]
        pd, qd = f.price_decimals, f.qty_decimals
        o: dict = {
            "caid": a.client_algo_id,
            "aid": a.algo_id,
            "at": "CONDITIONAL",
            "o": a.order_type,
            "s": a.symbol,
            "S": a.side,
            "ps": a.position_side,
            "f": a.time_in_force,
            "q": fmt_padded(a.quantity, qd, qd),
            "X": a.status,
            "ai": str(a.actual_order_id) if a.actual_order_id else "",
        }
        if a.status != "TRIGGERING":  # Binance's TRIGGERING events carry no matching-engine fields
            o["ap"] = fmt_ratio(child.cum_quote, child.executed_qty, pd, pd) if child else fmt_padded(0, pd, pd)
            o["aq"] = fmt_padded(child.executed_qty if child else 0, qd, qd)
            o["act"] = a.actual_type or "0"
        o.update(
            {
                "tp": fmt_padded(a.trigger_price, pd, pd),
                "p": fmt_padded(a.price, pd, pd) if a.price else "0",
                "V": a.self_trade_prevention,
                "wt": a.working_type,
                "pm": "NONE",
                "cp": a.close_position,
                "pP": a.price_protect,
                "R": a.reduce_only,
                "tt": a.trigger_time,
                "gtd": 0,
            }
        )
        if a.fail_reason:
            o["rm"] = a.fail_reason
        if a.order_type == "TRAILING_STOP_MARKET":
            o["ia"] = a.activated
        return {"e": "ALGO_UPDATE", "T": now_ms, "E": now_ms, "o": o}
