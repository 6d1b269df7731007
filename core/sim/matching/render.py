"""Wire rendering: the matching engine's records as Binance's JSON (REST answers and user-data events).

Strings are exact decimals: prices and quantities padded to the venue's decimals (spot to 8,
like Binance), money at the ledger's scale padded to 8 and longer only when the exact value
needs it, ratios (average prices) rounded half-even. Rendering reads the `Ledger` and changes
nothing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from epochbot.model.numeric import format_units
from epochbot.sim.matching.ledger import BINANCE_MIN_DECIMALS, Ledger
from epochbot.sim.matching.records import LEVERAGE, Account, Fill, Order, Position, SymbolFilters, Trade

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
                "positionSide": "BOTH",
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

    def position_risk(self, account: Account, names: list[str], marks: dict[str, int]) -> list[dict]:
        """GET /fapi/v2/positionRisk rows for ``names``; ``marks`` (price units) win over the last seen."""
        out = []
        for name in names:
            f = self.symbols[name]
            pos = account.positions.get(name, Position())
            mark = marks.get(name, self._ledger.mark(name, 0))
            notional_units = pos.size * mark
            out.append(
                {
                    "symbol": name,
                    "positionAmt": fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
                    "entryPrice": self.entry_price(f, pos),
                    "breakEvenPrice": self.entry_price(f, pos),
                    "markPrice": fmt_padded(mark, f.price_decimals, 8),
                    "unRealizedProfit": self.money(self._ledger.unrealized(f, pos, mark)),
                    "liquidationPrice": "0",
                    "leverage": str(LEVERAGE),
                    "maxNotionalValue": "1000000",
                    "marginType": "cross",
                    "isolatedMargin": "0.00000000",
                    "isAutoAddMargin": "false",
                    "positionSide": "BOTH",
                    "notional": fmt_padded(notional_units, f.price_decimals + f.qty_decimals, 8),
                    "isolatedWallet": "0",
                    "updateTime": pos.update_time,
                }
            )
        return out

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

    def _usdm_account(self, account: Account, now_ms: int) -> dict:
        t = self._ledger.usdm_totals(account)
        m = self.money
        positions = []
        for name, f in self.symbols.items():
            pos = account.positions.get(name, Position())
            mark = self._ledger.mark(name, 0)
            order_im = self._ledger.open_order_margin(account, name)
            positions.append(
                {
                    "symbol": name,
                    "initialMargin": m(self._ledger.margin(f, abs(pos.size) * mark) + order_im),
                    "maintMargin": m(0),
                    "unrealizedProfit": m(self._ledger.unrealized(f, pos, mark)),
                    "positionInitialMargin": m(self._ledger.margin(f, abs(pos.size) * mark)),
                    "openOrderInitialMargin": m(order_im),
                    "leverage": str(LEVERAGE),
                    "isolated": False,
                    "entryPrice": self.entry_price(f, pos),
                    "breakEvenPrice": self.entry_price(f, pos),
                    "maxNotional": "1000000",
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": "BOTH",
                    "positionAmt": fmt_padded(pos.size, f.qty_decimals, f.qty_decimals),
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
                    "sp": "0",
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
                    "wt": "CONTRACT_PRICE",
                    "ot": o.type,
                    "ps": "BOTH",
                    "cp": False,
                    "rp": self.money(fill.realized_pnl) if fill else "0",
                    "pP": False,
                    "si": 0,
                    "ss": 0,
                    "V": "NONE",
                    "pm": "NONE",
                    "gtd": 0,
                },
            }
        return event

    def account_event(self, account: Account, f: SymbolFilters, now_ms: int, *, traded: bool) -> dict | None:
        """Spot: outboundAccountPosition after any balance/lock change. USD-M: ACCOUNT_UPDATE after fills
        (None: nothing to tell)."""
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
        pos = account.positions.get(f.symbol, Position())
        mark = self._ledger.mark(f.symbol, 0)
        wallet = account.balances.get(f.quote_asset, 0)
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
                        "up": self.money(self._ledger.unrealized(f, pos, mark)),
                        "mt": "cross",
                        "iw": "0",
                        "ps": "BOTH",
                    }
                ],
            },
        }
