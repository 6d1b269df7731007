"""The simulator's trade-history and order-history endpoints, read through the order gateway.

USD-M ``GET /fapi/v1/userTrades`` and spot ``GET /api/v3/myTrades`` (signed; symbol, startTime,
fromId, limit; Binance's response shapes), ``allOrders``, GET order by ``orderId`` and USD-M
``positionRisk`` - what the runtime uses at start to import fills it never stored.
"""

from __future__ import annotations

import aiohttp
import pytest

from epochbot.runtime.inbox import Inbox
from epochbot.runtime.order_gateway import OrderGateway
from epochbot.sim.auth import DEFAULT_API_KEY, DEFAULT_SECRET
from epochbot.sim.server import SimConfig, SimExchange
from epochbot.venues.binance.rest import RestClient, RestError

USDM_KEYS = {
    "buyer",
    "commission",
    "commissionAsset",
    "id",
    "maker",
    "orderId",
    "price",
    "qty",
    "quoteQty",
    "realizedPnl",
    "side",
    "positionSide",
    "symbol",
    "time",
}
SPOT_KEYS = {
    "symbol",
    "id",
    "orderId",
    "orderListId",
    "price",
    "qty",
    "quoteQty",
    "commission",
    "commissionAsset",
    "time",
    "isBuyer",
    "isMaker",
    "isBestMatch",
}


@pytest.mark.parametrize("market", ["usdm", "spot"])
async def test_trade_history_pages_filters_and_matches_orders(market):
    async with (
        SimExchange(SimConfig(market=market, symbols=["BTCUSDT"], seed=3, rate=50.0)) as sim,
        aiohttp.ClientSession() as http,
    ):
        rest = RestClient(http, sim.rest_url, market)
        gw = OrderGateway(
            rest, ws_base=sim.ws_url, api_key=DEFAULT_API_KEY, api_secret=DEFAULT_SECRET, inbox=Inbox(10), codecs={}
        )
        path = f"{rest.prefix}/order"
        placed = []
        for i, side in enumerate(("BUY", "SELL", "BUY")):
            body = await rest.signed(
                "POST",
                path,
                {
                    "symbol": "BTCUSDT",
                    "side": side,
                    "type": "MARKET",
                    "quantity": "0.002",
                    "newClientOrderId": f"eb9-{i}",
                },
                DEFAULT_API_KEY,
                DEFAULT_SECRET,
            )
            placed.append(body["orderId"])

        trades = await gw.user_trades("BTCUSDT")
        assert trades and {t["orderId"] for t in trades} == set(placed)
        assert set(trades[0]) == (USDM_KEYS if market == "usdm" else SPOT_KEYS)
        ids = [t["id"] for t in trades]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
        # Paging with fromId (limit 1) returns the same executions.
        assert [t["id"] for t in await gw.user_trades("BTCUSDT", limit=1)] == ids
        assert [t["id"] for t in await gw.user_trades("BTCUSDT", from_id=ids[-1])] == ids[-1:]
        assert await gw.user_trades("BTCUSDT", start_ms=trades[-1]["time"] + 1) == []
        assert [t["id"] for t in await gw.user_trades("BTCUSDT", start_ms=trades[0]["time"])] == ids

        order = await gw.order_by_id("BTCUSDT", str(placed[1]))
        assert order["clientOrderId"] == "eb9-1"
        assert await gw.order_by_id("BTCUSDT", "999999999") is None
        history = await gw.signed_get(f"{rest.prefix}/allOrders", {"symbol": "BTCUSDT"})
        assert [o["clientOrderId"] for o in history] == ["eb9-0", "eb9-1", "eb9-2"]
        if market == "usdm":
            assert (await gw.position_amounts())["BTCUSDT"] == "0.002"
        with pytest.raises(RestError) as err:
            await gw.signed_get(
                "/api/v3/myTrades" if market == "spot" else "/fapi/v1/userTrades", {"symbol": "NOPEUSDT"}
            )
        assert err.value.code == -1121
