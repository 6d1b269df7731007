"""An unmodified third-party client (ccxt.pro) trades over the WebSocket API of `epochbot sim`.

The simulator runs as its own process (`python -m epochbot.app.cli sim`), exactly as an outsider would
start it; ccxt is only told the simulator's URLs. It places, queries and cancels an order over
the spot (`/ws-api/v3`) and USD-M (`/ws-fapi/v1`) WebSocket APIs, and finds the removed spot
listenKey endpoint answering 410. Bounded: each case finishes in a few seconds on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def sim_process(request):
    market = request.param
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "sim",
            "--port",
            "0",
            "--market",
            market,
            "--symbols",
            "BTCUSDT",
            "--seed",
            "7",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EPOCHBOT_SIM_ACCOUNTS": "ccxt-key:ccxt-secret"},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("epochbot-sim ready"), line + proc.stderr.read()
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        yield market, fields["rest"], fields["ws"]
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _client(market: str, rest: str, ws: str):
    ccxtpro = pytest.importorskip("ccxt.pro")
    cls = ccxtpro.binance if market == "spot" else ccxtpro.binanceusdm
    ex = cls(
        {
            "apiKey": "ccxt-key",
            "secret": "ccxt-secret",
            "enableRateLimit": False,
            "options": {
                "fetchMarkets": ["spot" if market == "spot" else "linear"],
                "fetchCurrencies": False,
                "fetchMargins": False,
                "adjustForTimeDifference": False,
                "defaultType": "spot" if market == "spot" else "swap",
            },
        }
    )
    api = ex.urls["api"]
    for key, val in list(api.items()):
        if isinstance(val, str):
            for host in ("https://api.binance.com", "https://fapi.binance.com"):
                if val.startswith(host):
                    api[key] = rest + val[len(host) :]
    api["ws"]["ws-api"]["spot"] = ws + "/ws-api/v3"
    api["ws"]["ws-api"]["linear"] = ws + "/ws-fapi/v1"
    api["ws"]["spot"] = ws + "/ws"
    return ex


@pytest.mark.parametrize("sim_process", ["spot", "usdm"], indirect=True)
async def test_ccxt_places_queries_and_cancels_orders_over_the_websocket_api(sim_process):
    market, rest, ws = sim_process
    ex = _client(market, rest, ws)
    symbol = "BTC/USDT" if market == "spot" else "BTC/USDT:USDT"
    try:
        ticker = await ex.fetch_order_book(symbol, 5)  # REST still works for the same client
        price = Decimal(str(ticker["bids"][0][0])) * Decimal("0.95")
        placed = await ex.create_order_ws(
            symbol, "limit", "buy", 0.01, float(price.quantize(Decimal("0.01"))), {"returnRateLimits": True}
        )
        assert placed["id"] and placed["status"] == "open"
        fetched = await ex.fetch_order_ws(placed["id"], symbol)
        assert fetched["id"] == placed["id"] and fetched["status"] == "open"
        canceled = await ex.cancel_order_ws(placed["id"], symbol)
        assert canceled["status"] == "canceled"
        again = await ex.fetch_order_ws(placed["id"], symbol)
        assert again["status"] == "canceled"
        rest_view = await ex.fetch_order(placed["id"], symbol)  # the REST view agrees
        assert rest_view["status"] == "canceled"
    finally:
        await ex.close()


@pytest.mark.parametrize("sim_process", ["spot"], indirect=True)
async def test_ccxt_watches_spot_orders_through_the_websocket_api_user_data_subscription(sim_process):
    import asyncio

    market, rest, ws = sim_process
    ex = _client(market, rest, ws)
    try:
        watch = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))  # userDataStream.subscribe.signature
        book = await ex.fetch_order_book("BTC/USDT", 5)
        price = float((Decimal(str(book["bids"][0][0])) * Decimal("0.95")).quantize(Decimal("0.01")))
        for _ in range(50):  # the subscription is acknowledged before the order goes out
            if ex.clients.get(ws + "/ws-api/v3") is not None and ex.clients[ws + "/ws-api/v3"].subscriptions.get(
                "spot"
            ):
                break
            await asyncio.sleep(0.05)
        placed = await ex.create_order_ws("BTC/USDT", "limit", "buy", 0.01, price)
        updates = await asyncio.wait_for(watch, 5)
        assert [(o["id"], o["status"]) for o in updates] == [(placed["id"], "open")]
    finally:
        await ex.close()


@pytest.mark.parametrize("sim_process", ["spot"], indirect=True)
async def test_removed_spot_listen_key_endpoint_answers_410_to_an_outside_client(sim_process):
    import aiohttp

    _, rest, _ = sim_process
    async with aiohttp.ClientSession() as http:
        async with http.post(rest + "/api/v3/userDataStream", headers={"X-MBX-APIKEY": "ccxt-key"}) as r:
            assert r.status == 410
