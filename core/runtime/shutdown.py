"""Shutdown and drain: pause the strategy, let answers in flight arrive, cancel and confirm every
working order (when configured - and always after a fatal stop: halted means no orders at all),
import fills the stream missed, then close the gateway, tasks, session, REST connection,
storage and journal, in that order, and publish the final snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from epochbot.engine.engine import Engine
from epochbot.model import events as ev
from epochbot.runtime.config import RuntimeConfig
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.loop import ConsumeLoop
from epochbot.runtime.order_gateway import OrderGateway
from epochbot.runtime.publish import Publisher, RuntimeLog
from epochbot.runtime.reconcile import Reconciler
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.sessions import SessionManager
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.trading_session import TradingSession
from epochbot.runtime.venue_rest import VenueRest

if TYPE_CHECKING:
    from epochbot.trading.trader import Trader

__all__ = ["ShutdownDrain"]


class ShutdownDrain:
    def __init__(
        self,
        config: RuntimeConfig,
        *,
        engine: Engine,
        inbox: Inbox,
        loop: ConsumeLoop,
        trading: TradingSession,
        reconciler: Reconciler,
        durable: DurableSink,
        recorder: InputRecorder,
        tasks: TaskSupervisor,
        sessions: SessionManager,
        rest: VenueRest,
        publisher: Publisher,
        clock: Callable[[], int],
        log: RuntimeLog,
    ) -> None:
        self.config = config
        self.engine = engine
        self.inbox = inbox
        self.loop = loop
        self.trading = trading
        self.reconciler = reconciler
        self.durable = durable
        self.recorder = recorder
        self.tasks = tasks
        self.sessions = sessions
        self.rest = rest
        self.publisher = publisher
        self.clock = clock
        self.log = log

    async def run(self) -> None:
        trader = cast("Trader | None", self.engine.trader)  # the trading session installs a Trader
        gateway = self.trading.gateway
        if gateway is not None and trader is not None:
            try:
                await self.stop_trading(gateway, trader)
            except Exception as exc:  # noqa: BLE001 - never let a failing venue keep the storage from closing
                self.log("error", "shutdown: settling orders failed", error=f"{type(exc).__name__}: {exc}")
        if gateway is not None:
            await gateway.close()
        await self.tasks.cancel_all()
        await self.sessions.close()
        await self.rest.close()
        await self.durable.close()
        await self.recorder.close()
        self.publisher.drain_logs()
        self.publisher.publish(exact=True)

    def drain_trading_events(self) -> None:
        """Hand trading events still queued (answers that arrived after the loop ended) to
        the trader, in order; market events are no use any more."""
        inbox = self.inbox
        while True:
            event = inbox.next()
            if event is None:
                return
            if getattr(event, "kind", "") != "trading":
                continue
            self.loop.consume_outside_loop(event)

    async def stop_trading(self, gateway: OrderGateway, trader: Trader) -> None:
        """Clean stop of trading: cancel every working order (if configured, or after a fatal
        stop) and record the venue-confirmed final state of each (CANCELED, or FILLED when the
        cancel lost the race), book fills that arrived meanwhile, and import any execution the
        stream did not deliver from the venue's trade history, so storage ends equal to the
        venue. The strategy is paused first: nothing new is placed (or journaled) while the
        venue answers."""
        consume = self.loop.consume_outside_loop
        consume(ev.OperatorPause(paused=True))  # also drops pending re-quotes
        in_flight = await gateway.settle(5.0)  # placements already sent are answered first
        if in_flight:
            self.log("warn", "shutdown: order requests still unanswered", requests=in_flight)
        self.drain_trading_events()
        working = [(o.symbol, o.client_order_id) for o in trader.orders.working()]
        cfg = self.config.trading
        cancel = (cfg is not None and cfg.cancel_on_shutdown) or self.engine.fatal is not None
        if working and cancel:
            cancelled = confirmed = 0
            for _ in range(2):  # a second pass for what the first could not settle
                todo = [(o.symbol, o.client_order_id) for o in trader.orders.working()]
                if not todo:
                    break
                answers = await gateway.cancel_and_confirm(todo)
                await asyncio.sleep(0.05)  # let the user stream deliver fills that raced the cancels
                self.drain_trading_events()
                for event in answers:
                    consume(event)
                cancelled += sum(1 for e in answers if e.status == "CANCELED")
                confirmed += len(answers)
            left = [o.client_order_id for o in trader.orders.working()]
            self.log(
                "info" if not left else "warn",
                "shutdown: working orders settled",
                working=len(working),
                cancelled=cancelled,
                confirmed=confirmed,
                still_working=left[:50],
            )
        if self.durable.storage is not None and self.durable.enabled:
            await self.durable.flush()
            stored = await asyncio.get_running_loop().run_in_executor(None, self.durable.storage.load_fills)
            imported = await self.reconciler.import_venue_fills(gateway, trader, trader.filters, stored)
            if self.recorder.journal is not None:
                from epochbot.model.capture import encode_dataclass

                for fill in imported:  # booked by import_fill, not by the engine: its own row
                    self.recorder.row({"k": "import", "p": self.clock(), "f": encode_dataclass(fill)["f"]})
            self.drain_trading_events()
        self.durable.persist()
