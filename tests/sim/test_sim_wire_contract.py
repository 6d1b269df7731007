"""The simulator's wire contract, checked with raw websocket and HTTP clients.

Each of the findings of docs/binance.md "Conformance with Binance's official SDKs" (and the 2026
changelog checklist) is fixed in the simulator and driven through Binance's official SDKs in
``test_official_sdks.py``; here every fix is pinned again by exact frames and answers from a
plain aiohttp client, so the contract does not depend on one client library.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from epochbot.sim.market import fixed
from epochbot.sim.server import SimConfig, SimExchange

SYMBOL = "BTCUSDT"
ACCOUNTS = "k1:s1,k2:s2"
KEYS = {"k1": "s1", "k2": "s2"}
WAIT_S = 3.0
ID_REFUSED = "Invalid request: request ID must be an unsigned integer"  # Binance's text, still "unsigned"


@pytest.fixture
async def spot():
    async with SimExchange(
        SimConfig(market="spot", symbols=[SYMBOL, "ETHUSDT"], seed=7, rate=50, tick_s=0.02, accounts=ACCOUNTS)
    ) as sim:
        yield sim


@pytest.fixture
async def usdm():
    async with SimExchange(
        SimConfig(market="usdm", symbols=[SYMBOL, "ETHUSDT"], seed=7, rate=50, tick_s=0.02, accounts=ACCOUNTS)
    ) as sim:
        yield sim


@pytest.fixture(params=["spot", "usdm"])
async def sim(request):
    async with SimExchange(
        SimConfig(market=request.param, symbols=[SYMBOL, "ETHUSDT"], seed=7, rate=50, tick_s=0.02, accounts=ACCOUNTS)
    ) as ex:
        yield ex


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


# ------------------------------------------------------------------------------------ helpers


def now_ms() -> int:
    return int(time.time() * 1000)


def passive_bid(sim: SimExchange) -> str:
    """5 % under the best bid, on the tick grid: a buy that rests."""
    m = sim.market(SYMBOL)
    units = m.best_bid * 95 // 100
    return fixed(units - units % m.tick, m.price_decimals)


def order_params(sim: SimExchange, client_order_id: str) -> dict:
    return {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": passive_bid(sim),
        "newClientOrderId": client_order_id,
    }


def v(sim: SimExchange) -> str:
    return "/api/v3" if sim.config.market == "spot" else "/fapi/v1"


async def rest(http, sim, method: str, path: str, key: str | None = "k1", headers: dict | None = None, **params):
    """A REST call signed the documented way (HMAC over the percent-encoded query); returns
    (status, headers, body)."""
    hdrs = dict(headers or {})
    url = sim.rest_url + path
    if key is not None:
        query = urlencode({**params, "timestamp": now_ms()})
        signature = hmac.new(KEYS[key].encode(), query.encode(), hashlib.sha256).hexdigest()
        url += f"?{query}&signature={signature}"
        hdrs["X-MBX-APIKEY"] = key
    elif params:
        url += "?" + urlencode(params)
    async with http.request(method, url, headers=hdrs) as r:
        return r.status, r.headers, await r.json(content_type=None)


def ws_signed(method: str, rid, params: dict, key: str = "k1", encoded: bool = False) -> dict:
    """A WebSocket API request signed over the raw sorted ``k=v`` payload (the document) or over
    ``urlencode`` of it (``encoded``: what Binance's SDKs sign)."""
    params = {**params, "apiKey": key, "timestamp": now_ms()}
    pairs = sorted((k, str(v)) for k, v in params.items())
    payload = urlencode(pairs) if encoded else "&".join(f"{k}={v}" for k, v in pairs)
    signature = hmac.new(KEYS[key].encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {"id": rid, "method": method, "params": {**params, "signature": signature}}


def wsapi_url(sim: SimExchange) -> str:
    return sim.ws_url + ("/ws-api/v3" if sim.config.market == "spot" else "/ws-fapi/v1")


async def answer_to(ws, rid, timeout: float = WAIT_S) -> dict:
    """The next frame answering ``rid`` (stream data and events in between are skipped)."""

    async def scan():
        while True:
            frame = await ws.receive_json()
            if (
                isinstance(frame, dict)
                and frame.get("id") == rid
                and ("result" in frame or "error" in frame or "status" in frame)
            ):
                return frame

    return await asyncio.wait_for(scan(), timeout)


async def frame_where(ws, pred, timeout: float = WAIT_S) -> dict:
    async def scan():
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"connection ended: {msg.type}")
            frame = orjson.loads(msg.data)
            if pred(frame):
                return frame

    return await asyncio.wait_for(scan(), timeout)


async def call(ws, body: dict) -> dict:
    await ws.send_json(body)
    return await answer_to(ws, body["id"])


# ============================================================ finding 1: stream request ids

ACCEPTED_IDS = [
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param(2**63 - 1, id="int64-max"),
    pytest.param(-(2**63), id="int64-min"),
    pytest.param("abcXYZ0123", id="alphanumeric"),
    pytest.param("a" * 36, id="36-chars"),
    pytest.param("4885f793-e5ad-4c3b-8f6c-55d891472b71", id="uuid4"),
    pytest.param(None, id="null"),
]
REFUSED_IDS = [
    pytest.param("a" * 37, id="37-chars"),
    pytest.param(2**63, id="beyond-int64"),
    pytest.param(-(2**63) - 1, id="below-int64"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param("a b", id="space"),
    pytest.param("id_1", id="underscore"),
    pytest.param({"n": 1}, id="object"),
]


@pytest.mark.parametrize("request_id", ACCEPTED_IDS)
async def test_stream_requests_echo_every_documented_id_format(spot, http, request_id):
    async with http.ws_connect(spot.ws_url + "/ws") as ws:
        subscribed = await call(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": request_id})
        listed = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": request_id})
        unsubscribed = await call(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": request_id})

    assert subscribed == {"result": None, "id": request_id}
    assert listed == {"result": ["btcusdt@bookTicker"], "id": request_id}
    assert unsubscribed == {"result": None, "id": request_id}


@pytest.mark.parametrize("request_id", REFUSED_IDS)
async def test_stream_requests_refuse_an_id_outside_the_formats_with_binances_error(spot, http, request_id):
    async with http.ws_connect(spot.ws_url + "/stream") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": request_id})
        answer = await frame_where(ws, lambda f: "error" in f)

    assert answer == {"error": {"code": 2, "msg": ID_REFUSED}, "id": None}


@pytest.mark.parametrize("route", ["public", "market", "private"])
async def test_usdm_routes_take_a_uuid_id_too(usdm, http, route):
    stream = {"public": ["btcusdt@depth@100ms"], "market": ["btcusdt@aggTrade"], "private": []}[route]
    rid = "0b6c1f4e-6a7d-4a8e-9a55-1b2c3d4e5f60"
    async with http.ws_connect(f"{usdm.ws_url}/{route}/stream") as ws:
        answer = await call(ws, {"method": "SUBSCRIBE", "params": stream, "id": rid})

    assert answer == {"result": None, "id": rid}


# ================================================ findings 2 and 3: USD-M /private user data


async def place(http, sim, key: str = "k1", client_order_id: str = "wire-1") -> dict:
    status, _, body = await rest(http, sim, "POST", f"{v(sim)}/order", key=key, **order_params(sim, client_order_id))
    assert status == 200, body
    return body


async def listen_key(http, sim, key: str = "k1") -> str:
    async with http.post(sim.rest_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": key}) as r:
        return (await r.json())["listenKey"]


@pytest.mark.parametrize("path", ["/private/stream", "/private/ws"])
async def test_usdm_private_route_accepts_a_handshake_without_a_query(usdm, http, path):
    async with http.ws_connect(usdm.ws_url + path) as ws:
        answer = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})

    assert answer == {"result": [], "id": 1}


async def test_subscribing_a_listen_key_on_private_stream_delivers_its_events_named_by_the_key(usdm, http):
    key = await listen_key(http, usdm)
    async with http.ws_connect(usdm.ws_url + "/private/stream") as ws:
        subscribed = await call(ws, {"method": "SUBSCRIBE", "params": [key], "id": "sub-1"})
        listed = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
        order = await place(http, usdm, client_order_id="wire-private")
        frame = await frame_where(ws, lambda f: f.get("data", {}).get("e") == "ORDER_TRADE_UPDATE")
        unsubscribed = await call(ws, {"method": "UNSUBSCRIBE", "params": [key], "id": 3})
        await rest(http, usdm, "DELETE", "/fapi/v1/order", symbol=SYMBOL, orderId=order["orderId"])
        after = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4})

    assert subscribed == {"result": None, "id": "sub-1"} and listed == {"result": [key], "id": 2}
    assert set(frame) == {"stream", "data"} and frame["stream"] == key
    assert (frame["data"]["o"]["c"], frame["data"]["o"]["x"], frame["data"]["o"]["i"]) == (
        "wire-private",
        "NEW",
        order["orderId"],
    )
    assert unsubscribed == {"result": None, "id": 3} and after == {"result": [], "id": 4}


async def test_subscribing_a_listen_key_on_private_ws_delivers_bare_events(usdm, http):
    key = await listen_key(http, usdm)
    async with http.ws_connect(usdm.ws_url + "/private/ws") as ws:
        await call(ws, {"method": "SUBSCRIBE", "params": [key], "id": 1})
        await place(http, usdm, client_order_id="wire-raw")
        event = await frame_where(ws, lambda f: f.get("e") == "ORDER_TRADE_UPDATE")

    assert event["o"]["c"] == "wire-raw" and "stream" not in event


async def test_subscribing_an_unknown_listen_key_is_refused_with_the_request_id(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/private/stream") as ws:
        answer = await call(ws, {"method": "SUBSCRIBE", "params": ["x" * 60], "id": 9})

    assert answer["id"] == 9 and answer["error"]["code"] == 2


async def test_closing_a_listen_key_ends_its_subscription_but_not_the_connection(usdm, http):
    key = await listen_key(http, usdm)
    async with http.ws_connect(usdm.ws_url + "/private/stream") as ws:
        await call(ws, {"method": "SUBSCRIBE", "params": [key], "id": 1})
        async with http.delete(usdm.rest_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": "k1"}) as r:
            assert r.status == 200
        listed = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})

    assert listed == {"result": [], "id": 2}


async def test_private_stream_mode_takes_listen_key_and_events_pairs_and_names_frames_by_key(usdm, http):
    # "Important WebSocket Change Notice": /private/stream?listenKey=<k1>&events=A&listenKey=<k2>&events=B
    key1, key2 = await listen_key(http, usdm, "k1"), await listen_key(http, usdm, "k2")
    query = f"listenKey={key1}&events=ORDER_TRADE_UPDATE&listenKey={key2}&events=ACCOUNT_UPDATE"
    url = f"{usdm.ws_url}/private/stream?{query}"
    async with http.ws_connect(url) as ws:
        await place(http, usdm, "k2", "wire-k2")  # key2 wants ACCOUNT_UPDATE only: not delivered
        await place(http, usdm, "k1", "wire-k1")
        frame = await frame_where(ws, lambda f: "data" in f)

    assert frame["stream"] == key1 and frame["data"]["o"]["c"] == "wire-k1"


async def test_private_ws_with_listen_key_and_events_stays_raw_and_filtered(usdm, http):
    key = await listen_key(http, usdm)
    async with http.ws_connect(f"{usdm.ws_url}/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE") as ws:
        await place(http, usdm, client_order_id="wire-doc")
        event = await frame_where(ws, lambda f: True)

    assert event["e"] == "ORDER_TRADE_UPDATE" and event["o"]["c"] == "wire-doc"


# ============================================ finding 4: WebSocket API signature payloads


@pytest.mark.parametrize("encoded", [False, True], ids=["raw-as-documented", "percent-encoded-as-the-sdk-signs"])
async def test_websocket_api_accepts_either_signature_payload(sim, http, encoded):
    # ':' and '/' are legal in a client order id; urlencode escapes them, so the payloads differ.
    params = order_params(sim, "wire:sig/1")
    forged = ws_signed("order.place", "f", {**params, "newClientOrderId": "wire:sig/2"}, encoded=encoded)
    forged["params"]["quantity"] = "0.020"  # changed after signing
    async with http.ws_connect(wsapi_url(sim)) as ws:
        placed = await call(ws, ws_signed("order.place", "p", params, encoded=encoded))
        refused = await call(ws, forged)

    assert placed["status"] == 200 and placed["result"]["clientOrderId"] == "wire:sig/1"
    assert refused["status"] == 400 and refused["error"]["code"] == -1022


# ====================================== finding 5: userDataStream.unsubscribe subscriptionId


@pytest.mark.parametrize("given, status", [("0", 200), (0, 200), ("zero", 400), ("7", 400)])
async def test_user_data_unsubscribe_takes_the_subscription_id_as_digits(spot, http, given, status):
    async with http.ws_connect(wsapi_url(spot)) as ws:
        subscribed = await call(ws, ws_signed("userDataStream.subscribe.signature", 1, {}))
        answer = await call(ws, {"id": 2, "method": "userDataStream.unsubscribe", "params": {"subscriptionId": given}})

    assert subscribed["result"] == {"subscriptionId": 0}
    assert answer["status"] == status
    if status == 400:
        assert answer["error"]["code"] == -2036


# ======================================================== finding 6: serverShutdown grace


async def test_server_shutdown_keeps_a_websocket_api_session_usable_for_its_grace(spot, http):
    async with http.ws_connect(wsapi_url(spot)) as ws:
        await call(ws, {"id": 1, "method": "ping"})
        spot.inject("server_shutdown", grace_s=1.0)
        notice = await frame_where(ws, lambda f: "event" in f)
        served = await call(ws, {"id": 2, "method": "time"})
        started = time.monotonic()
        closing = await ws.receive(timeout=5)
        waited = time.monotonic() - started

    assert set(notice) == {"event"} and set(notice["event"]) == {"e", "E"} and notice["event"]["e"] == "serverShutdown"
    assert served["status"] == 200
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and waited < 5


async def test_server_shutdown_without_grace_closes_right_after_the_notice(spot, http):
    async with (
        http.ws_connect(spot.ws_url + "/ws/btcusdt@depth@100ms") as raw,
        http.ws_connect(spot.ws_url + "/stream?streams=btcusdt@depth@100ms") as combined,
    ):
        spot.inject("server_shutdown", grace_s=0)
        raw_notice = await frame_where(raw, lambda f: f.get("e") == "serverShutdown")
        combined_notice = await frame_where(combined, lambda f: f.get("stream") == "!serverShutdown")
        raw_end = await raw.receive(timeout=3)
        while raw_end.type == aiohttp.WSMsgType.TEXT:
            raw_end = await raw.receive(timeout=3)

    assert set(raw_notice) == {"e", "E"}
    assert set(combined_notice) == {"stream", "data"} and set(combined_notice["data"]) == {"e", "E"}
    assert raw_end.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_server_shutdown_grace_is_a_checked_fault_parameter():
    from epochbot.sim.faults import FaultBoard, FaultError

    board = FaultBoard()
    assert board.arm({"kind": "server_shutdown"}).params == {"grace_s": 10.0}
    with pytest.raises(FaultError):
        board.arm({"kind": "server_shutdown", "grace_s": 601})


# ============================================================== finding 7: spot @trade


async def test_spot_trade_stream_sends_binances_trade_payload(spot, http):
    async with http.ws_connect(spot.ws_url + "/ws/btcusdt@trade") as ws:
        event = await frame_where(ws, lambda f: True, timeout=8)

    assert list(event) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
    assert (event["e"], event["s"], event["M"]) == ("trade", SYMBOL, True)


async def test_usdm_has_no_raw_trade_stream(usdm, http):
    async with http.ws_connect(usdm.ws_url + "/market/ws") as ws:
        answer = await call(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})

    assert answer["error"]["code"] == 2


