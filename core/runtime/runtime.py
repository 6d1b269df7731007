"""The live runtime: the strategy loop plus the I/O that executes the engine's commands.

Theory of operation
-------------------
One asyncio loop, one consumer. Producers (transport readers/writers, snapshot fetches, the
timer, the operator from any thread) put events into the `Inbox`; the strategy loop takes them
control-first, hands each to ``Engine.handle`` and executes the returned commands:

* ``ReplaceSession``: close the current `TransportSession` (timed), wait the engine's backoff
  (respecting a connection-attempt budget), dial the new one (timed), report ``SessionOpened``,
  subscribe (the ack arrives as ``SubscriptionConfirmed``). A dial failure is reported as
  ``Disconnected`` for that epoch, so the engine decides the next attempt and its backoff.
* ``FetchSnapshot``: queued in the request-weight planner (`epochbot.runtime.budget.WeightBudget`), which
  lets it go out when the venue's per-minute weight allows (traded and invalid books first, at
  most ``snapshot_concurrency`` at a time); then one task per request. The answer (or failure,
  with Binance's ``Retry-After``) comes back as a control event tagged with the epoch it was
  requested for, on the inbox's bulk lane (installed one at a time between market events).
  Kline backfill requests take their weight from the same planner.
* ``Stop``: finish the loop with the engine's exit code.

At most ``snapshot_hz`` times a second the loop publishes an immutable `WorldSnapshot` by
replacing ``self.latest``; the dashboard and the control endpoint read only that. Operator
actions arrive via ``submit`` (thread-safe). The runtime also replaces a session on its own
before the venue's 24-hour connection limit cuts it.

Where each part lives
---------------------
`Runtime` (this file) is the wiring: configuration, the thread-safe API and the start-up order
(simulator, REST client and weight planner, journal, exchangeInfo scales, kline history, trading,
engine start, timers, loop). Its behaviour comes from one mixin per responsibility, in the order
data flows through them:

    venue -> transport      `epochbot.runtime.commands`  sessions dialled and replaced; commands executed
             REST           `epochbot.runtime.weight`      weight planner and snapshot fetches
                            `epochbot.runtime.probe`     the liveness probe
                            `epochbot.runtime.history`   kline backfill at start
    inbox -> engine         `epochbot.runtime.loop`      the consuming loop, publishing, timers
                            `epochbot.runtime.recorder`   journaling of consumed inputs
    engine -> trader        `epochbot.runtime.trading_session`   trader built, state restored, venue reconciled
    trader -> gateway       `epochbot.runtime.commands`  order commands to `epochbot.runtime.order_gateway`
             storage        `epochbot.runtime.durable`   durable records, the write-ahead barrier
    end                     `epochbot.runtime.shutdown`  orders settled, everything closed in order
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import aiohttp

from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, EngineConfig, LogRecord
from epochbot.model import events as ev
from epochbot.model.clock import wall_ns
from epochbot.runtime.budget import BudgetConfig, WeightBudget
from epochbot.runtime.commands import CommandExecutor
from epochbot.runtime.durable import DurableStorage
from epochbot.runtime.history import Backfill, HistoryBackfill, backfill_klines
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.loop import ConsumeLoop
from epochbot.runtime.probe import VenueProbe
from epochbot.runtime.recorder import InputJournal
from epochbot.runtime.shutdown import ShutdownDrain
from epochbot.runtime.trading_session import TradingStartup
from epochbot.runtime.transport import TransportSession
from epochbot.runtime.weight import RestScheduler
from epochbot.venues.binance.rest import RestClient, RestError
from epochbot.views.snapshot import SnapshotBuilder, WorldSnapshot

__all__ = [
    "Backfill",
    "JournalConfig",
    "Runtime",
    "RuntimeConfig",
    "TradingConfig",
    "VENUES",
    "VenueEndpoints",
    "backfill_klines",
]


@dataclass(frozen=True, slots=True)
class VenueEndpoints:
    name: str
    market: Literal["spot", "usdm"]
    rest_url: str
    ws_url: str


VENUES: dict[str, VenueEndpoints] = {
    "sim": VenueEndpoints("sim", "usdm", "", ""),
    "binance-spot": VenueEndpoints("binance-spot", "spot", "https://api.binance.com", "wss://stream.binance.com:9443"),
    "binance-usdm": VenueEndpoints("binance-usdm", "usdm", "https://fapi.binance.com", "wss://fstream.binance.com"),
    "binance-spot-testnet": VenueEndpoints(
        "binance-spot-testnet", "spot", "https://testnet.binance.vision", "wss://stream.testnet.binance.vision"
    ),
    "binance-usdm-testnet": VenueEndpoints(
        "binance-usdm-testnet", "usdm", "https://testnet.binancefuture.com", "wss://fstream.binancefuture.com"
    ),
}


@dataclass(frozen=True, slots=True)
class TradingConfig:
    """Paper or live trading. Keys are resolved secret values: never printed (repr=False)."""

    strategy: str
    params: dict = field(default_factory=dict)
    api_key: str = field(default="", repr=False)
    api_secret: str = field(default="", repr=False)
    storage_path: str | None = None  # SQLite file; None keeps nothing across restarts
    # Start with an empty database (the embedded simulator starts fresh every run, so state
    # stored by an earlier run describes accounts that no longer exist): see epochbot.app.config.
    storage_per_run: bool = False
    limits: object | None = None  # epochbot.trading.risk.RiskLimits
    cancel_on_shutdown: bool = True
    recv_window_ms: int = 5000
    # An UNKNOWN order the venue says it does not know is queried again (with backoff) until
    # this long after it was signed; only then is it taken as never placed (see orders.py).
    unknown_window_ms: int = 15_000
    # Orders at the venue with our client-id prefix that the journal does not know, found at
    # start: "cancel" them (default), "adopt" them, or "ignore" them. Orders without our
    # prefix are never touched unless foreign_orders is "cancel".
    unknown_orders: str = "cancel"
    foreign_orders: str = "ignore"
    ws_orders: bool = True  # orders over the WebSocket API while its session is up (REST otherwise)


@dataclass(frozen=True, slots=True)
class JournalConfig:
    directory: str
    max_bytes: int = 64 * 1024 * 1024
    keep: int = 8


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    venue: VenueEndpoints
    symbols: tuple[str, ...]
    engine: EngineConfig = field(default_factory=EngineConfig)
    snapshot_hz: float = 20.0
    tick_ms: float = 50.0
    market_queue_size: int = 20_000
    http_timeout_s: float = 5.0
    retry_after_cap_s: float = 60.0  # Retry-After honoured up to this (logged when capped)
    trades: bool = True
    tickers: bool = True
    # Replace the session this long after it opened, before Binance's 24-hour cut.
    max_session_s: float = 23.5 * 3600
    # Connection attempts: at most this many dials per window (Binance limits connection rate).
    dial_budget: int = 10
    dial_window_s: float = 10.0
    clock_offset_interval_s: float = 300.0
    # The embedded simulator (venue "sim" with no URLs): started by run() on an ephemeral port.
    sim_seed: int = 7
    sim_rate: float | None = None
    sim_port: int = 0  # 0: ephemeral (its URLs are logged); fixed to reach /_sim/fault easily
    sim_faults: tuple[dict, ...] = ()
    trading: TradingConfig | None = None
    journal: JournalConfig | None = None
    # Once the first epoch is synced: collect, then freeze the heap (see _freeze_heap_when_synced).
    gc_freeze: bool = True
    # Candles: fetched for this many minutes back at start (0: no backfill), and subscribed live.
    history_interval: str = "1m"
    history_lookback_min: int = 120
    # REST request weight (core/runtime/budget.py): None takes the venue's limit (spot 6000, USD-M 2400).
    weight_limit: int | None = None
    weight_headroom: float = 0.1
    snapshot_concurrency: int = 8
    # Symbols the strategy trades (their snapshots go first); None: all of them when trading.
    traded_symbols: tuple[str, ...] | None = None
    # Streams of watched (not traded) symbols: "all" (depth, bookTicker, aggTrade, markPrice,
    # kline, and their kline backfill) or "depth" (the book only: a fraction of the messages).
    watched_streams: Literal["all", "depth"] = "all"


class Runtime(
    CommandExecutor,
    RestScheduler,
    VenueProbe,
    HistoryBackfill,
    TradingStartup,
    ConsumeLoop,
    InputJournal,
    DurableStorage,
    ShutdownDrain,
):
    """The wiring: owns the engine, inbox, REST client, budget and (when trading) gateway and
    storage; runs startup in order and then the strategy loop. Its parts are mixins, one file each
    (see the module docstring)."""

    def __init__(self, config: RuntimeConfig, *, clock: Callable[[], int] = wall_ns) -> None:
        engine_cfg = config.engine
        rules = VenueRules.SPOT if config.venue.market == "spot" else VenueRules.USDM
        engine_cfg = replace(engine_cfg, venue=rules, symbols=tuple(config.symbols))
        self.config = replace(config, engine=engine_cfg)
        self.clock = clock
        self.engine = Engine(engine_cfg, clock)
        self.builder = SnapshotBuilder(config.venue.name)
        self.latest: WorldSnapshot | None = None
        self.exit_code: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self.inbox = Inbox(config.market_queue_size, wake=self._wakeup.set)
        self._session: TransportSession | None = None
        # symbol -> (price_decimals, qty_decimals) of books whose codec _prepare fixed from
        # exchangeInfo: the transport decodes those symbols' depth frames straight to units.
        self._depth_scales: dict[str, tuple[int, int]] = {}
        self._session_task: asyncio.Task | None = None
        self._snapshot_tasks: dict[str, asyncio.Task] = {}
        self._background: set[asyncio.Task] = set()
        self._log_listeners: list[Callable[[LogRecord], None]] = []
        self._snapshot_listeners: list[Callable[[WorldSnapshot], None]] = []
        self._dial_times: list[float] = []
        self._http: aiohttp.ClientSession | None = None
        self.rest: RestClient | None = None
        self._pending_early: list = []
        self.sim = None  # the embedded SimExchange when venue is "sim"
        self.gateway = None  # epochbot.runtime.order_gateway.OrderGateway when trading
        self.writer = None  # epochbot.persistence.writer.StorageWriter
        self.storage = None
        self.journal = None  # epochbot.persistence.journal.CaptureJournal
        self._persisted_epochs = 0
        market = config.venue.market
        budget_cfg = BudgetConfig.for_market(
            market, headroom=config.weight_headroom, max_in_flight=config.snapshot_concurrency
        )
        if config.weight_limit is not None:
            budget_cfg = replace(budget_cfg, limit=config.weight_limit)
        self.budget = WeightBudget(budget_cfg)
        self._budget_wake = asyncio.Event()
        self._budget_reported: tuple = ()

    # ------------------------------------------------------------------ thread-safe API

    def submit(self, event) -> None:
        """Hand an operator control event to the loop (from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._pending_early.append(event)
            return
        event.recv_ts = self.clock()
        loop.call_soon_threadsafe(self.inbox.put_control, event)

    def request_stop(self, reason: str = "stop requested") -> None:
        self.submit(ev.ShutdownRequested(reason=reason))

    def add_log_listener(self, callback: Callable[[LogRecord], None]) -> None:
        self._log_listeners.append(callback)

    def add_snapshot_listener(self, callback: Callable[[WorldSnapshot], None]) -> None:
        self._snapshot_listeners.append(callback)

    # ------------------------------------------------------------------ startup and main loop

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self.inbox.wake = self._wakeup.set
        for event in self._pending_early:
            self.inbox.put_control(event)
        self._pending_early.clear()
        if self.config.venue.name == "sim" and not self.config.venue.rest_url:
            await self._start_sim()
        connector = aiohttp.TCPConnector(limit=64, ttl_dns_cache=300)
        self._http = aiohttp.ClientSession(connector=connector)
        self.rest = RestClient(
            self._http,
            self.config.venue.rest_url,
            self.config.venue.market,
            self.config.http_timeout_s,
            retry_after_cap_s=self.config.retry_after_cap_s,
        )
        self.rest.log = self._runtime_log
        self._budget_wake = asyncio.Event()
        self._spawn(self._budget_loop(), "weight-budget")
        try:
            if self.config.journal is not None:
                self._open_journal()
            filters = await self._prepare()
            history = await self._backfill_history()
            if self.config.trading is not None:
                await self._measure_clock_offset()  # before the first signed request
                self._execute(await self._start_trading(filters))
            self._use_history(history)
            if self.config.gc_freeze:
                gc.collect()
                gc.freeze()  # the startup heap (modules, clients, history) is never garbage
            self._execute(self._start_engine())
            self._spawn(self._timer(), "timer")
            self._spawn(self._clock_offset_loop(), "clock-offset")
            if self.config.gc_freeze:
                self._spawn(self._freeze_heap_when_synced(), "gc-freeze")
            self._publish()
            return await self._consume()
        finally:
            await self._shutdown()

    def _start_engine(self) -> list:
        """``engine.start()`` at one instant (journaled: replay starts the engine at it)."""
        engine = self.engine
        now = self.clock()
        engine.clock = lambda: now
        try:
            commands = engine.start()
        finally:
            engine.clock = self.clock
        if self.journal is not None:
            self.journal.obj({"k": "start", "p": now})
        return commands

    async def _start_sim(self) -> None:
        from epochbot.sim.server import SimConfig, SimExchange

        cfg = self.config
        extra = {"rate": cfg.sim_rate} if cfg.sim_rate is not None else {}
        sim_cfg = SimConfig(
            market=cfg.venue.market,
            symbols=list(cfg.symbols),
            seed=cfg.sim_seed,
            port=cfg.sim_port,
            faults=list(cfg.sim_faults),
            **extra,
        )
        self.sim = SimExchange(sim_cfg)
        await self.sim.start()
        venue = replace(cfg.venue, rest_url=self.sim.rest_url, ws_url=self.sim.ws_url)
        self.config = replace(cfg, venue=venue)
        self._runtime_log(
            "info", "embedded simulator started", rest=self.sim.rest_url, ws=self.sim.ws_url, market=venue.market
        )

    async def _prepare(self) -> dict:
        """Exact symbol scales from exchangeInfo (the book infers them from snapshots otherwise)."""
        try:
            filters = await self.rest.exchange_filters(list(self.config.symbols))
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self._runtime_log(
                "warn", "exchangeInfo unavailable: scales will be inferred from snapshots", error=str(exc)
            )
            return {}
        published = self.rest.weight_limit_1m
        if published and self.config.weight_limit is None and published != self.budget.config.limit:
            self.budget.config = replace(self.budget.config, limit=published)
            self._runtime_log(
                "info", "request weight limit from exchangeInfo", limit=published, cap=self.budget.config.cap
            )
        for symbol in self.config.symbols:
            f = filters.get(symbol)
            if f is None:
                self._runtime_log("warn", "symbol not listed by the venue", symbol=symbol)
                continue
            # Applied now, before any session exists, so that no book parses a level first.
            spec = ev.SymbolSpec(
                symbol=symbol, tick_size=f.tick_size, step_size=f.step_size, min_notional=f.min_notional
            )
            self.engine.handle(spec)
            if self.journal is not None:
                self.journal.event(spec)
            state = self.engine.symbols.get(symbol)
            codec = state.book.codec if state is not None else None  # the scale the book has now
            if codec is not None:
                self._depth_scales[symbol] = (codec.price_decimals, codec.qty_decimals)
        return filters
