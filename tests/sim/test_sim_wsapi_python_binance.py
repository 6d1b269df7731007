"""python-binance, unmodified, places, queries and cancels orders over the simulator's WebSocket
APIs (spot ``ws-api/v3``, USD-M ``ws-fapi/v1``); only its URLs point at the simulator."""

from __future__ import annotations

import pytest

from epochbot.sim.market import fixed
from epochbot.sim.server import SimConfig, SimExchange


@pytest.mark.parametrize("market", ["spot", "usdm"])
async def test_python_binance_trades_over_the_websocket_api(market):
    pytest.importorskip("binance")
    from binance import AsyncClient
    from binance.ws.websocket_api import WebsocketAPI

    async with SimExchange(SimConfig(market=market, symbols=["BTCUSDT"], accounts="pb-key:pb-secret")) as sim:
        client = AsyncClient("pb-key", "pb-secret")
        client.API_URL = sim.rest_url + "/api"
        client.FUTURES_URL = sim.rest_url + "/fapi"
        client.ws_api = WebsocketAPI(url=sim.ws_url + "/ws-api/v3")
        client.ws_future = WebsocketAPI(url=sim.ws_url + "/ws-fapi/v1")
        for api in (client.ws_api, client.ws_future):
            api.TIMEOUT = 1  # its read loop notices close() only after this long (default 10 s)
        m = sim.market("BTCUSDT")
        order = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01" if market == "spot" else "0.010",
            "price": fixed(m.best_bid - 100 * m.tick, m.price_decimals),
        }
        try:
            if market == "spot":
                placed = await client.ws_create_order(**order)
                status = await client.ws_get_order(symbol="BTCUSDT", orderId=placed["orderId"])
                canceled = await client.ws_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
            else:
                placed = await client.ws_futures_create_order(**order)
                status = await client.ws_futures_get_order(symbol="BTCUSDT", orderId=placed["orderId"])
                canceled = await client.ws_futures_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
        finally:
            await client.close_connection()
            await client.ws_future.close()  # close_connection() leaves the futures WebSocket API open
    assert (placed["status"], status["status"], canceled["status"]) == ("NEW", "NEW", "CANCELED")
    assert sim.wsapi.stats["orders_placed"] == 1
