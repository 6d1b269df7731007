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
* ``FetchSnapshot``: queued in the request-weight planner (`core.budget.WeightBudget`), which
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
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import aiohttp

from core import events as ev
from core.book import VenueRules
from core.budget import BudgetConfig, Grant, WeightBudget, depth_weight, klines_weight
from core.data_errors import handle_failure
from core.engine import Engine, EngineConfig, LogRecord
from core.inbox import Inbox
from core.loop_load import LoopLoad, market_backlog_ns, timer_tick
from core.snapshot import SnapshotBuilder, WorldSnapshot
from core.transport import RouteSpec, TransportSession
from core.venues.binance.rest import RestClient, RestError
from core.trading.bars import GapRange, backfill_requests, find_gaps, interval_ms
from core.venues.binance.wire import market_stream_url, streams_for

__all__ = ["Backfill", "JournalConfig", "Runtime", "RuntimeConfig", "TradingConfig", "VENUES", "VenueEndpoints", "backfill_klines"]

log = logging.getLogger("epochbot.runtime")


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
    "binance-spot-testnet": VenueEndpoints("binance-spot-testnet", "spot", "https://testnet.binance.vision", "wss://stream.testnet.binance.vision"),
    "binance-usdm-testnet": VenueEndpoints("binance-usdm-testnet", "usdm", "https://testnet.binancefuture.com", "wss://fstream.binancefuture.com"),
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
    # stored by an earlier run describes accounts that no longer exist): see app.config.
    storage_per_run: bool = False
    limits: object | None = None  # core.trading.risk.RiskLimits
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
    # REST request weight (core/budget.py): None takes the venue's limit (spot 6000, USD-M 2400).
    weight_limit: int | None = None
    weight_headroom: float = 0.1
    snapshot_concurrency: int = 8
    # Symbols the strategy trades (their snapshots go first); None: all of them when trading.
    traded_symbols: tuple[str, ...] | None = None
    # Streams of watched (not traded) symbols: "all" (depth, bookTicker, aggTrade, markPrice,
    # kline, and their kline backfill) or "depth" (the book only: a fraction of the messages).
    watched_streams: Literal["all", "depth"] = "all"


