"""Binance's official Python SDKs, unmodified, against `epochbot sim`: the conformance contract.

``binance-sdk-spot`` 13.3 and ``binance-sdk-derivatives-trading-usds-futures`` 18.1 (both on
``binance-common`` 4.7) are driven the way a new user drives them: one ``epochbot sim`` process per
market on loopback, the SDK told only the simulator's base URLs, its keys an HMAC pair and an Ed25519
pair the simulator holds as paper accounts. Every flow the SDKs offer for REST, the WebSocket API,
user data and market streams must succeed, deliver its events, and bring back no error frame; SDK
answers are checked to parse into the SDK's own models (a raw dict means the SDK gave up on the
answer), and REST answers to raise no parse warning.

docs/binance.md ("Conformance with Binance's official SDKs") holds the findings behind these
tests (each once a strict ``xfail`` naming a simulator deviation, all fixed), with the SDK source
and Binance's document; each fix also has a focused test with a raw client in
``tests/sim/test_sim_wire_contract.py``, so the contract does not depend on one client.

Bounded in time: every wait has a timeout, and an error frame ends a wait at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from decimal import ROUND_DOWN, Decimal

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.helpers import SimProcess

# The SDKs come with the test extras; without them this contract is skipped, not broken.
sdk_config = pytest.importorskip("binance_common.configuration")
sdk_errors = pytest.importorskip("binance_common.errors")
Spot = pytest.importorskip("binance_sdk_spot.spot").Spot
spot_rest = pytest.importorskip("binance_sdk_spot.rest_api.models")
spot_ws = pytest.importorskip("binance_sdk_spot.websocket_api.models")
spot_streams = pytest.importorskip("binance_sdk_spot.websocket_streams.models")
usdm = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures")
usdm_rest = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.rest_api.models")
usdm_ws = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.websocket_api.models")
usdm_stream_models = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.websocket_streams.models")

pytestmark = pytest.mark.conformance

SYMBOL = "BTCUSDT"
HMAC_KEY, HMAC_SECRET = "sdk-hmac-key", "sdk-hmac-secret"
ED25519_KEY = "sdk-ed25519-key"
WAIT_S = 5.0  # one event or answer over loopback

# --------------------------------------------------------------------------------- plumbing


class Ed25519Pair:
    """A fresh Ed25519 key: the PEM the SDK signs with, the public half the simulator holds."""

    def __init__(self) -> None:
        private = Ed25519PrivateKey.generate()
        self.pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_b64 = base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def ed25519() -> Ed25519Pair:
    return Ed25519Pair()


def _start(tmp_path_factory, market: str, ed25519: Ed25519Pair) -> SimProcess:
    accounts = f"{HMAC_KEY}:{HMAC_SECRET},{ED25519_KEY}:ed25519:{ed25519.public_b64}"
    return SimProcess(
        tmp_path_factory.mktemp(market),
        market=market,
        symbols=(SYMBOL,),
        args=("--rate", "20"),
        env={"EPOCHBOT_SIM_ACCOUNTS": accounts},
    )


@pytest.fixture(scope="module")
def spot_sim(tmp_path_factory, ed25519):
    with _start(tmp_path_factory, "spot", ed25519) as sim:
        yield sim


@pytest.fixture(scope="module")
def usdm_sim(tmp_path_factory, ed25519):
    with _start(tmp_path_factory, "usdm", ed25519) as sim:
        yield sim


def _keys(kind: str, ed25519: Ed25519Pair) -> dict:
    if kind == "hmac":
        return {"api_key": HMAC_KEY, "api_secret": HMAC_SECRET}
    return {"api_key": ED25519_KEY, "private_key": ed25519.pem}


def _rest_config(sim: SimProcess, keys: dict) -> sdk_config.ConfigurationRestAPI:
    # A 10 s timeout instead of the SDK's 1 s: the machine running the suite may be loaded.
    return sdk_config.ConfigurationRestAPI(base_path=sim.rest, timeout=10_000, **keys)


def spot_client(sim: SimProcess, kind: str = "hmac", ed25519: Ed25519Pair | None = None, **ws_api):
    keys = _keys(kind, ed25519) if kind != "none" else {}
    return Spot(
        config_rest_api=_rest_config(sim, keys),
        config_ws_api=sdk_config.ConfigurationWebSocketAPI(stream_url=sim.ws + "/ws-api/v3", **keys, **ws_api),
        config_ws_streams=sdk_config.ConfigurationWebSocketStreams(stream_url=sim.ws),
    )


def usdm_client(sim: SimProcess, kind: str = "hmac", ed25519: Ed25519Pair | None = None):
    keys = _keys(kind, ed25519) if kind != "none" else {}
    return usdm.DerivativesTradingUsdsFutures(
        config_rest_api=_rest_config(sim, keys),
        config_ws_api=sdk_config.ConfigurationWebSocketAPI(stream_url=sim.ws + "/ws-fapi/v1", **keys),
        config_ws_streams=sdk_config.ConfigurationWebSocketStreams(stream_url=sim.ws),
    )


def passive_bid(sim: SimProcess) -> float:
    """A buy price 5 % under the best bid, on a 0.1 grid (a multiple of both markets' ticks): the
    order rests, so its NEW event and its cancel are certain."""
    path = "/api/v3/depth" if sim.market == "spot" else "/fapi/v1/depth"
    book = sim.get(f"{path}?symbol={SYMBOL}&limit=5")
    price = (Decimal(book["bids"][0][0]) * Decimal("0.95")).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    return float(price)


def sdk_warnings(caplog) -> list[str]:
    """What the SDK logged at WARNING or above (it logs on the root logger)."""
    return [r.getMessage() for r in caplog.records if r.name == "root" and r.levelno >= logging.WARNING]


def parsed(answer):
    """The SDK model of an answer; a dict is what the SDK returns when the answer was an error or
    did not parse, so it fails here with what came back."""
    data = answer.data()
    assert not isinstance(data, dict), f"the SDK did not get a model: {data}"
    return data


class Tap:
    """What an SDK hands to a stream callback, and every error frame it reports, in arrival order.

    ``next`` returns the first message matching ``pred``; an error frame ends the wait at once."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.errors: list = []

    def message(self, item) -> None:
        self.queue.put_nowait(("message", item))

    def error(self, err) -> None:
        self.errors.append(err)
        self.queue.put_nowait(("error", err))

    def watch(self, client) -> None:
        """Report the error frames of every connection the client has now."""
        client.on_connection("error", self.error)

    async def next(self, pred=lambda _m: True, timeout: float = WAIT_S, what: str = "a message"):
        async def scan():
            while True:
                kind, item = await self.queue.get()
                if kind == "error":
                    raise AssertionError(f"error frame while waiting for {what}: {item}")
                if pred(item):
                    return item

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout} s") from None


