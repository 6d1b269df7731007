"""Websocket routes, stream payloads, subscriptions, limits, keepalive, and book synchronisation."""

import asyncio

import aiohttp
import orjson
import pytest

from epochbot.sim.server import SimConfig, SimExchange


async def recv_until(ws, pred, timeout=3.0):
    async def loop():
        while True:
            try:
                msg = await ws.receive()
            except aiohttp.ClientConnectionResetError:  # autopong raced the server's close
                return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
            if msg.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                return msg
            d = orjson.loads(msg.data)
            if pred(d):
                return d

    return await asyncio.wait_for(loop(), timeout)


async def test_usdm_diff_depth_event_shape(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws/btcusdt@depth@100ms") as ws:
        d = await ws.receive_json(timeout=3)
    assert list(d) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
    assert d["e"] == "depthUpdate" and d["s"] == "BTCUSDT" and d["U"] <= d["u"]
    for p, q in d["b"] + d["a"]:
        assert len(p.split(".")[1]) == 2 and len(q.split(".")[1]) == 3


async def test_spot_diff_depth_and_partial_depth_shapes(spot, http):
    async with http.ws_connect(spot.ws_url + "/stream?streams=btcusdt@depth@100ms/btcusdt@depth5@100ms") as ws:
        diff = await recv_until(ws, lambda d: d["stream"] == "btcusdt@depth@100ms")
        part = await recv_until(ws, lambda d: d["stream"] == "btcusdt@depth5@100ms")
    assert list(diff["data"]) == ["e", "E", "s", "U", "u", "b", "a"]
    assert len(diff["data"]["b"][0][0].split(".")[1]) == 8 if diff["data"]["b"] else True
    assert set(part["data"]) == {"lastUpdateId", "bids", "asks"} and len(part["data"]["bids"]) == 5


async def test_usdm_market_route_streams(usdm, http):
    url = usdm.ws_url + "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s/btcusdt@kline_1m"
    async with http.ws_connect(url) as ws:
        agg = await recv_until(ws, lambda d: d["stream"].endswith("aggTrade"), 5)
        mark = await recv_until(ws, lambda d: d["stream"].endswith("markPrice@1s"), 5)
        kl = await recv_until(ws, lambda d: d["stream"].endswith("kline_1m"), 5)
    # `nq` since 2025-12-31, `ap` since 2026-03-16
    assert set(agg["data"]) == {"e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m"}
    assert set(mark["data"]) == {"e", "E", "s", "p", "i", "P", "r", "ap", "T"}
    assert (
        kl["data"]["e"] == "kline"
        and kl["data"]["k"]["i"] == "1m"
        and {"t", "T", "o", "c", "h", "l", "v", "x"} <= set(kl["data"]["k"])
    )


async def test_book_ticker_and_force_order_builders():
    from epochbot.sim.market import SymbolMarket, Trade, default_spec
    from epochbot.sim.streams import book_ticker, force_order

    m = SymbolMarket(default_spec("usdm", "BTCUSDT", 7), 7)
    bt = orjson.loads(book_ticker("usdm", m, 1, 1))
    assert list(bt) == ["e", "u", "E", "T", "s", "b", "B", "a", "A"]
    assert set(orjson.loads(book_ticker("spot", m, 1, 1))) == {"u", "s", "b", "B", "a", "A"}
    fo = orjson.loads(force_order("BTCUSDT", Trade(1, 6000000, 5, True, 9), 10, 2, 3))
    assert fo["e"] == "forceOrder" and fo["o"]["S"] == "SELL" and fo["o"]["q"] == "0.005"


async def test_wrong_route_stream_is_refused(usdm, http):
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await http.ws_connect(usdm.ws_url + "/market/ws/btcusdt@depth")
    async with http.ws_connect(usdm.ws_url + "/public/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 4})
        d = await recv_until(ws, lambda d: d.get("id") == 4)
    assert d["error"]["code"] == 2


@pytest.mark.parametrize("path", ["/ws", "/ws/btcusdt@aggTrade", "/stream?streams=btcusdt@depth", "/ws/0"])
async def test_usdm_legacy_route_less_urls_are_refused(usdm, http, path):
    # Retired 2026-04-23: only /public, /market and /private are served.
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await http.ws_connect(usdm.ws_url + path)


async def test_live_subscribe_list_unsubscribe(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms", "ethusdt@bookTicker"], "id": 1})
        assert await recv_until(ws, lambda d: d.get("id") == 1) == {"result": None, "id": 1}
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
        lst = await recv_until(ws, lambda d: d.get("id") == 2)
        assert sorted(lst["result"]) == ["btcusdt@depth@100ms", "ethusdt@bookTicker"]
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 3})
        assert await recv_until(ws, lambda d: d.get("id") == 3) == {"result": None, "id": 3}


async def test_bad_requests_get_binance_error_codes(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/public/ws") as ws:
        await ws.send_str("{not json")
        assert (await recv_until(ws, lambda d: "error" in d))["error"]["code"] == 3
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 5})
        assert (await recv_until(ws, lambda d: "error" in d))["error"]["code"] == 2
        await ws.send_json({"method": "FROB", "id": 6})
        assert (await recv_until(ws, lambda d: "error" in d))["error"]["code"] == 2
        # ids: a 64-bit signed integer (so -1 is fine since 2023-12-04), a string of at most 36, null
        await ws.send_json({"method": "SUBSCRIBE", "params": [], "id": 2**63})
        assert (await recv_until(ws, lambda d: "error" in d))["error"]["code"] == 2


