"""The strategy core: a deterministic state machine fed events and a clock, returning commands.

Theory of operation
-------------------
The engine owns the world: one `OrderBook` per symbol, last trades and tickers, telemetry,
confidence, the trading mode, and the epoch history. ``handle(event)`` is the only way in and it
is called by exactly one consumer (the strategy loop, the replay driver or a test). It never
performs I/O and never reads the wall clock: ``process_ts`` comes from the injected ``clock``.

Epochs. Each transport session has an epoch number, chosen here: when the engine decides the
session must go, it increments ``epoch``, resets every book and returns ``ReplaceSession(epoch)``.
Every inbound event whose epoch is not the current one is discarded and counted; that is what
makes a disposable session safe (its stragglers are harmless).

Two levels of repair:

* book resync: one symbol's continuity broke (gap, crossed, bad level, overflow). That book is
  invalidated, buffers again, and a ``FetchSnapshot`` for it alone is returned; the session stays.
* session replacement: the transport is degraded (disconnect, silence, latency, queue delay,
  write or subscription failure, server shutdown notice, operator). New epoch, all books reset.
  Silence is judged by `epochbot.engine.liveness` per stream, and a silent stream costs a replacement only
  after a ``ProbeVenue`` shows the venue's book moved past ours (a quiet market keeps the
  session); every replacement's delay goes through its back-off governor.

Resync pipeline, timed per epoch: detect -> close -> dial (SessionOpened) -> subscribe
(SubscriptionConfirmed) -> snapshot (every book's SnapshotReady) -> rebuild (buffer replay) ->
validate (full invariant check) -> resynchronized. Time-to-correct-resync is measured from the
first moment the engine saw the degradation to the moment every book is synced and validated.

Where the parts live: this module keeps the entry point, market data, operator, timer and
confidence handling and the bookkeeping helpers; the book repair pipeline is in
`epochbot.engine.repair`, the session lifecycle and epoch records in `epochbot.engine.session`, the
bridge to the trader in `epochbot.engine.trading` (mixins of `Engine`, sharing its state).

Fatal corruption (an invariant a resync cannot restore: a book that fails validation right after
a successful rebuild, a venue that keeps serving crossed snapshots) latches ``halted``, records
the reason in ``fatal`` and returns ``Stop(exit_code=3)``.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from epochbot.book.book import BookState, DiffOutcome, OrderBook, VenueRules
from epochbot.engine.confidence import Confidence, ConfidenceConfig, ConfidenceInputs, evaluate
from epochbot.engine.lag import LOCAL, REPLACE, LagJudge
from epochbot.engine.liveness import Liveness, LivenessConfig, ReplacementGovernor
from epochbot.engine.market_history import MarketHistory
from epochbot.engine.repair import ResyncPipeline
from epochbot.engine.session import SessionLifecycle
from epochbot.engine.telemetry import Telemetry
from epochbot.engine.trader_port import TraderPort
from epochbot.engine.trading import TradingBridge
from epochbot.model import events as ev
from epochbot.engine.modes import ModeChange, ModeConfig, ModeController
from epochbot.model.modes import Mode, parse_mode
from epochbot.model.numeric import UnitCodec, parse_units
from epochbot.model.records import BookResync, EpochRecord, LogRecord

__all__ = ["BookResync", "Engine", "EngineConfig", "EpochRecord", "FATAL_EXIT_CODE", "LogRecord"]

FATAL_EXIT_CODE = 3
_NO_COMMANDS: tuple = ()
_MALFORMED_LINK_NS = 2_000_000_000  # a gap this soon after an unreadable frame is caused by it
_PARKED_BUFFER = 20  # diffs kept by a book whose snapshot waits for request weight
_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Knobs of the core. Durations in milliseconds."""

    venue: VenueRules = VenueRules.USDM
    symbols: tuple[str, ...] = ()
    track_new_symbols: bool = False  # replay: adopt any symbol that shows up in the stream
    snapshot_limit: int = 1000
    snapshot_limits: dict = field(default_factory=dict)  # symbol -> depth, overriding snapshot_limit
    # Diffs kept per book while it waits for its snapshot (the newest; older ones are useless
    # once the snapshot is fetched after them). 600 is a minute of a @100ms stream.
    book_buffer_limit: int = 600
    snapshot_on_subscribe: bool = True  # fetch at the subscribe ack instead of the first diff
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)
    modes: ModeConfig = field(default_factory=ModeConfig)
    # Session replacement triggers.
    silence_replace_ms: float = 1500.0  # liveness: the ceiling for a stream with no history
    liveness_floor_ms: float = 200.0  # ... and never suspect a stream sooner than this
    probe_limit: int = 5  # REST depth limit of a liveness probe (USD-M weight 2, spot 5)
    replace_healthy_ms: float = 1500.0  # a session synced this long resets the replacement back-off
    replace_backoff_max_ms: float = 60_000.0
    replace_max_per_5min: int = 100  # with 2 routes per USD-M session: 200 connections < Binance's 300 / 5 min / IP
    transport_latency_replace_ms: float = 3000.0
    queue_delay_replace_ms: float = 1000.0  # our own backlog: warned about, never a replacement (core/engine/lag.py)
    loop_busy_saturated: float = 0.9  # above this busy share, "transport" latency is our own backlog
    subscribe_timeout_ms: float = 3000.0
    write_failures_replace: int = 1
    latency_replace_cooldown_ms: float = 10_000.0  # after a latency-driven replacement; doubles
    latency_replace_cooldown_max_ms: float = 300_000.0
    # Snapshot retries and backoff (the runtime sleeps delay_ms before acting).
    snapshot_retry_base_ms: float = 20.0
    snapshot_retry_max_ms: float = 2000.0
    reconnect_base_ms: float = 25.0
    reconnect_max_ms: float = 5000.0
    reconnect_jitter: float = 0.25
    max_bad_snapshots: int = 8  # consecutive crossed/unbridgeable snapshots for one book -> fatal
    trade_history: int = 50
    log_capacity: int = 2000
    # Candles and range bars (kept per symbol, bounded). range_bar_bps 0 disables range bars.
    candle_history: int = 1000
    range_bar_bps: int = 10
    range_bar_keep: int = 200
    seed: int = 0


