"""Trading at start: the trader built, its durable state restored, the order gateway started.

`TradingSession.start` builds the trader (strategy, gates, orders, portfolio) from the venue's
filters, restores what storage holds (session id, risk state, fills, open orders), starts the
`OrderGateway` and its user-data stream, and returns a `StartedTrading` that the reconciliation
(`epochbot.runtime.reconcile`) compares with the venue. `TradingSession.enable` then journals the
trading setup (a replay builds the same trader from it), says what was restored and returns the
commands to execute. While the loop runs, `TradingSession.execute` hands order commands to the
gateway (a placement's "sent" row is queued for storage before the write-ahead barrier).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from epochbot.engine.engine import Engine
from epochbot.model import events as ev
from epochbot.runtime.config import RuntimeConfig, TradingConfig
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.order_gateway import OrderGateway
from epochbot.runtime.publish import RuntimeLog
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.venue_rest import VenueRest
from epochbot.trading.risk import format_utc_time
from epochbot.venues.binance.rest import SymbolFilters as VenueFilters

if TYPE_CHECKING:
    from epochbot.model import trade_events as tev
    from epochbot.trading.adoption import Adoption
    from epochbot.trading.filters import SymbolFilters
    from epochbot.trading.risk import RiskLimits
    from epochbot.trading.trader import Trader

__all__ = ["Reconciled", "StartedTrading", "TradingSession"]


@dataclass(slots=True)
class StartedTrading:
    """The trader as restored from storage, before the venue was asked anything."""

    config: TradingConfig
    trader: Trader
    gateway: OrderGateway
    filters: dict[str, SymbolFilters]  # ours, exact
    venue_filters: dict[str, VenueFilters]  # the venue's strings (journaled)
    session: int
    limits: RiskLimits
    now: int
    restored_risk: dict | None  # the restored risk state before fills touched it (journaled)
    stored_fills: list[tev.Fill]
    open_orders: list  # storage's open orders of the previous run (OrderTransition rows)
    restored_fill_count: int
    restored_session_pnl: str
    restored_breakers: dict[str, int]


@dataclass(slots=True)
class Reconciled:
    """What the venue said (epochbot.runtime.reconcile): fills imported, orders adopted."""

    commands: list
    imported: list[tev.Fill]
    open_orders: list  # storage's open orders with what the venue says they filled
    adopted: list[Adoption]  # venue orders unknown to storage, taken over


class TradingSession:
    def __init__(
        self,
        config: RuntimeConfig,
        *,
        engine: Engine,
        rest: VenueRest,
        inbox: Inbox,
        durable: DurableSink,
        recorder: InputRecorder,
        tasks: TaskSupervisor,
        clock: Callable[[], int],
        log: RuntimeLog,
    ) -> None:
        self.config = config
        self.engine = engine
        self.rest = rest
        self.inbox = inbox
        self.durable = durable
        self.recorder = recorder
        self.tasks = tasks
        self.clock = clock
        self.log = log
        self.gateway: OrderGateway | None = None

    async def start(self, venue_filters: dict[str, VenueFilters]) -> StartedTrading:
        """Build the trader, restore durable state, start the gateway and its user-data stream."""
        from epochbot.trading.filters import SymbolFilters
        from epochbot.trading.risk import RiskLimits, RiskState
        from epochbot.trading.strategy import get_strategy
        from epochbot.trading.trader import Trader

        cfg = self.config.trading
        assert cfg is not None, "trading start without a trading configuration"
        missing = [s for s in self.config.symbols if s not in venue_filters]
        if missing:
            raise RuntimeError(f"cannot trade without exchangeInfo filters for {', '.join(missing)}")
        market = self.config.venue.market
        filters = {
            s: SymbolFilters.from_strings(s, f.tick_size, f.step_size, f.min_qty, f.max_qty, f.min_notional, market)
            for s, f in venue_filters.items()
        }
        now = self.clock()
        limits = cast(RiskLimits, cfg.limits) if cfg.limits is not None else RiskLimits()
        session = now // 1_000_000_000  # unique per start when nothing is persisted
        risk_state, open_orders = None, []
        restored_risk = None
        storage = None
        if cfg.storage_path:
            storage = self.durable.open(cfg.storage_path, fresh=cfg.storage_per_run)
            session = storage.next_session()
            risk_state, warnings = RiskState.restore(storage.load_latest_risk(), now, limits)
            restored_risk = risk_state.to_dict()
            for warning in warnings:
                self.log("warn", "risk state restore", detail=warning)
            open_orders = storage.load_open_orders()
        trader = Trader(
            get_strategy(cfg.strategy, cfg.params),
            filters,
            session=session,
            limits=limits,
            risk_state=risk_state,
            mode=self.engine.mode,
        )
        self.log("info", "strategy loaded", strategy=cfg.strategy, module=type(trader.strategy).__module__)
        trader.keep_fills = 1000
        self.engine.trader = trader
        trader.orders.unknown_window_ns = max(0, int(cfg.unknown_window_ms)) * 1_000_000
        trader.symbol_status = {s: f.status for s, f in venue_filters.items() if f.status != "TRADING"}
        stored_fills = storage.load_fills() if storage is not None else []
        restored = trader.restore_fills(stored_fills)
        if not cfg.api_key or not cfg.api_secret:
            raise RuntimeError(
                "trading needs an API key and secret (EPOCHBOT_API_KEY / EPOCHBOT_API_SECRET or a secrets file)"
            )
        gateway = self.gateway = OrderGateway(
            self.rest.client,
            ws_base=self.config.venue.ws_url,
            api_key=cfg.api_key,
            api_secret=cfg.api_secret,
            inbox=self.inbox,
            codecs={s: f.codec for s, f in filters.items()},
            quote_assets={s: f.quote_asset for s, f in venue_filters.items() if f.quote_asset},
            clock=self.clock,
            log=self.log,
            recv_window_ms=cfg.recv_window_ms,
            offset_ms=lambda: self.engine.telemetry.clock_offset_ns / 1e6,
            durable=self.durable.write_ahead if self.durable.enabled else None,
            symbol_status={s: f.status for s, f in venue_filters.items()},
            ws_orders=cfg.ws_orders,
        )
        started = StartedTrading(
            config=cfg,
            trader=trader,
            gateway=gateway,
            filters=filters,
            venue_filters=venue_filters,
            session=session,
            limits=limits,
            now=now,
            restored_risk=restored_risk,
            stored_fills=stored_fills,
            open_orders=open_orders,
            restored_fill_count=restored,
            restored_session_pnl=str(trader.risk.state.session_pnl),
            restored_breakers=dict(sorted(trader.risk.state.breakers.items())),
        )
        # The user-data stream first: an execution after the trade-history fetch of the
        # reconciliation then still arrives (queued until the loop runs; its trade id makes a
        # second copy harmless).
        self.tasks.spawn(gateway.run_user_stream(), "user-stream")
        deadline = time.monotonic() + 3.0
        while not gateway.user_stream_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not gateway.user_stream_connected:
            self.log("warn", "user data stream not connected yet: reconciling anyway")
        return started

    def enable(self, started: StartedTrading, reconciled: Reconciled) -> list:
        """Journal the trading setup, say what was restored; the commands to execute now."""
        from epochbot.runtime.journal_inputs import trading_row
        from epochbot.trading.alerts import RiskAlerts

        cfg, trader, now = started.config, started.trader, started.now
        self.recorder.row(
            trading_row(
                cfg.strategy,
                cfg.params,
                started.session,
                started.limits,
                started.venue_filters,
                self.config.venue.market,
                self.engine.mode,
                started.restored_risk,
                started.stored_fills,
                reconciled.imported,
                reconciled.open_orders,
                now,
                keep_fills=trader.keep_fills,
                adopted=reconciled.adopted,
            )
        )
        risk = trader.risk.state
        self.log(
            "info",
            "trading enabled",
            strategy=cfg.strategy,
            session=started.session,
            restored_open_orders=len(reconciled.open_orders),
            storage=cfg.storage_path or "none",
            restored_fills=started.restored_fill_count,
            imported_fills=len(reconciled.imported),
            restored_session_pnl=started.restored_session_pnl,
            session_pnl=str(risk.session_pnl),
            restored_breakers=started.restored_breakers,
            daily_pnl=str(risk.daily_pnl),
            breakers={k: v for k, v in sorted(risk.breakers.items())},
            session_latched=risk.session_latched,
            positions={s: trader.portfolio.qty(s) for s in self.config.symbols},
        )
        for symbol, until in sorted(started.restored_breakers.items()):
            if until > now:
                self.log(
                    "warn",
                    "circuit breaker tripped",
                    symbol=symbol,
                    cause="restored from the previous run",
                    until=format_utc_time(until),
                    effect="exits only",
                )
        # Restored trips were just logged; trips caused by the fills imported at start are new.
        trader.risk_alerts = RiskAlerts(known_breakers=started.restored_breakers)
        self.engine.log_trader_alerts()
        return reconciled.commands

    def execute(self, command: ev.Command) -> None:
        """An order command (place, cancel, query, fetch trades) to the gateway."""
        gateway = self.gateway
        if gateway is None:
            self.log("error", "order command without trading configured", command=type(command).__name__)
            return
        if type(command) is ev.PlaceOrder:
            self.durable.persist()  # the "sent" row is queued before the write-ahead barrier
        gateway.execute(command)
