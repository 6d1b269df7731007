"""REST endpoints: paths, payload shapes (Binance's documented examples), weights and signing."""

import time
from urllib.parse import urlencode

import aiohttp
import pytest

from epochbot.sim.auth import sign
from epochbot.sim.server import SimConfig, SimExchange


async def get(http, url, **kw):
    async with http.get(url, **kw) as r:
        return r.status, dict(r.headers), await r.json()


async def test_usdm_ping_time_and_exchange_info_filters(usdm, http):
    assert (await get(http, usdm.rest_url + "/fapi/v1/ping"))[2] == {}
    assert abs((await get(http, usdm.rest_url + "/fapi/v1/time"))[2]["serverTime"] - time.time() * 1000) < 5000
    _, _, info = await get(http, usdm.rest_url + "/fapi/v1/exchangeInfo")
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert btc["pricePrecision"] == 2 and btc["quantityPrecision"] == 3 and btc["contractType"] == "PERPETUAL"
    f = {x["filterType"]: x for x in btc["filters"]}
    assert f["PRICE_FILTER"]["tickSize"] == "0.10"
    assert f["LOT_SIZE"]["stepSize"] == "0.001" and f["MARKET_LOT_SIZE"]["stepSize"] == "0.001"
    assert "notional" in f["MIN_NOTIONAL"]
    assert info["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"


async def test_spot_exchange_info_uses_notional_and_padded_filters(spot, http):
    _, _, info = await get(http, spot.rest_url + "/api/v3/exchangeInfo")
    f = {x["filterType"]: x for x in info["symbols"][0]["filters"]}
    assert f["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert f["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert "minNotional" in f["NOTIONAL"] and "MARKET_LOT_SIZE" in f


async def test_usdm_depth_shape_and_limits(usdm, http):
    status, headers, body = await get(http, usdm.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
    assert status == 200 and set(body) == {"lastUpdateId", "E", "T", "bids", "asks"}
    assert len(body["bids"]) == 1000 and len(body["asks"]) == 1000
    p, q = body["bids"][0]
    assert p.split(".")[1].__len__() == 2 and q.split(".")[1].__len__() == 3
    assert float(body["bids"][0][0]) < float(body["asks"][0][0])
    assert headers["X-MBX-USED-WEIGHT-1M"] == "20"
    status, _, err = await get(http, usdm.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=7")
    assert status == 400 and err["code"] == -1130


async def test_spot_depth_up_to_5000_padded_to_8_decimals(spot, http):
    status, headers, body = await get(http, spot.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
    assert set(body) == {"lastUpdateId", "bids", "asks"}
    assert len(body["bids"]) >= 1000 and all(len(x[0].split(".")[1]) == 8 for x in body["bids"][:10])
    assert headers["X-MBX-USED-WEIGHT-1M"] == "250"


async def test_klines_and_premium_index_shapes(usdm, http):
    _, _, rows = await get(http, usdm.rest_url + "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=5")
    assert len(rows[0]) == 12 and isinstance(rows[0][0], int) and isinstance(rows[0][1], str)
    _, _, pi = await get(http, usdm.rest_url + "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert set(pi) == {
        "symbol",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "interestRate",
        "nextFundingTime",
        "time",
    }
    _, _, all_ = await get(http, usdm.rest_url + "/fapi/v1/premiumIndex")
    assert {x["symbol"] for x in all_} == {"BTCUSDT", "ETHUSDT"}


async def test_unknown_symbol_is_minus_1121(usdm, http):
    status, _, body = await get(http, usdm.rest_url + "/fapi/v1/depth?symbol=NOPE")
    assert status == 400 and body["code"] == -1121


async def test_weight_limit_gives_429_with_retry_after(http):
    async with SimExchange(SimConfig(market="spot", symbols=["BTCUSDT"], weight_limit=30)) as sim:
        statuses = []
        for _ in range(8):
            async with http.get(sim.rest_url + "/api/v3/depth?symbol=BTCUSDT") as r:
                statuses.append(r.status)
                last = r
        assert statuses[:6] == [200] * 6 and statuses[-1] == 429
        assert "Retry-After" in last.headers


def signed_query(params, secret="sim-secret"):
    qs = urlencode(params)
    return qs + "&signature=" + sign(secret, qs)


async def test_signed_endpoint_rejects_bad_signature_and_stale_timestamp(usdm, http):
    h = {"X-MBX-APIKEY": "sim-key"}
    now = int(time.time() * 1000)
    qs = signed_query({"timestamp": now}, secret="wrong")
    status, _, body = await get(http, usdm.rest_url + "/fapi/v2/account?" + qs, headers=h)
    assert status in (400, 401) and body["code"] == -1022
    qs = signed_query({"timestamp": now - 60_000, "recvWindow": 5000})
    status, _, body = await get(http, usdm.rest_url + "/fapi/v2/account?" + qs, headers=h)
    assert body["code"] == -1021
    status, _, body = await get(http, usdm.rest_url + "/fapi/v2/account?" + signed_query({"timestamp": now}))
    assert body["code"] in (-2014, -2015)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_removed_spot_listen_key_endpoints_answer_410(spot, http, method):
    async with http.request(method, spot.rest_url + "/api/v3/userDataStream", headers={"X-MBX-APIKEY": "sim-key"}) as r:
        assert r.status == 410


async def test_usdm_user_data_only_on_the_private_route_with_query_parameters(usdm, http):
    async with http.post(usdm.rest_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": "sim-key"}) as r:
        key = (await r.json())["listenKey"]
    for legacy in ("/ws/" + key, "/private/ws/" + key):
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with http.ws_connect(usdm.ws_url + legacy) as ws:
                await ws.receive(timeout=0.2)
    async with http.ws_connect(usdm.ws_url + "/private/ws?listenKey=" + key + "&events=ORDER_TRADE_UPDATE") as ws:
        assert not ws.closed


async def test_listen_key_lifecycle(usdm, http):
    h = {"X-MBX-APIKEY": "sim-key"}
    async with http.post(usdm.rest_url + "/fapi/v1/listenKey", headers=h) as r:
        key = (await r.json())["listenKey"]
    assert len(key) == 60
    async with http.put(usdm.rest_url + "/fapi/v1/listenKey", headers=h) as r:
        assert r.status == 200
    async with http.delete(usdm.rest_url + "/fapi/v1/listenKey", headers=h) as r:
        assert r.status == 200
    async with http.post(usdm.rest_url + "/fapi/v1/listenKey") as r:
        assert r.status == 401


async def test_signed_order_roundtrip_and_user_stream(usdm, http):
    pytest.importorskip("epochbot.sim.matching")
    h = {"X-MBX-APIKEY": "sim-key"}
    async with http.post(usdm.rest_url + "/fapi/v1/listenKey", headers=h) as r:
        key = (await r.json())["listenKey"]
    async with http.ws_connect(
        usdm.ws_url + "/private/ws?listenKey=" + key + "&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"
    ) as ws:
        m = usdm.market("BTCUSDT")
        price = m.best_bid - 100 * m.tick
        from epochbot.sim.market import fixed

        qs = signed_query(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.010",
                "price": fixed(price, 2),
                "timestamp": int(time.time() * 1000),
            }
        )
        async with http.post(usdm.rest_url + "/fapi/v1/order?" + qs, headers=h) as r:
            order = await r.json()
            assert r.status == 200, order
        assert order["symbol"] == "BTCUSDT" and order["status"] == "NEW"
        ev = await ws.receive_json(timeout=3)
        assert ev["e"] == "ORDER_TRADE_UPDATE" and ev["o"]["i"] == order["orderId"]
        qs = signed_query({"symbol": "BTCUSDT", "timestamp": int(time.time() * 1000)})
        status, _, open_ = await get(http, usdm.rest_url + "/fapi/v1/openOrders?" + qs, headers=h)
        assert [o["orderId"] for o in open_] == [order["orderId"]]
        qs = signed_query({"symbol": "BTCUSDT", "orderId": order["orderId"], "timestamp": int(time.time() * 1000)})
        async with http.delete(usdm.rest_url + "/fapi/v1/order?" + qs, headers=h) as r:
            assert (await r.json())["status"] == "CANCELED"
        qs = signed_query({"timestamp": int(time.time() * 1000)})
        status, _, risk = await get(http, usdm.rest_url + "/fapi/v2/positionRisk?" + qs, headers=h)
        assert status == 200 and isinstance(risk, list)
        status, _, acct = await get(http, usdm.rest_url + "/fapi/v2/account?" + qs, headers=h)
        assert status == 200 and "assets" in acct


async def test_spot_order_emits_execution_report(spot, http):
    pytest.importorskip("epochbot.sim.matching")
    from epochbot.venues.binance.signing import Signer

    h = {"X-MBX-APIKEY": "sim-key"}
    async with http.ws_connect(spot.ws_url + "/ws-api/v3") as ws:
        params = Signer("sim-key", "sim-secret").sign_ws({}, int(time.time() * 1000))
        await ws.send_json({"id": 1, "method": "userDataStream.subscribe.signature", "params": params})
        assert (await ws.receive_json(timeout=3))["result"] == {"subscriptionId": 0}
        qs = signed_query(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.01000",
                "timestamp": int(time.time() * 1000),
            }
        )
        async with http.post(spot.rest_url + "/api/v3/order?" + qs, headers=h) as r:
            assert r.status == 200, await r.text()
        kinds = set()
        for _ in range(3):
            frame = await ws.receive_json(timeout=3)
            assert frame["subscriptionId"] == 0
            kinds.add(frame["event"]["e"])
        assert "executionReport" in kinds
        qs = signed_query({"timestamp": int(time.time() * 1000)})
        status, _, acct = await get(http, spot.rest_url + "/api/v3/account?" + qs, headers=h)
        assert status == 200 and "balances" in acct