# ================================= finding 8: ORDERS windows and X-MBX-ORDER-COUNT headers


def frozen(sim: SimExchange) -> None:
    """Stop the clocks of the weight and ORDERS windows (no window turns during the test)."""
    at = time.time()
    sim.weights.clock = sim.order_counter.clock = lambda: at


async def test_rest_order_answers_carry_the_order_count_shared_with_the_websocket_api(sim, http):
    frozen(sim)
    headers = (
        ("X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1D")
        if sim.config.market == "spot"
        else ("X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1M")
    )
    _, first, _ = await rest(http, sim, "POST", f"{v(sim)}/order", **order_params(sim, "count-1"))
    _, second, _ = await rest(http, sim, "POST", f"{v(sim)}/order", **order_params(sim, "count-2"))
    _, failed, _ = await rest(
        http, sim, "POST", f"{v(sim)}/order", **{**order_params(sim, "count-3"), "symbol": "NOPE"}
    )
    async with http.ws_connect(wsapi_url(sim)) as ws:
        answer = await call(ws, {"id": 1, "method": "ping"})

    assert [int(first[h]) for h in headers] == [1, 1] and [int(second[h]) for h in headers] == [2, 2]
    assert not any(h in failed for h in headers)
    assert [r["count"] for r in answer["rateLimits"] if r["rateLimitType"] == "ORDERS"] == [2, 2]