async def test_stream_count_limit(http):
    async with SimExchange(SimConfig(market="spot", max_streams=2)) as sim:
        async with http.ws_connect(sim.ws_url + "/ws") as ws:
            await ws.send_json(
                {"method": "SUBSCRIBE", "params": ["btcusdt@depth", "btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 1}
            )
            assert "error" in await recv_until(ws, lambda d: d.get("id") == 1)


async def test_incoming_message_rate_limit_closes_connection(http):
    async with SimExchange(SimConfig(market="spot")) as sim:
        async with http.ws_connect(sim.ws_url + "/ws") as ws:
            for i in range(8):
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": i})
            msg = await recv_until(ws, lambda d: False)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert sim.stats["rate_limit_disconnects"] == 1


async def test_server_pings_and_closes_silent_clients(http):
    async with SimExchange(SimConfig(market="usdm", ping_interval_s=0.1, pong_timeout_s=0.5)) as sim:
        async with http.ws_connect(sim.ws_url + "/public/ws", autoping=False) as ws:
            first = await ws.receive(timeout=2)
            assert first.type == aiohttp.WSMsgType.PING
            msg = await recv_until(ws, lambda d: False, timeout=3)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert sim.stats["pong_timeouts"] == 1


async def test_answering_pings_keeps_connection_and_lifetime_closes_it(http):
    async with SimExchange(
        SimConfig(market="spot", ping_interval_s=0.3, pong_timeout_s=0.8, max_lifetime_s=1.5)
    ) as sim:
        async with http.ws_connect(sim.ws_url + "/ws") as ws:  # aiohttp autopongs while receiving
            t0 = asyncio.get_running_loop().time()
            msg = await recv_until(ws, lambda d: False, timeout=3)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert asyncio.get_running_loop().time() - t0 >= 1.3
        assert sim.stats["lifetime_closes"] == 1 and sim.stats["pong_timeouts"] == 0


def apply(book, d, market):
    for key, side in (("b", "bids"), ("a", "asks")):
        for p, q in d[key]:
            if float(q) == 0:
                book[side].pop(p, None)
            else:
                book[side][p] = q


@pytest.mark.parametrize("market", ["usdm", "spot"])
async def test_binance_sync_algorithm_reproduces_the_simulator_book(market, http):
    async with SimExchange(SimConfig(market=market, symbols=["BTCUSDT"], rate=100, tick_s=0.01)) as sim:
        route = "/public/ws/" if market == "usdm" else "/ws/"
        path = (
            "/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
            if market == "usdm"
            else "/api/v3/depth?symbol=BTCUSDT&limit=5000"
        )
        async with http.ws_connect(sim.ws_url + route + "btcusdt@depth@100ms") as ws:
            buffered = [await ws.receive_json(timeout=3)]
            async with http.get(sim.rest_url + path) as r:
                snap = await r.json()
            book = {"bids": dict(snap["bids"]), "asks": dict(snap["asks"])}
            last = snap["lastUpdateId"]
            prev_u = None
            applied = 0
            while applied < 30:
                d = buffered.pop(0) if buffered else await ws.receive_json(timeout=3)
                if d["u"] < last or (market == "spot" and d["u"] <= last):
                    continue
                if prev_u is None:
                    assert d["U"] <= last + (1 if market == "spot" else 0) <= d["u"]
                elif market == "usdm":
                    assert d["pu"] == prev_u
                else:
                    assert d["U"] == prev_u + 1
                apply(book, d, market)
                prev_u = d["u"]
                applied += 1
            sim.pause_market()
            while prev_u < sim.market("BTCUSDT").update_id:
                d = await ws.receive_json(timeout=3)
                apply(book, d, market)
                prev_u = d["u"]
            truth = sim.depth_snapshot("BTCUSDT", 1000)

        def top(side, rev):
            return sorted(book[side].items(), key=lambda x: float(x[0]), reverse=rev)[:200]

        assert top("bids", True) == [tuple(x) for x in truth["bids"][:200]]
        assert top("asks", False) == [tuple(x) for x in truth["asks"][:200]]


async def test_a_numbered_connection_path_opens_with_no_stream_and_takes_subscriptions(usdm, http):
    # ccxt opens /public/ws/<n> and subscribes afterwards; Binance accepts that connection.
    async with http.ws_connect(usdm.ws_url + "/public/ws/0") as ws:
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 7}')
        ack = await ws.receive_json(timeout=3)
        event = await ws.receive_json(timeout=3)

    assert ack == {"result": None, "id": 7}
    assert event["e"] == "depthUpdate"
