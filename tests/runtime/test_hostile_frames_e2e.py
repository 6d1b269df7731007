"""End to end: dozens of malformed, mistyped and oversized frames injected into a live
paper-trading daemon through a loopback proxy. The process never exits; each bad frame is
counted and repaired.

Processes: the simulator (USD-M, on a thread of this test), a small aiohttp proxy in front of it
(every REST call and every websocket, market and user-data, passes through it), and the real
headless daemon (``python -m epochbot.app.cli --headless``, quoter strategy, SQLite storage) talking only
to the proxy. The proxy injects, towards the daemon:

* on the market routes: the audit's killers (``"E":"x"`` on depth and aggTrade, ``"T":"x"`` on
  aggTrade and markPrice, a closed kline with ``"t":"x"``) and more wrong types, bad numbers
  (NaN, Infinity, negative, floats), missing fields, non-JSON, deep nesting and a 300 KB frame;
  each must be counted (``malformed``) and the book resynced - trading goes on;
* on the user-data route: order updates of a live order with a last quantity of ``"0.000"``, a
  NaN fee, mistyped times, an oversized client id, non-JSON...; each is dropped, logged and its
  order reconciled from the venue;
* on the order route: unreadable answers to order placements (non-JSON, an array, wrong types,
  a zero fill); each becomes an unknown outcome that is reconciled from the venue.

Finally the daemon is stopped cleanly (exit 0) and its database agrees with the venue: every
execution stored once, no order left open at the venue, every order's final state equal to the
venue's. Bounded (about 30 s), loopback only.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from tests.helpers import DaemonProcess, wait_until
from tests.runtime.test_restart_after_sigkill import KEY, SECRET, SYMBOL, db_rows
from tests.runtime.test_sigkill_at_venue_moments import KillingSim

E = int(time.time() * 1000)
BAD_MARKET = [
    {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": "x", "T": E, "s": SYMBOL, "U": 1, "u": 2, "pu": 0, "b": [], "a": []},
    },
    {
        "stream": "btcusdt@aggTrade",
        "data": {"e": "aggTrade", "E": "x", "s": SYMBOL, "a": 1, "p": "100.0", "q": "0.001", "T": E, "m": True},
    },
    {
        "stream": "btcusdt@aggTrade",
        "data": {"e": "aggTrade", "E": E, "s": SYMBOL, "a": 1, "p": "100.0", "q": "0.001", "T": "x", "m": True},
    },
    {
        "stream": "btcusdt@markPrice@1s",
        "data": {"e": "markPriceUpdate", "E": E, "s": SYMBOL, "p": "100.0", "i": "100.0", "r": "0.0001", "T": "x"},
    },
    {
        "stream": "btcusdt@kline_1m",
        "data": {
            "e": "kline",
            "E": E,
            "s": SYMBOL,
            "k": {"t": "x", "T": E, "i": "1m", "o": "1", "h": "1", "l": "1", "c": "1", "v": "1", "x": True},
        },
    },
    {
        "stream": "btcusdt@aggTrade",
        "data": {"e": "aggTrade", "E": E, "s": SYMBOL, "a": 1, "p": "NaN", "q": "0.001", "T": E, "m": True},
    },
    {
        "stream": "btcusdt@aggTrade",
        "data": {"e": "aggTrade", "E": E, "s": SYMBOL, "a": 1, "p": "100.0", "q": "-1", "T": E, "m": True},
    },
    {
        "stream": "btcusdt@aggTrade",
        "data": {"e": "aggTrade", "E": E, "s": SYMBOL, "a": 1, "p": "100.0", "q": "0.000", "T": E, "m": True},
    },
    {
        "stream": "btcusdt@aggTrade",
        "data": {"e": "aggTrade", "E": E, "s": SYMBOL, "a": 1, "p": "100.0", "q": "0.001", "T": E, "m": "yes"},
    },
    {
        "stream": "btcusdt@markPrice@1s",
        "data": {"e": "markPriceUpdate", "E": E, "s": SYMBOL, "p": "Infinity", "r": "0.0001", "T": E},
    },
    {
        "stream": "btcusdt@markPrice@1s",
        "data": {"e": "markPriceUpdate", "E": E, "s": SYMBOL, "p": "100.0", "r": "1e5", "T": E},
    },
    {
        "stream": "btcusdt@bookTicker",
        "data": {"e": "bookTicker", "E": E, "s": SYMBOL, "u": 5, "b": 100.5, "B": "1", "a": "101", "A": "1"},
    },
    {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": E, "s": SYMBOL, "U": 9, "u": 3, "pu": 2, "b": [], "a": []},
    },
    {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": E, "s": SYMBOL, "U": True, "u": 3, "pu": 2, "b": [], "a": []},
    },
    {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": E, "s": SYMBOL, "U": 1, "u": 3, "pu": 0, "b": "bids", "a": []},
    },
    {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": -5, "s": SYMBOL, "U": 1, "u": 3, "pu": 0, "b": [], "a": []},
    },
    {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": E, "s": 12345, "U": 1, "u": 3, "pu": 0, "b": [], "a": []},
    },
    {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": E, "s": SYMBOL, "U": 1, "pu": 0, "b": [], "a": []},
    },
    {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": E, "s": SYMBOL, "k": []}},
    {
        "stream": "btcusdt@kline_1m",
        "data": {
            "e": "kline",
            "E": E,
            "s": SYMBOL,
            "k": {"t": E, "T": E - 5, "i": "1m", "o": "1", "h": "1", "l": "1", "c": "1", "v": "1", "x": True},
        },
    },
    {"stream": "x", "data": 5},
    {"result": None, "id": "x"},
    {
        "stream": "btcusdt@aggTrade",
        "data": {"e": "aggTrade", "E": E, "s": "A" * 300_000, "a": 1, "p": "1", "q": "1", "T": E, "m": True},
    },
    "{{{ not json",
    "[1, 2, 3]",
    "null",
    "[" * 2000 + "]" * 2000,
    "",
]
BAD_USER = [  # each names the live order {coid}
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": _otu(c, l="0.000", x="TRADE", X="PARTIALLY_FILLED")},
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": _otu(c, L="x", x="TRADE", X="PARTIALLY_FILLED")},
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": _otu(c, n="NaN", x="TRADE", X="PARTIALLY_FILLED")},
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": _otu(c, T="x")},
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": _otu(c, z=-1)},
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": _otu(c, S=7, x="TRADE", X="PARTIALLY_FILLED")},
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": _otu("eb" + "f" * 40, x="TRADE")},
    lambda c: {"e": "ORDER_TRADE_UPDATE", "E": E, "T": E, "o": "not an object"},
    lambda c: "{ not json",
]
# Answers to an order placement the venue carried out. Over REST the body is replaced (a str is
# sent as raw text); over the WebSocket API (the default route) the response's "result" is.
BAD_ORDER_ANSWERS = [
    "<html>502 Bad Gateway</html>",
    [1, 2],
    {"status": 5, "orderId": []},
    {"symbol": "BTCUSDT", "status": "NEW", "orderId": "x", "updateTime": "soon"},
]


def _otu(coid: str, **override) -> dict:
    base = {
        "s": SYMBOL,
        "c": coid,
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "0.010",
        "p": "100.0",
        "ap": "0",
        "x": "NEW",
        "X": "NEW",
        "i": 1,
        "l": "0.000",
        "z": "0.000",
        "L": "0",
        "n": "0",
        "N": "USDT",
        "T": E,
        "t": 0,
        "m": False,
        "R": False,
    }
    return {**base, **override}


class Proxy:
    """Loopback HTTP + websocket proxy that can inject frames and replace order answers."""

    def __init__(self, rest: str, ws: str) -> None:
        self.rest, self.ws = rest, ws
        self.sockets: dict[str, set] = {"market": set(), "user": set()}
        self.order_answers: list = []
        self._placements: set = set()  # WebSocket API request ids of order.place
        self.replaced = 0
        self.corrupt_next_trade = False
        self.corrupted: list[str] = []  # trade ids of real executions delivered corrupted

    async def start(self) -> None:
        self.session = aiohttp.ClientSession()
        app = web.Application(client_max_size=2**24)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for sockets in self.sockets.values():
            for ws in list(sockets):
                await ws.close()
        await self.runner.cleanup()
        await self.session.close()

    async def handle(self, request: web.Request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("x-mbx-apikey", "content-type")}
        async with self.session.request(
            request.method, self.rest + request.path_qs, headers=headers, data=body or None
        ) as resp:
            data, status = await resp.read(), resp.status
            out_headers = {k: v for k, v in resp.headers.items() if k in ("Retry-After", "X-MBX-USED-WEIGHT-1M")}
            content_type = resp.content_type
        if request.method == "POST" and request.path.endswith("/order") and status == 200 and self.order_answers:
            answer = self.order_answers.pop(0)  # the venue placed the order; the daemon gets garbage
            data = answer.encode() if isinstance(answer, str) else orjson.dumps(answer)
            self.replaced += 1
        return web.Response(body=data, status=status, headers=out_headers, content_type=content_type)

    async def _websocket(self, request: web.Request):
        down = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await down.prepare(request)
        kind = "market" if request.path.endswith("/stream") else "user"
        async with self.session.ws_connect(self.ws + request.path_qs, max_msg_size=0, autoping=True) as up:
            self.sockets[kind].add(down)

            async def upstream():
                async for msg in up:
                    if msg.type == WSMsgType.TEXT:
                        data = msg.data
                        if kind == "user" and self.corrupt_next_trade and '"x":"TRADE"' in data:
                            # A real execution report, its last quantity zeroed: the fill is lost
                            # unless the daemon recovers it from the venue's records.
                            report = orjson.loads(data)
                            inner = report.get("data", report)["o"]
                            self.corrupted.append(str(inner["t"]))
                            inner["l"] = "0.000"
                            data = orjson.dumps(report).decode()
                            self.corrupt_next_trade = False
                        if kind == "user" and self._placements and '"id"' in data:
                            data = self._corrupt_order_answer(data)
                        await down.send_str(data)
                    elif msg.type == WSMsgType.BINARY:
                        await down.send_bytes(msg.data)

            async def downstream():
                async for msg in down:
                    if msg.type == WSMsgType.TEXT:
                        if kind == "user" and self.order_answers and '"order.place"' in msg.data:
                            self._placements.add(orjson.loads(msg.data).get("id"))
                        await up.send_str(msg.data)

            tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                self.sockets[kind].discard(down)
        await down.close()
        return down

    def _corrupt_order_answer(self, data: str) -> str:
        try:
            response = orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
        if not isinstance(response, dict) or response.get("id") not in self._placements:
            return data
        self._placements.discard(response["id"])
        if response.get("status") != 200 or not self.order_answers:
            return data
        response["result"] = self.order_answers.pop(0)
        self.replaced += 1
        return orjson.dumps(response).decode()

    async def inject(self, kind: str, frame: str) -> int:
        sent = 0
        for ws in list(self.sockets[kind]):
            try:
                await ws.send_str(frame)
                sent += 1
            except (ConnectionError, RuntimeError):
                pass
        return sent


ENV = {
    "EPOCHBOT_API_KEY": KEY,
    "EPOCHBOT_API_SECRET": SECRET,
    # the tight quoter: fills every few seconds
    "EPOCHBOT_STRATEGY__PARAMS": json.dumps(
        {
            "half_spread_ticks": 2,
            "half_spread_bps": 0.0,
            "exit_edge_bps": -1.0,
            "skew_bps_per_size": 0.0,
            "refresh_ms": 300,
        }
    ),
    "EPOCHBOT_RISK__BREAKER_LOSSES": "1000",
    "EPOCHBOT_STRATEGY__UNKNOWN_WINDOW_MS": "2000",
}


def test_a_live_daemon_survives_counts_and_repairs_dozens_of_hostile_frames_on_every_route(tmp_path):
    sim = KillingSim()
    proxy = Proxy(sim.rest, sim.ws)
    sim.call_async(proxy.start())
    db = tmp_path / "db.sqlite3"
    url = f"127.0.0.1:{proxy.port}"
    daemon = DaemonProcess(
        tmp_path,
        [
            "--headless",
            "--venue",
            "binance-usdm",
            "--rest-url",
            f"http://{url}",
            "--ws-url",
            f"ws://{url}",
            "--symbols",
            SYMBOL,
            "--storage",
            str(db),
            "--strategy",
            "quoter",
            "--no-control",
            "--status-interval",
            "0.5",
        ],
        env=ENV,
    )
    proc, log_path, lines, count = daemon.proc, daemon.log_path, daemon.lines, daemon.count

    def last_status() -> dict:
        return next((line for line in reversed(lines()) if line.get("msg") == "status" and "symbols" in line), {})

    def alive() -> None:
        assert proc.poll() is None, f"the daemon exited with {proc.returncode}: {log_path.read_text()[-3000:]}"

    try:
        wait_until(
            lambda: (
                proc.poll() is not None
                or (last_status().get("symbols", {}).get(SYMBOL, {}).get("state") == "synced" and sim.open_orders())
            ),
            25,
            "a synced book and a working order",
        )
        alive()

        # Market routes.
        before = last_status()["counters"].get("malformed", 0)
        sent = 0
        for frame in BAD_MARKET:
            raw = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
            sent += sim.call_async(proxy.inject("market", raw))
            time.sleep(0.02)
        alive()
        assert sent >= len(BAD_MARKET)
        wait_until(
            lambda: last_status()["counters"].get("malformed", 0) - before >= len(BAD_MARKET),
            10,
            "every bad market frame counted",
        )
        resyncs_before = sum(b.get("resyncs", 0) for b in last_status()["symbols"].values())
        wait_until(
            lambda: (
                last_status()["symbols"][SYMBOL]["state"] == "synced"
                and sum(b.get("resyncs", 0) for b in last_status()["symbols"].values()) >= 1
            ),
            15,
            "the book resynced after the bad depth events",
        )
        assert resyncs_before >= 1  # bad depth events invalidated the book (a lost delta is a gap)
        alive()

        # User-data route: each bad update names a live order of ours.
        bad_user_before = count("unusable user data frame dropped")
        for build in BAD_USER:
            live = sim.open_orders()
            coid = live[0]["clientOrderId"] if live else "eb1-0"
            frame = build(coid)
            sim.call_async(proxy.inject("user", frame if isinstance(frame, str) else orjson.dumps(frame).decode()))
            time.sleep(0.05)
        wait_until(
            lambda: count("unusable user data frame dropped") - bad_user_before >= len(BAD_USER),
            10,
            "every bad user-data frame counted",
        )
        alive()

        # A real execution report arrives corrupted: dropped, its order reconciled, and the
        # execution recovered from the venue's trade history while the daemon runs.
        async def corrupt():
            proxy.corrupt_next_trade = True

        sim.call_async(corrupt())
        wait_until(lambda: proxy.corrupted or proc.poll() is not None, 30, "a real execution report to corrupt")
        alive()
        trade_id = proxy.corrupted[0]
        wait_until(
            lambda: db_rows(db, "SELECT 1 FROM fills WHERE trade_id = ?", (trade_id,)) or proc.poll() is not None,
            15,
            "the corrupted execution recovered into storage",
        )
        alive()

        # Order route: the venue places the order, the daemon receives garbage.
        unknown_before = count("order outcome unknown")

        async def arm():
            proxy.order_answers.extend(BAD_ORDER_ANSWERS)

        sim.call_async(arm())
        wait_until(
            lambda: proxy.replaced >= len(BAD_ORDER_ANSWERS) or proc.poll() is not None,
            20,
            "the bad order answers delivered",
        )
        alive()
        wait_until(
            lambda: count("order outcome unknown") - unknown_before >= len(BAD_ORDER_ANSWERS),
            10,
            "each unreadable order answer taken as an unknown outcome",
        )
        # ... and reconciled: trading goes on (new fills after the injections).
        fills_before = len(sim.trades())
        wait_until(lambda: len(sim.trades()) > fills_before or proc.poll() is not None, 30, "trading to go on")
        alive()
        status = last_status()
        assert status["fatal"] in (None, "")

        sim.call(sim.sim.pause_market)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        sim.call_async(proxy.stop())
        venue_orders = sim.all_orders()
        venue_trades = sim.trades()
        open_orders = sim.open_orders()
        sim.stop()

    assert open_orders == []
    conn = sqlite3.connect(db)
    try:
        stored = sorted(r[0] for r in conn.execute("SELECT trade_id FROM fills WHERE symbol = ?", (SYMBOL,)))
        last_states = dict(
            conn.execute(
                "SELECT o.client_order_id, o.state FROM orders o JOIN "
                "(SELECT client_order_id, MAX(id) AS last FROM orders GROUP BY client_order_id) l ON o.id = l.last"
            ).fetchall()
        )
    finally:
        conn.close()
    assert stored == sorted(str(t["id"]) for t in venue_trades)
    for order in venue_orders:
        assert last_states.get(order["clientOrderId"]) == order["status"], (
            order["clientOrderId"],
            last_states.get(order["clientOrderId"]),
            order["status"],
        )