# ====================================================== finding 9: WebSocket API reads


async def test_spot_websocket_api_depth_is_the_rest_body_weighed_by_limit(spot, http):
    frozen(spot)
    async with http.ws_connect(wsapi_url(spot)) as ws:
        before = (await call(ws, {"id": 0, "method": "ping"}))["rateLimits"][0]["count"]
        answer = await call(ws, {"id": 1, "method": "depth", "params": {"symbol": SYMBOL, "limit": "500"}})

    assert answer["status"] == 200 and list(answer["result"]) == ["lastUpdateId", "bids", "asks"]
    assert 0 < len(answer["result"]["bids"]) <= 500
    assert answer["rateLimits"][0]["count"] - before == 25


async def test_usdm_websocket_api_depth_carries_event_and_transaction_times(usdm, http):
    async with http.ws_connect(wsapi_url(usdm)) as ws:
        answer = await call(ws, {"id": 1, "method": "depth", "params": {"symbol": SYMBOL, "limit": 5}})
        bad = await call(ws, {"id": 2, "method": "depth", "params": {"symbol": SYMBOL, "limit": 7}})

    assert list(answer["result"]) == ["lastUpdateId", "E", "T", "bids", "asks"] and len(answer["result"]["bids"]) == 5
    assert bad["error"]["code"] == -1130


