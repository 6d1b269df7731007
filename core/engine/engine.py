"""The strategy core: a deterministic state machine fed events and a clock, returning commands.

Theory of operation
-------------------
The engine owns the world: one `OrderBook` per symbol, last trades and tickers, telemetry,
confidence, the trading mode, and the epoch history. ``handle(event)`` is the only way in and it
is called by exactly one consumer (the strategy loop, the replay driver or a test). It never
performs I/O and never reads the wall clock: ``process_ts`` comes from the injected ``clock``.

Epochs. Each transport session has an epoch number, chosen by the engine: when it decides the
session must go, it increments ``epoch``, resets every book and returns ``ReplaceSession(epoch)``.
Every inbound event whose epoch is not the current one is discarded and counted; that is what
makes a disposable session safe (its stragglers are harmless).

Two levels of repair:

* book resync: one symbol's continuity broke (gap, crossed, bad level, overflow). That book is
  invalidated, buffers again, and a ``FetchSnapshot`` for it alone is returned; the session stays.
* session replacement: the transport is degraded (disconnect, silence, latency, queue delay,
  write or subscription failure, server shutdown notice, operator). New epoch, all books reset.
  Silence is judged per stream, and a silent stream costs a replacement only after a
  ``ProbeVenue`` shows the venue's book moved past ours (a quiet market keeps the session);
  every replacement's delay goes through its back-off governor.

Resync pipeline, timed per epoch: detect -> close -> dial (SessionOpened) -> subscribe
(SubscriptionConfirmed) -> snapshot (every book's SnapshotReady) -> rebuild (buffer replay) ->
validate (full invariant check) -> resynchronized. Time-to-correct-resync is measured from the
first moment the engine saw the degradation to the moment every book is synced and validated.

Fatal corruption (an invariant a resync cannot restore: a book that fails validation right after
a successful rebuild, a venue that keeps serving crossed snapshots) latches ``halted``, records
the reason in ``fatal`` and returns ``Stop(exit_code=3)``.

The parts
---------
`Engine` is a facade: it routes each event (the market path inline, control events through one
type -> handler table), handles the operator and the timer, evaluates confidence (the one place
that sees every input), and wires the parts, each of which receives its collaborators in its
constructor and is tested on its own:

* `epochbot.engine.session.SessionMachine`: the session's lifecycle (a transition table), the
  epoch, its records, the dial back-off;
* `epochbot.engine.lifecycle.SessionLifecycle`: what a replacement and the session's answers
  mean for the other parts;
* `epochbot.engine.repair.BookRepair`: snapshot requests and answers, rebuild, validation;
* `epochbot.engine.supervision.Supervisor`: liveness, lag and latency verdicts on the session;
* `epochbot.engine.incidents.Incidents`: incident starts and time-to-correct-resync;
* `epochbot.engine.trading.TraderBridge`: the only way to the trader (`TraderPort`).

They share three small objects, handed to each that needs them: the symbol table (``symbols``,
`epochbot.engine.symbols`), the log (`epochbot.engine.log.EngineLog`) and ``counters`` (one
``dict[str, int]``, each part adding its own keys). Other layers read the engine through the
public attributes and properties below, never through a part.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from epochbot.book.book import DiffOutcome, OrderBook
from epochbot.engine.confidence import Confidence, ConfidenceInputs, evaluate
from epochbot.engine.config import FATAL_EXIT_CODE, EngineConfig
from epochbot.engine.incidents import Incidents
from epochbot.engine.lag import LagJudge
from epochbot.engine.lifecycle import SessionLifecycle
from epochbot.engine.liveness import Liveness, LivenessConfig, ReplacementGovernor
from epochbot.engine.log import EngineLog
from epochbot.engine.market_history import MarketHistory
from epochbot.engine.modes import ModeChange, ModeController
from epochbot.engine.repair import BookRepair
from epochbot.engine.session import SessionMachine, SessionState
from epochbot.engine.supervision import Replace, Supervisor
from epochbot.engine.symbols import Symbols, SymbolState
from epochbot.engine.telemetry import Telemetry
from epochbot.engine.trader_port import TraderPort
from epochbot.engine.trading import TraderBridge
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.modes import Mode, parse_mode
from epochbot.model.numeric import UnitCodec, parse_units
from epochbot.model.records import BookResync, EpochRecord, LogRecord

__all__ = [
    "BookResync",
    "ControlHandler",
    "Engine",
    "EngineConfig",
    "EpochRecord",
    "Event",
    "FATAL_EXIT_CODE",
    "LogRecord",
    "SymbolState",
]

Event = ev.MarketEvent | ev.ControlEvent | tev.TradingEvent
# The dispatch tables are keyed by an event's exact type and each handler takes that type; mypy
# cannot express a type-indexed table, so an entry's event parameter is Any here and `_route`
# checks every entry's pair (type, handler) where the table is built.
ControlHandler = Callable[[Any, int], ev.Commands]
_MarketHandler = Callable[[Any, SymbolState, int], ev.Commands]
_E = TypeVar("_E")

_NO_COMMANDS: tuple[ev.Command, ...] = ()
_MS = 1_000_000
_S = 1_000_000_000
# Module constants: the hot path compares outcomes with one global lookup each.
_APPLIED = DiffOutcome.APPLIED
_BUFFERED = DiffOutcome.BUFFERED
_DUPLICATE = DiffOutcome.DUPLICATE
_OVERFLOW = DiffOutcome.OVERFLOW


def _route(kind: type[_E], handler: Callable[[_E, int], ev.Commands]) -> tuple[type, ControlHandler]:
    return kind, handler


def _market_route(
    kind: type[_E], handler: Callable[[_E, SymbolState, int], ev.Commands]
) -> tuple[type, _MarketHandler]:
    return kind, handler


# Control events produced by a transport session: a stale epoch's are void like its market data.
_EPOCH_BOUND = frozenset(
    {
        ev.SessionOpened,
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


class Engine:
    """The sans-I/O kernel (see the module docstring).

    Args:
        config: the knobs (`epochbot.engine.config.EngineConfig`).
        clock: integer nanoseconds; the only time the engine reads besides the events' own.
        trader: the trading half, optional (it may also be attached later: ``engine.trader = t``).
        market: candles, range bars and the funding clock (a fresh `MarketHistory` by default).
    """

    def __init__(
        self,
        config: EngineConfig,
        clock: Callable[[], int],
        trader: TraderPort | None = None,
        market: MarketHistory | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        # Candles, range bars and the funding clock: market data kept beside the books.
        self.market = (
            market
            if market is not None
            else MarketHistory(config.candle_history, config.range_bar_bps, config.range_bar_keep)
        )
        now = clock()
        self.started_ns = now
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
        self.symbols: Symbols = {}
        self.telemetry = Telemetry()
        self.modes = ModeController(config.modes, now)
        self.confidence = Confidence(0.0, ())
        self.confidence_history: deque[tuple[int, float]] = deque(maxlen=600)
        self.confidence_min = 1.0  # lowest score since the first resynchronisation
        self.fatal: str | None = None
        self.counters: dict[str, int] = {
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
        # The parts, each given what it uses.
        session = self._session = SessionMachine(config, self.governor)
        log = self._logbook = EngineLog(clock, config.log_capacity, session)
        self._log = log.write
        incidents = self._incidents = Incidents()
        self._repair = BookRepair(
            config, clock, self.symbols, session, incidents, log, self.counters, self._evaluate, self.go_fatal
        )
        self._supervisor = Supervisor(config, session, self.liveness, self.lag, self.telemetry, self.governor, log)
        self._lifecycle = SessionLifecycle(
            config,
            self.symbols,
            session,
            self._repair,
            self._supervisor,
            incidents,
            self.telemetry,
            log,
            self._evaluate,
        )
        self._bridge = TraderBridge(self.symbols, log, self.counters, trader)
        self._trader = trader  # the bridge's, kept here for the market path's one check
        # Bound once: the market path is the hot path.
        self._symbol = self.symbols.get
        self._on_market = self.telemetry.on_market
        self._on_depth_arrival = self.liveness.on_depth
        self._validating = self._repair.validating
        self._changed = self._bridge.changed
        self._book_validated = self._repair.book_validated
        for symbol in config.symbols:
            self._add_symbol(symbol)
        repair, bridge, lifecycle = self._repair, self._bridge, self._lifecycle
        # Event type -> handler. Instrumentation may wrap an entry (bench/resync.py does).
        self.control_handlers: dict[type, ControlHandler] = dict(
            (
                _route(ev.SessionOpened, lifecycle.on_opened),
                _route(ev.SubscriptionConfirmed, lifecycle.on_subscribed),
                _route(ev.SubscriptionFailed, lifecycle.on_subscription_failed),
                _route(ev.Disconnected, lifecycle.on_disconnected),
                _route(ev.WriteFailed, lifecycle.on_write_failed),
                _route(ev.ServerShutdownNotice, lifecycle.on_server_shutdown),
                _route(ev.MalformedFrame, repair.on_malformed),
                _route(ev.GapDetected, repair.on_gap_detected),
                _route(ev.SnapshotReady, repair.on_snapshot_ready),
                _route(ev.SnapshotFailed, repair.on_snapshot_failed),
                _route(ev.SymbolSpec, self._on_symbol_spec),
                _route(ev.ClockOffsetMeasured, self._on_clock_offset),
                _route(ev.SnapshotBudget, repair.on_snapshot_budget),
                _route(ev.LatencyDegraded, lifecycle.on_latency_degraded),
                _route(ev.MarketQueueOverflow, repair.on_overflow),
                _route(ev.OperatorForceResync, self._on_force_resync),
                _route(ev.OperatorSetMode, self._on_set_mode),
                _route(ev.OperatorPause, self._on_pause),
                _route(ev.OperatorCancelAll, bridge.cancel_all),
                _route(ev.OperatorFlatten, bridge.flatten),
                _route(ev.ShutdownRequested, self._on_shutdown),
                _route(ev.TimerTick, self._on_tick),
                _route(ev.ProbeResult, self._on_probe_result),
                _route(ev.Resynchronized, _ignore),
            )
        )
        self._market_handlers: dict[type, _MarketHandler] = dict(
            (
                _market_route(ev.AggTrade, self._on_trade),
                _market_route(ev.BookTicker, self._on_book_ticker),
                _market_route(ev.MarkPrice, self._on_mark_price),
                _market_route(ev.Kline, self._on_kline),
                _market_route(ev.ForceOrder, self._on_force_order),
            )
        )

    # ====================================================================== entry point

    def handle(self, event: Event) -> ev.Commands:
        """Process one event; returns the commands it causes (often none)."""
        event.process_ts = now = self._clock()
        self.counters["events"] += 1
        if event.kind == "market":
            if event.epoch != self._session.accepting:  # a stale epoch's, or any after a stop
                self.counters["discarded_stale_epoch"] += 1
                return _NO_COMMANDS
            self.counters["market_events"] += 1
            if type(event) is ev.DepthDiff:
                return self._on_depth(event, now)
            return self._on_other_market(event, now)
        if event.kind == "trading":
            return self._bridge.on_event(event, now)
        session = self._session
        if session.stopped and type(event) is not ev.OperatorPause:  # a pause only restricts: it holds after a stop too
            return _NO_COMMANDS
        handler = self.control_handlers.get(type(event))
        if handler is None:
            raise TypeError(f"engine cannot handle {type(event).__name__}")
        if type(event) in _EPOCH_BOUND and event.epoch != session.epoch:
            self.counters["discarded_stale_epoch"] += 1
            return _NO_COMMANDS
        commands = handler(event, now)
        outbox = self._bridge.outbox
        if outbox:
            commands = [*commands, *outbox]
            outbox.clear()
        return commands

    # ====================================================================== market data

    def _on_depth(self, diff: ev.DepthDiff, now: int) -> ev.Commands:
        state = self._symbol(diff.symbol)
        if state is None:
            if not self.config.track_new_symbols:
                return _NO_COMMANDS
            state = self._add_symbol(diff.symbol)
        self._on_market(diff.symbol, diff.exchange_ts, diff.recv_ts, now)
        self._on_depth_arrival(diff.symbol, diff.final_id, diff.recv_ts, now)
        outcome = state.book.on_diff(diff)
        if outcome is _APPLIED:
            if self._trader is not None:
                self._changed.add(diff.symbol)
            if self._validating and diff.symbol in self._validating:
                return self._book_validated(state, now)
            return _NO_COMMANDS
        if outcome is _BUFFERED:
            if not state.snapshot_request:
                return self._repair.request_snapshot(state, now, "first diff")
            return _NO_COMMANDS
        if outcome is _DUPLICATE:
            self.counters["duplicates"] += 1
            return _NO_COMMANDS
        if outcome is _OVERFLOW:
            return self._repair.on_diff_overflow(state, diff)
        # GAP / CROSSED / BAD_LEVEL / STALE_SNAPSHOT: the book is invalid; resync it alone.
        return self._repair.on_broken_diff(state, diff, outcome, now)

    def _on_other_market(self, event: ev.MarketEvent, now: int) -> ev.Commands:
        state = self._symbol(event.symbol)
        if state is None:
            if not self.config.track_new_symbols:
                return _NO_COMMANDS
            state = self._add_symbol(event.symbol)
        handler = self._market_handlers.get(type(event))
        if handler is not None:
            return handler(event, state, now)
        self._on_market(event.symbol, event.exchange_ts, event.recv_ts, now)
        return _NO_COMMANDS

    def _on_trade(self, trade: ev.AggTrade, state: SymbolState, now: int) -> ev.Commands:
        trades = state.trades
        trades.append(trade)
        if len(trades) > self.config.trade_history:
            trades.popleft()
        codec = state.book.codec
        if codec is not None:
            self.market.on_trade(trade, codec)
            if self._trader is not None and not self._session.stopped:
                self._on_market(trade.symbol, trade.exchange_ts, trade.recv_ts, now)
                return self._bridge.trade(trade, codec)
        self._on_market(trade.symbol, trade.exchange_ts, trade.recv_ts, now)
        return _NO_COMMANDS

    def _on_book_ticker(self, ticker: ev.BookTicker, state: SymbolState, now: int) -> ev.Commands:
        state.ticker = ticker
        self._on_market(ticker.symbol, ticker.exchange_ts, ticker.recv_ts, now)
        return _NO_COMMANDS

    def _on_mark_price(self, mark: ev.MarkPrice, state: SymbolState, now: int) -> ev.Commands:
        state.mark = mark
        self.liveness.on_heartbeat(mark.symbol, mark.recv_ts, now)
        if mark.next_funding_ts:
            due = self.market.on_mark_price(mark)
            if due is not None and self._trader is not None and not self._session.stopped:
                commands = self._bridge.settle_funding(due)
                if commands:
                    self._on_market(mark.symbol, mark.exchange_ts, mark.recv_ts, now)
                    return commands
        self._on_market(mark.symbol, mark.exchange_ts, mark.recv_ts, now)
        return _NO_COMMANDS

    def _on_kline(self, kline: ev.Kline, state: SymbolState, now: int) -> ev.Commands:
        state.kline = kline
        if kline.closed:
            self.market.on_closed_kline(kline)
        self._on_market(kline.symbol, kline.exchange_ts, kline.recv_ts, now)
        return _NO_COMMANDS

    def _on_force_order(self, order: ev.ForceOrder, state: SymbolState, now: int) -> ev.Commands:
        state.liquidations += 1
        self._on_market(order.symbol, order.exchange_ts, order.recv_ts, now)
        return _NO_COMMANDS

    # ====================================================================== the session

    def start(self) -> list[ev.Command]:
        """First commands of a live engine: open epoch 1 (startup counts as the first incident)."""
        return self.begin_session("startup")

    def begin_session(self, cause: str) -> list[ev.Command]:
        """Open a new epoch on the driver's initiative (startup; replay: a recorded connection)."""
        now = self._clock()
        if self._session.epoch == 0:
            self.started_ns = self.started_ns or now
            return list(self._lifecycle.replace(now, cause, detected_ns=self.started_ns))
        return list(self._lifecycle.replace(now, cause, immediate=True))

    def _on_tick(self, event: ev.TimerTick, now: int) -> ev.Commands:
        self._supervisor.on_load(now, event.loop_busy)
        self._evaluate(now)
        session = self._session
        if self._trader is not None and not session.stopped:
            self._bridge.outbox.extend(self._bridge.strategy_tick(now))
        if session.epoch == 0 or session.stopped:
            return _NO_COMMANDS
        verdict = self._supervisor.on_tick(now, event.market_backlog_ns)
        if verdict is None:
            return _NO_COMMANDS
        if isinstance(verdict, Replace):
            return self._lifecycle.replace_for(verdict, now)
        self._evaluate(now)
        return verdict.commands

    def _on_probe_result(self, event: ev.ProbeResult, now: int) -> ev.Commands:
        verdict = self._supervisor.on_probe_result(event, now)
        if isinstance(verdict, Replace):
            return self._lifecycle.replace_for(verdict, now)
        self._evaluate(now)
        return verdict.commands if verdict is not None else _NO_COMMANDS

    # ====================================================================== venue notices

    def _on_symbol_spec(self, event: ev.SymbolSpec, now: int) -> ev.Commands:
        state = self.symbols.get(event.symbol) or self._add_symbol(event.symbol)
        codec = UnitCodec.from_filters(event.tick_size, event.step_size)
        state.book.codec = codec
        state.book.tick = parse_units(event.tick_size, codec.price_decimals) or 1
        return _NO_COMMANDS

    def _on_clock_offset(self, event: ev.ClockOffsetMeasured, now: int) -> ev.Commands:
        self.telemetry.clock_offset_ns = int(event.offset_ms * _MS)
        self._log("debug", "clock offset measured", offset_ms=round(event.offset_ms, 3), rtt_ms=round(event.rtt_ms, 3))
        return _NO_COMMANDS

    # ====================================================================== operator

    def _on_force_resync(self, event: ev.OperatorForceResync, now: int) -> ev.Commands:
        if event.replace_session:
            self._log("warn", "operator: replace session")
            return self._lifecycle.replace(now, "operator: new epoch", immediate=True)
        if event.symbol is not None and event.symbol not in self.symbols:
            self._log("error", "operator resync: unknown symbol", symbol=event.symbol)
            return _NO_COMMANDS
        targets = [self.symbols[event.symbol]] if event.symbol is not None else list(self.symbols.values())
        commands: list[ev.Command] = []
        for state in targets:
            commands.extend(self._repair.operator_resync(state, now))
        return commands

    def _on_set_mode(self, event: ev.OperatorSetMode, now: int) -> ev.Commands:
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

    def _on_pause(self, event: ev.OperatorPause, now: int) -> ev.Commands:
        self._bridge.pause(event.paused)
        return _NO_COMMANDS

    def _on_shutdown(self, event: ev.ShutdownRequested, now: int) -> ev.Commands:
        self._log("info", "shutdown requested", reason=event.reason)
        self._session.stop(now, f"shutdown: {event.reason}")
        epoch = self._session.epoch
        return (ev.CloseConnection(epoch=epoch, reason="shutdown"), ev.Stop(reason=event.reason, exit_code=0))

    # ====================================================================== confidence

    def confidence_inputs(self, now: int) -> ConfidenceInputs:
        """What confidence is computed from at ``now`` (`epochbot.engine.confidence`)."""
        tel = self.telemetry
        now_s = now // _S
        symbols = self.symbols
        n = len(symbols)
        invalid = sum(1 for s in symbols.values() if not s.book.synced) / n if n else 0.0
        waits = [now - s.snapshot_requested_ns for s in symbols.values() if s.snapshot_request]
        session = self._session
        queue = tel.queue.stats(now_s)
        transport = tel.transport.stats(now_s)
        live = self.liveness
        judged = session.live  # silence counts only while a subscribed session should speak
        down_since = self._bridge.account_stream_down_since
        return ConfidenceInputs(
            market_silence_ms=live.unexplained_silence_ms(now) if judged else 0.0,
            stall_suspected=float(live.suspected()) if judged else 0.0,
            quiet_market_ms=live.quiet_ms(now) if judged else 0.0,
            transport_latency_ms=transport.p50 if transport.count else 0.0,
            queue_delay_ms=queue.p99 if queue.count else 0.0,
            invalid_books=invalid,
            subscription_pending_ms=session.subscription_pending_ms(now),
            write_failures=float(session.write_failures),
            snapshot_wait_ms=max(waits) / _MS if waits else 0.0,
            session_down=0.0 if session.session_open else 1.0,
            books_awaiting_weight=len(self._repair.budget_waiting) / n if n else 0.0,
            loop_busy=self.lag.busy(),
            account_stream_down_ms=(now - down_since) / _MS if down_since is not None else 0.0,
        )

    def _evaluate(self, now: int) -> None:
        conf = evaluate(self.confidence_inputs(now), self.config.confidence)
        self._supervisor.on_confidence(conf.score, now)
        self._incidents.on_confidence(conf.score, now, self.config.modes.normal_at)
        self.confidence = conf
        self.confidence_history.append((now, conf.score))
        if self._incidents.ttcr_ms and conf.score < self.confidence_min:
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
        self._bridge.mode_changed(change)

    # ====================================================================== failure

    def go_fatal(self, now: int, why: str) -> ev.Commands:
        """State corruption: latch ``halted``, stop, and return the commands that end the run
        (``Stop(exit_code=FATAL_EXIT_CODE)``). The runtime calls it too, for an invariant a
        handler broke (`epochbot.runtime.data_errors`)."""
        # Latched first: the mode change below reaches the strategy's hooks, and a defect there
        # must find the engine already stopped.
        self.fatal = why
        self._session.stop(now)
        change = self.modes.latch_fatal(now, why)
        self._log("critical", "fatal state corruption: trading stopped", reason=why)
        if change:
            self._log_mode(change)
        return (
            ev.CloseConnection(epoch=self._session.epoch, reason="fatal"),
            ev.Stop(reason=why, exit_code=FATAL_EXIT_CODE),
        )

    # ====================================================================== helpers

    def _add_symbol(self, symbol: str) -> SymbolState:
        state = SymbolState(OrderBook(symbol, self.config.venue, buffer_limit=self.config.book_buffer_limit))
        self.symbols[symbol] = state
        self.market.add_symbol(symbol)
        self.liveness.track(symbol)
        return state

    def log_event(self, level: str, msg: str, **fields: object) -> None:
        """Write a line into the engine's log (the runtime's own lines go here too)."""
        self._log(level, msg, **fields)

    def drain_log(self) -> list[LogRecord]:
        """The log records written since the last drain, oldest first."""
        return self._logbook.drain()

    def log_trader_alerts(self) -> None:
        """Log the trader's unreported risk alerts (the runtime calls it after restoring state)."""
        self._bridge.log_alerts()

    def book(self, symbol: str) -> OrderBook:
        return self.symbols[symbol].book

    def state_hash(self) -> str:
        """sha256 over the epoch, every book and the trader's orders and positions: a replay of
        the same input must reach the same hash."""
        h = hashlib.sha256()
        h.update(f"epoch={self._session.epoch}|".encode())
        for symbol in sorted(self.symbols):
            self.symbols[symbol].book.feed_hash(h)
        self._bridge.feed_hash(h)  # orders and positions too: a replay must reach the same ones
        return h.hexdigest()

    # ====================================================================== the public surface

    @property
    def clock(self) -> Callable[[], int]:
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], int]) -> None:
        # The runtime pins the clock for start() (journaled at one instant): every part follows.
        self._clock = clock
        self._logbook.clock = clock
        self._repair.clock = clock

    @property
    def trader(self) -> TraderPort | None:
        """The trading half, optional; known only through `TraderPort`."""
        return self._trader

    @trader.setter
    def trader(self, trader: TraderPort | None) -> None:
        self._trader = trader
        self._bridge.trader = trader

    @property
    def epoch(self) -> int:
        return self._session.epoch

    @property
    def session_state(self) -> SessionState:
        return self._session.state

    @property
    def session_open(self) -> bool:
        return self._session.session_open

    @property
    def subscribed(self) -> bool:
        return self._session.subscribed

    @property
    def stopped(self) -> bool:
        return self._session.stopped

    @property
    def epochs(self) -> list[EpochRecord]:
        return self._session.epochs

    @property
    def book_resyncs(self) -> deque[BookResync]:
        return self._repair.book_resyncs

    @property
    def budget_waiting(self) -> tuple[str, ...]:
        """Symbols whose snapshot waits for request weight, in the order they will go out."""
        return self._repair.budget_waiting

    @property
    def budget_used(self) -> int:
        return self._repair.budget_used

    @property
    def budget_cap(self) -> int:
        return self._repair.budget_cap

    @property
    def ttcr_ms(self) -> deque[float]:
        """Every closed incident's time-to-correct-resync (ms), oldest first."""
        return self._incidents.ttcr_ms

    @property
    def log(self) -> deque[LogRecord]:
        return self._logbook.records

    @property
    def pending_log(self) -> list[LogRecord]:
        return self._logbook.pending

    @property
    def paused(self) -> bool:
        return self._bridge.paused

    @property
    def mode(self) -> Mode:
        return self.modes.effective


def _ignore(event: ev.Resynchronized, now: int) -> ev.Commands:
    """Published by the engine into its history; accepted as input (replay) and otherwise void."""
    return _NO_COMMANDS