async def until(condition, what: str, timeout: float = WAIT_S) -> None:
    """Wait (polling the event loop) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def ws_api_connection(client):
    """The SDK's WebSocket API client, connected (``create_connection`` returns the client)."""
    connection = await asyncio.wait_for(client.websocket_api.create_connection(), WAIT_S)
    assert connection is client.websocket_api, "the SDK could not connect to the WebSocket API"
    return connection


def execution_report_of(client_order_id: str):
    return lambda e: getattr(e.actual_instance, "c", None) == client_order_id


# ================================================================================== spot REST


def test_spot_rest_reads_exchange_info_and_depth(spot_sim, caplog):
    rest = spot_client(spot_sim, "none").rest_api

    info = rest.exchange_info(symbol=SYMBOL)
    depth = rest.depth(symbol=SYMBOL, limit=5)

    assert isinstance(info.data(), spot_rest.ExchangeInfoResponse)
    assert [s.symbol for s in info.data().symbols] == [SYMBOL]
    book = depth.data()
    assert isinstance(book, spot_rest.DepthResponse) and book.last_update_id > 0
    assert len(book.bids) == 5 and len(book.asks) == 5
    assert [(r.rateLimitType, r.interval, r.intervalNum) for r in depth.rate_limits] == [
        ("REQUEST_WEIGHT", "MINUTE", 1)
    ]
    assert sdk_warnings(caplog) == []


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
def test_spot_rest_places_queries_and_cancels_an_order_signed_in_the_query_string(spot_sim, ed25519, kind, caplog):
    # The SDK sends every parameter of POST/DELETE /api/v3/order in the query string, body empty,
    # and signs the percent-encoded query (':' and '/' of the client order id encoded).
    rest = spot_client(spot_sim, kind, ed25519).rest_api
    client_order_id = f"sdk-rest:{kind}/1"

    placed = rest.new_order(
        symbol=SYMBOL,
        side=spot_rest.NewOrderSideEnum.BUY,
        type=spot_rest.NewOrderTypeEnum.LIMIT,
        time_in_force=spot_rest.NewOrderTimeInForceEnum.GTC,
        quantity=0.01,
        price=passive_bid(spot_sim),
        new_client_order_id=client_order_id,
    ).data()
    queried = rest.get_order(symbol=SYMBOL, order_id=placed.order_id).data()
    open_orders = rest.get_open_orders(symbol=SYMBOL).data()
    canceled = rest.delete_order(symbol=SYMBOL, order_id=placed.order_id).data()
    account = rest.get_account().data()

    assert isinstance(placed, spot_rest.NewOrderResponse) and placed.client_order_id == client_order_id
    assert isinstance(queried, spot_rest.GetOrderResponse) and isinstance(canceled, spot_rest.DeleteOrderResponse)
    assert (placed.status, queried.status, canceled.status) == ("NEW", "NEW", "CANCELED")
    assert placed.order_id in [o.order_id for o in open_orders]
    assert isinstance(account, spot_rest.GetAccountResponse) and account.balances
    assert sdk_warnings(caplog) == []


def test_spot_rest_order_answer_reports_the_order_count_headers(spot_sim):
    rest = spot_client(spot_sim).rest_api

    placed = rest.new_order(
        symbol=SYMBOL,
        side=spot_rest.NewOrderSideEnum.BUY,
        type=spot_rest.NewOrderTypeEnum.LIMIT,
        time_in_force=spot_rest.NewOrderTimeInForceEnum.GTC,
        quantity=0.01,
        price=passive_bid(spot_sim),
    )
    rest.delete_order(symbol=SYMBOL, order_id=placed.data().order_id)

    # rest-api.md "General Info on Limits": every successful order response carries
    # X-MBX-ORDER-COUNT-(intervalNum)(intervalLetter); the SDK turns them into rate_limits.
    windows = {(r.rateLimitType, r.interval, r.intervalNum) for r in placed.rate_limits}
    assert {("ORDERS", "SECOND", 10), ("ORDERS", "DAY", 1)} <= windows


# ========================================================================= spot WebSocket API