@pytest.mark.parametrize(
    "method, shape",
    [
        ("account.status", dict),
        ("account.balance", list),
        ("account.position", list),
        ("v2/account.status", dict),
    ],
)
async def test_usdm_websocket_api_account_requests_answer_the_rest_bodies(usdm, http, method, shape):
    async with http.ws_connect(wsapi_url(usdm)) as ws:
        answer = await call(ws, ws_signed(method, 1, {}))

    assert answer["status"] == 200 and isinstance(answer["result"], shape) and answer["rateLimits"]
    if method == "account.balance":
        assert {"accountAlias", "asset", "balance", "availableBalance", "updateTime"} <= set(answer["result"][0])


async def test_spot_websocket_api_account_status_is_the_rest_account(spot, http):
    async with http.ws_connect(wsapi_url(spot)) as ws:
        answer = await call(ws, ws_signed("account.status", 1, {}))
        unsigned = await call(ws, {"id": 2, "method": "account.status", "params": {"apiKey": "k1"}})
    status, _, body = await rest(http, spot, "GET", "/api/v3/account")

    assert answer["status"] == 200 and set(answer["result"]) == set(body) and status == 200
    assert unsigned["status"] == 400 and unsigned["error"]["code"] == -1102


@pytest.mark.parametrize("method", ["ticker.price", "ticker.book"])
async def test_websocket_api_tickers_answer_one_symbol_or_all(sim, http, method):
    async with http.ws_connect(wsapi_url(sim)) as ws:
        one = await call(ws, {"id": 1, "method": method, "params": {"symbol": SYMBOL}})
        every = await call(ws, {"id": 2, "method": method})
        some = await call(ws, {"id": 3, "method": method, "params": {"symbols": '["ETHUSDT"]'}})

    assert one["result"]["symbol"] == SYMBOL
    assert [r["symbol"] for r in every["result"]] == [SYMBOL, "ETHUSDT"]
    assert [r["symbol"] for r in some["result"]] == ["ETHUSDT"]