class Runtime:
    def __init__(self, config: RuntimeConfig, *, clock: Callable[[], int] = time.time_ns) -> None:
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
        self.gateway = None  # core.order_gateway.OrderGateway when trading
        self.writer = None  # core.persistence.writer.StorageWriter
        self.storage = None
        self.journal = None  # core.persistence.journal.CaptureJournal
        self._persisted_epochs = 0
        market = config.venue.market
        budget_cfg = BudgetConfig.for_market(market, headroom=config.weight_headroom, max_in_flight=config.snapshot_concurrency)
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

    # ------------------------------------------------------------------ main loop

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
        self.rest = RestClient(self._http, self.config.venue.rest_url, self.config.venue.market, self.config.http_timeout_s,
                               retry_after_cap_s=self.config.retry_after_cap_s)
        self.rest.log = self._runtime_log
        self._budget_wake = asyncio.Event()
        self._spawn(self._budget_loop(), "weight-budget")
        try:
            if self.config.journal is not None:
                self._open_journal()
            filters = await self._prepare()
            history = await self._backfill_history()
            if self.config.trading is not None:
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
        from core.sim.server import SimConfig, SimExchange

        cfg = self.config
        extra = {"rate": cfg.sim_rate} if cfg.sim_rate is not None else {}
        sim_cfg = SimConfig(market=cfg.venue.market, symbols=list(cfg.symbols), seed=cfg.sim_seed, port=cfg.sim_port, faults=list(cfg.sim_faults), **extra)
        self.sim = SimExchange(sim_cfg)
        await self.sim.start()
        venue = replace(cfg.venue, rest_url=self.sim.rest_url, ws_url=self.sim.ws_url)
        self.config = replace(cfg, venue=venue)
        self._runtime_log("info", "embedded simulator started", rest=self.sim.rest_url, ws=self.sim.ws_url, market=venue.market)

    async def _prepare(self) -> dict:
        """Exact symbol scales from exchangeInfo (the book infers them from snapshots otherwise)."""
        try:
            filters = await self.rest.exchange_filters(list(self.config.symbols))
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self._runtime_log("warn", "exchangeInfo unavailable: scales will be inferred from snapshots", error=str(exc))
            return {}
        published = self.rest.weight_limit_1m
        if published and self.config.weight_limit is None and published != self.budget.config.limit:
            self.budget.config = replace(self.budget.config, limit=published)
            self._runtime_log("info", "request weight limit from exchangeInfo", limit=published, cap=self.budget.config.cap)
        for symbol in self.config.symbols:
            f = filters.get(symbol)
            if f is None:
                self._runtime_log("warn", "symbol not listed by the venue", symbol=symbol)
                continue
            # Applied now, before any session exists, so that no book parses a level first.
            spec = ev.SymbolSpec(symbol=symbol, tick_size=f.tick_size, step_size=f.step_size, min_notional=f.min_notional)
            self.engine.handle(spec)
            if self.journal is not None:
                self.journal.event(spec)
            state = self.engine.symbols.get(symbol)
            codec = state.book.codec if state is not None else None  # the scale the book has now
            if codec is not None:
                self._depth_scales[symbol] = (codec.price_decimals, codec.qty_decimals)
        return filters

    async def _backfill_history(self) -> dict[str, list]:
        """Closed candles of the last ``history_lookback_min`` minutes per symbol, into the
        engine's history. Gaps are fetched again once; what is still missing is logged and
        counted in ``candles_missing``. A venue that has less history than asked (the
        simulator only has candles since it started) is not a gap: the span starts at the
        first candle the venue returned. Returns the new candles per symbol."""
        cfg = self.config
        out: dict[str, list] = {}
        if cfg.history_lookback_min <= 0:
            return out
        try:
            step = interval_ms(cfg.history_interval)
        except ValueError as exc:
            self._runtime_log("warn", "kline backfill skipped", error=str(exc))
            return out
        now_ms = self.clock() // 1_000_000
        end_ms = now_ms // step * step - step  # the newest closed candle's open time
        start_ms = end_ms - (cfg.history_lookback_min * 60_000 // step - 1) * step
        # Ask for no more rows than the lookback needs: USD-M charges klines by `limit`.
        limit = max(1, min(1000, (end_ms - start_ms) // step + 2))
        rest = _BudgetedRest(self, klines_weight(cfg.venue.market, limit))
        for symbol in self._full_symbols():
            try:
                result = await backfill_klines(rest, symbol, cfg.history_interval, start_ms, end_ms, limit=limit, now_ms=now_ms)
            except (RestError, ValueError, KeyError, TypeError, IndexError) as exc:
                self._runtime_log("warn", "kline backfill failed", symbol=symbol, error=str(exc))
                continue
            if result.missing:
                self.engine.counters["candles_missing"] += result.missing
                self._runtime_log("warn", "kline backfill: candles still missing after refetch", symbol=symbol, interval=cfg.history_interval,
                                  missing=result.missing, ranges=[(g.start_ms, g.end_ms) for g in result.gaps][:50])
            self.engine.market.add_candles(symbol, result.candles)
            out[symbol] = result.candles
            self._runtime_log("info", "kline backfill", symbol=symbol, interval=cfg.history_interval, candles=len(result.candles),
                              first_ms=result.start_ms, refetched=result.refetched, missing=result.missing)
        return out

    def _use_history(self, history: dict[str, list]) -> None:
        """After backfill (and trading setup): persist the candles and warm the strategy up;
        from now on closed live klines are queued for storage too (see `_persist`)."""
        if self.writer is not None:
            self.engine.market.pending_candles = []
            for candles in history.values():
                for candle in candles:
                    if not self.writer.submit(candle):
                        self._runtime_log("error", "storage queue full: record lost", record="Candle")
                        break
        trader = self.engine.trader
        if self.journal is not None and history:
            from core.journal_inputs import history_row

            self.journal.obj(history_row(history))
        if trader is not None:
            for symbol, candles in history.items():
                self._execute(trader.warm_up(symbol, candles))

    async def _start_trading(self, venue_filters: dict) -> list:
        """Build the trader (strategy, gates, orders, portfolio), restore durable state, and
        start the order gateway and its user-data stream. Returns reconciliation commands."""
        from core.order_gateway import OrderGateway
        from core.trading.filters import SymbolFilters
        from core.trading.risk import RiskLimits, RiskState
        from core.trading.strategy import get_strategy
        from core.trading.trader import Trader

        cfg = self.config.trading
        missing = [s for s in self.config.symbols if s not in venue_filters]
        if missing:
            raise RuntimeError(f"cannot trade without exchangeInfo filters for {', '.join(missing)}")
        filters = {
            s: SymbolFilters.from_strings(s, f.tick_size, f.step_size, f.min_qty, f.max_qty, f.min_notional, self.config.venue.market)
            for s, f in venue_filters.items()
        }
        now = self.clock()
        limits = cfg.limits or RiskLimits()
        session = now // 1_000_000_000  # unique per start when nothing is persisted
        risk_state, open_orders = None, []
        restored_risk = None  # the restored state as it was before fills touched it (journal)
        if cfg.storage_path:
            from core.persistence.storage import SqliteStorage
            from core.persistence.writer import StorageWriter

            if cfg.storage_per_run:
                _remove_database(cfg.storage_path)
            self.storage = SqliteStorage(cfg.storage_path)
            session = self.storage.next_session()
            risk_state, warnings = RiskState.restore(self.storage.load_latest_risk(), now, limits)
            restored_risk = risk_state.to_dict()
            for warning in warnings:
                self._runtime_log("warn", "risk state restore", detail=warning)
            open_orders = self.storage.load_open_orders()
            self.writer = StorageWriter(self.storage)
        trader = Trader(get_strategy(cfg.strategy, cfg.params), filters, session=session, limits=limits, risk_state=risk_state, mode=self.engine.mode)
        self._runtime_log("info", "strategy loaded", strategy=cfg.strategy, module=type(trader.strategy).__module__)
        trader.keep_fills = 1000
        self.engine.trader = trader
        trader.orders.unknown_window_ns = max(0, int(cfg.unknown_window_ms)) * 1_000_000
        trader.symbol_status = {s: f.status for s, f in venue_filters.items() if f.status != "TRADING"}
        stored_fills = self.storage.load_fills() if self.storage is not None else []
        restored = trader.restore_fills(stored_fills)
        api_key, api_secret = cfg.api_key, cfg.api_secret
        if not api_key and self.sim is not None:
            from core.sim.auth import DEFAULT_API_KEY, DEFAULT_SECRET

            api_key, api_secret = DEFAULT_API_KEY, DEFAULT_SECRET
        if not api_key or not api_secret:
            raise RuntimeError("trading needs an API key and secret (EPOCHBOT_API_KEY / EPOCHBOT_API_SECRET or a secrets file)")
        self.gateway = OrderGateway(
            self.rest,
            ws_base=self.config.venue.ws_url,
            api_key=api_key,
            api_secret=api_secret,
            inbox=self.inbox,
            codecs={s: f.codec for s, f in filters.items()},
            quote_assets={s: f.quote_asset for s, f in venue_filters.items() if f.quote_asset},
            clock=self.clock,
            log=self._runtime_log,
            recv_window_ms=cfg.recv_window_ms,
            offset_ms=lambda: self.engine.telemetry.clock_offset_ns / 1e6,
            durable=self._durable if self.writer is not None else None,
            symbol_status={s: f.status for s, f in venue_filters.items()},
            ws_orders=cfg.ws_orders,
        )
        restored_session_pnl = str(trader.risk.state.session_pnl)
        restored_breakers = dict(sorted(trader.risk.state.breakers.items()))
        # The user-data stream first: an execution after the trade-history fetch below then
        # still arrives (queued until the loop runs; its trade id makes a second copy harmless).
        self._spawn(self.gateway.run_user_stream(), "user-stream")
        deadline = time.monotonic() + 3.0
        while not self.gateway.user_stream_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self.gateway.user_stream_connected:
            self._runtime_log("warn", "user data stream not connected yet: reconciling anyway")
        imported: list = []
        for attempt in range(2):
            if self.storage is not None:
                imported += await self._import_venue_fills(trader, filters, [*stored_fills, *imported])
                self._persist()
            # A fill racing the check shows up as a difference once: import again, then judge.
            if await self._check_venue_positions(trader, filters, final=attempt == 1 or self.storage is None):
                break
        # Orders of the killed run: adopted as UNKNOWN (queried before anything with the same
        # intent is sent), with what storage + the venue's trade history say they filled.
        filled: dict[str, int] = {}
        for fill in (*stored_fills, *imported):
            filled[fill.client_order_id] = filled.get(fill.client_order_id, 0) + fill.qty
        open_orders = [replace(row, filled_qty=max(row.filled_qty, min(row.qty, filled.get(row.client_order_id, 0)))) for row in open_orders]
        commands = trader.orders.adopt_open_orders(open_orders, now)
        commands += await self._adopt_unknown_venue_orders(trader, now)
        for fill in (*stored_fills, *imported):
            order = trader.orders.orders.get(fill.client_order_id)
            if order is not None and fill.trade_id and fill.trade_id not in order.fill_ids:
                order.fill_ids.add(fill.trade_id)
                order.booked_qty += fill.qty
        if self.journal is not None:
            from core.journal_inputs import trading_row

            self.journal.obj(trading_row(cfg.strategy, cfg.params, session, limits, venue_filters, self.config.venue.market, self.engine.mode,
                                         restored_risk, stored_fills, imported, open_orders, now,
                                         keep_fills=getattr(trader, "keep_fills", None), adopted=getattr(self, "_adopted", ())))
        risk = trader.risk.state
        self._runtime_log(
            "info", "trading enabled", strategy=cfg.strategy, session=session, restored_open_orders=len(open_orders), storage=cfg.storage_path or "none",
            restored_fills=restored, imported_fills=len(imported), restored_session_pnl=restored_session_pnl, session_pnl=str(risk.session_pnl),
            restored_breakers=restored_breakers,
            daily_pnl=str(risk.daily_pnl), breakers={k: v for k, v in sorted(risk.breakers.items())}, session_latched=risk.session_latched,
            positions={s: trader.portfolio.qty(s) for s in self.config.symbols},
        )
        from core.trading.alerts import RiskAlerts
        from core.trading.risk import _utc

        for symbol, until in sorted(restored_breakers.items()):
            if until > now:
                self._runtime_log("warn", "circuit breaker tripped", symbol=symbol, cause="restored from the previous run", until=_utc(until), effect="exits only")
        # Restored trips were just logged; trips caused by the fills imported above are new.
        trader.risk_alerts = RiskAlerts(known_breakers=restored_breakers)
        self.engine.log_trader_alerts()
        return commands

    async def _adopt_unknown_venue_orders(self, trader, now: int) -> list:
        """Before trading: every order at the venue the journal does not know is cancelled,
        adopted or recorded per `core.trading.adoption` (and logged, each). Returns commands."""
        from core.trading.adoption import plan

        cfg = self.config.trading
        known = self.storage.known_client_ids() if self.storage is not None else set()
        known |= set(trader.orders.orders)
        commands: list = []
        self._adopted = []
        for symbol in self.config.symbols:
            try:
                rows = await self.gateway.venue_orders(symbol)
                decisions = plan(rows, known, unknown=cfg.unknown_orders, foreign=cfg.foreign_orders)
            except (RestError, ValueError, KeyError, TypeError) as exc:
                self.engine.counters["venue_orders_check_failed"] = self.engine.counters.get("venue_orders_check_failed", 0) + 1
                self._runtime_log("error", "venue order check failed: orders unknown to the journal may exist", symbol=symbol, error=str(exc))
                continue
            for a in decisions:
                fields = dict(symbol=a.symbol, client_order_id=a.client_order_id, order_id=a.venue_order_id, status=a.status, side=a.side,
                              qty=a.qty, price=a.price, executed=a.executed, action=a.action)
                if a.action == "cancel-foreign":
                    self._runtime_log("warn", "foreign open order cancelled (foreign_orders=cancel)", **fields)
                    self._spawn(self.gateway.cancel_all([(a.symbol, a.client_order_id)]), "cancel-foreign")
                    continue
                if a.action == "ignore":
                    self._runtime_log("warn", "open order of ours unknown to the journal left alone (unknown_orders=ignore)", **fields)
                    continue
                try:
                    commands += trader.orders.adopt_venue_order(a, now)
                except (ValueError, KeyError, TypeError) as exc:
                    self._runtime_log("error", "venue order unknown to the journal could not be adopted", error=str(exc), **fields)
                    continue
                self._adopted.append(a)  # journaled with the trading setup (core.journal_inputs)
                self.engine.counters["venue_orders_adopted"] = self.engine.counters.get("venue_orders_adopted", 0) + 1
                self._runtime_log("warn", f"venue order unknown to the journal: {a.action}", **fields)
        trader.records.extend(trader.orders.drain_journal())
        if self.writer is not None:
            self._persist()
        return commands

    async def _import_venue_fills(self, trader, filters: dict, stored_fills: list) -> list:
        """Fills the venue made that never reached storage (the process died between the
        execution and the write): fetched from the venue's trade history since the newest stored
        fill of each symbol, mapped to our client order ids, booked and persisted. Returns them."""
        import re
        from decimal import Decimal

        from core.trading import events as tev

        ours = re.compile(r"^eb[0-9a-f]+-[0-9a-f]+$")
        known = {(f.symbol, f.trade_id) for f in stored_fills if f.trade_id}
        newest: dict[str, int] = {}
        for fill in stored_fills:
            newest[fill.symbol] = max(newest.get(fill.symbol, 0), fill.ts_ns)
        by_venue_id = self.storage.load_venue_order_ids()
        looked_up: dict[tuple[str, str], str | None] = {}
        imported: list = []
        for symbol in self.config.symbols:
            quote = self.gateway.quote_assets.get(symbol, "")
            since_ns = newest.get(symbol)
            if since_ns is None:
                since_ns = self.storage.first_order_ns(symbol)
                if since_ns is None:
                    continue  # no earlier run ever traded it: nothing of ours to import
                since_ns -= 60_000_000_000  # the journal's clock is ours, the venue's may lead
            try:
                trades = await self.gateway.user_trades(symbol, start_ms=since_ns // 1_000_000)
            except (RestError, ValueError, KeyError, TypeError) as exc:
                self.engine.counters["fill_import_failed"] = self.engine.counters.get("fill_import_failed", 0) + 1
                self._runtime_log("error", "trade history unavailable: fills made while we were down may be missing", symbol=symbol, error=str(exc))
                continue
            codec = filters[symbol].codec
            foreign = 0
            for t in trades:
                trade_id = str(t["id"])
                if (symbol, trade_id) in known:
                    continue
                venue_id = str(t["orderId"])
                coid = by_venue_id.get((symbol, venue_id))
                if coid is None:
                    if (symbol, venue_id) not in looked_up:
                        try:
                            body = await self.gateway.order_by_id(symbol, venue_id)
                        except RestError as exc:
                            self._runtime_log("warn", "order lookup for an imported trade failed", symbol=symbol, order_id=venue_id, error=str(exc))
                            body = None
                        looked_up[(symbol, venue_id)] = None if body is None else str(body.get("clientOrderId", ""))
                    coid = looked_up[(symbol, venue_id)]
                if not coid or not ours.match(coid):
                    foreign += 1
                    continue
                side = t.get("side") or ("BUY" if t.get("buyer", t.get("isBuyer")) else "SELL")
                fill = tev.Fill(
                    ts_ns=int(t["time"]) * 1_000_000, recv_ts=self.clock(), client_order_id=coid, symbol=symbol, side=side,
                    qty=codec.qty[str(t["qty"])], price=codec.price[str(t["price"])], fee=Decimal(str(t.get("commission", "0"))),
                    fee_asset="" if str(t.get("commissionAsset") or "") == quote else str(t.get("commissionAsset") or ""), is_maker=bool(t.get("maker", t.get("isMaker", False))), trade_id=trade_id,
                )
                if trader.import_fill(fill):
                    known.add((symbol, trade_id))
                    imported.append(fill)
            if foreign:
                self._runtime_log("warn", "trades of orders that are not ours were not imported", symbol=symbol, trades=foreign)
        self.engine.counters["fills_imported"] = self.engine.counters.get("fills_imported", 0) + len(imported)
        if imported:
            self._runtime_log("warn", "imported fills the venue made while we were down", fills=len(imported),
                              trade_ids=[f.trade_id for f in imported][:50])
        return imported

    async def _check_venue_positions(self, trader, filters: dict, *, final: bool = True) -> bool:
        """Compare the rebuilt positions with the venue's account (USD-M positionAmt). True when
        they agree (or cannot be compared). A difference is logged as an error and counted in
        ``position_mismatch`` when ``final``; otherwise only reported by returning False."""
        self.engine.counters.setdefault("position_mismatch", 0)
        if self.config.venue.market != "usdm":
            self._runtime_log("info", "position check skipped: spot balances include assets not traded by us")
            return True
        try:
            amounts = await self.gateway.position_amounts()
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self._runtime_log("warn", "position check impossible: positionRisk unavailable", error=str(exc))
            return True
        differ = []
        for symbol in self.config.symbols:
            text = amounts.get(symbol, "0")
            codec = filters[symbol].codec
            negative = text.startswith("-")
            try:
                venue_qty = codec.qty[text.lstrip("-+")]
            except (ValueError, KeyError, TypeError):
                self._runtime_log("warn", "position check: unreadable positionAmt", symbol=symbol, position_amt=text)
                continue
            venue_qty = -venue_qty if negative else venue_qty
            differ.append((symbol, trader.portfolio.qty(symbol), venue_qty, text))
        if not final and any(ours != venue for _, ours, venue, _ in differ):
            return False
        for symbol, ours, venue_qty, text in differ:
            if venue_qty != ours:
                self.engine.counters["position_mismatch"] += 1
                self._runtime_log("error", "position differs from the venue's after restore", symbol=symbol,
                                  ours=filters[symbol].qty_str(ours), venue=text)
            else:
                self._runtime_log("info", "position agrees with the venue", symbol=symbol, position=text)
        return True

    def _durable(self, command) -> "asyncio.Future[bool]":
        """Write-ahead: a future that resolves (True) once everything queued for storage so
        far - the order's "sent" row included - is committed, or False if that failed. The
        gateway task awaits it before sending; the strategy loop never waits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()

        def done(ok: bool) -> None:
            def resolve() -> None:
                if not future.done():
                    future.set_result(ok)
            try:
                loop.call_soon_threadsafe(resolve)
            except RuntimeError:  # the loop closed meanwhile: nobody waits
                pass

        if not self.writer.barrier(done):
            self._runtime_log("error", "storage queue full or closed: order intent not durable", client_order_id=getattr(command, "client_order_id", ""))
            future.set_result(False)
        return future

    def _open_journal(self) -> None:
        """Version 2 journal (docs/capture-format.md): every engine input in consumption order."""
        import os

        from core.journal_inputs import encode_engine_config
        from core.persistence.journal import EngineJournal

        jc = self.config.journal
        venue = "binance-spot" if self.config.venue.market == "spot" else "binance-usdm"
        engine = self.engine
        run = f"{engine.started_ns:x}-{os.getpid()}"
        header = {"engine": encode_engine_config(engine.config), "created_ns": engine.started_ns, "symbols": list(self.config.symbols)}
        self.journal = EngineJournal(jc.directory, venue=venue, run=run, header=header, max_bytes=jc.max_bytes, keep=jc.keep, source=f"epochbot {self.config.venue.name}")
        self.inbox.keep_raw()

    async def _consume(self) -> int:
        engine = self.engine
        inbox = self.inbox
        wakeup = self._wakeup
        handle = engine.handle
        publish_every = int(1e9 / self.config.snapshot_hz)
        next_publish = self.clock() + publish_every
        processed = 0
        journal = self.journal
        while True:
            event = inbox.next()
            if event is None:
                wakeup.clear()
                if not len(inbox):
                    await wakeup.wait()
                continue
            try:
                if journal is not None and type(event) is ev.SnapshotReady:
                    commands = self._handle_timed(event)  # journals it with its measured rebuild time
                else:
                    commands = handle(event)
                    if journal is not None:  # the single consumption point: recorded as consumed
                        self._journal_consumed(event)
            except Exception as exc:  # a data error is counted and repaired; an invariant violation exits 3
                if journal is not None and type(event) is not ev.SnapshotReady:
                    self._journal_consumed(event)  # replay meets the same failure and the same repair
                commands = handle_failure(engine, event, exc)
            if commands:
                code = self._execute(commands)
                if code is not None:
                    self._drain_logs()
                    self._publish(exact=True)
                    return code
            if engine.pending_log:
                self._drain_logs()
            if self.writer is not None and event.kind != "market":
                self._persist()
            processed += 1
            if processed & 255 == 0:
                await asyncio.sleep(0)  # let readers and timers run during a burst
            if event.kind == "control" or processed & 63 == 0:
                now = self.clock()
                if now >= next_publish:
                    self._publish()
                    # Publishing must not eat the loop (hundreds of symbols): at most ~5 % of it.
                    next_publish = now + max(publish_every, 20 * (self.clock() - now))

    def _journal_consumed(self, event) -> None:
        journal = self.journal
        if event.kind == "market":
            journal.frame(event.epoch, event.recv_ts, event.process_ts, self.inbox.last_raw)
        else:
            journal.event(event)

    def _handle_timed(self, event):
        """A snapshot answer, journaled with the rebuild/validate time the engine measured with
        the wall clock inside the handler (a replay's clock stands still there)."""
        engine = self.engine
        record = engine.epochs[-1] if engine.epochs else None
        before = (record.rebuild_ns, record.validate_ns) if record is not None else (0, 0)
        try:
            commands = engine.handle(event)
        except Exception:
            self.journal.event(event)  # consumed all the same; the caller repairs
            raise
        extra = None
        if record is not None and (record.rebuild_ns, record.validate_ns) != before:
            extra = {"rebuild_ns": record.rebuild_ns - before[0], "validate_ns": record.validate_ns - before[1], "epoch": record.epoch}
        self.journal.event(event, extra)
        return commands

    def _persist(self) -> None:
        """Hand new durable records to the writer thread (never blocks the loop)."""
        writer = self.writer
        trader = self.engine.trader
        if trader is not None:
            for record in trader.drain_records():
                if not writer.submit(record):
                    self._runtime_log("error", "storage queue full: record lost", record=type(record).__name__)
        candles = self.engine.market.pending_candles
        if candles:
            self.engine.market.pending_candles = []
            for candle in candles:
                if not writer.submit(candle):
                    self._runtime_log("error", "storage queue full: record lost", record="Candle")
        epochs = self.engine.epochs
        while self._persisted_epochs < len(epochs) and epochs[self._persisted_epochs].closed_ns:
            writer.submit(epochs[self._persisted_epochs])
            self._persisted_epochs += 1
        if self._persisted_epochs > len(epochs):  # the engine trimmed its history
            self._persisted_epochs = len(epochs)

    def _publish(self, exact: bool = False) -> None:
        journal = self.journal
        if journal is not None:  # rows the journal could not write: that run is not exact
            if journal.dropped != self.engine.counters.get("journal_dropped", 0):
                self._runtime_log("error", "journal lost rows: this run will not replay exactly", dropped=journal.dropped, error=journal.last_error)
            self.engine.counters["journal_dropped"] = journal.dropped
        snapshot = self.builder.build(self.engine, self.engine.trader, exact=exact)
        self.latest = snapshot
        for callback in self._snapshot_listeners:
            try:
                callback(snapshot)
            except Exception:  # a broken reader must not take the core down
                log.exception("snapshot listener failed")

    def _drain_logs(self) -> None:
        records = self.engine.drain_log()
        for callback in self._log_listeners:
            for record in records:
                try:
                    callback(record)
                except Exception:
                    log.exception("log listener failed")

    def _runtime_log(self, level: str, msg: str, **fields) -> None:
        self.engine._log(level, msg, source="runtime", **fields)

    # ------------------------------------------------------------------ commands

    def _execute(self, commands) -> int | None:
        for command in commands:
            kind = type(command)
            if kind is ev.FetchSnapshot:
                self._fetch_snapshot(command)
            elif kind is ev.ReplaceSession:
                self._replace_session(command)
            elif kind is ev.ProbeVenue:
                self._spawn(self._probe(command), f"probe-{command.symbol}")
            elif kind is ev.CloseConnection:
                self._spawn(self._close_session(), "close")
            elif kind is ev.Stop:
                self.exit_code = command.exit_code
                return command.exit_code
            elif kind in (ev.PlaceOrder, ev.CancelOrder) or kind.__name__ in ("QueryOrder", "FetchOrderTrades"):
                if self.gateway is None:
                    self._runtime_log("error", "order command without trading configured", command=kind.__name__)
                else:
                    if kind is ev.PlaceOrder and self.writer is not None:
                        self._persist()  # the "sent" row is queued before the write-ahead barrier
                    self.gateway.execute(command)
            elif kind in (ev.Subscribe, ev.Unsubscribe):
                session = self._session
                if session is not None and session.epoch == command.epoch:
                    session.subscribe(0, command.streams, "SUBSCRIBE" if kind is ev.Subscribe else "UNSUBSCRIBE")
            else:
                self._runtime_log("warn", "command not supported by this runtime", command=kind.__name__)
        return None

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # An I/O task failing unexpectedly is a bug; surface it in the log and as a
            # control event so the engine repairs state rather than carrying on blind.
            self._runtime_log("error", "background task failed", task=task.get_name(), error=f"{type(exc).__name__}: {exc}")
            self.inbox.put_control(ev.Disconnected(epoch=self.engine.epoch, recv_ts=self.clock(), reason=f"internal task {task.get_name()} failed"))

    # ------------------------------------------------------------------ sessions

    def _replace_session(self, command: ev.ReplaceSession) -> None:
        if self._session_task is not None and not self._session_task.done():
            self._session_task.cancel()
        for task in self._snapshot_tasks.values():
            task.cancel()
        self._snapshot_tasks.clear()
        self._cancel_queued_snapshots()
        dropped = self.inbox.clear_market()  # every queued market event belongs to the old epoch
        if dropped:
            self.engine.counters["discarded_stale_epoch"] += dropped
        self._session_task = self._spawn(self._open_session(command), f"session-e{command.epoch}")

    def _full_symbols(self) -> list[str]:
        """Symbols that get every stream (all of them unless watched ones get depth only)."""
        if self.config.watched_streams == "all":
            return list(self.config.symbols)
        return [s for s in self.config.symbols if self._is_traded(s)]

    def _routes(self) -> list[RouteSpec]:
        venue = self.config.venue
        full = self._full_symbols()
        grouped = streams_for(full, venue.market, trades=self.config.trades, tickers=self.config.tickers,
                              kline_interval=self.config.history_interval or None)
        watched = [s for s in self.config.symbols if s not in set(full)]
        if watched:
            depth_only = streams_for(watched, venue.market, trades=False, tickers=False)
            for route, streams in depth_only.items():
                grouped.setdefault(route, []).extend(name for name in streams if "@depth" in name)
        routes = [RouteSpec(market_stream_url(venue.ws_url, route), tuple(streams)) for route, streams in grouped.items() if streams]
        return [part for route in routes for part in route.split()]

    async def _open_session(self, command: ev.ReplaceSession) -> None:
        epoch = command.epoch
        t0 = self.clock()
        await self._close_session()
        close_ms = (self.clock() - t0) / 1e6
        delay_s = command.delay_ms / 1000
        delay_s = max(delay_s, self._dial_budget_wait())
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        self._dial_times.append(time.monotonic())
        session = TransportSession(epoch, self._routes(), self.inbox, self.clock, spot=self.config.venue.market == "spot", scales=self._depth_scales)
        t1 = self.clock()
        try:
            await session.open()
        except asyncio.CancelledError:
            await session.close()
            raise
        except Exception as exc:
            self.inbox.put_control(ev.Disconnected(epoch=epoch, recv_ts=self.clock(), reason=f"dial failed: {type(exc).__name__}: {exc}"))
            return
        dial_ms = (self.clock() - t1) / 1e6
        if epoch != self.engine.epoch:
            await session.close()
            return
        self._session = session
        self.inbox.put_control(ev.SessionOpened(epoch=epoch, recv_ts=self.clock(), url=", ".join(r.url for r in session.routes), close_ms=close_ms, dial_ms=dial_ms))
        session.start()
        self._spawn(self._session_lifetime(session), f"lifetime-e{epoch}")

    def _dial_budget_wait(self) -> float:
        now = time.monotonic()
        window = self.config.dial_window_s
        self._dial_times = [t for t in self._dial_times if now - t < window]
        if len(self._dial_times) < self.config.dial_budget:
            return 0.0
        return window - (now - self._dial_times[0])

    async def _session_lifetime(self, session: TransportSession) -> None:
        await asyncio.sleep(self.config.max_session_s)
        if not session.closed and session.epoch == self.engine.epoch:
            self.inbox.put_control(ev.ServerShutdownNotice(epoch=session.epoch, recv_ts=self.clock(), reason="connection lifetime limit approaching"))

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # ------------------------------------------------------------------ snapshots

    def _fetch_snapshot(self, command: ev.FetchSnapshot) -> None:
        """Queue the request in the weight planner; `_budget_loop` sends it when it may."""
        previous = self._snapshot_tasks.pop(command.symbol, None)
        if previous is not None and not previous.done():
            previous.cancel()
        now = self.clock()
        symbol = command.symbol
        state = self.engine.symbols.get(symbol)
        invalid_in_session = state is not None and state.resync is not None
        priority = (0 if self._is_traded(symbol) else 1, 0 if invalid_in_session else 1)
        weight = depth_weight(self.config.venue.market, self.rest.depth_limit(command.limit) if self.rest else command.limit)
        not_before = now + int(command.delay_ms * 1_000_000)
        self.budget.submit(("depth", symbol), weight, command, priority=priority, not_before_ns=not_before, now_ns=now)
        self._budget_wake.set()

    def _is_traded(self, symbol: str) -> bool:
        traded = self.config.traded_symbols
        if traded is not None:
            return symbol in traded
        return self.config.trading is not None

    def _cancel_queued_snapshots(self) -> None:
        for key in [k for k in self.budget.waiting_keys() if k[0] == "depth"]:
            self.budget.cancel(key)
        self._report_budget()

    def _report_budget(self) -> None:
        """Tell the engine which books wait for weight (it says so in confidence reasons)."""
        waiting = tuple(k[1] for k in self.budget.waiting_keys() if k[0] == "depth")
        if waiting == self._budget_reported:
            return
        self._budget_reported = waiting
        now = self.clock()
        self.inbox.put_control(ev.SnapshotBudget(recv_ts=now, waiting=waiting, used=self.budget.used(now), cap=self.budget.config.cap))

    async def _budget_loop(self) -> None:
        """Grant what the planner allows, then sleep until it may allow more (or is woken)."""
        budget, wake = self.budget, self._budget_wake
        while True:
            wake.clear()
            now = self.clock()
            budget.offset_ns = self.engine.telemetry.clock_offset_ns
            for grant in budget.poll(now):
                command = grant.payload[1]
                if isinstance(command, ev.FetchSnapshot):
                    if command.epoch != self.engine.epoch:
                        budget.done(grant, status=0, now_ns=now)  # never sent
                        continue
                    self._snapshot_tasks[command.symbol] = self._spawn(self._snapshot(command, grant), f"snapshot-{command.symbol}")
                else:  # an awaited acquisition (kline backfill)
                    if not command.done():
                        command.set_result(grant)
                    else:
                        budget.done(grant, status=0, now_ns=now)
            self._report_budget()
            nxt = budget.next_wakeup_ns(self.clock())
            timeout = None if nxt is None else max(0.001, (nxt - self.clock()) / 1e9)
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                pass

    async def acquire_weight(self, key, weight: int) -> Grant:
        """Wait until the planner grants ``weight`` (for requests outside the snapshot queue);
        report the answer with ``self.budget.done``."""
        future = asyncio.get_running_loop().create_future()
        self.budget.submit(key, weight, future, priority=(0, 0), now_ns=self.clock())
        self._budget_wake.set()
        try:
            return await future
        except asyncio.CancelledError:
            self.budget.cancel(key)
            raise

    def _weight_answered(self, grant: Grant, status: int, retry_after_ms: int = 0) -> None:
        rest = self.rest
        self.budget.done(grant, status=status, used_weight=rest.used_weight if rest is not None else None, retry_after_ms=retry_after_ms, now_ns=self.clock())
        self._budget_wake.set()

    async def _snapshot(self, command: ev.FetchSnapshot, grant: Grant) -> None:
        started = self.clock()
        status = 0
        retry_after = 0
        try:
            last_id, bids, asks, exch_ts = await self.rest.depth(command.symbol, command.limit)
            status = 200
        except RestError as exc:
            status, retry_after = exc.status, exc.retry_after_ms
            if exc.status in (429, 418):
                self._runtime_log("error", "venue refused a request for weight", status=exc.status, symbol=command.symbol,
                                  retry_after_ms=exc.retry_after_ms, used_weight=self.rest.used_weight)
            self.inbox.put_control(
                ev.SnapshotFailed(epoch=command.epoch, recv_ts=self.clock(), symbol=command.symbol, request_id=command.request_id, reason=str(exc), retry_after_ms=exc.retry_after_ms)
            )
            return
        finally:
            self._weight_answered(grant, status, retry_after)
        now = self.clock()
        self.inbox.put_bulk(
            ev.SnapshotReady(
                epoch=command.epoch,
                recv_ts=now,
                symbol=command.symbol,
                request_id=command.request_id,
                last_update_id=last_id,
                bids=bids,
                asks=asks,
                exchange_ts=exch_ts,
                fetch_ms=(now - started) / 1e6,
            )
        )

    async def _probe(self, command: ev.ProbeVenue) -> None:
        """Liveness probe: the venue's lastUpdateId now, from the smallest depth (weight 2 on
        USD-M, 5 on spot). Not journaled as a snapshot: it changes no book."""
        if command.delay_ms > 0:
            await asyncio.sleep(command.delay_ms / 1000)
        started = self.clock()
        try:
            last_id, _, _, _ = await self.rest.depth(command.symbol, command.limit)
        except RestError as exc:
            self.inbox.put_control(ev.ProbeResult(epoch=command.epoch, recv_ts=self.clock(), symbol=command.symbol,
                                                  request_id=command.request_id, ok=False, reason=str(exc)))
            return
        now = self.clock()
        self.inbox.put_control(ev.ProbeResult(epoch=command.epoch, recv_ts=now, symbol=command.symbol, request_id=command.request_id,
                                              last_update_id=last_id, fetch_ms=(now - started) / 1e6, market_backlog_ns=market_backlog_ns(now, self.inbox)))

    # ------------------------------------------------------------------ timers

    async def _freeze_heap_when_synced(self) -> None:
        """Move everything alive after the first sync (modules, aiohttp, the simulator, the
        books) to the permanent generation. Without it, a full (gen-2) collection of that heap
        runs every ~100 young collections, and since parsing a 1000-level snapshot is what
        allocates the most, it lands inside a resync: 20-60 ms (bench/resync.py --trace)."""
        engine = self.engine
        while not (engine.symbols and all(s.book.synced for s in engine.symbols.values())):
            await asyncio.sleep(0.05)
        gc.collect()
        gc.freeze()
        self._runtime_log("debug", "heap frozen after first sync", frozen=gc.get_freeze_count())

    async def _timer(self) -> None:
        interval = self.config.tick_ms / 1000
        put = self.inbox.put_control
        load = LoopLoad()
        load.install(asyncio.get_running_loop())  # issue 14: our backlog is not the venue's lag
        while True:
            await asyncio.sleep(interval)
            put(timer_tick(self.clock(), self.inbox, load))

    async def _clock_offset_loop(self) -> None:
        while True:
            try:
                offset, rtt = await self.rest.server_time_offset(self.clock)
                self.inbox.put_control(ev.ClockOffsetMeasured(recv_ts=self.clock(), offset_ms=offset, rtt_ms=rtt))
            except (RestError, ValueError, KeyError, TypeError) as exc:
                self._runtime_log("warn", "server time unavailable", error=str(exc))
            await asyncio.sleep(self.config.clock_offset_interval_s)

    # ------------------------------------------------------------------ shutdown

    def _drain_trading_events(self) -> None:
        """Hand trading events still queued (answers that arrived after the loop ended) to
        the trader, in order; market events are no use any more."""
        inbox = self.inbox
        while True:
            event = inbox.next()
            if event is None:
                return
            if getattr(event, "kind", "") != "trading":
                continue
            self._consume_outside_loop(event)

    def _consume_outside_loop(self, event) -> None:
        """One event handed to the engine outside the loop (the shutdown path), repaired and
        journaled exactly as the loop does, so a replay ends in the same state."""
        try:
            self.engine.handle(event)
        except Exception as exc:
            if self.journal is not None:
                self._journal_consumed(event)
            handle_failure(self.engine, event, exc)
            return
        if self.journal is not None:
            self._journal_consumed(event)

    async def _stop_trading(self, trader) -> None:
        """Clean stop of trading: cancel (if configured) every working order and record the
        venue-confirmed final state of each (CANCELED, or FILLED when the cancel lost the race),
        book fills that arrived meanwhile, and import any execution the stream did not deliver
        from the venue's trade history, so storage ends equal to the venue. The strategy is
        paused first: nothing new is placed (or journaled) while the venue answers."""
        self._consume_outside_loop(ev.OperatorPause(paused=True))  # also drops pending re-quotes
        in_flight = await self.gateway.settle(5.0)  # placements already sent are answered first
        if in_flight:
            self._runtime_log("warn", "shutdown: order requests still unanswered", requests=in_flight)
        self._drain_trading_events()
        working = [(o.symbol, o.client_order_id) for o in trader.orders.working()]
        if working and self.config.trading.cancel_on_shutdown:
            cancelled = confirmed = 0
            for _ in range(2):  # a second pass for what the first could not settle
                todo = [(o.symbol, o.client_order_id) for o in trader.orders.working()]
                if not todo:
                    break
                answers = await self.gateway.cancel_and_confirm(todo)
                await asyncio.sleep(0.05)  # let the user stream deliver fills that raced the cancels
                self._drain_trading_events()
                for event in answers:
                    self._consume_outside_loop(event)
                cancelled += sum(1 for e in answers if e.status == "CANCELED")
                confirmed += len(answers)
            left = [o.client_order_id for o in trader.orders.working()]
            self._runtime_log("info" if not left else "warn", "shutdown: working orders settled", working=len(working), cancelled=cancelled,
                              confirmed=confirmed, still_working=left[:50])
        if self.storage is not None and self.writer is not None:
            self._persist()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.writer.flush)
            stored = await loop.run_in_executor(None, self.storage.load_fills)
            imported = await self._import_venue_fills(trader, trader.filters, stored)
            if self.journal is not None:
                from core.capture import encode_dataclass

                for fill in imported:  # booked by import_fill, not by the engine: its own row
                    self.journal.obj({"k": "import", "p": self.clock(), "f": encode_dataclass(fill)["f"]})
            self._drain_trading_events()
        if self.writer is not None:
            self._persist()

    async def _shutdown(self) -> None:
        trader = self.engine.trader
        if self.gateway is not None and trader is not None:
            try:
                await self._stop_trading(trader)
            except Exception as exc:  # never let a failing venue keep the storage from closing
                self._runtime_log("error", "shutdown: settling orders failed", error=f"{type(exc).__name__}: {exc}")
        if self.gateway is not None:
            await self.gateway.close()
        tasks = [t for t in self._background if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_session()
        if self._http is not None:
            await self._http.close()
        if self.writer is not None:
            self._persist()
            for record in self.engine.epochs[self._persisted_epochs:]:
                self.writer.submit(record)
            await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        if self.storage is not None:
            # Checkpoint the WAL into the main file (TRUNCATE) so the .sqlite3 file alone holds
            # every fill and final order state, then close every connection.
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.storage.close)
            except Exception as exc:
                self._runtime_log("error", "storage close failed", error=f"{type(exc).__name__}: {exc}")
        if self.journal is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.journal.close)
        if self.sim is not None:
            await self.sim.stop()
        self._drain_logs()
        self._publish(exact=True)


# ---------------------------------------------------------------------------------- klines


class _BudgetedRest:
    """The REST client's klines, each request waiting for its weight from the runtime's planner."""

    def __init__(self, runtime: Runtime, weight: int) -> None:
        self._runtime = runtime
        self._weight = weight
        self._seq = 0

    async def klines(self, *args, **kwargs):
        runtime = self._runtime
        self._seq += 1
        grant = await runtime.acquire_weight(("klines", self._seq), self._weight)
        status = 0
        try:
            rows = await runtime.rest.klines(*args, **kwargs)
            status = 200
            return rows
        except RestError as exc:
            status = exc.status
            raise
        finally:
            runtime._weight_answered(grant, status)


@dataclass(frozen=True, slots=True)
class Backfill:
    candles: list  # closed Candles in [start_ms, end_ms], oldest first, one per open time
    start_ms: int  # where the span checked for gaps begins (>= the requested start)
    gaps: tuple[GapRange, ...]  # still missing after the refetch
    refetched: int  # candles the refetch recovered

    @property
    def missing(self) -> int:
        return sum(g.count for g in self.gaps)


async def backfill_klines(rest, symbol: str, interval: str, start_ms: int, end_ms: int, *, limit: int = 1000, now_ms: int | None = None) -> Backfill:
    """Closed candles with open times in ``[start_ms, end_ms]`` through ``rest.klines``.

    Paged (``limit`` per request, each page starting after the last open time returned; a
    page that makes no progress ends it). Gaps are found with `find_gaps` from the first open
    time the venue returned (history shorter than asked is not a gap), refetched once with
    `backfill_requests`, and whatever is still missing is returned in ``gaps``. A row whose
    close time is not before ``now_ms`` is the forming candle and is left out.
    """
    from core.records import Candle

    step = interval_ms(interval)
    have: dict[int, Candle] = {}

    def take(rows) -> int:
        added = 0
        for row in rows:
            open_ts, close_ts = int(row[0]), int(row[6])
            if open_ts < start_ms or open_ts > end_ms or (now_ms is not None and close_ts >= now_ms):
                continue
            if open_ts not in have:
                added += 1
            have[open_ts] = Candle(symbol, interval, open_ts, str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), True)
        return added

    t = start_ms
    while t <= end_ms:
        rows = await rest.klines(symbol, interval, t, end_ms, limit)
        take(rows)
        last = max((int(r[0]) for r in rows), default=None)
        if last is None or last < t or len(rows) < limit:
            break
        t = last + step
    if not have:
        return Backfill([], start_ms, (), 0)
    first = min(have)
    gaps = find_gaps(have, step, first, end_ms)
    refetched = 0
    if gaps.gaps:
        for lo, hi in backfill_requests(gaps.gaps, limit):
            refetched += take(await rest.klines(symbol, interval, lo, hi, limit))
        gaps = find_gaps(have, step, first, end_ms)
    return Backfill([have[k] for k in sorted(have)], first, gaps.gaps, refetched)


def _remove_database(path: str) -> None:
    """Delete a SQLite database with its WAL and shared-memory files (missing ones are fine)."""
    import os

    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
