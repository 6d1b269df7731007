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
* ``FetchSnapshot``: queued in the request-weight planner (`epochbot.runtime.budget.WeightBudget`),
  which lets it go out when the venue's per-minute weight allows (traded and invalid books
  first, at most ``snapshot_concurrency`` at a time); then one task per request. The answer (or
  failure, with Binance's ``Retry-After``) comes back as a control event tagged with the epoch
  it was requested for, on the inbox's bulk lane (installed one at a time between market
  events). Kline backfill requests take their weight from the same planner.
* order commands: to the `OrderGateway`, whose answers come back as trading events.
* ``Stop``: finish the loop with the engine's exit code.

At most ``snapshot_hz`` times a second the loop publishes an immutable `WorldSnapshot` by
replacing ``latest``; the dashboard and the control endpoint read only that. Operator actions
arrive via ``submit`` (thread-safe). The runtime also replaces a session on its own before the
venue's 24-hour connection limit cuts it. A handler that raises a data error has it repaired;
any other exception is a defect and stops trading with exit code 3 (`epochbot.runtime.data_errors`).

The runtime connects to the URLs its configuration names and knows no venue of its own: the
embedded simulator is started by the app (`epochbot.app.embedded_sim`), which hands over its URLs
and keys.

The parts
---------
`Runtime` is the wiring: it builds each part with the collaborators it uses (as a kernel builds
its engines), and `run` is the start order. In the order data flows through them:

    venue -> transport      `epochbot.runtime.sessions`   sessions dialled and replaced (DialBudget)
                            `epochbot.runtime.streams`    which streams, which symbols are traded
             REST           `epochbot.runtime.venue_rest` the aiohttp session and REST client
                            `epochbot.runtime.weight`     weight scheduler and snapshot fetches
                            `epochbot.runtime.probe`      the liveness probe
                            `epochbot.runtime.scales`     exchangeInfo scales at start
                            `epochbot.runtime.history`    kline backfill at start
                            `epochbot.runtime.clock`      the venue's clock offset
    inbox -> engine         `epochbot.runtime.loop`       the consuming loop and the timer
                            `epochbot.runtime.data_errors` data errors repaired, defects fatal
                            `epochbot.runtime.commands`   commands routed by type
                            `epochbot.runtime.recorder`   journaling of consumed inputs
                            `epochbot.runtime.publish`    snapshots and log records out
                            `epochbot.runtime.tasks`      background tasks, failures reported
    engine -> trader        `epochbot.runtime.trading_session`  trader built, state restored, gateway started
                            `epochbot.runtime.reconcile`  fills imported, positions compared, orders adopted
    trader -> gateway       `epochbot.runtime.order_gateway`    orders to the venue
             storage        `epochbot.runtime.durable`    durable records, the write-ahead barrier
    end                     `epochbot.runtime.shutdown`   orders settled, everything closed in order
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import replace

from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, LogRecord
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.clock import wall_ns
from epochbot.runtime.budget import BudgetConfig, WeightBudget
from epochbot.runtime.clock import ServerClock
from epochbot.runtime.commands import CommandRouter
from epochbot.runtime.config import VENUES, JournalConfig, RuntimeConfig, TradingConfig, VenueEndpoints
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.history import Backfill, HistoryBackfill, backfill_klines
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.loop import ConsumeLoop, Timer, freeze_heap_when_synced
from epochbot.runtime.order_gateway import OrderGateway
from epochbot.runtime.probe import VenueProbe
from epochbot.runtime.publish import Publisher
from epochbot.runtime.reconcile import Reconciler
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.scales import SymbolScales
from epochbot.runtime.sessions import DialBudget, SessionManager
from epochbot.runtime.shutdown import ShutdownDrain
from epochbot.runtime.streams import StreamPlan
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.trading_session import TradingSession
from epochbot.runtime.venue_rest import VenueRest
from epochbot.runtime.weight import SnapshotFetcher, WeightScheduler
from epochbot.venues.binance.rest import RestClient
from epochbot.views.snapshot import SnapshotBuilder, WorldSnapshot

# The configuration and the kline fetch are re-exported: callers import them from here.
__all__ = [
    "VENUES",
    "Backfill",
    "JournalConfig",
    "Runtime",
    "RuntimeConfig",
    "TradingConfig",
    "VenueEndpoints",
    "backfill_klines",
]