# ============================================ finding 10: listenKeys over the WebSocket API


async def test_usdm_websocket_api_starts_pings_and_stops_the_rest_listen_key(usdm, http):
    async with http.ws_connect(wsapi_url(usdm)) as ws:
        started = await call(ws, {"id": 1, "method": "userDataStream.start", "params": {"apiKey": "k1"}})
        pinged = await call(ws, {"id": 2, "method": "userDataStream.ping", "params": {"apiKey": "k1"}})
        same = await listen_key(http, usdm)
        stopped = await call(ws, {"id": 3, "method": "userDataStream.stop", "params": {"apiKey": "k1"}})
        again = await call(ws, {"id": 4, "method": "userDataStream.ping", "params": {"apiKey": "k1"}})

    key = started["result"]["listenKey"]
    assert pinged["result"] == {"listenKey": key} and same == key
    assert (stopped["status"], stopped["result"]) == (200, {}) and started["rateLimits"]
    assert again["status"] == 400 and again["error"]["code"] == -1125


@pytest.mark.parametrize("method", ["userDataStream.start", "userDataStream.ping", "userDataStream.stop"])
async def test_spot_websocket_api_refuses_the_listen_key_methods_removed_in_2026(spot, http, method):
    async with http.ws_connect(wsapi_url(spot)) as ws:
        answer = await call(ws, {"id": 1, "method": method, "params": {"apiKey": "k1"}})

    assert answer["status"] == 400 and answer["error"] == {"code": -1020, "msg": "This operation is not supported."}


