"""The embedded Binance-compatible exchange: REST + websocket on one aiohttp port.

Theory of operation
-------------------
`SimExchange` builds the parts, each given what it uses, and owns the lifecycle (start the
aiohttp app and one market generator per symbol; stop them and close every connection):

* the market: `SymbolMarket` per symbol (``market.py``), moved by the generators of
  `MarketFeed` (``feed.py``), which render the subscribed streams (``streams.py``) and keep
  the 1m `Candles`;
* the websockets: `Connections` (``conn.py``: accept, writer, keepalive, close, the instant
  faults), `Subscriptions` (``subscriptions.py``), `FrameDelivery` (``delivery.py``: fan-out and
  the frame faults), `MarketStreams` (``ws.py``: stream URLs and the subscribe protocol) and
  the WebSocket API `WsApiServer` (``wsapi.py``, its read and listenKey requests in
  ``wsapi_queries.py``);
* paper trading: `PaperVenue` (``matching/``), reached for new orders through `OrderEntry`
  (``order_entry.py``) from REST (`OrderRest`, ``rest_orders.py``; USD-M's Algo Service,
  countdown and account settings `AccountRest`, ``rest_account.py``) and the WebSocket API; its
  user events are carried by `UserEvents` (``user_data.py``) to WebSocket API subscriptions and
  USD-M ``/private`` listenKey sockets (`ListenKeys`, ``listen_keys.py``); the generators' steps
  move its clock (``countdownCancelAll``);
* REST market data `MarketRest` (``rest_market.py``, exchangeInfo in ``exchange_info.py``), the
  request-weight gate (``rest.py``, ``weights.py``), the ORDERS windows REST and the WebSocket
  API share (``order_limits.py``), authentication (``auth.py``);
* faults from one `FaultBoard` (``faults.py``), applied where they act: the generator (gap,
  stale), delivery (stall, latency, malformed, truncated, duplicate, out_of_order), REST depth
  (snapshot_*, crossed_snapshot), subscription (reject_subscribe), order entry
  (unknown_execution, order_delay, symbol_status) or at once (drop, expire, server_shutdown);
  armed through `inject` or the control API (``control.py``, ``/_sim/*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

from aiohttp import web

from epochbot.sim import auth
from epochbot.sim.candles import Candles
from epochbot.sim.config import SimConfig, resolved
from epochbot.sim.conn import Connections
from epochbot.sim.control import ControlApi
from epochbot.sim.delivery import FrameDelivery
from epochbot.sim.exchange_info import ExchangeInfo
from epochbot.sim.faults import INSTANT_KINDS, FaultBoard, StallScopes
from epochbot.sim.feed import MarketFeed
from epochbot.sim.listen_keys import ListenKeys
from epochbot.sim.market import SymbolMarket, SymbolSpec, default_spec, fixed
from epochbot.sim.matching import PaperVenue, SymbolFilters
from epochbot.sim.order_entry import OrderEntry
from epochbot.sim.order_limits import OrderCounter
from epochbot.sim.rest import WeightGate
from epochbot.sim.rest_account import AccountRest
from epochbot.sim.rest_market import MarketRest
from epochbot.sim.rest_orders import OrderRest
from epochbot.sim.subscriptions import Subscriptions
from epochbot.sim.user_data import UserEvents
from epochbot.sim.weights import WeightLimiter
from epochbot.sim.ws import MarketStreams
from epochbot.sim.wsapi import WsApiServer
from epochbot.sim.wsapi_queries import WsApiQueries

__all__ = ["SimConfig", "SimExchange"]


def make_venue(market: str, specs: dict[str, SymbolSpec], *, hedge_mode: bool = False) -> PaperVenue:
    """The paper venue enforcing the served symbols' filters (USD-M accounts in hedge mode from the
    start when ``hedge_mode``)."""
    filters = {
        sym: SymbolFilters(
            symbol=sym,
            base_asset=s.base_asset,
            quote_asset=s.quote_asset,
            price_decimals=s.price_decimals,
            qty_decimals=s.qty_decimals,
            tick_units=s.tick_units,
            step_units=s.step_units,
            min_qty_units=s.min_qty_units,
            max_qty_units=s.max_qty_units,
            min_notional=fixed(s.min_notional_units, s.price_decimals),
        )
        for sym, s in specs.items()
    }
    return PaperVenue("spot" if market == "spot" else "usdm", filters, hedge_mode=hedge_mode)


def new_stats() -> dict[str, Any]:
    """The counters every part adds to (``/_sim/stats`` shows them in this order)."""
    return {
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


class SimExchange:
    """The simulator as an async context manager (see module docstring)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        market = cfg.market
        weight_limit = resolved(cfg.weight_limit)
        self.accounts = auth.load_accounts(cfg.accounts)
        self.specs: dict[str, SymbolSpec] = {s: default_spec(market, s, cfg.seed) for s in cfg.symbols}
        self.markets: dict[str, SymbolMarket] = {s: SymbolMarket(spec, cfg.seed) for s, spec in self.specs.items()}
        self.faults = FaultBoard()
        self.rng = random.Random(cfg.seed ^ 0x51D)  # one stream of draws: forceOrder and unknown_execution
        self.venue = make_venue(market, self.specs, hedge_mode=resolved(cfg.hedge_mode))
        self.weights = WeightLimiter(weight_limit)
        self.order_counter = OrderCounter(market)  # ORDERS windows, REST and WebSocket API alike
        self.stats: dict[str, Any] = new_stats()
        self.candles = Candles(cfg.symbols)
        self.port = 0
        self.rest_url = ""
        self.ws_url = ""
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

        self._stalls = StallScopes()
        self._subscriptions = Subscriptions(market, cfg.symbols)
        self._connections = Connections(
            stats=self.stats,
            faults=self.faults,
            stalls=self._stalls,
            ping_interval_s=resolved(cfg.ping_interval_s),
            pong_timeout_s=resolved(cfg.pong_timeout_s),
            max_lifetime_s=cfg.max_lifetime_s,
        )
        self._user_events = UserEvents(self.venue)
        self._connections.on_close(self._subscriptions.drop)
        self._connections.on_close(self._user_events.detach)
        self._delivery = FrameDelivery(
            subscriptions=self._subscriptions,
            connections=self._connections,
            faults=self.faults,
            stalls=self._stalls,
            stats=self.stats,
            send_queue_limit=cfg.send_queue_limit,
        )
        self._feed = MarketFeed(
            market=market,
            rate=cfg.rate,
            tick_s=resolved(cfg.tick_s),
            speed=cfg.speed,
            markets=self.markets,
            subscriptions=self._subscriptions,
            delivery=self._delivery,
            faults=self.faults,
            candles=self.candles,
            venue=self.venue,
            user_events=self._user_events,
            rng=self.rng,
            stats=self.stats,
        )
        self._exchange_info = ExchangeInfo(
            market=market, weight_limit=weight_limit, specs=self.specs, faults=self.faults
        )
        self.orders = OrderEntry(
            venue=self.venue,
            markets=self.markets,
            faults=self.faults,
            rng=self.rng,
            exchange_info=self._exchange_info,
            user_events=self._user_events,
        )
        self._listen_keys = ListenKeys(
            market=market,
            seed=cfg.seed,
            accounts=self.accounts,
            user_events=self._user_events,
            connections=self._connections,
        )
        self._market_rest = MarketRest(
            market=market,
            weight_limit=weight_limit,
            markets=self.markets,
            candles=self.candles,
            exchange_info=self._exchange_info,
            faults=self.faults,
        )
        self._order_rest = OrderRest(
            market=market,
            accounts=self.accounts,
            markets=self.markets,
            venue=self.venue,
            orders=self.orders,
            user_events=self._user_events,
        )
        self._account_rest = AccountRest(
            accounts=self.accounts,
            markets=self.markets,
            venue=self.venue,
            orders=self.orders,
            user_events=self._user_events,
        )
        self._streams = MarketStreams(
            market=market,
            max_streams=cfg.max_streams,
            msg_rate_limit=resolved(cfg.msg_rate_limit),
            connections=self._connections,
            subscriptions=self._subscriptions,
            listen_keys=self._listen_keys,
            user_events=self._user_events,
            faults=self.faults,
            stats=self.stats,
        )
        self.wsapi = WsApiServer(  # spot /ws-api/v3, USD-M /ws-fapi/v1
            market=market,
            weight_limit=weight_limit,
            accounts=self.accounts,
            markets=self.markets,
            venue=self.venue,
            weights=self.weights,
            connections=self._connections,
            orders=self.orders,
            exchange_info=self._exchange_info,
            user_events=self._user_events,
            faults=self.faults,
            rng=self.rng,
            order_counter=self.order_counter,
            queries=WsApiQueries(
                market=market,
                markets=self.markets,
                venue=self.venue,
                accounts=self.accounts,
                listen_keys=self._listen_keys,
                depth_snapshot=self._market_rest.depth_snapshot,
                symbol_status=self._exchange_info.symbol_status,
            ),
        )
        self._control = ControlApi(self, self.faults, self.markets)
        for spec in cfg.faults:
            self.faults.arm(spec)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> SimExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        cfg = self.config
        gate = WeightGate(
            market=cfg.market,
            weights=self.weights,
            weight_limit=resolved(cfg.weight_limit),
            stats=self.stats,
            order_counter=self.order_counter,
        )
        app = web.Application(middlewares=[gate.middleware])
        router = app.router
        self._streams.add_routes(router)
        self._market_rest.add_routes(router)
        self._order_rest.add_routes(router)
        if cfg.market == "usdm":
            self._market_rest.add_usdm_routes(router)
            self._account_rest.add_routes(router)
        self._listen_keys.add_routes(router)
        self.wsapi.add_routes(app)
        self._control.add_routes(router)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]  # aiohttp keeps the bound socket private
        self.port = sock.getsockname()[1]
        self.rest_url = f"http://{cfg.host}:{self.port}"
        self.ws_url = f"ws://{cfg.host}:{self.port}"
        for sym in cfg.symbols:
            self._tasks.append(asyncio.create_task(self._feed.run(sym), name=f"sim-gen-{sym}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            # A generator ends cancelled; one that failed has nothing left to say at shutdown.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self._connections.close_all(1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ public helpers
    def market(self, symbol: str) -> SymbolMarket:
        return self.markets[symbol.upper()]

    @property
    def paused(self) -> bool:
        """Whether the market is quiet (see `pause_market`)."""
        return self._feed.paused

    def pause_market(self, duration_s: float | None = None) -> None:
        """A quiet market: the books stop changing (no diffs, trades or tickers are sent) while
        every connection stays up and the timed streams keep coming (USD-M markPrice@1s, klines,
        partial depth), as on Binance. ``duration_s``: resume by itself after that long."""
        self._feed.pause(duration_s)

    def resume_market(self) -> None:
        self._feed.resume()

    def inject(self, kind: str, **params: Any) -> dict[str, Any]:
        """Arm a fault (instant kinds run now); returns its JSON description."""
        fault = self.faults.arm({"kind": kind, **params})
        # A stalled connection (a dead route, a wedged server task) goes silent while new
        # connections work; scope "all" stalls every connection, new ones included.
        self._stalls.note_armed(fault, self._connections.ids())
        if fault.kind in INSTANT_KINDS:
            self.faults.note_instant(fault)
            self._connections.start_instant(fault.kind, fault.params)
        return fault.to_json(time.monotonic())

    def update_ids(self) -> dict[str, int]:
        """Each symbol's last diff-depth update id."""
        return {s: m.update_id for s, m in self.markets.items()}

    def stats_json(self) -> dict[str, Any]:
        return {
            **self.stats,
            "connections_open": len(self._connections),
            "update_ids": self.update_ids(),
            "paused": self.paused,
            "weight_used_1m": self.weights.current(),
            "weight_refusals": dict(self.weights.stats),
            "subscriptions": self._subscriptions.counts(),
            "wsapi": {
                **self.wsapi.stats,
                "sessions": len(self.wsapi.sessions),
                "place_requests_max": max(self.orders.place_requests.values(), default=0),
            },
        }

    def exchange_info(self) -> dict[str, Any]:
        """The exchangeInfo document as GET exchangeInfo serves it now."""
        return self._exchange_info.document()

    def depth_snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        """The REST depth body for a symbol right now (also used by tests for comparisons)."""
        return self._market_rest.depth_snapshot(symbol, limit)