@pytest.mark.parametrize("auth", ["hmac", "ed25519", "ed25519-session-logon"])
async def test_spot_websocket_api_places_queries_and_cancels_with_rate_limits_on_every_answer(spot_sim, ed25519, auth):
    client = spot_client(spot_sim, "hmac" if auth == "hmac" else "ed25519", ed25519)
    price = await asyncio.to_thread(passive_bid, spot_sim)
    api = await ws_api_connection(client)
    tap = Tap()
    tap.watch(api)
    answers = []
    try:
        if auth == "ed25519-session-logon":  # afterwards the SDK sends no apiKey and no signature
            logon = await api.session_logon()
            assert parsed(logon).result.api_key == ED25519_KEY
            answers.append(logon)
        placed = await api.order_place(
            symbol=SYMBOL,
            side=spot_ws.OrderPlaceSideEnum.BUY,
            type=spot_ws.OrderPlaceTypeEnum.LIMIT,
            time_in_force=spot_ws.OrderPlaceTimeInForceEnum.GTC,
            quantity=0.01,
            price=price,
            new_client_order_id=f"sdk-ws-{auth}",
        )
        order_id = parsed(placed).result.order_id
        status = await api.order_status(symbol=SYMBOL, order_id=order_id)
        canceled = await api.order_cancel(symbol=SYMBOL, order_id=order_id)
        answers += [placed, status, canceled]
    finally:
        await api.close_connection()

    assert isinstance(parsed(placed), spot_ws.OrderPlaceResponse)
    assert (parsed(status).result.status, parsed(canceled).result.status) == ("NEW", "CANCELED")
    for answer in answers:  # the SDK reads "rateLimits" of every answer (KeyError otherwise)
        assert {r.rateLimitType for r in answer.rate_limits} >= {"REQUEST_WEIGHT"}
    assert tap.errors == []


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
async def test_spot_websocket_api_accepts_the_sdk_signature_over_the_percent_encoded_payload(spot_sim, ed25519, kind):
    # ':' and '/' are legal in a client order id (^[\.A-Z\:/a-z0-9_-]{1,36}$); urlencode escapes them.
    client = spot_client(spot_sim, kind, ed25519)
    price = await asyncio.to_thread(passive_bid, spot_sim)
    api = await ws_api_connection(client)
    try:
        placed = await api.order_place(
            symbol=SYMBOL,
            side=spot_ws.OrderPlaceSideEnum.BUY,
            type=spot_ws.OrderPlaceTypeEnum.LIMIT,
            time_in_force=spot_ws.OrderPlaceTimeInForceEnum.GTC,
            quantity=0.01,
            price=price,
            new_client_order_id=f"sdk:{kind}/urlencoded",
        )
        order = parsed(placed).result
        await api.order_cancel(symbol=SYMBOL, order_id=order.order_id)
    finally:
        await api.close_connection()

    assert order.client_order_id == f"sdk:{kind}/urlencoded"