# ===================================================== finding 11: USD-M event fields


async def test_usdm_agg_trade_and_mark_price_carry_nq_and_ap_in_binances_order(usdm, http):
    url = usdm.ws_url + "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s"
    async with http.ws_connect(url) as ws:
        agg = (await frame_where(ws, lambda f: f["stream"] == "btcusdt@aggTrade", 8))["data"]
        mark = (await frame_where(ws, lambda f: f["stream"] == "btcusdt@markPrice@1s", 8))["data"]

    assert list(agg) == ["e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m"] and agg["nq"] == agg["q"]
    assert list(mark) == ["e", "E", "s", "p", "i", "P", "r", "ap", "T"] and Decimal(mark["ap"]) > 0


def test_orders_windows_count_refuse_and_turn_with_the_wall_clock():
    from epochbot.sim.auth import SimApiError
    from epochbot.sim.order_limits import OrderCounter

    now = [1_000_000.0]
    counter = OrderCounter("usdm", clock=lambda: now[0])
    for _ in range(300):
        counter.count()
    with pytest.raises(SimApiError) as full:
        counter.count()
    counted = counter.headers()
    now[0] += 10  # the next 10-second window; the minute goes on
    counter.count()

    assert (full.value.code, full.value.http_status) == (-1015, 429)
    assert full.value.msg == "Too many new orders; current limit is 300 orders per TEN_SECONDS."
    assert counted == {"X-MBX-ORDER-COUNT-10S": "300", "X-MBX-ORDER-COUNT-1M": "300"}
    assert counter.headers() == {"X-MBX-ORDER-COUNT-10S": "1", "X-MBX-ORDER-COUNT-1M": "301"}


