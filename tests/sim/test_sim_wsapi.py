"""The simulator's WebSocket API answers as Binance's documents say (spot ws-api/v3, USD-M ws-fapi/v1)."""

from __future__ import annotations

import asyncio
import base64
import time

import aiohttp
import pytest

from epochbot.sim.server import SimConfig, SimExchange
from epochbot.venues.binance.signing import Signer

pytest.importorskip("cryptography")


def _ed25519() -> tuple[str, str]:
    """(PEM private key, base64 DER public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(public).decode()


def _rsa() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(public).decode()


ED_PEM, ED_PUB = _ed25519()
RSA_PEM, RSA_PUB = _rsa()
ACCOUNTS = f"hm:hm-secret,ed:ed25519:{ED_PUB},rs:rsa:{RSA_PUB}"
SIGNERS = {"hmac": Signer("hm", "hm-secret"), "ed25519": Signer("ed", ED_PEM), "rsa": Signer("rs", RSA_PEM)}


@pytest.fixture(params=["spot", "usdm"])
async def sim(request):
    async with SimExchange(
        SimConfig(market=request.param, symbols=["BTCUSDT"], seed=7, rate=20, accounts=ACCOUNTS)
    ) as ex:
        yield ex


@pytest.fixture
async def spot_sim():
    async with SimExchange(SimConfig(market="spot", symbols=["BTCUSDT"], seed=7, rate=20, accounts=ACCOUNTS)) as ex:
        yield ex


class Api:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0
        self.events: list[dict] = []

    async def call(self, method: str, params: dict | None = None, signer: Signer | None = None) -> dict:
        self.n += 1
        body: dict = {"id": f"req-{self.n}", "method": method}
        if params is not None or signer is not None:
            body["params"] = signer.sign_ws(params or {}, int(time.time() * 1000)) if signer else params
        await self.ws.send_json(body)
        while True:
            msg = await self.ws.receive_json(timeout=3)
            if "subscriptionId" in msg and "event" in msg:
                self.events.append(msg)
                continue
            assert msg["id"] == body["id"]
            return msg


async def _api(http, sim) -> Api:
    path = "/ws-api/v3" if sim.config.market == "spot" else "/ws-fapi/v1"
    return Api(await http.ws_connect(sim.ws_url + path))


def _limit_order(sim) -> dict:
    m = sim.market("BTCUSDT")
    from epochbot.sim.market import fixed

    qty = "0.01000" if sim.config.market == "spot" else "0.010"
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": qty,
        "price": fixed(m.best_bid - 100 * m.tick, m.price_decimals),
    }


@pytest.mark.parametrize("key_type", ["hmac", "ed25519", "rsa"])
async def test_order_place_status_cancel_accept_every_key_type_binance_accepts(sim, key_type):
    signer = SIGNERS[key_type]
    async with aiohttp.ClientSession() as http:
        api = await _api(http, sim)
        placed = await api.call("order.place", {**_limit_order(sim), "newClientOrderId": f"k-{key_type}"}, signer)
        assert placed["status"] == 200, placed
        assert placed["result"]["status"] == "NEW"
        status = await api.call("order.status", {"symbol": "BTCUSDT", "origClientOrderId": f"k-{key_type}"}, signer)
        assert status["result"]["orderId"] == placed["result"]["orderId"]
        opened = await api.call("openOrders.status", {"symbol": "BTCUSDT"}, signer)
        assert [o["clientOrderId"] for o in opened["result"]] == [f"k-{key_type}"]
        canceled = await api.call("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": f"k-{key_type}"}, signer)
        assert canceled["result"]["status"] == "CANCELED"


async def test_a_signature_by_another_key_is_refused_with_1022(sim):
    forged = Signer("ed", _ed25519()[0])  # right API key, wrong private key
    async with aiohttp.ClientSession() as http:
        api = await _api(http, sim)
        answer = await api.call("order.place", _limit_order(sim), forged)
    assert answer["status"] == 400 and answer["error"]["code"] == -1022


async def test_session_logon_accepts_only_ed25519_keys_then_requests_need_no_signature(sim):
    async with aiohttp.ClientSession() as http:
        api = await _api(http, sim)
        refused = await api.call("session.logon", {}, SIGNERS["hmac"])
        assert refused["status"] == 400 and refused["error"]["code"] == -4056
        logon = await api.call("session.logon", {}, SIGNERS["ed25519"])
        assert logon["status"] == 200 and logon["result"]["apiKey"] == "ed"
        placed = await api.call("order.place", {**_limit_order(sim), "timestamp": int(time.time() * 1000)})
        assert placed["status"] == 200, placed


async def test_user_data_subscriptions_wrap_events_with_their_subscription_id(spot_sim):
    async with aiohttp.ClientSession() as http:
        api = await _api(http, spot_sim)
        unauthorised = await api.call("userDataStream.subscribe")
        assert unauthorised["status"] == 401
        await api.call("session.logon", {}, SIGNERS["ed25519"])
        first = await api.call("userDataStream.subscribe")
        assert first["result"] == {"subscriptionId": 0}
        again = await api.call("userDataStream.subscribe")
        assert again["error"]["code"] == -2035  # one subscription per account per session
        second = await api.call("userDataStream.subscribe.signature", {}, SIGNERS["hmac"])
        assert second["result"] == {"subscriptionId": 1}
        await api.call("order.place", {**_limit_order(spot_sim), "newClientOrderId": "sub-1"}, SIGNERS["hmac"])
        for _ in range(20):
            if any(e["event"].get("e") == "executionReport" for e in api.events):
                break
            api.events.append(await api.ws.receive_json(timeout=3))
        reports = [e for e in api.events if e["event"].get("e") == "executionReport"]
        assert reports and all(e["subscriptionId"] == 1 for e in reports)  # the hmac account's subscription
        listed = await api.call("session.subscriptions")
        assert listed["result"] == [{"subscriptionId": 0}, {"subscriptionId": 1}]


async def test_answers_report_rate_limits_and_successful_orders_cost_no_weight(spot_sim):
    async with aiohttp.ClientSession() as http:
        api = await _api(http, spot_sim)
        before = (await api.call("ping"))["rateLimits"]
        weight = next(r for r in before if r["rateLimitType"] == "REQUEST_WEIGHT")
        assert weight["limit"] == 6000 and weight["interval"] == "MINUTE"
        placed = await api.call("order.place", _limit_order(spot_sim), SIGNERS["hmac"])
        after = {r["rateLimitType"] + r["interval"]: r["count"] for r in placed["rateLimits"]}
        assert after["REQUEST_WEIGHTMINUTE"] == weight["count"]  # placement succeeded: weight 0
        assert after["ORDERSSECOND"] == 1
        quiet = await api.call("ping", {"returnRateLimits": False})
        assert "rateLimits" not in quiet


async def test_symbol_status_fault_shows_in_exchange_info_and_refuses_new_orders_not_cancels(sim):
    signer = SIGNERS["hmac"]
    async with aiohttp.ClientSession() as http:
        api = await _api(http, sim)
        resting = await api.call("order.place", {**_limit_order(sim), "newClientOrderId": "rest-1"}, signer)
        assert resting["status"] == 200
        sim.inject("symbol_status", symbol="BTCUSDT", status="HALT")
        prefix = "/api/v3" if sim.config.market == "spot" else "/fapi/v1"
        async with http.get(sim.rest_url + prefix + "/exchangeInfo") as r:
            assert (await r.json())["symbols"][0]["status"] == "HALT"
        refused = await api.call("order.place", _limit_order(sim), signer)
        expected = (-2010, "Market is closed.") if sim.config.market == "spot" else (-1122, "Invalid symbol status.")
        assert (refused["error"]["code"], refused["error"]["msg"]) == expected
        canceled = await api.call("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": "rest-1"}, signer)
        assert canceled["result"]["status"] == "CANCELED"
        sim.faults.clear()
        assert (await api.call("order.place", _limit_order(sim), signer))["status"] == 200


@pytest.mark.parametrize("how", ["503", "drop", "timeout"])
async def test_unknown_execution_fault_answers_503_or_drops_or_never_answers(spot_sim, how):
    spot_sim.inject("unknown_execution", how=how)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(spot_sim.ws_url + "/ws-api/v3")
        await ws.send_json(
            {
                "id": 1,
                "method": "order.place",
                "params": SIGNERS["hmac"].sign_ws(_limit_order(spot_sim), int(time.time() * 1000)),
            }
        )
        if how == "503":
            answer = await ws.receive_json(timeout=3)
            assert answer["status"] == 503 and answer["error"]["code"] == -1000
        elif how == "drop":
            msg = await ws.receive(timeout=3)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        else:
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive_json(timeout=0.5)
        await ws.close()


async def test_logout_ends_only_the_logon_subscription_with_event_stream_terminated(spot_sim):
    async with aiohttp.ClientSession() as http:
        api = await _api(http, spot_sim)
        await api.call("session.logon", {}, SIGNERS["ed25519"])
        assert (await api.call("userDataStream.subscribe"))["result"] == {"subscriptionId": 0}
        assert (await api.call("userDataStream.subscribe.signature", {}, SIGNERS["hmac"]))["result"] == {
            "subscriptionId": 1
        }
        api.events.clear()
        await api.call("session.logout")
        assert [(e["subscriptionId"], e["event"]["e"]) for e in api.events] == [(0, "eventStreamTerminated")]
        assert (await api.call("session.subscriptions"))["result"] == [{"subscriptionId": 1}]


async def test_order_delay_fault_lets_a_cancel_overtake_its_order_as_on_binance(sim):
    """While ``order_delay`` holds a new order, its cancel is answered first with -2011
    "Unknown order sent." and the order opens afterwards; the answers come out of order."""
    signer = SIGNERS["hmac"]
    sim.inject("order_delay", ms=300)
    async with aiohttp.ClientSession() as http:
        ws = (await _api(http, sim)).ws
        now = int(time.time() * 1000)
        await ws.send_json(
            {
                "id": "place",
                "method": "order.place",
                "params": signer.sign_ws({**_limit_order(sim), "newClientOrderId": "held-1"}, now),
            }
        )
        await ws.send_json(
            {
                "id": "cancel",
                "method": "order.cancel",
                "params": signer.sign_ws({"symbol": "BTCUSDT", "origClientOrderId": "held-1"}, now),
            }
        )
        first = await ws.receive_json(timeout=3)
        second = await ws.receive_json(timeout=3)
        await ws.close()

    assert first["id"] == "cancel" and first["error"] == {"code": -2011, "msg": "Unknown order sent."}
    assert second["id"] == "place" and second["result"]["status"] == "NEW"
    assert [o["clientOrderId"] for o in sim.venue.open_orders("acct-1", "BTCUSDT")] == ["held-1"]  # "hm" is acct-1
