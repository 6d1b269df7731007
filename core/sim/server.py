"""The embedded Binance-compatible exchange: REST + websocket on one aiohttp port.

Theory of operation
-------------------
* One generator task per symbol wakes every ``tick_s`` and computes how many diff events are due
  at the configured rate since it started (``int(elapsed * rate) - emitted``); it emits exactly
  that many, so the rate is exact without per-message timers. Each event is serialised once with
  orjson and appended to the send queue of every subscribed connection; one writer task per
  connection drains its queue with ``send_frame`` (awaiting only when the socket buffer is full).
* Send queues are bounded: a client that falls ``send_queue_limit`` frames behind is closed
  (1008) and counted as ``slow_disconnects``, like Binance drops slow consumers.
* Streams slower than 100 ms (``@depth`` 1000/250 ms, ``@500ms``) accumulate merged diffs and
  flush on their period; partial depth, markPrice and kline streams are timed per symbol tick.
* Faults come from a `FaultBoard` and are applied at the exact point they affect: the diff
  generator (gap), frame delivery (stall, latency, stale, malformed, truncated, duplicate,
  out_of_order), REST depth (snapshot_*, crossed_snapshot), subscription (reject_subscribe),
  order placement (unknown_execution), or immediately (drop, expire, server_shutdown).
* Paper trading is delegated to ``epochbot.sim.matching.PaperVenue``; its user events are drained
  after every order call and every market step and pushed to USD-M ``/private`` listenKey
  sockets and to WebSocket API user-data subscriptions (``epochbot.sim.wsapi``, which also serves
  the WebSocket API's order methods).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from epochbot.sim import auth
from epochbot.sim.conn import WsConn
from epochbot.sim.faults import INSTANT_KINDS, FaultBoard, FaultError, check_param
from epochbot.sim.market import DepthEvent, SymbolMarket, SymbolSpec, default_spec, fixed
from epochbot.sim.streams import (
    KlineState,
    StreamSpec,
    agg_trade,
    book_ticker,
    depth_update,
    force_order,
    kline_event,
    mark_price_update,
    merge_into,
    parse_stream,
    partial_depth,
    route_allows,
)
from epochbot.sim.weights import WeightLimiter, request_weight
from epochbot.sim.wsapi import WsApiServer, refuse_unless_trading, symbol_status

__all__ = ["SimConfig", "SimExchange"]

log = logging.getLogger("epochbot.sim")

UNKNOWN_ERROR_MSG = "Unknown error, please check your request or try again later."


@dataclass
class SimConfig:
    """Everything the simulator needs to start. ``None`` timing fields take Binance's values."""

    market: str = "usdm"
    symbols: list[str] = field(default_factory=lambda: ["BTCUSDT"])
    seed: int = 7
    host: str = "127.0.0.1"
    port: int = 0
    rate: float = 10.0  # diff-depth events per second per symbol (10 = a @100ms stream)
    accounts: str | None = None  # "KEY:SECRET[,..]"; default from EPOCHBOT_SIM_ACCOUNTS
    faults: list[dict[str, Any]] = field(default_factory=list)
    ping_interval_s: float | None = None  # spot 20, usdm 180
    pong_timeout_s: float | None = None  # spot 60, usdm 600
    max_lifetime_s: float = 24 * 3600.0
    max_streams: int = 1024
    msg_rate_limit: int | None = None  # incoming messages/s: spot 5, usdm 10
    weight_limit: int | None = None  # REST weight/min: spot 6000, usdm 2400
    send_queue_limit: int = 200_000
    tick_s: float | None = None  # generator wake-up; default 0.1 s at realistic rates, 2 ms when fast
    # Market time runs this many times faster than the wall clock (1 = real time). Above 1 the
    # generators emit ``rate * speed`` events per wall second stamped on a virtual clock that
    # starts at the wall clock and advances 1000/rate ms per event: the same seed gives the same
    # stream, only sooner (for measuring minutes of market in seconds; bench/sim_calibration.py).
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', not {self.market!r}")
        self.symbols = [s.strip().upper() for s in self.symbols if s.strip()]
        if not self.symbols:
            raise ValueError("at least one symbol is required")
        spot = self.market == "spot"
        if self.ping_interval_s is None:
            self.ping_interval_s = 20.0 if spot else 180.0
        if self.pong_timeout_s is None:
            self.pong_timeout_s = 60.0 if spot else 600.0
        if self.msg_rate_limit is None:
            self.msg_rate_limit = 5 if spot else 10
        if self.weight_limit is None:
            self.weight_limit = 6000 if spot else 2400
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, not {self.speed!r}")
        if self.tick_s is None:
            self.tick_s = (0.1 if self.rate <= 20 else 0.002) / self.speed
        if self.accounts is None:
            self.accounts = os.environ.get("EPOCHBOT_SIM_ACCOUNTS")


def _now_ms() -> int:
    return int(time.time() * 1000)