def test_mark_price_average_is_exact_and_on_the_tick_grid():
    from epochbot.sim.streams import MarkAverage

    average = MarkAverage(tick=10, window=3)
    for second, mark in enumerate([1000, 1010, 1040, 1100]):
        average.sample(mark, second * 1000)
        average.sample(99999, second * 1000 + 500)  # a second sample in the same second is ignored

    assert average.value(0) == (1010 + 1040 + 1100) // 3 // 10 * 10


# ========================================================= the 2026 changelog checklist


async def test_exchange_info_filters_and_limits_are_binances_of_2026(sim, http):
    status, _, info = await rest(http, sim, "GET", f"{v(sim)}/exchangeInfo", key=None)
    limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]): r["limit"] for r in info["rateLimits"]}
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}

    assert status == 200
    if sim.config.market == "spot":
        assert filters["ICEBERG_PARTS"]["limit"] == 100 and limits[("RAW_REQUESTS", "MINUTE", 5)] == 300_000
    else:
        assert "MAX_NUM_ALGO_ORDERS" not in filters and limits[("ORDERS", "MINUTE", 1)] == 1200


@pytest.mark.parametrize(
    "params, names",
    [
        ({"symbol": "ETHUSDT"}, ["ETHUSDT"]),
        ({"symbols": '["ETHUSDT","BTCUSDT"]'}, ["ETHUSDT", "BTCUSDT"]),
        ({"symbolStatus": "TRADING"}, [SYMBOL, "ETHUSDT"]),
        ({"permissions": "SPOT"}, [SYMBOL, "ETHUSDT"]),
        ({"permissions": '["MARGIN"]'}, []),
    ],
)
async def test_spot_exchange_info_selects_symbols_as_binance_does(spot, http, params, names):
    _, _, info = await rest(http, spot, "GET", "/api/v3/exchangeInfo", key=None, **params)

    assert [s["symbol"] for s in info["symbols"]] == names


@pytest.mark.parametrize(
    "params, code",
    [
        ({"symbol": "NOPE"}, -1121),
        ({"symbols": '["BTCUSDT","NOPE"]'}, -1121),
        ({"symbol": SYMBOL, "symbols": '["BTCUSDT"]'}, -1128),
        ({"symbol": SYMBOL, "symbolStatus": "TRADING"}, -1128),
    ],
)
async def test_spot_exchange_info_refuses_bad_selections(spot, http, params, code):
    status, _, body = await rest(http, spot, "GET", "/api/v3/exchangeInfo", key=None, **params)

    assert (status, body["code"]) == (400, code)


async def test_spot_websocket_api_exchange_info_takes_symbols_as_an_array_or_its_text(spot, http):
    async with http.ws_connect(wsapi_url(spot)) as ws:
        array = await call(ws, {"id": 1, "method": "exchangeInfo", "params": {"symbols": ["ETHUSDT"]}})
        text = await call(ws, {"id": 2, "method": "exchangeInfo", "params": {"symbols": '["ETHUSDT"]'}})

    assert (
        [s["symbol"] for s in array["result"]["symbols"]]
        == [s["symbol"] for s in text["result"]["symbols"]]
        == ["ETHUSDT"]
    )


async def test_usdm_exchange_info_ignores_parameters(usdm, http):
    _, _, info = await rest(http, usdm, "GET", "/fapi/v1/exchangeInfo", key=None, symbol="ETHUSDT")

    assert [s["symbol"] for s in info["symbols"]] == [SYMBOL, "ETHUSDT"]