def doc_signed(method: str, request_id: str, **params) -> dict:
    """A request signed as web-socket-api.md "SIGNED request example" says: HMAC over the sorted
    ``k=v`` pairs of the raw values ("no percent encoding here!")."""
    params = {**params, "apiKey": HMAC_KEY, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    signature = hmac.new(HMAC_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {"id": request_id, "method": method, "params": {**params, "signature": signature}}


async def test_spot_websocket_api_accepts_the_documented_raw_signature_payload(spot_sim):
    price = await asyncio.to_thread(passive_bid, spot_sim)
    order = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01"}

    async with aiohttp.ClientSession() as http, http.ws_connect(spot_sim.ws + "/ws-api/v3") as ws:
        await ws.send_json(
            doc_signed("order.place", "doc-raw", **order, price=f"{price:.1f}", newClientOrderId="doc:raw/1")
        )
        answer = await ws.receive_json(timeout=WAIT_S)
        if answer.get("status") == 200:
            await ws.send_json(
                doc_signed("order.cancel", "doc-cancel", symbol=SYMBOL, orderId=answer["result"]["orderId"])
            )
            await ws.receive_json(timeout=WAIT_S)

    assert (answer["id"], answer["status"]) == ("doc-raw", 200), answer
    assert answer["result"]["clientOrderId"] == "doc:raw/1" and answer["rateLimits"]


@pytest.mark.parametrize("method", ["depth", "account_status"])
async def test_spot_websocket_api_serves_the_sdk_read_methods(spot_sim, method):
    api = await ws_api_connection(spot_client(spot_sim))
    try:
        answer = await (api.depth(symbol=SYMBOL, limit=5) if method == "depth" else api.account_status())
    finally:
        await api.close_connection()

    assert parsed(answer).status == 200 and answer.rate_limits


# ============================================================================= spot user data


async def _place_resting_order(api, price: float, client_order_id: str) -> int:
    placed = await api.order_place(
        symbol=SYMBOL,
        side=spot_ws.OrderPlaceSideEnum.BUY,
        type=spot_ws.OrderPlaceTypeEnum.LIMIT,
        time_in_force=spot_ws.OrderPlaceTimeInForceEnum.GTC,
        quantity=0.01,
        price=price,
        new_client_order_id=client_order_id,
    )
    return parsed(placed).result.order_id


@pytest.mark.parametrize("how", ["subscribe.signature/hmac", "session.logon+subscribe/ed25519"])
async def test_spot_user_data_subscription_delivers_the_execution_report_of_an_order(spot_sim, ed25519, how):
    client = spot_client(spot_sim, "hmac" if "hmac" in how else "ed25519", ed25519)
    price = await asyncio.to_thread(passive_bid, spot_sim)
    client_order_id = "sdk-uds-" + how.split("/")[1]
    api = await ws_api_connection(client)
    tap = Tap()
    tap.watch(api)
    try:
        if how.startswith("session.logon"):
            parsed(await api.session_logon())
            subscription = await api.user_data_stream_subscribe()
        else:
            subscription = await api.user_data_stream_subscribe_signature()
        subscription.stream.on("message", tap.message)
        order_id = await _place_resting_order(api, price, client_order_id)
        report = await tap.next(execution_report_of(client_order_id), what="its executionReport")
        await api.order_cancel(symbol=SYMBOL, order_id=order_id)
        canceled = await tap.next(
            lambda e: execution_report_of(client_order_id)(e) and e.actual_instance.x == "CANCELED",
            what="the executionReport of its cancel",
        )
    finally:
        await api.close_connection()

    assert isinstance(report.actual_instance, spot_ws.ExecutionReport)
    assert (report.actual_instance.x, report.actual_instance.i) == ("NEW", order_id)
    assert canceled.actual_instance.X == "CANCELED"
    assert subscription.response.rate_limits and tap.errors == []


async def test_spot_user_data_unsubscribe_by_subscription_id(spot_sim):
    api = await ws_api_connection(spot_client(spot_sim))
    try:
        subscription = await api.user_data_stream_subscribe_signature()
        subscription_id = parsed(subscription.response).result.subscription_id
        answer = await api.user_data_stream_unsubscribe(subscription_id=subscription_id)
    finally:
        await api.close_connection()

    assert parsed(answer).status == 200


@pytest.mark.parametrize(
    "how",
    [
        "subscribe.signature/hmac",
        "session.logon+subscribe/ed25519",
    ],
)
async def test_spot_websocket_api_session_survives_server_shutdown(spot_sim, ed25519, how):
    # web-socket-api.md "Server Shutdown": {"event": {"e": "serverShutdown", ..}} is what the SDK
    # looks for; it reconnects (5 s later), logs on again and subscribes its user data again.
    client = spot_client(spot_sim, "hmac" if "hmac" in how else "ed25519", ed25519, reconnect_delay=0)
    price = await asyncio.to_thread(passive_bid, spot_sim)
    client_order_id = "sdk-after-shutdown-" + how.split("/")[1]
    api = await ws_api_connection(client)
    tap = Tap()
    tap.watch(api)
    opened = asyncio.Event()
    try:
        if how.startswith("session.logon"):
            parsed(await api.session_logon())
            subscription = await api.user_data_stream_subscribe()
        else:
            subscription = await api.user_data_stream_subscribe_signature()
        subscription.stream.on("message", tap.message)
        # "open" of the replacement: registered when the old connection reports "reconnect" (the SDK
        # copies the old connection's callbacks to the new one, then emits "open" on it).
        api.on_connection("reconnect", lambda: api.on_connection("open", opened.set))
        (old,) = api.connections
        await asyncio.to_thread(spot_sim.post, "/_sim/fault", {"kind": "server_shutdown"})
        await asyncio.wait_for(opened.wait(), 10)  # the SDK waits 5 s before it reconnects
        # Then the SDK closes the old connection itself (the simulator, like Binance, keeps it up for
        # its grace); until that close handshake is over the SDK may still hand the old one out.
        await until(lambda: old not in api.connections, what="the SDK to drop the old connection")
        order_id = await _place_resting_order(api, price, client_order_id)
        report = await tap.next(execution_report_of(client_order_id), what="an executionReport after the reconnect")
        await api.order_cancel(symbol=SYMBOL, order_id=order_id)
    finally:
        await api.close_connection()

    assert report.actual_instance.x == "NEW" and tap.errors == []


# ================================================================================ spot streams


async def stream_connection(client):
    """The SDK's stream client, connected; its error frames go to the returned tap."""
    streams = client.websocket_streams
    connection = await asyncio.wait_for(streams.create_connection(), WAIT_S)
    tap = Tap()
    tap.watch(streams)
    return connection, tap


async def test_spot_diff_depth_stream_through_the_sdk_is_continuous(spot_sim):
    streams, tap = await stream_connection(spot_client(spot_sim, "none"))
    try:
        handle = await streams.diff_book_depth(
            symbol=SYMBOL, update_speed=spot_streams.DiffBookDepthUpdateSpeedEnum.UPDATE_SPEED_100ms
        )
        handle.on("message", tap.message)
        first = await tap.next(what="a depthUpdate")
        second = await tap.next(what="a second depthUpdate")
    finally:
        await streams.close_connection()

    assert isinstance(first, spot_streams.DiffBookDepthResponse) and first.e == "depthUpdate"
    assert second.U == first.u + 1


async def test_spot_agg_trade_and_book_ticker_streams_through_the_sdk(spot_sim):
    streams, tap = await stream_connection(spot_client(spot_sim, "none"))
    try:
        for subscribe in (streams.agg_trade, streams.book_ticker):
            (await subscribe(symbol=SYMBOL)).on("message", tap.message)
        trade = await tap.next(lambda m: isinstance(m, spot_streams.AggTradeResponse), what="an aggTrade")
        ticker = await tap.next(lambda m: isinstance(m, spot_streams.BookTickerResponse), what="a bookTicker")
    finally:
        await streams.close_connection()

    assert trade.s == SYMBOL and ticker.s == SYMBOL


async def test_spot_trade_stream_through_the_sdk(spot_sim):
    streams, tap = await stream_connection(spot_client(spot_sim, "none"))
    try:
        (await streams.trade(symbol=SYMBOL)).on("message", tap.message)
        trade = await tap.next(what="a trade")
    finally:
        await streams.close_connection()

    assert isinstance(trade, spot_streams.TradeResponse) and trade.e == "trade"


ACCEPTED_IDS = [
    pytest.param(7, id="int"),
    pytest.param(2**63 - 1, id="int64-max"),
    pytest.param(-(2**63), id="int64-min"),
    pytest.param("abcXYZ0123", id="alphanumeric"),
    pytest.param("a" * 36, id="36-chars"),
    pytest.param("4885f793-e5ad-4c3b-8f6c-55d891472b71", id="uuid4-as-the-sdk-sends"),
    pytest.param(None, id="null"),
]
REFUSED_IDS = [
    pytest.param("a" * 37, id="37-chars"),
    pytest.param(2**63, id="beyond-int64"),
    pytest.param(1.5, id="float"),
]


async def _subscribe_answer(ws_url: str, request_id) -> dict:
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": request_id}))
        while True:
            frame = await ws.receive_json(timeout=WAIT_S)
            if "stream" not in frame:
                return frame


@pytest.mark.parametrize("request_id", ACCEPTED_IDS)
async def test_spot_stream_subscribe_accepts_every_documented_id_format(spot_sim, request_id):
    # web-socket-streams.md "Live Subscribing/Unsubscribing": 64-bit signed integer, alphanumeric
    # string of at most 36 characters, or null; web-socket-api.md "Request format": UUIDs welcome.
    answer = await _subscribe_answer(spot_sim.ws + "/stream", request_id)

    assert answer == {"result": None, "id": request_id}


@pytest.mark.parametrize("request_id", REFUSED_IDS)
async def test_spot_stream_subscribe_refuses_an_id_outside_the_documented_formats(spot_sim, request_id):
    answer = await _subscribe_answer(spot_sim.ws + "/stream", request_id)

    assert answer.get("error", {}).get("code") == 2, answer


# ================================================================================== USD-M REST


def test_usdm_rest_reads_exchange_info_and_depth(usdm_sim, caplog):
    rest = usdm_client(usdm_sim, "none").rest_api

    info = rest.exchange_information().data()
    book = rest.order_book(symbol=SYMBOL, limit=5).data()

    assert isinstance(info, usdm_rest.ExchangeInformationResponse) and [s.symbol for s in info.symbols] == [SYMBOL]
    assert isinstance(book, usdm_rest.OrderBookResponse) and book.last_update_id > 0 and len(book.bids) == 5
    assert sdk_warnings(caplog) == []


def test_usdm_rest_listen_key_is_created_kept_alive_and_closed(usdm_sim, caplog):
    # The SDK sends POST/PUT/DELETE /fapi/v1/listenKey with no parameter at all, the key in the
    # X-MBX-APIKEY header only.
    rest = usdm_client(usdm_sim).rest_api

    created = rest.start_user_data_stream().data()
    kept = rest.keepalive_user_data_stream().data()
    rest.close_user_data_stream()
    with pytest.raises(sdk_errors.BadRequestError):  # -1125: the closed key no longer exists
        rest.keepalive_user_data_stream()
    again = rest.start_user_data_stream().data()

    assert created.listen_key and kept.listen_key == created.listen_key and again.listen_key
    assert sdk_warnings(caplog) == []


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
def test_usdm_rest_places_queries_and_cancels_an_order_signed_in_the_query_string(usdm_sim, ed25519, kind, caplog):
    rest = usdm_client(usdm_sim, kind, ed25519).rest_api
    client_order_id = f"sdk-rest:{kind}/1"

    placed = rest.new_order(
        symbol=SYMBOL,
        side=usdm_rest.NewOrderSideEnum.BUY,
        type=usdm_rest.NewOrderTypeEnum.LIMIT,
        time_in_force=usdm_rest.NewOrderTimeInForceEnum.GTC,
        quantity=0.01,
        price=passive_bid(usdm_sim),
        new_client_order_id=client_order_id,
    ).data()
    queried = rest.query_order(symbol=SYMBOL, order_id=placed.order_id).data()
    canceled = rest.cancel_order(symbol=SYMBOL, order_id=placed.order_id).data()

    assert isinstance(placed, usdm_rest.NewOrderResponse) and placed.client_order_id == client_order_id
    assert isinstance(queried, usdm_rest.QueryOrderResponse) and isinstance(canceled, usdm_rest.CancelOrderResponse)
    assert (placed.status, queried.status, canceled.status) == ("NEW", "NEW", "CANCELED")
    assert sdk_warnings(caplog) == []


def test_usdm_rest_order_answer_reports_the_order_count_headers(usdm_sim):
    rest = usdm_client(usdm_sim).rest_api

    placed = rest.new_order(
        symbol=SYMBOL,
        side=usdm_rest.NewOrderSideEnum.BUY,
        type=usdm_rest.NewOrderTypeEnum.LIMIT,
        time_in_force=usdm_rest.NewOrderTimeInForceEnum.GTC,
        quantity=0.01,
        price=passive_bid(usdm_sim),
    )
    rest.cancel_order(symbol=SYMBOL, order_id=placed.data().order_id)

    assert "ORDERS" in {r.rateLimitType for r in placed.rate_limits}


# ======================================================================== USD-M WebSocket API


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
async def test_usdm_websocket_api_places_queries_and_cancels_with_rate_limits_on_every_answer(usdm_sim, ed25519, kind):
    client = usdm_client(usdm_sim, kind, ed25519)
    price = await asyncio.to_thread(passive_bid, usdm_sim)
    api = await ws_api_connection(client)
    tap = Tap()
    tap.watch(api)
    try:
        placed = await api.new_order(
            symbol=SYMBOL,
            side=usdm_ws.NewOrderSideEnum.BUY,
            type=usdm_ws.NewOrderTypeEnum.LIMIT,
            time_in_force=usdm_ws.NewOrderTimeInForceEnum.GTC,
            quantity=0.01,
            price=price,
            new_client_order_id=f"sdk-ws-{kind}",
        )
        order_id = parsed(placed).result.order_id
        status = await api.query_order(symbol=SYMBOL, order_id=order_id)
        canceled = await api.cancel_order(symbol=SYMBOL, order_id=order_id)
    finally:
        await api.close_connection()

    assert isinstance(parsed(placed), usdm_ws.NewOrderResponse)
    assert (parsed(status).result.status, parsed(canceled).result.status) == ("NEW", "CANCELED")
    for answer in (placed, status, canceled):
        assert {r.rateLimitType for r in answer.rate_limits} >= {"REQUEST_WEIGHT"}
    assert tap.errors == []


async def test_usdm_websocket_api_accepts_the_sdk_signature_over_the_percent_encoded_payload(usdm_sim):
    client = usdm_client(usdm_sim)
    price = await asyncio.to_thread(passive_bid, usdm_sim)
    api = await ws_api_connection(client)
    try:
        placed = await api.new_order(
            symbol=SYMBOL,
            side=usdm_ws.NewOrderSideEnum.BUY,
            type=usdm_ws.NewOrderTypeEnum.LIMIT,
            time_in_force=usdm_ws.NewOrderTimeInForceEnum.GTC,
            quantity=0.01,
            price=price,
            new_client_order_id="sdk:hmac/urlencoded",
        )
        order = parsed(placed).result
        await api.cancel_order(symbol=SYMBOL, order_id=order.order_id)
    finally:
        await api.close_connection()

    assert order.client_order_id == "sdk:hmac/urlencoded"


async def test_usdm_websocket_api_starts_pings_and_stops_a_listen_key(usdm_sim):
    api = await ws_api_connection(usdm_client(usdm_sim))
    try:
        started = await api.start_user_data_stream()
        pinged = await api.keepalive_user_data_stream()
        stopped = await api.close_user_data_stream()
    finally:
        await api.close_connection()

    assert parsed(started).result.listen_key
    assert parsed(pinged).result.listen_key == parsed(started).result.listen_key
    assert parsed(stopped).status == 200


# ============================================================================== USD-M streams


async def test_usdm_stream_client_connects_its_market_public_and_private_routes(usdm_sim):
    streams = usdm_client(usdm_sim, "none").websocket_streams
    try:
        connection = await asyncio.wait_for(streams.create_connection(), WAIT_S)
        routes = sorted(c.url_path for c in streams.connections)
    finally:
        await streams.close_connection()

    assert connection is streams and routes == ["market", "private", "public"]


async def usdm_streams(sim: SimProcess):
    """The USD-M stream client after create_connection(), whatever it returned: the routes it
    could open stay usable on the client object, so each route's test depends on that route only."""
    streams = usdm_client(sim, "none").websocket_streams
    await asyncio.wait_for(streams.create_connection(), WAIT_S)
    tap = Tap()
    tap.watch(streams)
    return streams, tap


async def test_usdm_diff_depth_on_public_through_the_sdk_is_continuous(usdm_sim):
    streams, tap = await usdm_streams(usdm_sim)
    try:
        (await streams.diff_book_depth_streams(symbol=SYMBOL)).on("message", tap.message)
        first = await tap.next(what="a depthUpdate")
        second = await tap.next(what="a second depthUpdate")
    finally:
        await streams.close_connection()

    assert first.e == "depthUpdate" and second.pu == first.u


async def test_usdm_agg_trade_and_mark_price_on_market_through_the_sdk(usdm_sim):
    streams, tap = await usdm_streams(usdm_sim)
    try:
        (await streams.aggregate_trade_streams(symbol=SYMBOL)).on("message", tap.message)
        mark = await streams.mark_price_stream(
            symbol=SYMBOL, update_speed=usdm_stream_models.MarkPriceStreamUpdateSpeedEnum.UPDATE_SPEED_1s
        )
        mark.on("message", tap.message)
        trade = await tap.next(lambda m: getattr(m, "e", None) == "aggTrade", what="an aggTrade")
        price = await tap.next(lambda m: getattr(m, "e", None) == "markPriceUpdate", timeout=8, what="a markPrice")
    finally:
        await streams.close_connection()

    assert trade.s == SYMBOL and price.s == SYMBOL and price.p


async def _raw_events(ws_url: str, stream: str, count: int) -> list[dict]:
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": [stream], "id": 1})
        events: list[dict] = []
        deadline = time.monotonic() + 8
        while len(events) < count:
            frame = await ws.receive_json(timeout=max(0.1, deadline - time.monotonic()))
            if frame.get("stream") == stream:
                events.append(frame["data"])
        return events


async def test_usdm_mark_price_events_carry_the_moving_average(usdm_sim):
    (event,) = await _raw_events(usdm_sim.ws + "/market/stream", "btcusdt@markPrice@1s", 1)

    assert Decimal(event["ap"]) > 0


async def test_usdm_agg_trade_events_carry_the_normal_quantity(usdm_sim):
    (event,) = await _raw_events(usdm_sim.ws + "/market/stream", "btcusdt@aggTrade", 1)

    assert Decimal(event["nq"]) <= Decimal(event["q"])


async def test_usdm_user_data_through_the_sdk_subscribes_the_listen_key_on_private(usdm_sim):
    client = usdm_client(usdm_sim)
    listen_key = (await asyncio.to_thread(client.rest_api.start_user_data_stream)).data().listen_key
    price = await asyncio.to_thread(passive_bid, usdm_sim)
    streams = client.websocket_streams
    connection = await asyncio.wait_for(streams.create_connection(), WAIT_S)
    tap = Tap()
    tap.watch(streams)
    try:
        assert connection is streams, "the SDK could not open its market, public and private routes"
        (await streams.user_data(listen_key)).on("message", tap.message)
        placed = await asyncio.to_thread(
            client.rest_api.new_order,
            symbol=SYMBOL,
            side=usdm_rest.NewOrderSideEnum.BUY,
            type=usdm_rest.NewOrderTypeEnum.LIMIT,
            time_in_force=usdm_rest.NewOrderTimeInForceEnum.GTC,
            quantity=0.01,
            price=price,
            new_client_order_id="sdk-private-stream",
        )
        update = await tap.next(
            lambda e: getattr(getattr(e.actual_instance, "o", None), "c", None) == "sdk-private-stream",
            what="its ORDER_TRADE_UPDATE",
        )
        await asyncio.to_thread(client.rest_api.cancel_order, symbol=SYMBOL, order_id=placed.data().order_id)
    finally:
        await streams.close_connection()

    assert isinstance(update.actual_instance, usdm_stream_models.OrderTradeUpdate)
    assert update.actual_instance.o.x == "NEW" and tap.errors == []


async def test_usdm_documented_private_ws_route_delivers_order_trade_update(usdm_sim):
    # "Important WebSocket Change Notice" (2026-03-06): /private/ws?listenKey=<key>&events=<E1>/<E2>.
    client = usdm_client(usdm_sim)
    listen_key = (await asyncio.to_thread(client.rest_api.start_user_data_stream)).data().listen_key
    price = await asyncio.to_thread(passive_bid, usdm_sim)
    url = f"{usdm_sim.ws}/private/ws?listenKey={listen_key}&events=ORDER_TRADE_UPDATE"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        placed = await asyncio.to_thread(
            client.rest_api.new_order,
            symbol=SYMBOL,
            side=usdm_rest.NewOrderSideEnum.BUY,
            type=usdm_rest.NewOrderTypeEnum.LIMIT,
            time_in_force=usdm_rest.NewOrderTimeInForceEnum.GTC,
            quantity=0.01,
            price=price,
            new_client_order_id="sdk-private-ws",
        )
        while True:
            event = await ws.receive_json(timeout=WAIT_S)
            if event.get("e") == "ORDER_TRADE_UPDATE" and event["o"]["c"] == "sdk-private-ws":
                break
        await asyncio.to_thread(client.rest_api.cancel_order, symbol=SYMBOL, order_id=placed.data().order_id)

    assert (event["o"]["x"], event["o"]["i"]) == ("NEW", placed.data().order_id)


# ======================================== more SDK flows, and the request shapes the SDKs produce
# The SDKs' generated clients serialise booleans as "true"/"false", enums as their values, Decimal
# as plain decimals, lists as compact JSON (REST: in the query string; WebSocket API: as a JSON
# string value), and send `time_unit` as the X-MBX-TIME-UNIT header (REST) or `?timeUnit=` (both
# websockets). Each shape is exercised here once through the real client.


async def test_spot_websocket_api_lists_open_orders_and_reads_tickers(spot_sim):
    price = await asyncio.to_thread(passive_bid, spot_sim)
    api = await ws_api_connection(spot_client(spot_sim))
    tap = Tap()
    tap.watch(api)
    try:
        order_id = await _place_resting_order(api, price, "sdk-open-orders")
        listed = await api.open_orders_status(symbol=SYMBOL)
        everywhere = await api.open_orders_status()
        ticker = await api.ticker_price(symbol=SYMBOL)
        books = await api.ticker_book(symbols=[SYMBOL])
        await api.order_cancel(symbol=SYMBOL, order_id=order_id)
    finally:
        await api.close_connection()

    assert order_id in [o.order_id for o in parsed(listed).result]
    assert order_id in [o.order_id for o in parsed(everywhere).result]
    # one symbol and a list of symbols are the two shapes of the SDK's oneOf models
    assert parsed(ticker).actual_instance.result.symbol == SYMBOL
    assert [b.symbol for b in parsed(books).actual_instance.result] == [SYMBOL] and tap.errors == []


def test_spot_rest_exchange_info_takes_lists_enums_and_booleans_as_the_sdk_serialises_them(spot_sim, caplog):
    rest = spot_client(spot_sim, "none").rest_api

    listed = rest.exchange_info(symbols=[SYMBOL]).data()
    spot_only = rest.exchange_info(
        permissions=spot_rest.ExchangeInfoPermissionsEnum.SPOT, show_permission_sets=False
    ).data()
    trading = rest.exchange_info(symbol_status=spot_rest.ExchangeInfoSymbolStatusEnum.TRADING).data()
    with pytest.raises(sdk_errors.BadRequestError):  # -1121
        rest.exchange_info(symbol="NOPEUSDT")

    assert [s.symbol for s in listed.symbols] == [SYMBOL] == [s.symbol for s in trading.symbols]
    assert [s.permission_sets for s in spot_only.symbols] == [[]]
    assert sdk_warnings(caplog) == []


async def test_spot_websocket_api_takes_list_and_boolean_parameters(spot_sim):
    api = await ws_api_connection(spot_client(spot_sim))
    try:
        info = await api.exchange_info(symbols=[SYMBOL], show_permission_sets=False)
        account = await api.account_status(omit_zero_balances=True)
    finally:
        await api.close_connection()

    # The SDK's exchangeInfo model is the bare result's: the answer's envelope fields are all None
    # and `result` lands among the additional properties (so it is against Binance too).
    assert [s["symbol"] for s in parsed(info).additional_properties["result"]["symbols"]] == [SYMBOL]
    assert all(b.free != "0.00000000" or b.locked != "0.00000000" for b in parsed(account).result.balances)


@pytest.mark.parametrize("transport", ["rest", "websocket-api"])
async def test_spot_orders_take_decimal_quantities_and_enum_response_types(spot_sim, transport):
    client = spot_client(spot_sim)
    price = Decimal(str(await asyncio.to_thread(passive_bid, spot_sim)))
    common = {
        "symbol": SYMBOL,
        "quantity": Decimal("0.01"),
        "price": price,
        "new_client_order_id": f"sdk-dec-{transport}",
    }
    if transport == "rest":
        placed = await asyncio.to_thread(
            client.rest_api.new_order,
            side=spot_rest.NewOrderSideEnum.BUY,
            type=spot_rest.NewOrderTypeEnum.LIMIT,
            time_in_force=spot_rest.NewOrderTimeInForceEnum.GTC,
            new_order_resp_type=spot_rest.NewOrderNewOrderRespTypeEnum.RESULT,
            **common,
        )
        order = placed.data()
        await asyncio.to_thread(client.rest_api.delete_order, symbol=SYMBOL, order_id=order.order_id)
    else:
        api = await ws_api_connection(client)
        try:
            placed = await api.order_place(
                side=spot_ws.OrderPlaceSideEnum.BUY,
                type=spot_ws.OrderPlaceTypeEnum.LIMIT,
                time_in_force=spot_ws.OrderPlaceTimeInForceEnum.GTC,
                new_order_resp_type=spot_ws.OrderPlaceNewOrderRespTypeEnum.RESULT,
                **common,
            )
            order = parsed(placed).result
            await api.order_cancel(symbol=SYMBOL, order_id=order.order_id)
        finally:
            await api.close_connection()

    assert order.client_order_id == f"sdk-dec-{transport}" and order.status == "NEW"
    assert Decimal(order.orig_qty) == Decimal("0.01") and Decimal(order.price) == price


async def test_spot_clients_configured_for_microseconds_get_microsecond_times(spot_sim):
    # The REST client sends X-MBX-TIME-UNIT; the websocket clients connect with ?timeUnit=.
    client = Spot(
        config_rest_api=sdk_config.ConfigurationRestAPI(
            base_path=spot_sim.rest, timeout=10_000, time_unit="MICROSECOND"
        ),
        config_ws_api=sdk_config.ConfigurationWebSocketAPI(
            stream_url=spot_sim.ws + "/ws-api/v3", time_unit=sdk_config.TimeUnit.MICROSECOND
        ),
        config_ws_streams=sdk_config.ConfigurationWebSocketStreams(
            stream_url=spot_sim.ws, time_unit=sdk_config.TimeUnit.MICROSECOND
        ),
    )
    rest_time = (await asyncio.to_thread(client.rest_api.time)).data().server_time
    api = await ws_api_connection(client)
    try:
        ws_time = parsed(await api.time()).result.server_time
    finally:
        await api.close_connection()
    streams, tap = await stream_connection(client)
    try:
        (await streams.trade(symbol=SYMBOL)).on("message", tap.message)
        trade = await tap.next(what="a trade")
    finally:
        await streams.close_connection()

    now_us = time.time() * 1_000_000
    for t in (rest_time, ws_time, trade.E, trade.T):
        assert abs(t - now_us) < 60_000_000, t  # microseconds (a millisecond value is 1000 times smaller)


async def test_usdm_websocket_api_reads_depth_tickers_account_balance_and_positions(usdm_sim):
    api = await ws_api_connection(usdm_client(usdm_sim))
    tap = Tap()
    tap.watch(api)
    try:
        book = await api.order_book(symbol=SYMBOL, limit=5)
        price = await api.symbol_price_ticker(symbol=SYMBOL)
        top = await api.symbol_order_book_ticker(symbol=SYMBOL)
        account = await api.account_information()
        account_v2 = await api.account_information_v2()
        balances = await api.futures_account_balance()
        positions = await api.position_information(symbol=SYMBOL)
    finally:
        await api.close_connection()

    # (the SDK's model names no bids/asks: they arrive as additional properties)
    assert len(parsed(book).result.additional_properties["bids"]) == 5
    assert parsed(price).actual_instance.result.symbol == SYMBOL == parsed(top).actual_instance.result.symbol
    assert parsed(account).result.assets and parsed(account_v2).status == 200
    assert [b.asset for b in parsed(balances).result] and [p.symbol for p in parsed(positions).result] == [SYMBOL]
    assert tap.errors == []


async def test_usdm_orders_take_enum_flags_and_all_orders_need_no_symbol(usdm_sim, caplog):
    client = usdm_client(usdm_sim)
    price = await asyncio.to_thread(passive_bid, usdm_sim)
    rest = client.rest_api

    placed = rest.new_order(
        symbol=SYMBOL,
        side=usdm_rest.NewOrderSideEnum.BUY,
        type=usdm_rest.NewOrderTypeEnum.LIMIT,
        time_in_force=usdm_rest.NewOrderTimeInForceEnum.GTC,
        reduce_only=usdm_rest.NewOrderReduceOnlyEnum.FALSE,
        new_order_resp_type=usdm_rest.NewOrderNewOrderRespTypeEnum.RESULT,
        quantity=0.01,
        price=price,
        new_client_order_id="sdk-usdm-flags",
    ).data()
    every = rest.all_orders().data()
    api = await ws_api_connection(client)
    try:
        by_client_id = await api.query_order(symbol=SYMBOL, orig_client_order_id="sdk-usdm-flags")
    finally:
        await api.close_connection()
    rest.cancel_order(symbol=SYMBOL, order_id=placed.order_id)

    assert placed.status == "NEW" and placed.reduce_only is False
    assert "sdk-usdm-flags" in [o.client_order_id for o in every]
    assert parsed(by_client_id).result.order_id == placed.order_id
    assert sdk_warnings(caplog) == []


async def test_usdm_listen_key_started_and_kept_alive_over_the_websocket_api_carries_user_data(usdm_sim):
    client = usdm_client(usdm_sim)
    price = await asyncio.to_thread(passive_bid, usdm_sim)
    api = await ws_api_connection(client)
    streams = client.websocket_streams
    try:
        listen_key = parsed(await api.start_user_data_stream()).result.listen_key
        await asyncio.wait_for(streams.create_connection(), WAIT_S)
        tap = Tap()
        tap.watch(streams)
        (await streams.user_data(listen_key)).on("message", tap.message)
        kept = parsed(await api.keepalive_user_data_stream()).result.listen_key
        placed = await asyncio.to_thread(
            client.rest_api.new_order,
            symbol=SYMBOL,
            side=usdm_rest.NewOrderSideEnum.BUY,
            type=usdm_rest.NewOrderTypeEnum.LIMIT,
            time_in_force=usdm_rest.NewOrderTimeInForceEnum.GTC,
            quantity=0.01,
            price=price,
            new_client_order_id="sdk-ws-listen-key",
        )
        update = await tap.next(
            lambda e: getattr(getattr(e.actual_instance, "o", None), "c", None) == "sdk-ws-listen-key",
            what="its ORDER_TRADE_UPDATE",
        )
        await asyncio.to_thread(client.rest_api.cancel_order, symbol=SYMBOL, order_id=placed.data().order_id)
    finally:
        await streams.close_connection()
        await api.close_connection()

    assert kept == listen_key and update.actual_instance.o.x == "NEW" and tap.errors == []
