"""exchangeInfo: the symbols the simulator serves, their filters and trading status, as Binance shows them.

A ``symbol_status`` fault changes a symbol's status (HALT, BREAK, ...) while it is armed: the
document says so and new orders are refused as Binance refuses them (cancels still work).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from epochbot.model.numeric import format_units
from epochbot.sim.auth import SimApiError
from epochbot.sim.clock import now_ms
from epochbot.sim.faults import FaultBoard
from epochbot.sim.market import SymbolSpec, fixed

__all__ = ["ExchangeInfo"]


class ExchangeInfo:
    """The exchangeInfo document of one market and each symbol's trading status."""

    def __init__(self, *, market: str, weight_limit: int, specs: dict[str, SymbolSpec], faults: FaultBoard) -> None:
        self._market = market
        self._weight_limit = weight_limit
        self._specs = specs
        self._faults = faults

    def symbol_status(self, symbol: str) -> str:
        """The symbol's exchangeInfo status: TRADING unless a ``symbol_status`` fault says otherwise."""
        fault = self._faults.active("symbol_status", symbol) if self._faults.faults else None
        return str(fault.params.get("status", "HALT")) if fault is not None else "TRADING"

    def refuse_unless_trading(self, symbol: str) -> None:
        """New orders on a symbol outside TRADING fail as Binance fails them (cancels never call this)."""
        if self.symbol_status(symbol) == "TRADING":
            return
        if self._market == "spot":
            raise SimApiError(-2010, "Market is closed.")
        raise SimApiError(-1122, "Invalid symbol status.")

    def document(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The GET exchangeInfo body (also the WebSocket API's exchangeInfo result).

        Spot takes Binance's filters (rest-api.md "Exchange information"): ``symbol``, ``symbols``
        (a JSON array, or its text as the query string and Binance's SDK carry it),
        ``permissions`` (one value or a JSON array), ``symbolStatus`` and ``showPermissionSets``;
        an unknown symbol is -1121, ``symbol`` with ``symbols`` or either with ``permissions``/
        ``symbolStatus`` -1128. USD-M's exchangeInfo takes no parameter: any is ignored."""
        spot = self._market == "spot"
        limit = self._weight_limit
        if spot and params:
            names, show_sets = self._selection(params)
        else:
            names, show_sets = list(self._specs), True
        symbols = [self._symbol_info(self._specs[name]) for name in names]
        if not show_sets:
            for info in symbols:
                info["permissionSets"] = []
        if spot:
            return {
                "timezone": "UTC",
                "serverTime": now_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                    # 300,000 per 5 minutes since 2026-04-02
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        assets = sorted({s.quote_asset for s in self._specs.values()})
        return {
            "timezone": "UTC",
            "serverTime": now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets],
            "symbols": symbols,
        }

    def _selection(self, params: Mapping[str, Any]) -> tuple[list[str], bool]:
        """The served symbols spot's filters select, and whether permissionSets are shown."""
        symbol = params.get("symbol")
        symbols = _names(params.get("symbols"), "symbols")
        permissions = _names(params.get("permissions"), "permissions")
        status = params.get("symbolStatus")
        if symbol is not None and symbols is not None:
            raise SimApiError(-1128, "Combination of optional parameters invalid.")
        if (symbol is not None or symbols is not None) and (permissions is not None or status is not None):
            raise SimApiError(-1128, "Combination of optional parameters invalid.")
        wanted = [str(symbol)] if symbol is not None else symbols
        if wanted is not None:
            names = [w.upper() for w in wanted]
            if not names or any(n not in self._specs for n in names):
                raise SimApiError(-1121, "Invalid symbol.")
        else:
            names = list(self._specs)
        if status is not None:
            if status not in ("TRADING", "HALT", "BREAK"):
                raise SimApiError(-1122, "Invalid symbolStatus.")
            names = [n for n in names if self.symbol_status(n) == status]
        if permissions is not None and "SPOT" not in {p.upper() for p in permissions}:
            names = []  # every served symbol has the single permission set [["SPOT"]]
        show = params.get("showPermissionSets", True)
        return list(dict.fromkeys(names)), show not in (False, "false")

    def _symbol_info(self, s: SymbolSpec) -> dict[str, Any]:
        pd, qd = s.price_decimals, s.qty_decimals
        if self._market == "spot":
            return {
                "symbol": s.symbol,
                "status": self.symbol_status(s.symbol),
                "baseAsset": s.base_asset,
                "baseAssetPrecision": 8,
                "quoteAsset": s.quote_asset,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True,
                "cancelReplaceAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": fixed(s.tick_units, pd),
                        "maxPrice": fixed(1_000_000 * 10**pd, pd),
                        "tickSize": fixed(s.tick_units, pd),
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": fixed(s.min_qty_units, qd),
                        "maxQty": fixed(s.max_qty_units, qd),
                        "stepSize": fixed(s.step_units, qd),
                    },
                    {"filterType": "ICEBERG_PARTS", "limit": 100},  # 100 since 2026-03-12
                    {
                        "filterType": "MARKET_LOT_SIZE",
                        "minQty": fixed(0, qd),
                        "maxQty": fixed(s.market_max_qty_units, qd),
                        "stepSize": fixed(0, qd),
                    },
                    {
                        "filterType": "TRAILING_DELTA",
                        "minTrailingAboveDelta": 10,
                        "maxTrailingAboveDelta": 2000,
                        "minTrailingBelowDelta": 10,
                        "maxTrailingBelowDelta": 2000,
                    },
                    {
                        "filterType": "PERCENT_PRICE_BY_SIDE",
                        "bidMultiplierUp": "5",
                        "bidMultiplierDown": "0.2",
                        "askMultiplierUp": "5",
                        "askMultiplierDown": "0.2",
                        "avgPriceMins": 5,
                    },
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": fixed(s.min_notional_units, pd),
                        "applyMinToMarket": True,
                        "maxNotional": fixed(9_000_000 * 10**pd, pd),
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            }
        return {
            "symbol": s.symbol,
            "pair": s.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": self.symbol_status(s.symbol),
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": s.base_asset,
            "quoteAsset": s.quote_asset,
            "marginAsset": s.quote_asset,
            "pricePrecision": pd,
            "quantityPrecision": qd,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": format_units(s.tick_units, pd),
                    "maxPrice": format_units(1_000_000 * 10**pd, pd),
                    "tickSize": fixed(s.tick_units, pd),
                },
                {
                    "filterType": "LOT_SIZE",
                    "stepSize": fixed(s.step_units, qd),
                    "maxQty": format_units(s.max_qty_units, qd),
                    "minQty": fixed(s.min_qty_units, qd),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "stepSize": fixed(s.step_units, qd),
                    "maxQty": format_units(s.market_max_qty_units, qd),
                    "minQty": fixed(s.min_qty_units, qd),
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                # (MAX_NUM_ALGO_ORDERS is gone since 2025-12-31: 200 conditional orders across symbols)
                {"filterType": "MIN_NOTIONAL", "notional": format_units(s.min_notional_units, pd)},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": [
                "LIMIT",
                "MARKET",
                "STOP",
                "STOP_MARKET",
                "TAKE_PROFIT",
                "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET",
            ],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }


def _names(value: Any, name: str) -> list[str] | None:
    """A list parameter as Binance takes it: a JSON array, the text of one (``["A","B"]``, what
    the query string and Binance's SDK carry), or a single bare value."""
    if value is None:
        return None
    if isinstance(value, list):
        items: Any = value
    elif isinstance(value, str) and value.startswith("["):
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise SimApiError(-1100, f"Illegal characters found in parameter '{name}'.") from None
    else:
        items = [value]
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise SimApiError(-1100, f"Illegal characters found in parameter '{name}'.")
    return items