async def test_spot_rest_order_calls_cost_no_weight_when_they_succeed(spot, http):
    frozen(spot)
    _, before, _ = await rest(http, spot, "GET", "/api/v3/time", key=None)
    _, placed, order = await rest(http, spot, "POST", "/api/v3/order", **order_params(spot, "free-1"))
    _, queried, _ = await rest(http, spot, "GET", "/api/v3/order", symbol=SYMBOL, orderId=order["orderId"])
    _, canceled, _ = await rest(http, spot, "DELETE", "/api/v3/order", symbol=SYMBOL, orderId=order["orderId"])
    _, refused, _ = await rest(http, spot, "DELETE", "/api/v3/order", symbol=SYMBOL, orderId=order["orderId"])

    used = [int(h["X-MBX-USED-WEIGHT-1M"]) for h in (before, placed, queried, canceled, refused)]
    assert [b - a for a, b in zip(used, used[1:], strict=False)] == [0, 4, 0, 1]


async def test_usdm_rest_new_order_weighs_nothing_on_the_ip_limit(usdm, http):
    frozen(usdm)
    _, before, _ = await rest(http, usdm, "GET", "/fapi/v1/time", key=None)
    _, placed, _ = await rest(http, usdm, "POST", "/fapi/v1/order", **order_params(usdm, "free-usdm"))

    assert int(placed["X-MBX-USED-WEIGHT-1M"]) == int(before["X-MBX-USED-WEIGHT-1M"])


async def test_usdm_all_orders_without_a_symbol_lists_every_symbols_orders(usdm, http):
    await place(http, usdm, client_order_id="all-1")
    eth = {**order_params(usdm, "all-2"), "symbol": "ETHUSDT"}
    m = usdm.market("ETHUSDT")
    eth["price"] = fixed((m.best_bid * 95 // 100) - (m.best_bid * 95 // 100) % m.tick, m.price_decimals)
    status, _, body = await rest(http, usdm, "POST", "/fapi/v1/order", **eth)
    assert status == 200, body
    status, _, orders = await rest(http, usdm, "GET", "/fapi/v1/allOrders")

    assert status == 200 and [(o["symbol"], o["clientOrderId"]) for o in orders] == [
        (SYMBOL, "all-1"),
        ("ETHUSDT", "all-2"),
    ]


async def test_rest_parameter_in_both_query_and_body_takes_the_query_value(spot, http):
    query = urlencode({**order_params(spot, "query-wins"), "timestamp": now_ms()})
    body = "newClientOrderId=body-loses"
    signature = hmac.new(b"s1", (query + body).encode(), hashlib.sha256).hexdigest()
    async with http.post(
        f"{spot.rest_url}/api/v3/order?{query}&signature={signature}",
        data=body,
        headers={"X-MBX-APIKEY": "k1", "Content-Type": "application/x-www-form-urlencoded"},
    ) as r:
        status, order = r.status, await r.json()

    assert status == 200 and order["clientOrderId"] == "query-wins"


# ================================================================== spot timeUnit


async def test_spot_rest_answers_in_microseconds_for_the_time_unit_header(spot, http):
    _, _, milli = await rest(http, spot, "GET", "/api/v3/time", key=None)
    _, _, micro = await rest(http, spot, "GET", "/api/v3/time", key=None, headers={"X-MBX-TIME-UNIT": "MICROSECOND"})
    _, _, order = await rest(
        http, spot, "POST", "/api/v3/order", headers={"X-MBX-TIME-UNIT": "microsecond"}, **order_params(spot, "micro-1")
    )

    assert micro["serverTime"] // 1000 - milli["serverTime"] in range(0, 5000)
    assert order["transactTime"] > 10**15 and order["workingTime"] > 10**15


async def test_spot_websocket_api_and_streams_answer_in_microseconds_for_time_unit(spot, http):
    async with http.ws_connect(wsapi_url(spot) + "?timeUnit=MICROSECOND") as api:
        answer = await call(api, {"id": 1, "method": "time"})
    async with http.ws_connect(spot.ws_url + "/stream?streams=btcusdt@trade&timeUnit=MICROSECOND") as ws:
        trade = (await frame_where(ws, lambda f: "data" in f, 8))["data"]

    assert answer["result"]["serverTime"] > 10**15
    assert trade["E"] > 10**15 and trade["T"] > 10**15 and trade["t"] < 10**15
