"""REST market data: ping, time, exchangeInfo, depth (with its faults), klines, premiumIndex."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from epochbot.sim.auth import SimApiError
from epochbot.sim.candles import Candles
from epochbot.sim.clock import now_ms
from epochbot.sim.exchange_info import ExchangeInfo
from epochbot.sim.faults import FaultBoard, stale_time
from epochbot.sim.market import SymbolMarket, fixed
from epochbot.sim.rest import optional_symbol, required_symbol
from epochbot.sim.streams import KlineState

__all__ = ["MarketRest"]


class MarketRest:
    """The public market-data endpoints of one market.

    The REST depth snapshot is where the snapshot faults act: ``snapshot_slow`` (the answer
    comes ``ms`` later), ``snapshot_fail`` (an error status), ``snapshot_ratelimit`` (429/418
    with Retry-After) and ``crossed_snapshot`` (best bid >= best ask); ``stale`` lags its E/T.
    """

    def __init__(
        self,
        *,
        market: str,
        weight_limit: int,
        markets: dict[str, SymbolMarket],
        candles: Candles,
        exchange_info: ExchangeInfo,
        faults: FaultBoard,
    ) -> None:
        self._market = market
        self._weight_limit = weight_limit
        self._markets = markets
        self._candles = candles
        self._exchange_info = exchange_info
        self._faults = faults

    def add_routes(self, router: web.UrlDispatcher) -> None:
        v = "/api/v3" if self._market == "spot" else "/fapi/v1"
        router.add_get(f"{v}/ping", self._ping)
        router.add_get(f"{v}/time", self._time)
        router.add_get(f"{v}/exchangeInfo", self._exchange_info_route)
        router.add_get(f"{v}/depth", self._depth)
        router.add_get(f"{v}/klines", self._klines)

    def add_usdm_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/fapi/v1/premiumIndex", self._premium_index)

    def depth_snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        """The REST depth body for a symbol right now (also used by tests for comparisons)."""
        m = self._markets[symbol]
        last, bids, asks = m.snapshot(limit)
        pd, qd = m.price_decimals, m.qty_decimals
        body: dict[str, Any] = {"lastUpdateId": last}
        if self._market == "usdm":
            now = stale_time(self._faults, symbol, now_ms())
            body["E"] = now
            body["T"] = now
        body["bids"] = [[fixed(p, pd), fixed(q, qd)] for p, q in bids]
        body["asks"] = [[fixed(p, pd), fixed(q, qd)] for p, q in asks]
        return body

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": now_ms()})

    async def _exchange_info_route(self, request: web.Request) -> web.Response:
        body = self._exchange_info.document(request.query)
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _depth(self, request: web.Request) -> web.Response:
        sym = required_symbol(request, self._markets)
        spot = self._market == "spot"
        try:
            limit = int(request.query.get("limit", "100" if spot else "500"))
        except ValueError:
            raise SimApiError(
                -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
            ) from None
        if spot:
            limit = max(1, min(limit, 5000))
        elif limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise SimApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        faults = self._faults
        f = faults.take("snapshot_slow", sym)
        if f is not None:
            await asyncio.sleep(float(f.params.get("ms", 0)) / 1000.0)
        f = faults.take("snapshot_fail", sym)
        if f is not None:
            status = int(f.params.get("status", 503))
            return web.json_response(
                {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
                status=status,
            )
        f = faults.take("snapshot_ratelimit", sym)
        if f is not None:
            status = int(f.params.get("status", 429))
            if status == 418:
                msg = (
                    f"Way too much request weight used; IP banned until {now_ms() + 120_000}. "
                    "Please use the websocket for live updates to avoid bans."
                )
            else:
                msg = f"Too many requests; current limit of IP(127.0.0.1) is {self._weight_limit} requests per minute."
            return web.json_response(
                {"code": -1003, "msg": msg},
                status=status,
                headers={"Retry-After": str(int(f.params.get("retry_after", 10)))},
            )
        body = self.depth_snapshot(sym, limit)
        if faults.take("crossed_snapshot", sym) and body["asks"]:
            best_ask = body["asks"][0][0]
            body["bids"].insert(0, [best_ask, body["bids"][0][1] if body["bids"] else body["asks"][0][1]])
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _klines(self, request: web.Request) -> web.Response:
        sym = required_symbol(request, self._markets)
        if request.query.get("interval") != "1m":
            raise SimApiError(-1120, "Invalid interval.")
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            raise SimApiError(-1100, "Illegal characters found in parameter 'limit'.") from None
        m = self._markets[sym]
        try:
            start = int(request.query["startTime"]) if "startTime" in request.query else None
            end = int(request.query["endTime"]) if "endTime" in request.query else None
        except ValueError:
            raise SimApiError(-1100, "Illegal characters found in parameter 'startTime'.") from None
        limit = max(1, min(limit, 1500))
        history = self._candles.history(sym)
        if start is None and end is None:
            rows = [k.as_array(m.price_decimals, m.qty_decimals) for k in list(history)[-limit:]]
        else:  # Binance: the oldest `limit` candles from startTime (the newest up to endTime without it)
            kept = [k for k in history if (start is None or k.open_ms >= start) and (end is None or k.open_ms <= end)]
            kept = kept[:limit] if start is not None else kept[-limit:]
            rows = [k.as_array(m.price_decimals, m.qty_decimals) for k in kept]
            return web.Response(body=orjson.dumps(rows), content_type="application/json")
        if not rows:
            p = m.last_trade_price
            now = now_ms()
            rows = [KlineState(now - now % 60_000, p, p, p, p).as_array(m.price_decimals, m.qty_decimals)]
        return web.Response(body=orjson.dumps(rows), content_type="application/json")

    async def _premium_index(self, request: web.Request) -> web.Response:
        sym = optional_symbol(request, self._markets)
        now = now_ms()
        nxt = (now // 28_800_000 + 1) * 28_800_000

        def one(s: str) -> dict[str, Any]:
            m = self._markets[s]
            pd = m.price_decimals
            return {
                "symbol": s,
                "markPrice": fixed(m.mark_price(), pd),
                "indexPrice": fixed(m.index_price(), pd),
                "estimatedSettlePrice": fixed(m.index_price(), pd),
                "lastFundingRate": "0.00010000",
                "interestRate": "0.00010000",
                "nextFundingTime": nxt,
                "time": now,
            }

        body = one(sym) if sym else [one(s) for s in self._markets]
        return web.Response(body=orjson.dumps(body), content_type="application/json")
