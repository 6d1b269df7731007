"""What the USD-M account and Algo Service tests share: a market the test moves, signed REST calls and
a /private user-data socket against an in-process simulator, bounded waits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from epochbot.model.numeric import parse_units
from epochbot.sim.matching import PaperVenue, SymbolFilters

NOW = 1_700_000_000_000
BTC = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 3, 10, 1, 1, 10_000_000, "5")
KEY, SECRET = "sim-key", "sim-secret"
WAIT_S = 5.0


def units(text: str, decimals: int = 2) -> int:
    return parse_units(text, decimals)


@dataclass
class MovingMarket:
    """A deep one-level market at ``mark`` on both sides (fills happen exactly there), whose mark
    and last trade price the test sets (price units)."""

    mark: int
    last_trade_price: int
    symbol: str = "BTCUSDT"
    price_decimals: int = 2
    qty_decimals: int = 3
    depth: int = 1_000_000  # 1000 BTC

    @classmethod
    def at(cls, price: str, last: str | None = None) -> MovingMarket:
        return cls(units(price), units(last or price))

    def move(self, price: str, last: str | None = None) -> MovingMarket:
        self.mark = units(price)
        self.last_trade_price = units(last or price)
        return self

    def bids(self):
        return iter([(self.mark, self.depth)])

    def asks(self):
        return iter([(self.mark, self.depth)])

    def mark_price(self) -> int:
        return self.mark


def usdm_venue(**kw: Any) -> PaperVenue:
    return PaperVenue("usdm", {"BTCUSDT": BTC}, **kw)


def market_order(side: str, qty: str, **extra: str) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": qty, **extra}


def algo(order_type: str, side: str, **extra: str) -> dict[str, str]:
    return {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": side, "type": order_type, **extra}


def events(venue: PaperVenue) -> list[dict]:
    return [e for _, e in venue.drain_user_events()]


def algo_statuses(evs: list[dict]) -> list[str]:
    return [e["o"]["X"] for e in evs if e["e"] == "ALGO_UPDATE"]


def kinds(evs: list[dict]) -> list[str]:
    """Each event's kind, with the status of algo and order events: ``ALGO:NEW``, ``ORDER:TRADE``."""
    out = []
    for e in evs:
        if e["e"] == "ALGO_UPDATE":
            out.append(f"ALGO:{e['o']['X']}")
        elif e["e"] == "ORDER_TRADE_UPDATE":
            out.append(f"ORDER:{e['o']['x']}")
        else:
            out.append(e["e"])
    return out


# ------------------------------------------------------------------ an in-process simulator over loopback


def signed_query(params: dict[str, Any], secret: str = SECRET) -> str:
    qs = urlencode({**params, "timestamp": int(time.time() * 1000)})
    return qs + "&signature=" + hmac.new(secret.encode(), qs.encode(), hashlib.sha256).hexdigest()


class Rest:
    """Signed USD-M REST calls (parameters in the query string, as Binance's SDK sends them)."""

    def __init__(self, http, base_url: str, key: str = KEY, secret: str = SECRET) -> None:
        self.http, self.base_url, self.key, self.secret = http, base_url, key, secret

    async def call(self, method: str, path: str, **params: Any) -> tuple[int, Any, dict[str, str]]:
        url = f"{self.base_url}{path}?{signed_query(params, self.secret)}"
        async with self.http.request(method, url, headers={"X-MBX-APIKEY": self.key}) as r:
            return r.status, await r.json(), dict(r.headers)

    async def ok(self, method: str, path: str, **params: Any) -> Any:
        status, body, _ = await self.call(method, path, **params)
        assert status == 200, body
        return body

    async def error(self, method: str, path: str, **params: Any) -> int:
        status, body, _ = await self.call(method, path, **params)
        assert status >= 400 and "code" in body, body
        return body["code"]


async def user_socket(http, sim, key: str = KEY):
    """A /private/ws socket carrying every user-data event of the account behind ``key``."""
    async with http.post(sim.rest_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": key}) as r:
        listen_key = (await r.json())["listenKey"]
    return await http.ws_connect(f"{sim.ws_url}/private/ws?listenKey={listen_key}")


async def next_event(ws, pred, what: str, timeout: float = WAIT_S) -> dict:
    """The first user-data event matching ``pred`` within ``timeout`` seconds."""

    async def scan() -> dict:
        while True:
            event = await ws.receive_json()
            if pred(event):
                return event

    try:
        return await asyncio.wait_for(scan(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s") from None


def is_algo(client_algo_id: str, status: str | None = None):
    return lambda e: (
        e.get("e") == "ALGO_UPDATE" and e["o"]["caid"] == client_algo_id and (status is None or e["o"]["X"] == status)
    )