@dataclass(slots=True)
class _SymbolState:
    book: OrderBook
    snapshot_request: int = 0  # outstanding request id (0: none)
    snapshot_requested_ns: int = 0
    bad_snapshots: int = 0
    resync: BookResync | None = None
    trades: deque = field(default_factory=deque)
    ticker: ev.BookTicker | None = None
    mark: ev.MarkPrice | None = None
    kline: ev.Kline | None = None
    liquidations: int = 0
    overflow_logged: bool = False


class Engine(ResyncPipeline, SessionLifecycle, TradingBridge):
    def __init__(
        self,
        config: EngineConfig,
        clock: Callable[[], int],
        trader: TraderPort | None = None,
        market: MarketHistory | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        # Optional trading half, known only through `epochbot.engine.trader_port.TraderPort`: driven only
        # from here, so live, replay and backtest place the same orders for the same input.
        self.trader = trader
        # Candles, range bars and the funding clock: market data kept beside the books.
        self.market = (
            market
            if market is not None
            else MarketHistory(config.candle_history, config.range_bar_bps, config.range_bar_keep)
        )
        self._malformed_ns, self._malformed_epoch = 0, -1  # the last unreadable frame
        self._dirty: set[str] = set()  # symbols whose book changed since the strategy last looked
        self._validating: set[str] = set()  # books installed from a snapshot, awaiting their bridge diff
        self._outbox: list = []  # commands produced by the trader while handling a control event
        now = clock()
        self.started_ns = now
        self.epoch = 0
        self.session_open = False
        self.subscribed = False
        self.liveness = Liveness(
            LivenessConfig(
                ceiling_ms=config.silence_replace_ms, floor_ms=min(config.liveness_floor_ms, config.silence_replace_ms)
            )
        )
        self.lag = LagJudge(config.loop_busy_saturated)
        self.governor = ReplacementGovernor(
            base_ms=max(config.reconnect_base_ms, 250.0),
            max_ms=config.replace_backoff_max_ms,
            healthy_ms=config.replace_healthy_ms,
            max_in_window=config.replace_max_per_5min,
        )
        self._last_latency_ms = 0.0  # transport latency p50 of the previous session (first-frame allowance)
        self._liveness_replaced = False  # the current session replaced one that liveness judged dead
        self._latency_replaced_p50 = 0.0  # the p50 that caused the last latency-driven replacement
        self.symbols: dict[str, _SymbolState] = {}
        for symbol in config.symbols:
            self._add_symbol(symbol)
        self.telemetry = Telemetry()
        self.modes = ModeController(config.modes, now)
        self.confidence = Confidence(0.0, ())
        self.confidence_history: deque[tuple[int, float]] = deque(maxlen=600)
        self.confidence_min = 1.0  # lowest score since the first resynchronisation
        self.epochs: list[EpochRecord] = []
        self.book_resyncs: deque[BookResync] = deque(maxlen=1000)
        self.ttcr_ms: deque[float] = deque(maxlen=10_000)
        self.log: deque[LogRecord] = deque(maxlen=config.log_capacity)
        self.pending_log: list[LogRecord] = []
        self.paused = False
        self.fatal: str | None = None
        self.stopped = False
        self.write_failures = 0
        self.account_stream_down_since: int | None = None  # set while the account stream is down (trading only)
        self._failed_dials = 0
        self._request_seq = 0
        self._rng = random.Random(config.seed)
        self._latency_replace_allowed_ns = 0
        self._latency_cooldown_ms = config.latency_replace_cooldown_ms
        self.counters = {
            "events": 0,
            "market_events": 0,
            "discarded_stale_epoch": 0,
            "duplicates": 0,
            "gaps": 0,
            "overflow_dropped": 0,
            "malformed": 0,
            "snapshots_failed": 0,
            "snapshots_refetched": 0,
            "unsolicited_snapshots": 0,
            "book_resyncs": 0,
            "candles_missing": 0,
            "funding_settlements": 0,
        }
        self._incident_start: int | None = None  # set when epoch 1 is requested (startup incident)
        self.budget_waiting: tuple[str, ...] = ()  # symbols whose snapshot waits for request weight
        self.budget_used = 0
        self.budget_cap = 0

    # ====================================================================== entry point

    def handle(self, event) -> Iterable[ev.Command]:
        """Process one event; returns the commands it causes (often none)."""
        event.process_ts = now = self.clock()
        self.counters["events"] += 1
        if event.kind == "market":
            if event.epoch != self.epoch or self.stopped:
                self.counters["discarded_stale_epoch"] += 1
                return _NO_COMMANDS
            self.counters["market_events"] += 1
            if type(event) is ev.DepthDiff:
                return self._on_depth(event, now)
            return self._on_other_market(event, now)
        if event.kind == "trading":
            return self._on_trading(event, now)
        if self.stopped and type(event) is not ev.OperatorPause:  # a pause only restricts: it holds after a stop too
            return _NO_COMMANDS
        handler = _CONTROL_HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"engine cannot handle {type(event).__name__}")
        epoch_bound = type(event) in _EPOCH_BOUND
        if epoch_bound and event.epoch != self.epoch:
            self.counters["discarded_stale_epoch"] += 1
            return _NO_COMMANDS
        commands = handler(self, event, now)
        if self._outbox:
            commands = [*commands, *self._outbox]
            self._outbox = []
        return commands

    # ====================================================================== market data

    def _on_depth(self, diff: ev.DepthDiff, now: int):
        state = self.symbols.get(diff.symbol)
        if state is None:
            if not self.config.track_new_symbols:
                return _NO_COMMANDS
            state = self._add_symbol(diff.symbol)
        self.telemetry.on_market(diff.symbol, diff.exchange_ts, diff.recv_ts, now)
        self.liveness.on_depth(diff.symbol, diff.final_id, diff.recv_ts, now)
        book = state.book
        outcome = book.on_diff(diff)
        if outcome is DiffOutcome.APPLIED:
            if self.trader is not None:
                self._dirty.add(diff.symbol)
            if self._validating and diff.symbol in self._validating:
                return self._book_validated(state, now)
            return _NO_COMMANDS
        if outcome is DiffOutcome.BUFFERED:
            if not state.snapshot_request:
                return self._request_snapshot(state, now, "first diff")
            return _NO_COMMANDS
        if outcome is DiffOutcome.DUPLICATE:
            self.counters["duplicates"] += 1
            return _NO_COMMANDS
        if outcome is DiffOutcome.OVERFLOW:
            if not state.overflow_logged:  # once per wait (it repeats while the book waits)
                state.overflow_logged = True
                self._log(
                    "warn",
                    "book buffer full while waiting for snapshot: oldest diffs dropped",
                    symbol=diff.symbol,
                    kept=len(book.buffer),
                    awaiting_weight=diff.symbol in self.budget_waiting,
                )
            return _NO_COMMANDS
        # GAP / CROSSED / BAD_LEVEL / STALE_SNAPSHOT: the book is invalid; resync it alone.
        if outcome is DiffOutcome.STALE_SNAPSHOT:
            self.counters["snapshots_refetched"] += 1
        else:
            self.counters["gaps"] += 1
        self._log(
            "warn",
            f"book {outcome.value}: resync",
            symbol=diff.symbol,
            first_id=diff.first_id,
            final_id=diff.final_id,
            prev_final_id=diff.prev_final_id,
            problem=book.last_problem,
        )
        cause = outcome.value
        if outcome is DiffOutcome.GAP and self._after_malformed(now):
            # The frame we could not read carried the missing updates: name the real cause.
            cause = "malformed"
            book.last_problem = f"malformed frame skipped, then {book.last_problem}"
        self._start_book_resync(state, cause, now)
        return self._request_snapshot(state, now, cause)

    def _on_other_market(self, event, now: int):
        state = self.symbols.get(event.symbol)
        if state is None:
            if not self.config.track_new_symbols:
                return _NO_COMMANDS
            state = self._add_symbol(event.symbol)
        kind = type(event)
        if kind is ev.AggTrade:
            trades = state.trades
            trades.append(event)
            if len(trades) > self.config.trade_history:
                trades.popleft()
            if state.book.codec is not None:
                self.market.on_trade(event, state.book.codec)
            if self.trader is not None and state.book.codec is not None and not self.stopped:
                self.telemetry.on_market(event.symbol, event.exchange_ts, event.recv_ts, now)
                return self._trade_to_strategy(state, event, now)
        elif kind is ev.BookTicker:
            state.ticker = event
        elif kind is ev.MarkPrice:
            state.mark = event
            self.liveness.on_heartbeat(event.symbol, event.recv_ts, now)
            if event.next_funding_ts:
                due = self.market.on_mark_price(event)
                if due is not None and self.trader is not None and not self.stopped:
                    commands = self._settle_funding(due)
                    if commands:
                        self.telemetry.on_market(event.symbol, event.exchange_ts, event.recv_ts, now)
                        return commands
        elif kind is ev.Kline:
            state.kline = event
            if event.closed:
                self.market.on_closed_kline(event)
        elif kind is ev.ForceOrder:
            state.liquidations += 1
        self.telemetry.on_market(event.symbol, event.exchange_ts, event.recv_ts, now)
        return _NO_COMMANDS

    # ====================================================================== venue notices

    def _on_malformed(self, event: ev.MalformedFrame, now: int):
        self.counters["malformed"] += 1
        # An unreadable frame without a symbol (invalid JSON) may have held depth updates: a gap
        # soon after it is recorded as cause "malformed" (see _after_malformed).
        self._malformed_ns, self._malformed_epoch = now, self.epoch
        self._log(
            "warn",
            "malformed frame skipped",
            reason=event.reason[:300],
            sample=event.sample[:200],
            event=event.event,
            symbol=event.symbol,
        )
        state = self.symbols.get(event.symbol) if event.event == "depthUpdate" else None
        if state is None or state.book.state in (BookState.INVALID, BookState.EMPTY):
            return _NO_COMMANDS
        # A depth event was lost: the book can no longer be trusted; resync it alone.
        state.book.invalidate(f"malformed depth event: {event.reason[:100]}")
        self._start_book_resync(state, "malformed", now)
        if state.snapshot_request:
            return _NO_COMMANDS
        return self._request_snapshot(state, now, "malformed")

    def _on_snapshot_budget(self, event: ev.SnapshotBudget, now: int):
        if event.waiting and not self.budget_waiting:
            self._log(
                "warn",
                "request weight spent: snapshots wait their turn",
                waiting=len(event.waiting),
                used=event.used,
                cap=event.cap,
                first=list(event.waiting[:10]),
            )
        elif self.budget_waiting and not event.waiting:
            self._log("info", "every waiting snapshot has been requested", used=event.used, cap=event.cap)
        waiting = set(event.waiting)
        # A book whose snapshot request has not even been sent needs only the newest diffs (the
        # snapshot will be newer than anything buffered now): keep a few, not a minute's worth.
        # Bounds memory (and the collector's work) with hundreds of books waiting for weight.
        for symbol in waiting.union(self.budget_waiting):
            state = self.symbols.get(symbol)
            if state is not None:
                state.book.buffer_limit = _PARKED_BUFFER if symbol in waiting else self.config.book_buffer_limit
        self.budget_waiting = tuple(event.waiting)
        self.budget_used, self.budget_cap = event.used, event.cap
        return _NO_COMMANDS

    def _after_malformed(self, now: int) -> bool:
        """A gap this soon after an unreadable frame in this epoch: that frame held the updates."""
        return self._malformed_epoch == self.epoch and now - self._malformed_ns <= _MALFORMED_LINK_NS

    def _on_symbol_spec(self, event: ev.SymbolSpec, now: int):
        state = self.symbols.get(event.symbol) or self._add_symbol(event.symbol)
        codec = UnitCodec.from_filters(event.tick_size, event.step_size)
        state.book.codec = codec
        state.book.tick = parse_units(event.tick_size, codec.price_decimals) or 1
        return _NO_COMMANDS

    def _on_clock_offset(self, event: ev.ClockOffsetMeasured, now: int):
        self.telemetry.clock_offset_ns = int(event.offset_ms * _MS)
        self._log("debug", "clock offset measured", offset_ms=round(event.offset_ms, 3), rtt_ms=round(event.rtt_ms, 3))
        return _NO_COMMANDS

    # ====================================================================== operator

    def _on_force_resync(self, event: ev.OperatorForceResync, now: int):
        if event.replace_session:
            self._log("warn", "operator: replace session")
            return self._replace_session(now, "operator: new epoch", immediate=True)
        targets = [self.symbols[event.symbol]] if event.symbol in self.symbols else list(self.symbols.values())
        if event.symbol is not None and event.symbol not in self.symbols:
            self._log("error", "operator resync: unknown symbol", symbol=event.symbol)
            return _NO_COMMANDS
        commands: list[ev.Command] = []
        for state in targets:
            self._log("warn", "operator: book resync", symbol=state.book.symbol)
            if state.book.state is not BookState.EMPTY:
                state.book.invalidate("operator resync")
            self._start_book_resync(state, "operator", now)
            commands.extend(self._request_snapshot(state, now, "operator"))
        return commands

    def _on_set_mode(self, event: ev.OperatorSetMode, now: int):
        try:
            mode = parse_mode(event.mode)
        except ValueError as exc:
            self._log("error", "operator set mode refused", error=str(exc))
            return _NO_COMMANDS
        change = self.modes.set_operator(mode, now, event.source)
        self._log("warn", "operator set mode", mode=mode.value, source=event.source)
        if change:
            self._log_mode(change)
        return _NO_COMMANDS

    def _on_pause(self, event: ev.OperatorPause, now: int):
        self.paused = event.paused
        if self.trader is not None:
            self.trader.pause(event.paused)
        self._log("warn", "strategy paused" if event.paused else "strategy resumed")
        return _NO_COMMANDS

    def _on_shutdown(self, event: ev.ShutdownRequested, now: int):
        self._log("info", "shutdown requested", reason=event.reason)
        self.stopped = True
        record = self._current_epoch_record()
        if record is not None and not record.closed_ns:
            record.closed_ns = now
            record.close_cause = f"shutdown: {event.reason}"
        return (ev.CloseConnection(epoch=self.epoch, reason="shutdown"), ev.Stop(reason=event.reason, exit_code=0))

    # ====================================================================== timers / confidence

    def _on_tick(self, event: ev.TimerTick, now: int):
        self.lag.on_load(now, event.loop_busy)
        self.liveness.saturated = self.lag.saturated()
        self._evaluate(now)
        cfg = self.config
        if self.trader is not None and not self.stopped:
            self._outbox.extend(self._strategy_tick(now))
        if self.epoch == 0 or self.stopped:
            return _NO_COMMANDS
        record = self._current_epoch_record()
        if self.session_open and self.subscribed:
            # Silence is judged per stream against what it normally shows; before a silent
            # stream costs a reconnect the venue is asked (core/engine/liveness.py).
            verdict = self.liveness.check(now, event.market_backlog_ns)
            if verdict.dead:
                return self._replace_session(
                    now, verdict.dead, detected_ns=verdict.detected_ns, immediate=True, liveness=True
                )
            if verdict.probes:
                return self._probe(verdict.probes, now)
            # Our own backlog never replaces a healthy connection (core/engine/lag.py): reported only.
            now_s = now // 1_000_000_000
            queue = self.telemetry.queue.stats(now_s)
            transport = self.telemetry.transport.stats(now_s)
            action, why = self.lag.judge(
                transport.p50,
                transport.count,
                queue.p50,
                queue.count,
                cfg.transport_latency_replace_ms,
                cfg.queue_delay_replace_ms,
            )
            if action == LOCAL:
                if self.lag.start_episode():
                    self._log(
                        "warn",
                        "behind: our own backlog, not the venue's; session kept",
                        reason=why,
                        queue_delay_p50_ms=round(queue.p50, 1),
                        loop_busy=round(self.lag.busy(), 3),
                    )
                return _NO_COMMANDS
            if action == REPLACE and now >= self._latency_replace_allowed_ns:
                if self._latency_replaced_p50 and transport.p50 >= 0.75 * self._latency_replaced_p50:
                    # The last new connection was just as slow: the venue (or its clock) lags,
                    # not our route. Keep this session; judge again only after the longest wait.
                    self._latency_replace_allowed_ns = now + int(cfg.latency_replace_cooldown_max_ms * _MS)
                    self._log(
                        "warn",
                        "transport latency persists across connections: venue-side, session kept",
                        p50_ms=round(transport.p50, 1),
                        previous_p50_ms=round(self._latency_replaced_p50, 1),
                        next_check_in_ms=cfg.latency_replace_cooldown_max_ms,
                    )
                    return _NO_COMMANDS
                self._latency_replaced_p50 = transport.p50
                return self._latency_replacement(now, f"transport latency p50 {transport.p50:.0f} ms")
        elif self.session_open and record is not None and record.opened_ns:
            if (now - record.opened_ns) / _MS >= cfg.subscribe_timeout_ms:
                return self._replace_session(now, "subscription not confirmed in time")
        return _NO_COMMANDS

    def _probe(self, probes, now: int, delay_ms: float = 0.0):
        commands = []
        for symbol, request_id in probes:
            if not delay_ms:
                self._log(
                    "info",
                    "stream silent: asking the venue",
                    symbol=symbol,
                    request_id=request_id,
                    silence_ms=round(self.liveness.depth_silence_ms(symbol, now), 1),
                )
            commands.append(
                ev.ProbeVenue(
                    epoch=self.epoch,
                    symbol=symbol,
                    request_id=request_id,
                    limit=self.config.probe_limit,
                    delay_ms=delay_ms,
                )
            )
        self._evaluate(now)
        return commands

    def _on_probe_result(self, event: ev.ProbeResult, now: int):
        was_quiet = self.liveness.quiet_symbols()
        transport = self.telemetry.transport.stats(now // 1_000_000_000)
        verdict = self.liveness.on_probe(
            event.symbol,
            event.request_id,
            event.last_update_id if event.ok else None,
            now,
            latency_ms=transport.p50 if transport.count >= 20 else 0.0,
            backlog_ns=event.market_backlog_ns,
        )
        if not event.ok:
            self._log("warn", "liveness probe failed", symbol=event.symbol, reason=event.reason)
        if verdict.dead:
            return self._replace_session(
                now, verdict.dead, detected_ns=verdict.detected_ns, immediate=True, liveness=True
            )
        if verdict.probes:  # the venue is ahead of us: ask again once the diff in flight had its time
            self._log(
                "info",
                "venue ahead of a silent stream: confirming after the grace",
                symbol=event.symbol,
                last_update_id=event.last_update_id,
                grace_ms=round(verdict.delay_ms, 1),
            )
            return self._probe(verdict.probes, now, verdict.delay_ms)
        quiet = self.liveness.quiet_symbols()
        if event.symbol in quiet and event.symbol not in was_quiet:
            self._log(
                "info",
                "quiet market: the venue's book did not move, books exact, session kept",
                symbol=event.symbol,
                last_update_id=event.last_update_id,
                fetch_ms=round(event.fetch_ms, 3),
            )
        self._evaluate(now)
        return _NO_COMMANDS

    def _confidence_inputs(self, now: int) -> ConfidenceInputs:
        tel = self.telemetry
        now_s = now // 1_000_000_000
        n = len(self.symbols)
        invalid = sum(1 for s in self.symbols.values() if not s.book.synced) / n if n else 0.0
        waits = [now - s.snapshot_requested_ns for s in self.symbols.values() if s.snapshot_request]
        record = self._current_epoch_record()
        pending = 0.0
        if self.session_open and not self.subscribed and record is not None and record.opened_ns:
            pending = (now - record.opened_ns) / _MS
        queue = tel.queue.stats(now_s)
        transport = tel.transport.stats(now_s)
        live = self.liveness
        subscribed = self.subscribed and self.session_open
        return ConfidenceInputs(
            market_silence_ms=live.unexplained_silence_ms(now) if subscribed else 0.0,
            stall_suspected=float(live.suspected()) if subscribed else 0.0,
            quiet_market_ms=live.quiet_ms(now) if subscribed else 0.0,
            transport_latency_ms=transport.p50 if transport.count else 0.0,
            queue_delay_ms=queue.p99 if queue.count else 0.0,
            invalid_books=invalid,
            subscription_pending_ms=pending,
            write_failures=float(self.write_failures),
            snapshot_wait_ms=max(waits) / _MS if waits else 0.0,
            session_down=0.0 if self.session_open else 1.0,
            books_awaiting_weight=len(self.budget_waiting) / n if n else 0.0,
            loop_busy=self.lag.busy(),
            account_stream_down_ms=(now - self.account_stream_down_since) / _MS
            if self.account_stream_down_since is not None
            else 0.0,
        )

    def _evaluate(self, now: int) -> None:
        inputs = self._confidence_inputs(now)
        conf = evaluate(inputs, self.config.confidence)
        if conf.score >= 1.0 and now - self._latency_replace_allowed_ns > 60_000 * _MS:
            self._latency_cooldown_ms = self.config.latency_replace_cooldown_ms
            self._latency_replaced_p50 = 0.0
        if conf.score < 1.0 and self._incident_start is None and conf.score < self.config.modes.normal_at:
            self._incident_start = now
        self.confidence = conf
        self.confidence_history.append((now, conf.score))
        if self.ttcr_ms and conf.score < self.confidence_min:
            self.confidence_min = conf.score
        change = self.modes.on_confidence(conf.score, ", ".join(r.describe() for r in conf.reasons[:3]), now)
        if change:
            self._log_mode(change)

    def _log_mode(self, change: ModeChange) -> None:
        level = "info" if change.mode is Mode.NORMAL else "warn"
        self._log(
            level,
            "mode changed",
            mode=change.mode.value,
            previous=change.previous.value,
            cause=change.cause,
            source=change.source,
        )
        if self.trader is not None:
            self._outbox.extend(self.trader.set_mode(change.mode, change.at_ns))

    # ====================================================================== failure

    def _go_fatal(self, now: int, why: str):
        self.fatal = why
        change = self.modes.latch_fatal(now, why)
        if change:
            self._log_mode(change)
        self._log("critical", "fatal state corruption: trading stopped", reason=why)
        self.stopped = True
        return (ev.CloseConnection(epoch=self.epoch, reason="fatal"), ev.Stop(reason=why, exit_code=FATAL_EXIT_CODE))

    # ====================================================================== helpers

    def _add_symbol(self, symbol: str) -> _SymbolState:
        state = _SymbolState(OrderBook(symbol, self.config.venue, buffer_limit=self.config.book_buffer_limit))
        self.symbols[symbol] = state
        self.market.add_symbol(symbol)
        self.liveness.track(symbol)
        return state

    def _log(self, level: str, msg: str, **fields) -> None:
        record = LogRecord(self.clock(), level, msg, self.epoch, fields)
        self.log.append(record)
        self.pending_log.append(record)
        if len(self.pending_log) > 10_000:
            del self.pending_log[:5_000]

    def drain_log(self) -> list[LogRecord]:
        out, self.pending_log = self.pending_log, []
        return out

    def book(self, symbol: str) -> OrderBook:
        return self.symbols[symbol].book

    @property
    def mode(self) -> Mode:
        return self.modes.effective

    def state_hash(self) -> str:
        h = hashlib.sha256()
        h.update(f"epoch={self.epoch}|".encode())
        for symbol in sorted(self.symbols):
            self.symbols[symbol].book.feed_hash(h)
        trader = self.trader
        if trader is not None:  # orders and positions too: a replay must reach the same ones
            for o in sorted(trader.orders.orders.values(), key=lambda o: o.client_order_id):
                h.update(
                    f"{o.client_order_id}|{o.symbol}|{o.side}|{o.state.value}|{o.price}|{o.qty}|{o.filled_qty}|".encode()
                )
            for symbol in sorted(trader.filters):
                h.update(f"{symbol}={trader.portfolio.qty(symbol)}|".encode())
        return h.hexdigest()


_CONTROL_HANDLERS: dict[type, Callable] = {
    ev.SessionOpened: Engine._on_session_opened,
    ev.SubscriptionConfirmed: Engine._on_subscription_confirmed,
    ev.SubscriptionFailed: Engine._on_subscription_failed,
    ev.Disconnected: Engine._on_disconnected,
    ev.WriteFailed: Engine._on_write_failed,
    ev.ServerShutdownNotice: Engine._on_server_shutdown,
    ev.MalformedFrame: Engine._on_malformed,
    ev.GapDetected: Engine._on_gap_detected,
    ev.SnapshotReady: Engine._on_snapshot_ready,
    ev.SnapshotFailed: Engine._on_snapshot_failed,
    ev.SymbolSpec: Engine._on_symbol_spec,
    ev.ClockOffsetMeasured: Engine._on_clock_offset,
    ev.SnapshotBudget: Engine._on_snapshot_budget,
    ev.LatencyDegraded: Engine._on_latency_degraded,
    ev.MarketQueueOverflow: Engine._on_overflow,
    ev.OperatorForceResync: Engine._on_force_resync,
    ev.OperatorSetMode: Engine._on_set_mode,
    ev.OperatorPause: Engine._on_pause,
    ev.OperatorCancelAll: Engine._on_cancel_all,
    ev.OperatorFlatten: Engine._on_flatten,
    ev.ShutdownRequested: Engine._on_shutdown,
    ev.TimerTick: Engine._on_tick,
    ev.ProbeResult: Engine._on_probe_result,
    ev.Resynchronized: lambda self, event, now: _NO_COMMANDS,
}

# Control events produced by a transport session: a stale epoch's are void like its market data.
_EPOCH_BOUND = frozenset(
    {
        ev.SubscriptionConfirmed,
        ev.SubscriptionFailed,
        ev.Disconnected,
        ev.WriteFailed,
        ev.ServerShutdownNotice,
        ev.GapDetected,
        ev.SnapshotReady,
        ev.SnapshotFailed,
        ev.MalformedFrame,
        ev.LatencyDegraded,
        ev.ProbeResult,
    }
)