class SimExchange:
    """The simulator as an async context manager (see module docstring)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.accounts = auth.load_accounts(cfg.accounts)
        self.specs: dict[str, SymbolSpec] = {s: default_spec(cfg.market, s, cfg.seed) for s in cfg.symbols}
        self.markets: dict[str, SymbolMarket] = {s: SymbolMarket(spec, cfg.seed) for s, spec in self.specs.items()}
        self.faults = FaultBoard()
        self.rng = random.Random(cfg.seed ^ 0x51D)
        self.venue = self._make_venue()
        self.port = 0
        self.rest_url = ""
        self.ws_url = ""
        self.paused = False
        self._resume_handle: asyncio.TimerHandle | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self._conns: dict[int, WsConn] = {}
        self._next_conn = 1
        self._subs: dict[str, set[WsConn]] = {}
        self._sym_streams: dict[str, dict[str, StreamSpec]] = {s: {} for s in cfg.symbols}
        self._acc: dict[str, DepthEvent | None] = {}
        self._last_flush: dict[str, int] = {}
        self._last_prev: dict[str, int] = {}
        self._klines: dict[str, deque[KlineState]] = {s: deque(maxlen=1500) for s in cfg.symbols}
        self._listen_keys: dict[str, str] = {}  # listenKey -> account_id
        self._user_conns: dict[str, set[WsConn]] = {}
        self.weights = WeightLimiter(cfg.weight_limit)
        self._last_forced: dict[str, int] = {}
        self._stalled_conns: dict[int, set[int]] = {}  # stall fault id -> connections it silences
        self.stats: dict[str, Any] = {
            "messages": {},
            "connections_open": 0,
            "connections_total": 0,
            "slow_disconnects": 0,
            "rate_limit_disconnects": 0,
            "pong_timeouts": 0,
            "lifetime_closes": 0,
            "frames_dropped_stall": 0,
            "rest_requests": 0,
            "generator_errors": 0,
        }
        for spec in cfg.faults:
            self.faults.arm(spec)
        self.wsapi = WsApiServer(self)  # spot /ws-api/v3, USD-M /ws-fapi/v1 (core/sim/wsapi.py)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> SimExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self.rest_url = f"http://{self.config.host}:{self.port}"
        self.ws_url = f"ws://{self.config.host}:{self.port}"
        for sym in self.config.symbols:
            self._tasks.append(asyncio.create_task(self._run_symbol(sym), name=f"sim-gen-{sym}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        for conn in list(self._conns.values()):
            await self._close_conn(conn, code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ public helpers
    def market(self, symbol: str) -> SymbolMarket:
        return self.markets[symbol.upper()]

    def pause_market(self, duration_s: float | None = None) -> None:
        """A quiet market: the books stop changing (no diffs, trades or tickers are sent) while
        every connection stays up and the timed streams keep coming (USD-M markPrice@1s, klines,
        partial depth), as on Binance. ``duration_s``: resume by itself after that long."""
        self.paused = True
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        if duration_s is not None:
            self._resume_handle = asyncio.get_running_loop().call_later(duration_s, self.resume_market)

    def resume_market(self) -> None:
        self.paused = False
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None

    def inject(self, kind: str, **params: Any) -> dict[str, Any]:
        """Arm a fault (instant kinds run now); returns its JSON description."""
        fault = self.faults.arm({"kind": kind, **params})
        if fault.kind == "stall" and fault.params.get("scope", "open") == "open":
            # A stalled connection (a dead route, a wedged server task) goes silent while new
            # connections work; scope "all" stalls every connection, new ones included.
            self._stalled_conns[fault.id] = set(self._conns)
        if fault.kind in INSTANT_KINDS:
            self.faults.note_instant(fault)
            asyncio.get_running_loop().create_task(self._run_instant(fault.kind))
        return fault.to_json(time.monotonic())

    def stats_json(self) -> dict[str, Any]:
        return {
            **self.stats,
            "connections_open": len(self._conns),
            "update_ids": {s: m.update_id for s, m in self.markets.items()},
            "paused": self.paused,
            "weight_used_1m": self.weights.current(),
            "weight_refusals": dict(self.weights.stats),
            "subscriptions": {name: len(c) for name, c in self._subs.items() if c},
            "wsapi": {
                **self.wsapi.stats,
                "sessions": len(self.wsapi.sessions),
                "place_requests_max": max(self.wsapi.place_requests.values(), default=0),
            },
        }

    # ------------------------------------------------------------------ market generation
    async def _run_symbol(self, sym: str) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        m = self.markets[sym]
        fast = cfg.rate > 200  # the per-event market is the same at any speed
        rate = cfg.rate * cfg.speed  # events per wall second
        virtual = cfg.speed != 1.0
        virtual_ms, step_ms = float(_now_ms()), 1000.0 / cfg.rate
        t0 = loop.time()
        emitted = 0
        was_paused = False
        errors = 0
        while True:
            await asyncio.sleep(cfg.tick_s)
            # An error in one step is logged and counted; the market goes on (a generator that
            # died silently would look, to a client, exactly like a quiet market).
            try:
                now = loop.time()
                now_ms = int(virtual_ms) if virtual else _now_ms()
                if self.paused:
                    was_paused = True
                else:
                    if was_paused:
                        t0, emitted, was_paused = now - 1.0 / rate, 0, False
                    due = int((now - t0) * rate) - emitted
                    if due > rate:  # we fell far behind (suspended loop): do not burst a backlog
                        t0, emitted, due = now - 1.0 / rate, 0, 1
                    for _ in range(max(0, due)):
                        if virtual:
                            virtual_ms += step_ms
                            now_ms = int(virtual_ms)
                        self._emit_event(sym, m, now_ms, fast)
                    emitted += max(0, due)
                self._timed_streams(sym, m, now_ms)
                self._user_events()
            except asyncio.CancelledError:
                raise
            except Exception:
                errors += 1
                self.stats["generator_errors"] += 1
                if errors <= 10 or errors % 1000 == 0:
                    log.exception(
                        "simulator market generator error for %s (%d so far); the market goes on", sym, errors
                    )
                t0, emitted = loop.time(), 0  # start the schedule afresh, never burst a backlog

    def _stale(self, sym: str, now_ms: int) -> int:
        f = self.faults.active("stale", sym)
        return now_ms - int(f.params.get("lag_ms", 0)) if f else now_ms

    def _emit_event(self, sym: str, m: SymbolMarket, now_ms: int, fast: bool) -> None:
        gap = self.faults.take("gap", sym)
        skip = int(gap.params.get("skip", 1)) if gap else 0
        top_before = (m.best_bid, m.best_ask, m.bid_levels.get(m.best_bid), m.ask_levels.get(m.best_ask))
        ev = m.next_depth_event(now_ms, updates=1 if fast else None, skip=skip)
        if self.venue is not None:
            self.venue.on_market(m, now_ms)
        self._update_kline(sym, m, ev, now_ms)
        streams = self._sym_streams[sym]
        if not streams:
            return
        e_ms = self._stale(sym, now_ms)
        market = self.config.market
        pdec, qdec = m.price_decimals, m.qty_decimals
        diff_payload: bytes | None = None
        for name, spec in list(streams.items()):
            kind = spec.kind
            if kind == "depth":
                if spec.period_ms == 0:
                    if diff_payload is None:
                        diff_payload = depth_update(
                            market, sym, ev.first_id, ev.last_id, ev.prev_id, e_ms, e_ms, ev.bids, ev.asks, pdec, qdec
                        )
                    self._deliver(name, diff_payload, sym, is_diff=True)
                else:
                    self._acc[name] = merge_into(self._acc.get(name), ev)
            elif kind == "bookTicker":
                top = (m.best_bid, m.best_ask, m.bid_levels.get(m.best_bid), m.ask_levels.get(m.best_ask))
                if top != top_before:
                    self._deliver(name, book_ticker(market, m, e_ms, e_ms), sym)
            elif kind == "aggTrade":
                for t in ev.trades:
                    m.agg_id += 1
                    self._deliver(name, agg_trade(market, sym, m.agg_id, t, e_ms, pdec, qdec), sym)
            elif kind == "forceOrder" and ev.trades:
                last = self._last_forced.get(name, 0)
                if now_ms - last >= 1000 and self.rng.random() < 0.02:
                    self._last_forced[name] = now_ms
                    self._deliver(name, force_order(sym, ev.trades[-1], e_ms, pdec, qdec), sym)

    def _timed_streams(self, sym: str, m: SymbolMarket, now_ms: int) -> None:
        streams = self._sym_streams[sym]
        if not streams:
            return
        market = self.config.market
        e_ms = self._stale(sym, now_ms)
        pdec, qdec = m.price_decimals, m.qty_decimals
        for name, spec in list(streams.items()):
            if spec.period_ms == 0:
                continue
            last = self._last_flush.get(name)
            if last is None:
                self._last_flush[name] = now_ms
                self._last_prev[name] = m.update_id
                continue
            if now_ms - last < spec.period_ms:
                continue
            self._last_flush[name] = now_ms
            if spec.kind == "depth":
                acc = self._acc.pop(name, None)
                if acc is not None:
                    payload = depth_update(
                        market, sym, acc.first_id, acc.last_id, acc.prev_id, e_ms, e_ms, acc.bids, acc.asks, pdec, qdec
                    )
                    self._deliver(name, payload, sym, is_diff=True)
            elif spec.kind == "partial":
                prev = self._last_prev.get(name, m.update_id)
                self._deliver(name, partial_depth(market, m, spec.levels, e_ms, e_ms, prev), sym)
                self._last_prev[name] = m.update_id
            elif spec.kind == "markPrice":
                next_funding = (now_ms // 28_800_000 + 1) * 28_800_000
                self._deliver(name, mark_price_update(m, e_ms, "0.00010000", next_funding), sym)
            elif spec.kind == "kline":
                k = self._klines[sym][-1] if self._klines[sym] else None
                if k is not None:
                    self._deliver(name, kline_event(sym, k, e_ms, False, pdec, qdec), sym)

    def _update_kline(self, sym: str, m: SymbolMarket, ev: DepthEvent, now_ms: int) -> None:
        ks = self._klines[sym]
        minute = now_ms - now_ms % 60_000
        cur = ks[-1] if ks else None
        if cur is None or cur.open_ms != minute:
            if cur is not None and self._sym_streams[sym]:
                for name, spec in self._sym_streams[sym].items():
                    if spec.kind == "kline":
                        self._deliver(name, kline_event(sym, cur, now_ms, True, m.price_decimals, m.qty_decimals), sym)
            p = m.last_trade_price
            cur = KlineState(minute, p, p, p, p)
            ks.append(cur)
        for t in ev.trades:
            cur.add(t)

    # ------------------------------------------------------------------ delivery
    def _deliver(self, name: str, payload: bytes, sym: str | None, *, is_diff: bool = False) -> None:
        conns = self._subs.get(name)
        if not conns:
            return
        board = self.faults
        if board.faults:
            stall = board.active("stall", sym)
            if stall is not None:
                stalled = self._stalled_conns.get(stall.id)
                live = conns if stalled is None else {c for c in conns if c.id not in stalled}
                if stalled is None or not live:
                    self.stats["frames_dropped_stall"] += len(conns)
                    return
                self.stats["frames_dropped_stall"] += len(conns) - len(live)
                conns = live
            if is_diff:
                if board.take("malformed", sym):
                    payload = payload[: len(payload) // 3] + b",,}}garbage"
                elif board.take("truncated", sym):
                    payload = payload[: len(payload) // 2]
                elif board.take("out_of_order", sym):
                    for c in conns:
                        c.held = (name, payload)
                    # Swapped with its successor; if none comes (market paused), it still
                    # arrives, late, so the stream loses nothing.
                    asyncio.get_running_loop().call_later(0.2, self._release_held, name, set(conns))
                    return
                elif board.take("duplicate", sym):
                    self._deliver_now(name, payload, conns)
            lat = board.active("latency", sym)
            if lat is not None:
                loop = asyncio.get_running_loop()
                loop.call_later(float(lat.params.get("ms", 0)) / 1000.0, self._deliver_now, name, payload, set(conns))
                return
        self._deliver_now(name, payload, conns)

    def _deliver_now(self, name: str, payload: bytes, conns: set[WsConn]) -> None:
        msgs = self.stats["messages"]
        msgs[name] = msgs.get(name, 0) + len(conns)
        wrapped: bytes | None = None
        limit = self.config.send_queue_limit
        for c in conns:
            if c.closed:
                continue
            if c.combined:
                if wrapped is None:
                    wrapped = b'{"stream":"' + name.encode() + b'","data":' + payload + b"}"
                frame = wrapped
            else:
                frame = payload
            q = c.queue
            q.append(frame)
            if c.held is not None and c.held[0] == name:
                held_name, held = c.held
                c.held = None
                q.append(b'{"stream":"' + held_name.encode() + b'","data":' + held + b"}" if c.combined else held)
            if len(q) > limit:
                self.stats["slow_disconnects"] += 1
                asyncio.get_running_loop().create_task(self._close_conn(c, code=1008))
                continue
            c.wake.set()

    def _release_held(self, name: str, conns: set[WsConn]) -> None:
        for c in conns:
            if c.closed or c.held is None or c.held[0] != name:
                continue
            _, held = c.held
            c.held = None
            c.queue.append(b'{"stream":"' + name.encode() + b'","data":' + held + b"}" if c.combined else held)
            c.wake.set()

    def _send_json(self, conn: WsConn, obj: Any) -> None:
        conn.queue.append(orjson.dumps(obj))
        conn.wake.set()

    async def _writer(self, conn: WsConn) -> None:
        ws = conn.ws
        q = conn.queue
        try:
            while not conn.closed:
                await conn.wake.wait()
                conn.wake.clear()
                while q:
                    await ws.send_frame(q.popleft(), WSMsgType.TEXT)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        except Exception:  # a broken transport: the connection is finished, nothing else is
            pass

    # ------------------------------------------------------------------ user data
    def _user_events(self) -> None:
        if self.venue is None:
            return
        events = self.venue.drain_user_events()
        for account_id, event in events:
            self.wsapi.deliver(account_id, event)
            conns = self._user_conns.get(account_id)
            if not conns:
                continue
            payload = orjson.dumps(event)
            for c in conns:
                if not c.closed and (c.user_events is None or event.get("e") in c.user_events):
                    c.queue.append(payload)
                    c.wake.set()

    # ------------------------------------------------------------------ subscription management
    def _subscribe(self, conn: WsConn, name: str, spec: StreamSpec) -> None:
        if name in conn.subs:
            return
        conn.subs.add(name)
        self._subs.setdefault(name, set()).add(conn)
        if spec.symbol in self._sym_streams:
            self._sym_streams[spec.symbol][name] = spec

    def _unsubscribe(self, conn: WsConn, name: str) -> None:
        conn.subs.discard(name)
        subs = self._subs.get(name)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self._subs[name]
                spec = parse_stream(name, self.config.market)
                if spec is not None and spec.symbol in self._sym_streams:
                    self._sym_streams[spec.symbol].pop(name, None)
                self._acc.pop(name, None)
                self._last_flush.pop(name, None)

    def _validate_streams(self, names: list[str], route: str) -> tuple[list[tuple[str, StreamSpec]], str | None]:
        out = []
        for name in names:
            if not isinstance(name, str):
                return [], "Invalid request: params must be strings"
            spec = parse_stream(name, self.config.market)
            if spec is None:
                return [], f"Invalid request: invalid stream {name}"
            if self.config.market == "usdm" and not route_allows(route, spec):
                return [], f"Invalid request: stream {name} is not served on /{route}"
            out.append((name, spec))
        return out, None

    # ------------------------------------------------------------------ websocket handlers
    def _add_routes(self, app: web.Application) -> None:
        r = app.router
        # USD-M's legacy route-less URLs were retired on 2026-04-23: only /public, /market and
        # /private are served (the route-less handler answers them with a refusal).
        routes = ["public", "market", "private", ""] if self.config.market == "usdm" else [""]
        for route in routes:
            prefix = f"/{route}" if route else ""
            r.add_get(f"{prefix}/ws", self._ws_handler(route, None, False))
            r.add_get(f"{prefix}/ws/{{streams:.+}}", self._ws_handler(route, "path", False))
            r.add_get(f"{prefix}/stream", self._ws_handler(route, "query", True))
        spot = self.config.market == "spot"
        v = "/api/v3" if spot else "/fapi/v1"
        r.add_get(f"{v}/ping", self._ping)
        r.add_get(f"{v}/time", self._time)
        r.add_get(f"{v}/exchangeInfo", self._exchange_info)
        r.add_get(f"{v}/depth", self._depth)
        r.add_get(f"{v}/klines", self._klines_rest)
        r.add_post(f"{v}/order", self._order_new)
        r.add_get(f"{v}/order", self._order_query)
        r.add_delete(f"{v}/order", self._order_cancel)
        r.add_get(f"{v}/openOrders", self._open_orders)
        r.add_get(f"{v}/allOrders", self._all_orders)
        r.add_get("/api/v3/myTrades" if self.config.market == "spot" else "/fapi/v1/userTrades", self._user_trades)
        if spot:
            r.add_get("/api/v3/account", self._account)
            lk = "/api/v3/userDataStream"
        else:
            r.add_get("/fapi/v2/account", self._account)
            r.add_get("/fapi/v3/account", self._account)
            r.add_get("/fapi/v2/positionRisk", self._position_risk)
            r.add_get("/fapi/v3/positionRisk", self._position_risk)
            r.add_get("/fapi/v1/premiumIndex", self._premium_index)
            lk = "/fapi/v1/listenKey"
        if spot:  # removed on 2026-02-20: Binance answers 410 Gone
            for add in (r.add_post, r.add_put, r.add_delete):
                add(lk, self._listen_key_gone)
        else:
            r.add_post(lk, self._listen_key_new)
            r.add_put(lk, self._listen_key_keep)
            r.add_delete(lk, self._listen_key_close)
        self.wsapi.add_routes(app)
        r.add_post("/_sim/fault", self._ctl_fault)
        r.add_get("/_sim/faults", self._ctl_faults)
        r.add_delete("/_sim/faults", self._ctl_clear)
        r.add_post("/_sim/market", self._ctl_market)
        r.add_get("/_sim/market", self._ctl_market_get)
        r.add_get("/_sim/stats", self._ctl_stats)
        r.add_get("/_sim/depth", self._ctl_depth)

    def _ws_handler(self, route: str, source: str | None, combined: bool):
        async def handler(request: web.Request) -> web.StreamResponse:
            names: list[str] = []
            listen_account: str | None = None
            listen_key: str | None = None
            if self.config.market == "usdm" and route == "":
                return web.json_response(
                    {
                        "code": -1,
                        "msg": "This websocket URL was retired on 2026-04-23; use /public, /market or /private.",
                    },
                    status=404,
                )
            if route == "private":
                # User data only as /private/ws?listenKey=<key>&events=A/B (or /private/stream?...).
                listen_key = request.query.get("listenKey")
                if source == "path" or listen_key not in self._listen_keys:
                    return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
                listen_account = self._listen_keys[listen_key]
            elif source == "path":
                raw = request.match_info["streams"]
                # A bare number is no stream: clients such as ccxt open `/ws/<n>` and
                # subscribe afterwards, and Binance accepts that connection.
                names = [s for s in raw.split("/") if s and not s.isdigit()]
            elif source == "query":
                names = [s for s in request.query.get("streams", "").split("/") if s]
            if listen_account is None and names:
                if route == "private":
                    return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
                if self.faults.take("reject_subscribe"):
                    return web.json_response(
                        {"code": -1, "msg": "Subscription rejected (simulator fault)."}, status=400
                    )
                valid, err = self._validate_streams(names, route)
                if err is not None or len(valid) > self.config.max_streams:
                    return web.json_response({"code": -1, "msg": err or "Too many streams"}, status=400)
            ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20, compress=False)
            await ws.prepare(request)
            cid = self._next_conn
            self._next_conn += 1
            conn = WsConn(cid, ws, request, route, combined)
            self._conns[cid] = conn
            self.stats["connections_total"] += 1
            conn.writer = asyncio.get_running_loop().create_task(self._writer(conn))
            keep = asyncio.get_running_loop().create_task(self._keepalive(conn))
            if listen_account is not None:
                conn.account_id = listen_account
                conn.listen_key = listen_key
                events = [e for e in request.query.get("events", "").split("/") if e]
                conn.user_events = frozenset(events) if events else None
                self._user_conns.setdefault(listen_account, set()).add(conn)
            elif names:
                for name, spec in valid:
                    self._subscribe(conn, name, spec)
            try:
                await self._reader(conn)
            finally:
                keep.cancel()
                await self._close_conn(conn)
            return ws

        return handler

    async def _reader(self, conn: WsConn) -> None:
        ws = conn.ws
        limit = self.config.msg_rate_limit
        async for msg in ws:
            now = time.monotonic()
            times = conn.msg_times
            times.append(now)
            while times and now - times[0] > 1.0:
                times.popleft()
            if len(times) > limit:
                self.stats["rate_limit_disconnects"] += 1
                await self._close_conn(conn, code=1008, message=b"Too many requests")
                return
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                conn.last_pong = now
            elif msg.type == WSMsgType.TEXT:
                self._handle_control(conn, msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
                return

    def _handle_control(self, conn: WsConn, text: str) -> None:
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._send_json(
                conn, {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}, "id": None}
            )
            return
        if not isinstance(req, dict):
            self._send_json(
                conn, {"error": {"code": 2, "msg": "Invalid request: request must be an object"}, "id": None}
            )
            return
        rid = req.get("id")
        if rid is not None and (not isinstance(rid, int) or isinstance(rid, bool) or rid < 0):
            self._send_json(
                conn,
                {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None},
            )
            return
        method = req.get("method")
        if not isinstance(method, str):
            self._send_json(conn, {"error": {"code": 2, "msg": "Invalid request: missing field `method`"}, "id": rid})
            return
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list):
                self._send_json(
                    conn, {"error": {"code": 2, "msg": "Invalid request: params must be an array"}, "id": rid}
                )
                return
            valid, err = self._validate_streams(params, conn.route)
            if err is not None:
                self._send_json(conn, {"error": {"code": 2, "msg": err}, "id": rid})
                return
            if method == "SUBSCRIBE":
                if self.faults.take("reject_subscribe"):
                    self._send_json(
                        conn, {"error": {"code": 2, "msg": "Invalid request: subscription rejected"}, "id": rid}
                    )
                    return
                if len(conn.subs | set(params)) > self.config.max_streams:
                    self._send_json(conn, {"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": rid})
                    return
                for name, spec in valid:
                    self._subscribe(conn, name, spec)
            else:
                for name, _ in valid:
                    self._unsubscribe(conn, name)
            self._send_json(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            self._send_json(conn, {"result": sorted(conn.subs), "id": rid})
        elif method == "SET_PROPERTY":
            if (
                isinstance(params, list)
                and len(params) == 2
                and params[0] == "combined"
                and isinstance(params[1], bool)
            ):
                conn.combined = params[1]
                self._send_json(conn, {"result": None, "id": rid})
            else:
                self._send_json(conn, {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": rid})
        elif method == "GET_PROPERTY":
            if params == ["combined"]:
                self._send_json(conn, {"result": conn.combined, "id": rid})
            else:
                self._send_json(conn, {"error": {"code": 0, "msg": "Unknown property"}, "id": rid})
        else:
            self._send_json(
                conn,
                {
                    "error": {
                        "code": 2,
                        "msg": f"Invalid request: unknown variant `{method}`, expected one "
                        "of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, "
                        "`GET_PROPERTY`",
                    },
                    "id": rid,
                },
            )

    async def _keepalive(self, conn: WsConn) -> None:
        cfg = self.config
        step = min(cfg.ping_interval_s, cfg.pong_timeout_s, cfg.max_lifetime_s, 1.0)
        last_ping = time.monotonic()
        while not conn.closed:
            await asyncio.sleep(step)
            now = time.monotonic()
            if now - conn.opened >= cfg.max_lifetime_s:
                self.stats["lifetime_closes"] += 1
                await self._close_conn(conn, code=1000)
                return
            if now - conn.last_pong > cfg.pong_timeout_s:
                self.stats["pong_timeouts"] += 1
                await self._close_conn(conn, code=1008, message=b"Pong timeout")
                return
            stall = self.faults.active("stall")
            stalled_here = stall is not None and (
                stall.id not in self._stalled_conns or conn.id in self._stalled_conns[stall.id]
            )
            if now - last_ping >= cfg.ping_interval_s and not stalled_here:
                last_ping = now
                try:
                    await conn.ws.ping(b"")
                except Exception:
                    return

    async def _close_conn(self, conn: WsConn, code: int = 1000, message: bytes = b"", abort: bool = False) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._conns.pop(conn.id, None)
        for name in list(conn.subs):
            self._unsubscribe(conn, name)
        if conn.account_id is not None:
            self._user_conns.get(conn.account_id, set()).discard(conn)
        conn.wake.set()
        if conn.writer is not None and conn.writer is not asyncio.current_task():
            conn.writer.cancel()
        if abort:
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
            return
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=message), 1.0)
        except Exception:
            transport = conn.request.transport
            if transport is not None:
                transport.abort()

    async def _run_instant(self, kind: str) -> None:
        conns = list(self._conns.values())
        if kind == "drop":
            for c in conns:
                await self._close_conn(c, abort=True)
        elif kind == "expire":
            for c in conns:
                self.stats["lifetime_closes"] += 1
                await self._close_conn(c, code=1000)
        elif kind == "server_shutdown":
            # Both markets announce it (spot WebSocket Streams and WebSocket API since 2026-05-08):
            # raw streams get the event, combined streams {"stream": "!serverShutdown", "data": ..},
            # WebSocket API sessions {"event": ..}.
            event = {"e": "serverShutdown", "E": _now_ms()}
            shapes = {
                "raw": orjson.dumps(event),
                "combined": orjson.dumps({"stream": "!serverShutdown", "data": event}),
                "ws-api": orjson.dumps({"event": event}),
            }
            for c in conns:
                if not c.closed:
                    payload = shapes["ws-api" if c.route == "ws-api" else "combined" if c.combined else "raw"]
                    try:
                        await c.ws.send_frame(payload, WSMsgType.TEXT)
                    except Exception:
                        pass
            for c in conns:
                await self._close_conn(c, code=1000)

    # ------------------------------------------------------------------ REST plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        weight = request_weight(self.config.market, request.path, request.query)
        verdict = self.weights.check(weight)
        if weight:
            self.stats["rest_requests"] += 1
        if verdict.status == 418:
            return web.json_response(
                {
                    "code": -1003,
                    "msg": f"Way too much request weight used; IP banned until {_now_ms() + verdict.retry_after_s * 1000}. "
                    "Please use WebSocket Streams for live updates to avoid bans.",
                },
                status=418,
                headers={"Retry-After": str(verdict.retry_after_s), "X-MBX-USED-WEIGHT-1M": str(verdict.used)},
            )
        if verdict.status == 429:
            return web.json_response(
                {
                    "code": -1003,
                    "msg": f"Too many requests; current limit of IP(127.0.0.1) is "
                    f"{self.config.weight_limit} requests per minute. Please use the websocket for live "
                    "updates to avoid polling the API.",
                },
                status=429,
                headers={"Retry-After": str(verdict.retry_after_s), "X-MBX-USED-WEIGHT-1M": str(verdict.used)},
            )
        try:
            resp = await handler(request)
        except auth.SimApiError as e:
            resp = web.json_response(e.to_json(), status=e.http_status, headers=e.headers)
        if weight and not isinstance(resp, web.WebSocketResponse):
            resp.headers["X-MBX-USED-WEIGHT-1M"] = str(verdict.used)
            resp.headers["X-MBX-USED-WEIGHT"] = str(verdict.used)
        return resp

    def _symbol_param(self, request: web.Request, required: bool = True) -> str | None:
        sym = request.query.get("symbol")
        if sym is None:
            if required:
                raise auth.SimApiError(
                    -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
                )
            return None
        sym = sym.upper()
        if sym not in self.markets:
            raise auth.SimApiError(-1121, "Invalid symbol.")
        return sym

    async def _signed(self, request: web.Request) -> tuple[auth.Credentials, dict[str, str]]:
        body = await request.text()
        return auth.verify_signed(
            api_key=request.headers.get("X-MBX-APIKEY"),
            query_string=request.rel_url.raw_query_string,
            body=body,
            accounts=self.accounts,
            now_ms=_now_ms(),
        )

    def _require_venue(self):
        if self.venue is None:
            raise auth.SimApiError(-1000, "Paper trading engine is not available.", 500)
        return self.venue

    # ------------------------------------------------------------------ REST: market data
    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": _now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.exchange_info()), content_type="application/json")

    def exchange_info(self) -> dict[str, Any]:
        spot = self.config.market == "spot"
        limit = self.config.weight_limit
        symbols = [self._symbol_info(spec) for spec in self.specs.values()]
        if spot:
            return {
                "timezone": "UTC",
                "serverTime": _now_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        assets = sorted({s.quote_asset for s in self.specs.values()})
        return {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets],
            "symbols": symbols,
        }

    def _symbol_info(self, s: SymbolSpec) -> dict[str, Any]:
        pd, qd = s.price_decimals, s.qty_decimals
        if self.config.market == "spot":
            return {
                "symbol": s.symbol,
                "status": symbol_status(self, s.symbol),
                "baseAsset": s.base_asset,
                "baseAssetPrecision": 8,
                "quoteAsset": s.quote_asset,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "otoAllowed": True,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True,
                "cancelReplaceAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": fixed(s.tick_units, pd),
                        "maxPrice": fixed(1_000_000 * 10**pd, pd),
                        "tickSize": fixed(s.tick_units, pd),
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": fixed(s.min_qty_units, qd),
                        "maxQty": fixed(s.max_qty_units, qd),
                        "stepSize": fixed(s.step_units, qd),
                    },
                    {"filterType": "ICEBERG_PARTS", "limit": 10},
                    {
                        "filterType": "MARKET_LOT_SIZE",
                        "minQty": fixed(0, qd),
                        "maxQty": fixed(s.market_max_qty_units, qd),
                        "stepSize": fixed(0, qd),
                    },
                    {
                        "filterType": "TRAILING_DELTA",
                        "minTrailingAboveDelta": 10,
                        "maxTrailingAboveDelta": 2000,
                        "minTrailingBelowDelta": 10,
                        "maxTrailingBelowDelta": 2000,
                    },
                    {
                        "filterType": "PERCENT_PRICE_BY_SIDE",
                        "bidMultiplierUp": "5",
                        "bidMultiplierDown": "0.2",
                        "askMultiplierUp": "5",
                        "askMultiplierDown": "0.2",
                        "avgPriceMins": 5,
                    },
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": fixed(s.min_notional_units, pd),
                        "applyMinToMarket": True,
                        "maxNotional": fixed(9_000_000 * 10**pd, pd),
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            }
        from epochbot.model.numeric import format_units

        return {
            "symbol": s.symbol,
            "pair": s.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": symbol_status(self, s.symbol),
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": s.base_asset,
            "quoteAsset": s.quote_asset,
            "marginAsset": s.quote_asset,
            "pricePrecision": pd,
            "quantityPrecision": qd,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": format_units(s.tick_units, pd),
                    "maxPrice": format_units(1_000_000 * 10**pd, pd),
                    "tickSize": fixed(s.tick_units, pd),
                },
                {
                    "filterType": "LOT_SIZE",
                    "stepSize": fixed(s.step_units, qd),
                    "maxQty": format_units(s.max_qty_units, qd),
                    "minQty": fixed(s.min_qty_units, qd),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "stepSize": fixed(s.step_units, qd),
                    "maxQty": format_units(s.market_max_qty_units, qd),
                    "minQty": fixed(s.min_qty_units, qd),
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": format_units(s.min_notional_units, pd)},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": [
                "LIMIT",
                "MARKET",
                "STOP",
                "STOP_MARKET",
                "TAKE_PROFIT",
                "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET",
            ],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }

    def depth_snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        """The REST depth body for a symbol right now (also used by tests for comparisons)."""
        m = self.markets[symbol]
        last, bids, asks = m.snapshot(limit)
        pd, qd = m.price_decimals, m.qty_decimals
        body: dict[str, Any] = {"lastUpdateId": last}
        if self.config.market == "usdm":
            now = self._stale(symbol, _now_ms())
            body["E"] = now
            body["T"] = now
        body["bids"] = [[fixed(p, pd), fixed(q, qd)] for p, q in bids]
        body["asks"] = [[fixed(p, pd), fixed(q, qd)] for p, q in asks]
        return body

    async def _depth(self, request: web.Request) -> web.Response:
        sym = self._symbol_param(request)
        spot = self.config.market == "spot"
        try:
            limit = int(request.query.get("limit", "100" if spot else "500"))
        except ValueError:
            raise auth.SimApiError(
                -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
            )
        if spot:
            limit = max(1, min(limit, 5000))
        elif limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise auth.SimApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        f = self.faults.take("snapshot_slow", sym)
        if f is not None:
            await asyncio.sleep(float(f.params.get("ms", 0)) / 1000.0)
        f = self.faults.take("snapshot_fail", sym)
        if f is not None:
            status = int(f.params.get("status", 503))
            return web.json_response(
                {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
                status=status,
            )
        f = self.faults.take("snapshot_ratelimit", sym)
        if f is not None:
            status = int(f.params.get("status", 429))
            code = -1003
            msg = (
                (
                    "Way too much request weight used; IP banned until %d. Please use the websocket for live updates "
                    "to avoid bans." % (_now_ms() + 120_000)
                )
                if status == 418
                else (
                    "Too many requests; current limit of IP(127.0.0.1) is %d requests per minute."
                    % self.config.weight_limit
                )
            )
            return web.json_response(
                {"code": code, "msg": msg},
                status=status,
                headers={"Retry-After": str(int(f.params.get("retry_after", 10)))},
            )
        body = self.depth_snapshot(sym, limit)
        if self.faults.take("crossed_snapshot", sym) and body["asks"]:
            best_ask = body["asks"][0][0]
            body["bids"].insert(0, [best_ask, body["bids"][0][1] if body["bids"] else body["asks"][0][1]])
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _klines_rest(self, request: web.Request) -> web.Response:
        sym = self._symbol_param(request)
        if request.query.get("interval") != "1m":
            raise auth.SimApiError(-1120, "Invalid interval.")
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            raise auth.SimApiError(-1100, "Illegal characters found in parameter 'limit'.")
        m = self.markets[sym]
        try:
            start = int(request.query["startTime"]) if "startTime" in request.query else None
            end = int(request.query["endTime"]) if "endTime" in request.query else None
        except ValueError:
            raise auth.SimApiError(-1100, "Illegal characters found in parameter 'startTime'.")
        limit = max(1, min(limit, 1500))
        if start is None and end is None:
            rows = [k.as_array(m.price_decimals, m.qty_decimals) for k in list(self._klines[sym])[-limit:]]
        else:  # Binance: the oldest `limit` candles from startTime (the newest up to endTime without it)
            kept = [
                k
                for k in self._klines[sym]
                if (start is None or k.open_ms >= start) and (end is None or k.open_ms <= end)
            ]
            kept = kept[:limit] if start is not None else kept[-limit:]
            rows = [k.as_array(m.price_decimals, m.qty_decimals) for k in kept]
            return web.Response(body=orjson.dumps(rows), content_type="application/json")
        if not rows:
            p = m.last_trade_price
            now = _now_ms()
            rows = [KlineState(now - now % 60_000, p, p, p, p).as_array(m.price_decimals, m.qty_decimals)]
        return web.Response(body=orjson.dumps(rows), content_type="application/json")

    async def _premium_index(self, request: web.Request) -> web.Response:
        sym = self._symbol_param(request, required=False)
        now = _now_ms()
        nxt = (now // 28_800_000 + 1) * 28_800_000

        def one(s: str) -> dict[str, Any]:
            m = self.markets[s]
            pd = m.price_decimals
            return {
                "symbol": s,
                "markPrice": fixed(m.mark_price(), pd),
                "indexPrice": fixed(m.index_price(), pd),
                "estimatedSettlePrice": fixed(m.index_price(), pd),
                "lastFundingRate": "0.00010000",
                "interestRate": "0.00010000",
                "nextFundingTime": nxt,
                "time": now,
            }

        body = one(sym) if sym else [one(s) for s in self.markets]
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    # ------------------------------------------------------------------ REST: trading
    def _make_venue(self):
        try:
            from epochbot.sim import matching
        except ImportError:
            return None
        filters = {}
        fields = {f.name for f in dataclasses.fields(matching.SymbolFilters)}
        for sym, s in self.specs.items():
            cand = {
                "symbol": sym,
                "base_asset": s.base_asset,
                "quote_asset": s.quote_asset,
                "price_decimals": s.price_decimals,
                "qty_decimals": s.qty_decimals,
                "tick_units": s.tick_units,
                "tick_size_units": s.tick_units,
                "step_units": s.step_units,
                "step_size_units": s.step_units,
                "min_qty_units": s.min_qty_units,
                "max_qty_units": s.max_qty_units,
                "min_notional": fixed(s.min_notional_units, s.price_decimals),
                "min_notional_units": s.min_notional_units,
            }
            filters[sym] = matching.SymbolFilters(**{k: v for k, v in cand.items() if k in fields})
        return matching.PaperVenue(self.config.market, filters)

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")

    async def _order_new(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        venue = self._require_venue()
        sym = params.get("symbol", "").upper()
        if sym not in self.markets:
            raise auth.SimApiError(-1121, "Invalid symbol.")
        self.wsapi.note_place(params.get("newClientOrderId"))
        refuse_unless_trading(self, sym)
        if (delay := self.faults.take("order_delay", sym)) is not None:
            await asyncio.sleep(delay.params.get("ms", 300) / 1000)
        if self.faults.take("unknown_execution", sym):
            if self.rng.random() < 0.5:
                try:
                    venue.place_order(creds.account_id, params, self.markets[sym], _now_ms())
                except auth.SimApiError:
                    pass
                self._user_events()
            return self._json({"code": -1000, "msg": UNKNOWN_ERROR_MSG}, status=503)
        body = venue.place_order(creds.account_id, params, self.markets[sym], _now_ms())
        self._user_events()
        return self._json(body)

    async def _order_query(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._json(self._require_venue().query_order(creds.account_id, params))

    async def _order_cancel(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        body = self._require_venue().cancel_order(creds.account_id, params, _now_ms())
        self._user_events()
        return self._json(body)

    async def _open_orders(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        return self._json(self._require_venue().open_orders(creds.account_id, sym.upper() if sym else None))

    @staticmethod
    def _int_param(params: dict[str, str], name: str) -> int | None:
        text = params.get(name)
        if text is None or text == "":
            return None
        if not text.lstrip("-").isdigit():
            raise auth.SimApiError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            )
        return int(text)

    async def _user_trades(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/userTrades (usdm) or /api/v3/myTrades (spot): the account's executions."""
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        if not sym:
            raise auth.SimApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        limit = self._int_param(params, "limit")
        trades = self._require_venue().user_trades(
            creds.account_id,
            sym.upper(),
            start_time=self._int_param(params, "startTime"),
            end_time=self._int_param(params, "endTime"),
            from_id=self._int_param(params, "fromId"),
            limit=500 if limit is None else limit,
        )
        return self._json(trades)

    async def _all_orders(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/allOrders or /api/v3/allOrders: every order of the symbol, oldest first."""
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        if not sym:
            raise auth.SimApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        limit = self._int_param(params, "limit")
        return self._json(
            self._require_venue().all_orders(creds.account_id, sym.upper(), 0 if limit is None else limit)
        )

    async def _account(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._json(self._require_venue().account(creds.account_id, _now_ms()))

    async def _position_risk(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        marks = {s: m.mark_price() for s, m in self.markets.items()}
        return self._json(self._require_venue().position_risk(creds.account_id, sym.upper() if sym else None, marks))

    async def _listen_key_new(self, request: web.Request) -> web.Response:
        creds = auth.verify_api_key(request.headers.get("X-MBX-APIKEY"), self.accounts)
        for key, acct in self._listen_keys.items():  # Binance returns the same key while it is valid
            if acct == creds.account_id:
                return self._json({"listenKey": key})
        digest = hashlib.sha256(f"{self.config.seed}:{creds.account_id}:{len(self._listen_keys)}".encode()).hexdigest()
        key = (digest + hashlib.sha256(digest.encode()).hexdigest())[:60]
        self._listen_keys[key] = creds.account_id
        return self._json({"listenKey": key})

    async def _listen_key_gone(self, request: web.Request) -> web.Response:
        return self._json(
            {
                "code": -1000,
                "msg": "This endpoint is no longer available (removed 2026-02-20); "
                "use userDataStream.subscribe on the WebSocket API.",
            },
            status=410,
        )

    async def _listen_key_keep(self, request: web.Request) -> web.Response:
        auth.verify_api_key(request.headers.get("X-MBX-APIKEY"), self.accounts)
        params = dict(request.query)
        if request.can_read_body:
            from urllib.parse import parse_qsl

            params.update(parse_qsl(await request.text()))
        key = params.get("listenKey")
        if self.config.market == "spot" and key not in self._listen_keys:
            raise auth.SimApiError(-1125, "This listenKey does not exist.")
        if self.config.market == "usdm":
            key = key or next(iter(self._listen_keys), None)
            if key is None:
                raise auth.SimApiError(-1125, "This listenKey does not exist.")
            return self._json({"listenKey": key})
        return self._json({})

    async def _listen_key_close(self, request: web.Request) -> web.Response:
        creds = auth.verify_api_key(request.headers.get("X-MBX-APIKEY"), self.accounts)
        params = dict(request.query)
        if request.can_read_body:
            from urllib.parse import parse_qsl

            params.update(parse_qsl(await request.text()))
        key = params.get("listenKey")
        keys = [key] if key else [k for k, a in self._listen_keys.items() if a == creds.account_id]
        for k in keys:
            acct = self._listen_keys.pop(k, None)
            if acct is not None:
                for c in list(self._user_conns.get(acct, ())):
                    if c.listen_key == k:
                        await self._close_conn(c)
        return self._json({})

    # ------------------------------------------------------------------ control API
    async def _ctl_fault(self, request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read())
            fault = (
                self.inject(**spec)
                if isinstance(spec, dict) and "kind" in spec
                else self.inject(**(spec if isinstance(spec, dict) else {"kind": None}))
            )
        except FaultError as e:
            body: dict[str, Any] = {"error": str(e)}
            if e.known:
                body["known"] = list(e.known)
            return self._json(body, status=400)
        except (orjson.JSONDecodeError, TypeError) as e:
            return self._json({"error": str(e)}, status=400)
        return self._json(fault)

    async def _ctl_faults(self, request: web.Request) -> web.Response:
        return self._json(self.faults.to_json())

    async def _ctl_clear(self, request: web.Request) -> web.Response:
        return self._json({"cleared": self.faults.clear()})

    async def _ctl_market(self, request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read())
        except orjson.JSONDecodeError as e:
            return self._json({"error": str(e)}, status=400)
        known = ("paused", "duration_s")
        if not isinstance(spec, dict) or not isinstance(spec.get("paused"), bool) or any(k not in known for k in spec):
            return self._json(
                {"error": 'body must be {"paused": true|false[, "duration_s": seconds]}', "known": list(known)},
                status=400,
            )
        duration = spec.get("duration_s")
        if duration is not None:
            try:
                duration = check_param("duration_s", duration)
            except FaultError as e:
                return self._json({"error": str(e), "known": list(known)}, status=400)
        if spec["paused"]:
            self.pause_market(duration)
        else:
            self.resume_market()
        return self._json({"paused": self.paused, "update_ids": {s: m.update_id for s, m in self.markets.items()}})

    async def _ctl_market_get(self, request: web.Request) -> web.Response:
        return self._json({"paused": self.paused, "update_ids": {s: m.update_id for s, m in self.markets.items()}})

    async def _ctl_stats(self, request: web.Request) -> web.Response:
        return self._json(self.stats_json())

    async def _ctl_depth(self, request: web.Request) -> web.Response:
        """The simulator's own full-precision snapshot, weight-free (for tests comparing books)."""
        sym = self._symbol_param(request)
        limit = int(request.query.get("limit", "5000"))
        return self._json(self.depth_snapshot(sym, limit))