class Runtime:
    """The wiring: builds the engine and every part around it, then runs start-up in order and
    the strategy loop (see the module docstring)."""

    def __init__(self, config: RuntimeConfig, *, clock: Callable[[], int] = wall_ns) -> None:
        rules = VenueRules.SPOT if config.venue.market == "spot" else VenueRules.USDM
        engine_cfg = replace(config.engine, venue=rules, symbols=tuple(config.symbols))
        config = self.config = replace(config, engine=engine_cfg)
        self.clock = clock
        engine = self.engine = Engine(engine_cfg, clock)
        inbox = self.inbox = Inbox(config.market_queue_size)
        self.loop: asyncio.AbstractEventLoop | None = None  # the event loop `run` runs on
        self._pending_early: list = []  # operator events submitted before `run`

        # Out: journal, snapshots and log records, durable records.
        recorder = self.recorder = InputRecorder(
            config.journal, engine=engine, inbox=inbox, venue=config.venue, symbols=config.symbols
        )
        publisher = self.publisher = Publisher(engine, SnapshotBuilder(config.venue.name), recorder)
        log = publisher.log
        tasks = self.tasks = TaskSupervisor(self._task_failed)
        durable = self.durable = DurableSink(engine, log)

        # The venue: REST (weight-planned), sessions, probes, start-up data.
        rest = self.venue_rest = VenueRest(
            config.venue, timeout_s=config.http_timeout_s, retry_after_cap_s=config.retry_after_cap_s, log=log
        )
        budget_cfg = BudgetConfig.for_market(
            config.venue.market, headroom=config.weight_headroom, max_in_flight=config.snapshot_concurrency
        )
        if config.weight_limit is not None:
            budget_cfg = replace(budget_cfg, limit=config.weight_limit)
        self.budget = WeightBudget(budget_cfg)
        scheduler = self.scheduler = WeightScheduler(
            self.budget,
            inbox=inbox,
            rest=rest,
            clock=clock,
            clock_offset_ns=lambda: engine.telemetry.clock_offset_ns,
        )
        plan = self.streams = StreamPlan(config)
        snapshots = self.snapshots = SnapshotFetcher(
            scheduler=scheduler, rest=rest, engine=engine, inbox=inbox, tasks=tasks, plan=plan, clock=clock, log=log
        )
        self.scales = SymbolScales(config, engine=engine, rest=rest, budget=self.budget, recorder=recorder, log=log)
        sessions = self.sessions = SessionManager(
            engine=engine,
            inbox=inbox,
            tasks=tasks,
            plan=plan,
            dial_budget=DialBudget(config.dial_budget, config.dial_window_s),
            snapshots=snapshots,
            clock=clock,
            spot=config.venue.market == "spot",
            depth_scales=self.scales.depth,
            max_session_s=config.max_session_s,
        )
        probe = self.probe = VenueProbe(rest=rest, inbox=inbox, tasks=tasks, clock=clock)
        self.history = HistoryBackfill(
            config,
            engine=engine,
            rest=rest,
            scheduler=scheduler,
            plan=plan,
            durable=durable,
            recorder=recorder,
            clock=clock,
            log=log,
        )
        self.server_clock = ServerClock(
            rest=rest,
            engine=engine,
            inbox=inbox,
            recorder=recorder,
            clock=clock,
            log=log,
            interval_s=config.clock_offset_interval_s,
        )

        # Trading: start-up, reconciliation, order commands.
        trading = self.trading = TradingSession(
            config,
            engine=engine,
            rest=rest,
            inbox=inbox,
            durable=durable,
            recorder=recorder,
            tasks=tasks,
            clock=clock,
            log=log,
        )
        self.reconciler = Reconciler(config, engine=engine, durable=durable, tasks=tasks, clock=clock, log=log)

        # The loop and its end.
        self.router = CommandRouter(
            {
                ev.FetchSnapshot: snapshots.fetch,
                ev.ReplaceSession: sessions.replace,
                ev.CloseConnection: sessions.close_soon,
                ev.Subscribe: sessions.subscribe,
                ev.Unsubscribe: sessions.subscribe,
                ev.ProbeVenue: probe.probe,
                ev.PlaceOrder: trading.execute,
                ev.CancelOrder: trading.execute,
                tev.QueryOrder: trading.execute,
                tev.FetchOrderTrades: trading.execute,
            },
            log=log,
        )
        self.consumer = ConsumeLoop(
            engine=engine,
            inbox=inbox,
            router=self.router,
            publisher=publisher,
            recorder=recorder,
            durable=durable,
            clock=clock,
            snapshot_hz=config.snapshot_hz,
        )
        self.timer = Timer(inbox, clock, config.tick_ms)
        self.shutdown = ShutdownDrain(
            config,
            engine=engine,
            inbox=inbox,
            loop=self.consumer,
            trading=trading,
            reconciler=self.reconciler,
            durable=durable,
            recorder=recorder,
            tasks=tasks,
            sessions=sessions,
            rest=rest,
            publisher=publisher,
            clock=clock,
            log=log,
        )

    # ------------------------------------------------------------------ thread-safe API

    def submit(self, event) -> None:
        """Hand an operator control event to the loop (from any thread)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            self._pending_early.append(event)
            return
        event.recv_ts = self.clock()
        loop.call_soon_threadsafe(self.inbox.put_control, event)

    def request_stop(self, reason: str = "stop requested") -> None:
        self.submit(ev.ShutdownRequested(reason=reason))

    def add_log_listener(self, callback: Callable[[LogRecord], None]) -> None:
        self.publisher.add_log_listener(callback)

    def add_snapshot_listener(self, callback: Callable[[WorldSnapshot], None]) -> None:
        self.publisher.add_snapshot_listener(callback)

    def log(self, level: str, msg: str, **fields: object) -> None:
        """A record in the engine's log, from outside the engine (marked source="runtime")."""
        self.publisher.log(level, msg, **fields)

    # ------------------------------------------------------------------ what the app and tests read

    @property
    def latest(self) -> WorldSnapshot | None:
        return self.publisher.latest

    @property
    def builder(self) -> SnapshotBuilder:
        return self.publisher.builder

    @property
    def exit_code(self) -> int | None:
        return self.router.exit_code

    @property
    def rest(self) -> RestClient | None:
        return self.venue_rest.opened

    @property
    def gateway(self) -> OrderGateway | None:
        return self.trading.gateway

    @property
    def journal(self):
        return self.recorder.journal

    # ------------------------------------------------------------------ start-up and main loop

    async def run(self) -> int:
        """Start everything in order, run the strategy loop until it stops, then shut down."""
        self.loop = asyncio.get_running_loop()
        for event in self._pending_early:
            self.inbox.put_control(event)
        self._pending_early.clear()
        self.venue_rest.open()
        self.tasks.spawn(self.scheduler.run(), "weight-budget")
        try:
            self.recorder.open()
            filters = await self.scales.prepare()
            history = await self.history.backfill()
            if self.config.trading is not None:
                await self.server_clock.measure()  # before the first signed request
                started = await self.trading.start(filters)
                reconciled = await self.reconciler.reconcile(started)
                self.router.execute(self.trading.enable(started, reconciled))
            self.router.execute(self.history.use(history))
            if self.config.gc_freeze:
                gc.collect()
                gc.freeze()  # the startup heap (modules, clients, history) is never garbage
            self.router.execute(self._start_engine())
            self.tasks.spawn(self.timer.run(), "timer")
            self.tasks.spawn(self.server_clock.run(), "clock-offset")
            if self.config.gc_freeze:
                self.tasks.spawn(freeze_heap_when_synced(self.engine, self.log), "gc-freeze")
            self.publisher.publish()
            return await self.consumer.run()
        finally:
            await self.shutdown.run()

    def _start_engine(self) -> list:
        """``engine.start()`` at one instant (journaled: replay starts the engine at it)."""
        engine = self.engine
        now = self.clock()
        engine.clock = lambda: now
        try:
            commands = list(engine.start())
        finally:
            engine.clock = self.clock
        self.recorder.row({"k": "start", "p": now})
        return commands

    def _task_failed(self, name: str, exc: BaseException) -> None:
        """A background task raised: a bug in an I/O part. Say so, and report a disconnect so
        the engine repairs state (a new session) rather than carrying on blind."""
        self.log("error", "background task failed", task=name, error=f"{type(exc).__name__}: {exc}")
        self.inbox.put_control(
            ev.Disconnected(epoch=self.engine.epoch, recv_ts=self.clock(), reason=f"internal task {name} failed")
        )
